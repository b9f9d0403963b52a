// Gate 4 as the traffic port sees it. A call the gates judged `approve`:
//   - is forwarded at once when a standing approval covers it;
//   - with `params.task` (SEP-1686, tools/call): answered at once with a task, executed as soon
//     as a human approves, its result kept for tasks/result;
//   - otherwise held open: SSE keep-alives (progress notifications when the client sent a
//     progressToken) or, for a JSON-only client, leading whitespace, until the decision.
// Also answers tasks/get, tasks/result, tasks/list and tasks/cancel for our task ids, and
// executes approved calls (after re-judging them when the policy changed meanwhile).
import { GovError, errorResponse } from '../core/errors.js';
import type { Principal } from '../core/policy-engine.js';
import { formatSseEvent } from '../framing/sse.js';
import type { Decision, Subject } from '../gates/decision.js';
import { judge } from '../gates/judge.js';
import { mayHold } from '../gates/rules.js';
import { resourceOf, type ResourceKind } from '../policy/governable.js';
import type { Snapshot, WorkflowConfig } from '../policy/types.js';
import { messageRoute, upstreamHeaders } from '../session/headers.js';
import type { Exchange } from '../transport/http-server.js';
import type { HeaderMap, Upstream } from '../upstream/types.js';
import { CaptureSink } from './capture.js';
import type { ApprovalEngine } from './engine.js';
import { TERMINAL_STATES, type ApprovalRecord, type HeldRequest, type Outcome } from './types.js';

export const TASK_ID_PREFIX = 'tg_';
/** who withdrew a held call whose client closed its connection or stream */
export const CLIENT_GONE = 'system:client-gone';
/** ids of the elicitation requests we send held clients; their answers are not forwarded */
export const ELICITATION_ID_PREFIX = 'tg-elicit-';
const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json' };
const TASKS_PAGE = 50;

export interface GatewayOptions {
  engine: ApprovalEngine;
  upstream: Upstream;
  snapshot: () => Snapshot;
  principal: Principal;
  keepaliveMs: number;
  taskTtlMinMs: number;
  taskTtlMaxMs: number;
  /** timeout of approve rules that name no workflow */
  defaultTimeoutMs: number;
  /** largest upstream answer kept for an approved call */
  maxResultBytes: number;
  /** the channel a workflow's requests go to (resolved at start: Slack without a token → console) */
  channelFor: (name: string, workflow: WorkflowConfig | undefined) => string;
  /** where a person approves (shown to clients that are kept waiting) */
  consoleUrl: string;
  /**
   * ids of held calls whose client is waiting right now, shared by every gateway of the process
   * (the engine parks an approved call that is not in it instead of running it for nobody)
   */
  waiting?: Set<string>;
}

/** What the pipeline knows about the call being held. */
export interface HeldCall {
  message: { id: string | number; method: string; params?: Record<string, unknown> };
  subject: Subject;
  decision: Decision;
  correlationId: string;
  sessionId: string | undefined;
  snapshot: Snapshot;
  /** the client takes URL-mode elicitation: offer it the console link */
  urlElicitation?: boolean;
}

/** The wire status of a record (SEP-1686 has five). */
function wireStatus(r: ApprovalRecord): 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled' {
  switch (r.state) {
    case 'completed': return 'completed';
    case 'cancelled': return 'cancelled';
    case 'failed': case 'rejected': case 'expired': return 'failed';
    default: return 'working';
  }
}

function statusMessage(r: ApprovalRecord): string {
  switch (r.state) {
    case 'pending': return `Awaiting human approval (${r.votes.filter((v) => v.verdict === 'approve').length}/${r.requiredApprovals}) via ${r.channel}`;
    case 'approved': case 'executing': return `Approved by ${r.decidedBy}; executing`;
    case 'completed': return `Approved by ${r.decidedBy}; completed`;
    case 'failed': return `Approved by ${r.decidedBy}; the call failed`;
    case 'rejected': return `Rejected by ${r.decidedBy}${r.reason ? `: ${r.reason}` : ''}`;
    case 'expired': return `No decision within ${Math.round((r.expiresAt - r.createdAt) / 1000)}s; not executed`;
    case 'cancelled': return `Cancelled by ${r.decidedBy}${r.reason ? `: ${r.reason}` : ''}`;
  }
}

