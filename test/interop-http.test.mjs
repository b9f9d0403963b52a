// Interoperability of the proxy's own HTTP answers (issue 15 items 3-5), through the real
// sidecar in front of real server-everything (HTTP, and stdio for the proxy's own sessions):
// the transport's status codes for the proxy's protocol rejections with their JSON-RPC body and
// Mcp-Session-Id, a body over the limit answered 413 after it was read (so the client sees the
// answer, never a reset), the SDK servers' 4 MiB accepted by default, CORS preflights decided by
// the origin policy, and no implementation header on any answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startProxy, startEverythingHttp, rawSession, parseSse, MCP_HEADERS, EVERYTHING } from './helpers.mjs';

const SMALL = 64 * 1024;
const MIB4 = 4 * 1024 * 1024;
let everything, small, dflt, stdio;

const yaml = (source) => `schema: 1
sources:
  - id: everything
    kind: mcp
${source}
governance:
  defaults:
    action: forward
`;

before(async () => {
  everything = await startEverythingHttp();
  small = await startProxy(yaml(`    url: ${everything.url}`), { env: { THOUGHTGATE_MAX_REQUEST_BODY_BYTES: String(SMALL) } });
  dflt = await startProxy(yaml(`    url: ${everything.url}`));
});
after(async () => {
  await small?.stop();
  await dflt?.stop();
  await stdio?.stop();
  everything?.stop();
});

/** Every answer any test here gets passes through this: no implementation header, one Date. */
function noLeak(r) {
  const names = [...r.headers.keys()];
  assert.deepEqual(names.filter((n) => /uwebsockets/i.test(n)), [], `implementation header in ${names.join(', ')}`);
  assert.equal(r.headers.get('date')?.split(',').length, 2, `one Date header: ${r.headers.get('date')}`);
  return r;
}

async function send(url, body, headers = {}, method = 'POST') {
  const r = noLeak(await fetch(url, { method, headers: method === 'POST' ? { ...MCP_HEADERS, ...headers } : headers, ...(body !== undefined ? { body } : {}) }));
  const text = await r.text();
  let json;
  if ((r.headers.get('content-type') ?? '').includes('text/event-stream')) json = parseSse(text).find((m) => 'result' in m || 'error' in m);
  else try { json = JSON.parse(text); } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

/** A tools/call of echo whose serialised body is exactly `bytes` long. */
function echoOf(bytes, id = 7) {
  const base = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: '' } } });
  const body = base.replace('"message":""', `"message":"${'m'.repeat(bytes - base.length)}"`);
  assert.equal(Buffer.byteLength(body), bytes);
  return body;
}

test('a parse error is HTTP 400 with -32700, the session id echoed, nothing forwarded', async () => {
  const { headers, sid } = await rawSession(small.url);
  const r = await send(small.url, '{not json', headers);
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, -32700);
  assert.equal(r.json.id, null);
  assert.equal(r.headers.get('mcp-session-id'), sid);
  assert.equal(r.headers.get('content-type'), 'application/json');
});

test('an invalid request and a batch where batches are not allowed are HTTP 400 with -32600', async () => {
  const { headers } = await rawSession(small.url);
  for (const body of ['"just a string"', '{"jsonrpc":"1.0","id":1,"method":"ping"}', '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":1,"a":2}}']) {
    const r = await send(small.url, body, headers);
    assert.equal(r.status, 400, body);
    assert.equal(r.json.error.code, -32600, body);
  }
  const batch = await send(small.url, JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]), headers);
  assert.equal(batch.status, 400);
  assert.equal(batch.json.error.code, -32600);
  assert.match(batch.json.error.message, /batches are not supported on protocol version 2025-06-18/);
});

test('gate denials stay HTTP 200 with a JSON-RPC error (clients treat non-2xx as a transport failure)', async () => {
  const { headers } = await rawSession(small.url);
  const r = await send(small.url, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call' }), headers);
  assert.equal(r.status, 200);
  assert.equal(r.json.id, 3);
  assert.equal(r.json.error.code, -32602);
});

test('unknown sessions: the upstream\'s own answer is relayed as it is; a stdio source\'s (the proxy\'s own) is 404', async () => {
  const direct = await fetch(everything.url, { method: 'POST', headers: { ...MCP_HEADERS, 'mcp-session-id': 'no-such-session' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
  const directText = await direct.text();
  const via = await send(small.url, '{"jsonrpc":"2.0","id":1,"method":"ping"}', { 'mcp-session-id': 'no-such-session' });
  assert.equal(via.status, direct.status, 'server-everything\'s status for a session it does not know, unchanged');
  assert.deepEqual(via.json, JSON.parse(directText));
  stdio = await startProxy(yaml(`    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(EVERYTHING)}, "stdio"]`));
  const r = await send(stdio.url, '{"jsonrpc":"2.0","id":1,"method":"ping"}', { 'mcp-session-id': 'no-such-session', 'mcp-protocol-version': '2025-06-18' });
  assert.equal(r.status, 404);
  assert.equal(r.json.id, 1);
  assert.equal(typeof r.json.error.code, 'number');
});

test('body limit (set small): at the limit forwarded; one byte past and far past answered 413 with the whole JSON-RPC body, no reset', async () => {
  const { headers, sid } = await rawSession(small.url);
  const at = await send(small.url, echoOf(SMALL), headers);
  assert.equal(at.status, 200, at.text.slice(0, 200));
  for (const size of [SMALL + 1, 4 * 1024 * 1024]) {
    let r;
    try {
      r = await send(small.url, echoOf(size), headers);
    } catch (e) {
      assert.fail(`a ${size}-byte body got no answer: ${e.cause?.code ?? e.message}`);
    }
    assert.equal(r.status, 413, `${size} bytes`);
    assert.equal(r.json.jsonrpc, '2.0');
    assert.equal(r.json.error.code, -32600);
    assert.equal(r.json.error.data.error_type, 'body_too_large');
    assert.match(r.json.error.message, new RegExp(`${SMALL} bytes`));
    assert.equal(r.headers.get('mcp-session-id'), sid);
  }
  const after = await send(small.url, echoOf(200, 8), headers);
  assert.equal(after.status, 200, 'the session goes on');
  const metrics = await (await fetch(`http://127.0.0.1:${small.adminPort}/metrics`)).text();
  const count = (re) => Number(re.exec(metrics)?.[1] ?? 0);
  assert.ok(count(/^thoughtgate_errors_total\{[^}]*error_type="body_too_large"[^}]*\} (\d+)/m) >= 2, 'counted as an error');
  assert.ok(count(/^thoughtgate_framing_errors_total\{[^}]*error_type="body_too_large"[^}]*\} (\d+)/m) >= 2, 'and as a framing error');
});

