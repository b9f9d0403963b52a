// Framing, limits and batches through the running proxy, with a recording upstream: every
// test checks what the upstream received, so a denied or unjudgeable message that leaks
// through fails here even when the client-side answer looks right.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { startProxy, startRecordingUpstream, post, rawSession, sourceYaml, blocklist, rule } from './helpers.mjs';

let up, proxy;
const MAX_BODY = 4096;
const MAX_BATCH = 5;
const MAX_DEPTH = 16;

before(async () => {
  up = await startRecordingUpstream();
  proxy = await startProxy(sourceYaml(`    url: ${up.url}`, { expose: blocklist('secret_*'), rules: [rule('delete_*', 'deny'), rule('admin_*', 'deny')].join('\n') }), { env: { THOUGHTGATE_MAX_REQUEST_BODY_BYTES: String(MAX_BODY), THOUGHTGATE_MAX_BATCH_SIZE: String(MAX_BATCH), THOUGHTGATE_MAX_JSON_DEPTH: String(MAX_DEPTH) } });
});
after(async () => {
  await proxy?.stop();
  up?.close();
});

const call = (id, name, extra = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, ...extra } });
const H = { 'mcp-protocol-version': '2025-06-18' };

/**
 * Sends `body` and asserts the answer is a JSON-RPC error with `code` and the upstream saw
 * `marker` nowhere; with `status`, also the HTTP status (the proxy's own rejections of a body
 * carry the transport's status: 400, 413; gate denials are 200).
 */
async function refused(body, code, marker, headers = H, status = undefined) {
  const before = up.bodies.length;
  const r = await post(proxy.url, body, headers);
  if (status !== undefined) assert.equal(r.status, status, r.text.slice(0, 300));
  assert.equal(r.messages.length >= 1, true, `an error body came back: ${r.status} ${r.text.slice(0, 200)}`);
  assert.equal(r.messages[0].error?.code, code, r.text.slice(0, 300));
  if (marker) assert.equal(up.bodies.slice(before).some((b) => b.raw.includes(marker)), false, `${marker} reached the upstream`);
  return r;
}

