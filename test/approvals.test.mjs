// Gate 4 end to end: a real sidecar, a recording upstream, the approvals CLI and admin API,
// the SDK 1.x client with and without tasks. Nothing that waits for a human reaches the
// upstream before a decision; approved calls reach it exactly once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { BIN, auditUntil, startProxy, startRecordingUpstream, post, rawSession, sourceYaml, rule, sleep, tempDir } from './helpers.mjs';

const TOKEN = 'test-admin-token';
const upstreams = [];
after(() => upstreams.forEach((u) => u.close()));

async function upstream() {
  const u = await startRecordingUpstream();
  upstreams.push(u);
  return u;
}

const call = (id, name, args = {}, extra = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...extra } });

function cli(p, args, env = {}) {
  const r = spawnSync(process.execPath, [BIN, 'approvals', ...args, '--admin', `http://127.0.0.1:${p.adminPort}`], {
    env: { ...process.env, THOUGHTGATE_ADMIN_TOKEN: TOKEN, ...env }, encoding: 'utf8', timeout: 20000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function api(p, method, path, body) {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}${path}`, {
    method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json().catch(() => undefined) };
}

/** Polls the admin API until an approval matching `pred` is pending. */
async function pendingWhere(p, pred, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await api(p, 'GET', '/api/approvals');
    const hit = Array.isArray(r.json) ? r.json.find(pred) : undefined;
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no pending approval: ${JSON.stringify(r.json)}`);
    await sleep(50);
  }
}

const sawArg = (u, marker) => u.bodies.filter((b) => b.raw.includes(marker)).length;

const approveYaml = (u, extraRules = '', tail = '') => sourceYaml(`    url: ${u.url}`, { rules: [rule('delete_*', 'approve'), rule('admin_*', 'deny'), extraRules].filter(Boolean).join('\n') }) + tail;

test('a held call is listed, never forwarded before a decision, and released once by approve', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, call(7, 'delete_user', { user_id: 'held-a1' }), s.headers);
    const a = await pendingWhere(p, (x) => x.tool === 'delete_user');
    assert.equal(sawArg(u, 'held-a1'), 0, 'not forwarded while held');
    const listed = cli(p, ['list', '--json']);
    assert.equal(listed.code, 0, listed.err);
    const arr = JSON.parse(listed.out);
    const mine = arr.find((x) => x.id === a.id);
    assert.ok(mine, 'CLI lists it');
    for (const k of ['id', 'tool', 'principal', 'created_at']) assert.ok(k in mine, `list --json has ${k}`);
    const ok = cli(p, ['approve', a.id]);
    assert.equal(ok.code, 0, ok.err);
    const res = await held;
    const last = res.messages.at(-1);
    assert.equal(last.id, 7);
    assert.equal(last.result.content[0].text, 'ran delete_user');
    assert.equal(sawArg(u, 'held-a1'), 1, 'forwarded exactly once');
    const again = cli(p, ['approve', a.id]);
    assert.notEqual(again.code, 0, 'a decided approval cannot be decided again');
    assert.match(again.err, /already/);
    const audit = (await auditUntil(p, (ls) => ls.some((l) => l.approval_id === a.id && l.decision === 'completed'))).filter((l) => l.approval_id === a.id);
    assert.ok(audit.some((l) => l.decision === 'approval_requested'), 'request audited');
    assert.ok(audit.some((l) => l.decision === 'approved' && /cli:/.test(l.approver)), 'approver audited');
    assert.ok(audit.some((l) => l.decision === 'completed'), 'outcome audited');
  } finally {
    await p.stop();
  }
});

test('reject carries the reason to the agent as -32007 and nothing reaches the upstream', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, call(8, 'delete_user', { user_id: 'held-r1' }), { ...s.headers, accept: 'application/json' });
    const a = await pendingWhere(p, (x) => x.tool === 'delete_user');
    const r = cli(p, ['reject', a.id, '--reason', 'not on a Friday']);
    assert.equal(r.code, 0, r.err);
    const res = await held;
    assert.equal(res.headers.get('content-type'), 'application/json');
    const msg = JSON.parse(res.text); // leading keep-alive whitespace is valid JSON
    assert.equal(msg.error.code, -32007);
    assert.match(msg.error.data.details, /not on a Friday/);
    await sleep(100);
    assert.equal(sawArg(u, 'held-r1'), 0);
  } finally {
    await p.stop();
  }
});

