// MCP 2026-07-28 (stateless) with the v2 SDK on both ends, a 2025-era SDK 1.x client beside it
// on the same proxy and upstream. The upstream records what it received.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { McpServer, createMcpHandler, fromJsonSchema } from '@modelcontextprotocol/server';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startProxy, post, sourceYaml, blocklist, rule } from './helpers.mjs';

const MODERN = '2026-07-28';
let upstream, proxy, received;

async function startV2Upstream() {
  received = [];
  const factory = () => {
    const s = new McpServer({ name: 'v2-upstream', version: '1.0.0' });
    s.registerTool('echo', { description: 'echo', inputSchema: fromJsonSchema({ type: 'object', properties: { message: { type: 'string' } }, required: ['message'] }) },
      async (args) => ({ content: [{ type: 'text', text: String(args.message) }] }));
    for (const name of ['get_time', 'delete_user', 'secret_dump']) {
      s.registerTool(name, { description: name, inputSchema: fromJsonSchema({ type: 'object' }) }, async () => ({ content: [{ type: 'text', text: `${name} ran` }] }));
    }
    return s;
  };
  const handler = createMcpHandler(factory, { legacy: 'stateless', onerror: () => {} });
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    received.push({ method: req.method, headers: { ...req.headers }, raw: raw.toString('utf8') });
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    const r = await handler.fetch(new Request(`http://127.0.0.1${req.url}`, { method: req.method, headers, body: req.method === 'GET' || req.method === 'DELETE' ? undefined : raw }));
    const out = {};
    r.headers.forEach((v, k) => { out[k] = v; });
    res.writeHead(r.status, out);
    if (r.body) for await (const chunk of r.body) res.write(chunk);
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => { handler.close().catch(() => {}); server.closeAllConnections(); server.close(); } };
}

const got = (from, text) => received.slice(from).some((r) => r.raw.includes(text));
const codeOf = async (p) => { try { await p; return null; } catch (e) { return e.code; } };
const META = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };

before(async () => {
  upstream = await startV2Upstream();
  proxy = await startProxy(sourceYaml(`    url: ${upstream.url}`, { expose: blocklist('secret_*'), rules: rule('delete_*', 'deny') }));
});
after(async () => {
  await proxy?.stop();
  upstream?.close();
});

test('a v2 client pinned to 2026-07-28 discovers, lists (filtered) and calls through the proxy', async () => {
  const c = new V2Client({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await c.connect(new V2Transport(new URL(proxy.url)));
  try {
    assert.equal(c.getNegotiatedProtocolVersion(), MODERN);
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.deepEqual(names.sort(), ['delete_user', 'echo', 'get_time']);
    const res = await c.callTool({ name: 'echo', arguments: { message: 'modern-hello' } });
    assert.equal(res.content[0].text, 'modern-hello');
    for (const [name, code] of [['delete_user', -32014], ['secret_dump', -32015]]) {
      const from = received.length;
      assert.equal(await codeOf(c.callTool({ name, arguments: {} })), code);
      assert.equal(got(from, name), false, `${name} never reached the upstream`);
    }
    assert.equal(received.some((r) => r.headers['mcp-session-id']), false, 'no session id on the modern wire');
  } finally {
    await c.close();
  }
});

test('Mcp-Name and Mcp-Method that contradict the body are refused before the upstream', async () => {
  const headers = { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call' };
  let from = received.length;
  const one = await post(proxy.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_user', arguments: {}, _meta: META } }, { ...headers, 'mcp-name': 'echo' });
  assert.equal(one.status, 400);
  assert.equal(one.messages[0].error.code, -32020);
  assert.equal(got(from, 'delete_user'), false);
  from = received.length;
  const two = await post(proxy.url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'mismatch-2' }, _meta: META } }, { ...headers, 'mcp-name': 'get_time' });
  assert.equal(two.status, 400);
  assert.equal(got(from, 'mismatch-2'), false);
  from = received.length;
  const three = await post(proxy.url, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'missing-name' }, _meta: META } }, headers);
  assert.equal(three.status, 400, 'a modern request without the required Mcp-Name is refused');
  assert.equal(got(from, 'missing-name'), false);
  from = received.length;
  const ok = await post(proxy.url, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { message: 'consistent-4' }, _meta: META } }, { ...headers, 'mcp-name': 'echo' });
  assert.equal(ok.status, 200);
  assert.equal(ok.messages[0].result.content[0].text, 'consistent-4');
  assert.equal(got(from, 'consistent-4'), true);
});

test('a 2025-era SDK 1.x client works beside it on the same proxy', async () => {
  const c = new Client({ name: 'legacy', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(proxy.url)));
  try {
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && !names.includes('secret_dump'));
    const res = await c.callTool({ name: 'echo', arguments: { message: 'legacy-hello' } });
    assert.equal(res.content[0].text, 'legacy-hello');
    assert.equal(await codeOf(c.callTool({ name: 'delete_user', arguments: {} })), -32014);
  } finally {
    await c.close();
  }
});

test('2026-07-28: a call that needs approval is held open and answered with the upstream result once approved', async () => {
  const p = await startProxy(sourceYaml(`    url: ${upstream.url}`, { rules: rule('get_*', 'approve') }));
  const c = new V2Client({ name: 'modern-held', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  try {
    await c.connect(new V2Transport(new URL(p.url)));
    const from = received.length;
    const pending = c.callTool({ name: 'get_time', arguments: {} });
    const auth = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
    let rec;
    for (let i = 0; i < 200 && !rec; i++) {
      rec = (await (await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals`, { headers: auth })).json())[0];
      if (!rec) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(rec.tool, 'get_time');
    assert.equal(got(from, '"get_time"'), false, 'held: not forwarded before the decision');
    assert.equal((await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals/${rec.id}/approve`, { method: 'POST', headers: auth, body: '{"by":"m"}' })).status, 200);
    const res = await pending;
    assert.equal(res.content[0].text, 'get_time ran');
  } finally {
    await c.close();
    await p.stop();
  }
});
