// The traffic port: a uWS app that turns each HTTP request into an Exchange (method, path,
// headers, body) and hands it to one handler. The Exchange is the only way back to the client:
// one-shot `respond`, or `writeHead`/`write`/`end` for streams, with backpressure reported by
// `write` returning false and `onDrain` firing when the socket drained.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { createServer } from 'node:net';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { GovError, errorResponse } from '../core/errors.js';
import { DEFAULT_LIMITS } from '../core/limits.js';
import type { HeaderMap } from '../upstream/types.js';
import { reportInternal } from './contain.js';
import { loadUws, type UwsChoice } from './uws.js';

export type TrafficHandler = (ex: Exchange) => void;

export interface TrafficServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  /**
   * How much of a body over `maxBodyBytes` is read and thrown away so that the client, still
   * sending, gets the 413 instead of a reset. Past it the answer goes out and the connection is
   * closed (the client may then see a reset: it was sending far more than allowed).
   */
  maxDrainBytes?: number;
  /** which uWS build to use (THOUGHTGATE_UWS_BUILD): the first that loads by default */
  uwsBuild?: UwsChoice;
  handler: TrafficHandler;
}

export interface TrafficServer {
  port: number;
  /** stop accepting new connections (in-flight exchanges go on) */
  stopListening(): void;
  /** exchanges in flight */
  inFlight(): number;
}

const statusLines: string[] = [];
function statusLine(status: number): string {
  return (statusLines[status] ??= `${status} ${STATUS_CODES[status] ?? 'Unknown'}`);
}

let active = 0;

/** default for `maxDrainBytes` (THOUGHTGATE_MAX_BODY_DRAIN_BYTES) */
export const DEFAULT_DRAIN_BYTES = DEFAULT_LIMITS.maxDrainBytes;

export class Exchange {
  readonly method: string;
  readonly path: string;
  readonly headers: HeaderMap;
  body: Buffer | null = null;
  /** the body was larger than allowed (and is not kept) */
  overLimit = false;
  /**
   * Part of the request body was never read (over the drain limit): any answer closes the
   * connection, since the unread bytes would otherwise be parsed as the next request.
   */
  bodyUnread = false;
  /**
   * CORS headers for an Origin the origin policy allowed (set by the pipeline,
   * session/origin.ts): added to any answer that carries no CORS headers of its own, so a
   * browser page on that origin may read it (and its Mcp-Session-Id).
   */
  cors: HeaderMap | undefined = undefined;
  aborted = false;
  finished = false;
  private headWritten = false;
  onDrain: (() => void) | null = null;
  onAbort: (() => void) | null = null;
  private readonly res: HttpResponse;

  constructor(res: HttpResponse, method: string, path: string, headers: HeaderMap) {
    this.res = res;
    this.method = method;
    this.path = path;
    this.headers = headers;
  }

  /** Answer in one write: status, headers and the whole body. */
  respond(status: number, headers: HeaderMap | null, body: string | Buffer, closeConnection = false): void {
    if (this.aborted || this.finished) return;
    this.finished = true;
    active--;
    const res = this.res;
    if (this.cors !== undefined) headers = withCors(headers ?? {}, this.cors);
    const close = closeConnection || this.bodyUnread;
    res.cork(() => {
      res.writeStatus(statusLine(status));
      if (headers !== null) for (const name in headers) res.writeHeader(name, headers[name]!);
      // A 204 must carry no Content-Length (RFC 9110 §8.6), which end() writes. endWithoutBody
      // cannot also close (its first argument would be taken as a length); a closing 204 keeps
      // end()'s "Content-Length: 0", harmless on a connection that ends.
      if (status === 204 && !close) res.endWithoutBody();
      else res.end(body, close);
    });
  }

  writeHead(status: number, headers: HeaderMap): void {
    if (this.aborted || this.finished || this.headWritten) return;
    this.headWritten = true;
    const res = this.res;
    if (this.cors !== undefined) headers = withCors(headers, this.cors);
    res.cork(() => {
      res.writeStatus(statusLine(status));
      for (const name in headers) res.writeHeader(name, headers[name]!);
    });
  }

  /** Stream a chunk; false means the client is not keeping up (wait for onDrain). */
  write(chunk: Buffer | string): boolean {
    if (this.aborted || this.finished) return true;
    let ok = true;
    const res = this.res;
    res.cork(() => {
      ok = res.write(chunk);
    });
    if (!ok) res.onWritable(this.drained);
    return ok;
  }

  end(chunk?: Buffer | string): void {
    if (this.aborted || this.finished) return;
    this.finished = true;
    active--;
    const res = this.res;
    res.cork(() => {
      res.end(chunk ?? '');
    });
  }

  /** Drop the connection (an error after the head was sent has no other way to show). */
  close(): void {
    if (this.aborted || this.finished) return;
    this.finished = true;
    active--;
    this.res.close();
  }

  get headSent(): boolean {
    return this.headWritten;
  }

  private peer: string | undefined;

  /**
   * The TCP peer's address as uWS prints it ('127.0.0.1', or all eight IPv6 groups:
   * '0000:…:0001', IPv4 on a dual-stack socket as '0000:…:ffff:7f00:0001'). Computed on first
   * use only (the proxy path never asks); '' once the exchange is over, when uWS's response
   * object may no longer be touched. Forwarding headers are not consulted: they are the
   * client's word.
   */
  get remoteAddress(): string {
    if (this.peer !== undefined) return this.peer;
    if (this.aborted || this.finished) return '';
    this.peer = Buffer.from(this.res.getRemoteAddressAsText()).toString('latin1');
    return this.peer;
  }

