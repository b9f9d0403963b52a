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

    // A 2025-03-26 batch: one answer per request, in order; notifications get none.
    const batch = await (await rpc(fx.url, [
      { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'echo', arguments: {} } },
      { jsonrpc: '2.0', method: 'notifications/progress', params: {} },
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: {} } },
    ])).json();
    assert.deepEqual(batch.map((a) => [a.id, a.result.content[0].text]), [[6, 'ok'], [7, 'ok']]);
  } finally {
    fx.close();
  }
});

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

test('bench smoke runs every suite end to end and writes latest.json', () => {
  // With the proxy built the whole smoke runs; before that, the suites that work without it.
  const proxyBuilt = existsSync(join(ROOT, 'dist', 'cli', 'main.js'));
  const args = proxyBuilt ? ['--smoke'] : ['--smoke', '--only', 'toolscall,latency,sse,big,batch'];
  const started = Date.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'run.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
  assert.equal(r.status, 0, `bench exited ${r.status ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  assert.match(r.stdout, /\| direct \|/);

  assert.ok(statSync(LATEST).mtimeMs >= started - 1000, 'latest.json was not rewritten');
  const latest = JSON.parse(readFileSync(LATEST, 'utf8'));
  const suites = latest.suites;
  const expected = proxyBuilt ? ['toolscall', 'latency', 'wrk', 'rules', 'sse', 'big', 'batch', 'startup', 'cedar', 'cedar-proxy'] : ['toolscall', 'latency', 'sse', 'big', 'batch'];
  for (const name of expected) {
    assert.ok(suites[name], `suite ${name} did not run`);
    // wrk is optional (a Debian package); every other suite must have run and produced numbers.
    if (name === 'wrk' && suites.wrk.status === 'skipped') continue;
    assert.equal(suites[name].status, 'ok', `suite ${name}: ${suites[name].status} ${JSON.stringify(suites[name].errors)}`);
    const numbers = Object.entries(suites[name].numbers ?? {});
    assert.ok(numbers.length > 0, `suite ${name} reported no numbers`);
    for (const [what, v] of numbers) assert.ok(isNum(v), `suite ${name}: ${what} is ${v}`);
  }

  // The figures each suite is about, by name, so a renamed field cannot slip through.
  const targets = proxyBuilt ? ['direct', 'proxy'] : ['direct'];
  const level = suites.toolscall.result.levels.find((l) => l.connections === 50);
  for (const t of targets) {
    assert.ok(level.targets[t].median.rps > 0, `toolscall: ${t} req/s`);
    assert.ok(suites.latency.result.targets[t].p50Us > 0, `latency: ${t} p50`);
    assert.ok(suites.sse.result.targets[t].p50Us > 0, `sse: ${t} p50`);
    assert.ok(suites.sse.result.targets[t].count > 0, `sse: ${t} events`);
    assert.ok(suites.big.result.sizes['1mb'].targets[t].mbps > 0, `big: ${t} 1 MB MB/s`);
    assert.ok(suites.big.result.sizes['16mb'].targets[t].mbps > 0, `big: ${t} 16 MB MB/s`);
    assert.ok(suites.batch.result.targets[t].median.rps > 0, `batch: ${t} batches/s`);
    assert.ok(suites.batch.result.targets[t].median.elementUs > 0, `batch: ${t} µs per element`);
  }
  if (!proxyBuilt) return;
  assert.ok(isNum(suites.sse.result.added.p50Us), 'sse: added p50');
  assert.ok(isNum(suites.big.result.rss16mb.proxy.peakAboveIdleMB), 'big: proxy peak RSS over idle');
  assert.ok(suites.rules.result.targets.proxy_rules.median.rps > 0, 'rules: req/s with 100 rules');
  assert.ok(isNum(suites.rules.result.rulesVsPlain), 'rules: ratio to the plain proxy');
  assert.ok(suites.startup.result.targets.proxy.readyMs > 0, 'startup: ready ms');
  assert.ok(suites.startup.result.targets.proxy.idleRssMiB > 0, 'startup: idle RSS');
  // Cedar in process: every path for every policy set, and the bare piscina round trip.
  for (const n of ['1', '10', '100']) {
    const set = suites.cedar.result.sets[n];
    assert.ok(set, `cedar: no ${n}-policy set`);
    for (const path of ['cached', 'cachedFull', 'inline', 'inlineNewTool', 'pool1', 'pool2']) {
      assert.ok(set[path].p50Us > 0 && isNum(set[path].p99Us), `cedar ${n}: ${path} p50/p99`);
      assert.ok(set[path].perSec > 0, `cedar ${n}: ${path} decisions/s`);
    }
    for (const path of ['tput1', 'tput2']) assert.ok(set[path].perSec > 0, `cedar ${n}: ${path} decisions/s`);
    for (const [what, v] of Object.entries(set.ratios)) assert.ok(isNum(v), `cedar ${n}: ratio ${what}`);
  }
  assert.ok(suites.cedar.result.ping.p50Us > 0, 'cedar: piscina round trip');
  assert.ok(suites.cedar.result.pingParked.p50Us > 0, 'cedar: piscina round trip, worker parking at once');
  // Cedar through the proxy: cached and cold against the plain proxy, no JSON-RPC errors.
  const cp = suites['cedar-proxy'].result;
  for (const t of ['proxy', 'cedar_cached', 'cedar_cold']) {
    assert.ok(cp.targets[t].median.rps > 0, `cedar-proxy: ${t} req/s`);
    assert.ok(cp.probeP50Us[t] > 0, `cedar-proxy: ${t} probe p50`);
  }
  for (const t of ['cedar_cached', 'cedar_cold']) {
    assert.ok(isNum(cp.vsPlain[t]), `cedar-proxy: ${t} ÷ plain`);
    assert.ok(isNum(cp.addedP50Us[t]), `cedar-proxy: ${t} added p50`);
    assert.ok(cp.targets[t].median.decisions > 0, `cedar-proxy: ${t} went through gate 3`);
    assert.equal(cp.targets[t].median.rpcErrors, 0, `cedar-proxy: ${t} JSON-RPC errors`);
    assert.ok(isNum(cp.targets[t].median.cedarMeanUs), `cedar-proxy: ${t} Cedar µs in the proxy`);
  }
  // Every target in targets.json was measured (met or not is not the smoke's business).
  const wanted = Object.keys(JSON.parse(readFileSync(join(ROOT, 'bench', 'targets.json'), 'utf8'))).filter((k) => !k.startsWith('_'));
  for (const key of wanted) {
    const rows = latest.verdicts.filter((v) => v.target === key);
    assert.ok(rows.length > 0, `target ${key} was not judged`);
    for (const row of rows) assert.ok(isNum(row.value), `target ${key} (${row.suite}) has no measured value`);
  }
});

test('targets: throughput ratios are judged on autocannon; wrk rows are context that never fail a run', async () => {
  const { evaluateTargets, targetsTable } = await import('../bench/lib/report.mjs');
  const level = (direct, civic) => ({ levels: [{ connections: 50, ratios: { proxyVsDirect: direct, proxyVsCivic: civic } }] });
  const rows = evaluateTargets({ toolsCallRatioVsDirect: 0.5, toolsCallRatioVsPeer: 3 }, {
    toolscall: { status: 'ok', result: level(0.45, 30) },
    wrk: { status: 'ok', result: level(0.3, 40) },
  });
  const row = (target, suite) => rows.find((r) => r.target === target && r.suite === suite);
  assert.equal(row('toolsCallRatioVsDirect', 'toolscall').met, false);
  assert.equal(row('toolsCallRatioVsDirect', 'toolscall').context, false);
  assert.equal(row('toolsCallRatioVsDirect', 'wrk').context, true);
  assert.equal(row('toolsCallRatioVsPeer', 'toolscall').met, true);
  const table = targetsTable(rows);
  assert.match(table, /\| toolscall \| ≥ 0.5 × \| 0.45 × \| MISSED \|/);
  assert.match(table, /\| wrk \| ≥ 0.5 × \| 0.30 × \| context \(below\) \|/);
  // What run.mjs exits on: a judged row that missed.
  assert.equal(rows.some((v) => !v.met && !v.context), true);
  assert.equal(rows.filter((v) => !v.context).length, 2);
});

test('bench/cpu.mjs prints req/s and CPU per request for direct, thoughtgate and the floor proxy', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'cpu.mjs'), '--seconds', '1', '--reps', '1', '--floor'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| 1 \|/.test(l));
  assert.deepEqual(rows.map((l) => l.split('|')[2].trim()), ['direct', 'thoughtgate', 'floor']);
  for (const row of rows) assert.match(row.split('|')[3], /\d/, row);
  // the proxies' own CPU is measured (a percentage and user / sys µs per request)
  for (const row of rows.slice(1)) assert.match(row.split('|')[5], /\d+% \(\d+\.\d \/ \d+\.\d\)/, row);
});

test('npm run bench -- --target URL load-tests a running server and prints its latency histogram', async () => {
  const { spawn } = await import('node:child_process');
  const fx = await startFixture({ port: 0 });
  try {
    const child = spawn(process.execPath, [join(ROOT, 'bench', 'run.mjs'), '--target', fx.url, '--smoke', '--only', 'toolscall,latency'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.resume();
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, out.slice(-2000));
    assert.match(out, new RegExp(`target ${fx.url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.match(out, /\| 50 \| target \| [\d,]+ \|/, 'autocannon row for the target');
    assert.match(out, /\| latency \| requests \| share \|/, 'the latency histogram');
    assert.match(out, /\| \d+–\d+ µs \| \d+ \| [\d.]+% \|/, 'histogram buckets');
  } finally {
    fx.close();
  }
});
