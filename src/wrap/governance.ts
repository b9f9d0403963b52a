// The governance service `thoughtgate wrap` runs on 127.0.0.1 for the shims of one agent: it
// judges each agent→server request with the sidecar's own pipeline (same gates, Cedar,
// approvals, audit, metrics), filters list answers, and exports the stdio metrics. Every
// call needs the per-run secret; the approvals console and /metrics are on its admin port.
import { randomUUID } from 'node:crypto';
import { bearerMatcher, secretMatcher } from '../core/secret.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { approvalRoutes } from '../admin/approvals-api.js';
import { startAdminServer, type AdminServer } from '../admin/server.js';
import { finalResponse, type ApprovalGateway } from '../approvals/gateway.js';
import { createApprovals, type Approvals } from '../approvals/setup.js';
import type { ApprovalRecord } from '../approvals/types.js';
import type { Settings } from '../cli/settings.js';
import { GovError, errorResponse } from '../core/errors.js';
import { resolveIdentity } from '../gates/cedar/principal.js';
import { filterListResponse } from '../gates/list-filter.js';
import { loadFullSnapshot } from '../load-snapshot.js';
import { Hold, Pipeline, type Verdict } from '../pipeline.js';
import { visibilityMatcher } from '../policy/snapshot.js';
import type { CompiledSource, Snapshot } from '../policy/types.js';
import { watchFiles } from '../policy/watch.js';
import { bodyClaimedVersion } from '../session/headers.js';
import { originPolicy } from '../session/origin.js';
import { SessionTable } from '../session/sessions.js';
import { createAuditWriter } from '../telemetry/audit.js';
import { logger } from '../telemetry/log.js';
import { metrics } from '../telemetry/metrics.js';
import { Telemetry } from '../telemetry/pipeline-telemetry.js';
import { startTrafficServer, type Exchange } from '../transport/http-server.js';
import type { HeaderMap, Upstream } from '../upstream/types.js';
import { LeanHttpUpstream } from '../upstream/h1/client.js';
import { HEADER_TOKEN, HEADER_UPSTREAM } from './rewrite.js';
import { SHIM_API, type EventsReport, type FilterRequest, type JudgeAnswer, type JudgeRequest, type WaitAnswer } from './protocol.js';

export interface GovernanceOptions {
  configPath: string;
  settings: Settings;
  /** the per-run secret every shim presents */
  token: string;
  /** 0 = ephemeral */
  port: number;
  /** the agent's server ids: governed under their own names even when the config does not list them */
  serverIds: string[];
}

export interface GovernanceService {
  url: string;
  port: number;
  adminPort: number;
  consoleUrl: string;
  close(): Promise<void>;
}

const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json' };
const MAX_WAIT_MS = 30_000;

/** Adds a source (expose all) for each agent server the config does not name, so rules without `source:` apply to it. */
export function withServers(snapshot: Snapshot, ids: readonly string[]): Snapshot {
  const missing = ids.filter((id) => !snapshot.sources.has(id));
  if (missing.length === 0) return snapshot;
  const sources = new Map<string, CompiledSource>(snapshot.sources);
  for (const id of missing) {
    const expose = { mode: 'all' as const, tools: [] };
    sources.set(id, { config: { id, kind: 'mcp', args: [], env: {}, env_passthrough: [], enabled: true, expose }, visible: visibilityMatcher(expose) });
  }
  return { ...snapshot, sources };
}

/** An upstream that is never used: approved stdio calls are forwarded by the shim itself. */
const NO_UPSTREAM: Upstream = {
  target: 'stdio shims',
  send: (_req, sink) => sink.onError(new GovError('internal_error', { subject: 'the governance service has no upstream' })),
  close: async () => {},
};

