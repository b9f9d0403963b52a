// The approvals admin API and console, mounted on the admin port (server.ts `routes`). The CLI
// and the console page speak exactly this API:
//   GET    /approvals                      the console (HTML; a token form when not signed in)
//   GET    /approvals?token=T              sign in: 303 to /approvals with a session cookie
//   POST   /approvals/login  (form)        the same, from the token form (keeps T out of the URL)
//   POST   /approvals/logout               ends the session (server-side) and clears the cookie
//   GET    /approvals/console.{js,css}     the page's script and style (separate files: strict CSP)
//   GET    /api/approvals?state=pending|all
//   GET    /api/approvals/events           server-sent events, one `approval` event per change
//   GET    /api/approvals/<id>
//   POST   /api/approvals/<id>/approve|reject|cancel   {by?, via?, reason?, scope?, hours?}
//   GET    /api/grants      DELETE /api/grants/<id>
//   GET    /api/whoami                     who the token or session is
// Auth: a token as `Authorization: Bearer` (scheme in any case) or a console session cookie.
// Who votes is decided by the token, never by the body's `by`/`via`:
//   - a per-approver token (`approval.<workflow>.approver_tokens`) is that approver, for the
//     workflows that list it: it may list and decide their approvals, nothing else;
//   - the shared admin token (THOUGHTGATE_ADMIN_TOKEN) may list and manage everything, but its
//     votes are the one identity `operator`, and on a workflow that names approvers or gives
//     them tokens it may not vote at all (403): it cannot stand in for the people named there.
// The console cookie is a random session id (the token stays on the server), revoked at sign
// out, expiring after THOUGHTGATE_CONSOLE_SESSION_HOURS (default 12). A cookie is sent by the
// browser on its own, so cookie-authenticated changes must also carry `x-thoughtgate-csrf: 1`
// (a header another site cannot add without a CORS preflight we never answer).
import { randomBytes } from 'node:crypto';
import { bearerCredential, secretMatcher } from '../core/secret.js';
import type http from 'node:http';
import type { ApprovalEngine } from '../approvals/engine.js';
import { maskedArguments, maskedArgumentsKey } from '../approvals/redact.js';
import { REFUSAL_STATUS, type ApprovalRecord, type ApprovalState, type Grant, type GrantScope, type WaitMode } from '../approvals/types.js';
import type { WorkflowConfig } from '../policy/types.js';
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_JS, loginPage } from './console-page.js';
import { readBody, type AdminRoute } from './server.js';

export type AdminLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** What the API uses of the engine (an ApprovalEngine; narrower so a test can wrap one). */
export type ApprovalAdmin = Pick<ApprovalEngine, 'list' | 'get' | 'decide' | 'cancel' | 'onAnyChange' | 'listGrants' | 'revokeGrant'> & Partial<Pick<ApprovalEngine, 'workflows'>>;

export interface ApprovalRoutesOptions {
  engine: ApprovalAdmin;
  /** THOUGHTGATE_ADMIN_TOKEN; an empty token refuses everyone */
  token: string;
  log?: AdminLog;
  now?: () => number;
  /** the workflows in force (approver tokens, redact_fields); default: the engine's */
  workflows?: () => Readonly<Record<string, WorkflowConfig>>;
  /** console session lifetime (default THOUGHTGATE_CONSOLE_SESSION_HOURS, else 12 h) */
  sessionTtlMs?: number;
}

/** The identity the shared admin token votes as. */
export const OPERATOR = 'operator';

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
  /** approved while its client was gone: runs only if the identical call is retried before this */
  awaiting_retry_until?: string;
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

/** the console session cookie: a random session id, never a token */
export const COOKIE_NAME = 'tg_session';
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

