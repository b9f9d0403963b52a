import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSettings, SettingsError } from './settings.js';

test('defaults match the original: ports 7467/7469, enforce, 300 s, batch 100', () => {
  const s = resolveSettings({}, {});
  assert.equal(s.port, 7467);
  assert.equal(s.adminPort, 7469);
  assert.equal(s.mode, 'enforce');
  assert.equal(s.requestTimeoutMs, 300_000);
  assert.equal(s.limits.maxBatchSize, 100);
  assert.equal(s.limits.maxBodyBytes, 1024 * 1024);
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
