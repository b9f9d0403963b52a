import { test } from 'node:test';
import assert from 'node:assert/strict';
import client from 'prom-client';
import { createMetrics, metrics, SERVER_LABEL_LIMIT, TOOL_LABEL_LIMIT } from './metrics.js';
import { HistogramFamily, LabelGuard, ScalarFamily } from './families.js';

/** The lines of one metric family in a text exposition (HELP, TYPE and samples). */
function family(text: string, name: string): string[] {
  return text.split('\n').filter((l) => {
    if (l.startsWith('# ')) return l.split(' ')[2] === name;
    const base = l.split(/[{ ]/)[0]!;
    return base === name || base === `${name}_bucket` || base === `${name}_sum` || base === `${name}_count`;
  });
}

const sample = (text: string, line: string): number | undefined => {
  const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
};

test('the original metric names are registered with their types', async () => {
  const text = await createMetrics().render();
  const expected: Record<string, string> = {
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
    thoughtgate_framing_errors_total: 'counter',
    thoughtgate_config_reloads_total: 'counter',
    thoughtgate_audit_dropped_total: 'counter',
    thoughtgate_request_duration_ms: 'histogram',
    thoughtgate_cedar_evaluation_duration_ms: 'histogram',
    thoughtgate_upstream_duration_ms: 'histogram',
    thoughtgate_approval_wait_duration_s: 'histogram',
    thoughtgate_request_payload_size_bytes: 'histogram',
    thoughtgate_blocking_hold_duration_seconds: 'histogram',
    thoughtgate_stdio_approval_latency_seconds: 'histogram',
    thoughtgate_stdio_approval_duration_seconds: 'histogram',
    thoughtgate_connections_active: 'gauge',
    thoughtgate_active_requests: 'gauge',
    thoughtgate_tasks_pending: 'gauge',
    thoughtgate_cedar_policies_loaded: 'gauge',
    thoughtgate_uptime_seconds: 'gauge',
    thoughtgate_config_reload_timestamp: 'gauge',
    thoughtgate_upstream_health: 'gauge',
    thoughtgate_startup_duration_seconds: 'gauge',
    thoughtgate_shutdown_duration_seconds: 'gauge',
    thoughtgate_lifecycle_state: 'gauge',
    thoughtgate_stdio_active_servers: 'gauge',
    thoughtgate_stdio_server_state: 'gauge',
    thoughtgate_capacity_refusals_total: 'counter',
    thoughtgate_stdio_reaped_total: 'counter',
    thoughtgate_stdio_memory_bytes: 'gauge',
  };
  for (const [name, type] of Object.entries(expected)) {
    assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), name);
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
  }
  // single `_total`, never the original's accidental doubled suffix
  assert.doesNotMatch(text, /_total_total/);
  // nothing registered in prom-client's global registry
  assert.equal((await client.register.metrics()).includes('thoughtgate_'), false);
});

test('buckets are the original ones', async () => {
  const m = createMetrics();
  m.recordRequest('tools/call', 'a', 'success', 1);
  m.recordUpstream(200, 1);
  m.recordCedar('allow', 'p', 0.01);
  m.observeApprovalWait('slack', 'approved', 1);
  m.recordPayload('inbound', 'tools/call', 100);
  const text = await m.render();
  const les = (name: string) =>
    family(text, name)
      .filter((l) => l.startsWith(`${name}_bucket`))
      .map((l) => /le="([^"]+)"/.exec(l)![1]);
  assert.deepEqual(les('thoughtgate_request_duration_ms'), ['1', '2', '5', '10', '25', '50', '100', '250', '500', '1000', '5000', '+Inf']);
  assert.deepEqual(les('thoughtgate_upstream_duration_ms'), ['1', '5', '10', '25', '50', '100', '250', '500', '1000', '5000', '10000', '+Inf']);
  assert.deepEqual(les('thoughtgate_cedar_evaluation_duration_ms'), ['0.01', '0.05', '0.1', '0.25', '0.5', '1', '5', '10', '+Inf']);
  assert.deepEqual(les('thoughtgate_approval_wait_duration_s'), ['1', '5', '10', '30', '60', '300', '900', '1800', '3600', '+Inf']);
  assert.deepEqual(les('thoughtgate_request_payload_size_bytes'), ['128', '512', '1024', '4096', '16384', '65536', '262144', '1048576', '+Inf']);
});

