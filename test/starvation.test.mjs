// Starvation (issue 14, item 7d): 130 open GET SSE streams through the proxy to a real
// Streamable HTTP upstream (server-everything) do not keep another session's initialize and
// tools/call from being served. GET streams get at most their share of the upstream pool
// (THOUGHTGATE_UPSTREAM_STREAM_CONNECTIONS, half of it by default); one past that is answered
// 429 + Retry-After at once, never left hanging. Served is asserted, never how fast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startProxy, startEverythingHttp, sourceYaml, rawSession, post } from './helpers.mjs';

const STREAMS = Number(process.env.STREAMS ?? 130);

/** opens a GET stream and resolves with its status once the head arrives; the stream stays open */
function openStream(url, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      res.on('data', () => {});
      res.on('error', () => {});
      clearTimeout(timer);
      resolve({ status: res.statusCode, type: String(res.headers['content-type'] ?? ''), retryAfter: res.headers['retry-after'], close: () => req.destroy() });
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error('a GET stream got no head within 30 s')); }, 30000);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end();
  });
}

test(`${STREAMS} open GET SSE streams do not starve another session's initialize + tools/call`, { timeout: 60000 }, async () => {
  const up = await startEverythingHttp();
  // one test process is one client: lift its own cap (test/fairness.test.mjs covers it) so the
  // upstream pool's stream share is what is exercised here
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_MAX_STREAMS_PER_CLIENT: '1000' } });
  const streams = [];
  try {
    for (let i = 0; i < STREAMS; i++) {
      const s = await rawSession(p.url, '2025-11-25');
      streams.push(await openStream(p.url, s.headers));
      if (process.env.STREAMS_DEBUG) console.error(`stream ${i}: ${streams.at(-1).status}`);
    }
    const open = streams.filter((s) => s.status === 200);
    const refused = streams.filter((s) => s.status !== 200);
    for (const s of open) assert.match(s.type, /text\/event-stream/);
    for (const s of refused) assert.equal(s.status, 429, 'a GET past the streams\' share is refused, not left hanging');
    assert.ok(open.length >= Math.min(32, STREAMS), `${open.length} streams open at once`);
    assert.ok(refused.every((s) => Number(s.retryAfter) > 0), 'refused streams say when to retry');

    // another session, while every stream stays open
    const other = await rawSession(p.url, '2025-11-25');
    assert.ok(other.sid, 'initialize served');
    const r = await post(p.url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'not starved' } } }, other.headers);
    assert.equal(r.messages.find((m) => m.id === 2)?.result?.content?.[0]?.text, 'Echo: not starved', r.text.slice(0, 300));
    const list = await post(p.url, { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} }, other.headers);
    assert.ok(list.messages.find((m) => m.id === 3)?.result?.tools?.length > 0, 'tools/list served too');
    const health = await fetch(`http://127.0.0.1:${p.adminPort}/health`);
    assert.equal(health.status, 200);
  } finally {
    for (const s of streams) s.close();
    await p.stop();
    up.stop();
  }
});
