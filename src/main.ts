// The sidecar's composition root: load the config into a snapshot, start the upstream, the
// traffic port (uWS) and the admin port, wire telemetry, and drain cleanly on SIGTERM.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensurePrivateDir, ensurePrivateFile } from './core/durable-fs.js';
import { startAdminServer, type AdminRoute, type ReadyState } from './admin/server.js';
import { approvalRoutes } from './admin/approvals-api.js';
import type { ApprovalSettings, Settings } from './cli/settings.js';
import { codeOf } from './core/errors.js';
import { judge } from './gates/judge.js';
import { Pipeline } from './pipeline.js';
import { Telemetry } from './telemetry/pipeline-telemetry.js';
import { loadFullSnapshot } from './load-snapshot.js';
import { resolveIdentity } from './gates/cedar/principal.js';
import { watchFiles } from './policy/watch.js';
import type { Snapshot, SourceConfig } from './policy/types.js';
import { originPolicy } from './session/origin.js';
import { SessionTable } from './session/sessions.js';
import { StreamQuota } from './session/client-quota.js';
import { createAuditWriter, reopenOnSignal } from './telemetry/audit.js';
import { logger } from './telemetry/log.js';
import { metrics } from './telemetry/metrics.js';
import { startTrafficServer, type TrafficServer } from './transport/http-server.js';
import { uwsBuild } from './transport/uws.js';
import { LeanHttpUpstream } from './upstream/h1/client.js';
import { createApprovals, type Approvals } from './approvals/setup.js';
import { StdioUpstream } from './upstream/stdio.js';
import { HttpEraUpstream } from './upstream/http-era.js';
import { buildChildEnv, ourSecrets } from './upstream/child-env.js';
import type { Upstream, UpstreamHealth } from './upstream/types.js';

export const VERSION = '0.1.0';

export interface Sidecar {
  port: number;
  adminPort: number;
  snapshot(): Snapshot;
  reload(why: string): Promise<void>;
  shutdown(reason: string): Promise<void>;
}


/** Which connection field of the source differs (the upstream is built once, at start). */
function upstreamChange(a: SourceConfig, b: SourceConfig): string | undefined {
  if (a.url !== b.url) return 'url';
  if (a.command !== b.command) return 'command';
  if (JSON.stringify(a.args) !== JSON.stringify(b.args)) return 'args';
  if (JSON.stringify(a.env) !== JSON.stringify(b.env)) return 'env';
  if (JSON.stringify(a.env_passthrough) !== JSON.stringify(b.env_passthrough)) return 'env_passthrough';
  return undefined;
}

async function makeUpstream(source: SourceConfig, s: Settings, config: Snapshot['config']): Promise<Upstream> {
  if (source.url !== undefined) {
    const opts = { url: source.url, requestTimeoutMs: s.requestTimeoutMs, streamReadTimeoutMs: s.streamReadTimeoutMs, connections: s.upstreamConnections, streamConnections: s.upstreamStreamConnections };
    // Plain HTTP upstreams (the sidecar case) use our lean HTTP/1.1 client: half undici's CPU
    // per request (bench/upstream-client.mjs). https: goes to undici, loaded only then.
    let inner: Upstream;
    if (new URL(source.url).protocol === 'http:' && s.upstreamClient === 'lean') inner = new LeanHttpUpstream(opts);
    else {
      const { HttpUpstream } = await import('./upstream/http.js');
      inner = new HttpUpstream(opts);
    }
    // Stateless 2026-07-28 requests reach a source that speaks only 2025 translated, in a session of ours.
    const eraLog = logger.child({ source: source.id });
    return new HttpEraUpstream(inner, { log: (level, msg, fields) => eraLog[level](fields ?? {}, msg), maxBytes: s.maxEventBytes });
  }
  const stdioLog = logger.child({ source: source.id });
  // Built once, before anything is spawned: a config that would hand the server one of our
  // secrets fails the start here instead of leaking later.
  const env = buildChildEnv({ sourceId: source.id, env: source.env, passthrough: source.env_passthrough, secrets: ourSecrets(process.env, config) }, process.env);
  return new StdioUpstream({
    command: source.command!,
    args: source.args,
    env,
    maxSessions: s.limits.maxStdioSessions,
    maxSessionsPerClient: s.limits.maxStdioSessionsPerClient,
    memoryBudgetBytes: s.stdioMemoryBudgetBytes,
    poolSize: s.stdioPoolSize,
    idleMs: s.stdioIdleMs,
    idleUnderPressureMs: s.stdioIdleUnderPressureMs,
    sweepMs: s.stdioSweepMs,
    requestTimeoutMs: s.requestTimeoutMs,
    maxLineBytes: s.limits.maxLineBytes,
    maxDepth: s.limits.maxDepth,
    log: (level, msg, fields) => stdioLog[level](fields ?? {}, msg),
    onFramingError: (t) => metrics.recordStdioFraming(source.id, t),
    onRefused: (reason) => metrics.recordCapacityRefusal(reason),
    onReaped: (reason) => metrics.recordStdioReaped(reason),
    onMemory: (bytes) => metrics.setStdioMemory(bytes),
  });
}

