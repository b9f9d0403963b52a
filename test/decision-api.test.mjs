// The decision API on the traffic port: same gates as the proxy, answered as data, never
// forwarded upstream, one snapshot per batch, a Bearer token required unless open to loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { startProxy, startRecordingUpstream, post, sourceYaml } from './helpers.mjs';

let up, proxy;
const TOKEN = 'decision-api-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const rules = `    - match: "delete_*"
      action: deny
    - match: "pay_*"
      action: approve
    - match: "file:///etc/*"
      action: deny`;
const expose = `    expose:
      mode: blocklist
      tools: ["secret_*"]`;

before(async () => {
  up = await startRecordingUpstream();
  proxy = await startProxy(sourceYaml(`    url: ${up.url}`, { rules, expose }), { env: { THOUGHTGATE_API_TOKEN: TOKEN } });
});
after(async () => {
  await proxy?.stop();
  up?.close();
});

const api = async (p, path, body, headers = AUTH, host = '127.0.0.1') => {
  const r = await fetch(`http://${host}:${p.port}/api/v1/governance/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, body: await r.json(), wwwAuthenticate: r.headers.get('www-authenticate') };
};

/** A non-loopback IPv4 address of this machine that reaches a 0.0.0.0 listener, if any. */
const external = () => Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

test('batch: seed 003 shape, decisions with gate, reason and latency, one snapshot and trace id', async () => {
  const r = await api(proxy, 'batch', { actions: [
    { tool: 'echo', arguments: { a: 1 } },
    { name: 'delete_user' },
    { method: 'tools/call', params: { name: 'secret_dump', arguments: {} } },
    { tool_name: 'pay_invoice' },
    { method: 'resources/read', uri: 'file:///etc/passwd' },
    { method: 'tools/list' },
  ] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.results.map((x) => x.decision), ['forward', 'deny', 'deny', 'approve', 'deny', 'forward']);
  assert.deepEqual(r.body.results.map((x) => x.gate), ['governance', 'governance', 'visibility', 'governance', 'governance', null]);
  assert.deepEqual(r.body.results.map((x) => x.error_code), [undefined, -32014, -32015, undefined, -32014, undefined]);
  for (const x of r.body.results) {
    assert.equal(typeof x.reason, 'string');
    assert.ok(x.latency_us >= 0);
  }
  assert.match(r.body.snapshot, /^[0-9a-f]{12}$/);
  assert.match(r.body.trace_id, /^[0-9a-f-]{36}$/);
  assert.equal(up.bodies.length, 0, 'nothing reached the upstream');
});

test('decide: one action, bare or wrapped', async () => {
  const a = await api(proxy, 'decide', { tool: 'delete_all' });
  assert.equal(a.body.decision, 'deny');
  assert.equal(a.body.rule, 'delete_*');
  const b = await api(proxy, 'decide', { action: { tool: 'echo' } });
  assert.equal(b.body.decision, 'forward');
  assert.equal(b.body.snapshot, a.body.snapshot);
});

test('bad requests get clear 4xx answers', async () => {
  assert.equal((await api(proxy, 'batch', '{not json')).status, 400);
  assert.equal((await api(proxy, 'batch', { actions: [] })).status, 400);
  assert.equal((await api(proxy, 'batch', { nope: 1 })).status, 400);
  assert.equal((await api(proxy, 'decide', { arguments: {} })).status, 400);
  assert.equal((await api(proxy, 'decide', { method: 'resources/read' })).status, 400);
  assert.equal((await api(proxy, 'batch', { actions: Array.from({ length: 101 }, () => ({ tool: 'echo' })) })).status, 413);
  assert.equal((await api(proxy, 'batch', { actions: Array.from({ length: 100 }, () => ({ tool: 'echo' })) })).status, 200);
  const unknown = await fetch(`http://127.0.0.1:${proxy.port}/api/v1/governance/other`, { method: 'POST', body: '{}', headers: AUTH });
  assert.equal(unknown.status, 404);
  const get = await fetch(`http://127.0.0.1:${proxy.port}/api/v1/governance/batch`, { headers: AUTH });
  assert.equal(get.status, 405);
  assert.equal(up.bodies.length, 0, 'the reserved prefix is never forwarded');
});

test('the API and the proxy path agree on every call of a corpus', async () => {
  const corpus = ['echo', 'get_time', 'delete_user', 'delete_', 'secret_dump', 'secret', 'pay_invoice', 'DELETE_user', 'a/b', 'delete_*', 'sécrèt', ''];
  const r = await api(proxy, 'batch', { actions: corpus.map((tool) => ({ method: 'tools/call', params: { name: tool } })) });
  for (let i = 0; i < corpus.length; i++) {
    // As a task, so a call that needs approval answers at once (with its task) instead of being held.
    const res = await post(proxy.url, { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: corpus[i], arguments: {}, task: {} } }, { 'mcp-protocol-version': '2025-06-18' });
    const viaProxy = res.messages[0];
    const viaApi = r.body.results[i];
    if ('error' in viaApi) continue; // '' names nothing: the API refuses it as an action
    if (viaApi.decision === 'forward') assert.ok(viaProxy.result && !viaProxy.result.task, `${corpus[i]}: API forward, proxy ${JSON.stringify(viaProxy)}`);
    else if (viaApi.decision === 'deny') assert.equal(viaProxy.error?.code, viaApi.error_code, corpus[i]);
    else assert.equal(viaProxy.result?.task?.status, 'working', `${corpus[i]}: approve is held as a task`);
  }
});

