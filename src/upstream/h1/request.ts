// Request serialisation for the lean upstream client: head and body in one buffer (one write, one
// syscall) for ordinary bodies; head and body as two buffers written corked (one writev) when the
// body is large enough that copying it would cost more than the extra iovec.
import type { UpstreamRequest } from '../types.js';

/** Bodies up to this size are copied behind the head into one buffer. */
export const COPY_BODY_MAX = 32 * 1024;

/** tchar+ (RFC 9110 §5.6.2) */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** anything but HTAB, SP..~ and obs-text: CR, LF, NUL and the other controls, DEL, chars > 0xFF */
const BAD_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;

/** Headers this client writes itself, or that must never be forwarded on a keep-alive connection. */
const OWN_HEADERS = new Set([
  'host', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-connection', 'expect',
]);

export class RequestHeaderError extends Error {
  readonly code = 'UND_ERR_INVALID_ARG';
}

export interface SerialisedRequest {
  /** the head, and the body too when `body` is null */
  head: Buffer;
  /** a large body written after `head` in the same corked write */
  body: Buffer | null;
}

/** header names whose verdict is remembered (a client cannot grow it past this) */
const MAX_KNOWN_NAMES = 256;

export class RequestWriter {
  /** `METHOD path HTTP/1.1\r\nhost: h\r\nconnection: keep-alive\r\n` for each method */
  private readonly prefix: Record<string, string> = {};
  /** valid header names seen before → whether they are forwarded (not one of OWN_HEADERS) */
  private readonly knownNames = new Map<string, boolean>();
  private readonly path: string;
  private readonly host: string;

  constructor(path: string, host: string) {
    if (!/^\/[\x21-\x7e]*$/.test(path)) throw new RequestHeaderError(`invalid request path ${JSON.stringify(path)}`);
    if (BAD_VALUE_RE.test(host)) throw new RequestHeaderError('invalid host');
    this.path = path;
    this.host = host;
    for (const m of ['POST', 'GET', 'DELETE']) this.prefix[m] = this.prefixFor(m);
  }

  private prefixFor(method: string): string {
    return `${method} ${this.path} HTTP/1.1\r\nhost: ${this.host}\r\nconnection: keep-alive\r\n`;
  }

  /** Serialises `req` into `out`. Throws RequestHeaderError for a method, header name or value that could split the request. */
  build(req: UpstreamRequest, out: SerialisedRequest): void {
    let head = this.prefix[req.method];
    if (head === undefined) {
      if (!TOKEN_RE.test(req.method)) throw new RequestHeaderError('invalid method');
      head = this.prefixFor(req.method);
    }
    const headers = req.headers;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      // The same few names come with every request: check each once (its regex and case fold).
      let forward = this.knownNames.get(name);
      if (forward === undefined) {
        if (!TOKEN_RE.test(name)) throw new RequestHeaderError(`invalid header name ${JSON.stringify(name)}`);
        forward = !OWN_HEADERS.has(name.toLowerCase());
        if (this.knownNames.size < MAX_KNOWN_NAMES) this.knownNames.set(name, forward);
      }
      if (typeof value !== 'string' || BAD_VALUE_RE.test(value)) throw new RequestHeaderError(`invalid value for header '${name}'`);
      if (!forward) continue;
      head += name + ': ' + value + '\r\n';
    }
    const body = req.body;
    const bodyLength = body === undefined ? 0 : body.length;
    if (body !== undefined || req.method === 'POST') head += 'content-length: ' + bodyLength + '\r\n';
    head += '\r\n';
    // Every char is <= 0xFF (checked above), so the latin1 length is the byte length.
    const headLength = head.length;
    if (bodyLength > COPY_BODY_MAX) {
      out.head = Buffer.from(head, 'latin1');
      out.body = body!;
      return;
    }
    const buf = Buffer.allocUnsafe(headLength + bodyLength);
    buf.write(head, 0, headLength, 'latin1');
    if (bodyLength > 0) body!.copy(buf, headLength);
    out.head = buf;
    out.body = null;
  }
}