test('fast families render exactly what prom-client renders for the same observations', async () => {
  const ours = createMetrics();
  const reg = new client.Registry();
  const c = new client.Counter({ name: 'thoughtgate_requests_total', help: 'MCP requests handled', labelNames: ['method', 'tool_name', 'status'], registers: [reg] });
  const h = new client.Histogram({
    name: 'thoughtgate_request_duration_ms',
    help: 'Request duration (ms)',
    labelNames: ['method', 'tool_name'],
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
    registers: [reg],
  });
  const obs: Array<[string, string, 'success' | 'error', number]> = [
    ['tools/call', 'echo', 'success', 0.5],
    ['tools/call', 'echo', 'error', 2],
    ['tools/call', 'echo', 'success', 2.0001],
    ['tools/call', 'add', 'success', 5000],
    ['tools/call', 'add', 'success', 7000],
    ['tools/list', 'none', 'success', 12.25],
  ];
  for (const [m, t, s, d] of obs) {
    ours.recordRequest(m, t === 'none' ? undefined : t, s, d);
    c.inc({ method: m, tool_name: t, status: s });
    h.observe({ method: m, tool_name: t }, d);
  }
  const a = await ours.render();
  const b = await reg.metrics();
  for (const name of ['thoughtgate_requests_total', 'thoughtgate_request_duration_ms']) {
    assert.deepEqual(family(a, name), family(b, name), name);
  }
});

test('histogram: a value equal to a bound lands in that bucket; NaN is ignored', async () => {
  const m = createMetrics();
  m.recordUpstream(200, 5);
  m.recordUpstream(200, 20000);
  m.recordUpstream(200, Number.NaN);
  const t = await m.render();
  assert.equal(sample(t, 'thoughtgate_upstream_duration_ms_bucket{le="1",target="upstream"}'), 0);
  assert.equal(sample(t, 'thoughtgate_upstream_duration_ms_bucket{le="5",target="upstream"}'), 1);
  assert.equal(sample(t, 'thoughtgate_upstream_duration_ms_bucket{le="10000",target="upstream"}'), 1);
  assert.equal(sample(t, 'thoughtgate_upstream_duration_ms_bucket{le="+Inf",target="upstream"}'), 2);
  assert.equal(sample(t, 'thoughtgate_upstream_duration_ms_sum{target="upstream"}'), 20005);
  assert.equal(sample(t, 'thoughtgate_upstream_duration_ms_count{target="upstream"}'), 2);
  assert.equal(sample(t, 'thoughtgate_upstream_requests_total{target="upstream",status_code="200"}'), 3);
});

test('tool_name is capped at 200 distinct values, then __other__; absent tool is none', async () => {
  const m = createMetrics();
  for (let i = 0; i < TOOL_LABEL_LIMIT + 50; i++) m.recordRequest('tools/call', `t${i}`, 'success', 1);
  m.recordRequest('tools/call', 't0', 'success', 1); // an admitted value stays itself
  m.recordRequest('tools/list', undefined, 'success', 1);
  m.recordRequest('tools/call', 'x'.repeat(1000), 'success', 1); // over-long → __other__
  const text = await m.render();
  const tools = new Set(
    family(text, 'thoughtgate_requests_total')
      .filter((l) => !l.startsWith('#'))
      .map((l) => /tool_name="([^"]*)"/.exec(l)![1]),
  );
  assert.equal(tools.size, TOOL_LABEL_LIMIT + 2); // 200 + __other__ + none
  assert.ok(tools.has('__other__') && tools.has('none') && tools.has('t0') && !tools.has(`t${TOOL_LABEL_LIMIT}`));
  assert.equal(sample(text, 'thoughtgate_requests_total{method="tools/call",tool_name="__other__",status="success"}'), 51);
  assert.equal(sample(text, 'thoughtgate_requests_total{method="tools/call",tool_name="t0",status="success"}'), 2);
});

test('server_id is capped at 50 distinct values', async () => {
  const m = createMetrics();
  for (let i = 0; i < SERVER_LABEL_LIMIT + 5; i++) m.recordStdioMessage(`s${i}`, 'agent_to_server', 'tools/call');
  const text = await m.render();
  assert.equal(sample(text, 'thoughtgate_stdio_messages_total{server_id="__other__",direction="agent_to_server",method="tools/call"}'), 5);
});

test('method label values from clients are capped too', async () => {
  const m = createMetrics();
  for (let i = 0; i < 500; i++) m.recordError('invalid_request', `junk/${i}`);
  const lines = family(await m.render(), 'thoughtgate_errors_total').filter((l) => !l.startsWith('#'));
  assert.ok(lines.length <= 65, `${lines.length} series`);
});

test('lifecycle_state and upstream_health are one-hot', async () => {
  const m = createMetrics();
  let t = await m.render();
  assert.equal(sample(t, 'thoughtgate_lifecycle_state{state="starting"}'), 1);
  assert.equal(sample(t, 'thoughtgate_lifecycle_state{state="ready"}'), 0);
  m.setLifecycle('ready');
  m.setUpstreamHealth(false);
  t = await m.render();
  assert.deepEqual(
    ['starting', 'ready', 'shutting_down', 'stopped'].map((s) => sample(t, `thoughtgate_lifecycle_state{state="${s}"}`)),
    [0, 1, 0, 0],
  );
  assert.equal(sample(t, 'thoughtgate_upstream_health{status="healthy"}'), 0);
  assert.equal(sample(t, 'thoughtgate_upstream_health{status="unhealthy"}'), 1);
});

