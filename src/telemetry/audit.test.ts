import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditPathFromEnv, createAuditWriter, DEFAULT_AUDIT_PATH, formatAuditLine } from './audit.js';
import type { AuditRecord } from './audit.js';

const dir = () => mkdtempSync(join(tmpdir(), 'tg-audit-'));
const lines = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const rec = (i: number, extra: Partial<AuditRecord> = {}): AuditRecord => ({
  correlationId: `c-${i}`,
  session: 's-1',
  principal: 'default/agent',
  method: 'tools/call',
  tool: 'delete_user',
  source: 'upstream',
  gate: 'governance',
  decision: 'deny',
  mode: 'enforce',
  reason: "rule 'delete_*'",
  durationMs: 0.12345,
  snapshot: 'v1',
  time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
  ...extra,
});

test('a line has every field, in order, with null for absent values', () => {
  const line = formatAuditLine(rec(1, { session: undefined, tool: undefined, gate: undefined, reason: undefined }));
  assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'));
  const o = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(o), [
    'time', 'correlation_id', 'session', 'principal', 'method', 'tool', 'source',
    'gate', 'decision', 'mode', 'reason', 'duration_ms', 'snapshot',
  ]);
  assert.equal(o.time, '2026-01-02T03:04:05.006Z');
  assert.equal(o.session, null);
  assert.equal(o.tool, null);
  assert.equal(o.duration_ms, 0.123);
  assert.equal(o.decision, 'deny');
});

test('hostile strings stay one valid JSON line', () => {
  const nasty = 'a"b\\c\nd\u2028e\u0000f😀';
  const o = JSON.parse(formatAuditLine(rec(1, { tool: nasty, reason: '}\n{"forged":true}' }))) as Record<string, unknown>;
  assert.equal(o.tool, nasty);
  assert.equal(o.reason, '}\n{"forged":true}');
  assert.equal(JSON.parse(formatAuditLine(rec(1, { durationMs: Number.NaN }))).duration_ms, null);
});

test('writes, creates missing directories, flushes and closes', async () => {
  const path = join(dir(), 'nested', 'deeper', 'audit.ndjson');
  let dropped = 0;
  const w = createAuditWriter({ path, onDrop: (n) => (dropped += n) });
  for (let i = 0; i < 1000; i++) assert.equal(w.write(rec(i)), true);
  await w.opened;
  await w.flush();
  const got = lines(path);
  assert.equal(got.length, 1000);
  assert.equal(dropped, 0);
  assert.equal(got[999]!.correlation_id, 'c-999');
  await w.close();
  assert.equal(w.write(rec(1000)), false, 'writes after close are refused');
  assert.equal(dropped, 1, 'and counted as dropped');
  await w.close(); // idempotent
});

test('multi-byte names reach the file intact and flush still settles (bytes vs characters)', async () => {
  const path = join(dir(), 'utf8.ndjson');
  const w = createAuditWriter({ path });
  const names = ['é', 'emoji 😀', 'ls\u2028', '日本語ツール'];
  for (let i = 0; i < 2000; i++) assert.equal(w.write(rec(i, { tool: names[i % names.length] })), true);
  await w.opened;
  await w.flush(); // would hang if the byte re-basing were off
  const got = lines(path);
  assert.equal(got.length, 2000);
  for (let i = 0; i < 2000; i++) assert.equal(got[i]!.tool, names[i % names.length]);
  await w.close();
});

test('appends to an existing file', async () => {
  const path = join(dir(), 'a.ndjson');
  writeFileSync(path, '{"old":true}\n');
  const w = createAuditWriter({ path });
  w.write(rec(1));
  await w.close();
  assert.equal(lines(path).length, 2);
});

test('a writer that falls behind drops lines and counts them instead of growing', async () => {
  const path = join(dir(), 'slow.ndjson');
  let droppedSeen = 0;
  const one = formatAuditLine(rec(0)).length;
  // room for ~10 lines: the file is still opening, so nothing drains during this loop
  const w = createAuditWriter({ path, maxBufferBytes: one * 10 + 5, onDrop: (n) => (droppedSeen += n) });
  let accepted = 0;
  for (let i = 0; i < 500; i++) if (w.write(rec(i))) accepted++;
  assert.equal(accepted, 10);
  assert.equal(w.dropped, 490);
  assert.equal(droppedSeen, 490);
  await w.flush();
  assert.equal(lines(path).length, 10);
  // once drained, it accepts again
  assert.equal(w.write(rec(501)), true);
  await w.close();
  assert.equal(lines(path).length, 11);
});

