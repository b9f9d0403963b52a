// (j) Cedar through the proxy: the small tools/call (echo) at 50 connections through a proxy
// whose config says `governance.defaults.action: policy` with a 10-policy Cedar file
// (lib/cedar-policies.mjs; its first policy forwards echo when `resource.arguments.amount >= 0`,
// so the decision depends on the arguments and the cache key holds them):
//   cedar_cached  the same request over and over: the decision cache answers on the main thread
//   cedar_cold    a distinct arguments.amount per request (the load generator and the probe
//                 substitute a fresh value for lib/mcp.mjs VARY_MARK): every decision misses the
//                 cache and goes to the Cedar worker pool (THOUGHTGATE_CEDAR_WORKERS=1)
// against the plain proxy (defaults: forward, no Cedar) of the same run, same body, interleaved.
// The proxy answers gate failures with HTTP 200 and a JSON-RPC error (e.g. -32009 when the Cedar
// queue is full), which the load generators do not see: its admin /metrics is read before and
// after each run, and any error or non-forward decision voids the run. The same scrape gives
// the mean Cedar µs per decision inside the proxy and the share answered in ≤ 50 µs (≈ hits:
// a miss pays a worker round trip plus an evaluation, ~100 µs or more with 10 policies).
// Before the first measured round the cold call runs FILL times, so the decision cache is full
// (its default 10,000 entries) in every measured round (not in --smoke).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { interleaved } from '../lib/compare.mjs';
import { loadWith, generatorName } from '../lib/loadgen.mjs';
import { warmUp } from '../lib/load.mjs';
import { openSession, toolsCallBody, VARY_MARK } from '../lib/mcp.mjs';
import { scrape, total } from '../lib/metrics.mjs';
import { probeLatency } from '../lib/probe.mjs';
import { scratchDir } from '../lib/procs.mjs';
import { ROOT, proxyBuilt, startProxy } from '../lib/servers.mjs';
import { policySet } from '../lib/cedar-policies.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt, median, ratio, signed } from '../lib/stats.mjs';

const POLICIES = 10;
const CONNECTIONS = 50;
const WORKERS = 1;
// Above the in-flight load (50 connections, plus the probe's one): a full queue would answer -32009.
const QUEUE = 1024;
const FILL = 12_000;
const CACHED_ARGS = { text: 'hi', amount: 1 };
const COLD_ARGS = { text: 'hi', amount: VARY_MARK };

/** Counters of the Cedar proxy that one load run moves. */
async function counters(metricsUrl) {
  const s = await scrape(metricsUrl);
  return {
    errors: total(s, 'thoughtgate_errors_total'),
    rateLimited: total(s, 'thoughtgate_errors_total', { error_type: 'rate_limited' }),
    forwarded: total(s, 'thoughtgate_decisions_total', { gate: 'gate3', outcome: 'forward' }),
    gate3: total(s, 'thoughtgate_decisions_total', { gate: 'gate3' }),
    cedarCount: total(s, 'thoughtgate_cedar_evaluation_duration_ms_count'),
    cedarSumMs: total(s, 'thoughtgate_cedar_evaluation_duration_ms_sum'),
    cedarUpTo50Us: total(s, 'thoughtgate_cedar_evaluation_duration_ms_bucket', { le: '0.05' }),
  };
}

function delta(before, after) {
  const d = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
  return {
    rpcErrors: d.errors,
    rateLimited: d.rateLimited,
    decisions: d.gate3,
    notForwarded: d.gate3 - d.forwarded,
    cedarMeanUs: d.cedarCount > 0 ? (d.cedarSumMs * 1000) / d.cedarCount : NaN,
    cedarShareUpTo50Us: d.cedarCount > 0 ? d.cedarUpTo50Us / d.cedarCount : NaN,
  };
}

/** A load run on a Cedar target, judged by the proxy's own counters. */
async function measured(t, run) {
  if (!t.metricsUrl) return run();
  const before = await counters(t.metricsUrl);
  const r = await run();
  const d = delta(before, await counters(t.metricsUrl));
  Object.assign(r, d);
  if (!r.error && (d.rpcErrors > 0 || d.notForwarded > 0)) {
    r.error = `${d.rpcErrors} JSON-RPC errors (${d.rateLimited} -32009 rate_limited), ${d.notForwarded} decisions other than forward`;
  }
  return r;
}

