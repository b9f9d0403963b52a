// (i) Cedar decisions in process (dist/gates/cedar/engine.js), for 1, 10 and 100 policies
// (lib/cedar-policies.mjs): µs per decision p50/p99 and decisions per second on each path:
//   cached   decide() answered from the decision cache: main thread, synchronous (one input,
//            primed, repeated), the cache holding just that entry
//   cached, full   the same with the cache full first (10,000 distinct decisions, the default
//            capacity; smoke 1,000): what a hit costs in a proxy that has been running a while
//   inline   decideInline() with the cache off (cacheSize 0), distinct inputs: one evaluation on
//            this thread. The baseline the pool figures are set against.
//   inline, new tool name   the same with a tool name never seen before on every call (the
//            engine first builds that tool's specialised set, or finds an equal one)
//   pool N   decide() with the cache off, one call at a time, N piscina workers (1, 2): the worker
//            round trip + the evaluation ("cold through the pool")
//   pool N, 64 in flight   decisions per second with 64 decide() calls outstanding
// plus a bare piscina round trip (the worker answers a null task without evaluating): the pool's
// own floor. Each phase runs for a time budget (--duration × 0.15 s, smoke 0.1 s); phases of one
// policy set are interleaved over --reps rounds and each figure is the median of its rounds.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../lib/servers.mjs';
import { policySet, TOOLS } from '../lib/cedar-policies.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt, median, percentile, ratio } from '../lib/stats.mjs';

const SETS = [1, 10, 100];
const POOLS = [1, 2];
const IN_FLIGHT = 64;
const DIST = join(ROOT, 'dist', 'gates', 'cedar');
const distUrl = (file) => pathToFileURL(join(DIST, file)).href;

const PRINCIPAL = Object.freeze({ id: 'bench-agent', namespace: 'agents', serviceAccount: 'agent-sa', roles: Object.freeze([]), labels: Object.freeze({ app: 'bench' }) });
const NOW = Date.UTC(2024, 0, 15, 10, 30); // a Monday, 10:30 UTC

/** The i-th input: tools cycle, the amount never repeats (so no two inputs are equal). */
function input(i) {
  return {
    method: 'tools/call',
    resource: TOOLS[i % TOOLS.length],
    arguments: { amount: i, currency: 'EUR', note: 'bench' },
    sourceId: i % 7 === 0 ? 'prod' : 'upstream',
    policyId: 'default',
    principal: PRINCIPAL,
    now: NOW,
  };
}

/** Per-call µs samples of a synchronous fn until `budgetMs` or `maxN` calls. */
function timeSync(fn, budgetMs, maxN) {
  const samples = new Float64Array(maxN);
  const start = performance.now();
  const deadline = start + budgetMs;
  let n = 0;
  let t1 = start;
  while (n < maxN && t1 < deadline) {
    const t0 = performance.now();
    fn(n);
    t1 = performance.now();
    samples[n++] = (t1 - t0) * 1000;
  }
  return summary(samples.subarray(0, n), (t1 - start) * 1000);
}

/** The same for an async fn, one call at a time. */
async function timeAsync(fn, budgetMs, maxN) {
  const samples = new Float64Array(maxN);
  const start = performance.now();
  const deadline = start + budgetMs;
  let n = 0;
  let t1 = start;
  while (n < maxN && t1 < deadline) {
    const t0 = performance.now();
    await fn(n);
    t1 = performance.now();
    samples[n++] = (t1 - t0) * 1000;
  }
  return summary(samples.subarray(0, n), (t1 - start) * 1000);
}

function summary(samples, totalUs) {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  return { n, p50Us: percentile(sorted, 50), p99Us: percentile(sorted, 99), meanUs: totalUs / n, perSec: n / (totalUs / 1e6) };
}

