// Globs in the dialect of the Rust `glob` 0.3 crate with default MatchOptions, which the
// original uses for rules and `expose`: case-sensitive, `*` also matches `/`, `?` one char,
// `[abc]` `[a-z]` `[!x]`, `**` only as a whole path component, no `{a,b}`, no backslash
// escapes (`[*]` matches a literal `*`). Compiled once; matching allocates nothing.
import type { Matcher } from './types.js';

const ERROR_WILDCARDS = 'wildcards are either regular `*` or recursive `**`';
const ERROR_RECURSIVE_WILDCARDS = 'recursive wildcards must form a single path component';
const ERROR_INVALID_RANGE = 'invalid range pattern';

export class GlobError extends Error {
  readonly pattern: string;
  /** code-point index, as the Rust crate reports it */
  readonly position: number;
  /** the crate's own wording: `Pattern syntax error near position N: …` */
  readonly reason: string;

  constructor(pattern: string, position: number, msg: string) {
    const reason = `Pattern syntax error near position ${position}: ${msg}`;
    super(`invalid glob pattern '${pattern}': ${reason}`);
    this.name = 'GlobError';
    this.pattern = pattern;
    this.position = position;
    this.reason = reason;
  }
}

const CHAR = 0;
const ANY = 1; // ?
const SEQ = 2; // *
const RSEQ = 3; // ** followed by `/`: empty or anything ending in `/`
const IN = 4; // [..]
const OUT = 5; // [!..]

interface Token {
  kind: number;
  /** code point for CHAR */
  cp: number;
  /** inclusive [lo, hi] pairs for IN / OUT */
  ranges: readonly number[];
}

const NO_RANGES: readonly number[] = [];
const tok = (kind: number, cp = 0, ranges = NO_RANGES): Token => ({ kind, cp, ranges });

/** Tokenise exactly as `glob::Pattern::new` does (positions count code points). */
function tokenize(pattern: string): Token[] {
  const chars = Array.from(pattern);
  const tokens: Token[] = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === '?') {
      tokens.push(tok(ANY));
      i++;
    } else if (c === '*') {
      const old = i;
      while (i < chars.length && chars[i] === '*') i++;
      const count = i - old;
      if (count > 2) throw new GlobError(pattern, old + 2, ERROR_WILDCARDS);
      if (count === 1) {
        tokens.push(tok(SEQ));
        continue;
      }
      if (!(i === 2 || chars[i - count - 1] === '/')) throw new GlobError(pattern, old - 1, ERROR_RECURSIVE_WILDCARDS);
      if (i < chars.length && chars[i] === '/') i++;
      else if (i !== chars.length) throw new GlobError(pattern, i, ERROR_RECURSIVE_WILDCARDS);
      // the crate collapses `**/**` (except right at the start); harmless either way
      const last = tokens[tokens.length - 1];
      if (!(tokens.length > 1 && last !== undefined && last.kind === RSEQ)) tokens.push(tok(RSEQ));
    } else if (c === '[') {
      // `]` right after `[` or `[!` is a member, so the search for the closing one starts later
      if (i + 4 <= chars.length && chars[i + 1] === '!') {
        const j = chars.indexOf(']', i + 3);
        if (j >= 0) {
          tokens.push(tok(OUT, 0, ranges(chars.slice(i + 2, j))));
          i = j + 1;
          continue;
        }
      } else if (i + 3 <= chars.length && chars[i + 1] !== '!') {
        const j = chars.indexOf(']', i + 2);
        if (j >= 0) {
          tokens.push(tok(IN, 0, ranges(chars.slice(i + 1, j))));
          i = j + 1;
          continue;
        }
      }
      throw new GlobError(pattern, i, ERROR_INVALID_RANGE);
    } else {
      tokens.push(tok(CHAR, c.codePointAt(0)!));
      i++;
    }
  }
  // A trailing `**` (its `/` already consumed or absent) matches everything, like `*`.
  const last = tokens[tokens.length - 1];
  if (last !== undefined && last.kind === RSEQ) tokens[tokens.length - 1] = tok(SEQ);
  return tokens;
}

