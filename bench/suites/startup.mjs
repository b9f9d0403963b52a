// (h) Startup: spawn `node bin/thoughtgate.js serve` and poll admin /ready every 5 ms until it
// answers 200 (median of 5 starts), then read its RSS from /proc at ready and after a short
// settle ("idle RSS"). Baselines started the same way, interleaved: a bare node:http server
// (Node's own floor) and the civic peer (ready = its port answers HTTP at all).
import http from 'node:http';
import { freePort, sleep, spawnLogged, stopChild } from '../lib/procs.mjs';
import { proxyBuilt, spawnCivic, spawnProxy, writeProxyConfig } from '../lib/servers.mjs';
import { rssKiB, kibToMiB } from '../lib/rss.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt, median, ratio } from '../lib/stats.mjs';

const POLL_MS = 5;
const SETTLE_MS = 500;
const TIMEOUT_MS = 20_000;

/** Status of GET url, or 0 when nothing answers (yet). */
function statusOf(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

const BARE_NODE = "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1')";

/** Each starter spawns one process and says how to tell it is ready. */
const STARTERS = {
  async proxy(ctx, i) {
    const ports = [await freePort(), await freePort()];
    const t0 = performance.now();
    const { child, logTail } = await spawnProxy(ctx.cfg, `startup-proxy-${i}`, ports);
    return { t0, child, logTail, readyUrl: `http://127.0.0.1:${ports[1]}/ready`, ready: (s) => s === 200 };
  },
  async node(ctx, i) {
    const port = await freePort();
    const t0 = performance.now();
    const { child, logTail } = spawnLogged(`startup-node-${i}`, process.execPath, ['-e', BARE_NODE], { env: { ...process.env, PORT: String(port) } });
    return { t0, child, logTail, readyUrl: `http://127.0.0.1:${port}/`, ready: (s) => s === 200 };
  },
  async civic(ctx, i) {
    const port = await freePort();
    const t0 = performance.now();
    const { child, logTail } = spawnCivic(ctx.upstreamUrl, port, `startup-civic-${i}`);
    return { t0, child, logTail, readyUrl: `http://127.0.0.1:${port}/mcp`, ready: (s) => s > 0 };
  },
};

async function startOnce(kind, ctx, i) {
  const { t0, child, logTail, readyUrl, ready } = await STARTERS[kind](ctx, i);
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${kind} exited (${child.exitCode ?? child.signalCode}): ${logTail()}`);
      if (ready(await statusOf(readyUrl))) break;
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`${kind} not ready in ${TIMEOUT_MS} ms: ${logTail()}`);
      await sleep(POLL_MS);
    }
    const readyMs = performance.now() - t0;
    const atReadyKiB = rssKiB(child.pid);
    await sleep(SETTLE_MS);
    return { readyMs, atReadyKiB, idleKiB: rssKiB(child.pid) };
  } finally {
    await stopChild(child, 300); // a graceful drain is not what we measure
  }
}

export default {
  name: 'startup',
  title: `startup to ready (poll every ${POLL_MS} ms) and idle RSS (${SETTLE_MS} ms after ready)`,
  skipReason: (opts) => (opts.target ? 'starts local processes (not with --target)' : proxyBuilt() ? null : 'proxy not built'),
  async run({ targets, opts, log }) {
    const direct = targets.find((t) => t.name === 'direct');
    if (!direct) return { error: 'needs the fixture' };
    const ctx = { upstreamUrl: direct.url, cfg: writeProxyConfig(direct.url, { name: 'startup' }) };
    const starts = opts.smoke ? 2 : 5;
    const kinds = ['proxy', 'node', ...(targets.some((t) => t.name === 'civic') ? ['civic'] : [])];
    const runs = Object.fromEntries(kinds.map((k) => [k, { runs: [], error: null }]));
    for (let i = 0; i < starts; i++) {
      for (const kind of kinds) {
        const slot = runs[kind];
        if (slot.error) continue;
        try {
          const r = await startOnce(kind, ctx, i);
          slot.runs.push(r);
          log(`startup ${kind} ${i + 1}/${starts}: ready in ${r.readyMs.toFixed(0)} ms, RSS ${kibToMiB(r.idleKiB).toFixed(0)} MiB`);
        } catch (e) {
          slot.error = e.message;
          log(`startup ${kind}: ${e.message}`);
        }
      }
    }
    const byKind = {};
    for (const [kind, slot] of Object.entries(runs)) {
      byKind[kind] = slot.error ? { error: slot.error } : {
        starts: slot.runs.length,
        readyMs: median(slot.runs.map((r) => r.readyMs)),
        readyMsRuns: slot.runs.map((r) => Number(r.readyMs.toFixed(1))),
        rssAtReadyMiB: median(slot.runs.map((r) => kibToMiB(r.atReadyKiB))),
        idleRssMiB: median(slot.runs.map((r) => kibToMiB(r.idleKiB))),
      };
    }
    const p = byKind.proxy;
    return {
      targets: byKind,
      ratios: {
        readyVsNode: ratio(p?.readyMs, byKind.node?.readyMs),
        readyVsCivic: ratio(p?.readyMs, byKind.civic?.readyMs),
        idleRssVsNode: ratio(p?.idleRssMiB, byKind.node?.idleRssMiB),
        idleRssVsCivic: ratio(p?.idleRssMiB, byKind.civic?.idleRssMiB),
      },
    };
  },
  numbers: (r) => Object.fromEntries(Object.entries(r.targets).flatMap(([kind, t]) => [[`${kind} ready ms`, t.readyMs], [`${kind} idle RSS MiB`, t.idleRssMiB]])),
  table(r) {
    const label = { proxy: 'proxy (/ready 200)', node: 'bare node:http (200)', civic: 'civic (port answers)' };
    const vs = { node: [r.ratios.readyVsNode, r.ratios.idleRssVsNode], civic: [r.ratios.readyVsCivic, r.ratios.idleRssVsCivic] };
    const rows = Object.entries(r.targets).map(([kind, t]) => t.error
      ? [label[kind] ?? kind, `failed: ${t.error.slice(0, 120)}`, '', '', '', '', '']
      : [label[kind] ?? kind, fmt(t.readyMs), t.readyMsRuns.map((x) => fmt(x)).join(' '), fmt(t.rssAtReadyMiB, 1), fmt(t.idleRssMiB, 1),
        kind in vs ? fmt(vs[kind][0], 2) : '', kind in vs ? fmt(vs[kind][1], 2) : '']);
    return mdTable(['process', 'ready ms (median)', 'each start', 'RSS at ready MiB', 'idle RSS MiB', 'proxy ÷ this (ready)', 'proxy ÷ this (RSS)'], rows);
  },
};
