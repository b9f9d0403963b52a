// (g) JSON-RPC batches on a 2025-03-26 session (initialize with protocolVersion 2025-03-26 and
// no MCP-Protocol-Version header): each POST is an array of 100 small tools/call requests. The
// proxy judges every element, forwards one batch and merges the answers back in order.
import { interleaved, throughputRatios } from '../lib/compare.mjs';
import { loadWith, generatorName } from '../lib/loadgen.mjs';
import { warmUp } from '../lib/load.mjs';
import { openSession } from '../lib/mcp.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt } from '../lib/stats.mjs';

export const BATCH_VERSION = '2025-03-26';
const SIZE = 100;
const CONNECTIONS = 10;

export function batchBody(tool = 'echo', args = { text: 'hi' }, size = SIZE) {
  return `[${Array.from({ length: size }, (_, i) => JSON.stringify({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: tool, arguments: args } })).join(',')}]`;
}

/** Opens a 2025-03-26 session and checks one batch comes back whole and in order. */
async function openBatchSession(t, opts) {
  const s = await openSession(t.url, { tool: opts.tool, args: opts.args, extraHeaders: opts.headers, protocolVersion: BATCH_VERSION });
  const body = batchBody(opts.tool, opts.args);
  const res = await fetch(t.url, { method: 'POST', headers: s.headers, body });
  const text = await res.text();
  let answers;
  try { answers = JSON.parse(text); } catch { answers = null; }
  if (res.status !== 200 || !Array.isArray(answers) || answers.length !== SIZE) {
    throw new Error(`batch on ${t.name}: HTTP ${res.status}, not ${SIZE} answers: ${text.slice(0, 300)}`);
  }
  const bad = answers.findIndex((a, i) => a.id !== i + 1 || !a.result);
  if (bad >= 0) throw new Error(`batch on ${t.name}: answer ${bad} is ${JSON.stringify(answers[bad]).slice(0, 200)}`);
  return { name: t.name, url: t.url, uniqueIds: false, headers: s.headers, body };
}

export default {
  name: 'batch',
  title: `batches of ${SIZE} tools/call on a ${BATCH_VERSION} session (${CONNECTIONS} conns)`,
  skipReason: (opts) => (opts.target ? 'needs the local fixture (not with --target)' : null),
  async run({ targets, opts, log }) {
    const measured = [];
    const failed = {};
    for (const t of targets.filter((x) => x.name === 'direct' || x.name === 'proxy')) {
      try {
        const bt = await openBatchSession(t, opts);
        await warmUp(bt, { connections: CONNECTIONS, requests: opts.smoke ? 50 : 500 });
        measured.push(bt);
      } catch (e) {
        failed[t.name] = { error: e.message };
        log(e.message);
      }
    }
    log(`batch: ${CONNECTIONS} connections (${generatorName()})`);
    const byTarget = await interleaved(measured, opts.reps, (t) => loadWith(t, { connections: CONNECTIONS, durationS: opts.durationS }), (m) => log(`batch ${m}`));
    for (const slot of Object.values(byTarget)) {
      if (slot.median) slot.median.elementUs = 1e6 / (slot.median.rps * SIZE);
    }
    return { generator: generatorName(), size: SIZE, connections: CONNECTIONS, targets: { ...byTarget, ...failed }, ratios: throughputRatios(byTarget) };
  },
  numbers: (r) => Object.fromEntries(Object.entries(r.targets).map(([name, t]) => [`${name} batches/s`, t.median?.rps])),
  table(r) {
    const rows = Object.entries(r.targets).map(([name, t]) => {
      if (t.error) return [name, `failed: ${t.error.slice(0, 120)}`, '', '', '', '', ''];
      const m = t.median;
      return [name, fmt(m.rps), fmt(m.rps * r.size), fmt(m.elementUs, 2), fmt(m.p50Ms, 2), fmt(m.p99Ms, 2), name === 'proxy' ? fmt(r.ratios.proxyVsDirect, 2) : ''];
    });
    return `load: ${r.generator}; µs per element = 1 / (elements per second)\n\n` +
      mdTable(['target', 'batches/s', 'elements/s', 'µs per element', 'p50 ms', 'p99 ms', 'proxy ÷ direct'], rows);
  },
};
