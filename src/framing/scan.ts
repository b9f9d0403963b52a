// One pass over JSON text that JSON.parse has already accepted, looking for what another
// parser could read differently (duplicate keys, lone surrogate escapes, numbers a double
// cannot hold exactly) and for excess depth. It also records where top-level ids and batch
// elements sit in the text, so ids can be checked as written and elements forwarded as sliced.
//
// Speed matters (every request passes here): it walks the UTF-8 bytes (indexing a
// Uint8Array is far cheaper than charCodeAt), and compares keys by a cheap signature
// (byte length, first/middle/last byte) held in reused typed arrays, materialising them
// as strings only when signatures collide or an object grows past SMALL keys. Offsets in
// the result are byte offsets.

export type ScanProblem = 'duplicate_key' | 'lone_surrogate' | 'too_deep' | 'inexact_number' | 'nul_in_key';

export class ScanError {
  constructor(
    readonly problem: ScanProblem,
    readonly details: string,
  ) {}
}

export interface ScanResult {
  /** offset of the value of a top-level object's "id" key, or -1 */
  idAt: number;
  /** for a top-level array: start and end offsets of each element, flattened [s0, e0, s1, e1, ...] */
  elements: number[];
  /** for a top-level array: offset of each element object's "id" value, or -1 */
  elementIdAt: number[];
}

const QUOTE = 0x22, BSLASH = 0x5c, COLON = 0x3a, COMMA = 0x2c;
const LBRACE = 0x7b, RBRACE = 0x7d, LBRACK = 0x5b, RBRACK = 0x5d;
/** objects with more keys than this switch from linear signature compare to a Set */
const SMALL = 16;
/** bytes of a string scanned byte by byte before switching to indexOf */
const LONG = 16;

// Scratch state, reused across calls (the scan never re-enters itself). Each slot is
// written before it is read, so nothing needs clearing between calls.
let kSig: Int32Array = new Int32Array(4 * SMALL); // signature of each key of each open object
let kStart: Int32Array = new Int32Array(4 * SMALL); // raw key start, or -1 when escaped (see kStr)
let kEnd: Int32Array = new Int32Array(4 * SMALL);
const kStr: string[] = []; // decoded escaped keys
let objStart: Int32Array = new Int32Array(66); // first key slot of the object open at each depth
const sets: (Set<string> | undefined)[] = []; // large objects' keys, by depth

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

const sigOf = (len: number, first: number, mid: number, last: number): number =>
  ((len & 0x7ff) << 20) | ((first * 961 + mid * 31 + last) & 0xfffff);

/** The signature of `b[s..e)`; an escaped key is signed by its decoded UTF-8 bytes. */
const sigOfBytes = (b: Uint8Array, s: number, e: number): number =>
  e === s ? 0 : sigOf(e - s, b[s]!, b[s + ((e - s) >> 1)]!, b[e - 1]!);

/**
 * Scans `src`, the UTF-8 bytes of a text JSON.parse has already accepted. Depth counts
 * containers: a top-level `{}` is depth 1. Throws ScanError.
 */
export function scanJson(src: Buffer, maxDepth: number): ScanResult {
  const n = src.length;
  const res: ScanResult = { idAt: -1, elements: [], elementIdAt: [] };
  if (objStart.length < maxDepth + 2) objStart = new Int32Array(maxDepth + 2);
  let depth = 0;
  let nk = 0; // used key slots
  let nextQ = -1; // cached positions for long strings; stale once below the scan point
  let nextBs = -2;
  let i = 0;
  while (isWs(src[i]!)) i++;
  const rootIsArray = src[i]! === LBRACK;
  if (rootIsArray) openElement(src, i + 1, res); // dropped again if the array is empty

  while (i < n) {
    const c = src[i]!;
    if (c === QUOTE) {
      const s = i + 1;
      let p = s;
      let escaped = false;
      let ch = src[p]!;
      let budget = LONG;
      while (ch !== QUOTE) {
        if (ch === BSLASH) {
          escaped = true;
          p = checkEscape(src, p);
        } else if (--budget === 0) {
          // A long string: hop between quotes and backslashes with native indexOf (several
          // times faster than a byte loop unless escapes are dense), caching both
          // positions so no byte is searched twice.
          for (;;) {
            if (nextQ < p) nextQ = src.indexOf(QUOTE, p);
            if (nextBs !== -1 && nextBs < p) nextBs = src.indexOf(BSLASH, p);
            if (nextBs === -1 || nextBs > nextQ) break;
            escaped = true;
            p = checkEscape(src, nextBs);
          }
          p = nextQ;
          break;
        } else p++;
        ch = src[p]!;
      }
      let a = p + 1;
      while (isWs(src[a]!)) a++;
      if (src[a]! !== COLON) {
        i = a; // a string value
        continue;
      }
      // A key of the object open at `depth`.
      let str: string | undefined;
      let sig: number;
      if (escaped) {
        str = JSON.parse(src.toString('utf8', i, p + 1)) as string;
        if (str.includes('\0')) throw new ScanError('nul_in_key', 'NUL character in key');
        const enc = Buffer.from(str, 'utf8');
        sig = sigOfBytes(enc, 0, enc.length);
      } else {
        sig = sigOfBytes(src, s, p);
      }
      const set = sets[depth];
      if (set !== undefined) {
        str ??= src.toString('utf8', s, p);
        if (set.has(str)) throw duplicate(str);
        set.add(str);
      } else {
        const from = objStart[depth]!;
        for (let k = from; k < nk; k++) {
          if (kSig[k] === sig && keyAt(src, k) === (str ??= src.toString('utf8', s, p))) throw duplicate(str);
        }
        if (nk - from >= SMALL) {
          const big = new Set<string>();
          for (let k = from; k < nk; k++) big.add(keyAt(src, k));
          big.add(str ?? src.toString('utf8', s, p));
          sets[depth] = big;
          nk = from; // nested objects reuse the slots
        } else {
          if (nk === kSig.length) grow();
          kSig[nk] = sig;
          if (escaped) {
            kStart[nk] = -1;
            kStr[nk] = str!;
          } else {
            kStart[nk] = s;
            kEnd[nk] = p;
          }
          nk++;
        }
      }
      a++;
      while (isWs(src[a]!)) a++;
      if (escaped ? str === 'id' : p - s === 2 && src[s]! === 0x69 && src[s + 1]! === 0x64) {
        if (depth === 1 && !rootIsArray) res.idAt = a;
        else if (depth === 2 && rootIsArray) res.elementIdAt[res.elementIdAt.length - 1] = a;
      }
      i = a;
      continue;
    }
    if (c === LBRACE || c === LBRACK) {
      if (++depth > maxDepth) throw new ScanError('too_deep', `nesting exceeds maximum depth of ${maxDepth}`);
      if (c === LBRACE) {
        objStart[depth] = nk;
        sets[depth] = undefined;
      }
      i++;
      continue;
    }
    if (c === RBRACE || c === RBRACK) {
      if (c === RBRACE) {
        nk = objStart[depth]!;
        sets[depth] = undefined;
      }
      if (depth === 1 && rootIsArray) closeElement(src, i, res, true);
      depth--;
      i++;
      continue;
    }
    if (c === COMMA) {
      if (depth === 1 && rootIsArray) {
        closeElement(src, i, res, false);
        openElement(src, i + 1, res);
      }
      i++;
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      i = checkNumber(src, i);
      continue;
    }
    i++; // whitespace and the letters of true/false/null
  }
  return res;
}

