// Stateless 2026-07-28 requests to `url:` sources speak each server's own era: server-everything
// over Streamable HTTP (1.x SDK, 2025 only: it answers a sessionless request 400 "Server not
// initialized") is served through a 2025 session the sidecar opens, requests translated to the
// 2025 shape and answers back; the v2 SDK fixture (speaks 2026-07-28) gets them as they are. A
// recording forwarder between the proxy and each server shows what reached it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { startProxy, post, sourceYaml, blocklist, rule, freePort, sleep, EVERYTHING } from './helpers.mjs';
import { startV2Server } from './fixtures/v2-server.mjs';

const MODERN = '2026-07-28';
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const INITIALIZE = { jsonrpc: '2.0', id: 'i', method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'direct', version: '1' } } };
const codeOf = async (p) => { try { await p; return null; } catch (e) { return e.code; } };

/** A raw stateless request with the headers 2026-07-28 requires. */
async function modern(url, id, method, params = {}) {
  const headers = { 'mcp-protocol-version': MODERN, 'mcp-method': method };
  if (method === 'tools/call') headers['mcp-name'] = params.name;
  const r = await post(url, { jsonrpc: '2.0', id, method, params: { ...params, _meta: { ...ENVELOPE, ...params._meta } } }, headers);
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.equal(r.messages.length, 1, r.text.slice(0, 300));
  return r.messages[0];
}

/** server-everything over Streamable HTTP on `port` (a restart reuses it). */
async function everythingOn(port) {
  const proc = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; ; i++) {
    try { await fetch(url, { signal: AbortSignal.timeout(1000) }); break; } catch {}
    if (i > 150) { proc.kill('SIGKILL'); throw new Error('server-everything did not start'); }
    await sleep(100);
  }
  return { url, stop: () => new Promise((r) => { proc.once('exit', r); proc.kill('SIGKILL'); }) };
}

/**
 * An HTTP forwarder to `target` that records each request (headers and parsed body) and streams
 * the answer back. A new connection per request (no agent), so a restarted server is met fresh.
 */