test('reopen() follows a rotated file', async () => {
  const d = dir();
  const path = join(d, 'audit.ndjson');
  const w = createAuditWriter({ path });
  w.write(rec(1));
  await w.flush();
  renameSync(path, join(d, 'audit.ndjson.1'));
  w.reopen();
  w.write(rec(2));
  await w.close();
  assert.deepEqual(lines(join(d, 'audit.ndjson.1')).map((o) => o.correlation_id), ['c-1']);
  assert.deepEqual(lines(path).map((o) => o.correlation_id), ['c-2']);
});

test('an unwritable path fails at creation, not silently later', () => {
  const d = dir();
  writeFileSync(join(d, 'file'), 'x');
  assert.throws(() => createAuditWriter({ path: join(d, 'file', 'audit.ndjson') }), /ENOTDIR|EEXIST/);
  assert.equal(existsSync(join(d, 'file', 'audit.ndjson')), false);
});

test('a write error (disk full) reports once, keeps later lines for the retry, and never hangs shutdown', { skip: !existsSync('/dev/full') && 'no /dev/full' }, async () => {
  const errors: Error[] = [];
  const health: (string | undefined)[] = [];
  let dropped = 0;
  const w = createAuditWriter({ path: '/dev/full', retryMs: 20, onError: (e) => errors.push(e), onDrop: (n) => (dropped += n), onHealth: (e) => health.push(e?.message) });
  await w.opened;
  assert.equal(w.write(rec(1)), true);
  await w.flush(); // resolves on the error instead of waiting for bytes that never drain
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /ENOSPC/);
  assert.match(w.failure!.message, /ENOSPC/);
  // kept for the retry (which keeps failing on /dev/full), not written, not yet dropped
  assert.equal(w.write(rec(2)), true);
  await new Promise((r) => setTimeout(r, 100)); // a few retries: each fails again, reported once
  assert.equal(errors.length, 1);
  assert.equal(health.length, 1);
  assert.equal(w.failure !== undefined, true);
  await w.close();
  assert.equal(dropped, 1); // what never reached the disk is counted at the end
});

test("'-' writes to stdout", () => {
  const mod = join(fileURLToPath(new URL('.', import.meta.url)), 'audit.js');
  const script = `
    const { createAuditWriter } = await import(${JSON.stringify(mod)});
    const w = createAuditWriter({ path: '-' });
    w.write({ correlationId: 'x', method: 'tools/call', decision: 'forward', mode: 'audit', durationMs: 1 });
    await w.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(o.correlation_id, 'x');
  assert.equal(o.mode, 'audit');
});

test('THOUGHTGATE_AUDIT_PATH selects the path', () => {
  assert.equal(auditPathFromEnv({}), DEFAULT_AUDIT_PATH);
  assert.equal(auditPathFromEnv({ THOUGHTGATE_AUDIT_PATH: '' }), DEFAULT_AUDIT_PATH);
  assert.equal(auditPathFromEnv({ THOUGHTGATE_AUDIT_PATH: '-' }), '-');
  assert.equal(auditPathFromEnv({ THOUGHTGATE_AUDIT_PATH: '/var/lib/thoughtgate/audit.ndjson' }), '/var/lib/thoughtgate/audit.ndjson');
});

test('every field survives a JSON round trip, whether it needed escaping or not', () => {
  const tricky = ['plain', 'q"uote', 'back\\slash', 'nl\nx', 'tab\tx', 'ctl\u0001', 'ls\u2028ps\u2029', 'emoji 😀', 'é', '</script>'];
  for (const v of tricky) {
    const line = formatAuditLine({ correlationId: v, method: 'tools/call', tool: v, reason: v, decision: 'deny', mode: 'enforce', durationMs: 0.5 });
    const back = JSON.parse(line);
    assert.equal(back.tool, v);
    assert.equal(back.reason, v);
    assert.equal(back.correlation_id, v);
    assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'), 'one line');
  }
});
