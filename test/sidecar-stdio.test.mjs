// A `command:` source: the sidecar spawns server-everything over stdio, one child per MCP
// session, and governs it over HTTP for SDK clients of both eras.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { startProxy, post, rawSession, sleep, EVERYTHING } from './helpers.mjs';

const yaml = `schema: 1
sources:
  - id: everything
    kind: mcp
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(EVERYTHING)}, "stdio"]
    expose:
      mode: blocklist
      tools: ["get-tiny-image", "get-env"]
governance:
  defaults:
    action: forward
  rules:
    - match: "get-sum"
      action: deny
`;
let proxy;
const codeOf = async (p) => { try { await p; return null; } catch (e) { return e.code; } };
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
/** pids of stdio children the proxy logged as started */
const childPids = (p) => p.logText().split('\n').filter((l) => l.includes('stdio server started for new session')).map((l) => JSON.parse(l).pid);
async function waitGone(pid) {
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  return !alive(pid);
}

before(async () => {
  proxy = await startProxy(yaml, { env: { THOUGHTGATE_MAX_STDIO_SESSIONS: '3' } });
});
after(async () => {
  await proxy?.stop();
});

test('SDK 1.x client: initialize spawns a server; lists filtered, echo, denials, progress', async () => {
  const c = new Client({ name: 'stdio-test', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(proxy.url)));
  try {
    assert.equal(c.getServerVersion()?.name, 'mcp-servers/everything');
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('get-sum'));
    assert.ok(!names.includes('get-tiny-image') && !names.includes('get-env'));
    assert.equal((await c.callTool({ name: 'echo', arguments: { message: 'via-stdio' } })).content[0].text, 'Echo: via-stdio');
    assert.equal(await codeOf(c.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), -32014);
    assert.equal(await codeOf(c.callTool({ name: 'get-tiny-image', arguments: {} })), -32015);
    const events = [];
    const res = await c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
      onprogress: (p) => events.push(p.progress),
    });
    events.push('result');
    assert.deepEqual(events, [1, 2, 3, 'result'], 'progress relayed in order before the result');
    assert.match(res.content[0].text, /completed/i);
    assert.ok((await c.listResources()).resources.length > 0);
    assert.ok((await c.listPrompts()).prompts.length > 0);
  } finally {
    await c.close();
  }
});

test('a v2 client on 2026-07-28 is served by a pooled child the sidecar initialized', async () => {
  const c = new V2Client({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await c.connect(new V2Transport(new URL(proxy.url)));
  try {
    assert.equal(c.getNegotiatedProtocolVersion(), '2026-07-28');
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && !names.includes('get-tiny-image'));
    assert.equal((await c.callTool({ name: 'echo', arguments: { message: 'modern-stdio' } })).content[0].text, 'Echo: modern-stdio');
    assert.equal(await codeOf(c.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), -32014);
  } finally {
    await c.close();
  }
});

test('DELETE ends the session and its server process; the id is then unknown (404)', async () => {
  const before = childPids(proxy).length;
  const { headers, sid } = await rawSession(proxy.url);
  const pid = childPids(proxy).slice(before)[0];
  assert.ok(pid && alive(pid), 'a child was spawned for the session');
  const del = await fetch(proxy.url, { method: 'DELETE', headers });
  assert.equal(del.status, 200);
  assert.ok(await waitGone(pid), 'the child exited');
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, headers);
  assert.equal(r.status, 404);
  assert.ok(sid);
});

test('requests without a session id are refused, not sent to some child', async () => {
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }, { 'mcp-protocol-version': '2025-06-18' });
  assert.equal(r.status, 400);
});

