import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkStandardHeaders, upstreamHeaders, bodyClaimedVersion } from './headers.js';
import { corsHeaders, originPolicy, preflightHeaders } from './origin.js';
import { SessionTable } from './sessions.js';

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' };
const b64 = (s: string) => `=?base64?${Buffer.from(s).toString('base64')}?=`;

test('headers that agree with the body pass, on every era', () => {
  assert.equal(checkStandardHeaders({}, 'tools/call', { name: 'echo' }, true), undefined);
  assert.equal(checkStandardHeaders({ 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, 'tools/call', { name: 'echo' }, true), undefined);
  assert.equal(checkStandardHeaders({ 'mcp-name': b64('naïve tool') }, 'tools/call', { name: 'naïve tool' }, true), undefined);
  assert.equal(checkStandardHeaders({ 'mcp-name': 'file:///a' }, 'resources/read', { uri: 'file:///a' }, true), undefined);
  const modern = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
  assert.equal(checkStandardHeaders(modern, 'tools/call', { name: 'echo', _meta: META }, true), undefined);
});

test('any disagreement is a 400 / -32020 header mismatch', () => {
  const cases: Array<[Record<string, string>, string, Record<string, unknown>]> = [
    [{ 'mcp-method': 'tools/list' }, 'tools/call', { name: 'echo' }],
    [{ 'mcp-name': 'echo' }, 'tools/call', { name: 'delete_user' }],
    [{ 'mcp-name': b64('echo') }, 'tools/call', { name: 'delete_user' }],
    [{ 'mcp-name': '=?base64?***?=' }, 'tools/call', { name: 'echo' }],
    [{ 'mcp-name': 'x' }, 'tools/list', {}],
    [{ 'mcp-protocol-version': '2025-06-18' }, 'tools/call', { name: 'echo', _meta: META }],
    // modern requests must carry the headers
    [{}, 'tools/call', { name: 'echo', _meta: META }],
    [{ 'mcp-protocol-version': '2026-07-28' }, 'tools/call', { name: 'echo', _meta: META }],
    [{ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' }, 'tools/call', { name: 'echo', _meta: META }],
  ];
  for (const [headers, method, params] of cases) {
    const err = checkStandardHeaders(headers, method, params, true);
    assert.ok(err, JSON.stringify(headers));
    assert.equal(err.code, -32020);
    assert.equal(err.httpStatus, 400);
  }
});

test('notifications need no modern headers', () => {
  assert.equal(checkStandardHeaders({}, 'notifications/initialized', { _meta: META }, false), undefined);
});

test('the era is read from the body envelope', () => {
  assert.equal(bodyClaimedVersion({ _meta: META }), '2026-07-28');
  assert.equal(bodyClaimedVersion({}), undefined);
  assert.equal(bodyClaimedVersion(undefined), undefined);
});

test('hop-by-hop headers, and those named in Connection, stay with this hop', () => {
  const out = upstreamHeaders({
    connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', host: 'proxy', 'content-length': '5', 'transfer-encoding': 'chunked',
    'keep-alive': 'timeout=5', te: 'trailers', upgrade: 'h2c', 'proxy-authorization': 'x', authorization: 'Bearer t',
    'mcp-session-id': 's', 'last-event-id': '7', 'mcp-whatever': 'w', accept: 'text/event-stream',
  });
  assert.deepEqual(Object.keys(out).sort(), ['accept', 'authorization', 'last-event-id', 'mcp-session-id', 'mcp-whatever']);
});

test('Connection options are matched case-insensitively and without surrounding whitespace', () => {
  const base = { 'x-a': '1', 'x-b': '2', accept: 'application/json' };
  assert.deepEqual(Object.keys(upstreamHeaders({ ...base, connection: 'Keep-Alive ,\tX-A ,  x-b' })).sort(), ['accept']);
  assert.deepEqual(Object.keys(upstreamHeaders({ ...base, connection: 'close' })).sort(), ['accept', 'x-a', 'x-b']);
  assert.deepEqual(Object.keys(upstreamHeaders({ ...base, connection: 'keep-alive' })).sort(), ['accept', 'x-a', 'x-b']);
  assert.deepEqual(Object.keys(upstreamHeaders({ ...base, connection: ',,x-b,' })).sort(), ['accept', 'x-a']);
});

test('Origin: localhost origins and configured ones pass, others do not', () => {
  const p = originPolicy(['https://app.example.com']);
  for (const o of ['http://localhost:3000', 'http://127.0.0.1', 'https://[::1]:8443', 'https://app.example.com', 'HTTPS://APP.EXAMPLE.COM']) assert.equal(p(o), true, o);
  for (const o of ['http://evil.example', 'null', 'http://localhost.evil.example', 'file://localhost', 'https://app.example.com.evil', 'garbage']) assert.equal(p(o), false, o);
  assert.equal(originPolicy(['*'])('http://anything'), true);
});

test('the session table is bounded and forgets idle sessions', () => {
  const t = new SessionTable(2, 60_000);
  t.remember('a', '2025-03-26');
  t.remember('b', '2025-06-18');
  t.remember('c', '2025-11-25');
  assert.equal(t.get('a'), undefined, 'the oldest was evicted');
  assert.equal(t.get('b')?.version, '2025-06-18');
  assert.equal(t.size, 2);
  t.forget('b');
  assert.equal(t.get('b'), undefined);
  const idle = new SessionTable(10, 0);
  idle.remember('x', '2025-03-26');
  const until = Date.now() + 5;
  while (Date.now() < until) { /* let the clock move past the idle limit */ }
  assert.equal(idle.get('x'), undefined);
});

test('CORS preflight headers: the MCP set, plus what the page asked for once each, never a name that is not a token', () => {
  const h = preflightHeaders('http://localhost:6274', 'content-type, MCP-SESSION-ID, x-custom, traceparent, bad name, a\tb, , x-custom');
  const allowed = h['access-control-allow-headers']!.split(', ');
  assert.deepEqual(allowed, ['Content-Type', 'Accept', 'Authorization', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Mcp-Method', 'Mcp-Name', 'Last-Event-ID', 'x-custom', 'traceparent']);
  assert.equal(h['access-control-allow-origin'], 'http://localhost:6274');
  assert.equal(h['access-control-allow-methods'], 'GET, POST, DELETE, OPTIONS');
  assert.match(h['access-control-expose-headers']!, /Mcp-Session-Id/);
  assert.equal(h['vary'], 'Origin');
  assert.equal(preflightHeaders('http://localhost:1', undefined)['access-control-allow-headers']!.split(', ').length, 8);
  assert.deepEqual(Object.keys(corsHeaders('http://x')).sort(), ['access-control-allow-origin', 'access-control-expose-headers', 'vary']);
});
