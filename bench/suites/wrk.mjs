// (c) The same request under wrk, which (unlike autocannon) does not run out of CPU before the
// fixture does, so its proxy/direct ratio is the one to trust.
import { interleaved, throughputRatios } from '../lib/compare.mjs';
import { runWrk, wrkPath } from '../lib/wrk.mjs';
import { mdTable, rateRows } from '../lib/report.mjs';

export default {
  name: 'wrk',
  title: 'tools/call, small answer (wrk, 1 thread)',
  skipReason: () => (wrkPath() ? null : 'wrk not installed (apt-get install -y wrk)'),
  async run({ targets, opts, log }) {
    const connections = 50;
    log(`wrk: ${connections} connections`);
    const byTarget = await interleaved(targets, opts.reps, (t) => runWrk(t, { connections, durationS: opts.durationS }), log);
    return { levels: [{ connections, targets: byTarget, ratios: throughputRatios(byTarget) }] };
  },
  numbers: (r) => Object.fromEntries(r.levels.flatMap((l) => Object.entries(l.targets).map(([name, t]) => [`${l.connections} conns ${name} req/s`, t.median?.rps]))),
  table(result) {
    return mdTable(['conns', 'target', 'req/s', 'p50 ms', 'p99 ms', 'proxy req/s ÷ this'], result.levels.flatMap((l) => rateRows(l, 2)));
  },
};