export function taskView(r: ApprovalRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {
    taskId: r.id,
    status: wireStatus(r),
    statusMessage: statusMessage(r),
    createdAt: new Date(r.createdAt).toISOString(),
    lastUpdatedAt: new Date(r.updatedAt).toISOString(),
    ttl: Math.max(0, r.keepUntil - r.createdAt),
  };
  if (!TERMINAL_STATES.has(r.state)) view.pollInterval = r.pollIntervalMs;
  return view;
}

/** The error a client gets for a call that was not executed (or failed). */
export function outcomeError(r: ApprovalRecord): GovError | undefined {
  switch (r.state) {
    case 'rejected':
      return new GovError('approval_rejected', { tool: r.tool, details: `rejected by ${r.decidedBy}${r.reason ? `: ${r.reason}` : ''}` });
    case 'expired':
      return new GovError('approval_timeout', { tool: r.tool, details: `after ${Math.round((r.expiresAt - r.createdAt) / 1000)}s with no decision; not executed` });
    case 'cancelled':
      return new GovError('task_cancelled', { subject: r.id, tool: r.tool, details: `cancelled by ${r.decidedBy}${r.reason ? `: ${r.reason}` : ''}` });
    default:
      return undefined;
  }
}

/** The JSON-RPC response text for a finished record, answering request `id`. */
export function finalResponse(r: ApprovalRecord, id: unknown, correlationId: string): string {
  const err = outcomeError(r);
  if (err !== undefined) return errorResponse(id, err, correlationId);
  const o = r.outcome;
  if (o?.error !== undefined) return JSON.stringify({ jsonrpc: '2.0', id, error: o.error });
  return JSON.stringify({ jsonrpc: '2.0', id, result: o?.result ?? {} });
}

/**
 * Whether a caller may see a record: it belongs to the principal and the MCP session that made
 * it. A record made without a session (the 2026-07-28 stateless era) belongs to "no session":
 * only callers without a session see it, and a record of a session is never seen without one.
 */
export function ownedBy(r: ApprovalRecord, principal: string, sessionId: string | undefined): boolean {
  return r.principal === principal && (r.sessionId ?? null) === (sessionId ?? null);
}

export class ApprovalGateway {
  /** requests held open right now (ended with a retriable error at shutdown) */
  readonly held = new Set<HeldExchange>();

  constructor(private readonly o: GatewayOptions) {}

  /** Shutdown: held clients are told to retry; their approvals stay pending in the store. */
  closeHeld(): void {
    for (const h of [...this.held]) h.abandon();
  }

  get engine(): ApprovalEngine {
    return this.o.engine;
  }

  /**
   * The client sent `notifications/cancelled {requestId}`: nobody waits for that call any more,
   * so its approval is withdrawn (cancelled: never executed, channels updated). Only held calls
   * of this caller and session with that JSON-RPC id (ids are per session; 1 and "1" differ);
   * tasks outlive their request by design and are cancelled with tasks/cancel instead. Looked
   * up in the store, not only among the requests held open here: the connection may be gone
   * already, or held by another replica. Resolves to the ids withdrawn.
   */
  async cancelHeld(sessionId: string | undefined, requestId: unknown): Promise<string[]> {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return [];
    const o = this.o;
    const mine = await o.engine.list((r) => r.state === 'pending' && r.mode === 'held' && r.requestId === requestId && ownedBy(r, o.principal.id, sessionId));
    const out: string[] = [];
    for (const r of mine) {
      const after = await o.engine.cancel(r.id, `requester:${o.principal.id}`);
      if (after?.state === 'cancelled') out.push(r.id);
    }
    return out;
  }

