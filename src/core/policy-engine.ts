// Gate 3's public shapes (the Cedar engine in gates/cedar implements PolicyEngine). Kept free
// of cedar-wasm types so the snapshot, the judge, the decision API and `thoughtgate check`
// can use them without loading the Wasm module.

/** Who is calling: one per process (sidecar or wrap), resolved once by `resolvePrincipal`. */
export interface Principal {
  /** entity id of `ThoughtGate::App::"<id>"` and its `name` attribute */
  id: string;
  namespace: string;
  serviceAccount: string;
  /** parents `ThoughtGate::Role::"<r>"` */
  roles: string[];
  labels: Record<string, string>;
}

export interface CedarInput {
  /** JSON-RPC method: tools/call, resources/read, resources/subscribe, prompts/get, … */
  method: string;
  /** tool name, resource URI or prompt name; undefined for methods without one */
  resource: string | undefined;
  /** params.arguments (any JSON; absent/null = {}) */
  arguments: unknown;
  sourceId: string;
  /** the rule's policy_id, or 'default' */
  policyId: string;
  /** treated as immutable: its fingerprint is memoised per object */
  principal: Principal;
  /** ms since the epoch, for tests; defaults to Date.now() */
  now?: number;
}

export type CedarOutcome = 'forward' | 'approve' | 'deny';

export interface CedarDecision {
  outcome: CedarOutcome;
  /** the determining policies (display ids: `@id("…")` or policyN) */
  policyIds: readonly string[];
  reason: string;
  /** evaluation errors; non-empty ⇒ outcome is deny */
  errors: readonly string[];
  /** answered from this engine's decision cache */
  cached: boolean;
  /** wall time of this decide() call, µs (includes queueing when it went to the pool) */
  micros: number;
}

/** What a worker (or the inline path) computes; the engine adds `cached` and `micros`. */
export interface CedarVerdict {
  outcome: CedarOutcome;
  policyIds: string[];
  reason: string;
  errors: string[];
}

/** A policy or schema file that does not parse or validate. `message` names file:line:column. */
export class CedarLoadError extends Error {
  /** one entry per problem, each `file:line:column: message` */
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} Cedar problems:\n  ${problems.join('\n  ')}`);
    this.name = 'CedarLoadError';
    this.problems = problems;
  }
}

/** What a policy snapshot holds for gate 3 (implemented by gates/cedar's CedarEngine). */
export interface PolicyEngine {
  readonly version: string;
  readonly policyCount: number;
  /** a cache hit answers synchronously; a miss may answer from a worker */
  decide(input: CedarInput): CedarDecision | Promise<CedarDecision>;
  decideInline(input: CedarInput): CedarDecision;
  close(): Promise<void>;
}
