// Runtime settings from flags and THOUGHTGATE_* environment variables (names and defaults
// compatible with the original). An invalid value is a startup error that names the
// variable; nothing silently falls back to a default.
import type { UwsChoice } from '../transport/uws.js';
import { isIP } from 'node:net';
import { DEFAULT_LIMITS, type Limits } from '../core/limits.js';
import type { Mode } from '../pipeline.js';

export interface Settings {
  configPath: string;
  bind: string;
  port: number;
  adminBind: string;
  adminPort: number;
  mode: Mode;
  profile: 'production' | 'development';
  environment: string;
  requestTimeoutMs: number;
  streamReadTimeoutMs: number;
  shutdownTimeoutMs: number;
  stdioIdleMs: number;
  /** the shorter idle time applied while over 75% of the session cap or the memory budget */
  stdioIdleUnderPressureMs: number;
  /** stdio children's resident memory together (sampled); past it new sessions get -32009 and idle children are ended */
  stdioMemoryBudgetBytes: number;
  /** how often children are sampled and idle ones swept (undefined: derived from the idle timeouts) */
  stdioSweepMs: number | undefined;
  stdioPoolSize: number;
  upstreamConnections: number;
  /** most upstream connections GET streams may hold (undefined: half of upstreamConnections) */
  upstreamStreamConnections: number | undefined;
  /** lean (our HTTP/1.1 client, http: only) or undici */
  upstreamClient: 'lean' | 'undici';
  maxEventBytes: number;
  allowedOrigins: string[];
  auditPath: string;
  /** THOUGHTGATE_AUDIT_DURABILITY (undefined: the config's audit.durability, else buffered) */
  auditDurability: 'buffered' | 'strict' | undefined;
  /** THOUGHTGATE_AUDIT_ON_FAILURE (undefined: the config's audit.on_failure, else fail_closed in production, continue in development) */
  auditOnFailure: 'fail_closed' | 'continue' | undefined;
  /** Cedar worker threads (0 = evaluate on the main thread) and their bounded queue */
  cedarWorkers: number;
  cedarQueue: number;
  cedarSpinMicros: number;
  /** Bearer token the decision API requires; undefined = it refuses everyone (bar loopback when apiOpenLoopback) */
  apiToken: string | undefined;
  /** THOUGHTGATE_API_OPEN=loopback: callers on a loopback address need no token */
  apiOpenLoopback: boolean;
  /** THOUGHTGATE_UWS_BUILD: which native uWS build serves the traffic port */
  uwsBuild: UwsChoice;
  limits: Limits;
  approvals: ApprovalSettings;
}

/** Gate 4: where approvals live, how they are asked for and held. */
export interface ApprovalSettings {
  /** embedded store directory (THOUGHTGATE_STATE_DIR) */
  stateDir: string;
  /** overrides the config's `state:` (a directory or redis://…) */
  state: string | undefined;
  maxPending: number;
  /** largest held call (request body + arguments), bytes; bigger ones are refused -32602 */
  maxApprovalBytes: number;
  /** pending approvals' bytes together; past it new ones get -32009 */
  maxPendingApprovalBytes: number;
  /** pending approvals of one client (principal + session) at most; past it -32009 */
  maxPendingPerClient: number;
  /** how long an approved call whose client went away may be redeemed by its identical retry */
  retryWindowMs: number;
  /** timeout of `approve` rules with no workflow (the original's THOUGHTGATE_APPROVAL_TIMEOUT_SECS) */
  defaultTimeoutMs: number;
  retentionMs: number;
  taskTtlMinMs: number;
  taskTtlMaxMs: number;
  keepaliveMs: number;
  /** undefined: a token is generated at start and written to the state directory */
  adminToken: string | undefined;
  consoleUrl: string | undefined;
  /** how long a console sign-in lasts (server-side session) */
  consoleSessionMs: number;
  inboundPort: number;
  inboundBind: string;
  /** how webhook receivers reach the inbound port (callback_url base) */
  inboundUrl: string | undefined;
  slackToken: string | undefined;
  slackChannel: string;
  slackSigningSecret: string | undefined;
  slackApiUrl: string | undefined;
  slackPollMs: number;
  webhookSecret: string | undefined;
}

