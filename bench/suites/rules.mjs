// (d) The cost of a rule set: the same small tools/call through a proxy whose config has 100
// governance.rules with distinct globs (tool_<i>_*) and an expose blocklist of 20 globs, none of
// which match the called tool, so every call walks all of them before the default (forward).
// Reported as a ratio to the plain proxy (no rules) of the same run, interleaved with it.
import { interleaved } from '../lib/compare.mjs';
import { loadWith, generatorName } from '../lib/loadgen.mjs';
import { warmUp } from '../lib/load.mjs';
import { openSession } from '../lib/mcp.mjs';
import { probeLatency } from '../lib/probe.mjs';
import { proxyBuilt, startProxy } from '../lib/servers.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt, ratio, signed } from '../lib/stats.mjs';

const RULES = 100;
const BLOCKED = 20;
const CONNECTIONS = 50;

export const ruleSet = () => Array.from({ length: RULES }, (_, i) => ({ match: `tool_${i}_*`, action: 'deny' }));
export const blockList = () => Array.from({ length: BLOCKED }, (_, i) => `hidden_${i}_*`);

export default {
  name: 'rules',
  title: `tools/call through ${RULES} rules + ${BLOCKED} blocklist globs vs the plain proxy (${CONNECTIONS} conns)`,
  skipReason: (opts) => (opts.target ? 'needs the local fixture and proxy (not with --target)' : proxyBuilt() ? null : 'proxy not built'),
  async run({ targets, opts, log }) {
    const plain = targets.find((t) => t.name === 'proxy');
    const direct = targets.find((t) => t.name === 'direct');
    if (!plain || !direct) return { error: 'needs the direct and proxy targets' };
    const server = await startProxy(direct.url, { name: 'proxy_rules', rules: ruleSet(), blocklist: blockList() });
    try {
      const s = await openSession(server.url, { tool: opts.tool, args: opts.args });
      if (s.sample.result?.content?.[0]?.text !== 'ok') return { error: `rules proxy did not forward the call: ${JSON.stringify(s.sample).slice(0, 300)}` };
      const ruled = { name: 'proxy_rules', url: server.url, uniqueIds: true, ...s }; // as the plain proxy it is set against
      await warmUp(ruled, { connections: 10, requests: opts.smoke ? 500 : 3000 });
      const pair = [plain, ruled];
      log(`rules: ${CONNECTIONS} connections (${generatorName()})`);
      const byTarget = await interleaved(pair, opts.reps, (t) => loadWith(t, { connections: CONNECTIONS, durationS: opts.durationS }), (m) => log(`rules ${m}`));
      // The µs view at low load: the same probe as the latency suite, fewer requests.
      const requests = Math.ceil(Math.min(opts.probeRequests, 4000) / opts.reps);
      const probe = { proxy: [], proxy_rules: [] };
      for (let rep = 0; rep < opts.reps; rep++) {
        for (const t of pair) probe[t.name].push((await probeLatency(t, { requests, warmup: opts.smoke ? 50 : 300 })).p50Us);
      }
      const p50 = (name) => probe[name].sort((a, b) => a - b)[probe[name].length >> 1];
      const rps = (name) => byTarget[name]?.median?.rps;
      return {
        generator: generatorName(),
        connections: CONNECTIONS,
        rules: RULES,
        blocklist: BLOCKED,
        targets: byTarget,
        probeP50Us: { proxy: p50('proxy'), proxy_rules: p50('proxy_rules') },
        rulesVsPlain: ratio(rps('proxy_rules'), rps('proxy')),
        addedP50Us: p50('proxy_rules') - p50('proxy'),
      };
    } finally {
      await server.stop();
    }
  },
  numbers: (r) => ({ 'proxy req/s': r.targets.proxy?.median?.rps, 'proxy_rules req/s': r.targets.proxy_rules?.median?.rps, 'rules ÷ plain': r.rulesVsPlain, 'probe p50 µs': r.probeP50Us?.proxy_rules }),
  table(r) {
    const rows = Object.entries(r.targets).map(([name, t]) => {
      if (t.error) return [name, `failed: ${t.error.slice(0, 120)}`, '', '', '', '', ''];
      const m = t.median;
      const isRuled = name === 'proxy_rules';
      return [name, fmt(m.rps), fmt(m.p50Ms, 2), fmt(m.p99Ms, 2), isRuled ? fmt(r.rulesVsPlain, 2) : '1', fmt(r.probeP50Us[name]), isRuled ? signed(r.addedP50Us) : ''];
    });
    return `load: ${r.generator}; probe: 1 connection at 2000 req/s\n\n` +
      mdTable(['target', 'req/s', 'p50 ms', 'p99 ms', 'req/s ÷ plain proxy', 'probe p50 µs', 'probe p50 − plain µs'], rows);
  },
};