test('SDK client with tasks: a task at once, tasks/get while pending, result after approval; cancel and not-ready errors', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  const client = new Client({ name: 'tasks-client', version: '1.0.0' }, { capabilities: { tasks: { list: {}, cancel: {} } } });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(p.url)));
    const caps = client.getServerCapabilities();
    assert.ok(caps?.tasks?.requests?.tools?.call, 'tasks capability advertised in the spec shape');
    const { tools } = await client.listTools();
    assert.equal(tools.find((t) => t.name === 'delete_user').execution?.taskSupport, 'optional');
    assert.equal(tools.find((t) => t.name === 'echo').execution, undefined);

    const stream = client.experimental.tasks.callToolStream({ name: 'delete_user', arguments: { user_id: 'task-t1' } }, undefined, { task: { ttl: 120000 } });
    const first = await stream.next();
    assert.equal(first.value.type, 'taskCreated');
    const taskId = first.value.task.taskId;
    assert.match(taskId, /^tg_[0-9a-f]{21}$/);
    assert.equal(first.value.task.ttl, 120000, 'requested ttl honoured within bounds');
    const notReady = await client.experimental.tasks.getTaskResult(taskId).catch((e) => e);
    assert.equal(notReady.code, -32020, 'result not ready');
    const listed = await client.experimental.tasks.listTasks();
    assert.ok(listed.tasks.some((t) => t.taskId === taskId));
    assert.equal(sawArg(u, 'task-t1'), 0);
    const a = await pendingWhere(p, (x) => x.id === taskId);
    assert.equal((await api(p, 'POST', `/api/approvals/${a.id}/approve`, { by: 'alice' })).status, 200);
    let result;
    for await (const m of { [Symbol.asyncIterator]: () => stream }) {
      if (m.type === 'result') result = m.result;
      if (m.type === 'error') throw m.error;
    }
    assert.equal(result.content[0].text, 'ran delete_user', 'the upstream result, not wrapped again');
    assert.equal(sawArg(u, 'task-t1'), 1);
    const forwarded = u.bodies.find((b) => b.raw.includes('task-t1'));
    assert.equal(JSON.parse(forwarded.raw).params.task, undefined, 'the upstream gets the plain call');

    // cancel a second task
    const s2 = client.experimental.tasks.callToolStream({ name: 'delete_user', arguments: { user_id: 'task-t2' } }, undefined, { task: {} });
    const t2 = (await s2.next()).value.task.taskId;
    const cancelled = await client.experimental.tasks.cancelTask(t2);
    assert.equal(cancelled.status, 'cancelled');
    const after = await client.experimental.tasks.getTaskResult(t2).catch((e) => e);
    assert.equal(after.code, -32006);
    await s2.return?.();
    assert.equal(sawArg(u, 'task-t2'), 0);
    const missing = await client.experimental.tasks.getTask('tg_000000000000000000000').catch((e) => e);
    assert.equal(missing.code, -32602);
  } finally {
    await client.close().catch(() => {});
    await p.stop();
  }
});

test('plain SDK client is held open (SSE keep-alives / progress) and gets the upstream answer', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u), { env: { THOUGHTGATE_KEEPALIVE_INTERVAL_SECS: '1' } });
  const client = new Client({ name: 'plain-client', version: '1.0.0' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(p.url)));
    const progress = [];
    const done = client.callTool({ name: 'delete_user', arguments: { user_id: 'plain-p1' } }, undefined, { onprogress: (n) => progress.push(n), resetTimeoutOnProgress: true });
    const a = await pendingWhere(p, (x) => x.tool === 'delete_user');
    while (progress.length < 1) await sleep(50);
    assert.match(progress[0].message, new RegExp(a.id));
    assert.equal((await api(p, 'POST', `/api/approvals/${a.id}/approve`, { by: 'bob' })).status, 200);
    const res = await done;
    assert.equal(res.content[0].text, 'ran delete_user');
    assert.equal(sawArg(u, 'plain-p1'), 1);
  } finally {
    await client.close().catch(() => {});
    await p.stop();
  }
});

