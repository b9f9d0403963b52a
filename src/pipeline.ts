// The request flow, written once, in the order data moves:
//   transport (Exchange) → framing (decode) → session (origin, headers, era) → gates (judge)
//   → upstream (send) → response (Relay: JSON or SSE, lists filtered).
// Every decision is reported to `telemetry` (metrics + audit trail) from here.
import { randomUUID } from 'node:crypto';
import { GovError, errorResponse, type ErrorKind } from './core/errors.js';
import { BATCH_VERSION, type JsonRpcMessage } from './core/jsonrpc.js';
import type { Limits } from './core/limits.js';
import { decodeBody, type BatchItem } from './framing/decode.js';
import { judge } from './gates/judge.js';
import { approvalGate } from './gates/approval.js';
import { ELICITATION_ID_PREFIX, type ApprovalGateway } from './approvals/gateway.js';
import { advertiseTasks } from './approvals/advertise.js';
import { filterListResponse } from './gates/list-filter.js';
import type { Decision, Subject } from './gates/decision.js';
import type { Principal } from './core/policy-engine.js';
import { GOVERNED_METHODS, LIST_METHODS, MCP_CLIENT_METHODS, classifyMethod, lookalikeOf, resourceNameOf, resourceOf, subscribedUris, type ResourceKind } from './policy/governable.js';
import { canonicalProblem } from './policy/canonical.js';
import type { Snapshot } from './policy/types.js';
import { Relay, type RelayContext } from './response/relay.js';
import { API_PREFIX, handleDecisionApi, type DecisionApiDeps } from './admin/decision-api.js';
import { BatchCollector } from './response/batch.js';
import { bodyClaimedVersion, checkStandardHeaders, messageRoute, upstreamHeaders } from './session/headers.js';
import { CORS_METHODS, corsHeaders, preflightHeaders, type OriginPolicy } from './session/origin.js';
import type { SessionTable } from './session/sessions.js';
import { STREAM_RETRY_AFTER_S, clientKey, type StreamLease, type StreamQuota } from './session/client-quota.js';
import type { Exchange } from './transport/http-server.js';
import { reportInternal } from './transport/contain.js';
import type { HeaderMap, Upstream, UpstreamRequest } from './upstream/types.js';

export type Mode = 'enforce' | 'audit' | 'bypass';

/** One judged message, as the audit trail and metrics see it. */
export interface DecisionRecord {
  correlationId: string;
  session: string | undefined;
  principal: Principal;
  method: string;
  tool: string | undefined;
  sourceId: string;
  decision: Decision;
  /** time the gates took to decide */
  judgeMs: number;
  mode: Mode;
  /** true when the decision was a denial that audit mode forwarded anyway */
  wouldBlock: boolean;
  snapshot: string;
}

export interface PipelineTelemetry {
  /**
   * Records a decision. A promise (strict audit durability, or a trail that cannot be written)
   * means: wait for it before forwarding or answering; it resolves to the error to answer with
   * instead (audit.on_failure: fail_closed), or undefined to go on. It never rejects.
   */
  decision(rec: DecisionRecord): void | Promise<GovError | undefined>;
  /** one exchange finished: JSON-RPC method ('batch' for batches), tool, outcome */
  request(method: string, tool: string | undefined, status: 'success' | 'error', durationMs: number): void;
  error(kind: ErrorKind | 'origin_rejected' | 'unsupported_media_type', method: string): void;
  framing(errorType: string): void;
  upstream(statusCode: number, durationMs: number): void;
}

export interface PipelineOptions {
  snapshot: () => Snapshot;
  mode: Mode;
  limits: Limits;
  upstream: Upstream;
  sessions: SessionTable;
  origin: OriginPolicy;
  /** who this sidecar's caller is (pod labels, service account, or the configured default) */
  principal: Principal;
  telemetry: PipelineTelemetry;
  /** longest SSE event relayed from the upstream */
  maxEventBytes: number;
  /** refuse new work (shutting down) */
  draining: () => boolean;
  decisionApi: DecisionApiDeps;
  /** gate 4; without it a call that needs approval is refused (fail closed) */
  approvals?: ApprovalGateway;
  /** per-client and per-session shares of open GET streams; without it GETs are not counted */
  streams?: StreamQuota;
}

const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json' };

/**
 * Headers of the proxy's own rejection of a request: JSON, and the request's Mcp-Session-Id
 * when it had one (as the SDK servers answer), so a client can tell which session was refused.
 */
function rejectHeaders(ex: Exchange): HeaderMap {
  const sid = ex.headers['mcp-session-id'];
  return sid === undefined ? JSON_HEADERS : { ...JSON_HEADERS, 'mcp-session-id': sid };
}


export class Pipeline {
  private readonly o: PipelineOptions;
  /** POSTed messages sent upstream and not yet answered (a clean shutdown waits for them) */
  postsInFlight = 0;

  constructor(options: PipelineOptions) {
    this.o = options;
  }