async function recorder(target) {
  const seen = [];
  const t = new URL(target);
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    let body;
    try { body = JSON.parse(raw.toString('utf8')); } catch {}
    seen.push({ method: req.method, headers: { ...req.headers }, body });
    const out = http.request({ host: t.hostname, port: t.port, path: t.pathname, method: req.method, headers: req.headers, agent: false }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    out.on('error', () => { if (!res.headersSent) res.writeHead(502).end(); else res.destroy(); });
    out.end(raw);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/mcp`, seen,
    close: () => { server.closeAllConnections(); server.close(); },
  };
}

/** Asks `url` directly, no proxy between: its own answer. */
async function direct(url, message, headers = {}) {
  const r = await post(url, message, headers);
  return { ...r.messages[0], sessionId: r.headers.get('mcp-session-id') };
}

const ourInitializes = (rec) => rec.seen.filter((s) => s.body?.method === 'initialize' && s.body.params?.clientInfo?.name === 'thoughtgate');
const named = (rec, name) => rec.seen.filter((s) => s.body?.params?.name === name);

const everythingYaml = (url) => sourceYaml(`    url: ${url}`, { expose: blocklist('get-tiny-image'), rules: rule('get-sum', 'deny') });

let everything, evRec, lean, undici, v2, v2Rec, v2Proxy;
before(async () => {
  everything = await everythingOn(await freePort());
  v2 = await startV2Server();
  [evRec, v2Rec] = await Promise.all([recorder(everything.url), recorder(v2.url)]);
  [lean, undici, v2Proxy] = await Promise.all([
    startProxy(everythingYaml(evRec.url)),
    startProxy(everythingYaml(evRec.url), { env: { THOUGHTGATE_UPSTREAM_CLIENT: 'undici' } }),
    startProxy(sourceYaml(`    url: ${v2Rec.url}`, { expose: blocklist('test_image_content'), rules: rule('test_error_handling', 'deny') })),
  ]);
});
after(async () => {
  await Promise.all([lean?.stop(), undici?.stop(), v2Proxy?.stop()]);
  evRec?.close();
  v2Rec?.close();
  v2?.close();
  await everything?.stop();
});

for (const [label, proxy] of [['lean client', () => lean], ['undici', () => undici]]) {
  test(`server-everything (2025 only) through the ${label}: discover, list, call answer in the 2026-07-28 shape`, async () => {
    const p = proxy();
    const init = await direct(everything.url, INITIALIZE);
    const discover = await modern(p.url, 'd1', 'server/discover');
    assert.equal(discover.id, 'd1');
    assert.deepEqual(discover.result.capabilities, init.result.capabilities, 'discover carries what initialize answered');
    assert.deepEqual(discover.result.supportedVersions, [MODERN]);
    assert.equal(discover.result.resultType, 'complete');
    assert.equal(discover.result._meta['io.modelcontextprotocol/serverInfo'].name, init.result.serverInfo.name);

    const list = await modern(p.url, 'l1', 'tools/list');
    assert.equal(list.id, 'l1');
    const names = list.result.tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('get-sum'));
    assert.equal(names.includes('get-tiny-image'), false, 'hidden by expose');
    assert.equal(list.result.resultType, 'complete');
    assert.equal(list.result.ttlMs, 0);
    assert.equal(list.result.cacheScope, 'private');

    const call = await modern(p.url, 'c1', 'tools/call', { name: 'echo', arguments: { message: label }, _meta: { progressToken: 'pt' } });
    assert.equal(call.id, 'c1');
    assert.equal(call.result.content[0].text, `Echo: ${label}`);
    assert.equal(call.result.resultType, 'complete');
    assert.equal(call.result._meta['io.modelcontextprotocol/serverInfo'].name, init.result.serverInfo.name);

    // What server-everything received: the 2025 shape inside our session, ids of ours.
    const sent = evRec.seen.filter((s) => s.body?.params?.arguments?.message === label);
    assert.equal(sent.length, 1);
    assert.equal(sent[0].headers['mcp-protocol-version'], '2025-11-25');
    assert.ok(sent[0].headers['mcp-session-id']);
    assert.notEqual(sent[0].body.id, 'c1');
    assert.deepEqual(sent[0].body.params._meta, { progressToken: 'pt' }, 'the envelope was lifted; other _meta kept');
    assert.equal(evRec.seen.some((s) => s.body?.method === 'server/discover' && s.headers['mcp-session-id']), false, 'discover was answered from initialize');

    assert.equal((await modern(p.url, 'x1', 'tools/call', { name: 'get-sum', arguments: { a: 1, b: 2 } })).error.code, -32014);
    assert.equal((await modern(p.url, 'x2', 'tools/call', { name: 'get-tiny-image', arguments: {} })).error.code, -32015);
    assert.deepEqual(named(evRec, 'get-sum'), [], 'a denied tool is never forwarded');
    assert.deepEqual(named(evRec, 'get-tiny-image'), [], 'a hidden tool is never forwarded');
  });
}

test('each proxy probed once and opened one session for all its stateless requests', () => {
  for (const p of [lean, undici]) {
    assert.equal(p.logText().split('\n').filter((l) => l.includes('upstream speaks only 2025 revisions')).length, 1);
    assert.equal(p.logText().split('\n').filter((l) => l.includes('opened a 2025 session with the upstream')).length, 1);
  }
  assert.equal(ourInitializes(evRec).length, 2, 'one initialize of ours per proxy');
});

test('a v2 client pinned to 2026-07-28 lists and calls echo on server-everything through the proxy', async () => {
  const c = new V2Client({ name: 'pinned', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await c.connect(new V2Transport(new URL(lean.url)));
  try {
    assert.equal(c.getNegotiatedProtocolVersion(), MODERN);
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && !names.includes('get-tiny-image'));
    assert.equal((await c.callTool({ name: 'echo', arguments: { message: 'pinned' } })).content[0].text, 'Echo: pinned');
    assert.equal(await codeOf(c.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), -32014);
  } finally {
    await c.close();
  }
  assert.deepEqual(named(evRec, 'get-sum'), []);
});

test('a 2025 session client works beside the stateless traffic, in its own session', async () => {
  const legacy = new Client({ name: 'legacy', version: '1.0.0' });
  await legacy.connect(new StreamableHTTPClientTransport(new URL(lean.url)));
  try {
    const [a, b] = await Promise.all([
      legacy.callTool({ name: 'echo', arguments: { message: 'session' } }),
      modern(lean.url, 'side', 'tools/call', { name: 'echo', arguments: { message: 'stateless-side' } }),
    ]);
    assert.equal(a.content[0].text, 'Echo: session');
    assert.equal(b.result.content[0].text, 'Echo: stateless-side');
    assert.equal(await codeOf(legacy.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), -32014);
    const theirs = evRec.seen.find((s) => s.body?.params?.arguments?.message === 'session');
    const ours = evRec.seen.find((s) => s.body?.params?.arguments?.message === 'stateless-side');
    assert.ok(theirs.headers['mcp-session-id']);
    assert.notEqual(theirs.headers['mcp-session-id'], ours.headers['mcp-session-id'], 'the session client has its own session');
  } finally {
    await legacy.close();
  }
});

test('server-everything restarted on the same port: the proxy initializes once more and goes on', async () => {
  const port = new URL(everything.url).port;
  const before = ourInitializes(evRec).length;
  await everything.stop();
  everything = await everythingOn(port);
  // Concurrent requests all meet the forgotten session; one initialize serves them all.
  const answers = await Promise.all([1, 2, 3, 4].map((i) => modern(lean.url, `r${i}`, 'tools/call', { name: 'echo', arguments: { message: `after-restart-${i}` } })));
  for (const [i, a] of answers.entries()) assert.equal(a.result.content[0].text, `Echo: after-restart-${i + 1}`);
  assert.equal(ourInitializes(evRec).length, before + 1, 'one new initialize');
  assert.equal(lean.logText().split('\n').filter((l) => l.includes('upstream forgot our 2025 session')).length, 1);
  const list = await modern(lean.url, 'after', 'tools/list');
  assert.ok(list.result.tools.some((t) => t.name === 'echo'));
  assert.equal(ourInitializes(evRec).length, before + 1);
});

test('the v2 server (speaks 2026-07-28) gets stateless requests as they are: nothing translated', async () => {
  const own = await direct(v2.url, { jsonrpc: '2.0', id: 'own', method: 'server/discover', params: { _meta: ENVELOPE } }, { 'mcp-protocol-version': MODERN, 'mcp-method': 'server/discover' });
  const discover = await modern(v2Proxy.url, 'd', 'server/discover');
  assert.deepEqual(discover.result, own.result, 'its own discover answer');
  assert.ok(discover.result.supportedVersions.includes(MODERN));

  const ownCall = await direct(v2.url, { jsonrpc: '2.0', id: 'own', method: 'tools/call', params: { name: 'echo', arguments: { message: 'v2' }, _meta: ENVELOPE } }, { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
  const call = await modern(v2Proxy.url, 'c', 'tools/call', { name: 'echo', arguments: { message: 'v2' } });
  assert.deepEqual(call.result, ownCall.result);

  const list = await modern(v2Proxy.url, 'l', 'tools/list');
  const names = list.result.tools.map((t) => t.name);
  assert.ok(names.includes('echo') && !names.includes('test_image_content'));
  assert.equal((await modern(v2Proxy.url, 'x', 'tools/call', { name: 'test_error_handling', arguments: {} })).error.code, -32014);
  assert.deepEqual(named(v2Rec, 'test_error_handling'), []);

  const c = new V2Client({ name: 'pinned', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await c.connect(new V2Transport(new URL(v2Proxy.url)));
  try {
    assert.equal((await c.callTool({ name: 'echo', arguments: { message: 'sdk' } })).content[0].text, 'Echo: sdk');
  } finally {
    await c.close();
  }

  // What it received: the 2026 envelope and headers on every POST, no session, no initialize.
  const posts = v2Rec.seen.filter((s) => s.method === 'POST');
  assert.ok(posts.length >= 5);
  for (const s of posts) {
    assert.equal(s.headers['mcp-protocol-version'], MODERN);
    assert.equal(s.headers['mcp-session-id'], undefined);
    assert.equal(s.body.params?._meta?.['io.modelcontextprotocol/protocolVersion'], MODERN, JSON.stringify(s.body));
  }
  assert.equal(posts.some((s) => s.body.method === 'initialize'), false);
  assert.ok(posts.some((s) => s.body.id === 'c' && s.body.params.arguments.message === 'v2'), 'the client\'s own id went through');
  assert.match(v2Proxy.logText(), /upstream speaks 2026-07-28/);
});

test('shutting down ends the proxy\'s own session at the upstream', async () => {
  const session = evRec.seen.find((s) => s.body?.params?.arguments?.message === 'undici').headers['mcp-session-id'];
  await undici.stop();
  assert.ok(evRec.seen.some((s) => s.method === 'DELETE' && s.headers['mcp-session-id'] === session), 'a DELETE for its session');
});

test('a translated answer whose stream closes early is resumed by the proxy (GET with Last-Event-ID in its session)', async () => {
  // A 2025-11-25 server that closes the call's stream after a priming event and answers on the
  // resumed stream (the conformance suite's sse-retry server does the same).
  const gets = [];
  let pending;
  const server = http.createServer(async (req, res) => {
    if (req.method === 'GET') {
      gets.push({ ...req.headers });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 's-1' });
      if (pending !== undefined) res.write(`id: e2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: pending, result: { content: [{ type: 'text', text: 'resumed' }] } })}\n\n`);
      return; // left open, as a GET stream is
    }
    if (req.method === 'DELETE') { res.writeHead(200).end(); return; }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (msg.method === 'initialize') {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's-1' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'closer', version: '1' } } }));
    } else if (msg.id === undefined) {
      res.writeHead(202).end();
    } else if (req.headers['mcp-session-id'] !== 's-1') {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: Server not initialized' } }));
    } else if (msg.method === 'tools/call') {
      pending = msg.id;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 's-1' });
      res.end('id: e1\nretry: 50\ndata: \n\n');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {} }));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const p = await startProxy(sourceYaml(`    url: http://127.0.0.1:${server.address().port}/mcp`));
  try {
    const call = await modern(p.url, 'early', 'tools/call', { name: 'slow', arguments: {} });
    assert.equal(call.id, 'early');
    assert.equal(call.result.content[0].text, 'resumed');
    assert.equal(call.result._meta['io.modelcontextprotocol/serverInfo'].name, 'closer');
    assert.equal(gets.length, 1);
    assert.equal(gets[0]['last-event-id'], 'e1');
    assert.equal(gets[0]['mcp-session-id'], 's-1');
  } finally {
    await p.stop();
    server.closeAllConnections();
    server.close();
  }
});