test('kill -9 while a task is pending: after restart it is still there and approving completes it', async () => {
  const u = await upstream();
  const state = tempDir('state');
  const env = { THOUGHTGATE_STATE_DIR: state };
  const p1 = await startProxy(approveYaml(u), { env });
  const s = await rawSession(p1.url, '2025-11-25');
  const created = await post(p1.url, call(3, 'delete_user', { user_id: 'crash-k1' }, { task: { ttl: 600000 } }), s.headers);
  const taskId = created.messages[0].result.task.taskId;
  assert.equal(created.messages[0].result.task.status, 'working');
  p1.proc.kill('SIGKILL');
  await p1.exited;
  const p2 = await startProxy(approveYaml(u), { env });
  try {
    const s2 = await rawSession(p2.url, '2025-11-25');
    const got = await post(p2.url, { jsonrpc: '2.0', id: 4, method: 'tasks/get', params: { taskId } }, s2.headers);
    assert.equal(got.messages[0].result.taskId, taskId);
    assert.equal(got.messages[0].result.status, 'working');
    assert.equal((await api(p2, 'POST', `/api/approvals/${taskId}/approve`, { by: 'carol' })).status, 200);
    let res;
    for (let i = 0; i < 200; i++) {
      res = await post(p2.url, { jsonrpc: '2.0', id: 5, method: 'tasks/result', params: { taskId } }, s2.headers);
      if (res.messages[0].result) break;
      await sleep(50);
    }
    assert.equal(res.messages[0].result.content[0].text, 'ran delete_user');
    assert.equal(res.messages[0].result._meta['io.modelcontextprotocol/related-task'].taskId, taskId);
    assert.equal(sawArg(u, 'crash-k1'), 1);
  } finally {
    await p2.stop();
  }
});

test('development profile auto-approves and says so in the audit trail', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u), { args: ['--profile', 'development'] });
  try {
    const s = await rawSession(p.url);
    const r = await post(p.url, call(9, 'delete_user', { user_id: 'dev-d1' }), s.headers);
    assert.equal(r.messages.at(-1).result.content[0].text, 'ran delete_user');
    assert.ok((await auditUntil(p, (ls) => ls.some((l) => l.decision === 'auto_approved'))).some((l) => l.tool === 'delete_user' && l.decision === 'auto_approved'));
    assert.match(p.logText(), /WOULD_BLOCK/);
  } finally {
    await p.stop();
  }
});

test('timeouts: on_timeout deny answers -32008 and forwards nothing; on_timeout approve executes', async () => {
  const u = await upstream();
  const tail = `approval:
  quick:
    adapter: console
    timeout: 5s
  lenient:
    adapter: console
    timeout: 5s
    on_timeout: approve
`;
  const yaml = sourceYaml(`    url: ${u.url}`, { rules: [`    - match: "delete_*"\n      action: approve\n      approval: quick`, `    - match: "drop_*"\n      action: approve\n      approval: lenient`].join('\n') }) + tail;
  const p = await startProxy(yaml);
  try {
    const s = await rawSession(p.url);
    const [denied, allowed] = await Promise.all([
      post(p.url, call(10, 'delete_user', { user_id: 'to-1' }), s.headers),
      post(p.url, call(11, 'drop_table', { t: 'to-2' }), s.headers),
    ]);
    assert.equal(denied.messages.at(-1).error.code, -32008);
    assert.match(denied.messages.at(-1).error.data.details, /after 5s/);
    assert.equal(sawArg(u, 'to-1'), 0);
    assert.equal(allowed.messages.at(-1).result.content[0].text, 'ran drop_table');
  } finally {
    await p.stop();
  }
});

test('pending approvals are capped: past the cap -32009, at the cap still held', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u), { env: { THOUGHTGATE_MAX_PENDING_APPROVALS: '1' } });
  try {
    const s = await rawSession(p.url);
    const first = post(p.url, call(12, 'delete_user', { user_id: 'cap-1' }), s.headers);
    const a = await pendingWhere(p, (x) => x.tool === 'delete_user');
    const second = await post(p.url, call(13, 'delete_user', { user_id: 'cap-2' }), s.headers);
    assert.equal(second.messages.at(-1).error.code, -32009);
    assert.ok(second.messages.at(-1).error.data.retry_after > 0);
    await api(p, 'POST', `/api/approvals/${a.id}/reject`, { by: 'dave' });
    assert.equal((await first).messages.at(-1).error.code, -32007);
    assert.equal(sawArg(u, 'cap-2'), 0);
  } finally {
    await p.stop();
  }
});