  /**
   * Entry point for every HTTP exchange on the traffic port. Contained: an exception nobody
   * expected answers this exchange -32603 and the process lives on (transport/contain.ts).
   */
  handle(ex: Exchange): void {
    const correlationId = randomUUID();
    try {
      this.route(ex, correlationId);
    } catch (e) {
      this.internal(ex, e, correlationId);
    }
  }

  /** An unexpected exception: answered -32603 with the correlation id, counted, logged with its stack. */
  internal(ex: Exchange, e: unknown, correlationId: string): void {
    reportInternal(e, correlationId, 'pipeline');
    this.o.telemetry.error('internal_error', ex.method);
    if (ex.finished) return;
    try {
      if (ex.headSent) ex.close();
      else ex.respond(200, JSON_HEADERS, errorResponse(null, new GovError('internal_error', { subject: correlationId }), correlationId));
    } catch (again) {
      reportInternal(again, correlationId, 'pipeline (while answering an internal error)');
    }
  }

  private route(ex: Exchange, correlationId: string): void {
    const o = this.o;
    const started = performance.now();
    const origin = ex.headers['origin'];
    if (origin !== undefined && !o.origin(origin)) {
      o.telemetry.error('origin_rejected', ex.method);
      ex.respond(403, JSON_HEADERS, errorResponse(null, new GovError('invalid_request', { subject: `Origin '${origin}' is not allowed` }), correlationId));
      return;
    }
    if (origin !== undefined) ex.cors = corsHeaders(origin);
    if (ex.method === 'OPTIONS') {
      // A CORS preflight from an allowed origin (a foreign one got 403 above), or a plain
      // OPTIONS: answered here, never forwarded.
      ex.respond(204, origin === undefined ? { allow: CORS_METHODS } : { allow: CORS_METHODS, ...preflightHeaders(origin, ex.headers['access-control-request-headers']) }, '');
      return;
    }
    if (ex.path.startsWith(API_PREFIX)) {
      // The decision API: answered here, never forwarded upstream.
      this.api(ex);
      return;
    }
    if (o.draining()) {
      ex.respond(503, { ...JSON_HEADERS, 'retry-after': '5', connection: 'close' }, errorResponse(null, new GovError('service_unavailable', { details: 'shutting down' }), correlationId), true);
      return;
    }
    switch (ex.method) {
      case 'POST':
        this.post(ex, correlationId, started);
        return;
      case 'GET':
      case 'DELETE':
        this.stream(ex, correlationId, started);
        return;
      default:
        ex.respond(405, { ...JSON_HEADERS, allow: CORS_METHODS }, errorResponse(null, new GovError('invalid_request', { subject: `HTTP method ${ex.method} is not supported` }), correlationId));
    }
  }

  /** GET (server→client stream) and DELETE (end session): relayed, SSE events inspected. */
  private stream(ex: Exchange, correlationId: string, started: number): void {
    const o = this.o;
    const sessionId = ex.headers['mcp-session-id'];
    let lease: StreamLease | undefined;
    if (ex.method === 'GET' && o.streams !== undefined) {
      const admitted = o.streams.admit(this.clientOf(ex), sessionId);
      if (typeof admitted === 'string') {
        // Refused at once, like a GET past the upstream stream share: 429 + Retry-After, -32009.
        const share = admitted === 'streams_per_client' ? `${o.streams.perClient.max} streams for this client (THOUGHTGATE_MAX_STREAMS_PER_CLIENT)` : `${o.streams.perSession.max} streams on this session (THOUGHTGATE_MAX_STREAMS_PER_SESSION)`;
        o.telemetry.error('rate_limited', 'GET');
        const err = new GovError('rate_limited', { details: `${share} are open; close one or retry later`, retryAfter: STREAM_RETRY_AFTER_S });
        ex.respond(429, { ...JSON_HEADERS, 'retry-after': String(STREAM_RETRY_AFTER_S) }, errorResponse(null, err, correlationId));
        return;
      }
      lease = admitted;
    }
    const ctx = new ExchangeContext(this, ex.method, undefined, undefined, correlationId, started, o.snapshot(), sessionId, false);
    ctx.streamLease = lease;
    const relay = new Relay(ex, ctx);
    if (ex.method === 'DELETE' && sessionId !== undefined) ctx.forgetOnSuccess = true;
    try {
      o.upstream.send({ method: ex.method as 'GET' | 'DELETE', path: ex.path, headers: upstreamHeaders(ex.headers), correlationId }, relay);
    } catch (e) {
      lease?.release(); // the relay never finishes: handle() answers -32603, the shares come back here
      throw e;
    }
  }

