// The admin port end to end: the real metrics registry behind the real admin server,
// scraped over HTTP and checked by Prometheus's own `promtool check metrics`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { startAdminServer } from '../dist/admin/server.js';
import { metrics } from '../dist/telemetry/metrics.js';

const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
// On CI the pretest script installs promtool, so a missing one is a failure there, not a skip.
const skipPromtool = !hasPromtool && process.env.CI !== 'true'
  ? 'promtool not installed: run `bash scripts/install-test-deps.sh` as root (Debian package prometheus)'
  : false;

// Names the original's dashboards query; promtool's linter objects to their abbreviated
// units (`_ms`, `_s`), but renaming them would break drop-in compatibility.
const COMPAT_ABBREVIATED = [
  'thoughtgate_request_duration_ms',
  'thoughtgate_upstream_duration_ms',
  'thoughtgate_cedar_evaluation_duration_ms',
  'thoughtgate_approval_wait_duration_s',
];

// The original's metric table (reference §8.2/8.3), with single `_total` counters.
const ORIGINAL = {
  thoughtgate_requests_total: 'counter',
  thoughtgate_decisions_total: 'counter',
  thoughtgate_errors_total: 'counter',
  thoughtgate_cedar_evaluations_total: 'counter',
  thoughtgate_approval_requests_total: 'counter',
  thoughtgate_upstream_requests_total: 'counter',
  thoughtgate_tasks_created_total: 'counter',
  thoughtgate_tasks_completed_total: 'counter',
  thoughtgate_blocking_approvals_total: 'counter',
  thoughtgate_drain_timeout_total: 'counter',
  thoughtgate_approvals_cancelled_shutdown_total: 'counter',
  thoughtgate_cedar_reload_total: 'counter',
  thoughtgate_config_load_total: 'counter',
  thoughtgate_rule_matches_total: 'counter',
  thoughtgate_stdio_messages_total: 'counter',
  thoughtgate_stdio_governance_decisions_total: 'counter',
  thoughtgate_stdio_framing_errors_total: 'counter',
  thoughtgate_stdio_approval_outcomes_total: 'counter',
  thoughtgate_request_duration_ms: 'histogram',
  thoughtgate_cedar_evaluation_duration_ms: 'histogram',
  thoughtgate_upstream_duration_ms: 'histogram',
  thoughtgate_approval_wait_duration_s: 'histogram',
  thoughtgate_request_payload_size_bytes: 'histogram',
  thoughtgate_blocking_hold_duration_seconds: 'histogram',
  thoughtgate_stdio_approval_latency_seconds: 'histogram',
  thoughtgate_stdio_approval_duration_seconds: 'histogram',
  thoughtgate_connections_active: 'gauge',
  thoughtgate_tasks_pending: 'gauge',
  thoughtgate_cedar_policies_loaded: 'gauge',
  thoughtgate_uptime_seconds: 'gauge',
  thoughtgate_config_reload_timestamp: 'gauge',
  thoughtgate_upstream_health: 'gauge',
  thoughtgate_startup_duration_seconds: 'gauge',
  thoughtgate_shutdown_duration_seconds: 'gauge',
  thoughtgate_active_requests: 'gauge',
  thoughtgate_lifecycle_state: 'gauge',
  thoughtgate_stdio_active_servers: 'gauge',
  thoughtgate_stdio_server_state: 'gauge',
};
// Added by this implementation.
const NEW = {
  thoughtgate_framing_errors_total: 'counter',
  thoughtgate_config_reloads_total: 'counter',
  thoughtgate_audit_dropped_total: 'counter',
  thoughtgate_audit_writable: 'gauge',
  thoughtgate_audit_unrecorded_total: 'counter',
  thoughtgate_capacity_refusals_total: 'counter',
  thoughtgate_stdio_reaped_total: 'counter',
  thoughtgate_stdio_memory_bytes: 'gauge',
};

let server;
let base;
let lifecycle = 'starting';
let readiness = { ready: false, reason: 'lifecycle_state: starting', checks: { config_loaded: true, upstream_reachable: true, approval_store_initialized: true } };

function recordEverything() {
  metrics.setLifecycle('ready');
  metrics.setAuditWritable(true);
  metrics.recordAuditUnrecorded('forwarded');
  metrics.recordCapacityRefusal('stdio_sessions_per_client');
  metrics.recordStdioReaped('memory_budget');
  metrics.setStdioMemory(123456789);
  metrics.recordRequest('tools/call', 'echo', 'success', 3.5);
  metrics.recordRequest('tools/call', 'delete_user', 'error', 0.4);
  metrics.recordRequest('tools/list', undefined, 'success', 12);
  metrics.recordRequest('tools/call', 'slow', 'blocking', 7000);
  metrics.recordDecision('gate1', 'pass');
  metrics.recordDecision('gate2', 'deny');
  metrics.recordDecision('gate3', 'allow');
  metrics.recordDecision('gate4', 'started');
  metrics.recordError('governance_rule_denied', 'tools/call');
  metrics.recordError('parse_error', 'unknown');
  metrics.recordUpstream(200, 4.2);
  metrics.recordUpstream(503, 30001);
  metrics.recordPayload('inbound', 'tools/call', 300);
  metrics.recordPayload('outbound', 'batch', 5_000_000);
  metrics.recordFraming('http', 'invalid_json');
  metrics.recordFraming('stdio', 'line_too_long');
  metrics.connectionOpened('http');
  metrics.requestStarted();
  metrics.recordConfigLoad('success', false);
  metrics.recordConfigLoad('success', true);
  metrics.recordRuleMatch('deny');
  metrics.recordCedar('allow', 'policy0', 0.07);
  metrics.recordCedar('deny', 'policy1', 2);
  metrics.recordCedarReload('success');
  metrics.setCedarPoliciesLoaded(2);
  metrics.recordApprovalRequest('slack', 'pending');
  metrics.recordApprovalRequest('slack', 'approved');
  metrics.observeApprovalWait('slack', 'approved', 42);
  metrics.recordTaskCreated();
  metrics.recordTaskCompleted('completed');
  metrics.setTasksPending(1);
  metrics.recordBlockingApproval('approved', 12);
  metrics.recordDrainTimeout();
  metrics.recordApprovalsCancelledShutdown(2);
  metrics.recordAuditDropped(1);
  metrics.setStartupDuration(0.24);
  metrics.setShutdownDuration(1.5);
  metrics.setUpstreamHealth(true);
  metrics.recordStdioMessage('filesystem', 'agent_to_server', 'tools/call');
  metrics.recordStdioFraming('filesystem', 'invalid_utf8');
  metrics.recordStdioDecision('filesystem', 'deny', 'Production');
  metrics.recordStdioApprovalOutcome('filesystem', 'approved', 30);
  metrics.families.stdioApprovalLatency.observe(metrics.families.stdioApprovalLatency.c1('filesystem'), 29);
  metrics.setStdioServerState('filesystem', 'running');
}

