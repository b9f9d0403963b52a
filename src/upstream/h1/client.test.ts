import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mapUpstreamError } from '../http.js';
import { LeanHttpUpstream, leanUpstreamError, type LeanHttpUpstreamOptions } from './client.js';
import { SET_COOKIES } from './parser.js';
import { RecordingSink, closedPort, exchange, rawServer as startRawServer, request, respond, sleep, until, type RawHandler, type RawServer } from './testkit.js';

// Every test makes its own servers and clients on fresh ports and closes them; whatever a failed
// test left open is closed after the file, so a failure fails instead of hanging the run.
const leftovers: { close(): Promise<void> }[] = [];
after(() => Promise.all(leftovers.map((r) => r.close())));

function lean(url: string, opts: Partial<LeanHttpUpstreamOptions> = {}): LeanHttpUpstream {
  const up = new LeanHttpUpstream({ url, requestTimeoutMs: 5000, streamReadTimeoutMs: 5000, connections: 4, ...opts });
  leftovers.push(up);
  return up;
}

async function rawServer(handler: RawHandler): Promise<RawServer> {
  const srv = await startRawServer(handler);
  leftovers.push(srv);
  return srv;
}

interface NodeServer {
  url: string;
  server: http.Server;
  readonly connections: number;
  close(): Promise<void>;
}

