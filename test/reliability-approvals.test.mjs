// Gate 4 bounded and tidy, end to end (issue 14, items 3 and 6): a held call over the per-record
// byte limit is refused at once and never stored or forwarded; calls at the limit are held; the
// total byte budget answers -32009 with retry_after; a journal of records larger than a read
// chunk survives kill -9; notifications/cancelled withdraws the held call it names (and only that).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startProxy, startRecordingUpstream, post, rawSession, sourceYaml, rule, sleep, tempDir } from './helpers.mjs';

const TOKEN = 'test-admin-token';
const upstreams = [];
after(() => upstreams.forEach((u) => u.close()));
async function upstream() {
  const u = await startRecordingUpstream();
  upstreams.push(u);
  return u;
}
const call = (id, name, args = {}, extra = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...extra } });
const yaml = (u) => sourceYaml(`    url: ${u.url}`, { rules: rule('hold_*', 'approve') });
const sawArg = (u, marker) => u.bodies.filter((b) => b.raw.includes(marker)).length;

/** approvals in `state` (the API lists pending or all) */
async function list(p, state = 'pending') {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals?state=all`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await r.json()).filter((x) => x.state === state);
}
async function until(what, probe, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
/** POSTs `message` on a raw socket the test can destroy (the client going away mid-request) */
async function rawPost(url, headers, message) {
  const target = new URL(url);
  const body = JSON.stringify(message);
  const sock = connect(Number(target.port), target.hostname);
  await new Promise((r) => sock.once('connect', r));
  const head = Object.entries({ ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  sock.write(`POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\n${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  sock.on('data', () => {});
  sock.on('error', () => {});
  return sock;
}
/** the size the limit counts for a call: its request body + its arguments' JSON */
const sizeOf = (msg) => Buffer.byteLength(JSON.stringify(msg)) + Buffer.byteLength(JSON.stringify(msg.params.arguments));

test('per-record byte limit: at the limit held; just past it (2 bytes: body + arguments) refused at once (-32602 naming the limit), never stored or forwarded', async () => {
  const u = await upstream();
  const at = call(2, 'hold_it', { tag: 'tag-aaaa', blob: 'a'.repeat(20_000) });
  const limit = sizeOf(at);
  const p = await startProxy(yaml(u), { env: { THOUGHTGATE_MAX_APPROVAL_BYTES: String(limit) } });
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, at, s.headers).catch(() => {});
    await until('the call at the limit to be pending', async () => (await list(p)).some((x) => JSON.stringify(x.arguments).includes('tag-aaaa')));
    const past = call(3, 'hold_it', { tag: 'tag-bbbb', blob: 'a'.repeat(20_001) });
    assert.equal(sizeOf(past), limit + 2, 'one more character: two bytes more (body + arguments)');
    const r = await post(p.url, past, s.headers);
    const err = r.messages.find((m) => m.id === 3)?.error;
    assert.equal(err?.code, -32602, JSON.stringify(r.messages));
    assert.match(err.message, new RegExp(`size limit of ${limit} bytes`));
    assert.ok(!(await list(p)).some((x) => JSON.stringify(x.arguments).includes('tag-bbbb')), 'not stored');
    assert.equal(sawArg(u, 'tag-bbbb'), 0, 'not forwarded');
    void held;
  } finally {
    await p.stop();
  }
});

test('total byte budget: the call that would pass it gets -32009 with retry_after; the ones before it are held', async () => {
  const u = await upstream();
  const one = call(2, 'hold_it', { tag: 'budget-0', blob: 'b'.repeat(10_000) });
  const p = await startProxy(yaml(u), { env: { THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES: String(2 * sizeOf(one) + 10) } });
  try {
    const s = await rawSession(p.url);
    for (const n of [0, 1]) {
      post(p.url, call(10 + n, 'hold_it', { tag: `budget-${n}`, blob: 'b'.repeat(10_000) }), s.headers).catch(() => {});
      await until(`budget-${n} pending`, async () => (await list(p)).some((x) => JSON.stringify(x.arguments).includes(`budget-${n}`)));
    }
    const r = await post(p.url, call(12, 'hold_it', { tag: 'budget-2', blob: 'b'.repeat(10_000) }), s.headers);
    const err = r.messages.find((m) => m.id === 12)?.error;
    assert.equal(err?.code, -32009, JSON.stringify(r.messages));
    assert.ok(err.data?.retry_after > 0, 'retry_after');
    assert.equal(sawArg(u, 'budget-2'), 0);
  } finally {
    await p.stop();
  }
});

