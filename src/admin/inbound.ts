// The inbound port (7468): where approval decisions arrive from outside (webhook callbacks,
// chat buttons). It faces whatever can reach it, so it serves only the routes it is given,
// refuses bodies over a small limit, keeps the admin port's short timeouts, and never
// echoes internal errors.
import http from 'node:http';
import { applyTimeouts, listen, type AdminRoute } from './server.js';

export const DEFAULT_INBOUND_PORT = 7468;
/** decisions are a few hundred bytes; Slack's interaction payloads a few KiB */
export const INBOUND_BODY_LIMIT = 64 * 1024;

export interface InboundServerOptions {
  port: number;
  host: string;
  /** tried in order; each reads its body with readBody(req, limit ≤ INBOUND_BODY_LIMIT) */
  routes: AdminRoute[];
  /** where a route's failure is reported (the client only gets a bare 500) */
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface InboundServer {
  readonly port: number;
  close(): Promise<void>;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, extra?: http.OutgoingHttpHeaders): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(text);
}

export async function startInboundServer(opts: InboundServerOptions): Promise<InboundServer> {
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    // A declared length over the limit is refused before any route reads it.
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > INBOUND_BODY_LIMIT) {
      return sendJson(res, 413, { error: 'too_large', message: `body over ${INBOUND_BODY_LIMIT / 1024} KiB` }, { connection: 'close' });
    }
    for (const route of opts.routes) if (await route(req, res, path)) return;
    sendJson(res, 404, { error: 'not_found' });
  };

  const server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log?.('error', 'inbound request failed', { path: (req.url ?? '/').split('?')[0], err: err instanceof Error ? err.message : String(err) });
      if (res.headersSent) return void res.destroy();
      sendJson(res, 500, { error: 'internal_error' });
    });
  });
  applyTimeouts(server);
  const s = await listen(server, opts.port, opts.host);
  return { port: s.port, close: () => s.close() };
}
