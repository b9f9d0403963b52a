// Stateless 2026-07-28 requests to `command:` sources speak each server's own era: a server that
// speaks 2026-07-28 (the v2 SDK through serveStdio) gets them as they are on children opened
// with server/discover, and its own discover answer comes back; a server that speaks only 2025
// (server-everything and a fixture on the 1.x SDK) gets them in the 2025 shape on children the
// sidecar initialized. No child ever reads messages of two eras (the fixture records its stdin).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { startProxy, post, EVERYTHING, ROOT, tempDir, sleep, MCP_HEADERS } from './helpers.mjs';

const MODERN = '2026-07-28';
const FIXTURE = join(ROOT, 'test', 'fixtures', 'era-stdio-server.mjs');
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const codeOf = async (p) => { try { await p; return null; } catch (e) { return e.code; } };

const yaml = (args, { expose, deny, env = '' }) => `schema: 1
sources:
  - id: src
    kind: mcp
    command: ${JSON.stringify(process.execPath)}
    args: ${JSON.stringify(args)}
${env}    expose:
      mode: blocklist
      tools: [${JSON.stringify(expose)}]
governance:
  defaults:
    action: forward
  rules:
    - match: ${JSON.stringify(deny)}
      action: deny
`;

/** A raw stateless request through the proxy, with the headers 2026-07-28 requires. */
async function modern(url, id, method, params = {}) {
  const headers = { 'mcp-protocol-version': MODERN, 'mcp-method': method };
  if (method === 'tools/call') headers['mcp-name'] = params.name;
  const r = await post(url, { jsonrpc: '2.0', id, method, params: { ...params, _meta: { ...ENVELOPE, ...params._meta } } }, headers);
  assert.equal(r.status, 200, r.text.slice(0, 300));
  return r.messages[0];
}

/** Asks a server directly over stdio, one message at a time: its own answers, no proxy between. */
async function direct(args, messages) {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const answers = [];
  let buf = '';
  let wake;
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) answers.push(JSON.parse(buf.slice(0, i)));
    wake?.();
  });
  try {
    for (const m of messages) {
      child.stdin.write(`${JSON.stringify(m)}\n`);
      if (m.id === undefined) continue;
      while (!answers.some((a) => a.id === m.id)) await new Promise((r) => { wake = r; });
    }
    return answers;
  } finally {
    child.kill();
  }
}

const INITIALIZE = { jsonrpc: '2.0', id: 'i', method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'direct', version: '1' } } };

/** Each recorded child's stdin lines, classified: a line claiming 2026-07-28 is modern, a request or notification without the claim is 2025. */
function recordedEras(dir, build) {
  return readdirSync(dir).filter((f) => f.startsWith(`${build}-`)).map((f) => {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const eras = new Set();
    for (const m of lines) {
      if (m.method === undefined) continue; // our answer to a server request belongs to no era
      eras.add(m.params?._meta?.['io.modelcontextprotocol/protocolVersion'] === MODERN ? 'modern' : 'legacy');
    }
    return { file: f, lines, eras: [...eras] };
  });
}

let recordDir, v2, v1, everything;
/** ids of slow calls already seen by a child (the cancellation test runs per server build) */
const seenSlow = new Set();
before(async () => {
  recordDir = tempDir('era-record');
  const env = `    env:\n      RECORD_DIR: ${JSON.stringify(recordDir)}\n`;
  [v2, v1, everything] = await Promise.all([
    startProxy(yaml([FIXTURE, 'v2'], { expose: 'secret_*', deny: 'delete_*', env })),
    startProxy(yaml([FIXTURE, 'v1'], { expose: 'secret_*', deny: 'delete_*', env })),
    startProxy(yaml([EVERYTHING, 'stdio'], { expose: 'get-tiny-image', deny: 'get-sum' })),
  ]);
});
after(async () => {
  await Promise.all([v2?.stop(), v1?.stop(), everything?.stop()]);
});

test('a server that speaks 2026-07-28: server/discover is its own answer, with its capabilities', async () => {
  const [own] = await direct([FIXTURE, 'v2'], [{ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: ENVELOPE } }]);
  const answer = await modern(v2.url, 'd1', 'server/discover');
  assert.equal(answer.id, 'd1');
  assert.deepEqual(answer.result.capabilities, own.result.capabilities);
  assert.equal(answer.result.capabilities.tools.listChanged, true);
  assert.deepEqual(answer.result.capabilities.experimental['fixture/era'], { era: 'modern' }, 'the modern instance answered, not a 2025 handshake');
  assert.deepEqual(answer.result.supportedVersions, own.result.supportedVersions);
  assert.equal(answer.result.instructions, 'fixture serving the modern era');
  assert.equal(answer.result._meta['io.modelcontextprotocol/serverInfo'].name, 'v2-stdio-fixture');
});