test('uptime is computed at scrape time', async () => {
  const m = createMetrics();
  const a = sample(await m.render(), 'thoughtgate_uptime_seconds')!;
  await new Promise((r) => setTimeout(r, 30));
  const b = sample(await m.render(), 'thoughtgate_uptime_seconds')!;
  assert.ok(b > a && Math.abs(b - process.uptime()) < 5, `${a} → ${b}`);
});

test('gauges, config loads, tasks, approvals, stdio state', async () => {
  const m = createMetrics();
  m.connectionOpened();
  m.connectionOpened();
  m.connectionClosed();
  m.connectionOpened('stdio');
  m.requestStarted();
  const before = Date.now() / 1000;
  m.recordConfigLoad('success', false);
  m.recordConfigLoad('failure', true);
  m.recordTaskCreated();
  m.recordTaskCompleted('expired');
  m.setTasksPending(3);
  m.recordApprovalRequest('slack', 'pending');
  m.recordBlockingApproval('timeout', 300);
  m.recordAuditDropped(4);
  m.recordFraming('stdio', 'invalid_utf8');
  m.setStdioServerState('fs', 'running');
  m.setStdioServerState('git', 'running');
  m.setStdioServerState('git', 'exited');
  m.setCedarPoliciesLoaded(4);
  m.recordDecision('gate2', 'deny');
  const t = await m.render();
  assert.equal(sample(t, 'thoughtgate_connections_active{transport="http"}'), 1);
  assert.equal(sample(t, 'thoughtgate_connections_active{transport="stdio"}'), 1);
  assert.equal(sample(t, 'thoughtgate_active_requests'), 1);
  assert.equal(sample(t, 'thoughtgate_config_load_total{status="success"}'), 1);
  assert.equal(sample(t, 'thoughtgate_config_reloads_total{outcome="failure"}'), 1);
  assert.equal(sample(t, 'thoughtgate_config_reloads_total{outcome="success"}'), undefined);
  assert.ok(sample(t, 'thoughtgate_config_reload_timestamp')! >= Math.floor(before));
  assert.equal(sample(t, 'thoughtgate_tasks_created_total{task_type="approval"}'), 1);
  assert.equal(sample(t, 'thoughtgate_tasks_completed_total{task_type="approval",outcome="expired"}'), 1);
  assert.equal(sample(t, 'thoughtgate_tasks_pending{task_type="approval"}'), 3);
  assert.equal(sample(t, 'thoughtgate_blocking_hold_duration_seconds_count{outcome="timeout"}'), 1);
  assert.equal(sample(t, 'thoughtgate_audit_dropped_total'), 4);
  assert.equal(sample(t, 'thoughtgate_framing_errors_total{transport="stdio",error_type="invalid_utf8"}'), 1);
  assert.equal(sample(t, 'thoughtgate_stdio_active_servers'), 1);
  assert.equal(sample(t, 'thoughtgate_stdio_server_state{server_id="git",state="exited"}'), 1);
  assert.equal(sample(t, 'thoughtgate_stdio_server_state{server_id="git",state="running"}'), 0);
  assert.equal(sample(t, 'thoughtgate_cedar_policies_loaded'), 4);
  assert.equal(sample(t, 'thoughtgate_decisions_total{gate="gate2",outcome="deny"}'), 1);
  // unlabelled metrics render from the start, labelled ones only once recorded
  assert.equal(sample(t, 'thoughtgate_drain_timeout_total'), 0);
});

test('label values are escaped by the exposition', async () => {
  const m = createMetrics();
  m.recordRequest('tools/call', 'a"b\\c\nd', 'success', 1);
  const t = await m.render();
  assert.ok(t.includes('tool_name="a\\"b\\\\c\\nd"'), t);
});

test('families: arity mismatch is caught on first use; reset clears cells', async () => {
  const f = new ScalarFamily('counter', 'x_total', 'x', ['a', 'b']);
  assert.throws(() => f.c1('only-one'), /expected 2 labels/);
  f.c2('p', 'q').value += 2;
  assert.equal((await f.get()).values.length, 1);
  f.reset();
  assert.equal((await f.get()).values.length, 0);
  const h = new HistogramFamily('h', 'h', [], [1]);
  h.observe(h.c0(), 0.5);
  assert.equal((await h.get()).values.length, 4);
  const solo = new ScalarFamily('gauge', 'g', 'g');
  solo.c0().value = 3;
  solo.reset();
  assert.deepEqual((await solo.get()).values, [{ labels: {}, value: 0 }]);
});

test('LabelGuard admits up to its limit and then overflows', () => {
  const g = new LabelGuard(2, 5);
  assert.equal(g.admit('a'), 'a');
  assert.equal(g.admit('toolong'), '__other__');
  assert.equal(g.admit('b'), 'b');
  assert.equal(g.admit('c'), '__other__');
  assert.equal(g.admit('a'), 'a');
  assert.equal(g.size, 2);
});

test('the shared singleton exposes the Prometheus text content type', () => {
  assert.equal(metrics.contentType, 'text/plain; version=0.0.4; charset=utf-8');
});
