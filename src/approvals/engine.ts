// Gate 4's engine: the life cycle of approval records. It creates a record per held call
// (capped), asks the workflow's channel, counts votes (first decision wins, atomically in the
// store, also across replicas), times records out, executes approved calls on the replica
// that holds them (once: approved → executing is a compare-and-set), keeps the outcome for
// the client, and deletes records after their retention. Everything it does is audited.
import { randomUUID } from 'node:crypto';
import { GovError } from '../core/errors.js';
import { identityKey, personOf, samePerson } from '../core/identity.js';
import type { WorkflowConfig } from '../policy/types.js';
import type {
  ApprovalChannel, ApprovalDecider, ApprovalRecord, ApprovalState, DecideResult, Grant, GrantScope, Outcome, StateStore, Vote,
} from './types.js';
import { TERMINAL_STATES, heldBytes } from './types.js';

export interface ApprovalEvents {
  /** a record changed state (metrics + audit); `by` is the actor when a person or the system decided */
  transition(rec: ApprovalRecord, from: ApprovalState | 'new', by?: string): void;
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

export interface EngineOptions {
  store: StateStore;
  /** by name; records name theirs (`channel`) */
  channels: ReadonlyMap<string, ApprovalChannel>;
  /** this process: records it holds are executed here */
  replicaId: string;
  /** non-terminal records at most (-32009 past it) */
  maxPending: number;
  /**
   * largest held call (request body + arguments, bytes): a bigger one is refused (-32602) before
   * anything is stored; retrying cannot help it (unbounded when not given)
   */
  maxRecordBytes?: number;
  /** the non-terminal records' bytes together at most (-32009 with retry_after past it) */
  maxPendingBytes?: number;
  /** how long a finished record (and its result) is kept when the client set no task ttl */
  retentionMs: number;
  /** forwards an approved call upstream and returns its answer */
  execute: (rec: ApprovalRecord) => Promise<Outcome>;
  events: ApprovalEvents;
  now?: () => number;
  /** how often records are swept for retention and orphaned replicas (ms) */
  sweepMs?: number;
  /** the current snapshot's workflows (the admin API finds per-approver tokens here) */
  workflows?: () => Readonly<Record<string, WorkflowConfig>>;
  /**
   * whether a client still waits for this held call (its request is held open here); an
   * approved held call nobody waits for is parked until its identical retry (default: always)
   */
  hasWaiter?: (rec: ApprovalRecord) => boolean;
  /** how long a parked approved call may be redeemed by its client's retry (ms, default 15 min) */
  retryWindowMs?: number;
  /** non-terminal records of one client (principal + session) at most (-32009 past it; default: maxPending) */
  maxPendingPerClient?: number;
}

/** How long an approved call whose client went away waits for that client's retry, by default. */
export const DEFAULT_RETRY_WINDOW_MS = 15 * 60_000;

/** Who cancels a parked approval that was never retried. */
export const SYSTEM_NO_RETRY = 'system:no-retry';

/** What a retried call is matched on: the approval was for exactly this call from this caller. */
export interface RetryKey {
  principal: string;
  sourceId: string;
  tool: string;
  arguments: unknown;
}

function sameCall(r: ApprovalRecord, q: RetryKey, argsKey: string): boolean {
  return r.mode === 'held' && r.principal === q.principal && r.sourceId === q.sourceId && r.tool === q.tool && canonicalJson(r.arguments ?? {}) === argsKey;
}

export interface NewApproval {
  mode: ApprovalRecord['mode'];
  method: string;
  tool: string;
  arguments: unknown;
  principal: string;
  sessionId: string | undefined;
  sourceId: string;
  workflow: string;
  channel: string;
  snapshot: string;
  correlationId: string;
  timeoutMs: number;
  onTimeout: 'deny' | 'approve';
  requiredApprovals: number;
  approvers: string[];
  request: ApprovalRecord['request'];
  requestId: string | number;
  /** SEP-1686 ttl granted to the task (ms), from creation */
  taskTtlMs?: number;
  /** a standing approval already covers it: created approved, executed at once, nobody asked */
  preapprovedBy?: string;
  /** the workflow's redact_fields when the call was held (masked on every surface) */
  redactFields?: readonly string[];
}

export const SYSTEM_AUTO_APPROVE = 'system:auto-approve';

/** Task ids keep the original's shape (`tg_` + 21 hex), so its clients' routing still works. */
export function newApprovalId(): string {
  return 'tg_' + randomUUID().replace(/-/g, '').slice(0, 21);
}

/** Deterministic JSON (sorted keys) so equal arguments give equal grant keys. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']';
  const keys = Object.keys(v as object).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson((v as Record<string, unknown>)[k])).join(',') + '}';
}

/** How often a task's client should poll: often while a decision may come any second, less for long waits. */
export function pollIntervalFor(remainingMs: number): number {
  if (remainingMs <= 60_000) return 1000;
  if (remainingMs <= 900_000) return 2000;
  return 5000;
}

type Listener = (rec: ApprovalRecord) => void;

export class ApprovalEngine implements ApprovalDecider {
  private readonly o: EngineOptions;
  private readonly now: () => number;
  private readonly watchers = new Map<string, Set<Listener>>();
  private readonly everyChange = new Set<Listener>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: EngineOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
  }

