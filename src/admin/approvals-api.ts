// The approvals admin API and console, mounted on the admin port (server.ts `routes`). The CLI
// and the console page speak exactly this API:
//   GET    /approvals                      the console (HTML; a token form when not signed in)
//   GET    /approvals?token=T              sign in: 303 to /approvals with the tg_admin cookie
//   POST   /approvals/login  (form)        the same, from the token form (keeps T out of the URL)
//   POST   /approvals/logout               clears the cookie
//   GET    /approvals/console.{js,css}     the page's script and style (separate files: strict CSP)
//   GET    /api/approvals?state=pending|all
//   GET    /api/approvals/events           server-sent events, one `approval` event per change
//   GET    /api/approvals/<id>
//   POST   /api/approvals/<id>/approve|reject|cancel   {by?, via?, reason?, scope?, hours?}
//   GET    /api/grants      DELETE /api/grants/<id>
// Auth: the admin token as `Authorization: Bearer` or the cookie. A cookie is sent by the
// browser on its own, so cookie-authenticated changes must also carry `x-thoughtgate-csrf: 1`
// (a header another site cannot add without a CORS preflight we never answer).
import { secretMatcher } from '../core/secret.js';
import type http from 'node:http';
import type { ApprovalEngine } from '../approvals/engine.js';
import { REFUSAL_STATUS, type ApprovalRecord, type ApprovalState, type Grant, type GrantScope, type WaitMode } from '../approvals/types.js';
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_JS, loginPage } from './console-page.js';
import { readBody, type AdminRoute } from './server.js';

export type AdminLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** What the API uses of the engine (an ApprovalEngine; narrower so a test can wrap one). */
export type ApprovalAdmin = Pick<ApprovalEngine, 'list' | 'get' | 'decide' | 'cancel' | 'onAnyChange' | 'listGrants' | 'revokeGrant'>;

export interface ApprovalRoutesOptions {
  engine: ApprovalAdmin;
  /** THOUGHTGATE_ADMIN_TOKEN; an empty token refuses everyone */
  token: string;
  log?: AdminLog;
  now?: () => number;
}

/** One approval as the API shows it: no held request (its headers may carry credentials). */
export interface ApprovalView {
  id: string;
  state: ApprovalState;
  mode: WaitMode;
  method: string;
  tool: string;
  principal: string;
  arguments: unknown;
  workflow: string;
  channel: string;
  session: string | null;
  created_at: string;
  expires_at: string;
  updated_at: string;
  required_approvals: number;
  votes: { by: string; verdict: 'approve' | 'reject'; at: string; reason?: string }[];
  decided_by?: string;
  reason?: string;
  outcome?: 'completed' | 'failed';
}

export interface GrantView {
  id: string;
  tool: string;
  principal: string;
  session?: string;
  arguments_key?: string;
  granted_by: string;
  created_at: string;
  expires_at: string;
}

export const COOKIE_NAME = 'tg_admin';
export const CSRF_HEADER = 'x-thoughtgate-csrf';
export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'";

const BODY_LIMIT = 16 * 1024;
const LOGIN_BODY_LIMIT = 4 * 1024;
const MAX_BY = 200;
const MAX_REASON = 4000;
const MAX_STREAMS = 100;
/** an event stream whose client stopped reading is dropped past this much queued output */
const MAX_STREAM_BACKLOG = 1 << 20;
const KEEPALIVE_MS = 15_000;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

const iso = (ms: number): string => new Date(ms).toISOString();