  workflowOf(decision: Decision, snapshot: Snapshot): { name: string; workflow: WorkflowConfig | undefined } {
    const all = snapshot.config.approval;
    if (decision.approval !== undefined && all[decision.approval] !== undefined) return { name: decision.approval, workflow: all[decision.approval] };
    const names = Object.keys(all);
    if (names.length === 1) return { name: names[0]!, workflow: all[names[0]!] };
    return { name: 'default', workflow: undefined };
  }

  /**
   * Takes over a call that needs approval. Resolves to 'forward' when a standing approval
   * covers it (the pipeline then forwards it as usual); otherwise the exchange is answered here.
   */
  async hold(ex: Exchange, call: HeldCall): Promise<'forward' | 'handled'> {
    const params = call.message.params ?? {};
    const task = params['task'];
    const asTask = call.message.method === 'tools/call' && task !== null && typeof task === 'object' && !Array.isArray(task);
    let body = ex.body!.toString('utf8');
    if (asTask) {
      // We own the task; the upstream gets the plain call.
      const { task: _dropped, ...rest } = params;
      body = JSON.stringify({ jsonrpc: '2.0', id: call.message.id, method: call.message.method, params: rest });
    }
    const rec = await this.ask(call, { path: ex.path, headers: upstreamHeaders(ex.headers), body }, asTask ? (task as { ttl?: unknown }) : undefined);
    if (rec === 'granted') return 'forward';
    if (ex.aborted) return 'handled';
    if (asTask) {
      ex.respond(200, JSON_HEADERS, JSON.stringify({ jsonrpc: '2.0', id: call.message.id, result: { task: taskView(rec) } }));
      return 'handled';
    }
    new HeldExchange(ex, rec, call.message, call.correlationId, this.o, this.held, call.urlElicitation === true).start();
    return 'handled';
  }

  /**
   * Asks for approval of a call (the sidecar's held and task modes, and the stdio shim):
   * 'granted' when a standing approval covers it (and no task was asked for), else the record.
   * `task` is the request's `params.task` when the client asked for a SEP-1686 task.
   */
  /**
   * One element of a 2025-03-26 batch held for approval: `answer` gets its final JSON-RPC
   * response (the upstream's once approved and run, or the refusal) — also when a standing
   * approval covers it, since the element is then run on its own, not with the batch.
   * Returns what to call when the batch's client goes away (withdraws the approval).
   */
  holdInBatch(call: HeldCall, request: HeldRequest, answer: (text: string) => void): () => void {
    const o = this.o;
    let gone = false;
    let id: string | undefined;
    const fail = (err: unknown): void => {
      const e = err instanceof GovError ? err : new GovError('service_unavailable', { details: `approval could not be requested: ${(err as Error)?.message ?? String(err)}` });
      answer(errorResponse(call.message.id, e, call.correlationId));
    };
    this.ask(call, request, undefined, true).then((rec) => {
      if (rec === 'granted') return; // not reached: recordGranted
      id = rec.id;
      if (gone) {
        o.engine.cancel(rec.id, CLIENT_GONE).catch(() => { /* the store failed: it times out instead */ });
        return;
      }
      o.waiting?.add(rec.id);
      o.engine.whenSettled(rec.id, (r) => {
        if (r === undefined) return;
        o.waiting?.delete(rec.id);
        answer(finalResponse(r, call.message.id, call.correlationId));
      });
    }, fail).catch(fail);
    // The batch's client went away: nobody waits for this element, so its approval is withdrawn.
    return () => {
      if (gone) return;
      gone = true;
      if (id === undefined) return;
      o.waiting?.delete(id);
      o.engine.cancel(id, CLIENT_GONE).catch(() => { /* the store failed: it times out instead */ });
    };
  }