test('tasks with arguments larger than a read chunk survive kill -9: every acknowledged one is listed after the restart', async () => {
  const u = await upstream();
  const state = tempDir();
  const env = { THOUGHTGATE_STATE_DIR: state, THOUGHTGATE_MAX_REQUEST_BODY_BYTES: String(8 << 20) };
  const p1 = await startProxy(yaml(u), { env });
  const acked = [];
  try {
    const s = await rawSession(p1.url, '2025-11-25');
    for (let i = 0; i < 4; i++) {
      const r = await post(p1.url, call(20 + i, 'hold_big', { i, pad: 'm'.repeat(1_200_000) }, { task: { ttl: 600000 } }), s.headers);
      const id = r.messages.find((m) => m.id === 20 + i)?.result?.task?.taskId;
      assert.ok(id, JSON.stringify(r.messages).slice(0, 300));
      acked.push(id);
    }
  } finally {
    p1.proc.kill('SIGKILL');
    await p1.exited;
  }
  const p2 = await startProxy(yaml(u), { env });
  try {
    const listed = new Set((await list(p2)).map((x) => x.id));
    assert.deepEqual(acked.filter((id) => !listed.has(id)), [], 'no acknowledged task lost');
  } finally {
    await p2.stop();
  }
});

test('notifications/cancelled withdraws the held call it names (cancelled, never forwarded); another id or session is left alone', async () => {
  const u = await upstream();
  const p = await startProxy(yaml(u));
  try {
    const s = await rawSession(p.url);
    const other = await rawSession(p.url);
    const held = post(p.url, call(61, 'hold_cancel', { tag: 'cancel-me' }), s.headers);
    post(p.url, call(62, 'hold_cancel', { tag: 'keep-me' }), s.headers).catch(() => {});
    const rec = await until('held', async () => (await list(p)).find((x) => JSON.stringify(x.arguments).includes('cancel-me')));
    await until('second held', async () => (await list(p)).some((x) => JSON.stringify(x.arguments).includes('keep-me')));
    // same id from another session, and the id as a string: neither is this call
    await post(p.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 61 } }, other.headers);
    await post(p.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: '61' } }, s.headers);
    const n = await post(p.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 61, reason: 'gave up' } }, s.headers);
    assert.ok(n.status === 202 || n.status === 200, `notification accepted: HTTP ${n.status}`);
    await until('withdrawn', async () => (await list(p, 'cancelled')).some((x) => x.id === rec.id));
    const res = await held;
    assert.ok(res.messages.at(-1)?.error, 'the held request ends with an error, not a result');
    const pending = await list(p);
    assert.ok(!pending.some((x) => x.id === rec.id), 'no longer pending');
    assert.ok(pending.some((x) => JSON.stringify(x.arguments).includes('keep-me')), 'the other held call stays');
    const cancelledIds = (await list(p, 'cancelled')).map((x) => x.id);
    assert.deepEqual(cancelledIds, [rec.id], 'the notifications with another session or id type withdrew nothing');
    assert.equal(sawArg(u, 'cancel-me'), 0, 'never forwarded');
  } finally {
    await p.stop();
  }
});