export class SettingsError extends Error {}

type Env = Readonly<Record<string, string | undefined>>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new SettingsError(`${name}='${raw}' is not an integer`);
  if (n < min || n > max) throw new SettingsError(`${name}=${n} is out of range [${min}, ${max}]`);
  return n;
}

function choice<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new SettingsError(`${name}='${raw}' must be one of ${allowed.join(', ')}`);
  return raw as T;
}

/** An optional choice: undefined when unset, so a config file's value can apply. */
function optionalChoice<T extends string>(env: Env, name: string, allowed: readonly T[]): T | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : choice(env, name, allowed, allowed[0]!);
}

/**
 * A bind address: an IPv4 or IPv6 literal (a host name would bind wherever DNS says today).
 * Blank = not set.
 */
function address(raw: string | undefined, name: string): string | undefined {
  const v = raw?.trim();
  if (v === undefined || v === '') return undefined;
  if (isIP(v) === 0) throw new SettingsError(`${name}='${raw}' is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)`);
  return v;
}

/** 0 or unset: derived from the idle timeouts; otherwise 10 ms .. 10 min (a tighter loop would only burn CPU). */
function sweepMs(env: Env): number | undefined {
  const v = int(env, 'THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS', 0, 0, 600_000);
  if (v !== 0 && v < 10) throw new SettingsError(`THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS=${v} is out of range [10, 600000] (0 = derived)`);
  return v === 0 ? undefined : v;
}

export interface Flags {
  config?: string;
  profile?: string;
  bind?: string;
}

