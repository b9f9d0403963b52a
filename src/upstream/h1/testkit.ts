// Test helpers for the lean HTTP/1.1 client: a raw TCP server that reads requests and lets a test
// write any bytes back (malformed, split, reset), and sinks that record what a client delivered.
import net from 'node:net';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import type { GovError } from '../../core/errors.js';
import type { HeaderMap, ResponseSink, Upstream, UpstreamRequest } from '../types.js';

export interface RawRequest {
  method: string;
  path: string;
  /** lower-cased names; repeated ones joined with ', ' */
  headers: Record<string, string>;
  body: Buffer;
  /** the request's bytes exactly as received */
  raw: Buffer;
  /** 0-based index of this request on its connection */
  indexOnConnection: number;
  /** 0-based index of the connection (in accept order) */
  connection: number;
}

export type RawHandler = (socket: net.Socket, req: RawRequest) => void | Promise<void>;

export interface RawServer {
  port: number;
  url: string;
  /** connections accepted so far */
  readonly connections: number;
  /** sockets currently open */
  readonly open: Set<net.Socket>;
  requests: RawRequest[];
  /** bytes received on connections that never formed a full request head */
  strayBytes: number;
  close(): Promise<void>;
}

/**
 * A TCP server that parses HTTP/1.1 requests (head + content-length body), one after another on
 * each connection, and hands each to `handler` with the socket to answer on (as raw bytes).
 */
export async function rawServer(handler: RawHandler): Promise<RawServer> {
  const open = new Set<net.Socket>();
  let connections = 0;
  const state: RawServer = {
    port: 0,
    url: '',
    get connections() {
      return connections;
    },
    open,
    requests: [],
    strayBytes: 0,
    close: async () => {
      for (const s of open) s.destroy();
      if (!server.listening) return; // closed already
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((socket) => {
    const connection = connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let index = 0;
    let busy = false;
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const headText = buf.subarray(0, end).toString('latin1');
          const [line, ...fields] = headText.split('\r\n');
          const [method = '', path = ''] = line!.split(' ');
          const headers: Record<string, string> = {};
          for (const f of fields) {
            const c = f.indexOf(':');
            const name = f.slice(0, c).trim().toLowerCase();
            const value = f.slice(c + 1).trim();
            headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
          }
          const length = Number(headers['content-length'] ?? 0);
          if (buf.length < end + 4 + length) return;
          const raw = buf.subarray(0, end + 4 + length);
          const body = buf.subarray(end + 4, end + 4 + length);
          buf = buf.subarray(end + 4 + length);
          const req: RawRequest = { method, path, headers, body, raw, indexOnConnection: index++, connection };
          state.requests.push(req);
          await handler(socket, req);
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      void pump().then(() => (buf.length > 0 && !busy ? pump() : undefined));
    });
    socket.on('end', () => {
      state.strayBytes += buf.length;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}/mcp`;
  return state;
}

/** A port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Outcome {
  status: number;
  headers: HeaderMap;
  body: Buffer;
  chunks: Buffer[];
  error: GovError | undefined;
  /** the order callbacks came in: 'head', 'data', 'end', 'error' */
  calls: string[];
}

/** Records everything; `onData` answers with `more(chunk, outcome)` (default: always true). */
export class RecordingSink implements ResponseSink {
  readonly outcome: Outcome = { status: 0, headers: {}, body: Buffer.alloc(0), chunks: [], error: undefined, calls: [] };
  resume?: () => void;
  abort?: () => void;
  readonly done: Promise<Outcome>;
  private settle!: (o: Outcome) => void;
  more: (chunk: Buffer, o: Outcome) => boolean = () => true;
  /** called on each callback, after it was recorded (a test hook) */
  onCall: (what: string, o: Outcome) => void = () => {};

  constructor() {
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  onHead(status: number, headers: HeaderMap): void {
    this.outcome.calls.push('head');
    this.outcome.status = status;
    this.outcome.headers = headers;
    this.onCall('head', this.outcome);
  }

  onData(chunk: Buffer): boolean {
    this.outcome.calls.push('data');
    // Kept as given (no copy), as the Relay keeps them: a client that reuses memory it handed
    // over would show up as corrupted bodies.
    this.outcome.chunks.push(chunk);
    const more = this.more(chunk, this.outcome);
    this.onCall('data', this.outcome);
    return more;
  }

  onEnd(): void {
    this.outcome.calls.push('end');
    this.finish();
    this.onCall('end', this.outcome);
  }

  onError(err: GovError): void {
    this.outcome.calls.push('error');
    this.outcome.error = err;
    this.finish();
    this.onCall('error', this.outcome);
  }

  private finish(): void {
    this.outcome.body = Buffer.concat(this.outcome.chunks);
    this.settle(this.outcome);
  }
}

export function request(init: Partial<UpstreamRequest> = {}): UpstreamRequest {
  const body = init.body ?? (init.method === undefined || init.method === 'POST' ? Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping"}') : undefined);
  return {
    method: init.method ?? 'POST',
    path: init.path ?? '/mcp',
    headers: init.headers ?? { 'content-type': 'application/json' },
    ...(body !== undefined ? { body } : {}),
    correlationId: init.correlationId ?? 'test',
  };
}

/** Sends one request and waits for its outcome. */
export function exchange(up: Upstream, init: Partial<UpstreamRequest> = {}, sink = new RecordingSink()): Promise<Outcome> {
  up.send(request(init), sink);
  return sink.done;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `cond` every few ms until it holds (tests assert order and outcome, not timing). */
export async function until(cond: () => boolean, what = 'condition', limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A complete response with a content-length body. */
export function respond(status: number, body: string | Buffer = '', headers: Record<string, string> = {}): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  let head = `HTTP/1.1 ${status} X\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${b.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

// ---- generated responses (parser property tests, differential test against undici) ----

const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&\'*+^`|~');
const headerName = fc.oneof(
  fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 }).map((s) => `x-${s}`),
  fc.constantFrom('Set-Cookie', 'set-cookie', 'X-Dup', 'x-dup', 'Content-Type', 'mcp-session-id', 'Cache-Control', 'Date'),
);
const headerValue = fc.string({ unit: fc.constantFrom(...' !"#abcXYZ019;=,:\t~'), maxLength: 20 }).map((s) => s.trim());

/** A valid response: any status/fields/body, framed by length, chunks (with extensions, trailers) or close. */
export const responseArb: fc.Arbitrary<GeneratedResponse> = fc.record({
  status: fc.constantFrom(200, 201, 202, 204, 304, 400, 404, 418, 500, 503),
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
  body: fc.uint8Array({ maxLength: 600 }),
  framing: fc.constantFrom('length' as const, 'chunked' as const, 'close' as const),
  chunkSizes: fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 8 }),
  extensions: fc.boolean(),
  trailers: fc.boolean(),
  interim: fc.boolean(),
  ows: fc.boolean(),
});