  get replicaId(): string {
    return this.o.replicaId;
  }

  get store(): StateStore {
    return this.o.store;
  }

  /** The workflows of the policy in force now (empty when the engine was built without them). */
  workflows(): Readonly<Record<string, WorkflowConfig>> {
    return this.o.workflows?.() ?? {};
  }

  /**
   * Replay protection that outlives this process: true the first time `key` is claimed, false
   * while an earlier claim stands (until `untilMs`), in the state store every replica shares.
   */
  claimOnce(key: string, untilMs: number): Promise<boolean> {
    return this.o.store.claimOnce(key, Math.min(untilMs, this.now() + MAX_NONCE_MS));
  }

  /** Loads what survived a restart: re-arms timeouts, adopts orphaned records, resolves interrupted executions. */
  async start(): Promise<void> {
    // A failure here (the store unreachable for a moment) must not become an unhandled rejection: it would end the process.
    this.o.store.subscribe((id) => void this.changed(id).catch((err: Error) => this.o.events.log('warn', 'approval change could not be handled', { approval_id: id, err: err.message })));
    for (const ch of this.o.channels.values()) await ch.start(this);
    const sweepMs = this.o.sweepMs ?? 10_000;
    // Alive before adopting: other replicas' sweeps adopt the records of replicas without a heartbeat.
    if (this.o.store.heartbeat !== undefined) {
      const beat = () => this.o.store.heartbeat!(this.o.replicaId, 3 * sweepMs).catch((err: Error) => this.o.events.log('warn', 'approval heartbeat failed', { err: err.message }));
      await beat();
      this.heartbeatTimer = setInterval(() => void beat(), sweepMs);
      this.heartbeatTimer.unref();
    }
    await this.adoptOrphans(true);
    this.sweepTimer = setInterval(() => void this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const ch of this.o.channels.values()) await ch.close().catch(() => {});
  }