/** `redact` is the workflow's redact_fields now (the record keeps those it was held with). */
export function approvalView(r: ApprovalRecord, redact: readonly string[] = []): ApprovalView {
  const v: ApprovalView = {
    id: r.id,
    state: r.state,
    mode: r.mode,
    method: r.method,
    tool: r.tool,
    principal: r.principal,
    arguments: maskedArguments(r, redact),
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
  if (r.awaitingRetryUntil !== undefined) v.awaiting_retry_until = iso(r.awaitingRetryUntil);
  return v;
}

export function grantView(g: Grant): GrantView {
  const v: GrantView = { id: g.id, tool: g.tool, principal: g.principal, granted_by: g.grantedBy, created_at: iso(g.createdAt), expires_at: iso(g.expiresAt) };
  if (g.sessionId !== undefined) v.session = g.sessionId;
  const key = maskedArgumentsKey(g);
  if (key !== undefined) v.arguments_key = key;
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

/** Who a token is: the operator (the shared admin token) or an approver, named per workflow. */
export type Caller = { kind: 'operator' } | { kind: 'approver'; names: ReadonlyMap<string, string> };

type Auth = { ok: true; by: 'bearer' | 'cookie'; caller: Caller; session?: string } | { ok: false };

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

type TokenCheck = { workflow: string; name: string; matches: (t: string | undefined) => boolean };

/**
 * Resolves a presented token to its caller. Approver tokens are read from the workflows in
 * force at each request (a reload that removes a token revokes it at once); their matchers are
 * built once per workflows object.
 */
function makeAuthenticator(adminToken: string, workflows: () => Readonly<Record<string, WorkflowConfig>>): (presented: string | undefined) => Caller | undefined {
  const admin = secretMatcher(adminToken);
  const built = new WeakMap<object, TokenCheck[]>();
  const checksFor = (w: Readonly<Record<string, WorkflowConfig>>): TokenCheck[] => {
    let checks = built.get(w);
    if (checks === undefined) {
      checks = [];
      for (const [workflow, cfg] of Object.entries(w)) {
        for (const [name, token] of Object.entries(cfg.approver_tokens ?? {})) {
          if (typeof token === 'string' && token !== '') checks.push({ workflow, name, matches: secretMatcher(token) });
        }
      }
      built.set(w, checks);
    }
    return checks;
  };
  return (presented) => {
    if (presented === undefined || presented === '') return undefined;
    if (admin(presented)) return { kind: 'operator' };
    const names = new Map<string, string>();
    // Every check runs (no early exit): the time taken does not tell which workflow matched.
    for (const c of checksFor(workflows())) if (c.matches(presented)) names.set(c.workflow, c.name);
    return names.size > 0 ? { kind: 'approver', names } : undefined;
  };
}

/** Console sign-ins: a random id in the cookie, the token (re-checked at each request) on the server. */
class ConsoleSessions {
  private readonly byId = new Map<string, { token: string; expiresAt: number }>();
  constructor(readonly ttlMs: number, private readonly now: () => number, private readonly max = 10_000) {}

  create(token: string): string {
    const t = this.now();
    if (this.byId.size >= this.max) this.sweep(t);
    // Still full: the oldest sign-in goes (Map keeps insertion order), not the new one.
    while (this.byId.size >= this.max) this.byId.delete(this.byId.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.byId.set(id, { token, expiresAt: t + this.ttlMs });
    return id;
  }

  token(id: string | undefined): string | undefined {
    if (id === undefined) return undefined;
    const s = this.byId.get(id);
    if (s === undefined) return undefined;
    if (s.expiresAt <= this.now()) {
      this.byId.delete(id);
      return undefined;
    }
    return s.token;
  }

  revoke(id: string | undefined): boolean {
    return id !== undefined && this.byId.delete(id);
  }

  private sweep(t: number): void {
    for (const [id, s] of this.byId) if (s.expiresAt <= t) this.byId.delete(id);
  }
}

/** console sign-ins last this long unless THOUGHTGATE_CONSOLE_SESSION_HOURS says otherwise (cli/settings.ts) */
export const DEFAULT_CONSOLE_SESSION_MS = 12 * 3_600_000;

const sessionCookie = (id: string, ttlMs: number): string => `${COOKIE_NAME}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(ttlMs / 1000)}`;
const SIGN_OUT_COOKIE = `${COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;

// --- request bodies -------------------------------------------------------------------------

export type Via = 'console' | 'cli' | 'api';

/** `by` when the body names nobody (it is only logged: the token decides who votes) */
const DEFAULT_BY = 'admin';

export interface DecisionInput {
  /** what the caller typed; logged when it differs from who the token is, never trusted */
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
  const out: DecisionInput = { by: DEFAULT_BY, via: 'api', scope: 'once' };
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


// --- the routes ---------------------------------------------------------------------------

export function approvalRoutes(opts: ApprovalRoutesOptions): AdminRoute {
  const { engine } = opts;
  const log: AdminLog = opts.log ?? (() => {});
  const now = opts.now ?? Date.now;
  const workflows = opts.workflows ?? (() => engine.workflows?.() ?? {});
  const authenticate = makeAuthenticator(opts.token, workflows);
  const sessions = new ConsoleSessions(opts.sessionTtlMs ?? DEFAULT_CONSOLE_SESSION_MS, now);
  let streams = 0;

  const check = (req: http.IncomingMessage): Auth => {
    if (req.headers.authorization !== undefined) {
      // A bearer header is decisive: a wrong one is not rescued by a cookie.
      const caller = authenticate(bearerCredential(req.headers.authorization));
      return caller === undefined ? { ok: false } : { ok: true, by: 'bearer', caller };
    }
    const session = cookieValue(req, COOKIE_NAME);
    const caller = authenticate(sessions.token(session));
    return caller === undefined ? { ok: false } : { ok: true, by: 'cookie', caller, session: session! };
  };

  /** The redact_fields a record's workflow has now (the record keeps those it was held with). */
  const redactOf = (r: ApprovalRecord): readonly string[] => workflows()[r.workflow]?.redact_fields ?? [];
  const view = (r: ApprovalRecord): ApprovalView => approvalView(r, redactOf(r));
  /** An approver sees the approvals of the workflows that gave them a token, and only those. */
  const visible = (c: Caller, r: ApprovalRecord): boolean => c.kind === 'operator' || c.names.has(r.workflow);
  const identityOf = (c: Caller): string => (c.kind === 'operator' ? OPERATOR : [...new Set(c.names.values())].join(', '));

  /** Reads a body within the limit; on failure answers (400) and returns undefined. */
  const body = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<Buffer | undefined> => {
    const raw = await readBody(req, BODY_LIMIT);
    if (raw !== 'too_large') return raw;
    fail(req, res, 400, 'invalid_request', `body over ${BODY_LIMIT / 1024} KiB`, { connection: 'close' });
    return undefined;
  };

  const signIn = (req: http.IncomingMessage, res: http.ServerResponse, token: string | undefined): true => {
    const caller = authenticate(token);
    if (caller === undefined) {
      log('warn', 'approvals console sign-in refused: wrong token', { remote: req.socket.remoteAddress });
      return html(req, res, 401, loginPage('That token is not right.'));
    }
    const session = sessions.create(token!);
    log('info', 'approvals console sign-in', { remote: req.socket.remoteAddress, identity: identityOf(caller) });
    res.writeHead(303, { location: '/approvals', 'set-cookie': sessionCookie(session, sessions.ttlMs), 'content-length': 0, ...BASE_HEADERS });
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

  const logout = (req: http.IncomingMessage, res: http.ServerResponse): true => {
    if (req.method !== 'POST') return notAllowed(req, res, 'POST');
    // The session ends here, whatever the browser does with the cookie afterwards.
    if (sessions.revoke(cookieValue(req, COOKIE_NAME))) log('info', 'approvals console sign-out', { remote: req.socket.remoteAddress });
    res.writeHead(204, { 'set-cookie': SIGN_OUT_COOKIE, ...BASE_HEADERS });
    res.end();
    return true;
  };

  const page = (req: http.IncomingMessage, res: http.ServerResponse): true => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(req, res, 'GET, HEAD');
    const token = new URL(req.url ?? '/', 'http://admin').searchParams.get('token');
    if (token !== null) return signIn(req, res, token);
    if (!check(req).ok) return html(req, res, 401, loginPage(opts.token === '' ? 'No admin token is configured (THOUGHTGATE_ADMIN_TOKEN).' : undefined));
    return html(req, res, 200, CONSOLE_HTML);
  };

  const asset = (req: http.IncomingMessage, res: http.ServerResponse, type: string, text: string): true => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(req, res, 'GET, HEAD');
    return reply(req, res, 200, type, text);
  };

  const events = (req: http.IncomingMessage, res: http.ServerResponse, caller: Caller): true => {
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
        if (visible(caller, rec)) write(`event: approval\ndata: ${JSON.stringify(view(rec))}\n\n`);
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

  /**
   * Who this caller votes as on `rec`, or why they may not: an approver as their configured
   * name for the record's workflow; the operator as `operator`, and not at all on a workflow
   * that names its approvers (the shared token must not stand in for them).
   */
  const voterFor = (caller: Caller, rec: ApprovalRecord): { person: string } | { status: number; error: string; message: string } => {
    if (caller.kind === 'approver') {
      const name = caller.names.get(rec.workflow);
      if (name === undefined) return { status: 403, error: 'not_allowed', message: `this token belongs to approvers of ${[...caller.names.keys()].map((w) => `'${w}'`).join(', ')}, not of workflow '${rec.workflow}'` };
      return { person: name };
    }
    const w = workflows()[rec.workflow];
    const tokens = Object.keys(w?.approver_tokens ?? {}).length > 0;
    const named = rec.approvers.length > 0 || (w?.approvers?.length ?? 0) > 0;
    if (tokens || named) {
      return { status: 403, error: 'not_allowed', message: `workflow '${rec.workflow}' names its approvers: vote with your own approver token (approval.${rec.workflow}.approver_tokens); the admin token only lists and manages` };
    }
    return { person: OPERATOR };
  };

  const decide = async (req: http.IncomingMessage, res: http.ServerResponse, id: string, action: 'approve' | 'reject' | 'cancel', who: Extract<Auth, { ok: true }>): Promise<true> => {
    const raw = await body(req, res);
    if (raw === undefined) return true;
    const input = parseDecisionBody(raw, who.by === 'cookie');
    if (typeof input === 'string') return fail(req, res, 400, 'invalid_request', input);
    const caller = who.caller;
    const before = await engine.get(id);
    if (before === undefined || !visible(caller, before)) {
      // An approver of another workflow may vote here as little as anyone: refused, not shown.
      if (before !== undefined && action !== 'cancel') {
        const v = voterFor(caller, before);
        if ('status' in v) return fail(req, res, v.status, v.error, v.message);
      }
      return fail(req, res, 404, 'not_found', `no approval ${id}`);
    }

    if (action === 'cancel') {
      if (caller.kind !== 'operator') return fail(req, res, 403, 'not_allowed', 'an approver token approves or rejects; cancelling is for the admin token');
      const by = `${input.via}:${OPERATOR}`;
      if (before.state !== 'pending') return fail(req, res, 409, 'already_decided', `approval ${id} is already ${before.state}${before.decidedBy ? ` (by ${before.decidedBy})` : ''}`);
      const rec = await engine.cancel(id, by);
      log('info', 'approval cancelled via the admin API', { approval_id: id, by, result: rec?.state });
      if (rec === undefined) return fail(req, res, 404, 'not_found', `no approval ${id}`);
      if (rec.state !== 'cancelled' || rec.decidedBy !== by) return fail(req, res, 409, 'already_decided', `approval ${id} is already ${rec.state}${rec.decidedBy ? ` (by ${rec.decidedBy})` : ''}`);
      return json(req, res, 200, { ok: true, final: true, approval: view(rec) });
    }

    const voter = voterFor(caller, before);
    if ('status' in voter) {
      log('warn', `approval ${action} via the admin API refused`, { approval_id: id, identity: identityOf(caller), why: voter.message });
      return fail(req, res, voter.status, voter.error, voter.message);
    }
    // The channel is how the vote came; the person is who the token is. Whatever `by` says is ignored.
    const by = `${input.via}:${voter.person}`;
    let grant: { scope: GrantScope; hours?: number } | undefined;
    if (action === 'approve' && input.scope !== 'once') {
      // A session grant without a session would stand for every session: refuse to make one.
      if (input.scope === 'session' && before.sessionId === undefined) return fail(req, res, 400, 'invalid_request', 'this call has no session; approve it once or for some hours');
      grant = input.scope === 'hours' ? { scope: 'hours', hours: input.hours! } : { scope: 'session' };
    }
    const vote: Parameters<ApprovalAdmin['decide']>[1] = { verdict: action, by };
    if (input.reason !== undefined) vote.reason = input.reason;
    if (grant !== undefined) vote.grant = grant;
    const result = await engine.decide(id, vote);
    const claimed = input.by !== voter.person && input.by !== DEFAULT_BY ? { claimed_by: input.by } : {};
    log('info', `approval ${action} via the admin API`, { approval_id: id, by, ...claimed, result: result.ok ? (result.final ? result.rec.state : 'vote_counted') : result.code, scope: grant?.scope });
    if (!result.ok) return fail(req, res, REFUSAL_STATUS[result.code], result.code, result.message);
    return json(req, res, 200, { ok: true, final: result.final, approval: view(result.rec) });
  };

  const api = async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<true> => {
    const who = check(req);
    if (!who.ok) return fail(req, res, 401, 'unauthorized', 'send your approver token or the admin token as "Authorization: Bearer <token>" (THOUGHTGATE_ADMIN_TOKEN)', { 'www-authenticate': 'Bearer realm="thoughtgate"' });
    const caller = who.caller;
    const method = req.method ?? 'GET';
    const reading = method === 'GET' || method === 'HEAD';
    if (!reading && who.by === 'cookie' && req.headers[CSRF_HEADER] !== '1') {
      return fail(req, res, 403, 'csrf', `changes from the console must carry the header ${CSRF_HEADER}: 1`);
    }
    if (path === '/api/whoami') {
      if (!reading) return notAllowed(req, res, 'GET');
      return json(req, res, 200, { identity: identityOf(caller), kind: caller.kind, ...(caller.kind === 'approver' ? { workflows: [...caller.names.keys()] } : {}) });
    }
    const parts = path.split('/').slice(2); // '' 'api' → [approvals|grants, ...]
    if (parts[parts.length - 1] === '' && parts.length > 1) parts.pop(); // tolerate one trailing slash

    if (parts[0] === 'approvals') {
      if (parts.length === 1) {
        if (!reading) return notAllowed(req, res, 'GET');
        const state = new URL(req.url ?? '/', 'http://admin').searchParams.get('state') ?? 'pending';
        if (state !== 'pending' && state !== 'all') return fail(req, res, 400, 'invalid_request', "state must be 'pending' or 'all'");
        const recs = await engine.list((r) => (state === 'all' || r.state === 'pending') && visible(caller, r));
        return json(req, res, 200, recs.map(view));
      }
      if (parts.length === 2 && parts[1] === 'events') return method === 'GET' ? events(req, res, caller) : notAllowed(req, res, 'GET');
      const id = parts[1]!;
      if (!ID_RE.test(id) || parts.length > 3) return fail(req, res, 404, 'not_found', `no such resource ${path}`);
      if (parts.length === 2) {
        if (!reading) return notAllowed(req, res, 'GET');
        const rec = await engine.get(id);
        return rec === undefined || !visible(caller, rec) ? fail(req, res, 404, 'not_found', `no approval ${id}`) : json(req, res, 200, view(rec));
      }
      const action = parts[2];
      if (action !== 'approve' && action !== 'reject' && action !== 'cancel') return fail(req, res, 404, 'not_found', `no such action '${action}'`);
      if (method !== 'POST') return notAllowed(req, res, 'POST');
      return decide(req, res, id, action, who);
    }

    if (parts[0] === 'grants') {
      // Standing approvals outlive the call they came from: managing them is the operator's.
      if (caller.kind !== 'operator') return fail(req, res, 403, 'not_allowed', 'standing approvals are managed with the admin token');
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
      const by = `${input.via}:${OPERATOR}`;
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
        return logout(req, res);
    }
    if (path === '/api/approvals' || path.startsWith('/api/approvals/') || path === '/api/grants' || path.startsWith('/api/grants/') || path === '/api/whoami') return api(req, res, path);
    return false;
  };
}