test('the session cap answers -32009 past the limit, and a freed slot is reusable', async () => {
  const p = await startProxy(yaml, { env: { THOUGHTGATE_MAX_STDIO_SESSIONS: '3' } });
  const sessions = [];
  for (let i = 0; i < 3; i++) sessions.push(await rawSession(p.url));
  const over = await post(p.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
  assert.equal(over.messages[0].error.code, -32009);
  assert.ok(over.messages[0].error.data.retry_after > 0);
  await fetch(p.url, { method: 'DELETE', headers: sessions[0].headers });
  const again = await rawSession(p.url);
  assert.ok(again.sid, 'a freed slot takes a new session');
  await p.stop();
});

test('SIGTERM ends every child the sidecar spawned', async () => {
  const p = await startProxy(yaml);
  await rawSession(p.url);
  await rawSession(p.url);
  const pids = childPids(p);
  assert.equal(pids.length, 2);
  assert.ok(pids.every(alive));
  const { code } = await p.stop();
  assert.equal(code, 0);
  for (const pid of pids) assert.ok(await waitGone(pid), `child ${pid} ended`);
});

test('an idle session past THOUGHTGATE_STDIO_IDLE_TIMEOUT_SECS has its server ended; the id is then unknown', async () => {
  const p = await startProxy(yaml, { env: { THOUGHTGATE_STDIO_IDLE_TIMEOUT_SECS: '1' } });
  try {
    const { headers } = await rawSession(p.url);
    const [pid] = childPids(p);
    assert.ok(alive(pid));
    for (let i = 0; i < 200 && alive(pid); i++) await sleep(50);
    assert.equal(alive(pid), false, 'the idle child was ended');
    assert.match(p.logText(), /stdio session idle; ending its server/);
    const r = await post(p.url, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, headers);
    assert.equal(r.status, 404);
  } finally {
    await p.stop();
  }
});

const envYaml = (extra) => `schema: 1
sources:
  - id: everything
    kind: mcp
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(EVERYTHING)}, "stdio"]
${extra}
governance:
  defaults:
    action: forward
`;

test('the stdio server gets PATH, HOME, locale, its env: and env_passthrough; none of our settings or secrets', async () => {
  const secrets = {
    THOUGHTGATE_ADMIN_TOKEN: 'stdio-env-admin-token-1',
    THOUGHTGATE_SLACK_BOT_TOKEN: 'xoxb-stdio-env-slack-2',
    THOUGHTGATE_WEBHOOK_SECRET: 'stdio-env-webhook-3',
    THOUGHTGATE_API_TOKEN: 'stdio-env-api-token-4',
  };
  const p = await startProxy(envYaml(`    env:
      FROM_CONFIG: "configured"
    env_passthrough: [OPERATOR_PASSED, NOT_SET_ANYWHERE]`), {
    env: { ...secrets, OPERATOR_PASSED: 'passed-by-name', NOT_PASSED: 'stays-with-the-proxy', LANG: 'C.UTF-8', HOME: '/home/tg-test' },
  });
  try {
    const { headers } = await rawSession(p.url);
    const r = await post(p.url, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'get-env', arguments: {} } }, headers);
    const text = r.messages[0].result.content[0].text;
    const env = JSON.parse(text);
    assert.deepEqual(Object.keys(env).filter((k) => /^thoughtgate_/i.test(k)), [], 'no THOUGHTGATE_* variable');
    for (const [k, v] of Object.entries(secrets)) assert.ok(!text.includes(v), `${k}'s value reached the server`);
    assert.equal(typeof env.PATH, 'string');
    assert.equal(env.HOME, '/home/tg-test');
    assert.equal(env.LANG, 'C.UTF-8');
    assert.equal(env.FROM_CONFIG, 'configured');
    assert.equal(env.OPERATOR_PASSED, 'passed-by-name');
    assert.ok(!('NOT_PASSED' in env) && !('NOT_SET_ANYWHERE' in env));
  } finally {
    await p.stop();
  }
});

test('a config that would hand the server one of our variables or credentials is refused at startup', async () => {
  const cases = [
    [`    env_passthrough: [THOUGHTGATE_ADMIN_TOKEN]`, {}, /env_passthrough.*'THOUGHTGATE_ADMIN_TOKEN' is ThoughtGate's own setting/],
    [`    env:\n      T: "\${THOUGHTGATE_ADMIN_TOKEN}"`, {}, /sources\[everything\]\.env: 'T' is set to one of ThoughtGate's own credentials/],
    [`    env_passthrough: [COPY]`, { COPY: 'test-admin-token' }, /sources\[everything\]\.env_passthrough: 'COPY' has the value of one of ThoughtGate's own credentials/],
  ];
  for (const [extra, env, message] of cases) {
    const p = await startProxy(envYaml(extra), { env, expectFailure: true });
    const { code } = await p.exited;
    assert.equal(code, 1, extra);
    assert.match(p.logText(), message);
  }
});

test('a JSON-RPC batch on a 2025-03-26 session: each element reaches the child and is answered in place; the process lives on', async () => {
  // It used to end the process (a batch carries no single-message route to the child).
  const { headers } = await rawSession(proxy.url, '2025-03-26');
  const r = await post(proxy.url, [
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'batch-one' } } },
    { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'x', progress: 1 } },
    { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'get-sum', arguments: { a: 1, b: 2 } } },
    { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { message: 'batch-two' } } },
  ], headers);
  assert.equal(r.status, 200, r.text.slice(0, 200));
  const byId = new Map(r.messages.map((m) => [m.id, m]));
  assert.equal(byId.get(2)?.result?.content?.[0]?.text, 'Echo: batch-one');
  assert.equal(byId.get(3)?.error?.code, -32014, 'a denied element is answered in place');
  assert.equal(byId.get(4)?.result?.content?.[0]?.text, 'Echo: batch-two');
  assert.equal(r.messages.length, 3, 'the notification has no answer');
  assert.equal(proxy.proc.exitCode, null);
  const next = await rawSession(proxy.url, '2025-06-18');
  const after = await post(proxy.url, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { message: 'after-batch' } } }, next.headers);
  assert.equal(after.messages.find((m) => m.id === 5)?.result?.content?.[0]?.text, 'Echo: after-batch');
});
