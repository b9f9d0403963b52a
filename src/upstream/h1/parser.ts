// Incremental HTTP/1.1 response parser for the lean upstream client (client.ts).
//
// Strict where strictness protects the proxy (request smuggling, desync) and allocation-light on
// the hot path: a response head that arrives in one read is parsed in place; only a head split
// across reads is copied into a per-parser buffer that is reused. Body bytes are never copied:
// the handler receives views (`subarray`) of the socket's own chunks, one per read.
//
// What it accepts (RFC 9112, with llhttp's strict defaults):
//   status line  `HTTP/1.0|1.1 SP 3DIGIT [SP reason] CRLF`; CRLF line endings only (a bare LF or CR is
//                an error); no obs-fold; header names are tokens with no space before the colon;
//                values are HTAB / SP..~ / obs-text (0x80-0xFF). Head (status line, fields and the
//                blank line) at most `maxHeadBytes`.
//   1xx          skipped (the handler never sees them); 101 is an error (we never ask to upgrade).
//   body         204/304: none. Transfer-Encoding with `chunked` last: chunked (strict hex sizes,
//                extensions ignored, trailers read and dropped). Other Transfer-Encoding: until close.
//                Content-Length: exactly that many bytes. Neither: until close.
//   errors       Content-Length together with Transfer-Encoding, a Content-Length that is not 1*DIGIT,
//                several differing Content-Length values, `chunked` not last or twice.
import type { HeaderMap } from '../types.js';

/** Set on a parsed header map when the response had Set-Cookie: every value, unjoined. */
export const SET_COOKIES: unique symbol = Symbol('set-cookie values');

export interface ParserHandler {
  /** the final (non-1xx) head; return false to stop `execute` where it is */
  onResponseHead(status: number, headers: HeaderMap): boolean;
  /** a piece of the body (a view into the chunk given to `execute`); return false to stop */
  onResponseBody(chunk: Buffer): boolean;
}

// Parser states.
export const S_HEAD = 0;
export const S_BODY_LENGTH = 1;
export const S_BODY_CLOSE = 2;
const S_CHUNK_SIZE = 3;
const S_CHUNK_BWS = 4;
const S_CHUNK_EXT = 5;
const S_CHUNK_SIZE_LF = 6;
const S_CHUNK_DATA = 7;
const S_CHUNK_DATA_CR = 8;
const S_CHUNK_DATA_LF = 9;
const S_TRAILER_START = 10;
const S_TRAILER_LINE = 11;
const S_TRAILER_LF = 12;
const S_TRAILER_END_LF = 13;
export const S_DONE = 14;
export const S_ERROR = 15;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const SEMI = 0x3b;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

export const DEFAULT_MAX_HEAD_BYTES = 64 * 1024;
/** longest chunk-size line extension we read through before calling it an attack */
const MAX_CHUNK_EXT_BYTES = 16 * 1024;
/** 13 hex digits: sizes stay below 2^52, exact in a double */
const MAX_CHUNK_SIZE_DIGITS = 13;
/** 15 decimal digits: below 2^53 */
const MAX_LENGTH_DIGITS = 15;

/** tchar (RFC 9110 §5.6.2) */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

/** hex digit value + 1 (0 = not a hex digit) */
const HEX = new Uint8Array(256);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c + 1;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = c + 11;
  HEX[0x61 + c] = c + 11;
}

/**
 * Names nearly every response carries, by length: matched in place (ASCII case-folded) so the
 * common fields cost no string copy, no case fold and no interning per response.
 */
const KNOWN_NAMES: string[][] = [];
for (const n of ['date', 'server', 'connection', 'keep-alive', 'uwebsockets', 'content-type', 'cache-control', 'content-length', 'mcp-session-id', 'transfer-encoding', 'x-powered-by', 'vary', 'etag']) {
  (KNOWN_NAMES[n.length] ??= []).push(n);
}

/** buf[s, e) as one of KNOWN_NAMES, any case; undefined when it is none of them */
function knownName(buf: Buffer, s: number, e: number): string | undefined {
  const candidates = KNOWN_NAMES[e - s];
  if (candidates === undefined) return undefined;
  next: for (let k = 0; k < candidates.length; k++) {
    const n = candidates[k]!;
    // Token bytes only reach here; OR 0x20 folds A-Z and leaves '-' and digits as they are.
    for (let j = 0; j < n.length; j++) if ((buf[s + j]! | 0x20) !== n.charCodeAt(j)) continue next;
    return n;
  }
  return undefined;
}

