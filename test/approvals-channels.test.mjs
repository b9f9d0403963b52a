// Gate 4's channels and shared state through the real sidecar: Slack (the real @slack/web-api
// client against a local fake of the Web API), a signed webhook with its callback on the
// inbound port, and two replicas sharing a real redis-server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { startProxy, startRecordingUpstream, post, rawSession, sourceYaml, sleep, freePort } from './helpers.mjs';
import { startFakeSlack } from './support/fake-slack.mjs';
import { startRedis } from './support/redis.mjs';

const TOKEN = 'test-admin-token';
const closers = [];
after(async () => { for (const c of closers.reverse()) await c(); });

const call = (id, name, args = {}, extra = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...extra } });
const sawArg = (u, marker) => u.bodies.filter((b) => b.raw.includes(marker)).length;

async function api(p, method, path, body) {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}${path}`, {
    method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json().catch(() => undefined) };
}

async function until(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

const rulesFor = (workflow) => `    - match: "delete_*"\n      action: approve\n      approval: ${workflow}`;

test('Slack: the request is posted, an outsider\'s 👍 is ignored, an approver\'s 👍 releases the call, the message is updated', async () => {
  const u = await startRecordingUpstream();
  closers.push(() => u.close());
  const slackToken = 'xoxb-test-token-never-logged-1234';
  const slack = await startFakeSlack({ token: slackToken });
  closers.push(() => slack.close());
  const yaml = sourceYaml(`    url: ${u.url}`, { rules: rulesFor('ops') }) + `approval:
  ops:
    adapter: slack
    channel: "#ops-approvals"
    approvers: [U_APPROVER]
`;
  const p = await startProxy(yaml, { env: { THOUGHTGATE_SLACK_BOT_TOKEN: slackToken, THOUGHTGATE_SLACK_API_URL: slack.url, THOUGHTGATE_APPROVAL_POLL_INTERVAL_MS: '20' } });
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, call(1, 'delete_user', { user_id: 'slack-s1', password: 'hunter2' }), s.headers);
    const posted = await until('chat.postMessage', () => slack.calls.find((c) => c.method === 'chat.postMessage'));
    assert.equal(posted.params.channel, '#ops-approvals');
    const ts = [...slack.messages.keys()][0];
    const text = JSON.stringify(slack.messages.get(ts).blocks);
    assert.match(text, /delete_user/);
    assert.match(text, /slack-s1/);
    assert.doesNotMatch(text, /hunter2/, 'secret-looking values are masked');
    slack.setReactions(ts, [{ name: '+1', users: ['U_OUTSIDER'] }]);
    await until('outsider logged', () => /U_OUTSIDER/.test(p.logText()));
    assert.equal(sawArg(u, 'slack-s1'), 0, 'an outsider cannot approve');
    slack.setReactions(ts, [{ name: '+1', users: ['U_OUTSIDER'] }, { name: '+1::skin-tone-3', users: ['U_APPROVER'] }]);
    const res = await held;
    assert.equal(res.messages.at(-1).result.content[0].text, 'ran delete_user');
    assert.equal(sawArg(u, 'slack-s1'), 1);
    await until('chat.update', () => slack.calls.find((c) => c.method === 'chat.update' && c.params.ts === ts));
    assert.ok(!p.logText().includes(slackToken), 'the bot token never appears in the log');
  } finally {
    await p.stop();
  }
});

test('Slack 👎 rejects with -32007', async () => {
  const u = await startRecordingUpstream();
  closers.push(() => u.close());
  const slackToken = 'xoxb-test-token-2';
  const slack = await startFakeSlack({ token: slackToken });
  closers.push(() => slack.close());
  const yaml = sourceYaml(`    url: ${u.url}`, { rules: rulesFor('ops') }) + 'approval:\n  ops:\n    adapter: slack\n    channel: "#ops"\n';
  const p = await startProxy(yaml, { env: { THOUGHTGATE_SLACK_BOT_TOKEN: slackToken, THOUGHTGATE_SLACK_API_URL: slack.url, THOUGHTGATE_APPROVAL_POLL_INTERVAL_MS: '20' } });
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, call(2, 'delete_user', { user_id: 'slack-s2' }), s.headers);
    await until('posted', () => slack.messages.size > 0);
    slack.setReactions([...slack.messages.keys()][0], [{ name: 'thumbsdown', users: ['U_SOMEONE'] }]);
    const res = await held;
    assert.equal(res.messages.at(-1).error.code, -32007);
    assert.match(res.messages.at(-1).error.data.details, /U_SOMEONE/);
    assert.equal(sawArg(u, 'slack-s2'), 0);
  } finally {
    await p.stop();
  }
});

test('webhook: the request is POSTed signed; a signed decision on the inbound port releases the call, a forged one does not', async () => {
  const u = await startRecordingUpstream();
  closers.push(() => u.close());
  const secret = 'webhook-secret-for-tests';
  const received = [];
  const receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => receiver.close(r)));
  const inboundPort = await freePort();
  const yaml = sourceYaml(`    url: ${u.url}`, { rules: rulesFor('hook') }) + `approval:\n  hook:\n    adapter: webhook\n    url: http://127.0.0.1:${receiver.address().port}/approve\n`;
  const p = await startProxy(yaml, { env: { THOUGHTGATE_WEBHOOK_SECRET: secret, THOUGHTGATE_INBOUND_PORT: String(inboundPort), THOUGHTGATE_INBOUND_BIND: '127.0.0.1' } });
  try {
    const s = await rawSession(p.url);
    const held = post(p.url, call(3, 'delete_user', { user_id: 'hook-w1' }), s.headers);
    const req = await until('webhook post', () => received.find((r) => r.body.includes('approval.requested')));
    const ts = req.headers['x-thoughtgate-timestamp'];
    const want = 'sha256=' + createHmac('sha256', secret).update(`${ts}.${req.body}`).digest('hex');
    assert.equal(req.headers['x-thoughtgate-signature'], want, 'signed with HMAC-SHA256');
    const { id, callback_url: callback } = JSON.parse(req.body);
    assert.equal(callback, `http://127.0.0.1:${inboundPort}/approvals/${id}`);
    const sign = (body, secretKey = secret) => {
      const t = String(Math.floor(Date.now() / 1000));
      return { 'content-type': 'application/json', 'x-thoughtgate-timestamp': t, 'x-thoughtgate-signature': 'sha256=' + createHmac('sha256', secretKey).update(`${t}.${body}`).digest('hex') };
    };
    const forged = JSON.stringify({ id, decision: 'approve', by: 'mallory' });
    const bad = await fetch(callback, { method: 'POST', headers: sign(forged, 'wrong-secret'), body: forged });
    assert.equal(bad.status, 401);
    assert.equal(sawArg(u, 'hook-w1'), 0);
    const good = JSON.stringify({ id, decision: 'approve', by: 'oncall' });
    const ok = await fetch(callback, { method: 'POST', headers: sign(good), body: good });
    assert.equal(ok.status, 200);
    const res = await held;
    assert.equal(res.messages.at(-1).result.content[0].text, 'ran delete_user');
    assert.equal(sawArg(u, 'hook-w1'), 1);
  } finally {
    await p.stop();
  }
});