test('denied and hidden calls never reach the upstream; allowed ones arrive byte for byte', async () => {
  await refused(call(1, 'delete_user'), -32014, 'delete_user', H, 200);
  await refused(call(2, 'secret_dump'), -32015, 'secret_dump', H, 200);
  const raw = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"n":1.50,"s":"\\u00e9"}}}`;
  const before = up.bodies.length;
  const r = await post(proxy.url, raw, H);
  assert.equal(r.messages[0].result.content[0].text, 'ran echo');
  assert.equal(up.bodies[before].raw, raw, 'the exact judged bytes were forwarded');
});

test('duplicate keys cannot smuggle another tool name past the gates', async () => {
  await refused('{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","name":"delete_user"}}', -32600, 'delete_user', H, 400);
  await refused('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"delete_user","na\\u006de":"echo"}}', -32600, 'delete_user');
  await refused('{"jsonrpc":"2.0","id":6,"method":"tools/list","method":"tools/call","params":{"name":"delete_user"}}', -32600, 'delete_user');
});

test('bytes another parser could read differently are refused, never forwarded', async () => {
  const bodies = [
    [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(call(7, 'bom_marker')))]), -32700, 'bom_marker'],
    [Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"utf8_marker","x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]), -32700, 'utf8_marker'],
    ['{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"comment_marker"}} // x', -32700, 'comment_marker'],
    ['{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"trailing_marker"}}{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"delete_user"}}', -32700, 'trailing_marker'],
    ['{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"nan_marker","a":NaN}}', -32700, 'nan_marker'],
    ['{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"surrogate_marker","a":"\\ud800"}}', -32600, 'surrogate_marker'],
    ['{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"bigid_marker"}}', -32600, 'bigid_marker'],
    ['{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"floatid_marker"}}', -32600, 'floatid_marker'],
    ['{"jsonrpc":"1.0","id":14,"method":"tools/call","params":{"name":"version_marker"}}', -32600, 'version_marker'],
    ['"just a string"', -32600, 'just a string'],
  ];
  for (const [body, code, marker] of bodies) await refused(body, code, marker, H, 400);
});

test('content-type and content-encoding tricks are refused with 415', async () => {
  const before = up.bodies.length;
  for (const headers of [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-encoding': 'gzip' }]) {
    const r = await fetch(proxy.url, { method: 'POST', headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...headers }, body: JSON.stringify(call(15, 'ctype_marker')) });
    assert.equal(r.status, 415);
    await r.text();
  }
  assert.equal(up.bodies.slice(before).some((b) => b.raw.includes('ctype_marker')), false);
});

test('body size: exactly at the limit is judged, one byte past is refused', async () => {
  const base = JSON.stringify(call(16, 'echo', { arguments: { pad: '' } }));
  const atLimit = base.replace('"pad":""', `"pad":"${'x'.repeat(MAX_BODY - base.length)}"`);
  assert.equal(Buffer.byteLength(atLimit), MAX_BODY);
  const ok = await post(proxy.url, atLimit, H);
  assert.ok(ok.messages[0].result, 'at the limit: forwarded');
  const over = atLimit.replace('"pad":"', '"pad":"y');
  const r = await refused(over, -32600, 'yxxxx', H, 413);
  assert.equal(r.messages[0].error.data.error_type, 'body_too_large');
});

test('a chunked body over the limit is refused without a Content-Length to go by', async () => {
  const body = JSON.stringify(call(17, 'chunked_marker', { arguments: { pad: 'z'.repeat(MAX_BODY * 2) } }));
  const text = await new Promise((resolve) => {
    const chunks = [];
    const s = net.connect(proxy.port, '127.0.0.1', () => {
      s.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
      for (let i = 0; i < body.length; i += 1000) {
        const part = body.slice(i, i + 1000);
        s.write(`${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`);
      }
      s.write('0\r\n\r\n');
    });
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', () => resolve(Buffer.concat(chunks).toString()));
    setTimeout(() => s.destroy(), 5000);
  });
  assert.match(text, /^HTTP\/1\.1 413 /);
  assert.match(text, /-32600/);
  assert.equal(up.received('chunked_marker'), false);
});

test('nesting depth: at the limit is accepted, one deeper is refused', async () => {
  // depth counts every object/array: envelope(1) params(2) arguments(3) then nested arrays
  const nest = (n) => '['.repeat(n) + ']'.repeat(n);
  const atLimit = `{"jsonrpc":"2.0","id":18,"method":"tools/call","params":{"name":"echo","arguments":{"a":${nest(MAX_DEPTH - 3)}}}}`;
  const over = `{"jsonrpc":"2.0","id":19,"method":"tools/call","params":{"name":"deep_marker","arguments":{"a":${nest(MAX_DEPTH - 2)}}}}`;
  const ok = await post(proxy.url, atLimit, H);
  assert.ok(ok.messages[0].result, `at the limit: ${ok.text.slice(0, 200)}`);
  await refused(over, -32600, 'deep_marker');
});

test('batches on a 2025-03-26 session: judged per element, denials answered in place, order kept', async () => {
  const { headers } = await rawSession(proxy.url, '2025-03-26');
  const before = up.bodies.length;
  const batch = [call(21, 'echo'), call(22, 'delete_user'), { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } }, call(23, 'secret_dump'), call(24, 'get_time')];
  const r = await post(proxy.url, batch, headers);
  assert.equal(r.status, 200);
  assert.deepEqual(r.messages.map((m) => m.id), [21, 22, 23, 24]);
  assert.equal(r.messages[0].result.content[0].text, 'ran echo');
  assert.equal(r.messages[1].error.code, -32014);
  assert.equal(r.messages[2].error.code, -32015);
  assert.equal(r.messages[3].result.content[0].text, 'ran get_time');
  const sent = up.bodies.slice(before);
  assert.equal(sent.length, 1, 'the allowed elements went up as one batch');
  const forwarded = JSON.parse(sent[0].raw);
  assert.deepEqual(forwarded.map((m) => m.params?.name ?? m.method), ['echo', 'notifications/progress', 'get_time']);
});

test('batch limits: exactly max is accepted, max+1, empty and initialize-inside are refused', async () => {
  const { headers } = await rawSession(proxy.url, '2025-03-26');
  const n = (k, name = 'echo') => Array.from({ length: k }, (_, i) => call(100 + i, name));
  const ok = await post(proxy.url, n(MAX_BATCH), headers);
  assert.equal(ok.messages.length, MAX_BATCH);
  assert.ok(ok.messages.every((m) => m.result));
  await refused(n(MAX_BATCH + 1, 'toolong_marker'), -32600, 'toolong_marker', headers);
  await refused([], -32600, undefined, headers);
  const withInit = await post(proxy.url, [{ jsonrpc: '2.0', id: 200, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, call(201, 'echo')], headers);
  assert.equal(withInit.messages[0].error.code, -32600);
  assert.ok(withInit.messages[1].result);
});

test('batches on later protocol versions are refused whole, nothing forwarded', async () => {
  const { headers } = await rawSession(proxy.url, '2025-06-18');
  await refused([call(300, 'batch2025_marker'), call(301, 'echo')], -32600, 'batch2025_marker', headers, 400);
  await refused([call(302, 'batchmodern_marker')], -32600, 'batchmodern_marker', { 'mcp-protocol-version': '2026-07-28' }, 400);
});

test('a governed call without a name is invalid params, not forwarded', async () => {
  await refused({ jsonrpc: '2.0', id: 400, method: 'tools/call', params: { arguments: { noname_marker: 1 } } }, -32602, 'noname_marker');
  await refused({ jsonrpc: '2.0', id: 401, method: 'resources/read', params: { uriX: 'noname2_marker' } }, -32602, 'noname2_marker');
});

test('Mcp-Method / Mcp-Name that contradict the body are refused with 400 -32020', async () => {
  const r1 = await refused(call(500, 'delete_user'), -32020, 'delete_user', { ...H, 'mcp-name': 'echo' });
  assert.equal(r1.status, 400);
  const r2 = await refused(call(501, 'mismatch_marker'), -32020, 'mismatch_marker', { ...H, 'mcp-method': 'tools/list' });
  assert.equal(r2.status, 400);
  const b64 = `=?base64?${Buffer.from('echo').toString('base64')}?=`;
  const ok = await post(proxy.url, call(502, 'echo'), { ...H, 'mcp-name': b64, 'mcp-method': 'tools/call' });
  assert.ok(ok.messages[0].result, 'a Base64-sentinel Mcp-Name that matches is accepted');
});

test('framing rejections are counted in metrics', async () => {
  const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  assert.match(text, /thoughtgate_framing_errors_total\{transport="http",error_type="[a-z_]+"\} [1-9]/);
});

test('hop-by-hop headers stay here; session, auth and unknown Mcp-* headers pass through', async () => {
  const before = up.bodies.length;
  // node:http, because fetch refuses to send hop-by-hop headers at all
  const body = JSON.stringify(call(600, 'echo'));
  await new Promise((resolve, reject) => {
    const req = http.request(proxy.url, { method: 'POST', headers: {
      'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body), ...H,
      authorization: 'Bearer abc', 'mcp-session-id': 's-1', 'mcp-custom-x': 'y', 'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic zzz', 'last-event-id': 'ev-9', connection: 'keep-alive, x-hop', 'x-hop': 'dropme',
    } }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end(body);
  });
  const h = up.bodies[before].headers;
  assert.equal(h.authorization, 'Bearer abc');
  assert.equal(h['mcp-session-id'], 's-1');
  assert.equal(h['mcp-custom-x'], 'y');
  assert.equal(h['last-event-id'], 'ev-9');
  assert.equal(h['mcp-protocol-version'], '2025-06-18');
  assert.equal(h['proxy-authorization'], undefined);
  assert.equal(h['keep-alive'], undefined);
  assert.equal(h['x-hop'], undefined, 'headers named in Connection are hop-by-hop');
});