  private post(ex: Exchange, correlationId: string, started: number): void {
    const o = this.o;
    if (ex.overLimit) {
      o.telemetry.framing('body_too_large');
      o.telemetry.error('body_too_large', 'unknown');
      const err = new GovError('body_too_large', { subject: `exceeds maximum size of ${o.limits.maxBodyBytes} bytes (THOUGHTGATE_MAX_REQUEST_BODY_BYTES)` });
      // 413, after the body was read to its end (transport/http-server.ts), so the client sees it.
      ex.respond(err.httpStatus, rejectHeaders(ex), errorResponse(null, err, correlationId));
      return;
    }
    const type = ex.headers['content-type'];
    const encoding = ex.headers['content-encoding'];
    if (!isJsonContentType(type) || (encoding !== undefined && encoding.toLowerCase() !== 'identity')) {
      // A body we cannot read exactly as the upstream would (another media type, compression) is not judged.
      o.telemetry.error('unsupported_media_type', 'POST');
      const why = encoding !== undefined ? `Content-Encoding '${encoding}' is not supported` : `Content-Type must be application/json (got '${type ?? 'none'}')`;
      ex.respond(415, rejectHeaders(ex), errorResponse(null, new GovError('invalid_request', { subject: why }), correlationId));
      return;
    }
    let decoded;
    try {
      decoded = decodeBody(ex.body ?? Buffer.alloc(0), o.limits);
    } catch (e) {
      const err = e instanceof GovError ? e : new GovError('parse_error', { subject: String(e) });
      o.telemetry.framing(err.kind);
      o.telemetry.error(err.kind, 'unknown');
      // 400 (parse error, invalid request): the transport's status for a body the server rejects.
      ex.respond(err.httpStatus, rejectHeaders(ex), errorResponse(null, err, correlationId));
      return;
    }
    if (this.postsInFlight >= o.limits.maxConcurrentRequests) {
      o.telemetry.error('rate_limited', 'POST');
      const err = new GovError('rate_limited', { details: `${o.limits.maxConcurrentRequests} requests already in flight` });
      ex.respond(200, JSON_HEADERS, errorResponse(decoded.kind === 'single' ? (decoded.message as { id?: unknown }).id : null, err, correlationId));
      return;
    }
    const snapshot = o.snapshot();
    if (decoded.kind === 'batch') {
      this.batch(ex, decoded.items, correlationId, started, snapshot);
      return;
    }
    this.single(ex, decoded.message, correlationId, started, snapshot);
  }

  private single(ex: Exchange, message: JsonRpcMessage, correlationId: string, started: number, snapshot: Snapshot): void {
    const o = this.o;
    const method = (message as { method?: string }).method;
    const id = (message as { id?: unknown }).id;
    const params = (message as { params?: Record<string, unknown> }).params;
    const sessionId = ex.headers['mcp-session-id'];
    if (method === undefined && typeof id === 'string' && id.startsWith(ELICITATION_ID_PREFIX) && o.approvals !== undefined) {
      // The client's answer to the console link we offered for a held call: ours, never the upstream's.
      ex.respond(202, null, '');
      return;
    }
    if (method !== undefined) {
      const isRequest = id !== undefined;
      const mismatch = checkStandardHeaders(ex.headers, method, params, isRequest);
      if (mismatch !== undefined) {
        o.telemetry.error(mismatch.kind, method);
        ex.respond(mismatch.httpStatus, rejectHeaders(ex), errorResponse(id, mismatch, correlationId));
        return;
      }
      const screened = this.screen(method, isRequest, params, () => this.versionOf(ex.headers, params), correlationId, sessionId, snapshot);
      if (screened !== undefined) {
        if (isRequest) this.refuse(ex, methodLabel(method), id, screened, correlationId, started);
        else {
          // A notification the proxy will not pass on: HTTP 400 with an id-less error (MCP transports).
          o.telemetry.error(screened.kind, methodLabel(method));
          ex.respond(400, rejectHeaders(ex), errorResponse(null, screened, correlationId));
        }
        return;
      }
      if (isRequest) {
        if (o.approvals !== undefined && method.startsWith('tasks/') && o.approvals.isOurs(method, params, snapshot.config.sources[0]!.id)) {
          this.answerTask(ex, method, params, id, correlationId, started, sessionId);
          return;
        }
        const verdict = this.judgeOne(method, params, correlationId, sessionId, snapshot);
        if (verdict instanceof Promise) {
          // Gate 3 answered from a worker: carry on when it has decided (the client may have left).
          verdict.then((v) => {
            if (!ex.aborted) this.act(ex, message, v, correlationId, started, snapshot);
          }, (err: unknown) => {
            if (!ex.aborted) this.refuse(ex, method, id, asGovError(err), correlationId, started);
          }).catch((e: unknown) => this.internal(ex, e, correlationId)); // no unhandled rejection ends the process
          return;
        }
        if (verdict !== undefined) {
          this.act(ex, message, verdict, correlationId, started, snapshot);
          return;
        }
      } else if (method === 'notifications/cancelled' && o.approvals !== undefined) {
        // Nobody waits for a held call its client cancelled: withdraw its approval. Still forwarded:
        // the upstream may have its own request in flight with that id.
        o.approvals.cancelHeld(sessionId, params?.['requestId']).catch(() => { /* logged by the engine; the notification goes on */ });
      }
    }
    this.forwardSingle(ex, message, correlationId, started, snapshot);
  }