/** a field-value byte: HTAB, SP..~, obs-text */
const isValueByte = (c: number): boolean => c === HTAB || (c >= SP && c !== 0x7f);

export class ResponseParser {
  state: number = S_HEAD;
  /** status of the final head (0 until then) */
  status = 0;
  /** after the head: whether the connection may carry another request once this response is read */
  keepAlive = false;
  /** the server's `Keep-Alive: timeout=N` in ms, or -1 when it sent none */
  keepAliveHintMs = -1;
  /** when state is S_ERROR: an llhttp-style code and a message */
  errorCode = '';
  error = '';

  private readonly handler: ParserHandler;
  private readonly maxHeadBytes: number;
  /** a head split across reads is gathered here (grown on demand, kept for reuse) */
  private headBuf: Buffer | null = null;
  private headLen = 0;
  /** bytes left in a Content-Length body or the current chunk */
  private remaining = 0;
  private sizeDigits = 0;
  private extBytes = 0;
  private trailerBytes = 0;

  // per-head scratch filled by parseHead
  private minor = 1;
  private hasLength = false;
  private length = 0;
  private hasTe = false;
  private chunked = false;
  private connClose = false;
  private connKeepAlive = false;

  constructor(handler: ParserHandler, maxHeadBytes = DEFAULT_MAX_HEAD_BYTES) {
    this.handler = handler;
    this.maxHeadBytes = maxHeadBytes;
  }

  /** ready for the next response on the same connection */
  reset(): void {
    this.state = S_HEAD;
    this.status = 0;
    this.keepAlive = false;
    this.keepAliveHintMs = -1;
    this.headLen = 0;
    this.remaining = 0;
    this.errorCode = '';
    this.error = '';
  }

  /**
   * The connection reached EOF. Returns true when that completes the response (a body delimited by
   * the close); otherwise the response was cut short and the state is unchanged.
   */
  finish(): boolean {
    if (this.state === S_BODY_CLOSE) {
      this.state = S_DONE;
      return true;
    }
    return this.state === S_DONE;
  }

  /**
   * Parses buf[pos, end). Returns where it stopped: at `end`, right after the response completed
   * (state S_DONE; anything after it is not part of this response), where a handler returned false,
   * or at an error (state S_ERROR).
   */
  execute(buf: Buffer, pos: number, end: number): number {
    while (pos < end) {
      switch (this.state) {
        case S_HEAD: {
          const r = this.readHead(buf, pos, end);
          if (r < 0) return -r - 1; // head delivered; the handler asked to stop
          pos = r;
          const st = this.state as number; // readHead moved it on
          if (st === S_ERROR || st === S_DONE) return pos;
          continue; // a body, a 1xx that was skipped, or an incomplete head (pos === end)
        }
        case S_BODY_LENGTH: {
          const avail = end - pos;
          const n = avail < this.remaining ? avail : this.remaining;
          this.remaining -= n;
          if (this.remaining === 0) this.state = S_DONE;
          const chunk = n === buf.length ? buf : buf.subarray(pos, pos + n);
          pos += n;
          if (!this.handler.onResponseBody(chunk) || this.state === S_DONE) return pos;
          continue;
        }
        case S_BODY_CLOSE: {
          const chunk = pos === 0 && end === buf.length ? buf : buf.subarray(pos, end);
          this.handler.onResponseBody(chunk);
          return end;
        }
        case S_CHUNK_DATA: {
          const avail = end - pos;
          const n = avail < this.remaining ? avail : this.remaining;
          this.remaining -= n;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_CR;
          const chunk = buf.subarray(pos, pos + n);
          pos += n;
          if (!this.handler.onResponseBody(chunk)) return pos;
          continue;
        }
        case S_DONE:
        case S_ERROR:
          return pos;
        default:
          pos = this.chunkFraming(buf, pos, end);
      }
    }
    return pos;
  }

