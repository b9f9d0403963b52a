import type { PolicyEngine } from '../core/policy-engine.js';

// The validated, normalised ThoughtGate configuration (schema: 1) and the immutable policy
// snapshot built from it. Both YAML forms of the original (README's and code's) normalise to
// these shapes, so nothing downstream knows which form the operator wrote.

export type Action = 'forward' | 'deny' | 'approve' | 'policy';

export interface ExposeConfig {
  mode: 'all' | 'allowlist' | 'blocklist';
  /** globs in the original's dialect (policy/glob.ts) */
  tools: string[];
}

export interface SourceConfig {
  id: string;
  kind: 'mcp';
  /** Streamable HTTP upstream */
  url?: string;
  /** stdio upstream spawned by the sidecar, one child per MCP session */
  command?: string;
  args: string[];
  env: Record<string, string>;
  /** names of the proxy's environment variables passed to a stdio server (nothing else of ours is) */
  env_passthrough: string[];
  prefix?: string;
  description?: string;
  enabled: boolean;
  expose: ExposeConfig;
}

export interface RuleConfig {
  match: string;
  action: Action;
  approval?: string;
  policy_id?: string;
  /** source ids this rule is limited to; undefined = every source */
  source?: string[];
  description?: string;
}

export interface SlackDestination {
  type: 'slack';
  channel: string;
  token_env?: string;
  mention?: string[];
}

export interface ConsoleDestination {
  type: 'console';
}

export interface WebhookDestination {
  type: 'webhook';
  url: string;
  /** environment variable holding the HMAC secret (default THOUGHTGATE_WEBHOOK_SECRET) */
  secret_env?: string;
}

export type Destination = SlackDestination | ConsoleDestination | WebhookDestination;

export interface WorkflowConfig {
  destination: Destination;
  /** who may decide (channel user ids / names); empty = anyone with access to the channel */
  approvers: string[];
  /** distinct approvals needed (default 1) */
  required_approvals: number;
  timeout_ms: number;
  on_timeout: 'deny' | 'approve';
  blocking_timeout_ms?: number;
  redact_fields: string[];
  /** approver name → that approver's own token (votes made with it count as that approver) */
  approver_tokens: Record<string, string>;
}

export interface CedarConfig {
  /** absolute paths, concatenated in order */
  policies: string[];
  schema?: string;
}

export interface TelemetryConfig {
  enabled: boolean;
  otlp?: { endpoint: string; protocol: 'http/protobuf' | 'grpc'; headers: Record<string, string> };
  sampling: { strategy: 'head' | 'tail'; success_sample_rate: number };
  batch: { max_queue_size: number; max_export_batch_size: number; scheduled_delay_ms: number; export_timeout_ms: number };
  resource: Record<string, string>;
  stdio?: { propagate_upstream: boolean };
}

export interface AuditConfig {
  /** buffered: batched writes, no fsync (a crash can lose up to 50 ms); strict: on disk before the call goes on */
  durability?: 'buffered' | 'strict';
  /** when the trail cannot be written: refuse governed calls (fail_closed) or forward them, loudly (continue) */
  on_failure?: 'fail_closed' | 'continue';
}

export interface Config {
  schema: 1;
  sources: SourceConfig[];
  governance: {
    defaults: { action: Action };
    rules: RuleConfig[];
    /** methods outside the era's MCP method set (lookalikes of governed methods are refused always) */
    unknown_methods: 'forward' | 'deny';
    /** tool and prompt names: exact (default) or compared case-folded */
    names: 'exact' | 'casefold';
  };
  approval: Record<string, WorkflowConfig>;
  cedar?: CedarConfig;
  telemetry: TelemetryConfig;
  /** approval state: a directory or a redis:// URL (undefined: THOUGHTGATE_STATE_DIR / default) */
  state?: string;
  /** the `audit:` section as written (absent fields: the profile's defaults, THOUGHTGATE_AUDIT_* win) */
  audit?: AuditConfig;
  /** absolute path of the file this came from (for messages) */
  path: string;
  /** non-fatal findings (the original's V-004 etc.), each naming file:line */
  warnings: string[];
}

/** A glob compiled once at snapshot build time. */
export type Matcher = (subject: string) => boolean;

export interface CompiledSource {
  config: SourceConfig;
  /** true when `expose` lets this name through (gate 1) */
  visible: Matcher;
}

export interface CompiledRule {
  config: RuleConfig;
  matches: Matcher;
  /** undefined = applies to every source */
  sources: ReadonlySet<string> | undefined;
}

/** Immutable: a reload builds a new one and swaps it whole. */
export interface Snapshot {
  readonly config: Config;
  /** content hash of the config text (and later the policy files): the version in every audit line */
  readonly version: string;
  readonly sources: ReadonlyMap<string, CompiledSource>;
  readonly rules: readonly CompiledRule[];
  readonly defaultAction: Action;
  /** gate 3: the prepared Cedar policies of this snapshot (absent when the config has no `cedar:`) */
  readonly cedar?: PolicyEngine;
}
