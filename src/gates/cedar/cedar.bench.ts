// Gate 3 micro-benchmarks: `npx tsc -p . && node dist/gates/cedar/cedar.bench.js [--quick]`
//   cached  — decide() answered from the cache (main thread, synchronous)
//   inline  — decideInline() with the cache off: one Cedar evaluation on this thread
//   pool    — decide() with the cache off, one at a time: worker round trip + evaluation
//   pool/s  — decisions per second through 2 workers, 64 in flight, cache off
//   ping    — a piscina round trip to the same worker with no evaluation (the pool's own cost)
// BENCH_SETS=1,10,100 and BENCH_PHASES=cached,inline,seq,tput select what runs. The box is
// shared (2 cores): run it two or three times and read the spread.
import { Piscina } from 'piscina';
import { compile } from './compile.js';
import { CedarEngine } from './engine.js';
import type { CedarInput } from './types.js';
import { AGENT, MONDAY_10_UTC } from './testkit.js';

const quick = process.argv.includes('--quick');
const N = quick ? 2_000 : 20_000;
const PHASES = (process.env.BENCH_PHASES ?? 'cached,inline,seq,tput').split(',');
const SETS = (process.env.BENCH_SETS ?? '1,10,100').split(',').map(Number);

/** n policies in the README style, the way a growing policy file looks */
function policies(n: number): string {
  const out: string[] = [
    'permit(principal, action == Action::"Forward", resource) when { resource.method == "tools/list" || resource.tool_name like "get_*" };',
    'permit(principal, action == Action::"Approve", resource) when { resource.tool_name like "delete_*" };',
    'forbid(principal, action, resource) when { resource.tool_name like "admin_*" };',
    'permit(principal, action == Action::"Approve", resource) when { resource.tool_name == "transfer" && resource.arguments has amount && resource.arguments.amount > 100 };',
    'forbid(principal, action, resource) when { resource.server == "prod" && resource.tool_name like "drop_*" };',
  ];
  for (let i = out.length; i < n; i++) {
    const kind = i % 3;
    out.push(kind === 0
      ? `permit(principal, action == Action::"Forward", resource) when { resource.tool_name like "svc${i}_read_*" };`
      : kind === 1
        ? `permit(principal, action == Action::"Approve", resource) when { resource.tool_name like "svc${i}_write_*" };`
        : `forbid(principal, action, resource) when { resource.tool_name == "svc${i}_danger" };`);
  }
  return out.slice(0, n).join('\n');
}

const TOOLS = ['get_weather', 'delete_user', 'admin_reset', 'transfer', 'svc7_write_x', 'search', 'drop_table', 'get_time'];
const input = (i: number): CedarInput => ({
  method: 'tools/call',
  resource: TOOLS[i % TOOLS.length],
  arguments: { amount: i % 200, note: 'bench' },
  sourceId: 'upstream',
  policyId: 'default',
  principal: AGENT,
  now: MONDAY_10_UTC,
});

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const f = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

interface Row { set: string; what: string; mean: number; p50: number; p99: number; extra?: string }
const rows: Row[] = [];

function timeSync(fn: (i: number) => unknown, n: number): { mean: number; p50: number; p99: number } {
  for (let i = 0; i < Math.min(n, 2000); i++) fn(i); // warm-up
  const samples: number[] = new Array<number>(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    fn(i);
    samples[i] = (performance.now() - s) * 1000;
  }
  const total = (performance.now() - t0) * 1000;
  return { mean: total / n, p50: pct(samples, 50), p99: pct(samples, 99) };
}

async function main(): Promise<void> {
  for (const n of SETS) {
    const text = policies(n);
    const set = `${n} ${n === 1 ? 'policy' : 'policies'}`;

    if (PHASES.includes('cached')) {
      // one input over and over (the first call fills the cache)
      const engine = CedarEngine.fromText(text);
      const hot = input(1);
      engine.decideInline(hot);
      const c = timeSync(() => {
        const d = engine.decide(hot);
        if (d instanceof Promise || !d.cached) throw new Error('expected a synchronous cache hit');
      }, N * 10);
      rows.push({ set, what: 'cached (main thread)', ...c });
    }

    if (PHASES.includes('inline')) {
      const inline = CedarEngine.fromText(text, { cacheSize: 0 });
      rows.push({ set, what: 'inline, cold', ...timeSync((i) => inline.decideInline(input(i)), N) });
    }

    if (PHASES.includes('seq') || PHASES.includes('tput')) {
      const pool = CedarEngine.fromText(text, { poolSize: 2, maxQueue: 10_000, cacheSize: 0 });
      await pool.warm();
      for (let i = 0; i < (quick ? 500 : 5000); i++) await pool.decide(input(i)); // let both workers tier up
      if (PHASES.includes('seq')) {
        // one at a time
        const lat: number[] = [];
        const t0 = performance.now();
        const m = Math.floor(N / 4);
        for (let i = 0; i < m; i++) {
          const s = performance.now();
          await pool.decide(input(i));
          lat.push((performance.now() - s) * 1000);
        }
        rows.push({ set, what: 'pool, cold, sequential', mean: ((performance.now() - t0) * 1000) / m, p50: pct(lat, 50), p99: pct(lat, 99) });
      }
      if (PHASES.includes('tput')) {
        // 64 in flight
        const total = N;
        let next = 0;
        const t1 = performance.now();
        const lane = async (): Promise<void> => {
          while (next < total) await pool.decide(input(next++));
        };
        await Promise.all(Array.from({ length: 64 }, lane));
        const secs = (performance.now() - t1) / 1000;
        rows.push({ set, what: 'pool, 2 workers, 64 in flight', mean: (secs * 1e6) / total, p50: NaN, p99: NaN, extra: `${Math.round(total / secs)} decisions/s` });
      }
      await pool.close();
    }
  }

  if (PHASES.includes('seq')) {
    const ping = new Piscina({ filename: new URL('./worker.js', import.meta.url).href, minThreads: 2, maxThreads: 2, workerData: { plan: compile([{ file: 'p', text: policies(1) }]) } });
    for (let i = 0; i < 2000; i++) await ping.run(null);
    const lat: number[] = [];
    for (let i = 0; i < N / 4; i++) {
      const s = performance.now();
      await ping.run(null);
      lat.push((performance.now() - s) * 1000);
    }
    rows.push({ set: '–', what: 'piscina round trip, no evaluation', mean: lat.reduce((a, b) => a + b, 0) / lat.length, p50: pct(lat, 50), p99: pct(lat, 99) });
    await ping.destroy();
  }

  console.log(`cedar-wasm gate 3, Node ${process.version}, N=${N}${quick ? ' (quick)' : ''}`);
  console.log('| policies | path | mean µs | p50 µs | p99 µs | throughput |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.set} | ${r.what} | ${f(r.mean)} | ${Number.isNaN(r.p50) ? '–' : f(r.p50)} | ${Number.isNaN(r.p99) ? '–' : f(r.p99)} | ${r.extra ?? ''} |`);
}

await main();