function ranges(spec: string[]): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < spec.length) {
    if (i + 3 <= spec.length && spec[i + 1] === '-') {
      out.push(spec[i]!.codePointAt(0)!, spec[i + 2]!.codePointAt(0)!);
      i += 3;
    } else {
      const cp = spec[i]!.codePointAt(0)!;
      out.push(cp, cp);
      i++;
    }
  }
  return out;
}

function inRanges(r: readonly number[], cp: number): boolean {
  for (let k = 0; k < r.length; k += 2) if (cp >= r[k]! && cp <= r[k + 1]!) return true;
  return false;
}

function tokenMatches(t: Token, cp: number): boolean {
  switch (t.kind) {
    case CHAR:
      return t.cp === cp;
    case ANY:
      return true;
    case IN:
      return inRanges(t.ranges, cp);
    default:
      return !inRanges(t.ranges, cp); // OUT
  }
}

/**
 * Wildcard matching with one backtrack point (the last star seen), O(n·m) worst case with
 * no recursion. Sound for RSEQ too: it always starts right after a literal `/`, so a later
 * start reaches a subset of the positions an earlier one reaches.
 */
function matchTokens(tokens: readonly Token[], s: string): boolean {
  const m = tokens.length;
  const n = s.length;
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < n) {
    if (p < m) {
      const t = tokens[p]!;
      if (t.kind === SEQ || t.kind === RSEQ) {
        starP = p++;
        starI = i;
        continue;
      }
      const cp = s.codePointAt(i)!;
      if (tokenMatches(t, cp)) {
        p++;
        i += cp > 0xffff ? 2 : 1;
        continue;
      }
    }
    if (starP < 0) return false;
    if (tokens[starP]!.kind === SEQ) {
      starI += s.codePointAt(starI)! > 0xffff ? 2 : 1;
    } else {
      const slash = s.indexOf('/', starI);
      if (slash < 0) return false;
      starI = slash + 1;
    }
    i = starI;
    p = starP + 1;
  }
  while (p < m && (tokens[p]!.kind === SEQ || tokens[p]!.kind === RSEQ)) p++;
  return p === m;
}

const literalOf = (tokens: readonly Token[], from: number, to: number): string | undefined => {
  let out = '';
  for (let k = from; k < to; k++) {
    const t = tokens[k]!;
    if (t.kind !== CHAR) return undefined;
    out += String.fromCodePoint(t.cp);
  }
  return out;
};

const always: Matcher = () => true;

/** Compile `pattern`; throws GlobError (`invalid glob pattern 'p': …`) when it is invalid. */
export function compileGlob(pattern: string): Matcher {
  const tokens = tokenize(pattern);
  const n = tokens.length;
  const exact = literalOf(tokens, 0, n);
  if (exact !== undefined) return (s) => s === exact;
  const first = tokens[0]!.kind;
  const lastKind = tokens[n - 1]!.kind;
  if (n === 1 && first === SEQ) return always;
  if (lastKind === SEQ) {
    const prefix = literalOf(tokens, 0, n - 1);
    if (prefix !== undefined) return (s) => s.startsWith(prefix);
  }
  if (first === SEQ) {
    const suffix = literalOf(tokens, 1, n);
    if (suffix !== undefined) return (s) => s.endsWith(suffix);
    if (lastKind === SEQ && n > 2) {
      const middle = literalOf(tokens, 1, n - 1);
      if (middle !== undefined) return (s) => s.includes(middle);
    }
  }
  return (s) => matchTokens(tokens, s);
}

/** How many UTF-16 units at the start of `pattern` are literal (before its first `*`, `?` or `[`). */
export function literalPrefixLength(pattern: string): number {
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    if (c === 0x2a || c === 0x3f || c === 0x5b) return i;
  }
  return pattern.length;
}

/** The GlobError for `pattern`, or undefined when it compiles. */
export function globError(pattern: string): GlobError | undefined {
  try {
    tokenize(pattern);
    return undefined;
  } catch (e) {
    if (e instanceof GlobError) return e;
    throw e;
  }
}