async function nodeServer(handler: http.RequestListener, tune?: (s: http.Server) => void): Promise<NodeServer> {
  const server = http.createServer(handler);
  tune?.(server);
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const ns: NodeServer = {
    url: `http://127.0.0.1:${port}/mcp`,
    server,
    get connections() {
      return connections;
    },
    close: () => {
      server.closeAllConnections();
      if (!server.listening) return Promise.resolve();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  leftovers.push(ns);
  return ns;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** Deterministic filler: byte i is i mod 251 (a prime, so shifted or dropped data shows). */
function pattern(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}

describe('LeanHttpUpstream: construction', { timeout: 120_000 }, () => {
  it('refuses https: (the caller falls back to undici) and other schemes', () => {
    assert.throws(() => lean('https://example.com/mcp'), /http: only/);
    assert.throws(() => lean('ftp://example.com/'), /http: only/);
  });
  it('reports its target origin', async () => {
    const up = lean('http://127.0.0.1:9/mcp?x=1');
    assert.equal(up.target, 'http://127.0.0.1:9');
    await up.close();
  });
});

describe('LeanHttpUpstream: requests on the wire', { timeout: 120_000 }, () => {
  let srv: RawServer;
  before(async () => {
    srv = await rawServer((socket, req) => {
      socket.write(respond(200, JSON.stringify({ method: req.method, length: req.body.length }), { 'content-type': 'application/json' }));
    });
  });
  after(() => srv.close());

  it('writes head and body as the URL path with host, content-length and keep-alive', async () => {
    const up = lean(srv.url.replace('/mcp', '/base/mcp?tenant=a'));
    const o = await exchange(up, { path: '/ignored', headers: { 'content-type': 'application/json', 'mcp-session-id': 'abc' }, body: Buffer.from('{"x":1}') });
    await up.close();
    assert.equal(o.status, 200);
    const req = srv.requests.at(-1)!;
    const text = req.raw.toString('latin1');
    assert.match(text, /^POST \/base\/mcp\?tenant=a HTTP\/1\.1\r\n/);
    assert.equal(req.headers['host'], `127.0.0.1:${srv.port}`);
    assert.equal(req.headers['content-length'], '7');
    assert.equal(req.headers['connection'], 'keep-alive');
    assert.equal(req.headers['mcp-session-id'], 'abc');
    assert.equal(req.body.toString(), '{"x":1}');
  });
  it('sends GET and DELETE without a body or content-length, POST without body with content-length 0', async () => {
    const up = lean(srv.url);
    for (const method of ['GET', 'DELETE'] as const) {
      const o = await exchange(up, { method });
      assert.equal(o.status, 200);
      const req = srv.requests.at(-1)!;
      assert.equal(req.method, method);
      assert.equal(req.headers['content-length'], undefined);
    }
    up.send({ method: 'POST', path: '/mcp', headers: {}, correlationId: 'x' }, new RecordingSink());
    await until(() => srv.requests.at(-1)!.method === 'POST');
    assert.equal(srv.requests.at(-1)!.headers['content-length'], '0');
    await up.close();
  });
  it('drops hop-by-hop and framing headers a caller slipped in (we write our own)', async () => {
    const up = lean(srv.url);
    await exchange(up, { headers: { host: 'evil', 'content-length': '999', 'transfer-encoding': 'chunked', connection: 'close', 'x-keep': '1' }, body: Buffer.from('abc') });
    await up.close();
    const req = srv.requests.at(-1)!;
    assert.equal(req.headers['host'], `127.0.0.1:${srv.port}`);
    assert.equal(req.headers['content-length'], '3');
    assert.equal(req.headers['transfer-encoding'], undefined);
    assert.equal(req.headers['connection'], 'keep-alive');
    assert.equal(req.headers['x-keep'], '1');
  });
  it('writes a large body (corked head + body) intact', async () => {
    const up = lean(srv.url);
    const body = pattern(0, 3 * 1024 * 1024 + 17);
    const o = await exchange(up, { body });
    await up.close();
    assert.deepEqual(JSON.parse(o.body.toString()), { method: 'POST', length: body.length });
    assert.deepEqual(srv.requests.at(-1)!.body, body);
  });
  it('writes each request with one socket write (a corked head + body for large bodies: one writev)', async () => {
    const proto = net.Socket.prototype as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const { _write, _writev } = proto;
    const calls: string[] = [];
    const isClient = (s: net.Socket) => s.remotePort === srv.port;
    proto._write = function (this: net.Socket, ...a: unknown[]) {
      if (isClient(this)) calls.push('write');
      return _write.apply(this, a);
    };
    proto._writev = function (this: net.Socket, ...a: unknown[]) {
      if (isClient(this)) calls.push(`writev:${(a[0] as unknown[]).length}`);
      return _writev.apply(this, a);
    };
    try {
      const up = lean(srv.url);
      await exchange(up); // connects: the first write may be queued until connect
      calls.length = 0;
      await exchange(up, { headers: { 'content-type': 'application/json', 'x-a': '1', 'x-b': '2' }, body: Buffer.from('{"small":true}') });
      assert.deepEqual(calls, ['write']);
      calls.length = 0;
      await exchange(up, { body: pattern(0, 200_000) });
      assert.deepEqual(calls, ['writev:2']);
      await up.close();
    } finally {
      proto._write = _write;
      proto._writev = _writev;
    }
  });
  it('rejects header injection (CR, LF, NUL, bad names) before writing anything', async () => {
    const up = lean(srv.url);
    const before = srv.requests.length;
    const bad: Record<string, string>[] = [
      { 'x-a': 'ok\r\nx-injected: 1' },
      { 'x-a': 'ok\nGET / HTTP/1.1' },
      { 'x-a': 'nul\0byte' },
      { 'x-a\r\nx-b': 'v' },
      { 'x a': 'v' },
      { 'x:a': 'v' },
      { '': 'v' },
      { 'x-a': 'snowman \u2603' },
    ];
    for (const headers of bad) {
      const sink = new RecordingSink();
      up.send(request({ headers }), sink);
      // synchronous: the sink already has its answer when send returns
      assert.deepEqual(sink.outcome.calls, ['error'], JSON.stringify(headers));
      assert.equal(sink.outcome.error!.kind, 'upstream_error');
    }
    assert.equal(up.connectionCount, 0, 'no socket was even opened');
    await sleep(20);
    assert.equal(srv.requests.length, before);
    await up.close();
  });
});

describe('LeanHttpUpstream: responses', { timeout: 120_000 }, () => {
  it('relays a content-length body from node:http, status and headers included', async () => {
    const srv = await nodeServer(async (req, res) => {
      const body = await readBody(req);
      res.writeHead(207, { 'content-type': 'application/json', 'x-echo': String(body.length), 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ got: body.toString() }));
    });
    const up = lean(srv.url);
    const o = await exchange(up, { body: Buffer.from('hello') });
    assert.equal(o.error, undefined);
    assert.equal(o.status, 207);
    assert.equal(o.headers['content-type'], 'application/json');
    assert.equal(o.headers['x-echo'], '5');
    assert.equal(o.headers['set-cookie'], 'a=1, b=2');
    assert.deepEqual((o.headers as Record<symbol, unknown>)[SET_COOKIES], ['a=1', 'b=2']);
    assert.deepEqual(JSON.parse(o.body.toString()), { got: 'hello' });
    assert.deepEqual(o.calls.at(0), 'head');
    assert.deepEqual(o.calls.at(-1), 'end');
    await up.close();
    await srv.close();
  });
  it('relays a chunked body written in many pieces by node:http', async () => {
    const srv = await nodeServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 50; i++) {
        res.write(pattern(i * 1000, 1000));
        await sleep(0);
      }
      res.end();
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.equal(o.headers['transfer-encoding'], 'chunked');
    assert.deepEqual(o.body, pattern(0, 50_000));
    await up.close();
    await srv.close();
  });
  it('reads chunk extensions and trailers from a raw server and keeps the connection', async () => {
    const srv = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n4;a=b\r\nwiki\r\n5 ;c\r\npedia\r\n0\r\nx-sum: 9\r\n\r\n');
    });
    const up = lean(srv.url);
    const a = await exchange(up);
    const b = await exchange(up);
    assert.equal(a.body.toString(), 'wikipedia');
    assert.equal(b.body.toString(), 'wikipedia');
    assert.equal(a.headers['x-sum'], undefined, 'trailers are not headers');
    assert.equal(srv.connections, 1);
    await up.close();
    await srv.close();
  });
  it('delivers a chunked response the server sends one byte per TCP write', async () => {
    const wire = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nt: 1\r\n\r\n');
    const srv = await rawServer(async (socket) => {
      for (const byte of wire) {
        socket.write(Buffer.from([byte]));
        await sleep(1);
      }
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.equal(o.error, undefined);
    assert.equal(o.body.toString(), 'abcde');
    assert.equal(o.headers['content-type'], 'text/plain');
    const again = await exchange(up);
    assert.equal(again.body.toString(), 'abcde');
    assert.equal(srv.connections, 1);
    await up.close();
    await srv.close();
  });
  it('streams SSE event by event: the first event arrives before the server ends the response', async () => {
    let clientGotFirst!: () => void;
    const firstSeen = new Promise<void>((resolve) => (clientGotFirst = resolve));
    const order: string[] = [];
    const srv = await nodeServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: {"n":1}\n\n');
      order.push('server wrote 1');
      await firstSeen; // the server goes on only once the client holds event 1
      res.write('event: message\ndata: {"n":2}\n\n');
      order.push('server ended');
      res.end();
    });
    const up = lean(srv.url);
    const sink = new RecordingSink();
    sink.onCall = (what, o) => {
      if (what === 'data' && Buffer.concat(o.chunks).includes('{"n":1}')) {
        order.push('client got 1');
        clientGotFirst();
      }
    };
    up.send(request(), sink);
    const o = await sink.done;
    assert.equal(o.body.toString(), 'event: message\ndata: {"n":1}\n\nevent: message\ndata: {"n":2}\n\n');
    assert.deepEqual(order.slice(0, 3), ['server wrote 1', 'client got 1', 'server ended']);
    await up.close();
    await srv.close();
  });
  it('answers 204 with a head, no data and an end, and reuses the connection', async () => {
    const srv = await nodeServer((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    const up = lean(srv.url);
    const a = await exchange(up);
    assert.deepEqual(a.calls, ['head', 'end']);
    assert.equal(a.status, 204);
    const b = await exchange(up);
    assert.equal(b.status, 204);
    assert.equal(srv.connections, 1);
    await up.close();
    await srv.close();
  });
  it('skips 100 Continue and 103 Early Hints, sent before the real answer', async () => {
    const srv = await rawServer(async (socket) => {
      socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      await sleep(5);
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n');
      await sleep(5);
      socket.write(respond(200, 'final', { 'x-final': '1' }));
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.deepEqual(o.calls, ['head', 'data', 'end']);
    assert.equal(o.status, 200);
    assert.equal(o.headers['x-final'], '1');
    assert.equal(o.headers['link'], undefined);
    assert.equal(o.body.toString(), 'final');
    const again = await exchange(up);
    assert.equal(again.body.toString(), 'final');
    assert.equal(srv.connections, 1);
    await up.close();
    await srv.close();
  });
  it('node:http 100 Continue (writeContinue) then 200', async () => {
    const srv = await nodeServer((_req, res) => {
      res.writeContinue();
      setTimeout(() => res.end('after continue'), 5);
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.equal(o.status, 200);
    assert.equal(o.body.toString(), 'after continue');
    await up.close();
    await srv.close();
  });
  it('reads a body delimited by close (HTTP/1.0 style) and does not reuse that socket', async () => {
    const srv = await rawServer((socket) => {
      socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
    });
    const up = lean(srv.url);
    const a = await exchange(up);
    const b = await exchange(up);
    assert.equal(a.body.toString(), 'until the end');
    assert.equal(b.body.toString(), 'until the end');
    assert.equal(srv.connections, 2);
    await up.close();
    await srv.close();
  });
});

describe('LeanHttpUpstream: keep-alive', { timeout: 120_000 }, () => {
  it('N sequential requests use one socket (node:http)', async () => {
    const srv = await nodeServer((_req, res) => res.end('ok'));
    const up = lean(srv.url);
    for (let i = 0; i < 25; i++) assert.equal((await exchange(up)).body.toString(), 'ok');
    assert.equal(srv.connections, 1);
    assert.equal(up.connectionCount, 1);
    await up.close();
    await srv.close();
  });
  it('a `connection: close` answer is read fully, then that socket is not reused', async () => {
    const srv = await rawServer((socket) => {
      socket.write(respond(200, 'bye', { connection: 'close' }));
    });
    const up = lean(srv.url);
    for (let i = 0; i < 3; i++) assert.equal((await exchange(up)).body.toString(), 'bye');
    assert.equal(srv.connections, 3);
    assert.equal(srv.requests.every((r) => r.indexOnConnection === 0), true);
    await up.close();
    await srv.close();
  });
  it('node:http answering `Connection: close` (server.keepAliveTimeout = 0 semantics via res.shouldKeepAlive)', async () => {
    const srv = await nodeServer((_req, res) => {
      res.shouldKeepAlive = false;
      res.end('closing');
    });
    const up = lean(srv.url);
    for (let i = 0; i < 3; i++) assert.equal((await exchange(up)).body.toString(), 'closing');
    assert.equal(srv.connections, 3);
    await up.close();
    await srv.close();
  });
  it('a server that closes idle sockets sooner than we would: the next request succeeds on a fresh socket', async () => {
    // No Keep-Alive hint: the client learns of the close only from the FIN on the idle socket.
    const srv = await rawServer((socket) => {
      socket.write(respond(200, 'ok'));
      setTimeout(() => socket.end(), 30); // the server's idle timeout
    });
    const up = lean(srv.url, { idleTimeoutMs: 60_000 }); // only the FIN can explain a dropped socket
    for (let i = 0; i < 4; i++) {
      const o = await exchange(up);
      assert.equal(o.error, undefined, `request ${i}: ${o.error?.message}`);
      assert.equal(o.body.toString(), 'ok');
      await until(() => up.connectionCount === 0, 'the idle socket to be dropped after the server closed it');
    }
    assert.equal(srv.connections, 4);
    await up.close();
    await srv.close();
  });
  it('node:http with a short keepAliveTimeout: requests spaced past it all succeed', async () => {
    const srv = await nodeServer((_req, res) => res.end('fine'), (s) => {
      s.keepAliveTimeout = 50;
    });
    const up = lean(srv.url);
    for (let i = 0; i < 4; i++) {
      const o = await exchange(up);
      assert.equal(o.error, undefined, `request ${i}: ${o.error?.message}`);
      await sleep(120);
    }
    await up.close();
    await srv.close();
  });
  it('honours `Keep-Alive: timeout=N`: reused within N-1 s, discarded after', async () => {
    const srv = await rawServer((socket) => {
      socket.write(respond(200, 'ka', { 'keep-alive': 'timeout=2' })); // trusted as 1 s
    });
    const up = lean(srv.url, { idleTimeoutMs: 4000 });
    await exchange(up);
    await exchange(up);
    assert.equal(srv.connections, 1, 'reused right away');
    await sleep(1100);
    await exchange(up);
    assert.equal(srv.connections, 2, 'not reused once idle longer than the hint allows');
    await up.close();
    await srv.close();
  });
  it('a `Keep-Alive: timeout=1` (or less) hint means: do not reuse', async () => {
    const srv = await rawServer((socket) => {
      socket.write(respond(200, 'ka', { 'keep-alive': 'timeout=1' }));
    });
    const up = lean(srv.url);
    await exchange(up);
    await exchange(up);
    assert.equal(srv.connections, 2);
    await up.close();
    await srv.close();
  });
  it('discards sockets idle longer than idleTimeoutMs', async () => {
    const srv = await nodeServer((_req, res) => res.end('x'));
    const up = lean(srv.url, { idleTimeoutMs: 80 });
    await exchange(up);
    assert.equal(up.connectionCount, 1);
    await until(() => up.connectionCount === 0, 'the idle sweep');
    await exchange(up);
    assert.equal(srv.connections, 2);
    await up.close();
    await srv.close();
  });
  it('never reuses a socket whose response was followed by unexpected bytes', async () => {
    const srv = await rawServer((socket) => {
      socket.write(Buffer.concat([respond(200, 'one'), Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra')]));
    });
    const up = lean(srv.url);
    const a = await exchange(up);
    assert.equal(a.body.toString(), 'one');
    const b = await exchange(up);
    assert.equal(b.body.toString(), 'one', 'the second request got its own answer, not the stray one');
    assert.equal(srv.connections, 2);
    await up.close();
    await srv.close();
  });
});

describe('LeanHttpUpstream: failures', { timeout: 120_000 }, () => {
  it('connect refused → upstream_connection_failed', async () => {
    const port = await closedPort();
    const up = lean(`http://127.0.0.1:${port}/mcp`);
    const o = await exchange(up);
    assert.deepEqual(o.calls, ['error']);
    assert.equal(o.error!.kind, 'upstream_connection_failed');
    assert.match(o.error!.details!, /ECONNREFUSED/);
    assert.equal(up.connectionCount, 0);
    await up.close();
  });
  it('an unreachable address fails with upstream_connection_failed (connect timeout or unreachable)', async () => {
    const up = lean('http://192.0.2.1:81/mcp', { connectTimeoutMs: 100, requestTimeoutMs: 5000 }); // TEST-NET-1
    const o = await exchange(up);
    assert.deepEqual(o.calls, ['error']);
    assert.equal(o.error!.kind, 'upstream_connection_failed', o.error!.details);
    await up.close();
  });
  it('a connect that never completes fails at connectTimeoutMs with upstream_connection_failed', async () => {
    // A socket that stays "connecting" forever (a SYN into a black hole), in place of net.connect.
    class BlackHole extends EventEmitter {
      destroyed = false;
      readableEnded = false;
      closed = false;
      written: Buffer[] = [];
      write(b: Buffer) {
        this.written.push(b);
        return true;
      }
      cork() {}
      uncork() {}
      pause() {}
      resume() {}
      ref() {}
      unref() {}
      destroy() {
        this.destroyed = true;
        this.closed = true;
        setImmediate(() => this.emit('close'));
      }
    }
    const hole = new BlackHole();
    const netMutable = net as unknown as { connect: unknown };
    const connect = netMutable.connect;
    netMutable.connect = () => hole;
    const keepLoopAlive = setInterval(() => {}, 1000); // a real connecting socket would hold the loop
    try {
      const up = lean('http://127.0.0.1:1/mcp', { connectTimeoutMs: 80, requestTimeoutMs: 5000 });
      const o = await exchange(up);
      assert.deepEqual(o.calls, ['error']);
      assert.equal(o.error!.kind, 'upstream_connection_failed');
      assert.match(o.error!.details!, /UND_ERR_CONNECT_TIMEOUT/);
      assert.equal(hole.destroyed, true);
      assert.equal(hole.written.length, 1, 'the request was queued on the socket once, never rewritten');
      await up.close();
    } finally {
      netMutable.connect = connect;
      clearInterval(keepLoopAlive);
    }
  });
  it('every queued request fails on its own when the upstream is down', async () => {
    const port = await closedPort();
    const up = lean(`http://127.0.0.1:${port}/mcp`, { connections: 2 });
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => exchange(up)));
    for (const o of outcomes) assert.equal(o.error!.kind, 'upstream_connection_failed');
    await up.close();
  });
  it('reset before any response byte → upstream_connection_failed; the POST is not retried', async () => {
    const srv = await rawServer((socket) => {
      socket.resetAndDestroy();
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.equal(o.error!.kind, 'upstream_connection_failed');
    await sleep(30);
    assert.equal(srv.requests.length, 1, 'sent exactly once');
    await up.close();
    await srv.close();
  });
  it('server closing after reading the request (no answer) → connection_failed, sent once', async () => {
    const srv = await rawServer((socket) => {
      socket.end();
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.equal(o.error!.kind, 'upstream_connection_failed');
    assert.match(o.error!.details!, /UND_ERR_SOCKET/);
    await sleep(30);
    assert.equal(srv.requests.length, 1);
    await up.close();
    await srv.close();
  });
  it('server reset mid-body → onHead, then onError (upstream_error), nothing after', async () => {
    const srv = await rawServer(async (socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"partial":');
      await sleep(10);
      socket.resetAndDestroy();
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.equal(o.calls[0], 'head');
    assert.equal(o.calls.at(-1), 'error');
    assert.equal(o.calls.filter((c) => c === 'error' || c === 'end').length, 1);
    assert.equal(o.error!.kind, 'upstream_error');
    await up.close();
    await srv.close();
  });
  it('server FIN mid-body (content-length not reached, or chunked unfinished) → upstream_error', async () => {
    for (const partial of [
      'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
      'HTTP/1.1 200 OK\r\nContent-Len',
    ]) {
      const srv = await rawServer((socket) => {
        socket.end(partial);
      });
      const up = lean(srv.url);
      const o = await exchange(up);
      assert.equal(o.error!.kind, 'upstream_error', partial);
      await up.close();
      await srv.close();
    }
  });
  it('no response head in time → upstream_timeout; the socket is destroyed, not reused', async () => {
    let first = true;
    const srv = await rawServer((socket) => {
      if (first) first = false; // never answer the first request
      else socket.write(respond(200, 'second'));
    });
    const up = lean(srv.url, { requestTimeoutMs: 150, connections: 1 });
    const o = await exchange(up);
    assert.deepEqual(o.calls, ['error']);
    assert.equal(o.error!.kind, 'upstream_timeout');
    assert.equal(o.error!.details, 'UND_ERR_HEADERS_TIMEOUT');
    await until(() => srv.open.size === 0, 'the server to see the socket close');
    const b = await exchange(up);
    assert.equal(b.body.toString(), 'second');
    assert.equal(srv.connections, 2);
    await up.close();
    await srv.close();
  });
  it('silence inside a body longer than streamReadTimeoutMs → onHead then upstream_timeout', async () => {
    const srv = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n');
    });
    const up = lean(srv.url, { streamReadTimeoutMs: 150 });
    const o = await exchange(up);
    assert.deepEqual(o.calls, ['head', 'data', 'error']);
    assert.equal(o.error!.kind, 'upstream_timeout');
    assert.equal(o.error!.details, 'UND_ERR_BODY_TIMEOUT');
    await until(() => srv.open.size === 0, 'the server to see the socket close');
    await up.close();
    await srv.close();
  });
  it('a slow but steady stream does not trip the silence timeout', async () => {
    const srv = await nodeServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 8; i++) {
        res.write(`data: ${i}\n\n`);
        await sleep(60);
      }
      res.end();
    });
    const up = lean(srv.url, { streamReadTimeoutMs: 200 });
    const o = await exchange(up);
    assert.equal(o.error, undefined);
    assert.equal(o.body.toString().split('\n\n').length - 1, 8);
    await up.close();
    await srv.close();
  });
  const malformed: [string, string | Buffer][] = [
    ['bad status line', 'HTTP/1.1 OK 200\r\nContent-Length: 0\r\n\r\n'],
    ['not HTTP at all', '<html><body>Bad Gateway</body></html>\r\n\r\n'],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n'],
    ['content-length and transfer-encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
    ['differing content-lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'],
    ['invalid content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\nabc'],
    ['oversize headers', `HTTP/1.1 200 OK\r\nX-Huge: ${'h'.repeat(70 * 1024)}\r\nContent-Length: 0\r\n\r\n`],
    ['header with bare LF', 'HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: 0\r\n\r\n'],
    ['101 upgrade nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'],
  ];
  for (const [name, wire] of malformed) {
    it(`malformed response (${name}) → upstream_error, the socket is discarded`, async () => {
      let n = 0;
      const srv = await rawServer((socket) => {
        socket.write(n++ === 0 ? wire : respond(200, 'good'));
      });
      const up = lean(srv.url, { connections: 1 });
      const o = await exchange(up);
      assert.equal(o.error?.kind, 'upstream_error', name);
      assert.equal(o.calls.filter((c) => c === 'error' || c === 'end').length, 1);
      const b = await exchange(up);
      assert.equal(b.body.toString(), 'good');
      assert.equal(srv.connections, 2, 'a fresh socket after the malformed answer');
      await up.close();
      await srv.close();
    });
  }
  it('an error after onHead arrives once, and never together with onEnd', async () => {
    const srv = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nnothex\r\n');
    });
    const up = lean(srv.url);
    const o = await exchange(up);
    assert.deepEqual(o.calls, ['head', 'data', 'error']);
    assert.equal(o.error!.kind, 'upstream_error');
    await up.close();
    await srv.close();
  });
  it('a sink that throws fails its own request (upstream_error) and not the client', async () => {
    const srv = await nodeServer((_req, res) => res.end('payload'));
    const up = lean(srv.url);
    const sink = new RecordingSink();
    sink.more = () => {
      throw new Error('sink bug');
    };
    up.send(request(), sink);
    const o = await sink.done;
    assert.equal(o.error!.kind, 'upstream_error');
    assert.match(o.error!.message, /sink bug/);
    assert.equal((await exchange(up)).body.toString(), 'payload');
    await up.close();
    await srv.close();
  });
  it('classifies errors as mapUpstreamError does for the same codes', () => {
    const cases: [string, boolean][] = [
      ['UND_ERR_HEADERS_TIMEOUT', false],
      ['UND_ERR_BODY_TIMEOUT', true],
      ['ECONNREFUSED', false],
      ['ECONNRESET', false],
      ['ECONNRESET', true],
      ['UND_ERR_SOCKET', false],
      ['UND_ERR_SOCKET', true],
      ['UND_ERR_CONNECT_TIMEOUT', false],
      ['ENOTFOUND', false],
      ['HPE_INVALID_CONSTANT', false],
      ['HPE_INVALID_CHUNK_SIZE', true],
    ];
    for (const [code, afterHead] of cases) {
      const err = Object.assign(new Error(`msg ${code}`), { code });
      const theirs = mapUpstreamError(err, afterHead);
      const ours = leanUpstreamError(code, err.message, afterHead ? 100 : 0);
      assert.equal(ours.kind, theirs.kind, `${code} afterHead=${afterHead}`);
      assert.equal(ours.details, theirs.details, `${code} afterHead=${afterHead}`);
    }
  });
});

describe('LeanHttpUpstream: backpressure', { timeout: 120_000 }, () => {
  it('a sink returning false pauses the socket until resume: the server blocks, nothing is lost', async () => {
    const TOTAL = 24 * 1024 * 1024;
    const PIECE = 64 * 1024;
    let written = 0;
    let blockedAt = -1;
    let drains = 0;
    const srv = await nodeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
      const pump = (): void => {
        while (written < TOTAL) {
          const ok = res.write(pattern(written, PIECE));
          written += PIECE;
          if (!ok) {
            if (blockedAt < 0) blockedAt = written;
            res.once('drain', () => {
              drains++;
              pump();
            });
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const up = lean(srv.url, { streamReadTimeoutMs: 300 });
    const sink = new RecordingSink();
    let received = 0;
    let paused = false;
    sink.more = (chunk) => {
      received += chunk.length;
      if (received === chunk.length) {
        paused = true;
        return false; // pause after the very first piece
      }
      return true;
    };
    up.send(request(), sink);
    await until(() => paused, 'the first piece');
    // The server fills the socket buffers and its write() starts returning false.
    await until(() => blockedAt > 0, 'the server to block');
    const writtenWhenBlocked = written;
    await sleep(500); // longer than streamReadTimeoutMs: a paused body is not "silent"
    assert.equal(written, writtenWhenBlocked, 'the server stays blocked while we are paused');
    assert.ok(written < TOTAL / 2, `server blocked at ${written} of ${TOTAL}`);
    assert.equal(sink.outcome.calls.includes('error'), false, 'no timeout while paused');
    const receivedWhilePaused = received;
    assert.ok(receivedWhilePaused <= PIECE * 2);
    sink.resume!();
    const o = await sink.done;
    assert.equal(o.error, undefined);
    assert.equal(o.body.length, TOTAL);
    assert.ok(o.body.equals(pattern(0, TOTAL)), 'every byte, in order');
    assert.ok(drains > 0);
    await up.close();
    await srv.close();
  });
  it('pausing on every chunk (resume later each time) loses nothing, from a chunked SSE stream', async () => {
    const srv = await nodeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // one write, many events: the client pauses mid-read and must keep the rest of that read
      let all = '';
      for (let i = 0; i < 300; i++) all += `data: ${i}\n\n`;
      res.write(all.slice(0, 1000));
      res.write(all.slice(1000));
      res.end();
    });
    const up = lean(srv.url);
    const sink = new RecordingSink();
    sink.more = () => {
      setImmediate(() => sink.resume!());
      return false;
    };
    up.send(request(), sink);
    const o = await sink.done;
    let expected = '';
    for (let i = 0; i < 300; i++) expected += `data: ${i}\n\n`;
    assert.equal(o.body.toString(), expected);
    await up.close();
    await srv.close();
  });
  it('a paused chunked response whose terminator is still unread completes after resume, and the socket is reused', async () => {
    const srv = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n');
    });
    const up = lean(srv.url);
    const sink = new RecordingSink();
    sink.more = () => false;
    up.send(request(), sink);
    await until(() => sink.outcome.chunks.length === 1, 'the first chunk');
    await sleep(20);
    assert.deepEqual(sink.outcome.calls, ['head', 'data'], 'nothing more until resume');
    sink.resume!();
    await until(() => sink.outcome.chunks.length === 2, 'the second chunk');
    sink.resume!();
    const o = await sink.done;
    assert.equal(o.body.toString(), 'abcdef');
    assert.equal((await exchange(up)).body.toString(), 'abcdef');
    assert.equal(srv.connections, 1);
    await up.close();
    await srv.close();
  });
});

describe('LeanHttpUpstream: chunk ownership', { timeout: 120_000 }, () => {
  it('chunks handed to sinks stay intact while other sockets keep reading (no shared-buffer aliasing)', async () => {
    const srv = await nodeServer(async (req, res) => {
      const id = Number(req.headers['x-id']);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 20; i++) {
        res.write(pattern(id * 7919 + i * 3000, 3000));
        await sleep(Math.floor(Math.random() * 2));
      }
      res.end();
    });
    const up = lean(srv.url, { connections: 6 });
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, id) => exchange(up, { headers: { 'x-id': String(id) } })));
    outcomes.forEach((o, id) => assert.ok(o.body.equals(pattern(id * 7919, 60_000)), `body ${id} intact`));
    await up.close();
    await srv.close();
  });
});

describe('LeanHttpUpstream: abort, queue, close', { timeout: 120_000 }, () => {
  it('sink.abort mid-body destroys that socket; the sink hears nothing more; the next request gets a fresh socket', async () => {
    const srv = await nodeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      // never ends on its own
    });
    const up = lean(srv.url, { connections: 1 });
    const sink = new RecordingSink();
    sink.onCall = (what) => {
      if (what === 'data') sink.abort!();
    };
    up.send(request(), sink);
    await until(() => sink.outcome.calls.includes('data'), 'the first event');
    await until(() => up.connectionCount === 0, 'the socket to go');
    await sleep(20);
    assert.deepEqual(sink.outcome.calls, ['head', 'data'], 'no end, no error after abort');
    sink.abort!(); // idempotent
    const srv2Conns = srv.connections;
    const b = new RecordingSink();
    b.onCall = (what) => {
      if (what === 'data') b.abort!();
    };
    up.send(request(), b);
    await until(() => b.outcome.calls.includes('data'), 'the second stream');
    assert.equal(srv.connections, srv2Conns + 1);
    await up.close();
    await srv.close();
  });
  it('sink.abort before the head (slow server) destroys the socket; nothing is delivered', async () => {
    const srv = await rawServer(() => {});
    const up = lean(srv.url);
    const sink = new RecordingSink();
    up.send(request(), sink);
    await until(() => srv.requests.length === 1, 'the request to arrive');
    sink.abort!();
    await until(() => srv.open.size === 0, 'the server to see the close');
    assert.deepEqual(sink.outcome.calls, []);
    await up.close();
    assert.deepEqual(sink.outcome.calls, [], 'close() does not call an aborted sink');
    await srv.close();
  });
  it('waiting requests are served FIFO; an aborted waiting request is never sent', async () => {
    const order: string[] = [];
    const srv = await rawServer(async (socket, req) => {
      order.push(req.headers['x-id']!);
      await sleep(5);
      socket.write(respond(200, req.headers['x-id']!));
    });
    const up = lean(srv.url, { connections: 1 });
    const sinks = Array.from({ length: 6 }, () => new RecordingSink());
    sinks.forEach((s, i) => up.send(request({ headers: { 'x-id': String(i) } }), s));
    assert.equal(up.queued, 5);
    sinks[3]!.abort!();
    const done = await Promise.all([0, 1, 2, 4, 5].map((i) => sinks[i]!.done));
    assert.deepEqual(done.map((o) => o.body.toString()), ['0', '1', '2', '4', '5']);
    assert.deepEqual(order, ['0', '1', '2', '4', '5']);
    assert.deepEqual(sinks[3]!.outcome.calls, []);
    assert.equal(srv.connections, 1);
    await up.close();
    await srv.close();
  });
  it('a waiting request times out (upstream_timeout) if no socket frees up in time', async () => {
    const srv = await rawServer(() => {}); // never answers
    const up = lean(srv.url, { connections: 1, requestTimeoutMs: 150 });
    const [a, b] = await Promise.all([exchange(up), exchange(up)]);
    assert.equal(a.error!.kind, 'upstream_timeout');
    assert.equal(b.error!.kind, 'upstream_timeout');
    await up.close();
    await srv.close();
  });
  it('close() fails requests in flight and waiting with upstream_connection_failed, and later sends too', async () => {
    const srv = await rawServer(() => {});
    const up = lean(srv.url, { connections: 1 });
    const inflight = new RecordingSink();
    const waiting = new RecordingSink();
    up.send(request(), inflight);
    up.send(request(), waiting);
    await until(() => srv.requests.length === 1, 'the first request');
    await up.close();
    assert.equal((await inflight.done).error!.kind, 'upstream_connection_failed');
    assert.equal((await waiting.done).error!.kind, 'upstream_connection_failed');
    const late = await exchange(up);
    assert.equal(late.error!.kind, 'upstream_connection_failed');
    await until(() => srv.open.size === 0, 'sockets closed');
    await srv.close();
  });
  it('200 concurrent requests over 8 sockets: every answer reaches its own request', async () => {
    const srv = await nodeServer(async (req, res) => {
      const body = await readBody(req);
      await sleep(Math.floor(Math.random() * 4));
      // echo the id in a header and the body in a body of a size that depends on it
      const id = req.headers['x-id'] as string;
      const payload = `${id}:${body.toString()}:${'z'.repeat(Number(id) * 13)}`;
      if (Number(id) % 3 === 0) {
        res.writeHead(200, { 'x-id': id });
        res.write(payload.slice(0, 5));
        await sleep(1);
        res.end(payload.slice(5)); // chunked
      } else res.writeHead(200, { 'x-id': id, 'content-length': Buffer.byteLength(payload) }).end(payload);
    });
    const up = lean(srv.url, { connections: 8 });
    const n = 200;
    const outcomes = await Promise.all(
      Array.from({ length: n }, (_, i) => exchange(up, { headers: { 'x-id': String(i) }, body: Buffer.from(`body-${i}`) })),
    );
    outcomes.forEach((o, i) => {
      assert.equal(o.error, undefined, `request ${i}`);
      assert.equal(o.headers['x-id'], String(i));
      assert.equal(o.body.toString(), `${i}:body-${i}:${'z'.repeat(i * 13)}`);
    });
    assert.equal(srv.connections, 8, 'all 8 sockets used, never more');
    assert.ok(up.connectionCount <= 8);
    await up.close();
    await srv.close();
  });
});

