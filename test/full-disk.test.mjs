// A full disk, for real (issue 14, item 7c): the audit trail and the approvals journal on a tiny
// tmpfs that the test fills. Strict + fail_closed must refuse governed calls with a clear
// -32013 while nothing can be written and turn /ready 503; once space is freed the writer
// recovers by itself (/ready 200, calls audited again), the trail is whole (every line JSON, none
// duplicated, every answered call's line present), and no acknowledged approval is lost across a
// restart. Needs root and tmpfs mounts; skipped with the reason otherwise. Unmounted in a finally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, startRecordingUpstream, sourceYaml, rule, post, rawSession, sleep } from './helpers.mjs';

const TOKEN = 'test-admin-token';

/** Mounts a tmpfs of `size` on a fresh directory, or returns why it cannot. */
function tryMount(size) {
  const dir = mkdtempSync(join(tmpdir(), 'tg-fulldisk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { why: `cannot mount a tmpfs here (${String(e.stderr || e.message).trim().split('\n')[0]})` };
  }
}
function unmount(dir) {
  try { execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); } catch {}
  rmSync(dir, { recursive: true, force: true });
}

/** Fills the filesystem of `path` to the last byte it will take. */
function fill(path) {
  const fd = openSync(path, 'w');
  try {
    for (const size of [65536, 4096, 256, 1]) {
      const b = Buffer.alloc(size, 0x78);
      for (;;) {
        try { if (writeSync(fd, b) < size) break; } catch (e) { if (e.code === 'ENOSPC') break; throw e; }
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function ready(p) {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}/ready`);
  return { status: r.status, body: await r.json() };
}
async function until(what, probe, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
async function approvals(p) {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals?state=all`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200);
  return r.json();
}
const call = (id, name, extra = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { marker: name }, ...extra } });
const trail = (path) => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l, i) => {
  try { return JSON.parse(l); } catch { throw new Error(`audit line ${i + 1} is not JSON: ${l.slice(0, 200)}`); }
});

const probe = tryMount('1m');
if (probe.dir) unmount(probe.dir);

test('a full disk under strict + fail_closed: -32013 and /ready 503 while full; recovery by itself; no acknowledged approval lost', { skip: probe.why }, async () => {
  const m = tryMount('1m');
  assert.ok(m.dir, m.why);
  const up = await startRecordingUpstream();
  let p;
  try {
    const state = join(m.dir, 'state');
    mkdirSync(state, { mode: 0o700 });
    const env = { THOUGHTGATE_AUDIT_DURABILITY: 'strict', THOUGHTGATE_AUDIT_ON_FAILURE: 'fail_closed', THOUGHTGATE_AUDIT_PATH: join(m.dir, 'audit.ndjson'), THOUGHTGATE_STATE_DIR: state };
    const yaml = sourceYaml(`    url: ${up.url}`, { rules: rule('hold_*', 'approve') });
    p = await startProxy(yaml, { env });
    const s = await rawSession(p.url, '2025-11-25');
    const answered = []; // tool names whose call the client saw answered with a result
    const acked = []; // task ids the client was given
    const task = async (id, name) => {
      const r = await post(p.url, call(id, name, { task: { ttl: 600000 } }), s.headers);
      const msg = r.messages.find((x) => x.id === id);
      assert.ok(msg?.result || msg?.error, `one answer for ${name}: ${r.status} ${r.text.slice(0, 200)}`);
      if (msg.result?.task?.taskId) acked.push(msg.result.task.taskId);
      return msg;
    };

    const first = await post(p.url, call(2, 'fill_before'), s.headers);
    assert.ok(first.messages[0]?.result, first.text);
    answered.push('fill_before');
    for (let i = 0; i < 24; i++) assert.ok((await task(3 + i, `hold_before_${i}`)).result?.task?.taskId, 'a task is acknowledged while there is space');

    fill(join(m.dir, 'filler'));
    // The files' last pages may still take a few lines: call until the trail refuses.
    let refused;
    for (let i = 0; i < 300 && !refused; i++) {
      const name = `fill_${i}`;
      const r = await post(p.url, call(100 + i, name), s.headers);
      const msg = r.messages.find((x) => x.id === 100 + i);
      if (msg?.result) answered.push(name);
      else if (msg?.error?.code === -32013) refused = { name, msg };
      else assert.fail(`neither a result nor -32013: ${r.status} ${r.text.slice(0, 300)}`);
    }
    assert.ok(refused, 'a governed call was refused once the disk was full');
    assert.match(JSON.stringify(refused.msg.error.data), /audit trail cannot be written/);
    assert.equal(up.received(`"${refused.name}"`), false, 'a call whose decision could not be recorded reached the upstream');
    const full = await until('/ready 503', async () => { const r = await ready(p); return r.status === 503 && r; });
    assert.equal(full.body.checks.audit_writable, false, JSON.stringify(full.body));
    assert.match(full.body.reason, /audit.*cannot be written.*ENOSPC/);
    // an approval asked for now is refused (the trail) or, if acknowledged, must survive
    const during = await task(400, 'hold_during');
    assert.ok(during.result?.task?.taskId || during.error?.code === -32013, JSON.stringify(during));
    // votes while full, one per pending task, until the journal refuses one: each vote the API
    // accepted (200) must be there after the restart; a refused one must have changed nothing
    const votes = new Map();
    for (const id of acked.slice(0, 24)) {
      const vote = await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals/${id}/reject`, {
        method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'disk full test' }),
      });
      assert.ok(vote.status === 200 || vote.status >= 500, `the vote while full has a clear answer: HTTP ${vote.status} ${await vote.text()}`);
      votes.set(id, vote.status === 200);
      if (vote.status !== 200) break;
    }
    assert.equal((await fetch(`http://127.0.0.1:${p.adminPort}/health`)).status, 200, 'alive while the disk is full');

    unlinkSync(join(m.dir, 'filler'));
    const back = await until('/ready 200', async () => { const r = await ready(p); return r.status === 200 && r; });
    assert.equal(back.body.checks.audit_writable, true);
    const after = await post(p.url, call(500, 'fill_after'), s.headers);
    assert.ok(after.messages[0]?.result, `served again after space returned: ${after.text.slice(0, 300)}`);
    answered.push('fill_after');
    assert.ok((await task(501, 'hold_after')).result?.task?.taskId, 'tasks acknowledged again');
    assert.ok(trail(env.THOUGHTGATE_AUDIT_PATH).some((l) => l.tool === 'fill_after'), 'audited again (strict: on disk when answered)');

    p.proc.kill('SIGKILL');
    await p.exited;
    // the trail as the crash left it: whole lines, each answered call once, the refused one as a deny or not at all
    const lines = trail(env.THOUGHTGATE_AUDIT_PATH);
    for (const name of answered) {
      const n = lines.filter((l) => l.tool === name && l.decision === 'forward').length;
      assert.equal(n, 1, `${name}: ${n} forward lines (torn lines must be completed, never duplicated)`);
    }

    p = await startProxy(yaml, { env });
    const listed = await approvals(p);
    const ids = new Set(listed.map((x) => x.id));
    assert.deepEqual(acked.filter((id) => !ids.has(id)), [], 'every acknowledged task is there after the restart');
    for (const [id, taken] of votes) {
      const rec = listed.find((x) => x.id === id);
      assert.equal(rec.state, taken ? 'rejected' : 'pending', taken ? 'a vote the API accepted while the disk was full survived the restart' : 'a refused vote changed nothing');
    }
  } finally {
    await p?.stop();
    up.close();
    unmount(m.dir);
  }
});
