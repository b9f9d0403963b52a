// Upstream output is untrusted input (issue 14, items 1 and 2): a hostile upstream's answers
// (nested past the depth limit, SSE events over THOUGHTGATE_MAX_SSE_EVENT_BYTES or not UTF-8,
// batch answers nested too deep) reach the client as a JSON-RPC error for that request, in the
// shape it expects; a hidden tool never reaches it; the process lives on and serves the next call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startRecordingUpstream, post, rawSession, blocklist, sourceYaml } from './helpers.mjs';

const DEPTH = 100_000;
const LIMIT = 262_144; // over the deep answers (~200 KB): those fail on depth, not size
const deep = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`;
const deepList = (id) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"tools":[{"name":"secret_dump","inputSchema":{"type":"object"}},` +
  `{"name":"echo","inputSchema":{"type":"object","default":${deep}}}]}}`;
let mode = 'normal';
let up, proxy;

before(async () => {
  up = await startRecordingUpstream({
    behave: (req, raw, res) => {
      if (req.method !== 'POST') return false;
      let msg;
      try { msg = JSON.parse(raw.toString('utf8')); } catch { return false; }
      if (Array.isArray(msg) && mode === 'deep') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`[${msg.filter((m) => m.id !== undefined).map((m) => deepList(m.id)).join(',')}]`);
        return true;
      }
      if (msg.method === 'tools/list' && mode === 'deep') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(deepList(msg.id));
        return true;
      }
      if (msg.method === 'tools/list' && mode === 'dup') {
        // JSON.parse keeps the last "tools"; a client parser that keeps the first would list secret_dump
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":{"tools":[{"name":"secret_dump","inputSchema":{"type":"object"}}],"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}`);
        return true;
      }
      if (msg.method === 'tools/list' && mode === 'deep-sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`event: message\ndata: ${deepList(msg.id)}\n\n`);
        return true;
      }
      const name = msg.params?.name;
      if (msg.method === 'tools/call' && (name === 'big_event' || name === 'small_event' || name === 'bad_utf8')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } })}\n\n`);
        if (name === 'bad_utf8') {
          const head = Buffer.from(`event: message\ndata: {"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":{"content":[{"type":"text","text":"`);
          res.end(Buffer.concat([head, Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}}\n\n')]));
        } else {
          const n = name === 'big_event' ? LIMIT * 4 : 1000;
          res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'y'.repeat(n) }] } })}\n\n`);
        }
        return true;
      }
      return false;
    },
  });
  proxy = await startProxy(sourceYaml(`    url: ${up.url}`, { expose: blocklist('secret_*') }), { env: { THOUGHTGATE_MAX_SSE_EVENT_BYTES: String(LIMIT) } });
});
after(async () => {
  await proxy?.stop();
  up?.close();
});

const alive = () => proxy.proc.exitCode === null && proxy.proc.signalCode === null;
async function nextCallServed(headers) {
  mode = 'normal';
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'echo', arguments: {} } }, headers);
  return r.messages.find((m) => m.id === 99)?.result?.content?.[0]?.text;
}

test('a tools/list answer nested 100,000 levels deep: a JSON-RPC error, never the hidden tool, the process lives on', async () => {
  const { headers } = await rawSession(proxy.url);
  mode = 'deep';
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 31, method: 'tools/list', params: {} }, headers);
  const ans = r.messages.find((m) => m.id === 31);
  assert.equal(ans?.error?.code, -32002, r.text.slice(0, 200));
  assert.equal(ans.error.data.error_type, 'upstream_error');
  assert.match(ans.error.message, /deeper than 64/);
  assert.ok(!r.text.includes('secret_dump'), 'the hidden tool reached the client');
  assert.ok(alive());
  assert.equal(await nextCallServed(headers), 'ran echo');
});

test('the same answer as an SSE event: an error event for the request, then the stream ends', async () => {
  const { headers } = await rawSession(proxy.url);
  mode = 'deep-sse';
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 32, method: 'tools/list', params: {} }, headers);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const ans = r.messages.find((m) => m.id === 32);
  assert.equal(ans?.error?.code, -32002, r.text.slice(0, 200));
  assert.match(ans.error.message, /deeper than 64/);
  assert.ok(!r.text.includes('secret_dump'), 'the hidden tool reached the client');
  assert.equal(await nextCallServed(headers), 'ran echo');
});

test('an SSE event over THOUGHTGATE_MAX_SSE_EVENT_BYTES: an error event with the request id, a clean end; small events intact', async () => {
  const { headers } = await rawSession(proxy.url);
  const small = await post(proxy.url, { jsonrpc: '2.0', id: 21, method: 'tools/call', params: { name: 'small_event', arguments: {} } }, headers);
  assert.equal(small.messages.find((m) => m.id === 21)?.result?.content?.[0]?.text, 'y'.repeat(1000));
  // post() reads the body to its end: a reset would reject here instead of resolving
  const big = await post(proxy.url, { jsonrpc: '2.0', id: 22, method: 'tools/call', params: { name: 'big_event', arguments: {} } }, headers);
  assert.equal(big.messages[0]?.method, 'notifications/message', 'what came before the oversize event was relayed');
  const err = big.messages.find((m) => m.id === 22);
  assert.equal(err?.error?.code, -32002);
  assert.match(err.error.message, new RegExp(`exceeds ${LIMIT} bytes`));
  assert.ok(!big.text.includes('y'.repeat(100)), 'no part of the oversize event was relayed');
  assert.equal(await nextCallServed(headers), 'ran echo');
});

test('an SSE event that is not valid UTF-8 is answered with an error event, never relayed with replacement characters', async () => {
  const { headers } = await rawSession(proxy.url);
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 23, method: 'tools/call', params: { name: 'bad_utf8', arguments: {} } }, headers);
  const err = r.messages.find((m) => m.id === 23);
  assert.equal(err?.error?.code, -32002, r.text.slice(0, 200));
  assert.match(err.error.message, /not valid UTF-8/);
  assert.ok(!r.text.includes('\ufffd'));
});

test('a batch answer nested too deep (2025-03-26): every element gets an error, the hidden tool never shows', async () => {
  const { headers } = await rawSession(proxy.url, '2025-03-26');
  mode = 'deep';
  const r = await post(proxy.url, [
    { jsonrpc: '2.0', id: 41, method: 'tools/list', params: {} },
    { jsonrpc: '2.0', id: 42, method: 'tools/list', params: {} },
  ], headers);
  assert.deepEqual(r.messages.map((m) => [m.id, m.error?.code]).sort(), [[41, -32002], [42, -32002]], r.text.slice(0, 200));
  assert.ok(!r.text.includes('secret_dump'));
  assert.ok(alive());
});

test('a list answer with a duplicate "tools" key goes out as the filtered view, never as the upstream bytes', async () => {
  const { headers } = await rawSession(proxy.url);
  mode = 'dup';
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 51, method: 'tools/list', params: {} }, headers);
  mode = 'normal';
  assert.deepEqual(r.messages.find((m) => m.id === 51)?.result?.tools?.map((t) => t.name), ['echo']);
  assert.ok(!r.text.includes('secret_dump'), 'the hidden tool reached the client in a duplicate key');
});
