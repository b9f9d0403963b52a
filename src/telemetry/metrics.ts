// Every thoughtgate_* metric, with the original's names, labels and buckets
// (reference §8.2/8.3), in one prom-client Registry of our own (never the global one).
// Counter names are registered with a single `_total`: the original's encoder doubles it,
// but its dashboards query the single suffix. Label values that come from traffic
// (method, tool, server id, policy id) pass a cardinality guard first.

import client from 'prom-client';
import { HistogramFamily, LabelGuard, ScalarFamily } from './families.js';

export type RequestStatus = 'success' | 'error' | 'blocking';
export type Gate = 'gate1' | 'gate2' | 'gate3' | 'gate4';
export type LifecycleState = 'starting' | 'ready' | 'shutting_down' | 'stopped';
export type Transport = 'http' | 'stdio';
export type Direction = 'inbound' | 'outbound';
export type StdioDirection = 'agent_to_server' | 'server_to_agent';
export type StdioServerState = 'starting' | 'running' | 'exited' | 'signalled' | 'failed_to_start';

const LIFECYCLE: readonly LifecycleState[] = ['starting', 'ready', 'shutting_down', 'stopped'];
const STDIO_STATES: readonly StdioServerState[] = ['starting', 'running', 'exited', 'signalled', 'failed_to_start'];

const REQUEST_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000];
const UPSTREAM_MS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 10000];
const CEDAR_MS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 10];
const APPROVAL_S = [1, 5, 10, 30, 60, 300, 900, 1800, 3600];
const PAYLOAD_BYTES = [128, 512, 1024, 4096, 16384, 65536, 262144, 1048576];

export const TOOL_LABEL_LIMIT = 200;
export const SERVER_LABEL_LIMIT = 50;
/** Methods come from clients too; MCP defines a few dozen. */
export const METHOD_LABEL_LIMIT = 64;