test('curl with Expect: 100-continue and a body over the limit gets the 413 answer', async () => {
  const out = await new Promise((resolve) => execFile('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', '-H', 'content-type: application/json', '-H', 'accept: application/json, text/event-stream',
    '-H', 'Expect: 100-continue', '--data-binary', '@-', small.url], (err, stdout, stderr) => resolve({ err, stdout, stderr })).stdin.end(echoOf(SMALL * 2)));
  assert.equal(out.err, null, out.stderr);
  const [body, code] = [out.stdout.slice(0, out.stdout.lastIndexOf('\n')), out.stdout.slice(out.stdout.lastIndexOf('\n') + 1)];
  assert.equal(code, '413');
  assert.equal(JSON.parse(body).error.code, -32600);
});

test('default body limit is the SDK servers\' 4 MiB: 4 MiB - 1 and 4 MiB are forwarded and answered, 4 MiB + 1 is 413', async () => {
  const { headers } = await rawSession(dflt.url);
  for (const size of [MIB4 - 1, MIB4]) {
    const r = await send(dflt.url, echoOf(size), headers);
    assert.equal(r.status, 200, `${size}: ${r.text.slice(0, 200)}`);
    const text = r.json?.result?.content?.[0]?.text ?? JSON.stringify(r.text.slice(0, 200));
    assert.ok(text.startsWith('Echo: mmm'), `${size}: the upstream ran it (${text.slice(0, 60)})`);
  }
  const over = await send(dflt.url, echoOf(MIB4 + 1), headers);
  assert.equal(over.status, 413);
  assert.match(over.json.error.message, /4194304 bytes/);
});

test('the TS SDK v1 client gets an MCP transport error naming the limit for an oversized call (not a schema error), and its session goes on', async () => {
  const client = new Client({ name: 'interop', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(small.url)));
  try {
    const err = await client.callTool({ name: 'echo', arguments: { message: 'x'.repeat(SMALL) } }).then(() => null, (e) => e);
    assert.ok(err instanceof StreamableHTTPError, `${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.code, 413);
    assert.match(err.message, /-32600/);
    assert.match(err.message, /Request body too large/);
    const ok = await client.callTool({ name: 'echo', arguments: { message: 'after' } });
    assert.equal(ok.content[0].text, 'Echo: after');
  } finally {
    await client.close();
  }
});

test('CORS: an allowed origin\'s preflight is 204 with the MCP headers allowed and Mcp-Session-Id exposed; a foreign one is 403 with no allow headers', async () => {
  const pre = await send(small.url, undefined, {
    origin: 'http://localhost:6274', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-session-id, mcp-protocol-version, x-custom',
  }, 'OPTIONS');
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:6274');
  const allowed = pre.headers.get('access-control-allow-headers').toLowerCase().split(/,\s*/);
  for (const h of ['content-type', 'authorization', 'mcp-session-id', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'last-event-id', 'x-custom']) assert.ok(allowed.includes(h), `${h} allowed`);
  for (const m of ['GET', 'POST', 'DELETE']) assert.ok(pre.headers.get('access-control-allow-methods').includes(m));
  assert.match(pre.headers.get('access-control-expose-headers'), /Mcp-Session-Id/);
  assert.match(pre.headers.get('vary'), /Origin/);
  const foreign = await send(small.url, undefined, { origin: 'http://evil.example', 'access-control-request-method': 'POST' }, 'OPTIONS');
  assert.equal(foreign.status, 403);
  assert.deepEqual([...foreign.headers.keys()].filter((n) => n.startsWith('access-control-')), []);
});

test('CORS on answers: the upstream\'s own CORS headers are relayed as sent; the proxy\'s own answers to an allowed origin get them', async () => {
  const origin = { origin: 'http://localhost:6274' };
  const { headers } = await rawSession(small.url);
  const relayed = await send(small.url, JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping' }), { ...headers, ...origin });
  assert.equal(relayed.status, 200);
  assert.equal(relayed.headers.get('access-control-allow-origin'), '*', 'server-everything\'s cors() answer, unchanged');
  const own = await send(small.url, '{not json', { ...headers, ...origin });
  assert.equal(own.status, 400);
  assert.equal(own.headers.get('access-control-allow-origin'), 'http://localhost:6274');
  assert.match(own.headers.get('access-control-expose-headers'), /Mcp-Session-Id/);
});

test('a relayed answer keeps the upstream\'s own headers (X-Powered-By) and carries no uWebSockets header', async () => {
  const { headers } = await rawSession(small.url);
  const r = await send(small.url, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping' }), headers);
  assert.equal(r.headers.get('x-powered-by'), 'Express');
});