  /** chunk sizes, extensions, the CRLF after data and trailers: byte by byte (they are short) */
  private chunkFraming(buf: Buffer, pos: number, end: number): number {
    while (pos < end) {
      const c = buf[pos]!;
      switch (this.state) {
        case S_CHUNK_SIZE: {
          const h = HEX[c]!;
          if (h !== 0) {
            if (++this.sizeDigits > MAX_CHUNK_SIZE_DIGITS) return this.fail(pos, 'HPE_INVALID_CHUNK_SIZE', 'chunk size too large');
            this.remaining = this.remaining * 16 + (h - 1);
            pos++;
            continue;
          }
          if (this.sizeDigits === 0) return this.fail(pos, 'HPE_INVALID_CHUNK_SIZE', 'invalid chunk size');
          if (c === CR) this.state = S_CHUNK_SIZE_LF;
          else if (c === SEMI) this.state = S_CHUNK_EXT;
          else if (c === SP || c === HTAB) this.state = S_CHUNK_BWS;
          else return this.fail(pos, 'HPE_INVALID_CHUNK_SIZE', 'invalid chunk size');
          pos++;
          continue;
        }
        case S_CHUNK_BWS:
          if (c === SP || c === HTAB) pos++;
          else if (c === SEMI) (this.state = S_CHUNK_EXT), pos++;
          else if (c === CR) (this.state = S_CHUNK_SIZE_LF), pos++;
          else return this.fail(pos, 'HPE_INVALID_CHUNK_SIZE', 'invalid chunk size');
          continue;
        case S_CHUNK_EXT:
          if (c === CR) this.state = S_CHUNK_SIZE_LF;
          else if (!isValueByte(c)) return this.fail(pos, 'HPE_INVALID_CHUNK_EXTENSIONS', 'invalid chunk extension');
          else if (++this.extBytes > MAX_CHUNK_EXT_BYTES) return this.fail(pos, 'HPE_CHUNK_EXTENSIONS_OVERFLOW', 'chunk extension too long');
          pos++;
          continue;
        case S_CHUNK_SIZE_LF:
          if (c !== LF) return this.fail(pos, 'HPE_STRICT', 'expected LF after chunk size');
          pos++;
          if (this.remaining === 0) {
            this.state = S_TRAILER_START;
            this.trailerBytes = 0;
            continue;
          }
          this.state = S_CHUNK_DATA;
          return pos;
        case S_CHUNK_DATA_CR:
          if (c !== CR) return this.fail(pos, 'HPE_STRICT', 'expected CRLF after chunk data');
          this.state = S_CHUNK_DATA_LF;
          pos++;
          continue;
        case S_CHUNK_DATA_LF:
          if (c !== LF) return this.fail(pos, 'HPE_STRICT', 'expected CRLF after chunk data');
          this.state = S_CHUNK_SIZE;
          this.sizeDigits = 0;
          this.extBytes = 0;
          this.remaining = 0;
          pos++;
          continue;
        case S_TRAILER_START:
          if (c === CR) {
            this.state = S_TRAILER_END_LF;
            pos++;
            continue;
          }
          if (TOKEN[c] !== 1) return this.fail(pos, 'HPE_INVALID_HEADER_TOKEN', 'invalid trailer field');
          this.state = S_TRAILER_LINE;
          continue;
        case S_TRAILER_LINE:
          if (c === CR) this.state = S_TRAILER_LF;
          else if (!isValueByte(c)) return this.fail(pos, 'HPE_INVALID_HEADER_TOKEN', 'invalid trailer field');
          if (++this.trailerBytes > this.maxHeadBytes) return this.fail(pos, 'HPE_HEADER_OVERFLOW', 'trailers too large');
          pos++;
          continue;
        case S_TRAILER_LF:
          if (c !== LF) return this.fail(pos, 'HPE_STRICT', 'expected LF in trailers');
          this.state = S_TRAILER_START;
          pos++;
          continue;
        case S_TRAILER_END_LF:
          if (c !== LF) return this.fail(pos, 'HPE_STRICT', 'expected LF after trailers');
          this.state = S_DONE;
          return pos + 1;
        default:
          return pos;
      }
    }
    return pos;
  }

  private fail(pos: number, code: string, message: string): number {
    this.state = S_ERROR;
    this.errorCode = code;
    this.error = message;
    return pos;
  }