test('a webhook workflow without its secret refuses to start', async () => {
  const yaml = sourceYaml('    url: http://127.0.0.1:9/mcp', { rules: rulesFor('hook') }) + 'approval:\n  hook:\n    adapter: webhook\n    url: http://127.0.0.1:9/x\n    secret_env: TG_TEST_MISSING_SECRET\n';
  const p = await startProxy(yaml, { expectFailure: true });
  const { code } = await p.exited;
  assert.notEqual(code, 0);
  assert.match(p.logText(), /TG_TEST_MISSING_SECRET/);
});

test('two replicas on one redis-server: approve through A releases the call held by B; a decide race has one outcome; kill -9 keeps tasks', async (t) => {
  const redis = await startRedis();
  if (redis === null) return t.skip('redis-server not installed');
  closers.push(() => redis.stop());
  const u = await startRecordingUpstream();
  closers.push(() => u.close());
  const yaml = sourceYaml(`    url: ${u.url}`, { rules: '    - match: "delete_*"\n      action: approve' });
  const env = { THOUGHTGATE_STATE: `${redis.url}/0` };
  const a = await startProxy(yaml, { env });
  let b = await startProxy(yaml, { env });
  try {
    const sb = await rawSession(b.url);
    const held = post(b.url, call(4, 'delete_user', { user_id: 'redis-r1' }), sb.headers);
    const rec = await until('listed on A', async () => (await api(a, 'GET', '/api/approvals')).json?.find((x) => x.tool === 'delete_user'));
    assert.equal((await api(a, 'POST', `/api/approvals/${rec.id}/approve`, { by: 'alice' })).status, 200);
    const res = await held;
    assert.equal(res.messages.at(-1).result.content[0].text, 'ran delete_user');
    assert.equal(sawArg(u, 'redis-r1'), 1, 'executed once, by the replica holding it');

    // race: approve on A and reject on B at once, several times; exactly one decision each time
    for (let i = 0; i < 5; i++) {
      const marker = `race-${i}`;
      const h = post(b.url, call(10 + i, 'delete_user', { user_id: marker }), sb.headers);
      const r = await until('race listed', async () => (await api(a, 'GET', '/api/approvals')).json?.find((x) => JSON.stringify(x.arguments).includes(marker)));
      const [x, y] = await Promise.all([
        api(a, 'POST', `/api/approvals/${r.id}/approve`, { by: 'alice' }),
        api(b, 'POST', `/api/approvals/${r.id}/reject`, { by: 'bob' }),
      ]);
      assert.deepEqual([x.status, y.status].sort(), [200, 409], `one decision wins (${x.status}/${y.status})`);
      const answer = (await h).messages.at(-1);
      if (x.status === 200) {
        assert.equal(answer.result.content[0].text, 'ran delete_user');
        assert.equal(sawArg(u, marker), 1);
      } else {
        assert.equal(answer.error.code, -32007);
        assert.equal(sawArg(u, marker), 0);
      }
    }

    // a task pending on B survives B's kill -9; B comes back and completes it once approved
    const s2 = await rawSession(b.url, '2025-11-25');
    const created = await post(b.url, call(30, 'delete_user', { user_id: 'redis-k9' }, { task: {} }), s2.headers);
    const taskId = created.messages[0].result.task.taskId;
    b.proc.kill('SIGKILL');
    await b.exited;
    b = await startProxy(yaml, { env });
    assert.equal((await api(a, 'POST', `/api/approvals/${taskId}/approve`, { by: 'carol' })).status, 200);
    const s3 = await rawSession(b.url, '2025-11-25');
    const done = await until('task completed', async () => {
      const r = await post(b.url, { jsonrpc: '2.0', id: 31, method: 'tasks/result', params: { taskId } }, s3.headers);
      return r.messages[0].result ? r : undefined;
    }, 30000);
    assert.equal(done.messages[0].result.content[0].text, 'ran delete_user');
    assert.equal(sawArg(u, 'redis-k9'), 1);
  } finally {
    await a.stop();
    await b.stop();
  }
});