  /** Carries out a verdict on a single request: forward, refuse, or hand it to gate 4. */
  private act(ex: Exchange, message: JsonRpcMessage, v: Verdict, correlationId: string, started: number, snapshot: Snapshot): void {
    const m = message as { id: string | number; method: string; params?: Record<string, unknown> };
    if (v === undefined) this.forwardSingle(ex, message, correlationId, started, snapshot);
    else if (v instanceof Hold) this.hold(ex, message, v, correlationId, started, snapshot);
    else this.refuse(ex, m.method, m.id, v, correlationId, started);
  }

  /** Gate 4: held for a human (or forwarded when a standing approval covers it). */
  private hold(ex: Exchange, message: JsonRpcMessage, h: Hold, correlationId: string, started: number, snapshot: Snapshot): void {
    const o = this.o;
    const m = message as { id: string | number; method: string; params?: Record<string, unknown> };
    const sessionId = ex.headers['mcp-session-id'];
    const urlElicitation = sessionId !== undefined && o.sessions.get(sessionId)?.urlElicitation === true;
    o.approvals!.hold(ex, { message: m, subject: h.subject, decision: h.decision, correlationId, sessionId, snapshot, urlElicitation }).then((r) => {
      if (r === 'forward' && !ex.aborted) this.forwardSingle(ex, message, correlationId, started, snapshot);
      else o.telemetry.request(m.method, h.subject.resource, 'success', performance.now() - started);
    }, (err: unknown) => {
      if (!ex.aborted) this.refuse(ex, m.method, m.id, err instanceof GovError ? err : new GovError('service_unavailable', { details: `approval could not be requested: ${(err as Error)?.message ?? String(err)}` }), correlationId, started);
    }).catch((e: unknown) => this.internal(ex, e, correlationId)); // no unhandled rejection ends the process
  }

  private answerTask(ex: Exchange, method: string, params: Record<string, unknown> | undefined, id: unknown, correlationId: string, started: number, sessionId: string | undefined): void {
    const o = this.o;
    // tasks/list merges the upstream's own tasks with ours: it is asked with the client's request
    const upstream = method === 'tasks/list' ? { path: ex.path, headers: upstreamHeaders(ex.headers), body: '' } : undefined;
    o.approvals!.taskMethod(method, params, id, correlationId, sessionId, upstream).then((a) => {
      o.telemetry.request(method, undefined, a.error ? 'error' : 'success', performance.now() - started);
      ex.respond(200, JSON_HEADERS, a.body);
    }, (err: unknown) => {
      this.refuse(ex, method, id, new GovError('service_unavailable', { details: `approval store: ${(err as Error)?.message ?? String(err)}` }), correlationId, started);
    }).catch((e: unknown) => this.internal(ex, e, correlationId));
  }

  private refuse(ex: Exchange, method: string, id: unknown, err: GovError, correlationId: string, started: number): void {
    const o = this.o;
    o.telemetry.error(err.kind, method);
    o.telemetry.request(method, method === 'tools/call' ? err.tool : undefined, 'error', performance.now() - started);
    ex.respond(200, JSON_HEADERS, errorResponse(id, err, correlationId));
  }

  private forwardSingle(ex: Exchange, message: JsonRpcMessage, correlationId: string, started: number, snapshot: Snapshot): void {
    const o = this.o;
    const method = (message as { method?: string }).method;
    const id = (message as { id?: unknown }).id;
    const params = (message as { params?: Record<string, unknown> }).params;
    const sessionId = ex.headers['mcp-session-id'];
    const route = messageRoute(message as { id?: unknown; method?: string; params?: Record<string, unknown> });
    const tool = method === 'tools/call' && typeof params?.name === 'string' ? (params.name as string) : undefined;
    const ctx = new ExchangeContext(this, method ?? 'response', tool, id, correlationId, started, snapshot, sessionId, route.kind === 'request');
    ctx.inspectAll = method !== undefined && (Object.hasOwn(LIST_METHODS, method) || method === 'initialize');
    ctx.isInitialize = method === 'initialize';
    if (ctx.isInitialize) {
      const elicitation = (params?.capabilities as { elicitation?: { url?: unknown } } | undefined)?.elicitation;
      ctx.urlElicitation = elicitation !== null && typeof elicitation === 'object' && elicitation.url !== null && typeof elicitation.url === 'object';
    }
    const relay = new Relay(ex, ctx);
    const req: UpstreamRequest = {
      method: 'POST',
      path: ex.path,
      headers: upstreamHeaders(ex.headers),
      body: ex.body!,
      correlationId,
      message: route,
      client: ctx.isInitialize ? this.clientOf(ex) : undefined,
    };
    this.postsInFlight++;
    ctx.countsInFlight = true;
    o.upstream.send(req, relay);
  }

