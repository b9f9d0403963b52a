// Assembles gate 4 for the sidecar: the state store (embedded directory or Redis), the
// channels each workflow asks through, the engine, and the gateway the pipeline holds calls
// with. Metrics and audit lines for every approval event are written here.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ApprovalSettings } from '../cli/settings.js';
import { ensurePrivateDir, ensurePrivateFile, writeFileAtomic } from '../core/durable-fs.js';
import type { Principal } from '../core/policy-engine.js';
import type { Config, Snapshot, WorkflowConfig } from '../policy/types.js';
import type { AuditWriter } from '../telemetry/audit.js';
import { logger } from '../telemetry/log.js';
import { metrics } from '../telemetry/metrics.js';
import type { Upstream } from '../upstream/types.js';
import type { AdminRoute } from '../admin/server.js';
import { ApprovalEngine } from './engine.js';
import { ApprovalGateway } from './gateway.js';
import { FileStore } from './store/file.js';
import { TERMINAL_STATES, type ApprovalChannel, type ApprovalRecord, type ApprovalState, type StateStore } from './types.js';

export interface Approvals {
  engine: ApprovalEngine;
  gateway: ApprovalGateway;
  /** a gateway like `gateway` in front of another upstream (wrap: one per HTTP server) */
  gatewayFor(upstream: Upstream): ApprovalGateway;
  store: StateStore;
  adminToken: string;
  consoleUrl: string;
  channels: Map<string, ApprovalChannel>;
  close(): Promise<void>;
}

export interface ApprovalsDeps {
  settings: ApprovalSettings;
  config: Config;
  snapshot: () => Snapshot;
  upstream: Upstream;
  principal: Principal;
  audit: AuditWriter;
  mode: string;
  adminPort: number;
  maxResultBytes: number;
  /** runs an approved call instead of the gateway forwarding it (wrap: the shim forwards) */
  execute?: (rec: ApprovalRecord) => Promise<import('./types.js').Outcome>;
}