function grow(): void {
  const cap = kSig.length * 2;
  const g = (a: Int32Array): Int32Array => {
    const b = new Int32Array(cap);
    b.set(a);
    return b;
  };
  kSig = g(kSig);
  kStart = g(kStart);
  kEnd = g(kEnd);
}

function keyAt(src: Buffer, k: number): string {
  const s = kStart[k]!;
  return s === -1 ? kStr[k]! : src.toString('utf8', s, kEnd[k]);
}

function hex4(b: Uint8Array, at: number): number {
  let v = 0;
  for (let k = at; k < at + 4; k++) {
    const c = b[k]!;
    v = v * 16 + (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57); // JSON.parse vouched for the digits
  }
  return v;
}

/**
 * Checks the escape at `p` (a backslash) and returns the index after it. A \u escape for
 * half a surrogate pair must be the high half directly followed by the low half.
 */
function checkEscape(src: Buffer, p: number): number {
  if (src[p + 1]! !== 0x75 /* u */) return p + 2;
  const u = hex4(src, p + 2);
  if (u < 0xd800 || u > 0xdfff) return p + 6;
  if (u >= 0xdc00) throw loneSurrogate(u);
  if (src[p + 6]! === BSLASH && src[p + 7]! === 0x75) {
    const lo = hex4(src, p + 8);
    if (lo >= 0xdc00 && lo <= 0xdfff) return p + 12;
  }
  throw loneSurrogate(u);
}

function openElement(src: Buffer, from: number, res: ScanResult): void {
  while (isWs(src[from]!)) from++;
  res.elements.push(from);
  res.elementIdAt.push(-1);
}

/** Closes the current top-level array element at the ',' or ']' found at `at`. */
function closeElement(src: Buffer, at: number, res: ScanResult, isLast: boolean): void {
  const start = res.elements[res.elements.length - 1]!;
  if (isLast && start === at) {
    res.elements.pop(); // `[]` or `[ ]`: no element
    res.elementIdAt.pop();
    return;
  }
  let end = at;
  while (isWs(src[end - 1]!)) end--;
  res.elements.push(end);
}

/**
 * Skips a number token and rejects one whose exact value a double cannot hold: parsers
 * that keep big integers exactly (Python, Go's json.Number, serde_json's u64) would read
 * a different value than the proxy judged. Tokens under 16 chars without an exponent are
 * always exact enough.
 */
function checkNumber(src: Buffer, i: number): number {
  const start = i;
  let isInt = true;
  let exp = false;
  for (;;) {
    const c = src[i]!;
    if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b) i++;
    else if (c === 0x2e) {
      isInt = false;
      i++;
    } else if (c === 0x65 || c === 0x45) {
      isInt = false;
      exp = true;
      i++;
    } else break;
  }
  if (i - start < 16 && !exp) return i;
  const tok = src.toString('latin1', start, i);
  const v = Number(tok);
  // Finite decimals are fine: every mainstream parser rounds them to the same double.
  const exact = Number.isFinite(v) && (!isInt || BigInt(tok) === BigInt(v));
  if (!exact) {
    throw new ScanError('inexact_number', `number ${tok.length > 40 ? tok.slice(0, 40) + '…' : tok} cannot be represented exactly`);
  }
  return i;
}

function duplicate(key: string): ScanError {
  return new ScanError('duplicate_key', `duplicate key '${key.length > 100 ? key.slice(0, 100) + '…' : key}'`);
}

function loneSurrogate(u: number): ScanError {
  return new ScanError('lone_surrogate', `lone surrogate \\u${u.toString(16)} in string`);
}