  /**
   * Refuses, before any gate, what must not reach a server whatever the rules say: a lookalike
   * of an MCP method (`Tools/call`, `tools.call`, homoglyphs: always), a governed method without
   * an id (it cannot be judged and answered as a request, yet a server may act on it), and under
   * `governance.unknown_methods: deny` a method outside the MCP set of the session's revision
   * (`version` is asked only then). Undefined: go on. One map lookup on the common path.
   */
  screen(method: string, isRequest: boolean, params: Record<string, unknown> | undefined, version: () => string | undefined, correlationId: string, sessionId: string | undefined, snapshot: Snapshot, source?: string): GovError | undefined {
    const o = this.o;
    if (o.mode === 'bypass') return undefined;
    const denyUnknown = snapshot.config.governance.unknown_methods === 'deny';
    const cls = classifyMethod(method, denyUnknown ? version() : undefined);
    if (cls === 'mcp') {
      if (isRequest || !GOVERNED_METHODS.has(method)) return undefined;
      return this.refusal(method, params, new GovError('invalid_request', {
        subject: `${method} must be a request (with an id): as a notification it cannot be judged and is not forwarded`,
      }), `${method} sent as a notification`, correlationId, sessionId, snapshot, source);
    }
    if (cls === 'lookalike') {
      const imitated = lookalikeOf(method)!;
      return this.refusal(imitated, params, new GovError('method_lookalike', { subject: method, details: `looks like the MCP method '${imitated}'` }),
        `lookalike of ${imitated}: ${JSON.stringify(method)}`, correlationId, sessionId, snapshot, source);
    }
    if (!denyUnknown) return undefined;
    const why = cls === 'other_era' ? `not a method of MCP ${version()}` : 'not an MCP method';
    const err = new GovError('method_not_found', { subject: method, details: `${why} (governance.unknown_methods: deny)` });
    // Policy, not protocol: the development profile forwards it, marked WOULD_BLOCK.
    return this.refusal(method, params, err, `${JSON.stringify(method)}: ${why}`, correlationId, sessionId, snapshot, source, o.mode === 'audit');
  }

  /** Records a refusal made before the gates (audit line, BLOCKED log, decision metric). */
  private refusal(method: string, params: Record<string, unknown> | undefined, err: GovError, reason: string, correlationId: string, sessionId: string | undefined, snapshot: Snapshot, source: string | undefined, wouldBlock = false): GovError | undefined {
    const o = this.o;
    const decision: Decision = { action: 'deny', gate: 'gate2', error: err.kind, reason };
    const tool = GOVERNED_METHODS.has(method) ? resourceNameOf(method, params) : undefined;
    o.telemetry.decision({
      correlationId, session: sessionId, principal: o.principal, method, tool, sourceId: source ?? snapshot.config.sources[0]!.id,
      decision, mode: o.mode, wouldBlock, snapshot: snapshot.version, judgeMs: 0,
    });
    return wouldBlock ? undefined : err;
  }

  /** The protocol revision a message is spoken in: its session's, its envelope's, or its header's. */
  private versionOf(headers: HeaderMap, params: Record<string, unknown> | undefined): string | undefined {
    const sessionId = headers['mcp-session-id'];
    return (sessionId !== undefined ? this.o.sessions.get(sessionId)?.version : undefined) ?? bodyClaimedVersion(params) ?? headers['mcp-protocol-version']?.trim();
  }

  /**
   * Judges one request. Returns the error to answer with, or undefined to forward.
   * In audit mode a denial is logged (WOULD_BLOCK) and the call forwarded.
   */
  judgeOne(method: string, params: Record<string, unknown> | undefined, correlationId: string, sessionId: string | undefined, snapshot: Snapshot, source?: string): Verdict | Promise<Verdict> {
    const o = this.o;
    if (o.mode === 'bypass') return undefined;
    const field = GOVERNED_METHODS.get(method);
    if (field === undefined) return undefined;
    if (field === 'subscriptions') return this.judgeSubscriptions(params, correlationId, sessionId, snapshot, source);
    let resource: string | undefined;
    let kind: ResourceKind = 'name';
    if (field === 'name') {
      // tools/call and prompts/get (the hot path): no allocation beyond the subject
      const name = (params as { name?: unknown } | null | undefined)?.name;
      resource = typeof name === 'string' ? name : undefined;
    } else {
      const ref = resourceOf(method, params);
      resource = ref?.name;
      if (ref !== undefined) kind = ref.kind;
    }
    if (resource === undefined) {
      const what = field === 'ref' ? `'ref' (a ref/prompt with a name or a ref/resource with a uri)` : `required field '${field}'`;
      return new GovError('invalid_params', { subject: `Missing or invalid ${what} in ${method} params` });
    }
    if (kind !== 'name') {
      // One canonical name, judged and forwarded: a URI is judged in its canonical (WHATWG)
      // form, and a spelling that is not that form is refused rather than rewritten. The bytes
      // the upstream gets are then exactly the bytes judged (no re-serialised body, no Mcp-Name
      // header out of step with it, the same for held calls replayed later and stdio lines),
      // and no server can read a second name into it. Clients that take URIs from
      // resources/list already send canonical ones; the error names the form to send.
      const problem = canonicalProblem(method, resource, kind);
      // Recorded like a denial (audit line, BLOCKED log): a respelt URI is how a bypass is tried.
      if (problem !== undefined) {
        const err = new GovError('invalid_params', problem.canonical === undefined ? { subject: problem.message } : { subject: problem.message, details: problem.canonical });
        return this.refusal(method, params, err, problem.reason, correlationId, sessionId, snapshot, source)!;
      }
    }
    const t0 = performance.now();
    // One source per sidecar (read from the snapshot so a reload that renames it applies at
    // once); wrap's governance service names the agent's server the message is for.
    const sourceId = source ?? snapshot.config.sources[0]!.id;
    const subject: Subject = { method, resource, kind, sourceId, arguments: params?.arguments, principal: o.principal };
    const decided = judge(subject, snapshot);
    if (decided instanceof Promise) {
      return decided.then((d) => this.settle(d, subject, correlationId, sessionId, snapshot, t0));
    }
    return this.settle(decided, subject, correlationId, sessionId, snapshot, t0);
  }

