// Gate 4's vocabulary: one approval record per held call, the store that keeps records across
// restarts and replicas, and the channels that ask humans. The engine (engine.ts) is the only
// writer of records' life cycle; channels and the admin API only ask it to decide.

/**
 * pending → approved → executing → completed | failed   (the call ran; its answer is kept)
 * pending → rejected | expired | cancelled               (the call never ran)
 * `expired` with on_timeout: approve goes pending → approved as a system decision instead.
 */
export type ApprovalState = 'pending' | 'approved' | 'executing' | 'completed' | 'failed' | 'rejected' | 'expired' | 'cancelled';

export const TERMINAL_STATES: ReadonlySet<ApprovalState> = new Set(['completed', 'failed', 'rejected', 'expired', 'cancelled']);

/** How the client waits: a SEP-1686 task it polls, or its request held open. */
export type WaitMode = 'task' | 'held';

export interface Vote {
  /** who: `slack:U123`, `console:alice`, `cli:bob@host`, `webhook:<name>`, `system:auto-approve` */
  by: string;
  verdict: 'approve' | 'reject';
  at: number;
  reason?: string;
}

/** What to send upstream once approved: the judged request, as it was received. */
export interface HeldRequest {
  path: string;
  /** already filtered for the upstream (no hop-by-hop headers) */
  headers: Record<string, string>;
  /** the exact JSON text of the message to forward */
  body: string;
}

