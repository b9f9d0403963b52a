// The backstop of the containment: a handler that throws inside a uWS callback (native code,
// where nothing else would catch) gets its request answered -32603, and the port serves on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTrafficServer } from './http-server.js';

test('a handler that throws: that request gets -32603 with a correlation id, the next request is served', async () => {
  let calls = 0;
  const server = await startTrafficServer({
    host: '127.0.0.1', port: 0, maxBodyBytes: 1024,
    handler: (ex) => {
      calls++;
      if (ex.path === '/boom') throw new TypeError("Cannot read properties of undefined (reading 'kind')");
      ex.respond(200, { 'content-type': 'text/plain' }, 'fine');
    },
  });
  try {
    const base = `http://127.0.0.1:${server.port}`;
    for (const init of [{ method: 'GET' }, { method: 'POST', body: '{"jsonrpc":"2.0"}', headers: { 'content-type': 'application/json' } }]) {
      const r = await fetch(`${base}/boom`, init);
      assert.equal(r.status, 500);
      const body = (await r.json()) as { error: { code: number; data: { error_type: string; correlation_id: string } } };
      assert.equal(body.error.code, -32603);
      assert.equal(body.error.data.error_type, 'internal_error');
      assert.match(body.error.data.correlation_id, /^[0-9a-f-]{36}$/);
      assert.equal(await (await fetch(`${base}/ok`, init)).text(), 'fine');
    }
    assert.equal(calls, 4);
    assert.equal(server.inFlight(), 0, 'the failed exchanges are not left counted in flight');
  } finally {
    server.stopListening();
  }
});

// ---- bodies over the limit, 204s, CORS and the implementation header (issue 15) ----

import { connect } from 'node:net';
import type { Exchange } from './http-server.js';

interface RawAnswer { status: number; headers: Record<string, string>; body: string }

/**
 * Writes `requests` on one connection (each a head and a body, the body in 16 KiB writes, all
 * of it) and reads answers framed by Content-Length (none for a 204). Resolves once `expect`
 * answers are in (a later request answered is what shows the connection was kept usable), or,
 * with `untilClose`, when the server ends the connection; on a reset, with what came before.
 */
function raw(port: number, requests: { head: string; body?: Buffer }[], expect: number, untilClose = false): Promise<{ answers: RawAnswer[]; closed: boolean; error?: string }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const answers: RawAnswer[] = [];
    let done = false;
    const finish = (closed: boolean, error?: string): void => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(error === undefined ? { answers, closed } : { answers, closed, error });
    };
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) break;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          const name = l.slice(0, i).toLowerCase();
          headers[name] = headers[name] === undefined ? l.slice(i + 1).trim() : `${headers[name]}, ${l.slice(i + 1).trim()}`;
        }
        const status = Number(lines[0]!.split(' ')[1]);
        const len = status === 204 ? 0 : Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + len) break;
        answers.push({ status, headers, body: buf.subarray(end + 4, end + 4 + len).toString() });
        buf = buf.subarray(end + 4 + len);
      }
      if (answers.length >= expect && !untilClose) finish(false);
    });
    s.on('end', () => finish(true));
    s.on('error', (e: NodeJS.ErrnoException) => finish(true, e.code ?? e.message));
    s.on('connect', async () => {
      for (const r of requests) {
        s.write(r.head);
        const body = r.body ?? Buffer.alloc(0);
        for (let i = 0; i < body.length; i += 16 * 1024) {
          if (!s.write(body.subarray(i, i + 16 * 1024))) await new Promise((ok) => s.once('drain', ok));
        }
      }
    });
  });
}

