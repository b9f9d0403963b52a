// The official SDK 1.x client through `thoughtgate serve` to real upstreams over Streamable HTTP:
// server-everything (lists, echo, resources, prompts, denials) and an SDK server whose tool
// waits until the client has seen its progress (proves SSE is relayed event by event).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { startProxy, startEverythingHttp, post, rawSession } from './helpers.mjs';

const HIDDEN = 'get-tiny-image';
const DENIED = 'get-sum';
let se, proxy, client;

const yaml = (url) => `schema: 1
sources:
  - id: everything
    kind: mcp
    url: ${url}
    expose:
      mode: blocklist
      tools: ["${HIDDEN}", "get-env"]
governance:
  defaults:
    action: forward
  rules:
    - match: "${DENIED}"
      action: deny
    - match: "demo://resource/static/document/*"
      action: deny
`;

async function connect(url) {
  const c = new Client({ name: 'tg-test', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return c;
}
const codeOf = async (p) => { try { await p; return null; } catch (e) { return e.code; } };

before(async () => {
  se = await startEverythingHttp();
  proxy = await startProxy(yaml(se.url));
  client = await connect(proxy.url);
});
after(async () => {
  await client?.close();
  await proxy?.stop();
  se?.stop();
});

test('initialize reaches the upstream and its server info comes back', () => {
  assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
});

test('tools/list hides exposed-away tools and keeps the rest', async () => {
  const direct = await connect(se.url);
  const all = (await direct.listTools()).tools.map((t) => t.name);
  await direct.close();
  const names = (await client.listTools()).tools.map((t) => t.name);
  assert.ok(all.includes(HIDDEN), 'upstream lists the hidden tool');
  assert.deepEqual(names, all.filter((n) => n !== HIDDEN && n !== 'get-env'));
});

test('an allowed call is forwarded and answered', async () => {
  const res = await client.callTool({ name: 'echo', arguments: { message: 'hello-proxy' } });
  assert.equal(res.content[0].text, 'Echo: hello-proxy');
});

test('a denied tool gets -32014 and a hidden one -32015, with ThoughtGate data', async () => {
  assert.equal(await codeOf(client.callTool({ name: DENIED, arguments: { a: 1, b: 2 } })), -32014);
  assert.equal(await codeOf(client.callTool({ name: HIDDEN, arguments: {} })), -32015);
  const sid = client.transport.sessionId;
  const raw = await post(proxy.url, { jsonrpc: '2.0', id: 77, method: 'tools/call', params: { name: DENIED, arguments: {} } },
    { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.equal(raw.status, 200);
  const err = raw.messages[0].error;
  assert.equal(err.message, `Tool '${DENIED}' is denied by governance rules`);
  assert.equal(err.data.error_type, 'governance_rule_denied');
  assert.equal(err.data.gate, 'governance');
  assert.equal(err.data.tool, DENIED);
  assert.match(err.data.correlation_id, /^[0-9a-f-]{36}$/);
  assert.equal(raw.messages[0].id, 77);
});

test('resources and prompts pass; a denied resource URI gets -32014', async () => {
  const resources = (await client.listResources()).resources;
  assert.ok(resources.length > 0);
  const prompts = (await client.listPrompts()).prompts;
  assert.ok(prompts.length > 0);
  const denied = resources.find((r) => r.uri.startsWith('demo://resource/static/document/'));
  assert.ok(denied, 'server-everything lists a static document resource');
  assert.equal(await codeOf(client.readResource({ uri: denied.uri })), -32014);
  const p = await client.getPrompt({ name: prompts.find((x) => !(x.arguments ?? []).some((a) => a.required)).name, arguments: {} });
  assert.ok(Array.isArray(p.messages));
});

test('every decision is one audit line and the metrics count them', async () => {
  await client.callTool({ name: 'echo', arguments: { message: 'audit-me' } });
  await codeOf(client.callTool({ name: DENIED, arguments: { a: 1, b: 2 } }));
  // The audit trail is written in batches (every 50 ms): wait for the lines, do not race them.
  let fwd, deny;
  for (let i = 0; i < 200 && !(fwd && deny); i++) {
    const lines = proxy.audit();
    fwd = lines.find((l) => l.tool === 'echo' && l.decision === 'forward');
    deny = lines.find((l) => l.tool === DENIED && l.decision === 'deny');
    if (!(fwd && deny)) await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(fwd && deny, 'forward and deny lines present');
  for (const k of ['time', 'correlation_id', 'session', 'principal', 'method', 'gate', 'mode', 'reason', 'snapshot']) assert.ok(k in deny, `audit line has ${k}`);
  assert.equal(deny.gate, 'governance');
  const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  assert.match(metrics, /^thoughtgate_requests_total\{method="tools\/call",tool_name="echo",status="success"\} [1-9]/m);
  assert.match(metrics, /^thoughtgate_decisions_total\{gate="gate2",outcome="deny"\} [1-9]/m);
  assert.match(metrics, /^thoughtgate_errors_total\{error_type="governance_rule_denied",method="tools\/call"\} [1-9]/m);
});

test('SSE is relayed event by event: the client sees progress before the upstream finishes', async () => {
  // The tool sends one progress notification, then waits until the test has seen it on the
  // client side. A proxy that buffered the stream would deliver nothing until the tool gave up.
  let clientSaw;
  const seen = new Promise((r) => { clientSaw = r; });
  const order = [];
  const server = http.createServer(async (req, res) => {
    const mcp = new McpServer({ name: 'progress-upstream', version: '1.0.0' });
    mcp.registerTool('gated', { description: 'waits for the client' }, async (extra) => {
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: extra._meta.progressToken, progress: 1, total: 2 } });
      const outcome = await Promise.race([seen.then(() => 'client saw progress first'), new Promise((r) => setTimeout(() => r('gave up waiting'), 15000))]);
      order.push(`upstream finished: ${outcome}`);
      return { content: [{ type: 'text', text: outcome }] };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { transport.close(); mcp.close(); });
    await mcp.connect(transport);
    const chunks = [];
    for await (const c of req) chunks.push(c);
    await transport.handleRequest(req, res, chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const p = await startProxy(yaml(`http://127.0.0.1:${server.address().port}/mcp`));
  try {
    const c = await connect(p.url);
    const res = await c.callTool({ name: 'gated', arguments: {} }, undefined, {
      onprogress: () => { order.push('client saw progress'); clientSaw(); },
    });
    order.push('client got result');
    await c.close();
    assert.deepEqual(order, ['client saw progress', 'upstream finished: client saw progress first', 'client got result']);
    assert.equal(res.content[0].text, 'client saw progress first');
  } finally {
    await p.stop();
    server.closeAllConnections();
    server.close();
  }
});

test('GET opens the server stream through the proxy and DELETE ends the session', async () => {
  const { sid } = await rawSession(proxy.url);
  assert.ok(sid, 'session id passed through');
  const ctl = new AbortController();
  const get = await fetch(proxy.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, signal: ctl.signal });
  assert.equal(get.status, 200);
  assert.match(get.headers.get('content-type'), /text\/event-stream/);
  ctl.abort();
  const del = await fetch(proxy.url, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } });
  assert.ok(del.status >= 200 && del.status < 300, `DELETE answered ${del.status}`);
  const after = await post(proxy.url, { jsonrpc: '2.0', id: 5, method: 'tools/list' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.ok(after.status >= 400 && after.status < 500, `the upstream forgot the session (HTTP ${after.status})`);
  assert.ok(!after.messages.some((m) => m.result), 'no result for a deleted session');
});

test('a foreign Origin is refused with 403 before anything is forwarded', async () => {
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'evil', version: '1' } } },
    { origin: 'http://evil.example' });
  assert.equal(r.status, 403);
  const ok = await post(proxy.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'local', version: '1' } } },
    { origin: `http://localhost:${proxy.port}` });
  assert.equal(ok.status, 200);
});