/** `state:` from the environment or the config: a redis:// URL or a directory (relative to the config file). */
export function stateLocation(s: ApprovalSettings, config: Config): { kind: 'redis'; url: string } | { kind: 'file'; dir: string } {
  const raw = s.state ?? config.state;
  if (raw === undefined) return { kind: 'file', dir: resolve(s.stateDir) };
  if (/^rediss?:\/\//.test(raw)) return { kind: 'redis', url: raw };
  return { kind: 'file', dir: isAbsolute(raw) ? raw : resolve(dirname(config.path), raw) };
}

async function openStore(where: ReturnType<typeof stateLocation>): Promise<StateStore> {
  if (where.kind === 'redis') {
    const { RedisStore } = await import('./store/redis.js');
    const store = new RedisStore(where.url);
    await store.open();
    return store;
  }
  const store = new FileStore(where.dir);
  await store.open();
  return store;
}

/**
 * The admin token: given, or generated once (0600) in THOUGHTGATE_STATE_DIR — where
 * `thoughtgate approvals` looks for it, whatever `state:` says about the approvals themselves.
 */
function adminToken(s: ApprovalSettings): { token: string; generated: boolean; file?: string } {
  if (s.adminToken !== undefined) return { token: s.adminToken, generated: false };
  const dir = resolve(s.stateDir);
  const file = join(dir, 'admin-token');
  // 0600 in a 0700 directory, tightened when an older version or a umask left them open: a
  // governed server running as the same user must not read a token that approves its calls.
  ensurePrivateDir(dir);
  ensurePrivateFile(file);
  try {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return { token: t, generated: true, file };
  } catch { /* first start */ }
  const token = randomBytes(24).toString('base64url');
  // atomic replace: never writes through a symlink planted where the token goes
  writeFileAtomic(file, Buffer.from(token + '\n'), 0o600);
  return { token, generated: true, file };
}

/** Where the record of a workflow goes: Slack needs a token; without one the console asks. */
function channelNameFor(name: string, w: WorkflowConfig | undefined, slackReady: boolean): string {
  const type = w?.destination.type ?? 'console';
  if (type === 'slack') return slackReady ? 'slack' : 'console';
  if (type === 'webhook') return `webhook:${name}`;
  return 'console';
}

/** The console needs no pushing: it lists the store. */
const consoleChannel: ApprovalChannel = {
  name: 'console',
  start: async () => {},
  post: async () => {},
  update: async () => {},
  close: async () => {},
};

export async function createApprovals(d: ApprovalsDeps): Promise<Approvals> {
  const s = d.settings;
  const store = await openStore(stateLocation(s, d.config));
  const { token, generated, file } = adminToken(s);
  // An approver whose token is the admin token would vote as 'operator' and manage everything.
  for (const [name, w] of Object.entries(d.config.approval)) {
    for (const [who, t] of Object.entries(w.approver_tokens)) {
      if (t === token) {
        await store.close();
        throw new Error(`approval.${name}.approver_tokens.${who} is the admin token (THOUGHTGATE_ADMIN_TOKEN): give each approver a token of their own`);
      }
    }
  }
  const consoleUrl = s.consoleUrl ?? `http://127.0.0.1:${d.adminPort}/approvals`;
  const channels = new Map<string, ApprovalChannel>([['console', consoleChannel]]);
  const slackReady = s.slackToken !== undefined;
  const replicaId = randomUUID();
  // The gauge counts the shared store (all replicas' tasks). Counting reads every record, so a
  // burst of transitions shares one count in flight plus one after it, not one each.
  let counting: Promise<void> | undefined;
  let recount = false;
  const refreshPending = (): Promise<void> => {
    if (counting !== undefined) {
      recount = true;
      return counting;
    }
    counting = (async () => {
      do {
        recount = false;
        let n = 0;
        for (const r of await store.list()) if (!TERMINAL_STATES.has(r.state) && r.mode === 'task') n++;
        metrics.setTasksPending(n);
      } while (recount);
    })().finally(() => {
      counting = undefined;
    });
    return counting;
  };
  let gateway: ApprovalGateway | undefined;
  /** held calls whose client waits in this process, across every gateway (see EngineOptions.hasWaiter) */
  const waiting = new Set<string>();
  let engineRef: ApprovalEngine | undefined;
  let extra: { close(): Promise<void> };
  try {
    extra = await buildChannels(d, consoleUrl, channels, () => engineRef!);
  } catch (e) {
    await store.close();
    throw e;
  }
  const engine = new ApprovalEngine({
    store,
    channels,
    replicaId,
    maxPending: s.maxPending,
    maxRecordBytes: s.maxApprovalBytes,
    maxPendingBytes: s.maxPendingApprovalBytes,
    maxPendingPerClient: s.maxPendingPerClient,
    retryWindowMs: s.retryWindowMs,
    // The shim executes its own calls (released, not run here); a sidecar's held call runs only
    // while its client waits for it in this process.
    hasWaiter: (rec) => rec.request.path === 'stdio' || waiting.has(rec.id),
    retentionMs: s.retentionMs,
    execute: d.execute ?? ((rec) => gateway!.execute(rec)),
    // Per-approver tokens and redact_fields as the policy in force now says (reloads included).
    workflows: () => d.snapshot().config.approval,
    events: {
      transition: (rec, from, by) => {
        recordTransition(d, rec, from, by);
        if (rec.mode === 'task') void refreshPending().catch(() => {});
      },
      log: (level, msg, fields) => logger[level](fields ?? {}, msg),
    },
  });
  engineRef = engine;
  const gatewayFor = (upstream: Upstream): ApprovalGateway => new ApprovalGateway({
    engine,
    upstream,
    snapshot: d.snapshot,
    principal: d.principal,
    keepaliveMs: s.keepaliveMs,
    taskTtlMinMs: s.taskTtlMinMs,
    taskTtlMaxMs: s.taskTtlMaxMs,
    defaultTimeoutMs: s.defaultTimeoutMs,
    maxResultBytes: d.maxResultBytes,
    channelFor: (name, w) => channelNameFor(name, w, slackReady),
    consoleUrl,
    waiting,
  });
  gateway = gatewayFor(d.upstream);
  await engine.start();
  await refreshPending();
  const slackless = Object.entries(d.config.approval).filter(([, w]) => w.destination.type === 'slack').map(([n]) => n);
  if (slackless.length > 0 && !slackReady) {
    logger.warn({ workflows: slackless }, 'THOUGHTGATE_SLACK_BOT_TOKEN is not set: these Slack workflows ask through the console instead');
  }
  logger.info({ store: store.kind, where: store.where, console: consoleUrl, replica: replicaId, channels: [...channels.keys()] }, 'approvals ready');
  if (generated) {
    // Printed so `npm start` shows a working console at once; the file lets the CLI find it.
    logger.info({ token_file: file }, `approvals console: ${consoleUrl}?token=${token}`);
  }
  return {
    engine, gateway, gatewayFor, store, adminToken: token, consoleUrl, channels,
    close: async () => {
      gateway!.closeHeld();
      await engine.close();
      await extra.close();
      await store.close();
    },
  };
}

/**
 * Slack (when a bot token is set) and one webhook channel per webhook workflow; the inbound
 * port is started when something needs to call us back (webhook decisions, Slack buttons).
 */
async function buildChannels(d: ApprovalsDeps, consoleUrl: string, channels: Map<string, ApprovalChannel>, engine: () => ApprovalEngine): Promise<{ close(): Promise<void> }> {
  const s = d.settings;
  const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void => logger[level](fields ?? {}, msg);
  const workflowOf = (rec: ApprovalRecord): WorkflowConfig | undefined => d.snapshot().config.approval[rec.workflow];
  if (s.slackToken !== undefined) {
    const { SlackChannel } = await import('./channels/slack.js');
    channels.set('slack', new SlackChannel({
      token: s.slackToken,
      channel: s.slackChannel,
      apiUrl: s.slackApiUrl,
      pollIntervalMs: s.slackPollMs,
      consoleUrl,
      redactFields: (rec) => [...(rec.redactFields ?? []), ...(workflowOf(rec)?.redact_fields ?? [])],
      channelFor: (rec) => {
        const dest = workflowOf(rec)?.destination;
        return dest?.type === 'slack' ? dest.channel : undefined;
      },
      log,
    }));
  }
  const webhooks = Object.entries(d.config.approval).filter(([, w]) => w.destination.type === 'webhook');
  const secrets = new Map<string, string>();
  for (const [name, w] of webhooks) {
    const dest = w.destination as Extract<WorkflowConfig['destination'], { type: 'webhook' }>;
    const envName = dest.secret_env ?? 'THOUGHTGATE_WEBHOOK_SECRET';
    const secret = dest.secret_env !== undefined ? process.env[dest.secret_env] : s.webhookSecret;
    // An unsigned webhook would let anyone who can reach the inbound port approve: refuse to start.
    if (!secret) throw new Error(`webhook workflow '${name}' needs its HMAC secret in ${envName}`);
    secrets.set(name, secret);
  }
  const needInbound = webhooks.length > 0 || s.slackSigningSecret !== undefined;
  if (!needInbound) return { close: async () => {} };
  const { startInboundServer } = await import('../admin/inbound.js');
  const { readBody } = await import('../admin/server.js');
  const routes: AdminRoute[] = [];
  if (secrets.size > 0) {
    const { handleWebhookCallback } = await import('./channels/webhook.js');
    // The record names its workflow, and so the secret its decision must be signed with.
    routes.push(async (req, res, path) => {
      const m = /^\/approvals\/([A-Za-z0-9_-]{1,64})$/.exec(path);
      if (m === null || req.method !== 'POST') return false;
      const rec = await engine().get(m[1]!);
      const secret = rec === undefined ? undefined : secrets.get(rec.workflow);
      const body = await readBody(req, 16 * 1024);
      if (body === 'too_large') return answer(res, 413, '{"error":"too_large"}');
      if (secret === undefined) return answer(res, 404, '{"error":"not_found"}');
      const r = await handleWebhookCallback(m[1]!, body, lowerHeaders(req.headers), engine(), secret, Date.now(), `webhook:${rec!.workflow}`);
      res.writeHead(r.status, r.headers);
      res.end(r.body);
      return true;
    });
  }
  if (s.slackSigningSecret !== undefined) {
    const { handleSlackInteraction } = await import('./channels/slack-signature.js');
    const secret = s.slackSigningSecret;
    routes.push(async (req, res, path) => {
      if (path !== '/slack/interactions' || req.method !== 'POST') return false;
      const body = await readBody(req, 64 * 1024);
      if (body === 'too_large') return answer(res, 413, '{"error":"too_large"}');
      const r = await handleSlackInteraction(body, lowerHeaders(req.headers), engine(), secret, log);
      res.writeHead(r.status, r.headers);
      res.end(r.body);
      return true;
    });
  }
  const inbound = await startInboundServer({ port: s.inboundPort, host: s.inboundBind, routes, log });
  const callbackBase = s.inboundUrl ?? `http://127.0.0.1:${inbound.port}`;
  if (webhooks.length > 0) {
    const { WebhookChannel } = await import('./channels/webhook.js');
    for (const [name, w] of webhooks) {
      const dest = w.destination as Extract<WorkflowConfig['destination'], { type: 'webhook' }>;
      channels.set(`webhook:${name}`, new WebhookChannel({ url: dest.url, secret: secrets.get(name)!, callbackBase, log }));
    }
  }
  logger.info({ port: inbound.port, webhooks: webhooks.map(([n]) => n), slack_buttons: s.slackSigningSecret !== undefined }, 'inbound port listening for decisions');
  return { close: () => inbound.close() };
}

function answer(res: import('node:http').ServerResponse, status: number, body: string): true {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
  return true;
}

function lowerHeaders(h: import('node:http').IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** Metrics and one audit line per approval event. */
function recordTransition(d: ApprovalsDeps, rec: ApprovalRecord, from: ApprovalState | 'new', by: string | undefined): void {
  const waited = ((rec.decidedAt ?? Date.now()) - rec.createdAt) / 1000;
  let decision: string;
  if (from === 'new') {
    decision = rec.state === 'approved' ? 'approval_preapproved' : 'approval_requested';
    metrics.recordApprovalRequest(rec.channel, 'pending');
    if (rec.mode === 'task') metrics.recordTaskCreated();
  } else {
    decision = rec.state === 'executing' ? 'approval_executing' : rec.state;
    if (rec.state === 'approved' || rec.state === 'rejected' || rec.state === 'expired' || rec.state === 'cancelled') {
      metrics.recordApprovalRequest(rec.channel, rec.state);
      metrics.observeApprovalWait(rec.channel, rec.state, waited);
    }
    if (rec.mode === 'task' && (rec.state === 'completed' || rec.state === 'failed' || rec.state === 'expired')) metrics.recordTaskCompleted(rec.state);
  }
  d.audit.write({
    correlationId: rec.correlationId,
    session: rec.sessionId,
    principal: rec.principal,
    method: rec.method,
    tool: rec.tool,
    source: rec.sourceId,
    gate: 'approval',
    decision,
    mode: d.mode,
    reason: rec.reason ?? (rec.outcome?.error !== undefined ? rec.outcome.error.message : undefined),
    durationMs: from === 'new' ? 0 : waited * 1000,
    snapshot: rec.snapshot,
    approvalId: rec.id,
    approver: by ?? rec.decidedBy,
    outcome: rec.state,
  });
}
