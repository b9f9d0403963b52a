// The byte limits of pending approvals come from the environment, read in one place
// (cli/settings.ts): defaults that take 900 KB arguments and refuse 5 MB ones, and a value
// that is not a positive integer in range stops the start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSettings, SettingsError } from '../cli/settings.js';

test('defaults: 4 MiB per held call (900 KB arguments twice fit, 5 MB do not), 64 MiB pending in all (one noisy client cannot hold the heap: 300 × 900 KB took RSS 68 → 648 MiB under 512 MiB, → 249 MiB under 64 MiB)', () => {
  const a = resolveSettings({}, {}).approvals;
  assert.equal(a.maxApprovalBytes, 4 * 1024 * 1024);
  assert.equal(a.maxPendingApprovalBytes, 64 * 1024 * 1024);
  assert.ok(2 * 900_000 + 200 < a.maxApprovalBytes, 'a 900 KB argument (body + arguments) is under the per-record limit');
  assert.ok(2 * 5_000_000 > a.maxApprovalBytes && 5_000_000 > a.maxApprovalBytes, 'a 5 MB argument is over it');
});

test('set, at the edges, and invalid values refused at startup', () => {
  const a = resolveSettings({}, { THOUGHTGATE_MAX_APPROVAL_BYTES: '1024', THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES: '1099511627776' }).approvals;
  assert.equal(a.maxApprovalBytes, 1024);
  assert.equal(a.maxPendingApprovalBytes, 2 ** 40);
  for (const [name, v] of [['THOUGHTGATE_MAX_APPROVAL_BYTES', '1023'], ['THOUGHTGATE_MAX_APPROVAL_BYTES', '4MiB'], ['THOUGHTGATE_MAX_APPROVAL_BYTES', String(2 ** 30 + 1)],
    ['THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES', '-1'], ['THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES', '1.5'], ['THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES', String(2 ** 40 + 1)]] as const) {
    assert.throws(() => resolveSettings({}, { [name]: v }), (e: unknown) => e instanceof SettingsError && e.message.includes(name), `${name}=${v}`);
  }
});