  async ask(call: HeldCall, request: HeldRequest, task?: { ttl?: unknown }, recordGranted = false): Promise<ApprovalRecord | 'granted'> {
    const { message, subject, decision, snapshot } = call;
    const o = this.o;
    const tool = subject.resource!;
    if (task === undefined && !recordGranted && request.path !== 'stdio') {
      // The client is back with the very call it made before going away (or before the sidecar
      // restarted): an approval already given runs it now, once; one still pending is waited on.
      const key = { principal: o.principal.id, sourceId: subject.sourceId, tool, arguments: subject.arguments ?? {} };
      const earlier = await o.engine.earlierApproval(key, { request, requestId: message.id, sessionId: call.sessionId }, call.correlationId);
      if (earlier === 'redeemed') return 'granted';
      if (earlier !== undefined) return earlier;
    }
    const grant = await o.engine.findGrant({ tool, sourceId: subject.sourceId, principal: o.principal.id, arguments: subject.arguments, sessionId: call.sessionId, snapshot: snapshot.version });
    // A client that asked for a task gets one even when nobody needs to be asked.
    if (grant !== undefined && task === undefined && !recordGranted) return 'granted';
    const { name, workflow } = this.workflowOf(decision, snapshot);
    let ttl: number | undefined;
    if (task !== undefined) {
      const requested = task.ttl;
      const want = typeof requested === 'number' && Number.isFinite(requested) && requested > 0 ? requested : (workflow?.timeout_ms ?? o.defaultTimeoutMs) + 3_600_000;
      ttl = Math.min(o.taskTtlMaxMs, Math.max(o.taskTtlMinMs, Math.round(want)));
    }
    return o.engine.request({
      mode: task !== undefined ? 'task' : 'held',
      method: message.method,
      tool,
      arguments: subject.arguments ?? {},
      principal: o.principal.id,
      sessionId: call.sessionId,
      sourceId: subject.sourceId,
      workflow: name,
      channel: o.channelFor(name, workflow),
      snapshot: snapshot.version,
      correlationId: call.correlationId,
      timeoutMs: workflow?.timeout_ms ?? o.defaultTimeoutMs,
      onTimeout: workflow?.on_timeout ?? 'deny',
      requiredApprovals: workflow?.required_approvals ?? 1,
      approvers: workflow?.approvers ?? [],
      request,
      requestId: message.id,
      ...(ttl === undefined ? {} : { taskTtlMs: ttl }),
      ...(grant === undefined ? {} : { preapprovedBy: `grant:${grant.id} (${grant.grantedBy})` }),
      ...(workflow?.redact_fields === undefined ? {} : { redactFields: workflow.redact_fields }),
    });
  }

  /** Re-judges an approved call when the policy changed since it was asked; the error when now denied. */
  async drift(rec: ApprovalRecord): Promise<Outcome | undefined> {
    const snapshot = this.o.snapshot();
    if (snapshot.version === rec.snapshot) return undefined;
    const subject: Subject = { method: rec.method, resource: rec.tool, sourceId: rec.sourceId, arguments: rec.arguments, principal: this.o.principal };
    // completion/complete names a prompt or a resource template: re-judged as what it names
    if (rec.method === 'completion/complete') subject.kind = heldResourceKind(rec);
    const d = await judge(subject, snapshot);
    if (d.action !== 'deny') return undefined;
    const err = new GovError('policy_drift', { tool: rec.tool, details: `approved on policy ${rec.snapshot}, now denied: ${d.reason}` });
    return { error: { code: err.code, message: err.message, data: { details: err.details } } };
  }

  /**
   * tasks/* for our ids, and tasks/list where tasks of ours can exist for the source (merged
   * with the upstream's own). Returns false when the request is the upstream's alone.
   */
  isOurs(method: string, params: Record<string, unknown> | undefined, sourceId: string): boolean {
    if (method === 'tasks/list') return mayHold(this.o.snapshot(), sourceId);
    if (method !== 'tasks/get' && method !== 'tasks/result' && method !== 'tasks/cancel') return false;
    const id = params?.['taskId'];
    return typeof id === 'string' && id.startsWith(TASK_ID_PREFIX);
  }