export function approvalView(r: ApprovalRecord): ApprovalView {
  const v: ApprovalView = {
    id: r.id,
    state: r.state,
    mode: r.mode,
    method: r.method,
    tool: r.tool,
    principal: r.principal,
    arguments: r.arguments,
    workflow: r.workflow,
    channel: r.channel,
    session: r.sessionId ?? null,
    created_at: iso(r.createdAt),
    expires_at: iso(r.expiresAt),
    updated_at: iso(r.updatedAt),
    required_approvals: r.requiredApprovals,
    votes: r.votes.map((x) => (x.reason === undefined ? { by: x.by, verdict: x.verdict, at: iso(x.at) } : { by: x.by, verdict: x.verdict, at: iso(x.at), reason: x.reason })),
  };
  if (r.decidedBy !== undefined) v.decided_by = r.decidedBy;
  if (r.reason !== undefined) v.reason = r.reason;
  if (r.state === 'completed' || r.state === 'failed') v.outcome = r.state;
  return v;
}

export function grantView(g: Grant): GrantView {
  const v: GrantView = { id: g.id, tool: g.tool, principal: g.principal, granted_by: g.grantedBy, created_at: iso(g.createdAt), expires_at: iso(g.expiresAt) };
  if (g.sessionId !== undefined) v.session = g.sessionId;
  if (g.argumentsKey !== undefined) v.arguments_key = g.argumentsKey;
  return v;
}

// --- responses ----------------------------------------------------------------------------

const BASE_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' } as const;
const PAGE_HEADERS = { ...BASE_HEADERS, 'content-security-policy': CONSOLE_CSP, 'x-frame-options': 'DENY' } as const;

function reply(req: http.IncomingMessage, res: http.ServerResponse, status: number, type: string, body: string, extra?: http.OutgoingHttpHeaders): true {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...BASE_HEADERS, ...extra });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

function json(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown, extra?: http.OutgoingHttpHeaders): true {
  return reply(req, res, status, 'application/json; charset=utf-8', JSON.stringify(body), extra);
}

const fail = (req: http.IncomingMessage, res: http.ServerResponse, status: number, error: string, message: string, extra?: http.OutgoingHttpHeaders): true =>
  json(req, res, status, { error, message }, extra);

const html = (req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string, extra?: http.OutgoingHttpHeaders): true =>
  reply(req, res, status, 'text/html; charset=utf-8', body, { ...PAGE_HEADERS, ...extra });

const notAllowed = (req: http.IncomingMessage, res: http.ServerResponse, allow: string): true =>
  fail(req, res, 405, 'method_not_allowed', `use ${allow}`, { allow });

// --- auth -----------------------------------------------------------------------------------

type Auth = { ok: true; by: 'bearer' | 'cookie' } | { ok: false };