test('a server that speaks 2026-07-28: a pinned v2 client lists (filtered), calls, and is denied as configured', async () => {
  const c = new V2Client({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await c.connect(new V2Transport(new URL(v2.url)));
  try {
    assert.equal(c.getNegotiatedProtocolVersion(), MODERN);
    assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), ['delete_user', 'echo', 'get_time', 'slow']);
    assert.equal((await c.callTool({ name: 'echo', arguments: { message: 'hi' } })).content[0].text, 'modern: hi');
    assert.equal(await codeOf(c.callTool({ name: 'delete_user', arguments: {} })), -32014);
    assert.equal(await codeOf(c.callTool({ name: 'secret_dump', arguments: {} })), -32015);
  } finally {
    await c.close();
  }
});

test('a 2025 session client beside stateless traffic on the same v2 server keeps its own era', async () => {
  const legacy = new Client({ name: 'legacy', version: '1.0.0' });
  await legacy.connect(new StreamableHTTPClientTransport(new URL(v2.url)));
  try {
    const [a, b] = await Promise.all([
      legacy.callTool({ name: 'echo', arguments: { message: 'session' } }),
      modern(v2.url, 'side', 'tools/call', { name: 'echo', arguments: { message: 'stateless' } }),
    ]);
    assert.equal(a.content[0].text, 'legacy: session');
    assert.equal(b.result.content[0].text, 'modern: stateless');
    assert.equal(legacy.getServerCapabilities().experimental['fixture/era'].era, 'legacy');
    assert.equal(await codeOf(legacy.callTool({ name: 'delete_user', arguments: {} })), -32014);
  } finally {
    await legacy.close();
  }
});

test('a server that speaks only 2025 (1.x SDK): requests arrive in the 2025 shape, answers leave in the 2026 shape', async () => {
  const [init] = await direct([FIXTURE, 'v1'], [INITIALIZE]);
  const discover = await modern(v1.url, 'd2', 'server/discover');
  assert.deepEqual(discover.result.capabilities, init.result.capabilities);
  assert.deepEqual(discover.result.supportedVersions, [MODERN]);
  assert.equal(discover.result.resultType, 'complete');
  assert.equal(discover.result._meta['io.modelcontextprotocol/serverInfo'].name, 'v1-stdio-fixture');

  const list = await modern(v1.url, 'l2', 'tools/list');
  assert.deepEqual(list.result.tools.map((t) => t.name).sort(), ['delete_user', 'echo', 'get_time', 'slow']);
  assert.equal(list.result.resultType, 'complete');
  assert.equal(list.result.cacheScope, 'private');
  assert.equal(list.result.ttlMs, 0);

  const call = await modern(v1.url, 'c2', 'tools/call', { name: 'echo', arguments: { message: 'translated' }, _meta: { progressToken: 'pt-1' } });
  assert.equal(call.id, 'c2');
  assert.equal(call.result.content[0].text, 'v1: translated');
  assert.deepEqual(JSON.parse(call.result.content[1].text), { progressToken: 'pt-1' }, 'the envelope was lifted; other _meta kept');
  assert.equal(call.result._meta['io.modelcontextprotocol/serverInfo'].name, 'v1-stdio-fixture');

  const denied = await modern(v1.url, 'x2', 'tools/call', { name: 'delete_user', arguments: {} });
  assert.equal(denied.error.code, -32014);
  const hidden = await modern(v1.url, 'x3', 'tools/call', { name: 'secret_dump', arguments: {} });
  assert.equal(hidden.error.code, -32015);
  const sent = recordedEras(recordDir, 'v1').flatMap((r) => r.lines);
  assert.equal(sent.some((m) => m.params?.name === 'delete_user' || m.params?.name === 'secret_dump'), false, 'denied calls never reached the server');
});