test('a batch is judged on one snapshot even while reloads land', async () => {
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_API_TOKEN: TOKEN } });
  try {
    const configs = [sourceYaml(`    url: ${up.url}`), sourceYaml(`    url: ${up.url}`, { rules: `    - match: "*"\n      action: deny` })];
    let flips = 0;
    const flipper = setInterval(() => { writeFileSync(p.cfg, configs[++flips % 2]); p.proc.kill('SIGHUP'); }, 15);
    const seen = new Set();
    try {
      for (let k = 0; k < 30; k++) {
        const r = await api(p, 'batch', { actions: Array.from({ length: 100 }, (_, i) => ({ tool: `tool_${i}` })) });
        const kinds = new Set(r.body.results.map((x) => x.decision));
        assert.equal(kinds.size, 1, `batch ${k} mixed decisions from two snapshots: ${[...kinds]}`);
        seen.add(`${r.body.snapshot}:${[...kinds][0]}`);
      }
    } finally {
      clearInterval(flipper);
    }
    // each snapshot version always maps to the same decision
    const bySnapshot = new Map();
    for (const s of seen) {
      const [v, d] = s.split(':');
      assert.ok(!bySnapshot.has(v) || bySnapshot.get(v) === d);
      bySnapshot.set(v, d);
    }
  } finally {
    await p.stop();
  }
});

test('THOUGHTGATE_API_TOKEN requires a Bearer token', async () => {
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_API_TOKEN: 's3cret-token' } });
  try {
    const none = await api(p, 'decide', { tool: 'echo' }, {});
    assert.equal(none.status, 401);
    assert.equal(none.wwwAuthenticate, 'Bearer');
    assert.equal((await api(p, 'decide', { tool: 'echo' }, { authorization: 'Bearer wrong' })).status, 401);
    const ok = await api(p, 'decide', { tool: 'echo' }, { authorization: 'Bearer s3cret-token' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.decision, 'forward');
    // the scheme is case-insensitive (RFC 9110), blanks around the token are allowed
    for (const h of ['bearer s3cret-token', 'BEARER s3cret-token', 'BeArEr \ts3cret-token ']) {
      assert.equal((await api(p, 'decide', { tool: 'echo' }, { authorization: h })).status, 200, h);
    }
    // … but it is still that scheme and exactly that token
    for (const h of ['Basic s3cret-token', 'Bearers3cret-token', 'Bearer s3cret-token extra', 'Bearer S3CRET-TOKEN', 's3cret-token']) {
      assert.equal((await api(p, 'decide', { tool: 'echo' }, { authorization: h })).status, 401, h);
    }
  } finally {
    await p.stop();
  }
});

test('no THOUGHTGATE_API_TOKEN: decide and batch refuse every caller, saying how to configure it', async () => {
  const p = await startProxy(sourceYaml(`    url: ${up.url}`, { rules }));
  const seenBefore = up.bodies.length;
  try {
    for (const [path, body] of [['decide', { tool: 'delete_user' }], ['batch', { actions: [{ tool: 'delete_user' }] }]]) {
      for (const headers of [{}, { authorization: 'Bearer anything' }]) {
        const r = await api(p, path, body, headers);
        assert.equal(r.status, 403, path);
        assert.equal(r.body.error, 'api_token_not_configured');
        assert.match(r.body.message, /THOUGHTGATE_API_TOKEN/);
        assert.match(r.body.message, /THOUGHTGATE_API_OPEN=loopback/);
        assert.ok(!('decision' in r.body) && !('results' in r.body), 'no decision is given away');
      }
    }
    assert.match(p.logText(), /"decision_api":"closed \(set THOUGHTGATE_API_TOKEN\)"/, 'the start says the API is closed');
    assert.equal(up.bodies.length, seenBefore, 'nothing was forwarded');
  } finally {
    await p.stop();
  }
});

test('THOUGHTGATE_API_OPEN=loopback: a loopback caller needs no token, any other caller still does', async (t) => {
  const p = await startProxy(sourceYaml(`    url: ${up.url}`, { rules }), { env: { THOUGHTGATE_API_OPEN: 'loopback', THOUGHTGATE_BIND: '0.0.0.0' } });
  const q = await startProxy(sourceYaml(`    url: ${up.url}`, { rules }), { env: { THOUGHTGATE_API_OPEN: 'loopback', THOUGHTGATE_API_TOKEN: TOKEN, THOUGHTGATE_BIND: '0.0.0.0' } });
  try {
    const local = await api(p, 'decide', { tool: 'delete_user' }, {});
    assert.equal(local.status, 200);
    assert.equal(local.body.decision, 'deny');
    assert.equal((await api(q, 'batch', { actions: [{ tool: 'echo' }] }, {})).status, 200, 'loopback, with a token configured too');
    const addr = external();
    if (addr === undefined) return t.skip('no non-loopback IPv4 address on this machine');
    const remote = await api(p, 'decide', { tool: 'delete_user' }, {}, addr);
    assert.equal(remote.status, 403, `a caller from ${addr} is not loopback`);
    assert.ok(!('decision' in remote.body));
    assert.equal((await api(q, 'decide', { tool: 'echo' }, {}, addr)).status, 401, 'not loopback: the token is required');
    assert.equal((await api(q, 'decide', { tool: 'echo' }, AUTH, addr)).status, 200, 'not loopback, with the token');
  } finally {
    await p.stop();
    await q.stop();
  }
});