describe('LeanHttpUpstream against the uWS bench fixture', { timeout: 120_000 }, () => {
  type Fixture = { port: number; url: string; close: () => void };
  let fx: Fixture;
  before(async () => {
    const here = new URL('../../../bench/fixture.mjs', import.meta.url).href;
    const mod = (await import(here)) as { startFixture: (o: { port: number }) => Promise<Fixture> };
    fx = await mod.startFixture({ port: 0 });
  });
  after(() => fx.close());

  const call = (id: number, name: string, args: unknown = {}) =>
    Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }));
  const H = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  it('tools/call answers, sequential requests on one socket', async () => {
    const up = lean(fx.url);
    for (let i = 1; i <= 20; i++) {
      const o = await exchange(up, { headers: H, body: call(i, 'echo') });
      assert.equal(o.status, 200);
      assert.equal(o.headers['content-type'], 'application/json');
      assert.equal(JSON.parse(o.body.toString()).id, i);
    }
    assert.equal(up.connectionCount, 1);
    await up.close();
  });
  it('GET (405) and DELETE (200) without bodies', async () => {
    const up = lean(fx.url);
    assert.equal((await exchange(up, { method: 'GET', headers: { accept: 'text/event-stream' } })).status, 405);
    assert.equal((await exchange(up, { method: 'DELETE', headers: {} })).status, 200);
    assert.equal((await exchange(up, { headers: H, body: call(1, 'echo') })).status, 200);
    assert.equal(up.connectionCount, 1);
    await up.close();
  });
  it('streams a 16 MiB result with a sink that pauses at random; every byte arrives', async () => {
    const up = lean(fx.url);
    const sink = new RecordingSink();
    let n = 0;
    sink.more = () => {
      if (++n % 3 !== 0) return true;
      setTimeout(() => sink.resume!(), 1);
      return false;
    };
    up.send(request({ headers: H, body: call(7, 'big_16mb') }), sink);
    const o = await sink.done;
    assert.equal(o.error, undefined);
    assert.equal(o.body.length, Number(o.headers['content-length']));
    const parsed = JSON.parse(o.body.toString());
    assert.equal(parsed.id, 7);
    assert.ok(parsed.result.content[0].text.length > 16_000_000);
    // and the socket is fine for the next request
    assert.equal(JSON.parse((await exchange(up, { headers: H, body: call(8, 'echo') })).body.toString()).id, 8);
    assert.equal(up.connectionCount, 1);
    await up.close();
  });
  it('relays sse_tick: every notification, then the result, event by event', async () => {
    const up = lean(fx.url);
    const o = await exchange(up, { headers: H, body: call(3, 'sse_tick', { count: 20, intervalMs: 1 }) });
    assert.equal(o.headers['content-type'], 'text/event-stream');
    const events = o.body.toString().split('\n\n').filter((e) => e.length > 0);
    assert.equal(events.length, 21);
    assert.ok(o.chunks.length > 1, 'delivered as it came, not in one piece');
    assert.equal(JSON.parse(events.at(-1)!.replace(/^event: message\ndata: /, '')).id, 3);
    await up.close();
  });
  it('200 concurrent tools/calls over 8 sockets: each answer carries its own request id', async () => {
    const up = lean(fx.url, { connections: 8 });
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => exchange(up, { headers: H, body: call(1000 + i, i % 50 === 0 ? 'sse_tick' : 'echo', { count: 2, intervalMs: 0 }) })));
    outcomes.forEach((o, i) => {
      assert.equal(o.error, undefined);
      assert.ok(o.body.includes(`"id":${1000 + i}`), `request ${i} got ${o.body.toString().slice(0, 80)}`);
    });
    assert.ok(up.connectionCount <= 8);
    await up.close();
  });
});