/** Decisions per second with `inFlight` decide() calls outstanding until `budgetMs`. */
async function throughput(engine, budgetMs, inFlight, check, offset) {
  let next = offset;
  let done = 0;
  const start = performance.now();
  const deadline = start + budgetMs;
  const lane = async () => {
    while (performance.now() < deadline) {
      check(await engine.decide(input(next++)));
      done++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const secs = (performance.now() - start) / 1000;
  return { n: done, inFlight, perSec: done / secs, meanUs: (secs * 1e6) / done };
}

/** Medians over the rounds of each field of a phase's results. */
function medians(runs) {
  const out = {};
  for (const k of Object.keys(runs[0] ?? {})) out[k] = median(runs.map((r) => r[k]));
  out.rounds = runs.length;
  return out;
}

export default {
  name: 'cedar',
  title: `Cedar decisions in process: cached, inline, through the pool (${SETS.join(', ')} policies)`,
  skipReason: (opts) => (opts.target ? 'in process (not with --target)' : existsSync(join(DIST, 'engine.js')) ? null : 'Cedar engine not built (dist/gates/cedar/engine.js): run npm run build'),
  async run({ opts, log }) {
    const { CedarEngine, DEFAULT_CACHE_SIZE } = await import(distUrl('engine.js'));
    const fullEntries = opts.smoke ? 1000 : DEFAULT_CACHE_SIZE ?? 10_000;
    const phaseMs = opts.smoke ? 100 : Math.min(2000, Math.max(200, opts.durationS * 150));
    const warmMs = opts.smoke ? 50 : Math.min(1000, phaseMs);
    // Every decision is checked: an evaluation error means the policy set is wrong, not slow.
    let evalErrors = 0;
    let firstError = '';
    const check = (d) => {
      if (d.errors.length) { evalErrors++; firstError ||= d.errors[0]; }
      return d;
    };
    const sets = {};
    let offset = 0; // inputs never repeat across phases either
    for (const n of SETS) {
      const text = policySet(n);
      const cachedEngine = CedarEngine.fromText(text);
      const fullEngine = CedarEngine.fromText(text, { cacheSize: fullEntries });
      const inlineEngine = CedarEngine.fromText(text, { cacheSize: 0 });
      const pools = Object.fromEntries(POOLS.map((size) => [size, CedarEngine.fromText(text, { poolSize: size, maxQueue: 4096, cacheSize: 0 })]));
      try {
        await Promise.all(Object.values(pools).map((p) => p.warm()));
        const hot = input(1);
        check(cachedEngine.decideInline(hot));
        // Distinct keys whatever the set reads (the resource differs), then the hot one.
        for (let i = 0; fullEngine.cacheSize < fullEntries - 1; i++) check(fullEngine.decideInline({ ...input(i), resource: `fill_${i}` }));
        check(fullEngine.decideInline(hot));
        if (fullEngine.cacheSize !== fullEntries) throw new Error(`cedar: the full cache holds ${fullEngine.cacheSize} entries, not ${fullEntries}`);
        // Let the JIT (this thread's and every worker's) tier up before the first measured round.
        timeSync((i) => check(inlineEngine.decideInline(input(offset + i))), warmMs, 1e6);
        offset += 1e6;
        for (const pool of Object.values(pools)) {
          await throughput(pool, warmMs, IN_FLIGHT, check, offset);
          offset += 1e7;
        }
        const runs = { cached: [], cachedFull: [], inline: [], inlineNewTool: [], ...Object.fromEntries(POOLS.flatMap((s) => [[`pool${s}`, []], [`tput${s}`, []]])) };
        for (let rep = 0; rep < opts.reps; rep++) {
          runs.cached.push(timeSync(() => {
            const d = cachedEngine.decide(hot);
            if (d instanceof Promise || !d.cached) throw new Error('cedar: expected a synchronous cache hit');
          }, phaseMs, 2e6));
          runs.cachedFull.push(timeSync(() => {
            const d = fullEngine.decide(hot);
            if (d instanceof Promise || !d.cached) throw new Error('cedar: expected a synchronous cache hit (full cache)');
          }, phaseMs, 2e6));
          runs.inline.push(timeSync((i) => check(inlineEngine.decideInline(input(offset + i))), phaseMs, 1e6));
          offset += 1e6;
          // A tool name never seen before on every call: the engine builds (or finds) that tool's set first.
          runs.inlineNewTool.push(timeSync((i) => check(inlineEngine.decideInline({ ...input(offset + i), resource: `${TOOLS[i % TOOLS.length]}_${offset + i}` })), phaseMs, 1e6));
          offset += 1e6;
          for (const size of POOLS) {
            runs[`pool${size}`].push(await timeAsync(async (i) => check(await pools[size].decide(input(offset + i))), phaseMs, 1e6));
            offset += 1e6;
            runs[`tput${size}`].push(await throughput(pools[size], phaseMs, IN_FLIGHT, check, offset));
            offset += 1e7;
          }
        }
        const r = { policies: n, readsArguments: inlineEngine.readsArguments, ...Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, medians(v)])) };
        r.ratios = {};
        for (const size of POOLS) {
          r.ratios[`pool${size}P50VsInline`] = ratio(r[`pool${size}`].p50Us, r.inline.p50Us);
          r.ratios[`tput${size}VsInline`] = ratio(r[`tput${size}`].perSec, r.inline.perSec);
        }
        sets[n] = r;
        log(`cedar ${n} policies: cached p50 ${r.cached.p50Us.toFixed(2)} µs (full cache ${r.cachedFull.p50Us.toFixed(2)} µs), inline p50 ${r.inline.p50Us.toFixed(1)} µs, pool1 p50 ${r.pool1.p50Us.toFixed(1)} µs, pool2 64 in flight ${Math.round(r.tput2.perSec)}/s`);
      } finally {
        await Promise.all(Object.values(pools).map((p) => p.close()));
      }
    }

    // The pool's own cost: a piscina round trip to the gate's worker, no evaluation; with the
    // gate's spin window (spin-wait.ts) and without it (the worker parks at once), interleaved.
    const { Piscina } = await import('piscina');
    const { compile } = await import(distUrl('compile.js'));
    const { DEFAULT_SPIN_MICROS } = await import(distUrl('engine.js'));
    const plan = compile([{ file: 'bench.cedar', text: policySet(1) }]);
    const pinger = (spinMicros) => new Piscina({
      filename: distUrl('worker.js'), minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 1, idleTimeout: 2 ** 31 - 1,
      workerData: { plan, spinMicros },
    });
    const pings = { spin: pinger(DEFAULT_SPIN_MICROS), park: pinger(0) };
    const pingRuns = { spin: [], park: [] };
    try {
      for (const p of Object.values(pings)) await timeAsync(() => p.run(null), warmMs, 1e6);
      for (let rep = 0; rep < opts.reps; rep++) {
        for (const [k, p] of Object.entries(pings)) pingRuns[k].push(await timeAsync(() => p.run(null), phaseMs, 1e6));
      }
    } finally {
      await Promise.all(Object.values(pings).map((p) => p.destroy()));
    }
    const out = { phaseMs, reps: opts.reps, inFlight: IN_FLIGHT, fullEntries, sets, spinMicros: DEFAULT_SPIN_MICROS, ping: medians(pingRuns.spin), pingParked: medians(pingRuns.park) };
    if (evalErrors) out.error = `${evalErrors} decisions had evaluation errors, e.g. ${firstError}`;
    return out;
  },
  numbers(r) {
    const out = {};
    for (const [n, s] of Object.entries(r.sets)) {
      out[`${n} cached p50 µs`] = s.cached.p50Us;
      out[`${n} cached (full cache) p50 µs`] = s.cachedFull.p50Us;
      out[`${n} inline p50 µs`] = s.inline.p50Us;
      out[`${n} inline, new tool name p50 µs`] = s.inlineNewTool.p50Us;
      for (const size of POOLS) {
        out[`${n} pool${size} p50 µs`] = s[`pool${size}`].p50Us;
        out[`${n} pool${size} ${IN_FLIGHT} in flight /s`] = s[`tput${size}`].perSec;
      }
    }
    out['piscina round trip p50 µs'] = r.ping.p50Us;
    out['piscina round trip, worker parks at once, p50 µs'] = r.pingParked.p50Us;
    return out;
  },
  table(r) {
    const rows = [];
    for (const s of Object.values(r.sets)) {
      const label = `${s.policies}${s.readsArguments ? '' : ' (no arguments read)'}`;
      const row = (path, m, vsInline = '', tputVsInline = '') => [label, path, fmt(m.p50Us, m.p50Us < 10 ? 2 : 1), fmt(m.p99Us, m.p99Us < 10 ? 2 : 1), fmt(m.meanUs, m.meanUs < 10 ? 2 : 1), fmt(m.perSec), vsInline, tputVsInline];
      rows.push(row('cached (main thread), 1 entry', s.cached));
      rows.push(row(`cached (main thread), ${fmt(r.fullEntries)} entries (full)`, s.cachedFull));
      rows.push(row('inline, cold (baseline)', s.inline, '1', '1'));
      rows.push(row('inline, cold, a new tool name every call', s.inlineNewTool, fmt(ratio(s.inlineNewTool.p50Us, s.inline.p50Us), 2), fmt(ratio(s.inlineNewTool.perSec, s.inline.perSec), 2)));
      for (const size of POOLS) rows.push(row(`pool ${size} worker${size > 1 ? 's' : ''}, cold, one at a time`, s[`pool${size}`], fmt(s.ratios[`pool${size}P50VsInline`], 2), fmt(ratio(s[`pool${size}`].perSec, s.inline.perSec), 2)));
      for (const size of POOLS) {
        const t = s[`tput${size}`];
        rows.push([label, `pool ${size} worker${size > 1 ? 's' : ''}, cold, ${r.inFlight} in flight`, '', '', fmt(t.meanUs, 1), fmt(t.perSec), '', fmt(s.ratios[`tput${size}VsInline`], 2)]);
      }
    }
    for (const [p, what] of [[r.ping, `worker spins ${r.spinMicros} µs before parking (the gate's setting)`], [r.pingParked, 'worker parks at once']]) {
      rows.push(['–', `piscina round trip, no evaluation (1 worker), ${what}`, fmt(p.p50Us, 1), fmt(p.p99Us, 1), fmt(p.meanUs, 1), fmt(p.perSec), '', '']);
    }
    return `${fmt(r.phaseMs)} ms per phase, median of ${r.reps} round(s); mean µs = wall time ÷ decisions (with ${r.inFlight} in flight: ÷ all of them)\n\n` +
      mdTable(['policies', 'path', 'p50 µs', 'p99 µs', 'mean µs', 'decisions/s', 'p50 ÷ inline p50', 'decisions/s ÷ inline'], rows);
  },
};