  /**
   * The JSON-RPC answer to a tasks/* request, and whether it is an error (for the metrics).
   * `upstream` (tasks/list): the client's request as it would be forwarded, to merge the
   * upstream's own tasks with ours.
   */
  async taskMethod(method: string, params: Record<string, unknown> | undefined, id: unknown, correlationId: string, sessionId?: string, upstream?: HeldRequest): Promise<{ body: string; error: boolean }> {
    const o = this.o;
    const owns = (r: ApprovalRecord): boolean => ownedBy(r, o.principal.id, sessionId);
    const ok = (result: unknown): { body: string; error: boolean } => ({ body: JSON.stringify({ jsonrpc: '2.0', id, result }), error: false });
    const fail = (err: GovError): { body: string; error: boolean } => ({ body: errorResponse(id, err, correlationId), error: true });
    if (method === 'tasks/list') {
      const at = readTasksCursor(params?.['cursor']);
      if (at === undefined) return fail(new GovError('invalid_params', { subject: 'Invalid tasks/list cursor' }));
      const mine = at.ours < 0 ? [] : await o.engine.list((r) => r.mode === 'task' && owns(r));
      const page = at.ours < 0 ? [] : mine.slice(at.ours, at.ours + TASKS_PAGE).map(taskView);
      const theirs = upstream !== undefined && !at.upstreamDone ? await this.upstreamTasks(upstream, id, params, at.upstream, correlationId) : { tasks: [] };
      const next: TasksCursor = {
        ours: at.ours >= 0 && at.ours + TASKS_PAGE < mine.length ? at.ours + TASKS_PAGE : -1,
        upstream: theirs.nextCursor,
        upstreamDone: theirs.nextCursor === undefined,
      };
      const result: Record<string, unknown> = { tasks: [...page, ...theirs.tasks] };
      if (next.ours >= 0 || !next.upstreamDone) result.nextCursor = writeTasksCursor(next);
      return ok(result);
    }
    const taskId = params!['taskId'] as string;
    const rec = await o.engine.get(taskId);
    // Another session's or principal's task does not exist as far as this caller is concerned:
    // the same answer as an unknown id (nothing tells them it exists), and nothing is changed.
    if (rec === undefined || !owns(rec)) return fail(new GovError('task_not_found', { subject: taskId }));
    if (rec.keepUntil <= Date.now() && !TERMINAL_STATES.has(rec.state)) return fail(new GovError('task_expired', { subject: taskId, tool: rec.tool }));
    switch (method) {
      case 'tasks/get':
        return ok(taskView(rec));
      case 'tasks/cancel': {
        if (TERMINAL_STATES.has(rec.state) && rec.state !== 'cancelled') {
          return fail(new GovError('invalid_params', { subject: `task '${taskId}' is already ${wireStatus(rec)} and cannot be cancelled` }));
        }
        if (rec.state !== 'pending' && rec.state !== 'cancelled') {
          return fail(new GovError('invalid_params', { subject: `task '${taskId}' was approved and is executing; it cannot be cancelled` }));
        }
        const after = rec.state === 'cancelled' ? rec : await o.engine.cancel(taskId, `requester:${o.principal.id}`);
        return ok(taskView(after ?? rec));
      }
      default: { // tasks/result
        if (!TERMINAL_STATES.has(rec.state)) {
          return fail(new GovError('task_result_not_ready', { subject: taskId, details: `${statusMessage(rec)}; poll tasks/get` }));
        }
        if (rec.state !== 'completed') return { body: finalResponse(rec, id, correlationId), error: true };
        // The related-task marker tells the client which task this result belongs to.
        const result = (rec.outcome?.result ?? {}) as Record<string, unknown>;
        const meta = (result['_meta'] as Record<string, unknown> | undefined) ?? {};
        return ok({ ...result, _meta: { ...meta, 'io.modelcontextprotocol/related-task': { taskId } } });
      }
    }
  }

