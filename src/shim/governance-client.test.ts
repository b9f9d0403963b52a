import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GovernanceClient, GovernanceUnavailable } from './governance-client.js';

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
}

/** A scriptable service: `answer` decides what each request gets. */
let answer: (seen: Seen) => { status: number; body: string } | 'hang' = () => ({ status: 200, body: '{}' });
const seen: Seen[] = [];
let server: http.Server;
let base: string;

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const s: Seen = { method: req.method!, url: req.url!, auth: req.headers.authorization, body: text ? JSON.parse(text) : undefined };
      seen.push(s);
      const a = answer(s);
      if (a === 'hang') return;
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix/`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const client = (callTimeoutMs = 2000) => new GovernanceClient({ baseUrl: base, serverId: 'fs', token: 'sekret', callTimeoutMs });
const failure = async (p: Promise<unknown>): Promise<GovernanceUnavailable> => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GovernanceUnavailable, `expected GovernanceUnavailable, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a failure');
};

describe('GovernanceClient', () => {
  it('judges with the server id and the bearer token, under the base path', async () => {
    answer = () => ({ status: 200, body: '{"action":"forward"}' });
    const c = client();
    const msg = { jsonrpc: '2.0' as const, id: 1, method: 'tools/call', params: { name: 'x' } };
    assert.deepEqual(await c.judge(msg), { action: 'forward' });
    const s = seen.at(-1)!;
    assert.equal(s.method, 'POST');
    assert.equal(s.url, '/prefix/shim/v1/judge');
    assert.equal(s.auth, 'Bearer sekret');
    assert.deepEqual(s.body, { serverId: 'fs', message: msg });
    c.close();
  });

  it('reads respond and hold answers; refuses malformed ones', async () => {
    const c = client();
    const msg = { jsonrpc: '2.0' as const, id: 'a', method: 'tools/call' };
    answer = () => ({ status: 200, body: '{"action":"respond","response":{"jsonrpc":"2.0","id":"a","error":{"code":-32014,"message":"no"}}}' });
    const r = await c.judge(msg);
    assert.equal(r.action, 'respond');
    answer = () => ({ status: 200, body: '{"action":"hold","approvalId":"ap 1","consoleUrl":"http://c"}' });
    assert.deepEqual(await c.judge(msg), { action: 'hold', approvalId: 'ap 1', consoleUrl: 'http://c' });
    for (const body of ['{"action":"maybe"}', '{"action":"respond"}', '{"action":"hold"}', 'not json', '[1]']) {
      answer = () => ({ status: 200, body });
      await failure(c.judge(msg));
    }
    c.close();
  });

  it('a non-2xx answer fails with its status', async () => {
    const c = client();
    answer = () => ({ status: 401, body: '{"error":"unauthorized"}' });
    const e = await failure(c.events({ messages: [], framing: [] }));
    assert.equal(e.status, 401);
    answer = () => ({ status: 503, body: '' });
    assert.equal((await failure(c.judge({ jsonrpc: '2.0', id: 1, method: 'tools/call' }))).status, 503);
    c.close();
  });

  it('long-polls with timeoutMs in the query and an escaped id', async () => {
    const c = client();
    answer = () => ({ status: 200, body: '{"done":false}' });
    assert.deepEqual(await c.wait('ap/1', 1234), { done: false });
    assert.equal(seen.at(-1)!.url, '/prefix/shim/v1/wait/ap%2F1?timeoutMs=1234');
    answer = () => ({ status: 200, body: '{"done":true,"answer":{"action":"forward"}}' });
    assert.deepEqual(await c.wait('ap', 99_999), { done: true, answer: { action: 'forward' } });
    assert.match(seen.at(-1)!.url, /timeoutMs=30000$/, 'capped at the protocol maximum');
    answer = () => ({ status: 200, body: '{"done":true,"answer":{"action":"hold","approvalId":"x"}}' });
    await failure(c.wait('ap', 10));
    c.close();
  });

  it('filter: {} is unchanged, {message} is the changed list', async () => {
    const c = client();
    answer = () => ({ status: 200, body: '{}' });
    assert.equal(await c.filter('tools/list', { jsonrpc: '2.0', id: 1, result: { tools: [] } }), undefined);
    answer = () => ({ status: 200, body: '{"message":{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}}' });
    assert.deepEqual(await c.filter('tools/list', { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'x' }] } }), {
      jsonrpc: '2.0', id: 1, result: { tools: [] },
    });
    assert.deepEqual((seen.at(-1)!.body as { method: string }).method, 'tools/list');
    c.close();
  });

  it('times out a call that gets no answer, and close() fails calls in flight', async () => {
    const c = client(200);
    answer = () => 'hang';
    const e = await failure(c.judge({ jsonrpc: '2.0', id: 1, method: 'tools/call' }));
    assert.match(e.message, /timed out/);
    const c2 = client(60_000);
    const p = c2.wait('ap', 30_000);
    await new Promise((r) => setTimeout(r, 50));
    c2.close();
    await failure(p);
    c.close();
  });

  it('an unreachable service fails health()', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const c = new GovernanceClient({ baseUrl: `http://127.0.0.1:${port}`, serverId: 'x', token: undefined });
    const e = await failure(c.health(500));
    assert.match(e.message, /ECONNREFUSED/);
    c.close();
  });
});