  private readonly drained = (): boolean => {
    this.onDrain?.();
    return true;
  };

  /** @internal */
  _aborted(): void {
    if (this.finished) return;
    this.aborted = true;
    this.finished = true;
    active--;
    this.onAbort?.();
  }
}

function readHeaders(req: HttpRequest): HeaderMap {
  const headers: HeaderMap = {};
  req.forEach((name, value) => {
    const prev = headers[name];
    headers[name] = prev === undefined ? value : `${prev}, ${value}`;
  });
  return headers;
}

/**
 * The backstop of the containment: uWS calls these callbacks from native code, where an
 * exception would end the process. The pipeline contains (and counts) its own failures; what
 * still arrives here is answered -32603 and logged, and the process lives on. A try/catch
 * costs nothing in V8 until something throws.
 */
function contained(ex: Exchange | undefined, e: unknown, res: HttpResponse): void {
  const correlationId = randomUUID();
  reportInternal(e, correlationId, 'traffic port');
  try {
    const err = new GovError('internal_error', { subject: correlationId });
    if (ex === undefined) {
      res.cork(() => res.writeStatus(statusLine(500)).writeHeader('content-type', 'application/json').end(errorResponse(null, err, correlationId)));
    } else if (!ex.finished) {
      if (ex.headSent) ex.close();
      else ex.respond(500, { 'content-type': 'application/json' }, errorResponse(null, err, correlationId));
    }
  } catch (again) {
    reportInternal(again, correlationId, 'traffic port (while answering an internal error)');
  }
}

function onRequest(res: HttpResponse, req: HttpRequest, opts: TrafficServerOptions): void {
  let ex: Exchange | undefined;
  try {
    // uWS's req is only valid synchronously: copy everything before returning.
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const query = req.getQuery();
    const path = query ? `${req.getUrl()}?${query}` : req.getUrl();
    ex = new Exchange(res, method, path, readHeaders(req));
    active++;
    const exchange = ex;
    res.onAborted(() => exchange._aborted());
    start(res, ex, opts);
  } catch (e) {
    contained(ex, e, res);
  }
}

/**
 * Reads a POST body, then hands the exchange on. A body over the limit is not kept but still
 * read to its end (up to `maxDrainBytes` past the limit) before the handler answers 413: a
 * server that answers and closes while the client is still sending makes the client's kernel
 * see a reset, and clients then report "fetch failed" or a dead session instead of the answer.
 */
function start(res: HttpResponse, ex: Exchange, opts: TrafficServerOptions): void {
  const method = ex.method;
  if (method !== 'POST') {
    opts.handler(ex);
    return;
  }
  const max = opts.maxBodyBytes;
  const drainUpTo = max + (opts.maxDrainBytes ?? DEFAULT_DRAIN_BYTES);
  const declared = Number(ex.headers['content-length']);
  if (declared > max) {
    ex.overLimit = true;
    if (declared > drainUpTo) {
      // More than we are willing to read: answer now, and close (bodyUnread).
      ex.bodyUnread = true;
      opts.handler(ex);
      return;
    }
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.onData((ab, isLast) => {
    // called from native code: an exception here would end the process
    try {
      if (ex.finished) return;
      size += ab.byteLength;
      if (size > max && !ex.overLimit) {
        ex.overLimit = true;
        chunks.length = 0;
      }
      if (ex.overLimit) {
        if (isLast) opts.handler(ex);
        else if (size > drainUpTo) {
          // A body without a Content-Length (chunked) that goes on far past the limit.
          ex.bodyUnread = true;
          opts.handler(ex);
        }
        return;
      }
      // uWS neuters the ArrayBuffer after this callback returns: copy, even the last chunk.
      chunks.push(Buffer.from(new Uint8Array(ab).slice()));
      if (isLast) {
        ex.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        opts.handler(ex);
      }
    } catch (e) {
      contained(ex, e, res);
    }
  });
}

/**
 * uWS listens with SO_REUSEPORT, so a second process on the same port would silently share
 * its traffic. A plain bind first turns that into the error an operator expects.
 */
function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'port already in use' : err.message}`)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

export async function startTrafficServer(opts: TrafficServerOptions): Promise<TrafficServer> {
  const uws = loadUws(opts.uwsBuild);
  await assertPortFree(opts.host, opts.port);
  const app: TemplatedApp = uws.App();
  app.any('/*', (res, req) => onRequest(res, req, opts));
  return new Promise((resolve, reject) => {
    app.listen(opts.host, opts.port, (socket: us_listen_socket | false) => {
      if (!socket) {
        reject(new Error(`cannot listen on ${opts.host}:${opts.port} (port in use or not permitted)`));
        return;
      }
      resolve({
        port: uws.us_socket_local_port(socket as unknown as Parameters<Uws['us_socket_local_port']>[0]),
        stopListening: () => uws.us_listen_socket_close(socket),
        inFlight: () => active,
      });
    });
  });
}

type Uws = ReturnType<typeof loadUws>;

/**
 * CORS headers for an answer to a request from an allowed Origin, unless the answer already
 * carries its own (an upstream's CORS headers are relayed as it sent them).
 */
function withCors(headers: HeaderMap, cors: HeaderMap): HeaderMap {
  if (headers['access-control-allow-origin'] !== undefined) return headers;
  const out = { ...headers, ...cors };
  const vary = headers['vary'];
  if (vary !== undefined && cors['vary'] !== undefined) out['vary'] = `${vary}, ${cors['vary']}`;
  return out;
}
