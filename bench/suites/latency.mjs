// (b) Added latency at low load, in µs: one keep-alive connection, a fixed request rate.
// Rounds are interleaved like the throughput suites; samples of all rounds are pooled.
import { probeLatency, summarise } from '../lib/probe.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt, signed } from '../lib/stats.mjs';

const RATE = 2000; // req/s: low enough that no queue forms anywhere

export default {
  name: 'latency',
  title: `latency probe (1 connection, ${RATE} req/s, µs)`,
  async run({ targets, opts, log }) {
    const perRound = Math.ceil(opts.probeRequests / opts.reps);
    const pooled = Object.fromEntries(targets.map((t) => [t.name, { samples: [], error: null }]));
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const t of targets) {
        const slot = pooled[t.name];
        if (slot.error) continue;
        try {
          const r = await probeLatency(t, { requests: perRound, rate: RATE, warmup: opts.smoke ? 50 : 500 });
          slot.samples.push(...r.samples);
          log(`latency ${t.name} rep ${rep + 1}/${opts.reps}: p50 ${r.p50Us.toFixed(0)} µs`);
        } catch (e) {
          slot.error = e.message;
          log(`latency ${t.name}: ${e.message}`);
        }
      }
    }
    const byTarget = {};
    for (const [name, slot] of Object.entries(pooled)) {
      if (slot.error) { byTarget[name] = { error: slot.error }; continue; }
      const { samples, ...stats } = summarise(slot.samples);
      byTarget[name] = { ...stats, sortedSamples: samples };
    }
    const d = byTarget.direct, p = byTarget.proxy;
    const added = d?.p50Us && p?.p50Us
      ? { p50Us: p.p50Us - d.p50Us, p99Us: p.p99Us - d.p99Us, p999Us: p.p999Us - d.p999Us }
      : null;
    return { rate: RATE, targets: byTarget, added };
  },
  numbers: (r) => Object.fromEntries(Object.entries(r.targets).map(([name, t]) => [`${name} p50 µs`, t.p50Us])),
  table(result) {
    const base = result.targets.direct;
    const rows = Object.entries(result.targets).map(([name, r]) => r.error
      ? [name, `failed: ${r.error}`, '', '', '', '', '']
      : [name, fmt(r.p50Us), fmt(r.p99Us), fmt(r.p999Us), fmt(r.maxUs),
        name === 'direct' || !base?.p50Us ? '' : signed(r.p50Us - base.p50Us),
        name === 'direct' || !base?.p99Us ? '' : signed(r.p99Us - base.p99Us)]);
    return mdTable(['target', 'p50', 'p99', 'p99.9', 'max', 'added p50', 'added p99'], rows);
  },
};