function cookieValue(req: http.IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function makeAuth(token: string): { matches(presented: string | undefined): boolean; check(req: http.IncomingMessage): Auth } {
  const matches = secretMatcher(token);
  return {
    matches,
    check(req) {
      const authz = req.headers.authorization;
      if (authz !== undefined) {
        // A bearer header is decisive: a wrong one is not rescued by a cookie.
        const m = /^Bearer\s+(.+)$/i.exec(authz.trim());
        return m !== null && matches(m[1]!.trim()) ? { ok: true, by: 'bearer' } : { ok: false };
      }
      return matches(cookieValue(req, COOKIE_NAME)) ? { ok: true, by: 'cookie' } : { ok: false };
    },
  };
}

const signInCookie = (token: string): string => `${COOKIE_NAME}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`;
const SIGN_OUT_COOKIE = `${COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;

// --- request bodies -------------------------------------------------------------------------

export type Via = 'console' | 'cli' | 'api';

export interface DecisionInput {
  by: string;
  via: Via;
  reason?: string;
  scope: GrantScope;
  hours?: number;
}

/** Validates a decision body; a string is the reason it is refused. Cookie requests are always the console. */
export function parseDecisionBody(raw: Buffer, viaCookie: boolean): DecisionInput | string {
  let body: unknown = {};
  if (raw.length > 0) {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return 'body is not JSON';
    }
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  const out: DecisionInput = { by: 'admin', via: 'api', scope: 'once' };
  if (b.by !== undefined) {
    if (typeof b.by !== 'string' || b.by.trim() === '' || b.by.length > MAX_BY || CONTROL_RE.test(b.by)) return `by must be a name of 1-${MAX_BY} printable characters`;
    out.by = b.by.trim();
  }
  if (b.via !== undefined) {
    if (b.via !== 'console' && b.via !== 'cli' && b.via !== 'api') return "via must be 'console', 'cli' or 'api'";
    out.via = b.via;
  }
  if (viaCookie) out.via = 'console';
  if (b.reason !== undefined && b.reason !== null) {
    if (typeof b.reason !== 'string' || b.reason.length > MAX_REASON) return `reason must be a string of at most ${MAX_REASON} characters`;
    if (b.reason.trim() !== '') out.reason = b.reason.trim();
  }
  if (b.scope !== undefined) {
    if (b.scope !== 'once' && b.scope !== 'session' && b.scope !== 'hours') return "scope must be 'once', 'session' or 'hours'";
    out.scope = b.scope;
  }
  if (b.hours !== undefined) {
    if (typeof b.hours !== 'number' || !Number.isFinite(b.hours) || b.hours < 1 || b.hours > 720) return 'hours must be a number from 1 to 720';
    out.hours = b.hours;
  }
  if (out.scope === 'hours' && out.hours === undefined) return "scope 'hours' needs hours (1-720)";
  return out;
}


// --- the routes -----------------------------------------------------------------------------

export function approvalRoutes(opts: ApprovalRoutesOptions): AdminRoute {
  const { engine } = opts;
  const log: AdminLog = opts.log ?? (() => {});
  const now = opts.now ?? Date.now;
  const auth = makeAuth(opts.token);
  let streams = 0;

  /** Reads a body within the limit; on failure answers (400) and returns undefined. */
  const body = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<Buffer | undefined> => {
    const raw = await readBody(req, BODY_LIMIT);
    if (raw !== 'too_large') return raw;
    fail(req, res, 400, 'invalid_request', `body over ${BODY_LIMIT / 1024} KiB`, { connection: 'close' });
    return undefined;
  };

  const signIn = (req: http.IncomingMessage, res: http.ServerResponse, token: string | undefined): true => {
    if (!auth.matches(token)) {
      log('warn', 'approvals console sign-in refused: wrong token', { remote: req.socket.remoteAddress });
      return html(req, res, 401, loginPage('That token is not right.'));
    }
    log('info', 'approvals console sign-in', { remote: req.socket.remoteAddress });
    res.writeHead(303, { location: '/approvals', 'set-cookie': signInCookie(token!), 'content-length': 0, ...BASE_HEADERS });
    res.end();
    return true;
  };

  /** The token form posts here (form-urlencoded), so the token stays out of the address bar and history. */
  const login = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<true> => {
    if (req.method !== 'POST') return notAllowed(req, res, 'POST');
    const raw = await readBody(req, LOGIN_BODY_LIMIT);
    if (raw === 'too_large') return html(req, res, 413, loginPage('That is too long for a token.'), { connection: 'close' });
    return signIn(req, res, new URLSearchParams(raw.toString('utf8')).get('token') ?? undefined);
  };

  const page = (req: http.IncomingMessage, res: http.ServerResponse): true => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(req, res, 'GET, HEAD');
    const token = new URL(req.url ?? '/', 'http://admin').searchParams.get('token');
    if (token !== null) return signIn(req, res, token);
    if (!auth.check(req).ok) return html(req, res, 401, loginPage(opts.token === '' ? 'No admin token is configured (THOUGHTGATE_ADMIN_TOKEN).' : undefined));
    return html(req, res, 200, CONSOLE_HTML);
  };

  const asset = (req: http.IncomingMessage, res: http.ServerResponse, type: string, text: string): true => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(req, res, 'GET, HEAD');
    return reply(req, res, 200, type, text);
  };

  const events = (req: http.IncomingMessage, res: http.ServerResponse): true => {
    if (streams >= MAX_STREAMS) return fail(req, res, 503, 'too_many_streams', `at most ${MAX_STREAMS} event streams`, { 'retry-after': '10' });
    streams++;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', ...BASE_HEADERS, 'x-accel-buffering': 'no' });
    res.write('retry: 3000\n\n');
    const write = (chunk: string): void => {
      if (res.writableLength > MAX_STREAM_BACKLOG) return void res.destroy(); // the client stopped reading
      res.write(chunk);
    };
    const off = engine.onAnyChange((rec) => {
      // The engine calls listeners in a loop: nothing here may throw into it.
      try {
        write(`event: approval\ndata: ${JSON.stringify(approvalView(rec))}\n\n`);
      } catch (e) {
        log('warn', 'approvals event stream write failed', { err: (e as Error).message });
      }
    });
    const keepalive = setInterval(() => write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    res.once('close', () => {
      off();
      clearInterval(keepalive);
      streams--;
    });
    return true;
  };

  const decide = async (req: http.IncomingMessage, res: http.ServerResponse, id: string, action: 'approve' | 'reject' | 'cancel', viaCookie: boolean): Promise<true> => {
    const raw = await body(req, res);
    if (raw === undefined) return true;
    const input = parseDecisionBody(raw, viaCookie);
    if (typeof input === 'string') return fail(req, res, 400, 'invalid_request', input);
    const by = `${input.via}:${input.by}`;

    if (action === 'cancel') {
      const before = await engine.get(id);
      if (before === undefined) return fail(req, res, 404, 'not_found', `no approval ${id}`);
      if (before.state !== 'pending') return fail(req, res, 409, 'already_decided', `approval ${id} is already ${before.state}${before.decidedBy ? ` (by ${before.decidedBy})` : ''}`);
      const rec = await engine.cancel(id, by);
      log('info', 'approval cancelled via the admin API', { approval_id: id, by, result: rec?.state });
      if (rec === undefined) return fail(req, res, 404, 'not_found', `no approval ${id}`);
      if (rec.state !== 'cancelled' || rec.decidedBy !== by) return fail(req, res, 409, 'already_decided', `approval ${id} is already ${rec.state}${rec.decidedBy ? ` (by ${rec.decidedBy})` : ''}`);
      return json(req, res, 200, { ok: true, final: true, approval: approvalView(rec) });
    }

    let grant: { scope: GrantScope; hours?: number } | undefined;
    if (action === 'approve' && input.scope !== 'once') {
      // A session grant without a session would stand for every session: refuse to make one.
      if (input.scope === 'session') {
        const rec = await engine.get(id);
        if (rec === undefined) return fail(req, res, 404, 'not_found', `no approval ${id}`);
        if (rec.sessionId === undefined) return fail(req, res, 400, 'invalid_request', 'this call has no session; approve it once or for some hours');
      }
      grant = input.scope === 'hours' ? { scope: 'hours', hours: input.hours! } : { scope: 'session' };
    }
    const vote: Parameters<ApprovalAdmin['decide']>[1] = { verdict: action, by };
    if (input.reason !== undefined) vote.reason = input.reason;
    if (grant !== undefined) vote.grant = grant;
    const result = await engine.decide(id, vote);
    log('info', `approval ${action} via the admin API`, { approval_id: id, by, result: result.ok ? (result.final ? result.rec.state : 'vote_counted') : result.code, scope: grant?.scope });
    if (!result.ok) return fail(req, res, REFUSAL_STATUS[result.code], result.code, result.message);
    return json(req, res, 200, { ok: true, final: result.final, approval: approvalView(result.rec) });
  };

  const api = async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<true> => {
    const who = auth.check(req);
    if (!who.ok) return fail(req, res, 401, 'unauthorized', 'send the admin token as "Authorization: Bearer <token>" (THOUGHTGATE_ADMIN_TOKEN)', { 'www-authenticate': 'Bearer realm="thoughtgate"' });
    const method = req.method ?? 'GET';
    const reading = method === 'GET' || method === 'HEAD';
    if (!reading && who.by === 'cookie' && req.headers[CSRF_HEADER] !== '1') {
      return fail(req, res, 403, 'csrf', `changes from the console must carry the header ${CSRF_HEADER}: 1`);
    }
    const parts = path.split('/').slice(2); // '' 'api' → [approvals|grants, ...]
    if (parts[parts.length - 1] === '' && parts.length > 1) parts.pop(); // tolerate one trailing slash

    if (parts[0] === 'approvals') {
      if (parts.length === 1) {
        if (!reading) return notAllowed(req, res, 'GET');
        const state = new URL(req.url ?? '/', 'http://admin').searchParams.get('state') ?? 'pending';
        if (state !== 'pending' && state !== 'all') return fail(req, res, 400, 'invalid_request', "state must be 'pending' or 'all'");
        const recs = await engine.list(state === 'pending' ? (r) => r.state === 'pending' : undefined);
        return json(req, res, 200, recs.map(approvalView));
      }
      if (parts.length === 2 && parts[1] === 'events') return method === 'GET' ? events(req, res) : notAllowed(req, res, 'GET');
      const id = parts[1]!;
      if (!ID_RE.test(id) || parts.length > 3) return fail(req, res, 404, 'not_found', `no such resource ${path}`);
      if (parts.length === 2) {
        if (!reading) return notAllowed(req, res, 'GET');
        const rec = await engine.get(id);
        return rec === undefined ? fail(req, res, 404, 'not_found', `no approval ${id}`) : json(req, res, 200, approvalView(rec));
      }
      const action = parts[2];
      if (action !== 'approve' && action !== 'reject' && action !== 'cancel') return fail(req, res, 404, 'not_found', `no such action '${action}'`);
      if (method !== 'POST') return notAllowed(req, res, 'POST');
      return decide(req, res, id, action, who.by === 'cookie');
    }

    if (parts[0] === 'grants') {
      if (parts.length === 1) {
        if (!reading) return notAllowed(req, res, 'GET');
        const t = now();
        const grants = (await engine.listGrants()).filter((g) => g.expiresAt > t).sort((a, b) => b.createdAt - a.createdAt);
        return json(req, res, 200, grants.map(grantView));
      }
      const id = parts[1]!;
      if (parts.length !== 2 || !ID_RE.test(id)) return fail(req, res, 404, 'not_found', `no such resource ${path}`);
      if (method !== 'DELETE') return notAllowed(req, res, 'DELETE');
      const raw = await body(req, res);
      if (raw === undefined) return true;
      const input = parseDecisionBody(raw, who.by === 'cookie');
      if (typeof input === 'string') return fail(req, res, 400, 'invalid_request', input);
      const by = `${input.via}:${input.by}`;
      const ok = await engine.revokeGrant(id, by);
      log('info', 'standing approval revoke via the admin API', { grant_id: id, by, result: ok ? 'revoked' : 'not_found' });
      return ok ? json(req, res, 200, { ok: true }) : fail(req, res, 404, 'not_found', `no standing approval ${id}`);
    }
    return fail(req, res, 404, 'not_found', `no such resource ${path}`);
  };

  return async (req, res, path) => {
    switch (path) {
      case '/approvals/console.js': return asset(req, res, 'text/javascript; charset=utf-8', CONSOLE_JS);
      case '/approvals/console.css': return asset(req, res, 'text/css; charset=utf-8', CONSOLE_CSS);
      case '/approvals':
      case '/approvals/':
        return page(req, res);
      case '/approvals/login':
        return login(req, res);
      case '/approvals/logout':
        if (req.method !== 'POST') return notAllowed(req, res, 'POST');
        res.writeHead(204, { 'set-cookie': SIGN_OUT_COOKIE, ...BASE_HEADERS });
        res.end();
        return true;
    }
    if (path === '/api/approvals' || path.startsWith('/api/approvals/') || path === '/api/grants' || path.startsWith('/api/grants/')) return api(req, res, path);
    return false;
  };
}
