// /ready tells the truth about the upstream: upstream_reachable follows the HTTP upstream going
// down and coming back (connect failures and a periodic TCP probe, never a tool call).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startProxy, startRecordingUpstream, sourceYaml, sleep } from './helpers.mjs';

async function ready(p) {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}/ready`);
  return { status: r.status, body: await r.json() };
}
/** polls /ready until `pred` holds (deadline: the probe runs every 3 s, so 15 s is generous) */
async function readyUntil(p, pred, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await ready(p);
    if (pred(r) || Date.now() > deadline) return r;
    await sleep(100);
  }
}

test('/ready: 503 with upstream_reachable false (and why, per source) once the upstream is down; 200 again when it is back', async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`));
  let again;
  try {
    const before = await ready(p);
    assert.equal(before.status, 200);
    assert.equal(before.body.checks.upstream_reachable, true);
    assert.equal(before.body.upstreams.upstream.reachable, true);

    up.close();
    const down = await readyUntil(p, (r) => r.status === 503);
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.equal(down.body.checks.upstream_reachable, false);
    assert.equal(down.body.upstreams.upstream.reachable, false);
    assert.match(down.body.reason, /upstream_reachable: upstream \(ECONNREFUSED/);

    // the same port again: the probe sees it and /ready recovers without any call
    again = http.createServer((_req, res) => res.writeHead(404).end());
    await new Promise((r) => again.listen(up.port, '127.0.0.1', r));
    const back = await readyUntil(p, (r) => r.status === 200);
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal(back.body.checks.upstream_reachable, true);
  } finally {
    await p.stop();
    again?.close();
  }
});

test('/ready: a failed call to a dead upstream is enough (no need to wait for the probe)', async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`));
  try {
    up.close();
    const r = await fetch(p.url, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } }),
    });
    assert.equal((await r.json()).error.code, -32000);
    const now = await ready(p);
    assert.equal(now.status, 503, JSON.stringify(now.body));
    assert.equal(now.body.checks.upstream_reachable, false);
  } finally {
    await p.stop();
  }
});
