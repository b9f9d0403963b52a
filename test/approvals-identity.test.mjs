// Issue 13 end to end through the real sidecar and CLI: a vote is the person its token names
// (per-approver tokens; one person one vote across CLI and API), tasks belong to the session
// that made them, redact_fields masks every view of a held request, and the console cookie is
// a server-side session.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { BIN, startProxy, startRecordingUpstream, post, rawSession, sourceYaml, rule, sleep } from './helpers.mjs';

const ADMIN = 'test-admin-token';
const ALICE = 'alice-e2e-token-0123456789';
const BOB = 'bob-e2e-token-0123456789ab';
const upstreams = [];
after(() => upstreams.forEach((u) => u.close()));

const config = (u) => sourceYaml(`    url: ${u.url}`, { rules: `${rule('wire_*', 'approve')}\n      approval: ops\n${rule('pay_*', 'approve')}\n      approval: payroll` }) + `approval:
  ops:
    adapter: console
    timeout: 10m
    approvers: [alice, bob]
    required_approvals: 2
    approver_tokens:
      alice: \${TG_ALICE}
      bob: \${TG_BOB}
  payroll:
    adapter: console
    timeout: 10m
    redact_fields: [iban, auth.pin]
`;

function cli(p, args, token) {
  const r = spawnSync(process.execPath, [BIN, 'approvals', ...args, '--admin', `http://127.0.0.1:${p.adminPort}`], {
    env: { ...process.env, THOUGHTGATE_ADMIN_TOKEN: token }, encoding: 'utf8', timeout: 20000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function api(p, method, path, token, body) {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

async function pending(p, pred, ms = 8000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await api(p, 'GET', '/api/approvals', ADMIN);
    const hit = Array.isArray(r.json) ? r.json.find(pred) : undefined;
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no pending approval: ${r.text.slice(0, 200)}`);
    await sleep(50);
  }
}

/** Each initialize gets its own session id (the recording upstream's default is one shared id). */
function ownSessions() {
  let n = 0;
  return (req, raw, res) => {
    let msg;
    try { msg = JSON.parse(raw.toString('utf8')); } catch { return false; }
    if (msg?.method !== 'initialize') return false;
    res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `sess-own-${++n}` });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: msg.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'rec', version: '1' } } }));
    return true;
  };
}

async function start() {
  const u = await startRecordingUpstream({ behave: ownSessions() });
  upstreams.push(u);
  const p = await startProxy(config(u), { env: { TG_ALICE: ALICE, TG_BOB: BOB } });
  return { u, p };
}

const call = (id, name, args, extra = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...extra } });
const seen = (u, marker) => u.bodies.filter((b) => b.raw.includes(marker)).length;

test('one person, one vote: alice via the CLI and the API is one vote; the admin token cannot vote for named approvers; bob releases it once', async () => {
  const { u, p } = await start();
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, call(5, 'wire_money', { ref: 'vote-e2e' }), s.headers);
    const rec = await pending(p, (x) => x.tool === 'wire_money');
    const viaCli = cli(p, ['approve', rec.id, '--by', 'bob'], ALICE); // the typed name is not who votes
    assert.equal(viaCli.code, 0, viaCli.err);
    const viaApi = await api(p, 'POST', `/api/approvals/${rec.id}/approve`, ALICE, { by: 'alice', via: 'api' });
    assert.equal(viaApi.status, 409, viaApi.text);
    assert.equal(viaApi.json.error, 'duplicate_vote');
    const admin = await api(p, 'POST', `/api/approvals/${rec.id}/approve`, ADMIN, { by: 'bob' });
    assert.equal(admin.status, 403, 'the shared admin token does not stand in for bob');
    const adminCli = cli(p, ['approve', rec.id, '--by', 'bob'], ADMIN);
    assert.notEqual(adminCli.code, 0);
    await sleep(200);
    assert.equal(seen(u, 'vote-e2e'), 0, 'not run on one person\'s say-so');
    const now = await api(p, 'GET', `/api/approvals/${rec.id}`, ADMIN);
    assert.deepEqual(now.json.votes.map((v) => v.by), ['cli:alice']);

    assert.equal((await api(p, 'POST', `/api/approvals/${rec.id}/approve`, BOB, {})).status, 200);
    const res = await held;
    assert.equal(res.messages.at(-1).result.content[0].text, 'ran wire_money');
    assert.equal(seen(u, 'vote-e2e'), 1, 'run exactly once');
  } finally {
    await p.stop();
  }
});

test('redact_fields: approvals list (plain and --json) and the API mask the value and keep the key; other arguments stay', async () => {
  const { p } = await start();
  try {
    const s = await rawSession(p.url);
    void post(p.url, call(6, 'pay_salary', { account: 'acct-visible-1', iban: 'DE89370400440532013000', auth: { pin: '9876', user: 'u1' } }), s.headers).catch(() => {});
    const rec = await pending(p, (x) => x.tool === 'pay_salary');
    const json = cli(p, ['list', '--json'], ADMIN);
    const plain = cli(p, ['list'], ADMIN);
    const one = await api(p, 'GET', `/api/approvals/${rec.id}`, ADMIN);
    const all = await api(p, 'GET', '/api/approvals', ADMIN);
    for (const [what, text] of [['list --json', json.out], ['list', plain.out], ['GET one', one.text], ['GET all', all.text]]) {
      assert.ok(!text.includes('DE89370400440532013000'), `${what} shows the iban`);
      assert.ok(!text.includes('9876'), `${what} shows the pin`);
      assert.ok(text.includes('acct-visible-1'), `${what} hides the account`);
    }
    const listed = JSON.parse(json.out).find((x) => x.id === rec.id);
    assert.deepEqual(listed.arguments, { account: 'acct-visible-1', iban: '[REDACTED]', auth: { pin: '[REDACTED]', user: 'u1' } });
    assert.deepEqual(one.json.arguments, listed.arguments);
    assert.ok(!p.logText().includes('DE89370400440532013000'), 'nor the logs');
    assert.ok(!JSON.stringify(p.audit()).includes('DE89370400440532013000'), 'nor the audit trail');
  } finally {
    await p.stop();
  }
});

test("tasks belong to their session: another session's tasks/* answer as for an unknown id, its cancel changes nothing", async () => {
  const { p } = await start();
  try {
    const a = await rawSession(p.url, '2025-11-25');
    const b = await rawSession(p.url, '2025-11-25');
    assert.notEqual(a.sid, b.sid, 'two sessions');
    const made = await post(p.url, call(7, 'pay_bonus', { account: 'task-owner' }, { task: { ttl: 600000 } }), a.headers);
    const taskId = made.messages[0].result.task.taskId;
    let id = 100;
    const ask = async (h, method, params) => (await post(p.url, { jsonrpc: '2.0', id: ++id, method, params }, h.headers)).messages[0];
    assert.ok((await ask(b, 'tasks/list', {})).result.tasks.every((t) => t.taskId !== taskId));
    for (const m of ['tasks/get', 'tasks/result', 'tasks/cancel']) {
      const theirs = await ask(b, m, { taskId });
      const unknown = await ask(b, m, { taskId: 'tg_' + '0'.repeat(21) });
      assert.equal(theirs.error?.code, unknown.error?.code, m);
      assert.equal(theirs.error.message.replace(taskId, 'ID'), unknown.error.message.replace('tg_' + '0'.repeat(21), 'ID'), m);
    }
    assert.equal((await ask(a, 'tasks/get', { taskId })).result.status, 'working');
  } finally {
    await p.stop();
  }
});

test('the console cookie is a session id: the token is not in it, and signing out revokes it', async () => {
  const { p } = await start();
  try {
    const base = `http://127.0.0.1:${p.adminPort}`;
    const r = await fetch(`${base}/approvals/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${ALICE}` });
    assert.equal(r.status, 303);
    const cookie = r.headers.get('set-cookie').split(';')[0];
    assert.ok(!cookie.includes(ALICE));
    const who = await fetch(`${base}/api/whoami`, { headers: { cookie } });
    assert.deepEqual(await who.json(), { identity: 'alice', kind: 'approver', workflows: ['ops'] });
    assert.equal((await fetch(`${base}/approvals/logout`, { method: 'POST', headers: { cookie } })).status, 204);
    assert.equal((await fetch(`${base}/api/whoami`, { headers: { cookie } })).status, 401);
  } finally {
    await p.stop();
  }
});

test('an approver token that is the admin token is refused at startup', async () => {
  const up = await startRecordingUpstream();
  upstreams.push(up);
  const p = await startProxy(config(up), { env: { THOUGHTGATE_ADMIN_TOKEN: ALICE, TG_ALICE: ALICE, TG_BOB: BOB }, expectFailure: true });
  const { code } = await p.exited;
  assert.equal(code, 1);
  assert.match(p.logText(), /approval\.ops\.approver_tokens\.alice is the admin token/);
  assert.doesNotMatch(p.logText(), new RegExp(ALICE), 'the token itself is not logged');
});