test('server-everything speaks only 2025: discover carries its initialize capabilities; a pinned v2 client works through translation', async () => {
  const [init] = await direct([EVERYTHING, 'stdio'], [INITIALIZE]);
  const discover = await modern(everything.url, 'd3', 'server/discover');
  assert.deepEqual(discover.result.capabilities, init.result.capabilities);
  assert.equal(discover.result.capabilities.tools.listChanged, true);
  const c = new V2Client({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await c.connect(new V2Transport(new URL(everything.url)));
  try {
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('get-sum') && !names.includes('get-tiny-image'));
    assert.equal((await c.callTool({ name: 'echo', arguments: { message: 'ev' } })).content[0].text, 'Echo: ev');
    assert.equal(await codeOf(c.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), -32014);
    assert.equal(await codeOf(c.callTool({ name: 'get-tiny-image', arguments: {} })), -32015);
  } finally {
    await c.close();
  }
  assert.match(everything.logText(), /stdio server speaks only 2025 revisions/);
});

test('no child ever read messages of two eras; a 2025 server\'s probe child read nothing after its discover', async () => {
  const v2Children = recordedEras(recordDir, 'v2');
  const v1Children = recordedEras(recordDir, 'v1');
  for (const r of [...v2Children, ...v1Children]) assert.ok(r.eras.length <= 1, `${r.file} read ${r.eras.join(' and ')} messages`);
  assert.ok(v2Children.some((r) => r.eras[0] === 'modern'), 'a modern child served the v2 server\'s stateless requests');
  assert.ok(v2Children.some((r) => r.eras[0] === 'legacy'), 'the 2025 session had its own child');
  const probes = v1Children.filter((r) => r.lines[0]?.method === 'server/discover');
  assert.equal(probes.length, 1, 'the 1.x server was probed once');
  assert.equal(probes[0].lines.length, 1, 'and its probe child got nothing else');
  const translated = v1Children.filter((r) => r.lines[0]?.method === 'initialize');
  assert.ok(translated.length >= 1);
  for (const r of translated) {
    assert.equal(r.lines[0].params.protocolVersion, '2025-11-25');
    assert.equal(r.eras[0], 'legacy');
    for (const m of r.lines) assert.equal(Object.keys(m.params?._meta ?? {}).some((k) => k.startsWith('io.modelcontextprotocol/')), false, JSON.stringify(m));
  }
});

test('a pooled child that dies makes the next stateless request probe the server again', async () => {
  const started = () => v2.logText().split('\n').filter((l) => l.includes('stdio server started for stateless requests')).map((l) => JSON.parse(l).pid);
  const probes = () => v2.logText().split('\n').filter((l) => l.includes('stdio server speaks 2026-07-28')).length;
  const before = probes();
  for (const pid of started()) try { process.kill(pid, 'SIGKILL'); } catch {}
  // The kill is seen when the child's exit arrives; until then a request may still meet it and fail.
  let answer;
  for (let i = 0; i < 50 && answer?.result === undefined; i++) answer = await post(v2.url, { jsonrpc: '2.0', id: `r${i}`, method: 'tools/call', params: { name: 'echo', arguments: { message: 'again' }, _meta: ENVELOPE } }, { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo' }).then((r) => r.messages[0]);
  assert.equal(answer.result.content[0].text, 'modern: again');
  assert.equal(probes(), before + 1, 'probed once more');
});

test('a 2025 server that ends at a request before its handshake is served translated all the same', async () => {
  const p = await startProxy(yaml([FIXTURE, 'v1', 'strict'], { expose: 'secret_*', deny: 'delete_*' }));
  try {
    const call = await modern(p.url, 's1', 'tools/call', { name: 'echo', arguments: { message: 'strict' } });
    assert.equal(call.result.content[0].text, 'v1: strict');
    const discover = await modern(p.url, 's2', 'server/discover');
    assert.equal(discover.result.capabilities.tools.listChanged, true);
    assert.match(p.logText(), /"probe":"stdio server exited[^\n]*stdio server speaks only 2025 revisions/);
  } finally {
    await p.stop();
  }
});

test('2026-07-28: a client that closes its request cancels it at the child, by the id the child knows (both eras of server)', async () => {
  for (const [proxy, build] of [[v2, 'v2'], [v1, 'v1']]) {
    const ac = new AbortController();
    const body = { jsonrpc: '2.0', id: `slow-${build}`, method: 'tools/call', params: { name: 'slow', arguments: {}, _meta: { ...ENVELOPE } } };
    const call = fetch(proxy.url, { method: 'POST', signal: ac.signal, body: JSON.stringify(body), headers: { ...MCP_HEADERS, 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'slow' } }).catch(() => 'aborted');
    const lines = () => recordedEras(recordDir, build).flatMap((r) => r.lines);
    let sent;
    for (let i = 0; i < 200 && !sent; i++) {
      sent = lines().find((m) => m.method === 'tools/call' && m.params?.name === 'slow' && !seenSlow.has(m.id));
      if (!sent) await sleep(50);
    }
    assert.ok(sent, `${build}: the slow call reached a child`);
    seenSlow.add(sent.id);
    assert.notEqual(sent.id, body.id, 'the child knows it by our id');
    ac.abort();
    assert.equal(await call, 'aborted');
    let cancelled;
    for (let i = 0; i < 200 && !cancelled; i++) {
      cancelled = lines().find((m) => m.method === 'notifications/cancelled' && m.params?.requestId === sent.id);
      if (!cancelled) await sleep(50);
    }
    assert.ok(cancelled, `${build}: the child was told the call ${sent.id} was cancelled`);
    const claim = cancelled.params._meta?.['io.modelcontextprotocol/protocolVersion'];
    assert.equal(claim, sent.params._meta?.['io.modelcontextprotocol/protocolVersion'], 'in the era of the request it cancels');
  }
});