test('2026-07-28 through our 2025 session: a client that closes its request cancels it at the upstream, by our id and in our session', async () => {
  const posts = [];
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'POST') { res.writeHead(200).end(); return; }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    posts.push({ msg, session: req.headers['mcp-session-id'] });
    if (msg.method === 'initialize') {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's-9' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'never', version: '1' } } }));
    } else if (msg.id === undefined) {
      res.writeHead(202).end();
    } else if (msg.method === 'tools/call') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 's-9' });
      res.write(': working\n\n'); // and never answers
    } else {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } }));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const p = await startProxy(sourceYaml(`    url: http://127.0.0.1:${server.address().port}/mcp`));
  try {
    const ac = new AbortController();
    const body = { jsonrpc: '2.0', id: 'gives-up', method: 'tools/call', params: { name: 'slow', arguments: {}, _meta: { ...ENVELOPE } } };
    const call = fetch(p.url, { method: 'POST', signal: ac.signal, body: JSON.stringify(body), headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'slow' } })
      .then((r) => r.body?.getReader().read()).catch(() => 'aborted');
    let sent;
    for (let i = 0; i < 200 && !sent; i++) {
      sent = posts.find((x) => x.msg.method === 'tools/call');
      if (!sent) await sleep(50);
    }
    assert.ok(sent, 'the call reached the upstream');
    assert.notEqual(sent.msg.id, 'gives-up', 'under our id');
    ac.abort();
    await call;
    let cancelled;
    for (let i = 0; i < 200 && !cancelled; i++) {
      cancelled = posts.find((x) => x.msg.method === 'notifications/cancelled');
      if (!cancelled) await sleep(50);
    }
    assert.ok(cancelled, 'the upstream was told');
    assert.equal(cancelled.msg.params.requestId, sent.msg.id);
    assert.equal(cancelled.session, 's-9', 'in our session');
  } finally {
    await p.stop();
    server.closeAllConnections();
    server.close();
  }
});