test('a held call whose client closes its connection is withdrawn (never run for nobody); a task outlives its connection', async () => {
  const u = await upstream();
  const p = await startProxy(yaml(u));
  try {
    const s = await rawSession(p.url, '2025-11-25');
    const sock = await rawPost(p.url, s.headers, call(71, 'hold_gone', { tag: 'gone-client' }));
    const rec = await until('held', async () => (await list(p)).find((x) => JSON.stringify(x.arguments).includes('gone-client')));
    const task = await post(p.url, call(72, 'hold_task', { tag: 'task-stays' }, { task: { ttl: 600000 } }), s.headers);
    const taskId = task.messages.find((m) => m.id === 72)?.result?.task?.taskId;
    assert.ok(taskId, `a task was made: ${task.text.slice(0, 200)}`);
    sock.destroy(); // the client goes away
    const gone = await until('withdrawn', async () => (await list(p, 'cancelled')).find((x) => x.id === rec.id));
    assert.equal(gone.decided_by, 'system:client-gone');
    // an approval can no longer run it
    const r = await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals/${rec.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 409, 'already decided');
    await sleep(200);
    assert.equal(sawArg(u, 'gone-client'), 0, 'never forwarded');
    assert.ok((await list(p)).some((x) => x.id === taskId), 'the task (whose connection also closed) stays pending');
  } finally {
    await p.stop();
  }
});

/** POST /api/approvals/<id>/approve as the operator */
async function approve(p, id) {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(r.status, 200, await r.text());
}

test('approved after its client was gone (sidecar killed meanwhile): not run for nobody; the identical retry runs it once, a second retry asks again', async () => {
  const u = await upstream();
  const env = { THOUGHTGATE_STATE_DIR: tempDir() };
  const p1 = await startProxy(yaml(u), { env });
  let id;
  try {
    const s = await rawSession(p1.url);
    post(p1.url, call(71, 'hold_retry', { tag: 'retry-me', n: 1 }), s.headers).catch(() => {});
    id = (await until('held', async () => (await list(p1)).find((x) => JSON.stringify(x.arguments).includes('retry-me')))).id;
  } finally {
    p1.proc.kill('SIGKILL');
    await p1.exited;
  }
  const p2 = await startProxy(yaml(u), { env });
  try {
    await approve(p2, id);
    const parked = await until('parked, approved', async () => (await list(p2, 'approved')).find((x) => x.id === id));
    assert.ok(Date.parse(parked.awaiting_retry_until) > Date.now(), 'the API says until when a retry runs it');
    // the sweep and change handlers have had their turn: still nothing ran
    await sleep(300);
    assert.equal(sawArg(u, 'retry-me'), 0, 'an approved call whose client is gone is not executed');
    assert.match(p2.logText(), /its client is gone/);

    // Another call (other arguments) is not the approved one: it is held, not forwarded.
    const s = await rawSession(p2.url);
    post(p2.url, call(72, 'hold_retry', { tag: 'retry-me', n: 2 }), s.headers).catch(() => {});
    await until('the different call held', async () => (await list(p2)).some((x) => JSON.stringify(x.arguments).includes('"n":2')));
    assert.equal(sawArg(u, 'retry-me'), 0);

    // The identical call (arguments in another key order): forwarded once, answered by the upstream.
    const r = await post(p2.url, call(73, 'hold_retry', { n: 1, tag: 'retry-me' }), s.headers);
    const m = r.messages.find((x) => x.id === 73);
    assert.ok(m?.result, JSON.stringify(r.messages));
    assert.equal(sawArg(u, 'retry-me'), 1, 'ran once, on the retry');
    await until('completed', async () => (await list(p2, 'completed')).some((x) => x.id === id));

    // The approval is used up: the same call again asks a person again.
    post(p2.url, call(74, 'hold_retry', { tag: 'retry-me', n: 1 }), s.headers).catch(() => {});
    await until('asked again', async () => (await list(p2)).filter((x) => JSON.stringify(x.arguments).includes('"n":1')).length === 1);
    assert.equal(sawArg(u, 'retry-me'), 1, 'not run a second time');
  } finally {
    await p2.stop();
  }
});

test('a call retried while its approval is still pending (its first request gone) waits on that approval instead of asking twice', async () => {
  const u = await upstream();
  const env = { THOUGHTGATE_STATE_DIR: tempDir() };
  const p1 = await startProxy(yaml(u), { env });
  try {
    const s = await rawSession(p1.url);
    post(p1.url, call(81, 'hold_again', { tag: 'again-me' }), s.headers).catch(() => {});
    await until('held', async () => (await list(p1)).some((x) => JSON.stringify(x.arguments).includes('again-me')));
  } finally {
    await p1.stop(); // SIGTERM: the held client is told to retry; the approval stays pending
  }
  const p2 = await startProxy(yaml(u), { env });
  try {
    const s = await rawSession(p2.url);
    const retried = post(p2.url, call(82, 'hold_again', { tag: 'again-me' }), s.headers);
    await sleep(300);
    const pending = (await list(p2)).filter((x) => JSON.stringify(x.arguments).includes('again-me'));
    assert.equal(pending.length, 1, 'one approval, not two');
    await approve(p2, pending[0].id);
    const r = await retried;
    assert.ok(r.messages.find((x) => x.id === 82)?.result, JSON.stringify(r.messages));
    assert.equal(sawArg(u, 'again-me'), 1, 'ran once, answered to the retry');
  } finally {
    await p2.stop();
  }
});

