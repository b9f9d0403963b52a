// Hot-path recording cost: prom-client's own APIs against the cell families in families.ts.
// Run: npx tsc -p . && node dist/telemetry/metrics.bench.js [--time MS]
// Not a test: numbers are machine-dependent, compare rows within one run.

import { Bench } from 'tinybench';
import client from 'prom-client';
import { createMetrics } from './metrics.js';

const time = Number(process.argv[process.argv.indexOf('--time') + 1]) || 500;
const REQUEST_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000];

const reg = new client.Registry();
const counter = (name: string) =>
  new client.Counter({ name, help: 'h', labelNames: ['method', 'tool_name', 'status'], registers: [reg] });
const histogram = (name: string) =>
  new client.Histogram({ name, help: 'h', labelNames: ['method', 'tool_name'], buckets: REQUEST_MS, registers: [reg] });
const cObj = counter('c_obj_total');
const cPos = counter('c_pos_total');
const cMap = counter('c_map_total');
const cReq = counter('c_req_total');
const hReq = histogram('h_req');
const childCache = new Map<string, ReturnType<typeof cMap.labels>>();
const m = createMetrics();

// Rotating label values so every variant walks several cells, as real traffic does.
const METHODS = ['tools/call', 'tools/list', 'resources/read', 'ping'];
const TOOLS = Array.from({ length: 20 }, (_, i) => `tool_${i}`);
const STATUS = ['success', 'error'] as const;
let i = 0;
const method = () => METHODS[i & 3]!;
const tool = () => TOOLS[i % 20]!;
const status = () => STATUS[i & 1]!;

const bench = new Bench({ time, warmup: true });
bench
  .add('prom-client counter.inc({labels})', () => {
    i++;
    cObj.inc({ method: method(), tool_name: tool(), status: status() });
  })
  .add('prom-client counter.labels(a,b,c).inc()', () => {
    i++;
    cPos.labels(method(), tool(), status()).inc();
  })
  .add('prom-client child cached in Map<joined key>', () => {
    i++;
    const a = method(), b = tool(), c = status();
    const k = `${a}\u0001${b}\u0001${c}`;
    let ch = childCache.get(k);
    if (ch === undefined) childCache.set(k, (ch = cMap.labels(a, b, c)));
    ch.inc();
  })
  .add('ours: families c3(a,b,c).value++', () => {
    i++;
    m.families.requests.c3(method(), tool(), status()).value++;
  })
  .add('prom-client request (counter + histogram)', () => {
    i++;
    const a = method(), b = tool();
    cReq.inc({ method: a, tool_name: b, status: status() });
    hReq.observe({ method: a, tool_name: b }, i % 300);
  })
  .add('ours: metrics.recordRequest (guarded, counter + histogram)', () => {
    i++;
    m.recordRequest(method(), tool(), status(), i % 300);
  })
  .add('ours: metrics.recordDecision', () => {
    i++;
    m.recordDecision('gate2', status() === 'success' ? 'forward' : 'deny');
  })
  .add('ours: metrics.recordUpstream', () => {
    i++;
    m.recordUpstream(200, i % 300);
  });

await bench.run();
const rows = bench.tasks.map((t) => {
  const r = t.result as { latency?: { mean: number; p50?: number }; throughput?: { mean: number } } | undefined;
  return {
    task: t.name,
    'mean ns': r?.latency ? Math.round(r.latency.mean * 1e6) : NaN,
    'p50 ns': r?.latency?.p50 !== undefined ? Math.round(r.latency.p50 * 1e6) : NaN,
    'ops/s': r?.throughput ? Math.round(r.throughput.mean) : NaN,
  };
});
console.table(rows);