  /**
   * Reads (part of) a head from buf[pos, end). Returns the position after it; a negative value
   * -(pos + 1) means the head was delivered and the handler asked to stop there.
   */
  private readHead(buf: Buffer, pos: number, end: number): number {
    const max = this.maxHeadBytes;
    if (this.headLen === 0) {
      // Fast path: the whole head is in this read.
      const i = buf.indexOf(HEAD_END, pos);
      if (i !== -1 && i + 4 <= end) {
        const stop = i + 4;
        if (stop - pos > max) return this.fail(pos, 'HPE_HEADER_OVERFLOW', 'response head too large');
        return this.onHead(buf, pos, stop);
      }
    }
    // Slow path: gather the head across reads.
    const prev = this.headLen;
    const room = max + 4 - prev; // enough to see a terminator that ends exactly at the limit
    const n = Math.min(end - pos, room);
    let hb = this.headBuf;
    if (hb === null || hb.length < prev + n) {
      const grown = Buffer.allocUnsafe(Math.min(max + 4, Math.max(1024, (prev + n) * 2)));
      if (hb !== null && prev > 0) hb.copy(grown, 0, 0, prev);
      this.headBuf = hb = grown;
    }
    buf.copy(hb, prev, pos, pos + n);
    this.headLen = prev + n;
    const from = prev > 3 ? prev - 3 : 0;
    const i = hb.subarray(0, this.headLen).indexOf(HEAD_END, from);
    if (i === -1) {
      if (this.headLen > max) return this.fail(pos, 'HPE_HEADER_OVERFLOW', 'response head too large');
      return pos + n;
    }
    const stop = i + 4;
    if (stop > max) return this.fail(pos, 'HPE_HEADER_OVERFLOW', 'response head too large');
    const consumed = stop - prev; // bytes of this read that belong to the head
    this.headLen = 0;
    const r = this.onHead(hb, 0, stop);
    if (this.state === S_ERROR) return pos;
    return r < 0 ? -(pos + consumed) - 1 : pos + consumed;
  }

  /** buf[s, e) is a complete head ending in CRLFCRLF. Returns e (or -(e+1) when the handler said stop). */
  private onHead(buf: Buffer, s: number, e: number): number {
    const headers = this.parseHead(buf, s, e);
    if (headers === null) return s; // state is S_ERROR
    const status = this.status;
    if (status < 200) {
      if (status === 101) return this.fail(s, 'HPE_INVALID_STATUS', 'unexpected 101 Switching Protocols');
      this.status = 0;
      return e; // informational: skip, the final head follows
    }
    // Framing (RFC 9112 §6.3).
    if (this.hasTe && this.hasLength) return this.fail(s, 'HPE_UNEXPECTED_CONTENT_LENGTH', 'both content-length and transfer-encoding');
    let keepAlive = this.minor === 1 ? !this.connClose : this.connKeepAlive && !this.connClose;
    if (status === 204 || status === 304) this.state = S_DONE;
    else if (this.hasTe) {
      if (this.chunked) {
        this.state = S_CHUNK_SIZE;
        this.sizeDigits = 0;
        this.extBytes = 0;
        this.remaining = 0;
      } else {
        this.state = S_BODY_CLOSE;
        keepAlive = false;
      }
    } else if (this.hasLength) {
      this.remaining = this.length;
      this.state = this.length === 0 ? S_DONE : S_BODY_LENGTH;
    } else {
      this.state = S_BODY_CLOSE;
      keepAlive = false;
    }
    this.keepAlive = keepAlive;
    return this.handler.onResponseHead(status, headers) ? e : -e - 1;
  }

