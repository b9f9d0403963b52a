import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSettings, SettingsError } from './settings.js';

test('defaults match the original: ports 7467/7469, enforce, 300 s, batch 100; the body limit is the SDK servers\' 4 MiB', () => {
  const s = resolveSettings({}, {});
  assert.equal(s.port, 7467);
  assert.equal(s.adminPort, 7469);
  assert.equal(s.mode, 'enforce');
  assert.equal(s.requestTimeoutMs, 300_000);
  assert.equal(s.limits.maxBatchSize, 100);
  assert.equal(s.limits.maxBodyBytes, 4 * 1024 * 1024, 'what the SDK servers accept');
  assert.equal(s.limits.maxDrainBytes, 16 * 1024 * 1024);
  assert.equal(s.configPath, './thoughtgate.yaml');
});

test('profile and MODE: --profile wins, development = audit', () => {
  assert.equal(resolveSettings({ profile: 'development' }, {}).mode, 'audit');
  assert.equal(resolveSettings({ profile: 'production' }, { MODE: 'audit' }).mode, 'enforce');
  assert.equal(resolveSettings({}, { MODE: 'audit' }).mode, 'audit');
  assert.equal(resolveSettings({}, { THOUGHTGATE_PROFILE: 'development' }).mode, 'audit');
  assert.equal(resolveSettings({}, { MODE: 'bypass', THOUGHTGATE_ENVIRONMENT: 'development' }).mode, 'bypass');
  assert.throws(() => resolveSettings({}, { MODE: 'bypass' }), SettingsError);
  assert.throws(() => resolveSettings({}, { MODE: 'bypass', THOUGHTGATE_ENVIRONMENT: 'production' }), /refused unless/);
});

test('limits are validated at and past their edges', () => {
  assert.equal(resolveSettings({}, { THOUGHTGATE_MAX_BATCH_SIZE: '1' }).limits.maxBatchSize, 1);
  assert.equal(resolveSettings({}, { THOUGHTGATE_MAX_BATCH_SIZE: '10000' }).limits.maxBatchSize, 10000);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_MAX_BATCH_SIZE: '10001' }), /out of range/);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_MAX_BATCH_SIZE: '0' }), /out of range/);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_REQUEST_TIMEOUT_SECS: '1.5' }), /not an integer/);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_OUTBOUND_PORT: '7469' }), /both 7469/);
  assert.deepEqual(resolveSettings({}, { THOUGHTGATE_ALLOWED_ORIGINS: ' https://a.example , ,https://b.example' }).allowedOrigins, ['https://a.example', 'https://b.example']);
});

test('the admin and inbound ports follow --bind / THOUGHTGATE_BIND unless set themselves', () => {
  // `npm start` is `serve --bind 127.0.0.1`: nothing of ours may listen beyond this host
  const local = resolveSettings({ bind: '127.0.0.1' }, {});
  assert.equal(local.bind, '127.0.0.1');
  assert.equal(local.adminBind, '127.0.0.1');
  assert.equal(local.approvals.inboundBind, '127.0.0.1');
  const viaEnv = resolveSettings({}, { THOUGHTGATE_BIND: '::1' });
  assert.equal(viaEnv.adminBind, '::1');
  assert.equal(viaEnv.approvals.inboundBind, '::1');
  assert.equal(resolveSettings({ bind: '127.0.0.1' }, { THOUGHTGATE_BIND: '0.0.0.0' }).bind, '127.0.0.1', '--bind wins');
  // the explicit overrides (Kubernetes: probes come from the node)
  const k8s = resolveSettings({ bind: '127.0.0.1' }, { THOUGHTGATE_ADMIN_BIND: '0.0.0.0', THOUGHTGATE_INBOUND_BIND: '0.0.0.0' });
  assert.equal(k8s.adminBind, '0.0.0.0');
  assert.equal(k8s.approvals.inboundBind, '0.0.0.0');
  // no flag, nothing set: the traffic default, 0.0.0.0, for all three (as the container image expects)
  const d = resolveSettings({}, {});
  assert.deepEqual([d.bind, d.adminBind, d.approvals.inboundBind], ['0.0.0.0', '0.0.0.0', '0.0.0.0']);
});

test('bind addresses must be IP literals: a typo is a startup error naming the variable', () => {
  assert.throws(() => resolveSettings({ bind: 'locahost' }, {}), (e: Error) => e instanceof SettingsError && /--bind='locahost'/.test(e.message));
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_ADMIN_BIND: '127.0.0.256' }), /THOUGHTGATE_ADMIN_BIND/);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_INBOUND_BIND: 'all' }), /THOUGHTGATE_INBOUND_BIND/);
  assert.equal(resolveSettings({}, { THOUGHTGATE_ADMIN_BIND: '  ' }).adminBind, '0.0.0.0', 'blank = unset');
});