  /**
   * `subscriptions/listen` (2026-07-28) asks updates for resource URIs: each is judged as a
   * resources/subscribe of it, and the first refusal refuses the whole request. A subscription
   * cannot wait for a person, so one that needs approval is refused (fail closed).
   */
  private judgeSubscriptions(params: Record<string, unknown> | undefined, correlationId: string, sessionId: string | undefined, snapshot: Snapshot, source: string | undefined): Verdict | Promise<Verdict> {
    const uris = subscribedUris(params);
    if (uris === undefined) return undefined;
    const verdicts: (Verdict | Promise<Verdict>)[] = [];
    let pending = false;
    for (const uri of uris) {
      if (typeof uri !== 'string') return new GovError('invalid_params', { subject: 'subscriptions/listen notifications.resourceSubscriptions must be URIs' });
      const v = this.judgeOne('resources/subscribe', { uri }, correlationId, sessionId, snapshot, source);
      if (v instanceof Promise) pending = true;
      verdicts.push(v);
    }
    const first = (vs: Verdict[]): Verdict => {
      for (const v of vs) {
        if (v instanceof Hold) return new GovError('governance_rule_denied', { tool: v.subject.resource, details: 'needs approval, which a subscription cannot wait for' });
        if (v !== undefined) return v;
      }
      return undefined;
    };
    return pending ? Promise.all(verdicts).then(first) : first(verdicts as Verdict[]);
  }

  /** Records a decision (metrics, audit, WOULD_BLOCK) and turns it into what to answer. */
  private settle(judged: Decision, subject: Subject, correlationId: string, sessionId: string | undefined, snapshot: Snapshot, t0: number): Verdict | Promise<Verdict> {
    const o = this.o;
    const { method, resource, sourceId } = subject;
    const decision = o.approvals === undefined ? approvalGate(judged) : judged;
    const judgeMs = performance.now() - t0;
    const needsHuman = decision.action === 'approve';
    const blocked = decision.action === 'deny';
    // The development profile auto-approves (audited as such) as it forwards denials.
    const wouldBlock = (blocked || needsHuman) && o.mode === 'audit';
    const recorded = o.telemetry.decision({
      correlationId, session: sessionId, principal: o.principal, method, tool: resource, sourceId,
      decision, mode: o.mode, wouldBlock, snapshot: snapshot.version, judgeMs,
    });
    const verdict = wouldBlock || (!blocked && !needsHuman) ? undefined
      : needsHuman ? new Hold(decision, subject)
      : new GovError(decision.error ?? 'governance_rule_denied', { tool: resource, details: decision.reason });
    // Strict audit: nothing goes on before its line is on disk; a trail that cannot be written
    // may refuse the call instead (audit.on_failure). Buffered: undefined, no wait.
    if (recorded !== undefined) return recorded.then((refused) => refused ?? verdict);
    return verdict;
  }

