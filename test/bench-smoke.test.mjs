// Smoke test of the benchmark harness (bench/). Benchmarks are not tests: nothing here asserts
// a timing, only that the harness runs end to end and produces numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixture } from '../bench/fixture.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const LATEST = join(ROOT, 'bench', 'results', 'latest.json');

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
const rpc = (url, body) => fetch(url, { method: 'POST', headers: HEADERS, body: JSON.stringify(body) });

test('fixture speaks enough MCP: initialize, notifications, tools/list, tools/call modes', async () => {
  const fx = await startFixture({ port: 0 });
  try {
    assert.ok(fx.port > 0);
    const init = await rpc(fx.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26' } });
    assert.equal(init.status, 200);
    assert.ok(init.headers.get('mcp-session-id'));
    assert.equal((await init.json()).result.protocolVersion, '2025-03-26');

    const note = await rpc(fx.url, { jsonrpc: '2.0', method: 'notifications/initialized' });
    assert.equal(note.status, 202);

    const list = await (await rpc(fx.url, { jsonrpc: '2.0', id: 2, method: 'tools/list' })).json();
    assert.equal(list.result.tools.length, 5);

    const small = await (await rpc(fx.url, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: {} } })).json();
    assert.deepEqual(small, { jsonrpc: '2.0', id: 3, result: { content: [{ type: 'text', text: 'ok' }] } });

    const big = await (await rpc(fx.url, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'big_1mb' } })).text();
    assert.equal(big.length, 1 << 20);
    assert.equal(JSON.parse(big).id, 4);

    const sse = await rpc(fx.url, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'sse_tick', arguments: { count: 3, intervalMs: 1 } } });
    assert.match(sse.headers.get('content-type'), /text\/event-stream/);
    const events = (await sse.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
    assert.equal(events.length, 4);
    for (const e of events.slice(0, 3)) assert.ok(e.params.data.t_us > 0);
    assert.equal(events[3].id, 5);
  } finally {
    fx.close();
  }
});

test('bench smoke runs every suite end to end and writes latest.json', () => {
  // With the proxy built the whole smoke runs; before that, the suite that works without it.
  const proxyBuilt = existsSync(join(ROOT, 'dist', 'cli', 'main.js'));
  const args = proxyBuilt ? ['--smoke'] : ['--smoke', '--only', 'toolscall'];
  const started = Date.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'run.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
  assert.equal(r.status, 0, `bench exited ${r.status ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  assert.match(r.stdout, /\| direct \|/);

  assert.ok(statSync(LATEST).mtimeMs >= started - 1000, 'latest.json was not rewritten');
  const latest = JSON.parse(readFileSync(LATEST, 'utf8'));
  const level = latest.suites.toolscall.result.levels.find((l) => l.connections === 50);
  const rps = (name) => level.targets[name]?.median?.rps;
  assert.equal(typeof rps('direct'), 'number');
  assert.ok(rps('direct') > 0);
  if (proxyBuilt) {
    assert.ok(rps('proxy') > 0, 'proxy produced no throughput number');
    assert.ok(latest.suites.latency.result.targets.proxy.p50Us > 0, 'proxy produced no latency number');
  }
});