/**
 * The state directory holds the generated admin token (approvals/setup.ts writes
 * <dir>/admin-token) and the approvals journal: this user's alone, 0700, the token 0600. An
 * existing directory or token file left open (an older version, a umask, an operator's mkdir)
 * is tightened, since `mkdir -p` never changes one; one we cannot tighten stops the start.
 */
function privateStateDir(a: ApprovalSettings): void {
  const dir = resolve(a.stateDir);
  // nothing of ours goes there unless a token is generated or the directory is already in use
  if (a.adminToken !== undefined && !existsSync(dir)) return;
  const wasDir = ensurePrivateDir(dir);
  if (wasDir !== undefined) logger.warn({ dir, mode: wasDir.toString(8) }, 'state directory was open to other users; made it 0700');
  const token = join(dir, 'admin-token');
  const wasFile = ensurePrivateFile(token);
  if (wasFile !== undefined) logger.warn({ file: token, mode: wasFile.toString(8) }, 'admin token file was open to other users; made it 0600');
}

export async function startSidecar(s: Settings): Promise<Sidecar> {
  const startedAt = performance.now();
  privateStateDir(s.approvals);
  metrics.setLifecycle('starting');
  let ready: ReadyState = { ready: false, reason: 'lifecycle_state: starting', checks: { config_loaded: false, upstream_reachable: true, approval_store_initialized: true } };
  let stopped = false;
  // Gate 4 mounts the approvals console and API here once its store is open.
  const adminRoutes: AdminRoute[] = [];
  // Set once the upstream and the audit trail exist: their live state joins the readiness below.
  let upstreamHealth: (() => UpstreamHealth) | undefined;
  let upstreamId = 'upstream';
  let auditFailure: string | undefined;
  let auditFailClosed = false;
  const readiness = (): ReadyState => {
    if (!ready.ready || upstreamHealth === undefined) return ready;
    const h = upstreamHealth();
    const checks = { ...ready.checks, upstream_reachable: h.reachable, audit_writable: auditFailure === undefined };
    const upstreams = { [upstreamId]: { reachable: h.reachable, ...(h.reason === undefined ? {} : { reason: h.reason }), ...(h.since === undefined ? {} : { since: new Date(h.since).toISOString() }) } };
    // Either way no new governed call can be served: say which.
    if (!h.reachable) return { ready: false, reason: `upstream_reachable: ${upstreamId} (${h.reason ?? 'unreachable'})`, checks, upstreams };
    if (auditFailure !== undefined && auditFailClosed) return { ready: false, reason: `audit_writable: ${auditFailure}`, checks, upstreams };
    return { ready: true, checks, upstreams };
  };
  const admin = await startAdminServer({ port: s.adminPort, host: s.adminBind, metrics, readiness, version: VERSION, lifecycle: () => (stopped ? 'stopped' : 'ready'), routes: adminRoutes });

  const configPath = resolve(s.configPath);
  const cedarSettings = { workers: s.cedarWorkers, queue: s.cedarQueue, spinMicros: s.cedarSpinMicros };
  const identity = resolveIdentity(process.env);
  logger.info({ principal: identity.principal.id, namespace: identity.principal.namespace, from: identity.source }, 'caller identity');
  let snapshot: Snapshot;
  try {
    snapshot = await loadFullSnapshot(configPath, cedarSettings);
    for (const w of snapshot.config.warnings) logger.warn(w);
    if (snapshot.cedar !== undefined) metrics.setCedarPoliciesLoaded(snapshot.cedar.policyCount);
    metrics.recordConfigLoad('success', false);
  } catch (e) {
    metrics.recordConfigLoad('failure', false);
    await admin.close();
    throw e;
  }
  const source = snapshot.config.sources[0]!;
  let upstream: Upstream;
  try {
    upstream = await makeUpstream(source, s, snapshot.config);
  } catch (e) {
    await snapshot.cedar?.close();
    await admin.close();
    throw e;
  }
  // THOUGHTGATE_AUDIT_* win over the config's audit: section; fail_closed is production's default.
  const durability = s.auditDurability ?? snapshot.config.audit?.durability ?? 'buffered';
  const onFailure = s.auditOnFailure ?? snapshot.config.audit?.on_failure ?? (s.profile === 'production' ? 'fail_closed' : 'continue');
  auditFailClosed = onFailure === 'fail_closed';
  let audit: ReturnType<typeof createAuditWriter>;
  try {
    audit = createAuditWriter({
      path: s.auditPath, durability,
      onError: (err) => logger.error({ err: err.message, on_failure: onFailure }, 'audit trail write failed'),
      onHealth: (err) => {
        auditFailure = err === undefined ? undefined : `audit trail cannot be written (${err.message})`;
        if (err === undefined) logger.warn({ path: s.auditPath }, 'audit trail writable again');
      },
    });
    await audit.opened;
  } catch (e) {
    await upstream.close();
    await admin.close();
    throw new Error(`cannot open audit trail ${s.auditPath}: ${(e as Error).message}`);
  }

  const stopReopen = reopenOnSignal(audit, 'SIGUSR2'); // logrotate: move the file, then SIGUSR2

  let approvals: Approvals;
  try {
    approvals = await createApprovals({
      settings: s.approvals, config: snapshot.config, snapshot: () => snapshot, upstream, principal: identity.principal,
      audit, mode: s.mode, adminPort: admin.port, maxResultBytes: s.maxEventBytes,
    });
  } catch (e) {
    await audit.close();
    await upstream.close();
    await admin.close();
    throw new Error(`approval store: ${(e as Error).message}`);
  }
  adminRoutes.push(approvalRoutes({ engine: approvals.engine, token: approvals.adminToken, sessionTtlMs: s.approvals.consoleSessionMs, log: (level, msg, fields) => logger[level](fields ?? {}, msg) }));

  let draining = false;
  const pipeline = new Pipeline({
    approvals: approvals.gateway,
    streams: new StreamQuota(s.limits.maxStreamsPerClient, s.limits.maxStreamsPerSession, (reason) => metrics.recordCapacityRefusal(reason)),
    snapshot: () => snapshot,
    mode: s.mode,
    limits: s.limits,
    upstream,
    sessions: new SessionTable(100_000, Math.max(s.stdioIdleMs, 3_600_000)),
    origin: originPolicy(s.allowedOrigins),
    principal: identity.principal,
    telemetry: new Telemetry(audit, auditFailClosed),
    maxEventBytes: s.maxEventBytes,
    draining: () => draining,
    decisionApi: {
      snapshot: () => snapshot,
      judge: (q, snap) => judge({
        method: q.method, resource: q.resource, kind: q.kind, sourceId: q.sourceId, arguments: q.arguments,
        principal: q.principal === undefined ? identity.principal : { ...identity.principal, id: q.principal },
      }, snap),
      token: s.apiToken,
      openToLoopback: s.apiOpenLoopback,
      maxBatchSize: s.limits.maxBatchSize,
      errorCodeOf: (d) => (d.error === undefined ? undefined : codeOf(d.error)),
    },
  });
  let traffic: TrafficServer;
  try {
    traffic = await startTrafficServer({ host: s.bind, port: s.port, maxBodyBytes: s.limits.maxBodyBytes, maxDrainBytes: s.limits.maxDrainBytes, uwsBuild: s.uwsBuild, handler: (ex) => pipeline.handle(ex) });
  } catch (e) {
    await approvals.close();
    await admin.close();
    await upstream.close();
    throw e;
  }
  const uws = uwsBuild()!;
  logger.info({ uws: uws.name, binary: uws.binary, skipped: uws.skipped }, 'traffic port served by native uWS');
  if (!uws.answers431) {
    logger.warn({ uws: uws.name, why_not_modern: uws.skipped }, 'this uWS build closes a request with more than 48 headers without answering 431; uWS 20.57 (Node 20-25, glibc >= 2.38) answers it');
  }
  // Hot reload (SIGHUP, or a change to the config file): build a complete new snapshot and swap
  // it in one assignment; requests already started keep the one they captured.
  let reloading: Promise<void> | undefined;
  const reload = (why: string): Promise<void> => {
    reloading = (reloading ?? Promise.resolve()).then(async () => {
      const old = snapshot;
      let next: Snapshot | undefined;
      try {
        next = await loadFullSnapshot(configPath, cedarSettings);
        const changed = upstreamChange(old.config.sources[0]!, next.config.sources[0]!);
        if (changed !== undefined) throw new Error(`${configPath}: sources[0].${changed} changed; connecting to another upstream needs a restart`);
        if (next.version === old.version) {
          logger.info({ why, snapshot: old.version }, 'reload: configuration unchanged');
          await next.cedar?.close();
          return;
        }
        snapshot = next; // the swap: one assignment; requests in flight keep the snapshot they started with
        metrics.recordConfigLoad('success', true);
        metrics.setCedarPoliciesLoaded(next.cedar?.policyCount ?? 0);
        for (const w of next.config.warnings) logger.warn(w);
        logger.info({ why, from: old.version, to: next.version }, 'reload: new snapshot in effect');
        // The old engine answers stragglers inline after close, so it can go now.
        await old.cedar?.close();
      } catch (e) {
        if (next !== undefined && next !== snapshot) await next.cedar?.close();
        metrics.recordConfigLoad('failure', true);
        logger.error({ why, snapshot: old.version, error: (e as Error).message }, 'reload failed; the previous snapshot keeps serving');
      }
    });
    return reloading;
  };
  const onSighup = (): void => void reload('SIGHUP');
  process.on('SIGHUP', onSighup);
  // The last line of containment (transport/contain.ts wraps every callback): whatever still
  // escapes is logged with its stack and counted, and the sidecar goes on serving everyone else.
  const escaped = (what: string) => (err: unknown): void => {
    metrics.recordError('internal_error', 'unknown');
    logger.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, `${what}; the sidecar keeps serving`);
  };
  process.on('uncaughtException', escaped('uncaught exception'));
  process.on('unhandledRejection', escaped('unhandled promise rejection'));
  const watcher = watchFiles([configPath, ...(snapshot.config.cedar?.policies ?? []), ...(snapshot.config.cedar?.schema ? [snapshot.config.cedar.schema] : [])], (why) => void reload(why));

  ready = { ready: true, checks: { config_loaded: true, upstream_reachable: true, approval_store_initialized: true } };
  upstreamId = source.id;
  upstreamHealth = upstream.health === undefined ? () => ({ reachable: true }) : () => upstream.health!();
  metrics.setLifecycle('ready');
  metrics.setStartupDuration((performance.now() - startedAt) / 1000);
  logger.info({
    port: traffic.port, admin_port: admin.port, mode: s.mode, source: source.id, upstream: upstream.target, config: configPath,
    snapshot: snapshot.version, audit: s.auditPath, audit_durability: durability, audit_on_failure: onFailure, admin_bind: s.adminBind,
    decision_api: s.apiToken !== undefined ? (s.apiOpenLoopback ? 'token, or none from loopback' : 'token') : s.apiOpenLoopback ? 'loopback callers only' : 'closed (set THOUGHTGATE_API_TOKEN)',
  }, 'thoughtgate ready');

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      const t0 = performance.now();
      logger.info({ reason }, 'shutting down: draining in-flight requests');
      draining = true;
      ready = { ready: false, reason: 'shutting_down', checks: ready.checks };
      metrics.setLifecycle('shutting_down');
      traffic.stopListening();
      const deadline = Date.now() + s.shutdownTimeoutMs;
      // Long-lived GET streams never end by themselves: wait for answers to POSTs only,
      // then closing the upstream ends the streams.
      while (pipeline.postsInFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (pipeline.postsInFlight > 0) {
        metrics.recordDrainTimeout();
        logger.warn({ in_flight: pipeline.postsInFlight }, 'drain timed out; closing remaining exchanges');
      }
      await approvals.close();
      await upstream.close();
      await snapshot.cedar?.close();
      stopReopen();
      watcher.close();
      process.off('SIGHUP', onSighup);
      await audit.flush();
      await audit.close();
      logger.flush();
      stopped = true;
      metrics.setLifecycle('stopped');
      metrics.setShutdownDuration((performance.now() - t0) / 1000);
      await admin.close();
    })();
    return shuttingDown;
  };
  return { port: traffic.port, adminPort: admin.port, snapshot: () => snapshot, reload, shutdown };
}