async function scrape() {
  const r = await fetch(`${base}/metrics`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return r.text();
}

function promtool(text) {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}

/** The text without the named families (HELP, TYPE and every sample). */
function without(text, names) {
  return text
    .split('\n')
    .filter((l) => !names.some((n) => (l.startsWith('# ') ? l.split(' ')[2] === n : l.startsWith(`${n}_`) || l.startsWith(`${n}{`) || l.startsWith(`${n} `))))
    .join('\n');
}

before(async () => {
  server = await startAdminServer({
    port: 0,
    host: '127.0.0.1',
    version: '0.1.0-test',
    metrics,
    readiness: () => readiness,
    lifecycle: () => lifecycle,
  });
  base = `http://127.0.0.1:${server.port}`;
  recordEverything();
});

after(async () => {
  await server?.close();
});

test('every metric of the original table (and ours) has HELP and TYPE lines', async () => {
  const text = await scrape();
  for (const [name, type] of Object.entries({ ...ORIGINAL, ...NEW })) {
    assert.match(text, new RegExp(`^# HELP ${name} .+$`, 'm'), `HELP ${name}`);
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `TYPE ${name}`);
    const sampled = new RegExp(`^${name}(_bucket|_sum|_count)?({[^}]*})? `, 'm');
    assert.match(text, sampled, `a sample of ${name}`);
  }
  assert.doesNotMatch(text, /_total_total/);
  assert.match(text, /^thoughtgate_requests_total{method="tools\/call",tool_name="echo",status="success"} 1$/m);
  assert.match(text, /^thoughtgate_lifecycle_state{state="ready"} 1$/m);
});

test('promtool parses the exposition; its only lint findings are the compatibility names', { skip: skipPromtool }, async () => {
  const text = await scrape();
  const { code, out } = await promtool(text);
  assert.notEqual(code, 1, `promtool could not parse /metrics:\n${out}`);
  const problems = out.split('\n').filter(Boolean);
  for (const p of problems) {
    const [name, ...rest] = p.split(' ');
    assert.ok(
      COMPAT_ABBREVIATED.includes(name) && rest.join(' ') === 'metric names should not contain abbreviated units',
      `unexpected promtool finding: ${p}`,
    );
  }
  assert.ok(code === 0 || code === 3, `exit ${code}: ${out}`);
});

test('promtool check metrics exits 0 with no findings on everything else', { skip: skipPromtool }, async () => {
  const { code, out } = await promtool(without(await scrape(), COMPAT_ABBREVIATED));
  assert.equal(out.trim(), '');
  assert.equal(code, 0);
});

test('/ready is 503 while starting, 200 when ready, 503 shutting down', async () => {
  let r = await fetch(`${base}/ready`);
  assert.equal(r.status, 503);
  assert.deepEqual(await r.json(), {
    status: 'not_ready',
    checks: { config_loaded: true, upstream_reachable: true, approval_store_initialized: true },
    reason: 'lifecycle_state: starting',
  });

  readiness = { ready: true, checks: { config_loaded: true, upstream_reachable: true, approval_store_initialized: true } };
  r = await fetch(`${base}/ready`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ready', checks: readiness.checks });

  readiness = { ready: false, checks: { config_loaded: true, upstream_reachable: false, approval_store_initialized: true } };
  r = await fetch(`${base}/ready`);
  assert.equal(r.status, 503);
  assert.equal((await r.json()).reason, 'upstream_reachable');

  readiness = { ready: false, reason: 'shutting_down', checks: readiness.checks };
  r = await fetch(`${base}/ready`);
  assert.equal(r.status, 503);
  assert.equal((await r.json()).reason, 'shutting_down');
});

test('/health is 200 until stopped, then 503 service_stopped', async () => {
  lifecycle = 'ready';
  let r = await fetch(`${base}/health`);
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.status, 'healthy');
  assert.equal(body.version, '0.1.0-test');
  assert.ok(Number.isInteger(body.uptime_seconds) && body.uptime_seconds >= 0);

  lifecycle = 'stopped';
  r = await fetch(`${base}/health`);
  assert.equal(r.status, 503);
  assert.deepEqual(await r.json(), { status: 'unhealthy', reason: 'service_stopped' });
  lifecycle = 'ready';
});