  private batch(ex: Exchange, items: BatchItem[], correlationId: string, started: number, snapshot: Snapshot): void {
    const o = this.o;
    const sessionId = ex.headers['mcp-session-id'];
    const version = (sessionId !== undefined ? o.sessions.get(sessionId)?.version : undefined) ?? ex.headers['mcp-protocol-version'] ?? BATCH_VERSION;
    if (version !== BATCH_VERSION) {
      // Later revisions removed batching; an SDK server would otherwise execute every element unjudged.
      o.telemetry.framing('unsupported_batch');
      const err = new GovError('invalid_request', { subject: `JSON-RPC batches are not supported on protocol version ${version}` });
      o.telemetry.error(err.kind, 'batch');
      ex.respond(err.httpStatus, rejectHeaders(ex), errorResponse(null, err, correlationId));
      return;
    }
    // Every element is judged on the one snapshot this request started with.
    const verdicts: (Verdict | Promise<Verdict>)[] = new Array(items.length);
    let pending = false;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (!item.ok) continue;
      const m = item.message as { id?: unknown; method?: string; params?: Record<string, unknown> };
      if (m.method !== undefined && m.method !== 'initialize') {
        // Requests and notifications alike; a refused notification is dropped (forwardBatch).
        const screened = this.screen(m.method, m.id !== undefined, m.params, () => version, correlationId, sessionId, snapshot);
        if (screened !== undefined) {
          o.telemetry.error(screened.kind, methodLabel(m.method));
          verdicts[i] = screened;
          continue;
        }
        if (m.id === undefined) {
          // As for a single notification: a held call its client cancelled is withdrawn (and forwarded).
          if (m.method === 'notifications/cancelled' && o.approvals !== undefined) {
            o.approvals.cancelHeld(sessionId, m.params?.['requestId']).catch(() => { /* logged by the engine */ });
          }
          continue;
        }
        const v = this.judgeOne(m.method, m.params, correlationId, sessionId, snapshot);
        if (v instanceof Promise) pending = true;
        verdicts[i] = v;
      }
    }
    if (pending) {
      Promise.all(verdicts).then((vs) => {
        if (!ex.aborted) this.forwardBatch(ex, items, vs, correlationId, started, snapshot);
      }, (err: unknown) => {
        if (!ex.aborted) ex.respond(200, JSON_HEADERS, errorResponse(null, asGovError(err), correlationId));
      }).catch((e: unknown) => this.internal(ex, e, correlationId));
      return;
    }
    this.forwardBatch(ex, items, verdicts as Verdict[], correlationId, started, snapshot);
  }

  private forwardBatch(ex: Exchange, items: BatchItem[], verdicts: Verdict[], correlationId: string, started: number, snapshot: Snapshot): void {
    const o = this.o;
    const sessionId = ex.headers['mcp-session-id'];
    const collector = new BatchCollector(items.length);
    const forward: string[] = [];
    const held: { index: number; message: HeldMessage; hold: Hold; raw: string }[] = [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (!item.ok) {
        o.telemetry.framing(item.error.kind);
        collector.answer(i, errorResponse(item.id, item.error, correlationId));
        continue;
      }
      const m = item.message as { id?: unknown; method?: string; params?: Record<string, unknown> };
      if (m.method === 'initialize') {
        collector.answer(i, errorResponse(m.id, new GovError('invalid_request', { subject: 'initialize must not be part of a batch' }), correlationId));
        continue;
      }
      if (m.method !== undefined && m.id === undefined && verdicts[i] !== undefined) continue; // refused notification: never forwarded
      if (m.method !== undefined && m.id !== undefined) {
        const denied = verdicts[i];
        if (denied instanceof Hold) {
          // Held for a person; the batch's answer goes out when every held element is decided.
          collector.hold(i);
          held.push({ index: i, message: m as HeldMessage, hold: denied, raw: item.raw });
          continue;
        }
        if (denied !== undefined) {
          collector.answer(i, errorResponse(m.id, denied, correlationId));
          continue;
        }
        collector.expect(i, m.id);
      }
      forward.push(item.raw);
    }
    const ctx = new ExchangeContext(this, 'batch', undefined, undefined, correlationId, started, snapshot, sessionId, true);
    const withdraw: (() => void)[] = [];
    for (const h of held) {
      withdraw.push(o.approvals!.holdInBatch(
        { message: h.message, subject: h.hold.subject, decision: h.hold.decision, correlationId, sessionId, snapshot },
        { path: ex.path, headers: upstreamHeaders(ex.headers), body: h.raw },
        (text) => collector.fill(h.index, text),
      ));
    }
    if (forward.length === 0) collector.finish(ex, ctx);
    else collector.bind(ex, ctx);
    if (withdraw.length > 0) {
      // The client left before its held elements were decided: none of them runs for nobody.
      const collectorAbort = ex.onAbort;
      ex.onAbort = () => {
        collectorAbort?.();
        for (const w of withdraw) w();
      };
    }
    if (forward.length === 0) return;
    this.postsInFlight++;
    ctx.countsInFlight = true;
    o.upstream.send({
      method: 'POST', path: ex.path, headers: upstreamHeaders(ex.headers), body: Buffer.from(`[${forward.join(',')}]`), correlationId,
    }, collector);
  }

  private api(ex: Exchange): void {
    const o = this.o;
    if (ex.overLimit) {
      ex.respond(413, JSON_HEADERS, JSON.stringify({ error: 'body_too_large', message: `over ${o.limits.maxBodyBytes} bytes` }));
      return;
    }
    const started = performance.now();
    handleDecisionApi(ex.method, ex.path, ex.headers, ex.body, o.decisionApi, ex).then((r) => {
      o.telemetry.request(ex.path.endsWith('/batch') ? 'api/batch' : 'api/decide', undefined, r.status === 200 ? 'success' : 'error', performance.now() - started);
      ex.respond(r.status, r.headers, r.body);
    }, (err: Error) => {
      ex.respond(500, JSON_HEADERS, JSON.stringify({ error: 'internal_error', message: err.message }));
    }).catch((e: unknown) => this.internal(ex, e, randomUUID()));
  }

  /** The client a share is counted for: the caller's principal and TCP peer (session/client-quota.ts). */
  private clientOf(ex: Exchange): string {
    return clientKey(this.o.principal, ex.remoteAddress);
  }

  /** @internal used by ExchangeContext */
  get options(): PipelineOptions {
    return this.o;
  }
}

