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