export async function startGovernanceService(o: GovernanceOptions): Promise<GovernanceService> {
  const s = o.settings;
  const configPath = resolve(o.configPath);
  const cedar = { workers: s.cedarWorkers, queue: s.cedarQueue, spinMicros: s.cedarSpinMicros };
  // A config that does not load refuses to start: wrapping without governance would forward everything.
  const ctx = { wrapServers: o.serverIds };
  let snapshot = withServers(await loadFullSnapshot(configPath, cedar, ctx), o.serverIds);
  const identity = resolveIdentity(process.env);
  const stateDir = mkdtempSync(join(tmpdir(), 'thoughtgate-wrap-'));
  const audit = createAuditWriter({ path: s.auditPath, onError: (err) => logger.error({ err: err.message }, 'audit trail write failed') });
  await audit.opened;
  const adminRoutes: Parameters<typeof startAdminServer>[0]['routes'] = [];
  const admin: AdminServer = await startAdminServer({
    port: s.adminPort === 7469 ? 0 : s.adminPort, host: '127.0.0.1', metrics, version: 'wrap',
    readiness: () => ({ ready: true, checks: { config_loaded: true } }), routes: adminRoutes,
  });
  let gateway: ApprovalGateway | undefined;
  const httpServers = new Map<string, { url: string; gateway: ApprovalGateway; pipeline: Pipeline; upstream: Upstream }>();
  const approvals: Approvals = await createApprovals({
    settings: { ...s.approvals, stateDir, state: undefined },
    config: snapshot.config,
    snapshot: () => snapshot,
    upstream: NO_UPSTREAM,
    principal: identity.principal,
    audit,
    mode: s.mode,
    adminPort: admin.port,
    maxResultBytes: s.maxEventBytes,
    // A stdio call approved is "released to the shim" (after a last look at a policy that may
    // have changed); an HTTP server's call is forwarded by that server's gateway.
    execute: async (rec) => {
      if (rec.request.path !== 'stdio') {
        const h = httpServers.get(rec.sourceId);
        if (h !== undefined) return h.gateway.execute(rec);
        return { error: { code: -32013, message: 'Service temporarily unavailable', data: { details: `no HTTP upstream for server '${rec.sourceId}' in this run` } } };
      }
      return (await gateway!.drift(rec)) ?? { result: { released_to: rec.sourceId } };
    },
  });
  gateway = approvals.gateway;
  adminRoutes!.push(approvalRoutes({ engine: approvals.engine, token: approvals.adminToken, log: (level, msg, fields) => logger[level](fields ?? {}, msg) }));

  // The sidecar's pipeline, for the shims' calls (it judges; it never forwards here) and in
  // front of each of the agent's HTTP servers. Agents reach neither through the decision API.
  const telemetry = new Telemetry(audit);
  const pipelineFor = (snap: () => Snapshot, upstream: Upstream, gw: ApprovalGateway): Pipeline => new Pipeline({
    snapshot: snap, mode: s.mode, limits: s.limits, upstream, sessions: new SessionTable(10_000, 3_600_000),
    origin: originPolicy([]), principal: identity.principal, telemetry, maxEventBytes: s.maxEventBytes, draining: () => false,
    decisionApi: { snapshot: snap, judge: () => { throw new Error('the decision API is not served by wrap'); }, token: o.token, maxBatchSize: 1, errorCodeOf: () => undefined },
    approvals: gw,
  });
  const pipeline = pipelineFor(() => snapshot, NO_UPSTREAM, approvals.gateway);

  // the scheme in any case (RFC 9110), like every other API of ours
  const bearerMatches = bearerMatcher(o.token);
  const authorized = (ex: Exchange): boolean => bearerMatches(ex.headers['authorization']);

  const judgeOne = async (req: JudgeRequest): Promise<JudgeAnswer> => {
    const { serverId, message } = req;
    const correlationId = randomUUID();
    const snap = snapshot;
    // Lookalikes, governed notifications and (per `governance.unknown_methods`) other methods
    // are refused before the gates, as on the sidecar; a notification refused is dropped by the shim.
    const id = (message as { id?: string | number }).id;
    const screened = pipeline.screen(message.method, id !== undefined, message.params, () => bodyClaimedVersion(message.params), correlationId, `stdio:${serverId}`, snap, serverId);
    if (screened !== undefined) {
      metrics.recordStdioDecision(serverId, 'deny', s.profile);
      return { action: 'respond', response: JSON.parse(errorResponse(id ?? null, screened, correlationId)) as Record<string, unknown> };
    }
    if (id === undefined) return { action: 'forward' };
    let v: Verdict = await pipeline.judgeOne(message.method, message.params, correlationId, undefined, snap, serverId);
    if (v instanceof Hold) {
      metrics.recordStdioDecision(serverId, 'pending_approval', s.profile);
      const rec = await approvals.gateway.ask({ message, subject: v.subject, decision: v.decision, correlationId, sessionId: `stdio:${serverId}`, snapshot: snap }, { path: 'stdio', headers: {}, body: JSON.stringify(message) });
      if (rec === 'granted') return { action: 'forward' };
      return { action: 'hold', approvalId: rec.id, consoleUrl: approvals.consoleUrl };
    }
    metrics.recordStdioDecision(serverId, v === undefined ? 'forward' : 'deny', s.profile);
    if (v === undefined) return { action: 'forward' };
    return { action: 'respond', response: JSON.parse(errorResponse(message.id, v, correlationId)) as Record<string, unknown> };
  };

  const answerFor = (rec: ApprovalRecord): WaitAnswer => {
    if (rec.state === 'completed') return { done: true, answer: { action: 'forward' } };
    return { done: true, answer: { action: 'respond', response: JSON.parse(finalResponse(rec, rec.requestId, rec.correlationId)) as Record<string, unknown> } };
  };

  const wait = (ex: Exchange, id: string, timeoutMs: number): void => {
    const finish = (a: WaitAnswer): void => {
      clearTimeout(timer);
      cancel();
      ex.respond(200, JSON_HEADERS, JSON.stringify(a));
    };
    const timer = setTimeout(() => finish({ done: false }), timeoutMs);
    const cancel = approvals.engine.whenSettled(id, (rec) => finish(rec !== undefined ? answerFor(rec)
      : { done: true, answer: { action: 'respond', response: JSON.parse(errorResponse(null, new GovError('task_not_found', { subject: id }), randomUUID())) as Record<string, unknown> } }));
    ex.onAbort = () => {
      clearTimeout(timer);
      cancel();
    };
  };

  const events = (r: EventsReport): void => {
    if (typeof r?.serverId !== 'string') return;
    const count = (n: unknown): number => (typeof n === 'number' && Number.isInteger(n) && n > 0 ? Math.min(n, 1_000_000) : 0);
    for (const m of Array.isArray(r.messages) ? r.messages : []) {
      if (typeof m?.method === 'string') metrics.recordStdioMessage(r.serverId, m.direction === 'inbound' ? 'agent_to_server' : 'server_to_agent', m.method, count(m.count));
    }
    for (const f of Array.isArray(r.framing) ? r.framing : []) {
      if (typeof f?.errorType === 'string') metrics.recordStdioFraming(r.serverId, f.errorType, count(f.count));
    }
  };

  // An agent's HTTP server: the sidecar's pipeline in front of it, with that server as the source.
  const perServer = new WeakMap<Snapshot, Map<string, Snapshot>>();
  const snapshotOf = (id: string): Snapshot => {
    const snap = snapshot;
    let m = perServer.get(snap);
    if (m === undefined) perServer.set(snap, (m = new Map()));
    let out = m.get(id);
    if (out === undefined) {
      out = { ...snap, config: { ...snap.config, sources: [snap.sources.get(id)!.config] } };
      m.set(id, out);
    }
    return out;
  };
  const tokenMatches = secretMatcher(o.token);
  const httpServer = async (id: string, url: string): Promise<Pipeline> => {
    const known = httpServers.get(id);
    if (known !== undefined && known.url === url) return known.pipeline;
    const opts = { url, requestTimeoutMs: s.requestTimeoutMs, streamReadTimeoutMs: s.streamReadTimeoutMs, connections: 16 };
    const upstream: Upstream = new URL(url).protocol === 'http:' ? new LeanHttpUpstream(opts) : new (await import('../upstream/http.js')).HttpUpstream(opts);
    const gw = approvals.gatewayFor(upstream);
    if (!snapshot.sources.has(id)) snapshot = withServers(snapshot, [id]);
    const pipeline = pipelineFor(() => snapshotOf(id), upstream, gw);
    if (known !== undefined) void known.upstream.close();
    httpServers.set(id, { url, gateway: gw, pipeline, upstream });
    return pipeline;
  };
  const proxyHttp = (ex: Exchange, id: string): void => {
    if (!tokenMatches(ex.headers[HEADER_TOKEN])) {
      return ex.respond(401, JSON_HEADERS, '{"error":"unauthorized","message":"the per-run governance token is missing or wrong"}');
    }
    const url = ex.headers[HEADER_UPSTREAM];
    if (url === undefined || !/^https?:\/\//.test(url)) return ex.respond(400, JSON_HEADERS, `{"error":"invalid_request","message":"missing or invalid ${HEADER_UPSTREAM}"}`);
    // Ours only: the upstream never sees the run's secret or our routing header.
    delete ex.headers[HEADER_TOKEN];
    delete ex.headers[HEADER_UPSTREAM];
    httpServer(id, url).then((p) => p.handle(ex), (err: Error) => ex.respond(502, JSON_HEADERS, JSON.stringify({ error: 'bad_upstream', message: err.message })));
  };

  const handle = (ex: Exchange): void => {
    if (ex.path === '/healthz') return ex.respond(200, JSON_HEADERS, '{"status":"ok"}');
    const http = /^\/http\/([^/?]+)/.exec(ex.path);
    if (http !== null) return proxyHttp(ex, decodeURIComponent(http[1]!));
    if (!ex.path.startsWith(SHIM_API + '/')) return ex.respond(404, JSON_HEADERS, '{"error":"not_found"}');
    if (!authorized(ex)) return ex.respond(401, JSON_HEADERS, '{"error":"unauthorized","message":"the per-run governance token is missing or wrong"}');
    const route = ex.path.slice(SHIM_API.length + 1);
    let body: unknown;
    if (ex.method === 'POST') {
      try {
        body = JSON.parse((ex.body ?? Buffer.alloc(0)).toString('utf8'));
      } catch {
        return ex.respond(400, JSON_HEADERS, '{"error":"invalid_json"}');
      }
    }
    if (ex.method === 'POST' && route === 'judge') {
      const req = body as JudgeRequest;
      if (typeof req?.serverId !== 'string' || typeof req.message?.method !== 'string') return ex.respond(400, JSON_HEADERS, '{"error":"invalid_request"}');
      judgeOne(req).then((a) => ex.respond(200, JSON_HEADERS, JSON.stringify(a)), (err: unknown) => {
        const e = err instanceof GovError ? err : new GovError('service_unavailable', { details: (err as Error).message });
        ex.respond(200, JSON_HEADERS, JSON.stringify({ action: 'respond', response: JSON.parse(errorResponse(req.message.id, e, randomUUID())) }));
      });
      return;
    }
    if (ex.method === 'GET' && route.startsWith('wait/')) {
      const q = route.indexOf('?');
      const id = decodeURIComponent(route.slice(5, q === -1 ? undefined : q));
      const t = q === -1 ? NaN : Number(new URLSearchParams(route.slice(q + 1)).get('timeoutMs'));
      return wait(ex, id, Number.isFinite(t) && t > 0 ? Math.min(t, MAX_WAIT_MS) : MAX_WAIT_MS);
    }
    if (ex.method === 'POST' && route === 'filter') {
      const req = body as FilterRequest;
      if (typeof req?.serverId !== 'string' || req.message === null || typeof req.message !== 'object') return ex.respond(400, JSON_HEADERS, '{"error":"invalid_request"}');
      const changed = s.mode !== 'bypass' && filterListResponse(req.message, snapshot, req.serverId);
      return ex.respond(200, JSON_HEADERS, changed ? JSON.stringify({ message: req.message }) : '{}');
    }
    if (ex.method === 'POST' && route === 'events') {
      events(body as EventsReport);
      return ex.respond(204, null, '');
    }
    ex.respond(404, JSON_HEADERS, '{"error":"not_found"}');
  };

  // A shim sends whole stdio lines (a big tools/list answer to filter): its limit is the line limit.
  const traffic = await startTrafficServer({ host: '127.0.0.1', port: o.port, maxBodyBytes: Math.max(s.limits.maxBodyBytes, s.limits.maxLineBytes + 64 * 1024), uwsBuild: s.uwsBuild, handler: handle });
  const reload = async (why: string): Promise<void> => {
    try {
      const next = withServers(await loadFullSnapshot(configPath, cedar, ctx), o.serverIds);
      const old = snapshot;
      snapshot = next;
      await old.cedar?.close();
      logger.info({ why, snapshot: next.version }, 'governance: new snapshot in effect');
    } catch (e) {
      logger.error({ why, err: (e as Error).message }, 'governance: reload failed; the previous snapshot keeps serving');
    }
  };
  const watcher = watchFiles([configPath, ...(snapshot.config.cedar?.policies ?? [])], (why) => void reload(why));
  const url = `http://127.0.0.1:${traffic.port}`;
  return {
    url,
    port: traffic.port,
    adminPort: admin.port,
    consoleUrl: approvals.consoleUrl,
    close: async () => {
      watcher.close();
      traffic.stopListening();
      for (const h of httpServers.values()) await h.upstream.close().catch(() => {});
      await approvals.close();
      await snapshot.cedar?.close();
      await audit.flush();
      await audit.close();
      await admin.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