type HeldMessage = { id: string | number; method: string; params?: Record<string, unknown> };

/** A call gate 4 must hold for a human. */
export class Hold {
  constructor(readonly decision: Decision, readonly subject: Subject) {}
}

/** What judging a request comes to: the error to answer with, a hold for approval, or undefined to forward. */
export type Verdict = GovError | Hold | undefined;

/** The method as a metric label: MCP methods by name, anything else as one label (no unbounded label values). */
function methodLabel(method: string): string {
  return MCP_CLIENT_METHODS.has(method) ? method : 'unknown';
}

function asGovError(err: unknown): GovError {
  if (err instanceof GovError) return err;
  // Fail closed: a gate that could not decide denies.
  return new GovError('policy_denied', { details: `evaluation failed: ${(err as Error)?.message ?? String(err)}` });
}

/** Tasks (SEP-1686) exist from protocol revision 2025-11-25 on. */
function supportsTasks(message: unknown): boolean {
  const v = (message as { result?: { protocolVersion?: unknown } } | null)?.result?.protocolVersion;
  return typeof v === 'string' && v >= '2025-11-25';
}

function isJsonContentType(type: string | undefined): boolean {
  if (type === undefined) return false;
  const semi = type.indexOf(';');
  const media = (semi === -1 ? type : type.slice(0, semi)).trim().toLowerCase();
  return media === 'application/json';
}

/**
 * Per-exchange state the Relay calls back into. A class (not closures) so one object per
 * request carries everything; its methods live on the prototype.
 */
export class ExchangeContext implements RelayContext {
  inspectAll = false;
  /** GET streams (and anything not a POSTed request) are scanned for list results */
  scan: boolean;
  isInitialize = false;
  urlElicitation = false;
  forgetOnSuccess = false;
  countsInFlight = false;
  /** a GET stream's shares, given back when the exchange ends, whichever way */
  streamLease: StreamLease | undefined = undefined;
  readonly maxEventBytes: number;
  readonly maxDepth: number;
  private upstreamSession: string | undefined;
  private upstreamStarted = 0;

  constructor(
    private readonly pipeline: Pipeline,
    readonly method: string,
    readonly tool: string | undefined,
    readonly id: unknown,
    readonly correlationId: string,
    private readonly started: number,
    readonly snapshot: Snapshot,
    readonly sessionId: string | undefined,
    readonly expectsAnswer: boolean,
  ) {
    this.maxEventBytes = pipeline.options.maxEventBytes;
    this.maxDepth = pipeline.options.limits.maxDepth;
    this.scan = !expectsAnswer;
    this.upstreamStarted = performance.now();
  }

  onUpstreamHead(status: number, headers: HeaderMap): void {
    const o = this.pipeline.options;
    o.telemetry.upstream(status, performance.now() - this.upstreamStarted);
    if (this.isInitialize) this.upstreamSession = headers['mcp-session-id'];
    if (this.forgetOnSuccess && status >= 200 && status < 300) o.sessions.forget(this.sessionId!);
  }

  inspect(message: unknown): string | undefined {
    const o = this.pipeline.options;
    if (this.isInitialize && this.upstreamSession !== undefined) {
      const version = (message as { result?: { protocolVersion?: unknown } })?.result?.protocolVersion;
      if (typeof version === 'string') o.sessions.remember(this.upstreamSession, version, this.urlElicitation);
    }
    if (o.mode === 'bypass') return undefined;
    const sourceId = this.snapshot.config.sources[0]!.id;
    let changed = filterListResponse(message, this.snapshot, sourceId);
    if (o.approvals !== undefined && o.mode === 'enforce' && (this.method === 'tools/list' || (this.isInitialize && supportsTasks(message)))) {
      changed = advertiseTasks(message, this.snapshot, sourceId, this.isInitialize) || changed;
    }
    return changed ? JSON.stringify(message) : undefined;
  }

  renderError(err: GovError): string {
    return errorResponse(this.id, err, this.correlationId);
  }

  onDone(_status: number, err: GovError | undefined): void {
    const o = this.pipeline.options;
    if (this.countsInFlight) {
      this.countsInFlight = false;
      this.pipeline.postsInFlight--;
    }
    if (this.streamLease !== undefined) {
      this.streamLease.release();
      this.streamLease = undefined;
    }
    if (err !== undefined) o.telemetry.error(err.kind, this.method);
    o.telemetry.request(this.method, this.tool, err === undefined ? 'success' : 'error', performance.now() - this.started);
  }
}