/** Variables described by `thoughtgate serve --help` (one place, so help and code agree). */
export const ENV_HELP: ReadonlyArray<readonly [string, string]> = [
  ['THOUGHTGATE_CONFIG', 'config file when --config is not given (default ./thoughtgate.yaml)'],
  ['THOUGHTGATE_OUTBOUND_PORT', 'traffic port (default 7467)'],
  ['THOUGHTGATE_ADMIN_PORT', 'admin port: /health, /ready, /metrics (default 7469)'],
  ['THOUGHTGATE_BIND', 'traffic bind address; --bind wins (default 0.0.0.0)'],
  ['THOUGHTGATE_ADMIN_BIND', 'admin bind address (default: the traffic bind, so --bind 127.0.0.1 keeps the console local; Kubernetes sets 0.0.0.0 for its probes)'],
  ['MODE', 'enforce (default) | audit (judge, log WOULD_BLOCK, forward) | bypass (development only)'],
  ['THOUGHTGATE_PROFILE', 'production | development (= MODE audit); --profile wins'],
  ['THOUGHTGATE_ENVIRONMENT', 'environment name (default production); bypass needs development'],
  ['THOUGHTGATE_REQUEST_TIMEOUT_SECS', 'time for the upstream to answer a request (default 300)'],
  ['THOUGHTGATE_STREAM_READ_TIMEOUT_SECS', 'longest silence inside a streamed answer (default 300)'],
  ['THOUGHTGATE_SHUTDOWN_TIMEOUT_SECS', 'time to drain in-flight requests on SIGTERM (default 30)'],
  ['THOUGHTGATE_MAX_REQUEST_BODY_BYTES', 'largest request body; larger gets 413 with -32600 (default 4194304, as the SDK servers)'],
  ['THOUGHTGATE_UWS_BUILD', 'native uWS build of the traffic port: auto (default: uWS 20.57, which answers 431 and runs on Node 20-25 with glibc >= 2.38, else uWS 20.30 for Node <= 20 on older glibc), modern or legacy (that one or fail)'],
  ['THOUGHTGATE_MAX_BODY_DRAIN_BYTES', 'bytes of an over-limit body read and discarded so the client gets its 413; past it the connection is closed (default 16777216)'],
  ['THOUGHTGATE_MAX_JSON_DEPTH', 'deepest JSON nesting accepted (default 64)'],
  ['THOUGHTGATE_MAX_BATCH_SIZE', 'largest JSON-RPC batch on 2025-03-26 sessions (default 100, 1..10000)'],
  ['THOUGHTGATE_MAX_CONCURRENT_REQUESTS', 'most requests in flight to the upstream; more get -32009 (default 10000)'],
  ['THOUGHTGATE_MAX_LINE_BYTES', 'longest stdio line (default 10485760)'],
  ['THOUGHTGATE_MAX_SSE_EVENT_BYTES', 'largest SSE event relayed from the upstream (default 16777216)'],
  ['THOUGHTGATE_MAX_STDIO_SESSIONS', 'most concurrent sessions of a command: source (default 64)'],
  ['THOUGHTGATE_MAX_STDIO_SESSIONS_PER_CLIENT', 'most stdio sessions one client (principal + peer address) may hold; more get -32009 + retry_after (default 16)'],
  ['THOUGHTGATE_STDIO_MEMORY_BUDGET_MB', 'resident memory of all stdio servers together, sampled from /proc; past it new sessions get -32009 and idle servers are ended oldest-idle first (default 2048)'],
  ['THOUGHTGATE_STDIO_IDLE_TIMEOUT_SECS', 'idle time before a session\'s stdio server is ended (default 600)'],
  ['THOUGHTGATE_STDIO_IDLE_UNDER_PRESSURE_SECS', 'idle time before a stdio server with no work in flight is ended while over 75% of the session cap or memory budget (default 30)'],
  ['THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS', 'how often stdio servers are sampled and idle ones ended (default a quarter of the shorter idle time, 1..30 s)'],
  ['THOUGHTGATE_MAX_STREAMS_PER_CLIENT', 'most GET streams one client (principal + peer address) may hold open; more get 429 + Retry-After (-32009) (default 16)'],
  ['THOUGHTGATE_MAX_STREAMS_PER_SESSION', 'most GET streams open on one MCP session; more get 429 + Retry-After (-32009) (default 4)'],
  ['THOUGHTGATE_STDIO_POOL_SIZE', 'stdio servers kept for stateless 2026-07-28 requests (default 2)'],
  ['THOUGHTGATE_UPSTREAM_CONNECTIONS', 'HTTP upstream connection pool size (default 128)'],
  ['THOUGHTGATE_UPSTREAM_STREAM_CONNECTIONS', 'most pool connections long-lived GET streams may hold (default half the pool); a GET beyond it gets 429 + Retry-After (-32009)'],
  ['THOUGHTGATE_UPSTREAM_CLIENT', 'HTTP client for http: upstreams: lean (default, ours) or undici; https: always uses undici'],
  ['THOUGHTGATE_ALLOWED_ORIGINS', 'comma-separated Origins allowed besides localhost ones; * allows any'],
  ['THOUGHTGATE_AUDIT_PATH', 'audit trail file, NDJSON (default ./thoughtgate-audit.ndjson; - for stdout)'],
  ['THOUGHTGATE_AUDIT_DURABILITY', "buffered (default: 50 ms batches, no fsync) | strict (a decision's line is fdatasync'ed before the call goes on); overrides audit.durability"],
  ['THOUGHTGATE_AUDIT_ON_FAILURE', 'fail_closed (production default: governed calls refused, /ready 503) | continue (development default: forwarded, logged, counted) when the trail cannot be written; overrides audit.on_failure'],
  ['THOUGHTGATE_PRINCIPAL', 'caller identity when no pod labels or service account are found (default $USER or local)'],
  ['THOUGHTGATE_POD_LABELS_FILE', 'downward-API pod labels file the identity is read from (default /etc/podinfo/labels)'],
  ['THOUGHTGATE_CEDAR_WORKERS', 'Cedar worker threads; 0 evaluates on the main thread (default 1)'],
  ['THOUGHTGATE_CEDAR_QUEUE', 'Cedar evaluations waiting for a worker; more get -32009 (default 256)'],
  ['THOUGHTGATE_CEDAR_SPIN_US', 'µs a Cedar worker spins for the next task before it sleeps (default 50; 0 sleeps at once)'],
  ['THOUGHTGATE_API_TOKEN', 'Bearer token required by the decision API (/api/v1/governance/*); unset = the API refuses every caller (403) unless THOUGHTGATE_API_OPEN allows it'],
  ['THOUGHTGATE_API_OPEN', 'loopback: decision API callers whose TCP peer is 127.0.0.0/8 or ::1 need no token (others still need THOUGHTGATE_API_TOKEN); none (default): nobody without the token'],
  ['THOUGHTGATE_LOG_LEVEL', 'log level: debug, info (default), warn, error'],
  ['THOUGHTGATE_LOG_FILE', 'write the log to this file instead of stderr (wrap defaults it to ~/.local/state/thoughtgate/wrap.log)'],
  ['THOUGHTGATE_STATE_DIR', 'embedded approval store directory (default $XDG_STATE_HOME/thoughtgate/<port>, else ~/.local/state/thoughtgate/<port>)'],
  ['THOUGHTGATE_STATE', 'approval store: a directory or redis://host:port/db (replicas share it); overrides the config\'s state:'],
  ['THOUGHTGATE_MAX_PENDING_APPROVALS', 'most approvals waiting at once; more get -32009 (default 1000)'],
  ['THOUGHTGATE_MAX_APPROVAL_BYTES', 'largest call held for approval, request body + arguments in bytes; bigger ones are refused at once with -32602 (default 4194304)'],
  ['THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES', 'bytes of all approvals waiting at once (request bodies + arguments); more get -32009 (default 67108864)'],
  ['THOUGHTGATE_MAX_PENDING_APPROVALS_PER_CLIENT', 'most approvals one client (principal + MCP session) has waiting at once; more get -32009 (default 100)'],
  ['THOUGHTGATE_APPROVAL_RETRY_WINDOW_SECS', 'a held call approved after its client went away (closed, or the sidecar restarted) is not run for nobody: it runs once when the identical call is retried within this window, else it is cancelled (default 900)'],
  ['THOUGHTGATE_APPROVAL_TIMEOUT_SECS', 'approval timeout of approve rules without a workflow (default 600)'],
  ['THOUGHTGATE_APPROVAL_RETENTION_SECS', 'how long a finished approval and its result are kept (default 3600)'],
  ['THOUGHTGATE_TASK_TTL_MIN_SECS', 'shortest task ttl granted to a client (default 60)'],
  ['THOUGHTGATE_TASK_TTL_MAX_SECS', 'longest task ttl granted to a client (default 86400)'],
  ['THOUGHTGATE_KEEPALIVE_INTERVAL_SECS', 'keep-alive / progress interval while a call is held (default 15)'],
  ['THOUGHTGATE_ADMIN_TOKEN', 'token for the approvals console and API on the admin port; unset = generated at start (logged, saved in the state directory)'],
  ['THOUGHTGATE_CONSOLE_SESSION_HOURS', 'how long a console sign-in lasts before the token is asked again (default 12, 1..720)'],
  ['THOUGHTGATE_CONSOLE_URL', 'public address of the console for links in Slack and errors (default http://127.0.0.1:<admin port>/approvals)'],
  ['THOUGHTGATE_INBOUND_PORT', 'inbound port for webhook decisions and Slack buttons (default 7468; started only when needed)'],
  ['THOUGHTGATE_INBOUND_BIND', 'inbound bind address (default: the traffic bind; Slack and webhook receivers must reach it)'],
  ['THOUGHTGATE_INBOUND_URL', 'address webhook receivers call back (default http://127.0.0.1:<inbound port>)'],
  ['THOUGHTGATE_SLACK_BOT_TOKEN', 'Slack bot token; without it approvals go to the console'],
  ['THOUGHTGATE_SLACK_CHANNEL', 'default Slack channel for approval messages (default #approvals)'],
  ['THOUGHTGATE_SLACK_SIGNING_SECRET', 'Slack signing secret: enables Approve/Reject buttons (POST /slack/interactions on the inbound port)'],
  ['THOUGHTGATE_SLACK_API_URL', 'Slack Web API base URL (default https://slack.com/api/)'],
  ['THOUGHTGATE_APPROVAL_POLL_INTERVAL_MS', 'how often Slack reactions are polled (default 2000)'],
  ['THOUGHTGATE_WEBHOOK_SECRET', 'HMAC secret of webhook workflows without secret_env'],
];