test('a standing approval for the session forwards the same call again without asking; revoke ends it', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  try {
    const s = await rawSession(p.url);
    const first = post(p.url, call(14, 'delete_user', { user_id: 'grant-g1' }), s.headers);
    const a = await pendingWhere(p, (x) => x.tool === 'delete_user');
    assert.equal((await api(p, 'POST', `/api/approvals/${a.id}/approve`, { by: 'erin', scope: 'session' })).status, 200);
    assert.equal((await first).messages.at(-1).result.content[0].text, 'ran delete_user');
    const again = await post(p.url, call(15, 'delete_user', { user_id: 'grant-g1' }), s.headers);
    assert.equal(again.messages.at(-1).result.content[0].text, 'ran delete_user', 'covered by the grant');
    const other = post(p.url, call(16, 'delete_user', { user_id: 'grant-OTHER' }), s.headers);
    const b = await pendingWhere(p, (x) => x.tool === 'delete_user' && JSON.stringify(x.arguments).includes('grant-OTHER'));
    assert.ok(b, 'other arguments are not covered');
    await api(p, 'POST', `/api/approvals/${b.id}/reject`, { by: 'erin' });
    await other;
    const grants = cli(p, ['grants', '--json']);
    const [g] = JSON.parse(grants.out);
    assert.ok(g?.id);
    assert.equal(cli(p, ['revoke', g.id]).code, 0);
    const third = post(p.url, call(17, 'delete_user', { user_id: 'grant-g1' }), s.headers);
    const c = await pendingWhere(p, (x) => x.tool === 'delete_user');
    assert.ok(c, 'after revoke it asks again');
    await api(p, 'POST', `/api/approvals/${c.id}/reject`, { by: 'erin' });
    assert.equal((await third).messages.at(-1).error.code, -32007);
    assert.equal(sawArg(u, 'grant-g1'), 2);
  } finally {
    await p.stop();
  }
});

test('policy changed while waiting: the approved call is judged again and refused (-32011)', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, call(18, 'delete_user', { user_id: 'drift-1' }), s.headers);
    const a = await pendingWhere(p, (x) => x.tool === 'delete_user');
    writeFileSync(p.cfg, sourceYaml(`    url: ${u.url}`, { rules: rule('delete_*', 'deny') }));
    p.proc.kill('SIGHUP');
    for (let i = 0; i < 100 && !/new snapshot in effect/.test(p.logText()); i++) await sleep(50);
    await api(p, 'POST', `/api/approvals/${a.id}/approve`, { by: 'frank' });
    const res = await held;
    assert.equal(res.messages.at(-1).error.code, -32011);
    assert.equal(sawArg(u, 'drift-1'), 0);
  } finally {
    await p.stop();
  }
});

test('approval metrics are exported', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  try {
    const s = await rawSession(p.url, '2025-11-25');
    const created = await post(p.url, call(19, 'delete_user', { user_id: 'm-1' }, { task: {} }), s.headers);
    const taskId = created.messages[0].result.task.taskId;
    await api(p, 'POST', `/api/approvals/${taskId}/approve`, { by: 'gina' });
    for (let i = 0; i < 100; i++) {
      const r = await post(p.url, { jsonrpc: '2.0', id: 20, method: 'tasks/get', params: { taskId } }, s.headers);
      if (r.messages[0].result.status === 'completed') break;
      await sleep(50);
    }
    const text = await (await fetch(`http://127.0.0.1:${p.adminPort}/metrics`)).text();
    assert.match(text, /thoughtgate_approval_requests_total\{channel="console",outcome="approved"\} 1/);
    assert.match(text, /thoughtgate_approval_wait_duration_s_count\{channel="console",outcome="approved"\} 1/);
    assert.match(text, /thoughtgate_tasks_created_total\{task_type="approval"\} 1/);
    assert.match(text, /thoughtgate_tasks_completed_total\{task_type="approval",outcome="completed"\} 1/);
    assert.match(text, /thoughtgate_tasks_pending\{task_type="approval"\} 0/);
  } finally {
    await p.stop();
  }
});

test('SIGTERM while a call is held: the client is told to retry (-32013), the approval stays pending across the restart', async () => {
  const u = await upstream();
  const state = tempDir('state');
  const p1 = await startProxy(approveYaml(u), { env: { THOUGHTGATE_STATE_DIR: state } });
  const s = await rawSession(p1.url);
  const held = post(p1.url, call(40, 'delete_user', { user_id: 'term-1' }), s.headers);
  const a = await pendingWhere(p1, (x) => x.tool === 'delete_user');
  await p1.stop();
  const res = (await held).messages.at(-1);
  assert.equal(res.error.code, -32013);
  assert.match(res.error.data.details, new RegExp(a.id));
  assert.ok(res.error.data.retry_after > 0);
  const p2 = await startProxy(approveYaml(u), { env: { THOUGHTGATE_STATE_DIR: state } });
  try {
    const again = await pendingWhere(p2, (x) => x.id === a.id);
    assert.equal(again.state, 'pending');
    assert.equal(sawArg(u, 'term-1'), 0);
  } finally {
    await p2.stop();
  }
});