  /** Parses status line and fields of buf[s, e); null on error (state S_ERROR). */
  private parseHead(buf: Buffer, s: number, e: number): HeaderMap | null {
    // status line: HTTP/1.x SP DDD [SP reason] CRLF
    if (
      e - s < 16 ||
      buf[s] !== 0x48 || buf[s + 1] !== 0x54 || buf[s + 2] !== 0x54 || buf[s + 3] !== 0x50 ||
      buf[s + 4] !== 0x2f || buf[s + 5] !== 0x31 || buf[s + 6] !== 0x2e ||
      (buf[s + 7] !== 0x30 && buf[s + 7] !== 0x31) || buf[s + 8] !== SP
    ) {
      this.fail(s, 'HPE_INVALID_CONSTANT', 'invalid status line');
      return null;
    }
    this.minor = buf[s + 7]! - 0x30;
    const d1 = buf[s + 9]! - 0x30;
    const d2 = buf[s + 10]! - 0x30;
    const d3 = buf[s + 11]! - 0x30;
    if (d1 < 1 || d1 > 9 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) {
      this.fail(s, 'HPE_INVALID_STATUS', 'invalid status code');
      return null;
    }
    this.status = d1 * 100 + d2 * 10 + d3;
    let i = s + 12;
    let c = buf[i]!;
    if (c === SP) {
      for (i++; (c = buf[i]!) !== CR; i++) {
        if (!isValueByte(c)) {
          this.fail(s, 'HPE_INVALID_STATUS', 'invalid reason phrase');
          return null;
        }
      }
    }
    if (c !== CR || buf[i + 1] !== LF) {
      this.fail(s, 'HPE_INVALID_STATUS', 'invalid status line');
      return null;
    }
    i += 2;

    this.hasLength = false;
    this.length = 0;
    this.hasTe = false;
    this.chunked = false;
    this.connClose = false;
    this.connKeepAlive = false;
    let hint = -1;
    let cookies: string[] | null = null;
    const out: HeaderMap = {};
    const last = e - 2; // the blank line
    while (i < last) {
      // field-name ":" OWS field-value OWS CRLF
      const ns = i;
      let upper = false;
      while ((c = buf[i]!) !== COLON) {
        if (TOKEN[c] !== 1) {
          this.fail(s, 'HPE_INVALID_HEADER_TOKEN', c === SP || c === HTAB ? (i === ns ? 'obsolete line folding' : 'space before colon') : 'invalid header name');
          return null;
        }
        if (c <= 0x5a && c >= 0x41) upper = true;
        i++;
      }
      if (i === ns) {
        this.fail(s, 'HPE_INVALID_HEADER_TOKEN', 'empty header name');
        return null;
      }
      const ne = i++;
      while ((c = buf[i]!) === SP || c === HTAB) i++;
      const vs = i;
      let high = false;
      while ((c = buf[i]!) !== CR) {
        if (c < SP ? c !== HTAB : c >= 0x7f) {
          if (c === 0x7f || c < 0x80) {
            this.fail(s, 'HPE_INVALID_HEADER_TOKEN', 'invalid header value');
            return null;
          }
          high = true;
        }
        i++;
      }
      if (buf[i + 1] !== LF) {
        this.fail(s, 'HPE_STRICT', 'expected LF after CR');
        return null;
      }
      let ve = i;
      while (ve > vs && ((c = buf[ve - 1]!) === SP || c === HTAB)) ve--;
      i += 2;

      let name = knownName(buf, ns, ne);
      if (name === undefined) {
        name = buf.toString('latin1', ns, ne);
        if (upper) name = name.toLowerCase();
      }
      const value = ve === vs ? '' : buf.toString(high ? 'utf8' : 'latin1', vs, ve);

      switch (name.length) {
        case 10:
          if (name === 'connection') this.connectionTokens(value);
          else if (name === 'keep-alive') hint = keepAliveTimeout(value, hint);
          else if (name === 'set-cookie') (cookies ??= []).push(value);
          break;
        case 14:
          if (name === 'content-length') {
            const n = parseLength(value);
            if (n < 0) {
              this.fail(s, 'HPE_INVALID_CONTENT_LENGTH', 'invalid content-length');
              return null;
            }
            if (this.hasLength && n !== this.length) {
              this.fail(s, 'HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting content-length values');
              return null;
            }
            this.hasLength = true;
            this.length = n;
          }
          break;
        case 17:
          if (name === 'transfer-encoding' && !this.transferCodings(value)) {
            this.fail(s, 'HPE_INVALID_TRANSFER_ENCODING', 'invalid transfer-encoding');
            return null;
          }
          break;
      }

      const prev = out[name];
      if (typeof prev === 'string') out[name] = prev + ', ' + value;
      else if (name === '__proto__') Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
      else out[name] = value;
    }
    if (cookies !== null) Object.defineProperty(out, SET_COOKIES, { value: cookies, enumerable: false });
    this.keepAliveHintMs = hint;
    return out;
  }

  private connectionTokens(value: string): void {
    for (const raw of value.split(',')) {
      const t = raw.trim().toLowerCase();
      if (t === 'close') this.connClose = true;
      else if (t === 'keep-alive') this.connKeepAlive = true;
    }
  }

  /** one Transfer-Encoding field line; false when invalid (chunked not last, twice, empty codings) */
  private transferCodings(value: string): boolean {
    const parts = value.split(',');
    for (let k = 0; k < parts.length; k++) {
      const t = parts[k]!.trim().toLowerCase();
      if (t === '') return false;
      if (this.chunked) return false; // anything after chunked (in this or an earlier line)
      if (t === 'chunked') this.chunked = true;
    }
    this.hasTe = true;
    return true;
  }
}

/** 1*DIGIT, at most 15 digits; -1 when invalid */
function parseLength(v: string): number {
  const len = v.length;
  if (len === 0 || len > MAX_LENGTH_DIGITS) return -1;
  let n = 0;
  for (let k = 0; k < len; k++) {
    const d = v.charCodeAt(k) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** `timeout=N` (seconds) from a Keep-Alive value, in ms; `prev` when absent */
function keepAliveTimeout(v: string, prev: number): number {
  const m = /(?:^|[,;\s])timeout\s*=\s*"?(\d{1,9})/i.exec(v);
  return m ? Number(m[1]) * 1000 : prev;
}