export default {
  name: 'cedar-proxy',
  title: `tools/call through a ${POLICIES}-policy Cedar gate, cached and cold, vs the plain proxy (${CONNECTIONS} conns)`,
  skipReason: (opts) => (opts.target ? 'needs the local fixture and proxy (not with --target)'
    : !proxyBuilt() ? 'proxy not built'
      : existsSync(join(ROOT, 'dist', 'gates', 'cedar', 'engine.js')) ? null : 'Cedar engine not built'),
  async run({ targets, opts, log }) {
    const plainProxy = targets.find((t) => t.name === 'proxy');
    const direct = targets.find((t) => t.name === 'direct');
    if (!plainProxy || !direct) return { error: 'needs the direct and proxy targets' };
    const policyFile = join(scratchDir(), `bench-${POLICIES}.cedar`);
    writeFileSync(policyFile, policySet(POLICIES, { forwardEcho: true }));
    const server = await startProxy(direct.url, {
      name: 'proxy_cedar', defaultAction: 'policy', cedarPolicies: [policyFile],
      env: { THOUGHTGATE_CEDAR_WORKERS: String(WORKERS), THOUGHTGATE_CEDAR_QUEUE: String(QUEUE) },
    });
    try {
      const open = async (name, args) => {
        const s = await openSession(server.url, { tool: 'echo', args });
        if (s.sample.result?.content?.[0]?.text !== 'ok') throw new Error(`${name}: the Cedar proxy did not forward the call: ${JSON.stringify(s.sample).slice(0, 300)}`);
        return { name, url: server.url, metricsUrl: server.metricsUrl, uniqueIds: true, ...s }; // valid MCP: a fresh id per request (the cache keys on the call, not the id)
      };
      const cached = await open('cedar_cached', CACHED_ARGS);
      const cold = { ...(await open('cedar_cold', COLD_ARGS)), varyMark: VARY_MARK };
      // The plain proxy gets the same bytes as the cached call (its session, its headers).
      const plain = { ...plainProxy, body: toolsCallBody('echo', CACHED_ARGS) };
      const all = [plain, cached, cold];
      // Cold first, with more requests than the decision cache holds (10,000 entries by default):
      // every measured round then meets a full cache, as a proxy that has run a while does (a hit
      // in a full cache costs more than in an empty one; rounds after a cold run would otherwise
      // differ from the first).
      await warmUp(cold, { connections: 10, requests: opts.smoke ? 500 : FILL });
      await warmUp(cached, { connections: 10, requests: opts.smoke ? 500 : 3000 });

      log(`cedar-proxy: ${CONNECTIONS} connections (${generatorName()}), ${WORKERS} Cedar worker(s), queue ${QUEUE}`);
      const byTarget = await interleaved(all, opts.reps, (t) => measured(t, () => loadWith(t, { connections: CONNECTIONS, durationS: opts.durationS })), (m) => log(`cedar-proxy ${m}`));
      for (const [name, slot] of Object.entries(byTarget)) {
        if (!slot.median || name === 'proxy') continue;
        for (const k of ['cedarMeanUs', 'cedarShareUpTo50Us', 'rpcErrors', 'decisions']) slot.median[k] = median(slot.runs.map((r) => r[k]));
      }

      // The µs view at low load, as in the rules suite: 1 connection, 2000 req/s.
      const requests = Math.ceil(Math.min(opts.probeRequests, 4000) / opts.reps);
      const probe = Object.fromEntries(all.map((t) => [t.name, []]));
      const probeCedar = Object.fromEntries(all.map((t) => [t.name, []]));
      for (let rep = 0; rep < opts.reps; rep++) {
        for (const t of all) {
          const r = await measured(t, () => probeLatency(t, { requests, warmup: opts.smoke ? 50 : 300 }));
          if (r.error) throw new Error(`cedar-proxy probe ${t.name}: ${r.error}`);
          probe[t.name].push(r.p50Us);
          if (t.metricsUrl) probeCedar[t.name].push(r.cedarMeanUs);
        }
      }
      const p50 = Object.fromEntries(Object.entries(probe).map(([k, v]) => [k, median(v)]));
      const rps = (name) => byTarget[name]?.median?.rps;
      return {
        generator: generatorName(),
        connections: CONNECTIONS,
        policies: POLICIES,
        workers: WORKERS,
        queue: QUEUE,
        targets: byTarget,
        probeP50Us: p50,
        probeCedarMeanUs: { cedar_cached: median(probeCedar.cedar_cached), cedar_cold: median(probeCedar.cedar_cold) },
        vsPlain: { cedar_cached: ratio(rps('cedar_cached'), rps('proxy')), cedar_cold: ratio(rps('cedar_cold'), rps('proxy')) },
        addedP50Us: { cedar_cached: p50.cedar_cached - p50.proxy, cedar_cold: p50.cedar_cold - p50.proxy },
      };
    } finally {
      await server.stop();
    }
  },
  numbers: (r) => ({
    'proxy req/s': r.targets.proxy?.median?.rps,
    'cedar_cached req/s': r.targets.cedar_cached?.median?.rps,
    'cedar_cold req/s': r.targets.cedar_cold?.median?.rps,
    'cached ÷ plain': r.vsPlain.cedar_cached,
    'cold ÷ plain': r.vsPlain.cedar_cold,
    'cached probe p50 µs': r.probeP50Us.cedar_cached,
    'cold probe p50 µs': r.probeP50Us.cedar_cold,
  }),
  table(r) {
    const rows = Object.entries(r.targets).map(([name, t]) => {
      if (t.error) return [name, `failed: ${t.error.slice(0, 160)}`, '', '', '', '', '', '', ''];
      const m = t.median;
      const isCedar = name !== 'proxy';
      return [name, fmt(m.rps), fmt(m.p50Ms, 2), fmt(m.p99Ms, 2), isCedar ? fmt(r.vsPlain[name], 2) : '1',
        fmt(r.probeP50Us[name]), isCedar ? signed(r.addedP50Us[name]) : '',
        isCedar ? `${fmt(m.cedarMeanUs, 1)} / ${fmt(r.probeCedarMeanUs[name], 1)}` : '',
        isCedar ? `${fmt(m.cedarShareUpTo50Us * 100, 1)}%` : ''];
    });
    return `load: ${r.generator}; probe: 1 connection at 2000 req/s; ${r.policies} policies, ${r.workers} Cedar worker(s), queue ${r.queue}; ` +
      'Cedar µs = the proxy\'s own mean per decision (under load / in the probe); ≤ 50 µs ≈ cache hits (a miss pays a worker round trip and an evaluation)\n\n' +
      mdTable(['target', 'req/s', 'p50 ms', 'p99 ms', 'req/s ÷ plain proxy', 'probe p50 µs', 'probe p50 − plain µs', 'Cedar µs (load / probe)', 'decisions ≤ 50 µs'], rows);
  },
};