  /**
   * One page of the upstream's own tasks/list (with its cursor). An upstream without tasks (an
   * error, or no answer) has none; what is not a task list is dropped, never relayed.
   */
  private upstreamTasks(req: HeldRequest, id: unknown, params: Record<string, unknown> | undefined, cursor: string | undefined, correlationId: string): Promise<{ tasks: unknown[]; nextCursor?: string }> {
    const { cursor: _ours, ...rest } = params ?? {};
    const message = { jsonrpc: '2.0', id, method: 'tasks/list', params: cursor === undefined ? rest : { ...rest, cursor } };
    return new Promise((resolve) => {
      const sink = new CaptureSink(id, this.o.maxResultBytes, (out) => {
        const r = out.result as { tasks?: unknown; nextCursor?: unknown } | undefined;
        const tasks = Array.isArray(r?.tasks) ? r.tasks.filter((t) => t !== null && typeof t === 'object' && typeof (t as { taskId?: unknown }).taskId === 'string') : [];
        resolve(typeof r?.nextCursor === 'string' && r.nextCursor !== '' ? { tasks, nextCursor: r.nextCursor } : { tasks });
      });
      this.o.upstream.send({
        method: 'POST', path: req.path, headers: req.headers, body: Buffer.from(JSON.stringify(message), 'utf8'), correlationId,
        message: messageRoute(message),
      }, sink);
    });
  }

  /** Forwards an approved call; the policy is consulted again when it changed since the request. */
  async execute(rec: ApprovalRecord): Promise<Outcome> {
    const o = this.o;
    const drifted = await this.drift(rec);
    if (drifted !== undefined) return drifted;
    return new Promise<Outcome>((resolve) => {
      const sink = new CaptureSink(rec.requestId, o.maxResultBytes, resolve);
      o.upstream.send({
        method: 'POST',
        path: rec.request.path,
        headers: rec.request.headers,
        body: Buffer.from(rec.request.body, 'utf8'),
        correlationId: rec.correlationId,
        // routed as it would have been when it arrived (a 2026-07-28 call to a stdio source: the pool)
        message: messageRoute(JSON.parse(rec.request.body) as { id?: unknown; method?: string; params?: Record<string, unknown> }),
      }, sink);
    });
  }
}

/** Where a merged tasks/list continues: our records' offset (-1: done) and the upstream's cursor. */
interface TasksCursor {
  ours: number;
  upstream: string | undefined;
  upstreamDone: boolean;
}

const CURSOR_PREFIX = 'tg1.';

function writeTasksCursor(c: TasksCursor): string {
  return CURSOR_PREFIX + Buffer.from(JSON.stringify([c.ours, c.upstreamDone ? null : (c.upstream ?? null)]), 'utf8').toString('base64url');
}