export type GeneratedResponse = {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  framing: 'length' | 'chunked' | 'close';
  chunkSizes: number[];
  extensions: boolean;
  trailers: boolean;
  interim: boolean;
  /** extra optional whitespace around field values on the wire */
  ows: boolean;
};

/** Wire bytes for a generated response. */
export function serialise(r: GeneratedResponse): Buffer {
  const parts: Buffer[] = [];
  let head = r.interim ? 'HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n' : '';
  head += `HTTP/1.1 ${r.status} Reason\r\n`;
  for (const [k, v] of r.headers) head += r.ows ? `${k}:\t ${v} \t\r\n` : `${k}: ${v}\r\n`;
  const body = Buffer.from(r.body);
  const noBody = r.status === 204 || r.status === 304;
  if (noBody) {
    parts.push(Buffer.from(head + '\r\n', 'latin1'));
    return Buffer.concat(parts);
  }
  if (r.framing === 'length') head += `Content-Length: ${body.length}\r\n\r\n`;
  else if (r.framing === 'chunked') head += 'Transfer-Encoding: chunked\r\n\r\n';
  else head += 'Connection: close\r\n\r\n';
  parts.push(Buffer.from(head, 'latin1'));
  if (r.framing !== 'chunked') {
    parts.push(body);
    return Buffer.concat(parts);
  }
  let at = 0;
  let k = 0;
  while (at < body.length) {
    const n = Math.min(r.chunkSizes[k++ % r.chunkSizes.length]!, body.length - at);
    parts.push(Buffer.from(`${n.toString(16)}${r.extensions ? ';ext=v' : ''}\r\n`, 'latin1'), body.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
  }
  parts.push(Buffer.from(`0\r\n${r.trailers ? 'x-checksum: abc\r\nx-more: 1\r\n' : ''}\r\n`, 'latin1'));
  return Buffer.concat(parts);
}

/** Splits `buf` at the given fractional positions. */
export function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * buf.length)))].filter((p) => p > 0 && p < buf.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