test('decision API: closed without a token unless THOUGHTGATE_API_OPEN=loopback; other values refused', () => {
  const closed = resolveSettings({}, {});
  assert.equal(closed.apiToken, undefined);
  assert.equal(closed.apiOpenLoopback, false);
  assert.equal(resolveSettings({}, { THOUGHTGATE_API_OPEN: 'loopback' }).apiOpenLoopback, true);
  assert.equal(resolveSettings({}, { THOUGHTGATE_API_OPEN: 'none' }).apiOpenLoopback, false);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_API_OPEN: 'all' }), (e: Error) => e instanceof SettingsError && /THOUGHTGATE_API_OPEN='all' must be one of loopback, none/.test(e.message));
  assert.equal(resolveSettings({}, { THOUGHTGATE_API_TOKEN: 'tok' }).apiToken, 'tok');
});

test('fair-share limits: defaults, edges, and past them', () => {
  const d = resolveSettings({}, {});
  assert.equal(d.limits.maxStdioSessionsPerClient, 16);
  assert.equal(d.limits.maxStreamsPerClient, 16);
  assert.equal(d.limits.maxStreamsPerSession, 4);
  assert.equal(d.stdioMemoryBudgetBytes, 2048 * 1024 * 1024);
  assert.equal(d.stdioIdleUnderPressureMs, 30_000);
  assert.equal(d.stdioSweepMs, undefined, 'derived from the idle timeouts');
  for (const name of ['THOUGHTGATE_MAX_STDIO_SESSIONS_PER_CLIENT', 'THOUGHTGATE_MAX_STREAMS_PER_CLIENT', 'THOUGHTGATE_MAX_STREAMS_PER_SESSION', 'THOUGHTGATE_STDIO_MEMORY_BUDGET_MB', 'THOUGHTGATE_STDIO_IDLE_UNDER_PRESSURE_SECS']) {
    assert.doesNotThrow(() => resolveSettings({}, { [name]: '1' }), name);
    assert.throws(() => resolveSettings({}, { [name]: '0' }), /out of range/, name);
    assert.throws(() => resolveSettings({}, { [name]: 'many' }), /not an integer/, name);
  }
  assert.equal(resolveSettings({}, { THOUGHTGATE_MAX_STREAMS_PER_SESSION: '1000' }).limits.maxStreamsPerSession, 1000);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_MAX_STREAMS_PER_SESSION: '1001' }), /out of range/);
  assert.equal(resolveSettings({}, { THOUGHTGATE_STDIO_MEMORY_BUDGET_MB: String(1 << 20) }).stdioMemoryBudgetBytes, 2 ** 40);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_STDIO_MEMORY_BUDGET_MB: String((1 << 20) + 1) }), /out of range/);
  assert.equal(resolveSettings({}, { THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS: '10' }).stdioSweepMs, 10);
  assert.equal(resolveSettings({}, { THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS: '0' }).stdioSweepMs, undefined);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS: '9' }), /out of range/);
  assert.throws(() => resolveSettings({}, { THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS: '600001' }), /out of range/);
});

test('body limits: THOUGHTGATE_MAX_REQUEST_BODY_BYTES and _MAX_BODY_DRAIN_BYTES at and past their bounds', () => {
  const limits = (env: Record<string, string>) => resolveSettings({}, env).limits;
  assert.equal(limits({ THOUGHTGATE_MAX_REQUEST_BODY_BYTES: '64' }).maxBodyBytes, 64);
  assert.equal(limits({ THOUGHTGATE_MAX_REQUEST_BODY_BYTES: String(1 << 30) }).maxBodyBytes, 1 << 30);
  assert.throws(() => limits({ THOUGHTGATE_MAX_REQUEST_BODY_BYTES: '63' }), SettingsError);
  assert.throws(() => limits({ THOUGHTGATE_MAX_REQUEST_BODY_BYTES: String((1 << 30) + 1) }), SettingsError);
  assert.equal(limits({ THOUGHTGATE_MAX_BODY_DRAIN_BYTES: '0' }).maxDrainBytes, 0, '0: never drain, answer and close');
  assert.equal(limits({ THOUGHTGATE_MAX_BODY_DRAIN_BYTES: String(1 << 30) }).maxDrainBytes, 1 << 30);
  assert.throws(() => limits({ THOUGHTGATE_MAX_BODY_DRAIN_BYTES: '-1' }), SettingsError);
  assert.throws(() => limits({ THOUGHTGATE_MAX_BODY_DRAIN_BYTES: String((1 << 30) + 1) }), SettingsError);
});