/** A client's cursor: undefined when it is not one we gave out (refused -32602, never guessed). */
function readTasksCursor(raw: unknown): TasksCursor | undefined {
  if (raw === undefined || raw === null) return { ours: 0, upstream: undefined, upstreamDone: false };
  if (typeof raw !== 'string' || !raw.startsWith(CURSOR_PREFIX) || raw.length > 4096) return undefined;
  try {
    const v = JSON.parse(Buffer.from(raw.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(v) || v.length !== 2 || !Number.isSafeInteger(v[0]) || (v[0] as number) < -1) return undefined;
    if (v[1] !== null && typeof v[1] !== 'string') return undefined;
    return { ours: v[0] as number, upstream: v[1] ?? undefined, upstreamDone: v[1] === null };
  } catch {
    return undefined;
  }
}

/** How the resource of a held call is compared, read back from the request it holds. */
function heldResourceKind(rec: ApprovalRecord): ResourceKind | undefined {
  try {
    return resourceOf(rec.method, (JSON.parse(rec.request.body) as { params?: unknown }).params)?.kind;
  } catch {
    return undefined;
  }
}

/** One client request held open until its approval is settled and the call has run. */
class HeldExchange {
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly sse: boolean;
  private readonly progressToken: unknown;
  private ticks = 0;
  private done = false;

  constructor(
    private readonly ex: Exchange,
    private readonly rec: ApprovalRecord,
    private readonly message: HeldCall['message'],
    private readonly correlationId: string,
    private readonly o: GatewayOptions,
    private readonly registry: Set<HeldExchange>,
    private readonly urlElicitation: boolean,
  ) {
    this.sse = acceptsEventStream(ex.headers['accept']);
    this.progressToken = (message.params?.['_meta'] as Record<string, unknown> | undefined)?.['progressToken'];
  }

  start(): void {
    const ex = this.ex;
    this.registry.add(this);
    this.o.waiting?.add(this.rec.id);
    // The client went away (connection or stream closed; on 2026-07-28 closing the stream is
    // cancellation): nobody waits for this call, so its approval is withdrawn rather than left to
    // run for nobody. Tasks never come here (they outlive connections by design), and a sidecar
    // restart ends held exchanges through abandon(), which keeps the approval.
    ex.onAbort = () => {
      if (this.done) return;
      this.stop();
      this.o.engine.cancel(this.rec.id, CLIENT_GONE).catch(() => { /* the store failed: the approval times out instead */ });
    };
    ex.onDrain = null;
    ex.writeHead(200, this.sse ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } : JSON_HEADERS);
    if (this.sse && this.urlElicitation) {
      // 2025-11-25 URL elicitation: the client can show its user where to approve this call.
      const ask = {
        jsonrpc: '2.0',
        id: ELICITATION_ID_PREFIX + this.rec.id,
        method: 'elicitation/create',
        params: { mode: 'url', elicitationId: this.rec.id, url: `${this.o.consoleUrl}#${this.rec.id}`, message: `'${this.rec.tool}' needs a person's approval (${this.rec.id}). Open the console to approve or reject it.` },
      };
      ex.write(formatSseEvent({ event: 'message', data: JSON.stringify(ask) }));
    }
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.keepaliveMs);
    this.unwatch = this.o.engine.whenSettled(this.rec.id, (r) => r && this.changed(r));
    // approved before this hold was registered: parked as if nobody waited, so run it now
    this.o.engine.resume(this.rec.id).catch(() => { /* the store failed: the sweep or a retry settles it */ });
  }

  private tick(): void {
    if (this.done) return;
    if (!this.sse) {
      this.ex.write(' '); // leading whitespace is valid JSON and keeps the connection alive
      return;
    }
    if (this.progressToken !== undefined) {
      const note = {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: this.progressToken, progress: ++this.ticks, message: `Awaiting human approval ${this.rec.id}: ${this.o.consoleUrl}` },
      };
      this.ex.write(formatSseEvent({ event: 'message', data: JSON.stringify(note) }));
    } else {
      this.ex.write(': awaiting approval\n\n');
    }
  }

  private changed(r: ApprovalRecord): void {
    if (this.done) return;
    this.stop();
    const text = finalResponse(r, this.message.id, this.correlationId);
    if (this.sse && this.urlElicitation) {
      // The elicitation is over either way: the client may close what it showed.
      this.ex.write(formatSseEvent({ event: 'message', data: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/elicitation/complete', params: { elicitationId: this.rec.id } }) }));
    }
    this.ex.end(this.sse ? formatSseEvent({ event: 'message', data: text }) : text);
  }

  /** The sidecar is stopping: the client learns why and what stays (the approval, by id). */
  abandon(): void {
    if (this.done) return;
    this.stop();
    const err = new GovError('service_unavailable', { tool: this.rec.tool, retryAfter: 5, details: `the sidecar is shutting down; approval ${this.rec.id} stays pending and is kept across the restart` });
    const text = errorResponse(this.message.id, err, this.correlationId);
    this.ex.end(this.sse ? formatSseEvent({ event: 'message', data: text }) : text);
  }

  private stop(): void {
    this.done = true;
    this.registry.delete(this);
    this.o.waiting?.delete(this.rec.id);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.unwatch?.();
  }
}

function acceptsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && accept.toLowerCase().includes('text/event-stream');
}