/** Per traffic port: two sidecars on one machine never share (or lock each other out of) a directory. */
function defaultStateDir(env: Env, port: number): string {
  const base = env['XDG_STATE_HOME'] || (env['HOME'] ? `${env['HOME']}/.local/state` : '.');
  return `${base}/thoughtgate/${port}`;
}

export function resolveSettings(flags: Flags, env: Env = process.env): Settings {
  const profileRaw = flags.profile ?? env['THOUGHTGATE_PROFILE'];
  if (profileRaw !== undefined && profileRaw !== 'production' && profileRaw !== 'development') {
    throw new SettingsError(`--profile must be production or development (got '${profileRaw}')`);
  }
  const environment = (env['THOUGHTGATE_ENVIRONMENT'] ?? 'production').trim() || 'production';
  const modeRaw = env['MODE']?.trim().toLowerCase();
  let mode: Mode;
  if (profileRaw !== undefined && flags.profile !== undefined) mode = profileRaw === 'development' ? 'audit' : 'enforce';
  else if (modeRaw !== undefined && modeRaw !== '') {
    if (modeRaw !== 'enforce' && modeRaw !== 'audit' && modeRaw !== 'bypass') throw new SettingsError(`MODE must be enforce, audit or bypass (got '${env['MODE']}')`);
    mode = modeRaw;
  } else mode = profileRaw === 'development' ? 'audit' : 'enforce';
  if (mode === 'bypass' && environment !== 'development') {
    throw new SettingsError(`MODE=bypass forwards without judging and is refused unless THOUGHTGATE_ENVIRONMENT=development (it is '${environment}')`);
  }
  const port = int(env, 'THOUGHTGATE_OUTBOUND_PORT', 7467, 0, 65535);
  const adminPort = int(env, 'THOUGHTGATE_ADMIN_PORT', 7469, 0, 65535);
  if (port !== 0 && port === adminPort) throw new SettingsError(`THOUGHTGATE_OUTBOUND_PORT and THOUGHTGATE_ADMIN_PORT are both ${port}`);
  const limits: Limits = {
    maxBodyBytes: int(env, 'THOUGHTGATE_MAX_REQUEST_BODY_BYTES', DEFAULT_LIMITS.maxBodyBytes, 64, 1 << 30),
    maxDrainBytes: int(env, 'THOUGHTGATE_MAX_BODY_DRAIN_BYTES', DEFAULT_LIMITS.maxDrainBytes, 0, 1 << 30),
    maxDepth: int(env, 'THOUGHTGATE_MAX_JSON_DEPTH', DEFAULT_LIMITS.maxDepth, 2, 10_000),
    maxBatchSize: int(env, 'THOUGHTGATE_MAX_BATCH_SIZE', DEFAULT_LIMITS.maxBatchSize, 1, 10_000),
    maxLineBytes: int(env, 'THOUGHTGATE_MAX_LINE_BYTES', DEFAULT_LIMITS.maxLineBytes, 64, 1 << 30),
    maxStdioSessions: int(env, 'THOUGHTGATE_MAX_STDIO_SESSIONS', DEFAULT_LIMITS.maxStdioSessions, 1, 100_000),
    maxStdioSessionsPerClient: int(env, 'THOUGHTGATE_MAX_STDIO_SESSIONS_PER_CLIENT', DEFAULT_LIMITS.maxStdioSessionsPerClient, 1, 100_000),
    maxStreamsPerClient: int(env, 'THOUGHTGATE_MAX_STREAMS_PER_CLIENT', DEFAULT_LIMITS.maxStreamsPerClient, 1, 100_000),
    maxStreamsPerSession: int(env, 'THOUGHTGATE_MAX_STREAMS_PER_SESSION', DEFAULT_LIMITS.maxStreamsPerSession, 1, 1000),
    maxConcurrentRequests: int(env, 'THOUGHTGATE_MAX_CONCURRENT_REQUESTS', DEFAULT_LIMITS.maxConcurrentRequests, 1, 100_000),
  };
  const origins = (env['THOUGHTGATE_ALLOWED_ORIGINS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  // The admin and inbound ports follow the traffic bind unless set: `serve --bind 127.0.0.1`
  // means nothing of ours listens beyond this host (the console and its token included).
  const bind = address(flags.bind, '--bind') ?? address(env['THOUGHTGATE_BIND'], 'THOUGHTGATE_BIND') ?? '0.0.0.0';
  return {
    configPath: flags.config ?? env['THOUGHTGATE_CONFIG'] ?? './thoughtgate.yaml',
    bind,
    port,
    adminBind: address(env['THOUGHTGATE_ADMIN_BIND'], 'THOUGHTGATE_ADMIN_BIND') ?? bind,
    adminPort,
    mode,
    profile: mode === 'enforce' ? 'production' : 'development',
    environment,
    requestTimeoutMs: int(env, 'THOUGHTGATE_REQUEST_TIMEOUT_SECS', 300, 1, 86_400) * 1000,
    streamReadTimeoutMs: int(env, 'THOUGHTGATE_STREAM_READ_TIMEOUT_SECS', 300, 1, 86_400) * 1000,
    shutdownTimeoutMs: int(env, 'THOUGHTGATE_SHUTDOWN_TIMEOUT_SECS', 30, 1, 3600) * 1000,
    stdioIdleMs: int(env, 'THOUGHTGATE_STDIO_IDLE_TIMEOUT_SECS', 600, 1, 86_400) * 1000,
    stdioIdleUnderPressureMs: int(env, 'THOUGHTGATE_STDIO_IDLE_UNDER_PRESSURE_SECS', 30, 1, 86_400) * 1000,
    stdioMemoryBudgetBytes: int(env, 'THOUGHTGATE_STDIO_MEMORY_BUDGET_MB', 2048, 1, 1 << 20) * 1024 * 1024,
    stdioSweepMs: sweepMs(env),
    stdioPoolSize: int(env, 'THOUGHTGATE_STDIO_POOL_SIZE', 2, 1, 64),
    upstreamConnections: int(env, 'THOUGHTGATE_UPSTREAM_CONNECTIONS', 128, 1, 4096),
    upstreamStreamConnections: int(env, 'THOUGHTGATE_UPSTREAM_STREAM_CONNECTIONS', 0, 0, 4096) || undefined,
    upstreamClient: choice(env, 'THOUGHTGATE_UPSTREAM_CLIENT', ['lean', 'undici'], 'lean'),
    maxEventBytes: int(env, 'THOUGHTGATE_MAX_SSE_EVENT_BYTES', 16 * 1024 * 1024, 1024, 1 << 30),
    allowedOrigins: origins,
    auditPath: env['THOUGHTGATE_AUDIT_PATH'] ?? './thoughtgate-audit.ndjson',
    auditDurability: optionalChoice(env, 'THOUGHTGATE_AUDIT_DURABILITY', ['buffered', 'strict'] as const),
    auditOnFailure: optionalChoice(env, 'THOUGHTGATE_AUDIT_ON_FAILURE', ['fail_closed', 'continue'] as const),
    cedarWorkers: int(env, 'THOUGHTGATE_CEDAR_WORKERS', 1, 0, 64),
    cedarQueue: int(env, 'THOUGHTGATE_CEDAR_QUEUE', 256, 1, 1_000_000),
    cedarSpinMicros: int(env, 'THOUGHTGATE_CEDAR_SPIN_US', 50, 0, 1000),
    apiToken: env['THOUGHTGATE_API_TOKEN'] || undefined,
    apiOpenLoopback: choice(env, 'THOUGHTGATE_API_OPEN', ['loopback', 'none'], 'none') === 'loopback',
    uwsBuild: choice(env, 'THOUGHTGATE_UWS_BUILD', ['auto', 'modern', 'legacy'], 'auto') as UwsChoice,
    limits,
    approvals: {
      stateDir: env['THOUGHTGATE_STATE_DIR'] || defaultStateDir(env, port),
      state: env['THOUGHTGATE_STATE'] || undefined,
      maxPending: int(env, 'THOUGHTGATE_MAX_PENDING_APPROVALS', 1000, 1, 1_000_000),
      // 4 MiB: a held call carries its arguments twice (body + parsed), so ~2 MB arguments fit; 5 MB do not
      maxApprovalBytes: int(env, 'THOUGHTGATE_MAX_APPROVAL_BYTES', 4 * 1024 * 1024, 1024, 1 << 30),
      maxPendingApprovalBytes: int(env, 'THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES', 64 * 1024 * 1024, 1024, 2 ** 40),
      maxPendingPerClient: int(env, 'THOUGHTGATE_MAX_PENDING_APPROVALS_PER_CLIENT', 100, 1, 1_000_000),
      retryWindowMs: int(env, 'THOUGHTGATE_APPROVAL_RETRY_WINDOW_SECS', 900, 1, 7 * 86_400) * 1000,
      defaultTimeoutMs: int(env, 'THOUGHTGATE_APPROVAL_TIMEOUT_SECS', 600, 5, 7 * 86_400) * 1000,
      retentionMs: int(env, 'THOUGHTGATE_APPROVAL_RETENTION_SECS', 3600, 1, 30 * 86_400) * 1000,
      taskTtlMinMs: int(env, 'THOUGHTGATE_TASK_TTL_MIN_SECS', 60, 1, 30 * 86_400) * 1000,
      taskTtlMaxMs: int(env, 'THOUGHTGATE_TASK_TTL_MAX_SECS', 86_400, 1, 30 * 86_400) * 1000,
      keepaliveMs: int(env, 'THOUGHTGATE_KEEPALIVE_INTERVAL_SECS', 15, 1, 3600) * 1000,
      adminToken: env['THOUGHTGATE_ADMIN_TOKEN'] || undefined,
      consoleUrl: env['THOUGHTGATE_CONSOLE_URL'] || undefined,
      consoleSessionMs: int(env, 'THOUGHTGATE_CONSOLE_SESSION_HOURS', 12, 1, 720) * 3_600_000,
      inboundPort: int(env, 'THOUGHTGATE_INBOUND_PORT', 7468, 0, 65535),
      inboundBind: address(env['THOUGHTGATE_INBOUND_BIND'], 'THOUGHTGATE_INBOUND_BIND') ?? bind,
      inboundUrl: env['THOUGHTGATE_INBOUND_URL'] || undefined,
      slackToken: env['THOUGHTGATE_SLACK_BOT_TOKEN'] || undefined,
      slackChannel: env['THOUGHTGATE_SLACK_CHANNEL'] || '#approvals',
      slackSigningSecret: env['THOUGHTGATE_SLACK_SIGNING_SECRET'] || undefined,
      slackApiUrl: env['THOUGHTGATE_SLACK_API_URL'] || undefined,
      slackPollMs: int(env, 'THOUGHTGATE_APPROVAL_POLL_INTERVAL_MS', 2000, 10, 600_000),
      webhookSecret: env['THOUGHTGATE_WEBHOOK_SECRET'] || undefined,
    },
  };
}