test('a client that takes URL elicitation (2025-11-25) is offered the console link for its held call; its answer is not forwarded', async () => {
  const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  const client = new Client({ name: 'elicit-client', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
  const offered = [];
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    offered.push(req.params);
    return { action: 'accept' };
  });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(p.url)));
    const done = client.callTool({ name: 'delete_user', arguments: { user_id: 'elicit-e1' } });
    const a = await pendingWhere(p, (x) => x.tool === 'delete_user');
    while (offered.length === 0) await sleep(50);
    assert.equal(offered[0].mode, 'url');
    assert.equal(offered[0].elicitationId, a.id);
    assert.equal(offered[0].url, `http://127.0.0.1:${p.adminPort}/approvals#${a.id}`);
    assert.equal((await api(p, 'POST', `/api/approvals/${a.id}/approve`, { by: 'hank' })).status, 200);
    assert.equal((await done).content[0].text, 'ran delete_user');
    // the client answered the elicitation long before the approval; it stayed with the proxy
    assert.equal(u.bodies.some((b) => b.raw.includes('tg-elicit-')), false);
  } finally {
    await client.close().catch(() => {});
    await p.stop();
  }
});

test('2025-03-26 batch: an element needing approval is held in place; the batch answers once it is decided', async () => {
  const u = await upstream();
  const p = await startProxy(approveYaml(u));
  try {
    const s = await rawSession(p.url, '2025-03-26');
    const batch = [call(50, 'echo', { m: 'b-echo' }), call(51, 'delete_user', { user_id: 'batch-b1' }), call(52, 'admin_reset'), call(53, 'delete_user', { user_id: 'batch-b2' })];
    const pending = post(p.url, batch, { ...s.headers, accept: 'application/json' });
    const first = await pendingWhere(p, (x) => JSON.stringify(x.arguments).includes('batch-b1'));
    const second = await pendingWhere(p, (x) => JSON.stringify(x.arguments).includes('batch-b2'));
    assert.equal(sawArg(u, 'batch-b1') + sawArg(u, 'batch-b2'), 0, 'held elements are not forwarded');
    assert.equal((await api(p, 'POST', `/api/approvals/${first.id}/approve`, { by: 'ivy' })).status, 200);
    assert.equal((await api(p, 'POST', `/api/approvals/${second.id}/reject`, { by: 'ivy', reason: 'one is enough' })).status, 200);
    const res = await pending;
    const byId = Object.fromEntries(res.messages.map((m) => [m.id, m]));
    assert.deepEqual(Object.keys(byId).map(Number).sort(), [50, 51, 52, 53], 'every element answered once');
    assert.equal(byId[50].result.content[0].text, 'ran echo');
    assert.equal(byId[51].result.content[0].text, 'ran delete_user');
    assert.equal(byId[52].error.code, -32014);
    assert.equal(byId[53].error.code, -32007);
    assert.match(byId[53].error.data.details, /one is enough/);
    assert.equal(sawArg(u, 'batch-b1'), 1, 'the approved element ran once, on its own');
    assert.equal(sawArg(u, 'batch-b2'), 0);
  } finally {
    await p.stop();
  }
});

test('2026-07-28 call to a stdio source, held then approved, runs on a pooled child (no session)', async () => {
  const { Client: V2Client, StreamableHTTPClientTransport: V2Transport } = await import('@modelcontextprotocol/client');
  const { EVERYTHING } = await import('./helpers.mjs');
  const yaml = sourceYaml(`    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(EVERYTHING)}, "stdio"]`, { rules: rule('echo', 'approve') });
  const p = await startProxy(yaml);
  const c = new V2Client({ name: 'modern-stdio-held', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  try {
    await c.connect(new V2Transport(new URL(p.url)));
    const done = c.callTool({ name: 'echo', arguments: { message: 'held-modern-stdio' } });
    const a = await pendingWhere(p, (x) => x.tool === 'echo');
    assert.equal((await api(p, 'POST', `/api/approvals/${a.id}/approve`, { by: 'jo' })).status, 200);
    assert.equal((await done).content[0].text, 'Echo: held-modern-stdio');
  } finally {
    await c.close();
    await p.stop();
  }
});