  /** Creates the record for a call that needs a human and asks its channel. Throws -32009 when full. */
  async request(n: NewApproval): Promise<ApprovalRecord> {
    // Sized before anything is stored: a record is kept in memory, in the journal, and sent to
    // channels, so its bytes are what a pending approval costs.
    const bytes = heldBytes(n.request, n.arguments);
    const maxRecord = this.o.maxRecordBytes;
    if (maxRecord !== undefined && bytes > maxRecord) {
      // no `tool`: the message then names the limit (tool names what was refused only in data)
      throw new GovError('invalid_params', {
        details: `the call is ${bytes} bytes (request body + arguments), over the size limit of ${maxRecord} bytes for a call awaiting approval (THOUGHTGATE_MAX_APPROVAL_BYTES); it was not held or forwarded`,
      });
    }
    const perClient = this.o.maxPendingPerClient;
    if (perClient !== undefined && perClient < this.o.maxPending) {
      // One client cannot fill every slot: the others' calls can still be held.
      const mine = (await this.o.store.list()).filter((r) => !TERMINAL_STATES.has(r.state) && r.principal === n.principal && (r.sessionId ?? null) === (n.sessionId ?? null)).length;
      if (mine >= perClient) {
        throw new GovError('rate_limited', { tool: n.tool, details: `this client (principal and session) has ${mine} approvals waiting, its limit (THOUGHTGATE_MAX_PENDING_APPROVALS_PER_CLIENT is ${perClient}); the call was not held or forwarded`, retryAfter: 60 });
      }
    }
    const now = this.now();
    const expiresAt = now + n.timeoutMs;
    const rec: ApprovalRecord = {
      id: newApprovalId(),
      state: 'pending',
      mode: n.mode,
      method: n.method,
      tool: n.tool,
      arguments: n.arguments,
      principal: n.principal,
      sessionId: n.sessionId,
      sourceId: n.sourceId,
      workflow: n.workflow,
      channel: n.channel,
      snapshot: n.snapshot,
      correlationId: n.correlationId,
      createdAt: now,
      updatedAt: now,
      expiresAt,
      onTimeout: n.onTimeout,
      requiredApprovals: Math.max(1, n.requiredApprovals),
      approvers: n.approvers,
      votes: [],
      owner: this.o.replicaId,
      request: n.request,
      requestId: n.requestId,
      keepUntil: n.taskTtlMs !== undefined ? now + n.taskTtlMs : expiresAt + this.o.retentionMs,
      pollIntervalMs: pollIntervalFor(n.timeoutMs),
      bytes,
    };
    if (n.redactFields !== undefined && n.redactFields.length > 0) rec.redactFields = [...n.redactFields];
    if (n.preapprovedBy !== undefined) {
      rec.state = 'approved';
      rec.decidedBy = n.preapprovedBy;
      rec.decidedAt = now;
    }
    let created: boolean;
    try {
      created = await this.o.store.create(rec, this.o.maxPending, this.o.maxPendingBytes);
    } catch (e) {
      // Not durable (full disk, store unreachable): refused, never acknowledged as held.
      this.o.events.log('error', 'approval could not be stored; the call is refused', { tool: n.tool, err: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
      throw new GovError('service_unavailable', { tool: n.tool, retryAfter: 30, details: `the approval store cannot take new approvals (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the call was not held or forwarded` });
    }
    if (!created) {
      const budget = this.o.maxPendingBytes !== undefined ? ` or ${this.o.maxPendingBytes} bytes (THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES)` : '';
      throw new GovError('rate_limited', { tool: n.tool, details: `pending approvals are at their limit: ${this.o.maxPending} approvals (THOUGHTGATE_MAX_PENDING_APPROVALS)${budget}; this call is ${bytes} bytes`, retryAfter: 60 });
    }
    this.o.events.transition(rec, 'new');
    if (rec.state === 'approved') {
      await this.maybeExecute(rec, true); // its caller is here, waiting for this very answer
      return rec;
    }
    this.arm(rec);
    const channel = this.o.channels.get(rec.channel);
    if (channel !== undefined) {
      // Asking is best effort: the record is durable and listed in the console and CLI either way.
      channel.post(rec).then(async (ref) => {
        if (ref) {
          await this.o.store.update(rec.id, (r) => ({ ...r, channelRef: ref, updatedAt: this.now() }))
            .catch((err: Error) => this.o.events.log('warn', 'approval channel reference could not be stored', { approval_id: rec.id, err: err.message }));
        }
      }, (err: Error) => this.o.events.log('error', 'approval channel could not post the request', { channel: rec.channel, approval_id: rec.id, err: err.message }));
    }
    return rec;
  }

  get(id: string): Promise<ApprovalRecord | undefined> {
    return this.o.store.get(id);
  }

  async list(filter?: (r: ApprovalRecord) => boolean): Promise<ApprovalRecord[]> {
    const all = await this.o.store.list();
    const out = filter === undefined ? all : all.filter(filter);
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  /** One vote. Reject settles at once; approve settles when enough distinct approvers agreed. */
  async decide(id: string, vote: { verdict: 'approve' | 'reject'; by: string; reason?: string; grant?: { scope: GrantScope; hours?: number } }): Promise<DecideResult> {
    let refusal: Exclude<DecideResult, { ok: true }> | undefined;
    let from: ApprovalState = 'pending';
    const at = this.now();
    const { rec, changed } = await this.o.store.update(id, (r) => {
      refusal = undefined;
      from = r.state;
      if (r.state !== 'pending') {
        refusal = { ok: false, code: 'already_decided', message: `approval ${id} is already ${r.state}${r.decidedBy ? ` (by ${r.decidedBy})` : ''}`, rec: r };
        return undefined;
      }
      // Compared as people, not strings: one person is one voter whatever the channel or spelling.
      const person = personOf(vote.by);
      if (r.approvers.length > 0 && !r.approvers.some((a) => identityKey(a) === person)) {
        refusal = { ok: false, code: 'not_allowed', message: `${vote.by} is not an approver for workflow '${r.workflow}'`, rec: r };
        return undefined;
      }
      if (samePerson(vote.by, r.principal)) {
        refusal = { ok: false, code: 'self_approval', message: `${vote.by} requested this call and cannot decide it`, rec: r };
        return undefined;
      }
      if (r.votes.some((v) => personOf(v.by) === person)) {
        refusal = { ok: false, code: 'duplicate_vote', message: `${person} has already voted on ${id}`, rec: r };
        return undefined;
      }
      const v: Vote = { by: vote.by, verdict: vote.verdict, at };
      if (vote.reason !== undefined) v.reason = vote.reason;
      const votes = [...r.votes, v];
      const next: ApprovalRecord = { ...r, votes, updatedAt: at };
      if (vote.verdict === 'reject') {
        next.state = 'rejected';
        next.decidedBy = vote.by;
        next.decidedAt = at;
        next.reason = vote.reason;
        next.keepUntil = Math.max(r.keepUntil, at + this.o.retentionMs);
      } else if (new Set(votes.filter((x) => x.verdict === 'approve').map((x) => personOf(x.by))).size >= r.requiredApprovals) {
        // Distinct people, not votes: records written before votes were compared as people may hold two of one person.
        next.state = 'approved';
        next.decidedBy = votes.filter((x) => x.verdict === 'approve').map((x) => x.by).join(', ');
        next.decidedAt = at;
        if (vote.grant !== undefined && vote.grant.scope !== 'once') next.grant = vote.grant;
      }
      return next;
    });
    if (rec === undefined) return { ok: false, code: 'not_found', message: `no approval ${id}` };
    if (refusal !== undefined) {
      this.o.events.log('warn', 'approval vote refused', { approval_id: id, by: vote.by, why: refusal.code });
      return refusal;
    }
    if (!changed) return { ok: false, code: 'already_decided', message: `approval ${id} is already ${rec.state}`, rec };
    const final = rec.state !== 'pending';
    if (final) await this.settled(rec, from, vote.by);
    return { ok: true, rec, final };
  }

  /** The client gave up (tasks/cancel) or an operator withdrew the request. */
  async cancel(id: string, by: string): Promise<ApprovalRecord | undefined> {
    const at = this.now();
    const { rec, changed } = await this.o.store.update(id, (r) =>
      r.state === 'pending' ? { ...r, state: 'cancelled', decidedBy: by, decidedAt: at, updatedAt: at, keepUntil: Math.max(r.keepUntil, at + this.o.retentionMs) } : undefined);
    if (rec !== undefined && changed) await this.settled(rec, 'pending', by);
    return rec;
  }

  /** Calls `fn` on every change of the record (any replica) until the returned function is called. */
  watch(id: string, fn: Listener): () => void {
    let set = this.watchers.get(id);
    if (set === undefined) this.watchers.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (set!.size === 0) this.watchers.delete(id);
    };
  }

  /**
   * Calls `fn` once, when the record is settled (at once if it already is; with undefined when
   * there is no such record): what everyone waiting for a decision needs, without the race of
   * a decision landing between reading the record and starting to watch it. Returns a cancel.
   */
  whenSettled(id: string, fn: (rec: ApprovalRecord | undefined) => void): () => void {
    let waiting = true;
    const settle = (rec: ApprovalRecord | undefined): void => {
      if (!waiting || (rec !== undefined && !TERMINAL_STATES.has(rec.state))) return;
      waiting = false;
      unwatch();
      fn(rec);
    };
    const unwatch = this.watch(id, settle);
    this.o.store.get(id).then(settle, () => {});
    return () => {
      waiting = false;
      unwatch();
    };
  }

  /** Calls `fn` on every change of any record (the console's live view). */
  onAnyChange(fn: Listener): () => void {
    this.everyChange.add(fn);
    return () => void this.everyChange.delete(fn);
  }

  // --- standing approvals -------------------------------------------------------------

  /** A grant that covers this call, if one stands (and is still valid for this snapshot). */
  async findGrant(q: { tool: string; sourceId: string; principal: string; arguments: unknown; sessionId: string | undefined; snapshot: string; toolDefinition?: string }): Promise<Grant | undefined> {
    const now = this.now();
    const key = canonicalJson(q.arguments ?? {});
    for (const g of await this.o.store.listGrants()) {
      if (g.expiresAt <= now || g.tool !== q.tool || g.sourceId !== q.sourceId || g.principal !== q.principal) continue;
      if (g.snapshot !== q.snapshot) continue; // the policy changed: void
      if (g.toolDefinition !== undefined && q.toolDefinition !== undefined && g.toolDefinition !== q.toolDefinition) continue;
      if (g.argumentsKey !== undefined && g.argumentsKey !== key) continue;
      if (g.sessionId !== undefined && g.sessionId !== q.sessionId) continue;
      return g;
    }
    return undefined;
  }

  listGrants(): Promise<Grant[]> {
    return this.o.store.listGrants();
  }

  async revokeGrant(id: string, by: string): Promise<boolean> {
    const ok = await this.o.store.deleteGrant(id);
    if (ok) this.o.events.log('info', 'standing approval revoked', { grant_id: id, by });
    return ok;
  }

  // --- internals ------------------------------------------------------------------------

  /** A record left pending/approved/executing: arm its timeout, or execute it when approved and ours. */
  private arm(rec: ApprovalRecord): void {
    if (this.closed) return;
    const old = this.timers.get(rec.id);
    if (old !== undefined) clearTimeout(old);
    this.timers.delete(rec.id);
    if (rec.state !== 'pending') return;
    const t = setTimeout(() => {
      this.timers.delete(rec.id);
      // On failure the sweep expires it later.
      this.expire(rec.id).catch((err: Error) => this.o.events.log('warn', 'approval timeout could not be applied', { approval_id: rec.id, err: err.message }));
    }, Math.max(0, rec.expiresAt - this.now()));
    t.unref();
    this.timers.set(rec.id, t);
  }

  /** A parked approval whose client never retried in time: cancelled, never executed. */
  private async unclaimed(id: string): Promise<void> {
    const at = this.now();
    const { rec, changed } = await this.o.store.update(id, (r) => (r.state === 'approved' && r.awaitingRetryUntil !== undefined && r.awaitingRetryUntil <= at
      ? { ...r, state: 'cancelled', awaitingRetryUntil: undefined, reason: `approved by ${r.decidedBy ?? 'unknown'}, but its client was gone and did not retry in time; not executed`, decidedBy: SYSTEM_NO_RETRY, decidedAt: at, updatedAt: at, keepUntil: Math.max(r.keepUntil, at + this.o.retentionMs) }
      : undefined));
    if (rec !== undefined && changed) await this.settled(rec, 'approved', SYSTEM_NO_RETRY);
  }

  /** Deadline passed with no decision: on_timeout deny → expired; approve → approved by the system. */
  private async expire(id: string): Promise<void> {
    const at = this.now();
    const { rec, changed } = await this.o.store.update(id, (r) => {
      if (r.state !== 'pending' || r.expiresAt > at) return undefined;
      if (r.onTimeout === 'approve') {
        return { ...r, state: 'approved', decidedBy: SYSTEM_AUTO_APPROVE, decidedAt: at, updatedAt: at, reason: 'approval timed out (on_timeout: approve)' };
      }
      return { ...r, state: 'expired', decidedBy: 'system:timeout', decidedAt: at, updatedAt: at, keepUntil: Math.max(r.keepUntil, at + this.o.retentionMs) };
    });
    if (rec !== undefined && changed) await this.settled(rec, 'pending', rec.decidedBy);
    else if (rec !== undefined && rec.state === 'pending') this.arm(rec); // clock skew between replicas: try again later
  }

  /** After a decision this replica made: tell the channel, execute when ours, audit. */
  private async settled(rec: ApprovalRecord, from: ApprovalState, by: string | undefined): Promise<void> {
    this.o.events.transition(rec, from, by);
    const t = this.timers.get(rec.id);
    if (t !== undefined) clearTimeout(t);
    this.timers.delete(rec.id);
    const channel = this.o.channels.get(rec.channel);
    if (channel !== undefined) channel.update(rec).catch((err: Error) => this.o.events.log('warn', 'approval channel could not update its message', { approval_id: rec.id, err: err.message }));
    if (rec.state === 'approved') {
      if (rec.grant !== undefined) await this.storeGrant(rec);
      await this.maybeExecute(rec);
    }
  }

  private async storeGrant(rec: ApprovalRecord): Promise<void> {
    const g = rec.grant!;
    const now = this.now();
    if (g.scope === 'session' && rec.sessionId === undefined) {
      // A stateless call has no session to scope to; widening it to every session would grant more than was asked.
      this.o.events.log('warn', 'session-scoped approval requested for a call without a session: approved once only', { approval_id: rec.id });
      return;
    }
    const grant: Grant = {
      id: 'gr_' + randomUUID().replace(/-/g, '').slice(0, 16),
      tool: rec.tool,
      sourceId: rec.sourceId,
      principal: rec.principal,
      argumentsKey: canonicalJson(rec.arguments ?? {}),
      snapshot: rec.snapshot,
      grantedBy: rec.decidedBy ?? 'unknown',
      createdAt: now,
      expiresAt: g.scope === 'hours' ? now + Math.max(1, g.hours ?? 1) * 3_600_000 : now + 24 * 3_600_000,
      approvalId: rec.id,
    };
    if (rec.redactFields !== undefined) grant.redactFields = rec.redactFields;
    if (g.scope === 'session') grant.sessionId = rec.sessionId;
    await this.o.store.putGrant(grant);
    this.o.events.log('info', 'standing approval granted', { grant_id: grant.id, tool: grant.tool, scope: g.scope, by: grant.grantedBy });
  }

  /**
   * approved → executing (once, across replicas) → completed | failed. A held call whose client
   * is gone is parked instead (see `awaitingRetryUntil`): nothing runs that nobody waits for.
   */
  private async maybeExecute(rec: ApprovalRecord, callerPresent = false): Promise<void> {
    if (rec.state !== 'approved' || rec.owner !== this.o.replicaId || this.closed || rec.awaitingRetryUntil !== undefined) return;
    if (!callerPresent && rec.mode === 'held' && this.o.hasWaiter !== undefined && !this.o.hasWaiter(rec)) {
      await this.park(rec);
      return;
    }
    const at = this.now();
    const claimed = await this.o.store.update(rec.id, (r) => (r.state === 'approved' && r.owner === this.o.replicaId ? { ...r, state: 'executing', updatedAt: at } : undefined));
    if (!claimed.changed || claimed.rec === undefined) return;
    this.o.events.transition(claimed.rec, 'approved');
    let outcome: Outcome;
    try {
      outcome = await this.o.execute(claimed.rec);
    } catch (e) {
      const err = e instanceof GovError ? e : new GovError('upstream_error', { subject: (e as Error).message });
      outcome = { error: { code: err.code, message: err.message } };
    }
    const done = this.now();
    const state: ApprovalState = outcome.error === undefined ? 'completed' : 'failed';
    const { rec: fin } = await this.o.store.update(rec.id, (r) => (r.state === 'executing'
      ? { ...r, state, outcome, updatedAt: done, keepUntil: Math.max(r.keepUntil, done + this.o.retentionMs) }
      : undefined));
    if (fin !== undefined) this.o.events.transition(fin, 'executing');
  }

  private async park(rec: ApprovalRecord): Promise<void> {
    const until = this.now() + (this.o.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS);
    const { rec: parked, changed } = await this.o.store.update(rec.id, (r) => (r.state === 'approved' && r.owner === this.o.replicaId && r.awaitingRetryUntil === undefined
      ? { ...r, awaitingRetryUntil: until, updatedAt: this.now() }
      : undefined));
    if (!changed || parked === undefined) return;
    this.o.events.log('info', 'approved call not executed: its client is gone; it runs if the identical call is retried in time', {
      approval_id: rec.id, tool: rec.tool, retry_until: new Date(until).toISOString(),
    });
  }

  /**
   * The client retried a call that was approved after it had gone: the parked approval is used
   * (once, across replicas) and the retry is forwarded by the caller. Undefined when none matches.
   * `listed`: the records, when the caller has just read them.
   */
  async redeemRetry(q: RetryKey, correlationId: string, listed?: ApprovalRecord[]): Promise<ApprovalRecord | undefined> {
    const now = this.now();
    const argsKey = canonicalJson(q.arguments ?? {});
    const rec = await this.claimFirst(listed,
      (r) => r.state === 'approved' && r.awaitingRetryUntil !== undefined && r.awaitingRetryUntil > now && sameCall(r, q, argsKey),
      (r) => ({ ...r, state: 'completed', awaitingRetryUntil: undefined, reason: `executed when its client retried (correlation ${correlationId})`, outcome: { result: {} }, updatedAt: now, keepUntil: Math.max(r.keepUntil, now + this.o.retentionMs) }));
    if (rec !== undefined) this.o.events.transition(rec, 'approved');
    return rec;
  }

  /**
   * The identical call again (same caller, source, tool and arguments) with nobody waiting for
   * the first: an approval given meanwhile runs it now ('redeemed'), one still pending is waited
   * on (that record, re-attached). Undefined: ask as for a new call. One read of the records.
   */
  async earlierApproval(q: RetryKey, next: { request: ApprovalRecord['request']; requestId: string | number; sessionId: string | undefined }, correlationId: string): Promise<ApprovalRecord | 'redeemed' | undefined> {
    const listed = await this.o.store.list();
    if ((await this.redeemRetry(q, correlationId, listed)) !== undefined) return 'redeemed';
    return this.reattach(q, next, listed);
  }

  /**
   * A client started waiting for this record (the hold is registered just after the record is
   * stored, so a decision may have come first): a call parked meanwhile runs now after all.
   */
  async resume(id: string): Promise<void> {
    const { rec, changed } = await this.o.store.update(id, (r) => (r.state === 'approved' && r.awaitingRetryUntil !== undefined && r.owner === this.o.replicaId
      ? { ...r, awaitingRetryUntil: undefined, updatedAt: this.now() }
      : undefined));
    if (changed && rec !== undefined) await this.maybeExecute(rec, true);
  }

  /**
   * The client retried a call still awaiting its decision, with nobody waiting for the first
   * request (its client went away, or the sidecar restarted): the retry waits on that approval
   * instead of asking people a second time. The record now answers the retry's request.
   */
  async reattach(q: RetryKey, next: { request: ApprovalRecord['request']; requestId: string | number; sessionId: string | undefined }, listed?: ApprovalRecord[]): Promise<ApprovalRecord | undefined> {
    const waiter = this.o.hasWaiter;
    if (waiter === undefined) return undefined;
    const argsKey = canonicalJson(q.arguments ?? {});
    const rec = await this.claimFirst(listed,
      (r) => r.state === 'pending' && r.owner === this.o.replicaId && sameCall(r, q, argsKey) && !waiter(r),
      (r) => ({ ...r, request: next.request, requestId: next.requestId, sessionId: next.sessionId, updatedAt: this.now() }));
    if (rec !== undefined) this.o.events.log('info', 'a retried call waits on its earlier approval', { approval_id: rec.id, tool: rec.tool });
    return rec;
  }

  /**
   * The first record `admits` takes that `change` could change, compare-and-set (`admits` is
   * checked again inside the store's update, so two replicas never both win one record).
   */
  private async claimFirst(listed: ApprovalRecord[] | undefined, admits: (r: ApprovalRecord) => boolean, change: (r: ApprovalRecord) => ApprovalRecord): Promise<ApprovalRecord | undefined> {
    for (const c of (listed ?? (await this.o.store.list())).filter(admits)) {
      const { rec, changed } = await this.o.store.update(c.id, (r) => (admits(r) ? change(r) : undefined));
      if (changed && rec !== undefined) return rec;
    }
    return undefined;
  }

  /** A change made anywhere: wake local watchers; execute approved calls we hold. */
  private async changed(id: string): Promise<void> {
    const rec = await this.o.store.get(id);
    if (rec === undefined) return;
    const set = this.watchers.get(id);
    if (set !== undefined) for (const fn of [...set]) fn(rec);
    for (const fn of this.everyChange) fn(rec);
    if (rec.state === 'pending') {
      if (!this.timers.has(id)) this.arm(rec);
    } else if (this.timers.has(id)) {
      clearTimeout(this.timers.get(id)!);
      this.timers.delete(id);
    }
    if (rec.state === 'approved' && rec.owner === this.o.replicaId) await this.maybeExecute(rec);
  }

  /**
   * Records whose owner is gone (this process restarted; another replica died) become ours.
   * An execution that was interrupted is not retried: the upstream may have run it, so it is
   * failed with a message that says so (at most once). At start, records already under our
   * replica id were left by a previous process with the same id: settled the same way.
   */
  private async adoptOrphans(atStart = false): Promise<void> {
    const store = this.o.store;
    for (const r of await store.list()) {
      const leftByPredecessor = atStart && r.owner === this.o.replicaId && (r.state === 'approved' || r.state === 'executing');
      if (!leftByPredecessor && (TERMINAL_STATES.has(r.state) || r.owner === this.o.replicaId)) {
        if (!TERMINAL_STATES.has(r.state)) this.arm(r);
        continue;
      }
      if (!leftByPredecessor && store.isAlive !== undefined && (await store.isAlive(r.owner))) {
        if (r.state === 'pending') this.arm(r);
        continue;
      }
      const at = this.now();
      const { rec, changed } = await store.update(r.id, (cur) => {
        if (cur.owner !== r.owner || TERMINAL_STATES.has(cur.state)) return undefined;
        if (cur.state === 'executing') {
          return { ...cur, owner: this.o.replicaId, state: 'failed', updatedAt: at, outcome: { error: { code: -32013, message: 'Service temporarily unavailable', data: { details: 'the sidecar restarted while the approved call was executing; whether the upstream ran it is unknown, so it was not retried' } } } };
        }
        return { ...cur, owner: this.o.replicaId, updatedAt: at };
      });
      if (rec === undefined || !changed) continue;
      this.o.events.log('info', 'adopted approval from a previous process', { approval_id: rec.id, state: rec.state, previous_owner: r.owner });
      if (rec.state === 'pending') this.arm(rec);
      else if (rec.state === 'approved') await this.maybeExecute(rec);
      else if (rec.state === 'failed') this.o.events.transition(rec, 'executing');
    }
  }

  /** Retention: delete finished records past keepUntil; expire overdue ones; run missed approvals of ours; adopt orphans of dead replicas. */
  private async sweep(): Promise<void> {
    if (this.closed) return;
    const now = this.now();
    try {
      for (const r of await this.o.store.list()) {
        if (TERMINAL_STATES.has(r.state) && r.keepUntil <= now) await this.o.store.delete(r.id);
        else if (r.state === 'pending' && r.expiresAt <= now) await this.expire(r.id);
        else if (r.state === 'approved' && r.awaitingRetryUntil !== undefined && r.awaitingRetryUntil <= now) await this.unclaimed(r.id);
        // an approval this replica missed (a lost notification, a store error mid-claim): run it now, without holding up the sweep
        else if (r.state === 'approved' && r.owner === this.o.replicaId) {
          this.maybeExecute(r).catch((err: Error) => this.o.events.log('warn', 'approved call could not be executed', { approval_id: r.id, err: err.message }));
        }
      }
      for (const g of await this.o.store.listGrants()) if (g.expiresAt <= now) await this.o.store.deleteGrant(g.id);
      if (this.o.store.isAlive !== undefined) await this.adoptOrphans();
    } catch (e) {
      this.o.events.log('warn', 'approval sweep failed', { err: (e as Error).message });
    }
  }
}

/** How long a claimed nonce is kept past its window at most (a bound on what a caller can make us store). */
const MAX_NONCE_MS = 24 * 3_600_000;
