// The admin port (7469): /health, /ready, /metrics, and whatever routes the caller mounts
// (the approvals console and API). node:http, not uWS: it sees a probe
// every few seconds and a scrape every 15 s, and keeping it off the traffic port's event
// handling means a saturated proxy still answers its probes.
//
// Binds 0.0.0.0 by default: the original binds 127.0.0.1, so the kubelet's httpGet probes
// (which come from the node, not from inside the pod) fail. THOUGHTGATE_ADMIN_BIND overrides.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReadyState {
  ready: boolean;
  /** why not ready: shutting_down, the first failing check, or `lifecycle_state: starting` */
  reason?: string;
  checks: Record<string, boolean>;
  /** per source: reachable, and why not (shown beside the checks) */
  upstreams?: Record<string, { reachable: boolean; reason?: string; since?: string }>;
}

export type AdminLifecycle = 'starting' | 'ready' | 'shutting_down' | 'stopped';

export interface MetricsSource {
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * A mounted handler: answers the request and resolves true, or resolves false to let the next
 * route (and finally the 404) have it. `path` is the URL path without the query.
 */
export type AdminRoute = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => Promise<boolean>;

export interface AdminServerOptions {
  /** default THOUGHTGATE_ADMIN_PORT, else 7469; 0 picks a free port */
  port?: number;
  /** default THOUGHTGATE_ADMIN_BIND, else 0.0.0.0 */
  host?: string;
  metrics: MetricsSource;
  readiness: () => ReadyState;
  version: string;
  /** /health answers 503 once this reports 'stopped' (default: always 'ready') */
  lifecycle?: () => AdminLifecycle;
  /** tried in order for any other path, before the 404 */
  routes?: AdminRoute[];
}

export interface AdminServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

export const DEFAULT_ADMIN_PORT = 7469;
export const DEFAULT_ADMIN_BIND = '0.0.0.0';

export function adminAddressFromEnv(env: NodeJS.ProcessEnv = process.env): { port: number; host: string } {
  const raw = env.THOUGHTGATE_ADMIN_PORT;
  const port = raw === undefined || raw === '' ? DEFAULT_ADMIN_PORT : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`THOUGHTGATE_ADMIN_PORT must be a port number (0-65535), got '${raw}'`);
  }
  const host = env.THOUGHTGATE_ADMIN_BIND?.trim() || DEFAULT_ADMIN_BIND;
  return { port, host };
}

const JSON_TYPE = 'application/json';

function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, type: string, body: string, extra?: http.OutgoingHttpHeaders): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The /ready body and status, following the original (§8.5). */
export function readyResponse(s: ReadyState): { status: number; body: Record<string, unknown> } {
  const extra = s.upstreams === undefined ? {} : { upstreams: s.upstreams };
  if (s.ready) return { status: 200, body: { status: 'ready', checks: s.checks, ...extra } };
  const failing = Object.keys(s.checks).find((k) => !s.checks[k]);
  return { status: 503, body: { status: 'not_ready', checks: s.checks, reason: s.reason ?? failing ?? 'not_ready', ...extra } };
}

export function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const env = adminAddressFromEnv();
  const port = opts.port ?? env.port;
  const host = opts.host ?? env.host;
  const lifecycle = opts.lifecycle ?? (() => 'ready' as const);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const known = path === '/health' || path === '/ready' || path === '/metrics';
    if (!known) {
      for (const route of opts.routes ?? []) if (await route(req, res, path)) return;
      return send(req, res, 404, JSON_TYPE, JSON.stringify({ status: 'not_found', path }));
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(req, res, 405, JSON_TYPE, JSON.stringify({ status: 'method_not_allowed' }), { allow: 'GET, HEAD' });
    }

    if (path === '/health') {
      if (lifecycle() === 'stopped') {
        return send(req, res, 503, JSON_TYPE, JSON.stringify({ status: 'unhealthy', reason: 'service_stopped' }));
      }
      const body = { status: 'healthy', version: opts.version, uptime_seconds: Math.floor(process.uptime()) };
      return send(req, res, 200, JSON_TYPE, JSON.stringify(body));
    }
    if (path === '/ready') {
      const r = readyResponse(opts.readiness());
      return send(req, res, r.status, JSON_TYPE, JSON.stringify(r.body));
    }
    const text = await opts.metrics.render();
    return send(req, res, 200, opts.metrics.contentType, text);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      const message = err instanceof Error ? err.message : String(err);
      send(req, res, 500, JSON_TYPE, JSON.stringify({ status: 'error', error: message }));
    });
  });
  applyTimeouts(server);
  return listen(server, port, host);
}

/**
 * Probes, scrapes and API calls are tiny; a slow or idle client must not hold sockets for long.
 * (requestTimeout bounds receiving the request only, so a long event stream is not cut.)
 */
export function applyTimeouts(server: http.Server): void {
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;
}

/** Listens; resolves with the bound port and a close that also drops open (streaming) connections. */
export function listen(server: http.Server, port: number, host: string): Promise<AdminServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      resolve({
        port: bound,
        host,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}

/**
 * Reads a request body up to `limit` bytes. Past the limit it stops buffering and resolves
 * 'too_large': the caller answers with `connection: close`, so the rest is never read.
 */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve('too_large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        cleanup();
        req.pause();
        resolve('too_large');
        return;
      }
      chunks.push(c);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
