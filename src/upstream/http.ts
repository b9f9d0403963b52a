// Streamable HTTP upstream: an undici Pool to the source's `url`. Every traffic-port path goes
// to the source URL's own path (one source per sidecar). The response streams back chunk by
// chunk through the sink, with pause/resume carrying the client's backpressure upstream.
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { GovError } from '../core/errors.js';
import type { HeaderMap, ResponseSink, Upstream, UpstreamHealth, UpstreamRequest } from './types.js';
import { Reachability, UNREACHABLE_CODES } from './h1/probe.js';
import { StreamShare, defaultStreamShare } from './h1/stream-share.js';

export interface HttpUpstreamOptions {
  url: string;
  /** time to the response head */
  requestTimeoutMs: number;
  /** longest silence inside a streaming body */
  streamReadTimeoutMs: number;
  connections: number;
  /** most connections GET streams may hold (default half of `connections`); more are refused (429) */
  streamConnections?: number;
}

export class HttpUpstream implements Upstream {
  readonly target: string;
  private readonly pool: Pool;
  private readonly path: string;
  private readonly opts: HttpUpstreamOptions;
  /** connect failures and a periodic TCP probe: what /ready reports */
  private readonly reachability: Reachability;
  private readonly streams: StreamShare;

  constructor(opts: HttpUpstreamOptions) {
    const url = new URL(opts.url);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.reachability = new Reachability(host, url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port));
    this.target = url.origin;
    this.path = url.pathname + url.search;
    this.opts = opts;
    this.streams = new StreamShare(opts.streamConnections !== undefined && opts.streamConnections >= 1 ? Math.min(Math.floor(opts.streamConnections), opts.connections) : defaultStreamShare(opts.connections));
    this.pool = new Pool(url.origin, {
      connections: opts.connections,
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.streamReadTimeoutMs,
      keepAliveTimeout: 30_000,
      connect: { timeout: Math.min(5000, opts.requestTimeoutMs) },
    });
  }

  send(req: UpstreamRequest, sink: ResponseSink): void {
    if (req.method === 'GET') {
      // a long-lived stream: within its share of the pool, refused (429) beyond it
      const slot = this.streams.admit(sink, req.correlationId);
      if (slot === undefined) return;
      this.dispatch(req, new RelayHandler(slot, this.reachability));
      sink.resume = () => slot.resume?.();
      sink.abort = () => {
        slot.release();
        slot.abort?.();
      };
      return;
    }
    this.dispatch(req, new RelayHandler(sink, this.reachability));
  }

  private dispatch(req: UpstreamRequest, handler: RelayHandler): void {
    this.pool.dispatch(
      {
        path: this.path,
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        headersTimeout: this.opts.requestTimeoutMs,
        bodyTimeout: this.opts.streamReadTimeoutMs,
      },
      handler,
    );
  }

  health(): UpstreamHealth {
    return this.reachability.health;
  }

  close(): Promise<void> {
    this.reachability.close();
    return this.pool.destroy();
  }
}

/** One per request: adapts undici's dispatch lifecycle to our sink. */
class RelayHandler implements Dispatcher.DispatchHandler {
  private readonly sink: ResponseSink;
  private controller: Dispatcher.DispatchController | null = null;
  private started = false;
  private done = false;

  constructor(sink: ResponseSink, private readonly reachability: Reachability) {
    this.sink = sink;
    sink.resume = () => this.controller?.resume();
    sink.abort = () => {
      this.done = true;
      this.controller?.abort(new Error('client went away'));
    };
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.done) controller.abort(new Error('client went away'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx informational: wait for the real head
    this.started = true;
    const out: HeaderMap = {};
    for (const name in headers) {
      const v = headers[name];
      if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
    }
    this.sink.onHead(statusCode, out);
    this.controller = controller;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return;
    if (!this.sink.onData(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    if (this.done) return;
    this.done = true;
    this.sink.onEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.done) return;
    this.done = true;
    const code = (err as { code?: string }).code;
    if (!this.started && code !== undefined && UNREACHABLE_CODES.has(code)) this.reachability.failed(code);
    this.sink.onError(mapUpstreamError(err, this.started));
  }
}

export function mapUpstreamError(err: Error, afterHead: boolean): GovError {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' && afterHead) {
    return new GovError('upstream_timeout', { details: code });
  }
  if (!afterHead && (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EAI_AGAIN')) {
    return new GovError('upstream_connection_failed', { details: `${code}: ${err.message}` });
  }
  return new GovError('upstream_error', { subject: err.message, details: code || err.message });
}
