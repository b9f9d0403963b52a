// (a) Throughput of small tools/call answers with autocannon, at several connection counts.
import { interleaved, throughputRatios } from '../lib/compare.mjs';
import { loadTarget } from '../lib/load.mjs';
import { mdTable, rateRows } from '../lib/report.mjs';

export default {
  name: 'toolscall',
  title: 'tools/call, small answer (autocannon)',
  async run({ targets, opts, log }) {
    const levels = [];
    for (const connections of opts.smoke ? [50] : [1, 50, 256]) {
      log(`toolscall: ${connections} connections`);
      // Each level opens new connections: let pools grow to them before the first measured run
      // (smoke relies on the runner's global warm-up to stay short).
      const warmupRequests = (rep) => (rep === 0 && !opts.smoke ? 5000 : 0);
      const byTarget = await interleaved(targets, opts.reps, (t, rep) =>
        loadTarget(t, { connections, durationS: opts.durationS, warmupRequests: warmupRequests(rep) }), log);
      levels.push({ connections, targets: byTarget, ratios: throughputRatios(byTarget) });
    }
    return { levels };
  },
  numbers: (r) => Object.fromEntries(r.levels.flatMap((l) => Object.entries(l.targets).map(([name, t]) => [`${l.connections} conns ${name} req/s`, t.median?.rps]))),
  table(result) {
    // autocannon's latency histogram counts whole milliseconds: the latency suite has the µs view.
    return mdTable(['conns', 'target', 'req/s', 'p50 ms', 'p99 ms', 'proxy req/s ÷ this'], result.levels.flatMap((l) => rateRows(l, 0)));
  },
};