test('pending approvals per client: one session at its cap gets -32009 with retry_after; another session is still held', async () => {
  // each initialize gets its own upstream session (the recording upstream's default is one for all)
  let sessions = 0;
  const u = await startRecordingUpstream({
    behave: (req, raw, res) => {
      if (!raw.toString().includes('"initialize"')) return false;
      const { id } = JSON.parse(raw.toString());
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `sess-cap-${++sessions}` });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'rec', version: '1' } } }));
      return true;
    },
  });
  upstreams.push(u);
  const p = await startProxy(yaml(u), { env: { THOUGHTGATE_MAX_PENDING_APPROVALS_PER_CLIENT: '2' } });
  try {
    const a = await rawSession(p.url);
    const b = await rawSession(p.url);
    for (const n of [0, 1]) {
      post(p.url, call(90 + n, 'hold_cap', { tag: `cap-a-${n}` }), a.headers).catch(() => {});
      await until(`cap-a-${n}`, async () => (await list(p)).some((x) => JSON.stringify(x.arguments).includes(`cap-a-${n}`)));
    }
    const r = await post(p.url, call(92, 'hold_cap', { tag: 'cap-a-2' }), a.headers);
    const err = r.messages.find((m) => m.id === 92)?.error;
    assert.equal(err?.code, -32009, JSON.stringify(r.messages));
    assert.ok(err.data?.retry_after > 0);
    assert.match(err.message + JSON.stringify(err.data), /THOUGHTGATE_MAX_PENDING_APPROVALS_PER_CLIENT/);
    post(p.url, call(93, 'hold_cap', { tag: 'cap-b-0' }), b.headers).catch(() => {});
    await until('the other session held', async () => (await list(p)).some((x) => JSON.stringify(x.arguments).includes('cap-b-0')));
    assert.equal(sawArg(u, 'cap-'), 0);
  } finally {
    await p.stop();
  }
});

test('2025-03-26 batches: notifications/cancelled inside a batch withdraws the held element it names; a batch whose client leaves withdraws its held elements', async () => {
  const u = await upstream();
  const p = await startProxy(yaml(u));
  try {
    const s = await rawSession(p.url, '2025-03-26');
    post(p.url, [call(101, 'hold_batch', { tag: 'batch-cancel' }), call(102, 'echo', { tag: 'batch-free' })], s.headers).catch(() => {});
    const rec = await until('held', async () => (await list(p)).find((x) => JSON.stringify(x.arguments).includes('batch-cancel')));
    await post(p.url, [{ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 101 } }, { jsonrpc: '2.0', method: 'notifications/initialized' }], s.headers);
    const gone = await until('withdrawn by the batched notification', async () => (await list(p, 'cancelled')).find((x) => x.id === rec.id));
    assert.match(gone.decided_by, /^requester:/);

    // the client of a batch with a held element closes its connection
    const sock = await rawPost(p.url, s.headers, [call(103, 'hold_batch', { tag: 'batch-gone' })]);
    const rec2 = await until('held', async () => (await list(p)).find((x) => JSON.stringify(x.arguments).includes('batch-gone')));
    sock.destroy();
    const gone2 = await until('withdrawn', async () => (await list(p, 'cancelled')).find((x) => x.id === rec2.id));
    assert.equal(gone2.decided_by, 'system:client-gone');
    assert.equal(sawArg(u, 'batch-cancel') + sawArg(u, 'batch-gone'), 0, 'neither held element ever forwarded');
  } finally {
    await p.stop();
  }
});
