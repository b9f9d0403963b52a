// GET streams get their own bounded share of the upstream pool: beyond it a GET is refused at
// once (429, Retry-After, -32009), and request/response calls keep the rest of the pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GovError } from '../../core/errors.js';
import type { ResponseSink, Upstream } from '../types.js';
import { LeanHttpUpstream } from './client.js';
import { HttpUpstream } from '../http.js';

/** An upstream that keeps every GET open (an SSE stream) and answers POSTs at once. */
async function server(): Promise<{ url: string; openGets: () => number; close: () => void }> {
  let open = 0;
  const s = http.createServer((req, res) => {
    if (req.method === 'GET') {
      open++;
      res.on('close', () => open--);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      return;
    }
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}'));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/mcp`, openGets: () => open, close: () => { s.closeAllConnections(); s.close(); } };
}

class Sink implements ResponseSink {
  status = 0;
  headers: Record<string, string> = {};
  body = '';
  ended = false;
  error: GovError | undefined;
  resume?: () => void;
  abort?: () => void;
  private waiters: Array<() => void> = [];
  onHead(status: number, headers: Record<string, string>): void {
    this.status = status;
    this.headers = headers;
    this.wake();
  }
  onData(chunk: Buffer): boolean {
    this.body += chunk.toString();
    return true;
  }
  onEnd(): void {
    this.ended = true;
    this.wake();
  }
  onError(err: GovError): void {
    this.error = err;
    this.wake();
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  /** resolves at the head (or an error) */
  head(): Promise<void> {
    return this.status !== 0 || this.error ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
  done(): Promise<void> {
    return this.ended || this.error ? Promise.resolve() : new Promise((r) => this.waiters.push(() => (this.ended || this.error ? r() : void this.done().then(r))));
  }
}

const get = (u: Upstream): Sink => {
  const s = new Sink();
  u.send({ method: 'GET', path: '/mcp', headers: { accept: 'text/event-stream' }, correlationId: 'c-get' }, s);
  return s;
};
const post = (u: Upstream): Sink => {
  const s = new Sink();
  u.send({ method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping"}'), correlationId: 'c-post' }, s);
  return s;
};

const clients: Array<[string, (url: string) => Upstream]> = [
  ['lean', (url) => new LeanHttpUpstream({ url, requestTimeoutMs: 30_000, streamReadTimeoutMs: 30_000, connections: 4, streamConnections: 2 })],
  ['undici', (url) => new HttpUpstream({ url, requestTimeoutMs: 30_000, streamReadTimeoutMs: 30_000, connections: 4, streamConnections: 2 })],
];

for (const [name, make] of clients) {
  test(`${name}: GET streams beyond their share are refused at once (429, Retry-After, -32009); calls still get connections; a closed stream frees its slot`, async () => {
    const up = await server();
    const u = make(up.url);
    try {
      const a = get(u);
      const b = get(u);
      await Promise.all([a.head(), b.head()]);
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      const c = get(u);
      await c.done();
      assert.equal(c.status, 429);
      assert.equal(c.headers['retry-after'], '5');
      const body = JSON.parse(c.body) as { error: { code: number } };
      assert.equal(body.error.code, -32009);
      assert.equal(up.openGets(), 2, 'the refused GET never reached the upstream');
      // the other half of the pool serves calls, several at once
      const calls = [post(u), post(u)];
      await Promise.all(calls.map((p) => p.done()));
      for (const p of calls) assert.equal(p.status, 200);
      // the client of one stream goes away: its slot is free for the next GET
      a.abort!();
      const d = get(u);
      await d.head();
      assert.equal(d.status, 200);
    } finally {
      await u.close();
      up.close();
    }
  });
}