const post = (body: Buffer, path = '/mcp'): { head: string; body: Buffer } => ({
  head: `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, body,
});

async function withServer(opts: { maxBodyBytes: number; maxDrainBytes?: number; handler?: (ex: Exchange) => void }, run: (port: number, seen: Exchange[]) => Promise<void>): Promise<void> {
  const seen: Exchange[] = [];
  const server = await startTrafficServer({
    host: '127.0.0.1', port: 0, maxBodyBytes: opts.maxBodyBytes, ...(opts.maxDrainBytes !== undefined ? { maxDrainBytes: opts.maxDrainBytes } : {}),
    handler: opts.handler ?? ((ex) => {
      seen.push(ex);
      if (ex.overLimit) ex.respond(413, { 'content-type': 'application/json' }, '{"too":"large"}');
      else ex.respond(200, { 'content-type': 'text/plain' }, `got ${ex.body?.length ?? 0}`);
    }),
  });
  try {
    await run(server.port, seen);
  } finally {
    server.stopListening();
  }
}

test('a body at the limit is read whole; one byte over gets its 413 after the body is read, on a connection that stays usable', async () => {
  await withServer({ maxBodyBytes: 1000 }, async (port, seen) => {
    const r = await raw(port, [post(Buffer.alloc(1000, 'a')), post(Buffer.alloc(1001, 'b')), post(Buffer.alloc(3, 'c'))], 3);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.answers.map((a) => [a.status, a.body]), [[200, 'got 1000'], [413, '{"too":"large"}'], [200, 'got 3']]);
    // the third answer is the proof: the over-limit body was drained, so the next request on the connection was understood
    assert.equal(seen[1]!.body, null, 'an over-limit body is not kept');
  });
});

test('a body far over the limit (within the drain allowance) is drained: the client sending all of it gets the 413, no reset', async () => {
  await withServer({ maxBodyBytes: 1024, maxDrainBytes: 8 * 1024 * 1024 }, async (port) => {
    const r = await raw(port, [post(Buffer.alloc(4 * 1024 * 1024, 'y'))], 1);
    assert.equal(r.error, undefined, 'no ECONNRESET');
    assert.equal(r.answers[0]?.status, 413);
    assert.equal(r.answers[0]?.body, '{"too":"large"}');
  });
});

test('a chunked body over the limit (no Content-Length to go by) is drained and answered 413', async () => {
  await withServer({ maxBodyBytes: 1000 }, async (port) => {
    const chunks = Array.from({ length: 5 }, () => `3e8\r\n${'z'.repeat(1000)}\r\n`).join('') + '0\r\n\r\n';
    const r = await raw(port, [{ head: 'POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n', body: Buffer.from(chunks) }, post(Buffer.from('{}'))], 2);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.answers.map((a) => a.status), [413, 200]);
  });
});

test('past the drain allowance: answered at once and the connection closed (the unread rest is not taken for a request)', async () => {
  await withServer({ maxBodyBytes: 1000, maxDrainBytes: 0 }, async (port, seen) => {
    // Only the head is sent: the answer must not wait for a body the server will not read.
    const r = await raw(port, [{ head: 'POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1001\r\n\r\n' }], 1, true);
    assert.equal(r.answers[0]?.status, 413);
    assert.equal(r.closed, true);
    assert.equal(r.error, undefined, 'a clean close: nothing was left unread');
    assert.equal(seen[0]!.bodyUnread, true);
  });
  await withServer({ maxBodyBytes: 1000, maxDrainBytes: 500 }, async (port) => {
    // at the allowance: limit + drain bytes are still read and answered on a live connection
    const atEdge = await raw(port, [post(Buffer.alloc(1500, 'q')), post(Buffer.from('{}'))], 2);
    assert.deepEqual(atEdge.answers.map((a) => a.status), [413, 200]);
    const past = await raw(port, [{ head: 'POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1501\r\n\r\n' }], 1, true);
    assert.equal(past.answers[0]?.status, 413);
    assert.equal(past.closed, true);
  });
});

test('no implementation header: uWS\'s `uWebSockets: 20` mark is turned off; a 204 has no Content-Length and keeps the connection', async () => {
  await withServer({
    maxBodyBytes: 1000,
    handler: (ex) => (ex.method === 'OPTIONS' ? ex.respond(204, { allow: 'GET' }, '') : ex.respond(200, { 'content-type': 'text/plain' }, 'ok')),
  }, async (port) => {
    const r = await raw(port, [{ head: 'OPTIONS /mcp HTTP/1.1\r\nHost: x\r\n\r\n' }, { head: 'GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n' }], 2);
    assert.deepEqual(r.answers.map((a) => a.status), [204, 200]);
    assert.equal(r.answers[0]!.headers['content-length'], undefined, 'and the GET after it was answered on the same connection');
    for (const a of r.answers) {
      assert.deepEqual(Object.keys(a.headers).filter((n) => /uwebsockets/i.test(n)), [], JSON.stringify(a.headers));
      // uWS always writes Date (writeMark); it is the only one (the relay drops the upstream's).
      assert.equal(a.headers['date']?.split(',').length, 2, 'one Date header (its value has one comma)');
    }
  });
});

test('CORS headers go on answers to an allowed origin that carry none of their own; an answer\'s own are left as they are', async () => {
  const cors = { 'access-control-allow-origin': 'http://localhost:6274', 'access-control-expose-headers': 'Mcp-Session-Id', vary: 'Origin' };
  await withServer({
    maxBodyBytes: 1000,
    handler: (ex) => {
      ex.cors = cors;
      if (ex.path === '/own') ex.respond(200, { 'access-control-allow-origin': '*', 'content-type': 'text/plain' }, 'own');
      else if (ex.path === '/vary') ex.respond(200, { vary: 'Accept' }, 'vary');
      else if (ex.path === '/stream') { ex.writeHead(200, { 'content-type': 'text/event-stream' }); ex.end('data: 1\n\n'); }
      else ex.respond(202, null, '');
    },
  }, async (port) => {
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:6274\r\n\r\n`;
    const r = await raw(port, [{ head: get('/own') }, { head: get('/vary') }, { head: get('/plain') }], 3);
    assert.equal(r.answers[0]!.headers['access-control-allow-origin'], '*');
    assert.equal(r.answers[0]!.headers['access-control-expose-headers'], undefined, 'the answer\'s own CORS headers are not added to');
    assert.equal(r.answers[1]!.headers['access-control-allow-origin'], 'http://localhost:6274');
    assert.equal(r.answers[1]!.headers['vary'], 'Accept, Origin');
    assert.equal(r.answers[2]!.status, 202);
    assert.equal(r.answers[2]!.headers['access-control-expose-headers'], 'Mcp-Session-Id');
    const s = await fetch(`http://127.0.0.1:${port}/stream`);
    assert.equal(s.headers.get('access-control-allow-origin'), 'http://localhost:6274', 'streamed answers too');
    await s.text();
  });
});