/** The upstream's answer to an executed call: the JSON-RPC `result` or `error` member. */
export interface Outcome {
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** How long an approval may stand: this call only, the session, or a time window. */
export type GrantScope = 'once' | 'session' | 'hours';

export interface ApprovalRecord {
  /** `tg_` + 21 hex: also the SEP-1686 task id when the client asked for a task */
  id: string;
  state: ApprovalState;
  mode: WaitMode;
  method: string;
  tool: string;
  arguments: unknown;
  /** requester: the caller's principal id (never allowed to approve its own call) */
  principal: string;
  sessionId?: string;
  sourceId: string;
  /** workflow name (`approval:` key) and the channel asked */
  workflow: string;
  channel: string;
  /** policy snapshot version the call was judged on */
  snapshot: string;
  correlationId: string;
  createdAt: number;
  updatedAt: number;
  /** when a pending decision times out */
  expiresAt: number;
  onTimeout: 'deny' | 'approve';
  requiredApprovals: number;
  /** allowed approvers (empty = anyone with access to the channel) */
  approvers: string[];
  votes: Vote[];
  decidedBy?: string;
  decidedAt?: number;
  reason?: string;
  /** replica (process instance) that holds the client's request and executes the call */
  owner: string;
  request: HeldRequest;
  /** the JSON-RPC id of the request that created this record */
  requestId: string | number;
  /** SEP-1686: when the record (and its result) may be deleted; pollInterval for clients */
  keepUntil: number;
  pollIntervalMs: number;
  /** what the approver granted beyond this call (standing approvals) */
  grant?: { scope: GrantScope; hours?: number };
  outcome?: Outcome;
  /** channel bookkeeping (e.g. Slack channel + message ts) */
  channelRef?: Record<string, string>;
  /** the workflow's redact_fields when the call was held: masked wherever the arguments are shown */
  redactFields?: string[];
  /**
   * what the record holds, in bytes: the held request body + the JSON of the arguments (set at
   * creation; what the per-record and total byte limits on pending approvals count)
   */
  bytes?: number;
  /**
   * Set when the call was approved after its client had gone (connection closed, sidecar
   * restarted): it is not run for nobody; the identical call (same principal, source, tool and
   * canonical arguments) retried before this time runs once, and after it the record is cancelled.
   */
  awaitingRetryUntil?: number;
}

/** The size the byte limits count: held request body + arguments (UTF-8 bytes). */
export function heldBytes(request: HeldRequest, args: unknown): number {
  return Buffer.byteLength(request.body, 'utf8') + Buffer.byteLength(JSON.stringify(args) ?? '', 'utf8');
}

/** A standing approval: calls matching it are forwarded without asking again. */
export interface Grant {
  id: string;
  tool: string;
  sourceId: string;
  principal: string;
  /** canonical JSON of the arguments, or undefined when the grant covers any arguments */
  argumentsKey?: string;
  /** set for a session-scoped grant */
  sessionId?: string;
  /** void when the policy snapshot or the tool's definition changes */
  snapshot: string;
  toolDefinition?: string;
  grantedBy: string;
  createdAt: number;
  expiresAt: number;
  approvalId: string;
  /** the approval's redact_fields: the arguments key is shown masked */
  redactFields?: string[];
}

/**
 * Durable state shared by every replica using the same store. Every method is atomic with
 * respect to other replicas: `update` is a compare-and-set loop, so "first decision wins"
 * holds across processes.
 */
export interface StateStore {
  readonly kind: 'file' | 'redis' | 'memory';
  /** human-readable location for logs (path or redacted URL) */
  readonly where: string;
  open(): Promise<void>;
  /**
   * adds a record unless `maxActive` non-terminal records exist already, or (when given) the
   * non-terminal records' `bytes` with this one's would exceed `maxActiveBytes`; false = full
   */
  create(rec: ApprovalRecord, maxActive: number, maxActiveBytes?: number): Promise<boolean>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  list(): Promise<ApprovalRecord[]>;
  /**
   * Atomic read-modify-write: `fn` sees the current record and returns the new one, or
   * undefined to leave it unchanged. Returns the record as stored afterwards (undefined when
   * there is no such record) and whether `fn` changed it.
   */
  update(id: string, fn: (rec: ApprovalRecord) => ApprovalRecord | undefined): Promise<{ rec: ApprovalRecord | undefined; changed: boolean }>;
  delete(id: string): Promise<void>;
  putGrant(g: Grant): Promise<void>;
  listGrants(): Promise<Grant[]>;
  deleteGrant(id: string): Promise<boolean>;
  /**
   * Replay protection shared by every replica and kept across restarts: true when `key` was not
   * claimed (or its claim has lapsed) and is now claimed until `untilMs`; false while a claim stands.
   */
  claimOnce(key: string, untilMs: number): Promise<boolean>;
  /** called for every change to a record, by this replica or another (ids only: read to see) */
  subscribe(listener: (id: string) => void): void;
  /** this replica is alive (Redis: heartbeat key); others may adopt records of dead owners */
  heartbeat?(replica: string, ttlMs: number): Promise<void>;
  isAlive?(replica: string): Promise<boolean>;
  close(): Promise<void>;
}

/** What a channel may ask the engine. */
export interface ApprovalDecider {
  decide(id: string, vote: { verdict: 'approve' | 'reject'; by: string; reason?: string; grant?: { scope: GrantScope; hours?: number } }): Promise<DecideResult>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** newest first; a channel rebuilds what it tracks from this after a restart */
  list(filter?: (r: ApprovalRecord) => boolean): Promise<ApprovalRecord[]>;
  /** the requester (or an operator) withdrew the call */
  cancel(id: string, by: string): Promise<ApprovalRecord | undefined>;
  /** StateStore.claimOnce: a signed callback is used once, across restarts and replicas */
  claimOnce?(key: string, untilMs: number): Promise<boolean>;
}

/** The HTTP status each refused vote is answered with (admin API, webhook callbacks). */
export const REFUSAL_STATUS: Readonly<Record<Exclude<DecideResult, { ok: true }>['code'], number>> = {
  not_found: 404,
  already_decided: 409,
  duplicate_vote: 409,
  not_allowed: 403,
  self_approval: 403,
};

export type DecideResult =
  | { ok: true; rec: ApprovalRecord; final: boolean }
  | { ok: false; code: 'not_found' | 'already_decided' | 'not_allowed' | 'self_approval' | 'duplicate_vote'; message: string; rec?: ApprovalRecord };

/**
 * A way to ask humans: post a request, update it when the outcome is known. A channel that
 * learns decisions (Slack reactions, a webhook callback) calls `decider.decide`.
 */
export interface ApprovalChannel {
  readonly name: string;
  start(decider: ApprovalDecider): Promise<void>;
  /** ask; the returned reference is stored on the record (e.g. Slack message ts) */
  post(rec: ApprovalRecord): Promise<Record<string, string> | void>;
  /** the record changed state (approved by whom, rejected with reason, expired, cancelled) */
  update(rec: ApprovalRecord): Promise<void>;
  close(): Promise<void>;
}