export function createMetrics() {
  const registry = new client.Registry();
  const tools = new LabelGuard(TOOL_LABEL_LIMIT);
  const methods = new LabelGuard(METHOD_LABEL_LIMIT);
  const servers = new LabelGuard(SERVER_LABEL_LIMIT);
  const policies = new LabelGuard(TOOL_LABEL_LIMIT);

  const add = <T extends ScalarFamily | HistogramFamily>(m: T): T => {
    registry.registerMetric(m as unknown as client.Metric<string>);
    return m;
  };
  const counter = (name: string, help: string, labels: readonly string[] = []) =>
    add(new ScalarFamily('counter', name, help, labels));
  const gauge = (name: string, help: string, labels: readonly string[] = [], collect?: (s: ScalarFamily) => void) =>
    add(new ScalarFamily('gauge', name, help, labels, collect));
  const histogram = (name: string, help: string, labels: readonly string[], buckets: readonly number[]) =>
    add(new HistogramFamily(name, help, labels, buckets));

  const f = {
    requests: counter('thoughtgate_requests_total', 'MCP requests handled', ['method', 'tool_name', 'status']),
    decisions: counter('thoughtgate_decisions_total', 'Gate decisions', ['gate', 'outcome']),
    errors: counter('thoughtgate_errors_total', 'Errors answered, by error type', ['error_type', 'method']),
    cedarEvals: counter('thoughtgate_cedar_evaluations_total', 'Cedar evaluations', ['decision', 'policy_id']),
    approvalRequests: counter('thoughtgate_approval_requests_total', 'Approval requests', ['channel', 'outcome']),
    upstreamRequests: counter('thoughtgate_upstream_requests_total', 'Requests sent upstream', ['target', 'status_code']),
    tasksCreated: counter('thoughtgate_tasks_created_total', 'Tasks created', ['task_type']),
    tasksCompleted: counter('thoughtgate_tasks_completed_total', 'Tasks finished', ['task_type', 'outcome']),
    blockingApprovals: counter('thoughtgate_blocking_approvals_total', 'Blocking-mode approvals', ['outcome']),
    drainTimeouts: counter('thoughtgate_drain_timeout_total', 'Shutdowns whose drain timed out'),
    approvalsCancelledShutdown: counter(
      'thoughtgate_approvals_cancelled_shutdown_total',
      'Pending approvals cancelled by shutdown',
    ),
    cedarReloads: counter('thoughtgate_cedar_reload_total', 'Cedar policy reloads', ['status']),
    configLoads: counter('thoughtgate_config_load_total', 'Config loads', ['status']),
    configReloads: counter('thoughtgate_config_reloads_total', 'Config reloads', ['outcome']),
    ruleMatches: counter('thoughtgate_rule_matches_total', 'Governance rule matches', ['action']),
    framingErrors: counter('thoughtgate_framing_errors_total', 'Messages rejected by framing', ['transport', 'error_type']),
    auditDropped: counter('thoughtgate_audit_dropped_total', 'Audit lines dropped because the writer fell behind'),
    auditWritable: gauge('thoughtgate_audit_writable', '1 while the audit trail can be written, 0 while writes fail (disk full, I/O error)'),
    auditUnrecorded: counter('thoughtgate_audit_unrecorded_total', 'Governed calls decided while the audit trail could not be written', ['outcome']),
    stdioMessages: counter('thoughtgate_stdio_messages_total', 'stdio messages relayed', ['server_id', 'direction', 'method']),
    stdioDecisions: counter(
      'thoughtgate_stdio_governance_decisions_total',
      'stdio governance decisions',
      ['server_id', 'decision', 'profile'],
    ),
    stdioFraming: counter('thoughtgate_stdio_framing_errors_total', 'stdio framing errors', ['server_id', 'error_type']),
    capacityRefusals: counter('thoughtgate_capacity_refusals_total', 'Sessions and streams refused for capacity (-32009), by the share that was full', ['reason']),
    stdioReaped: counter('thoughtgate_stdio_reaped_total', 'stdio servers the proxy ended for idling, by why', ['reason']),
    stdioApprovalOutcomes: counter(
      'thoughtgate_stdio_approval_outcomes_total',
      'stdio approval outcomes',
      ['server_id', 'outcome'],
    ),

    requestMs: histogram('thoughtgate_request_duration_ms', 'Request duration (ms)', ['method', 'tool_name'], REQUEST_MS),
    cedarMs: histogram('thoughtgate_cedar_evaluation_duration_ms', 'Cedar evaluation duration (ms)', ['decision'], CEDAR_MS),
    upstreamMs: histogram('thoughtgate_upstream_duration_ms', 'Upstream request duration (ms)', ['target'], UPSTREAM_MS),
    approvalWait: histogram(
      'thoughtgate_approval_wait_duration_s',
      'Time waiting for an approval decision (s)',
      ['channel', 'outcome'],
      APPROVAL_S,
    ),
    payload: histogram(
      'thoughtgate_request_payload_size_bytes',
      'JSON-RPC payload size',
      ['direction', 'method'],
      PAYLOAD_BYTES,
    ),
    blockingHold: histogram(
      'thoughtgate_blocking_hold_duration_seconds',
      'Time a blocking-mode request was held',
      ['outcome'],
      APPROVAL_S,
    ),
    stdioApprovalLatency: histogram(
      'thoughtgate_stdio_approval_latency_seconds',
      'stdio approval latency',
      ['server_id'],
      APPROVAL_S,
    ),
    stdioApprovalDuration: histogram(
      'thoughtgate_stdio_approval_duration_seconds',
      'stdio approval duration',
      ['server_id', 'outcome'],
      APPROVAL_S,
    ),

    connections: gauge('thoughtgate_connections_active', 'Open client connections', ['transport']),
    activeRequests: gauge('thoughtgate_active_requests', 'Requests in flight'),
    tasksPending: gauge('thoughtgate_tasks_pending', 'Tasks awaiting a decision', ['task_type']),
    policiesLoaded: gauge('thoughtgate_cedar_policies_loaded', 'Cedar policies loaded'),
    uptime: gauge('thoughtgate_uptime_seconds', 'Process uptime', [], (s) => {
      s.c0().value = process.uptime();
    }),
    configReloadTs: gauge('thoughtgate_config_reload_timestamp', 'Unix time of the last successful config load'),
    upstreamHealth: gauge('thoughtgate_upstream_health', 'Upstream health, one-hot', ['status']),
    startupSeconds: gauge('thoughtgate_startup_duration_seconds', 'Startup duration'),
    shutdownSeconds: gauge('thoughtgate_shutdown_duration_seconds', 'Shutdown duration'),
    lifecycle: gauge('thoughtgate_lifecycle_state', 'Lifecycle state, one-hot', ['state']),
    stdioActive: gauge('thoughtgate_stdio_active_servers', 'stdio servers running'),
    stdioMemory: gauge('thoughtgate_stdio_memory_bytes', 'Resident memory of the stdio servers together, as last sampled'),
    stdioState: gauge('thoughtgate_stdio_server_state', 'stdio server state, one-hot', ['server_id', 'state']),
  };

  const oneHot = (family: ScalarFamily, states: readonly string[], on: string, prefix?: string): void => {
    for (const s of states) (prefix === undefined ? family.c1(s) : family.c2(prefix, s)).value = s === on ? 1 : 0;
  };
  oneHot(f.lifecycle, LIFECYCLE, 'starting');
  oneHot(f.upstreamHealth, ['healthy', 'unhealthy'], 'healthy');

  const tool = (t: string | undefined): string => (t === undefined || t === '' ? 'none' : tools.admit(t));

  return {
    registry,
    contentType: client.Registry.PROMETHEUS_CONTENT_TYPE as string,
    families: f,
    render: (): Promise<string> => registry.metrics(),

    /** One finished MCP request; `tool` only for tools/call (else 'none'). */
    recordRequest(method: string, tool_: string | undefined, status: RequestStatus, durationMs: number): void {
      const m = methods.admit(method);
      const t = tool(tool_);
      f.requests.c3(m, t, status).value++;
      f.requestMs.observe(f.requestMs.c2(m, t), durationMs);
    },
    recordDecision(gate: Gate, outcome: string): void {
      f.decisions.c2(gate, outcome).value++;
    },
    recordError(errorType: string, method: string): void {
      f.errors.c2(errorType, methods.admit(method)).value++;
    },
    /** `statusCode` is the upstream's HTTP status (or a short failure tag). */
    recordUpstream(statusCode: number | string, durationMs: number, target = 'upstream'): void {
      f.upstreamRequests.c2(target, statusCode).value++;
      f.upstreamMs.observe(f.upstreamMs.c1(target), durationMs);
    },
    recordPayload(direction: Direction, method: string, bytes: number): void {
      f.payload.observe(f.payload.c2(direction, methods.admit(method)), bytes);
    },
    recordFraming(transport: Transport, errorType: string): void {
      f.framingErrors.c2(transport, errorType).value++;
    },
    connectionOpened(transport: Transport = 'http'): void {
      f.connections.c1(transport).value++;
    },
    connectionClosed(transport: Transport = 'http'): void {
      f.connections.c1(transport).value--;
    },
    requestStarted(): void {
      f.activeRequests.c0().value++;
    },
    requestFinished(): void {
      f.activeRequests.c0().value--;
    },
    setLifecycle(state: LifecycleState): void {
      oneHot(f.lifecycle, LIFECYCLE, state);
    },
    setUpstreamHealth(healthy: boolean): void {
      oneHot(f.upstreamHealth, ['healthy', 'unhealthy'], healthy ? 'healthy' : 'unhealthy');
    },
    setStartupDuration(seconds: number): void {
      f.startupSeconds.c0().value = seconds;
    },
    setShutdownDuration(seconds: number): void {
      f.shutdownSeconds.c0().value = seconds;
    },
    recordDrainTimeout(): void {
      f.drainTimeouts.c0().value++;
    },
    recordApprovalsCancelledShutdown(n: number): void {
      f.approvalsCancelledShutdown.c0().value += n;
    },

    /** The initial load and every reload; a success stamps config_reload_timestamp. */
    recordConfigLoad(outcome: 'success' | 'failure', isReload: boolean): void {
      f.configLoads.c1(outcome).value++;
      if (isReload) f.configReloads.c1(outcome).value++;
      if (outcome === 'success') f.configReloadTs.c0().value = Date.now() / 1000;
    },
    recordRuleMatch(action: string): void {
      f.ruleMatches.c1(action).value++;
    },
    recordCedar(decision: 'allow' | 'deny', policyId: string, durationMs: number): void {
      f.cedarEvals.c2(decision, policies.admit(policyId)).value++;
      f.cedarMs.observe(f.cedarMs.c1(decision), durationMs);
    },
    recordCedarReload(status: 'success' | 'failure'): void {
      f.cedarReloads.c1(status).value++;
    },
    setCedarPoliciesLoaded(n: number): void {
      f.policiesLoaded.c0().value = n;
    },

    recordApprovalRequest(channel: string, outcome: 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled'): void {
      f.approvalRequests.c2(channel, outcome).value++;
    },
    observeApprovalWait(channel: string, outcome: string, seconds: number): void {
      f.approvalWait.observe(f.approvalWait.c2(channel, outcome), seconds);
    },
    recordTaskCreated(taskType = 'approval'): void {
      f.tasksCreated.c1(taskType).value++;
    },
    recordTaskCompleted(outcome: 'completed' | 'failed' | 'expired', taskType = 'approval'): void {
      f.tasksCompleted.c2(taskType, outcome).value++;
    },
    setTasksPending(n: number, taskType = 'approval'): void {
      f.tasksPending.c1(taskType).value = n;
    },
    recordBlockingApproval(outcome: 'approved' | 'rejected' | 'timeout' | 'error', heldSeconds?: number): void {
      f.blockingApprovals.c1(outcome).value++;
      if (heldSeconds !== undefined) f.blockingHold.observe(f.blockingHold.c1(outcome), heldSeconds);
    },
    recordAuditDropped(n = 1): void {
      f.auditDropped.c0().value += n;
    },
    setAuditWritable(ok: boolean): void {
      f.auditWritable.c0().value = ok ? 1 : 0;
    },
    /** a governed call decided while the trail failed: refused (fail_closed) or forwarded anyway (continue) */
    recordAuditUnrecorded(outcome: 'refused' | 'forwarded'): void {
      f.auditUnrecorded.c1(outcome).value++;
    },

    /** reason: a CapacityReason (session/client-quota.ts), a closed set */
    recordCapacityRefusal(reason: string): void {
      f.capacityRefusals.c1(reason).value++;
    },
    recordStdioReaped(reason: 'idle' | 'idle_under_pressure' | 'memory_budget'): void {
      f.stdioReaped.c1(reason).value++;
    },
    setStdioMemory(bytes: number): void {
      f.stdioMemory.c0().value = bytes;
    },

    recordStdioMessage(serverId: string, direction: StdioDirection, method: string, n = 1): void {
      f.stdioMessages.c3(servers.admit(serverId), direction, methods.admit(method)).value += n;
    },
    recordStdioFraming(serverId: string, errorType: string, n = 1): void {
      f.stdioFraming.c2(servers.admit(serverId), errorType).value += n;
    },
    recordStdioDecision(serverId: string, decision: 'forward' | 'deny' | 'pending_approval', profile: string): void {
      f.stdioDecisions.c3(servers.admit(serverId), decision, profile).value++;
    },
    recordStdioApprovalOutcome(serverId: string, outcome: string, seconds?: number): void {
      const s = servers.admit(serverId);
      f.stdioApprovalOutcomes.c2(s, outcome).value++;
      if (seconds !== undefined) f.stdioApprovalDuration.observe(f.stdioApprovalDuration.c2(s, outcome), seconds);
    },
    /** Tracks the server's state one-hot and keeps stdio_active_servers equal to those running. */
    setStdioServerState(serverId: string, state: StdioServerState): void {
      oneHot(f.stdioState, STDIO_STATES, state, servers.admit(serverId));
      let running = 0;
      for (const c of f.stdioState.cells()) if (c.labels.state === 'running') running += c.value;
      f.stdioActive.c0().value = running;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The process-wide registry the admin server exposes. */
export const metrics: Metrics = createMetrics();
