// (f) Big answers: tools/call results of 1 MB and 16 MB (fixture modes big_1mb, big_16mb), one
// keep-alive connection, back to back for a while: MB/s direct and through the proxy. Then, per
// round, a few single 16 MB transfers while the bench samples the proxy's VmRSS every 10 ms from
// /proc (idle measured just before each): a proxy that streams stays near its idle RSS, one that
// buffers grows by the body (or more). One transfer at a time, so garbage that back-to-back
// answers leave for the collector is not counted as buffering.
import http from 'node:http';
import { rssKiB, rssSampler, kibToMB } from '../lib/rss.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt, median, ratio, signed } from '../lib/stats.mjs';
import { sleep } from '../lib/procs.mjs';

const SIZES = [{ key: '1mb', tool: 'big_1mb', bytes: 1 << 20 }, { key: '16mb', tool: 'big_16mb', bytes: 16 << 20 }];
let nextId = 7_000_000;

/** One call; resolves with the body's size once it has all arrived (the client keeps nothing). */
function fetchBig(target, agent, tool) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: tool, arguments: {} } });
  return new Promise((resolve, reject) => {
    const req = http.request(target.url, { method: 'POST', agent, headers: { ...target.headers, 'content-length': Buffer.byteLength(body) } });
    req.setTimeout(60_000, () => req.destroy(new Error('big: timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) { res.resume(); return reject(new Error(`big: HTTP ${res.statusCode} from ${target.url}`)); }
      let bytes = 0;
      let head = null; // the first bytes, to tell an error answer from the result
      res.on('data', (c) => { if (!head) head = c.subarray(0, 200).toString('latin1'); bytes += c.length; });
      res.on('error', reject);
      res.on('end', () => resolve({ bytes, head }));
    });
    req.end(body);
  });
}

/** Calls `tool` back to back for at least `seconds` and `minCalls`; returns MB/s (1 MB = 10^6 bytes). */
async function transfer(target, size, { seconds, minCalls }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    let bytes = 0;
    let calls = 0;
    const t0 = performance.now();
    while (calls < minCalls || performance.now() - t0 < seconds * 1000) {
      const r = await fetchBig(target, agent, size.tool);
      // The result's JSON is the size of the fixture's answer; anything much smaller is an error answer.
      if (r.bytes < size.bytes * 0.99) throw new Error(`big: ${size.tool} answered ${r.bytes} bytes: ${r.head}`);
      bytes += r.bytes;
      calls++;
    }
    const s = (performance.now() - t0) / 1000;
    return { mbps: bytes / s / 1e6, calls, seconds: s };
  } finally {
    agent.destroy();
  }
}

/** RSS of an idle process: the median of a few samples after a pause. */
async function idleKiB(pid) {
  await sleep(100);
  const xs = [];
  for (let i = 0; i < 5; i++) { xs.push(rssKiB(pid)); await sleep(10); }
  return median(xs);
}

const RSS_PROBES = 3; // single 16 MB transfers per rep with the proxy's RSS sampled (smoke: 1)

/** One 16 MB transfer through `t` with its process's VmRSS sampled every 10 ms; idle measured just before. */
async function rssProbe(t, pid) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const idle = await idleKiB(pid);
    const sampler = rssSampler(pid, 10);
    let r;
    let sampled;
    try { r = await fetchBig(t, agent, 'big_16mb'); } finally { sampled = sampler.stop(); }
    const { peakKiB, samples } = sampled;
    if (r.bytes < (16 << 20) * 0.99) throw new Error(`big: big_16mb answered ${r.bytes} bytes: ${r.head}`);
    return { idleKiB: idle, peakKiB, samples };
  } finally {
    agent.destroy();
  }
}

export default {
  name: 'big',
  title: 'big answers (1 connection): MB/s back to back, and the proxy\'s RSS while streaming one 16 MB answer',
  skipReason: (opts) => (opts.target ? 'needs the local fixture (not with --target)' : null),
  async run({ targets, opts, log }) {
    const measured = targets.filter((t) => t.name === 'direct' || t.name === 'proxy');
    const seconds = opts.smoke ? 0.3 : opts.durationS / 2;
    const out = Object.fromEntries(SIZES.map((s) => [s.key, Object.fromEntries(measured.map((t) => [t.name, { runs: [], error: null }]))]));
    const probes = [];
    let probeError = null;
    for (const t of measured) await transfer(t, SIZES[0], { seconds: 0, minCalls: 2 }).catch(() => {}); // warm the path
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const t of measured) {
        for (const size of SIZES) {
          const slot = out[size.key][t.name];
          if (slot.error) continue;
          try {
            const r = await transfer(t, size, { seconds, minCalls: size.key === '16mb' ? 2 : 5 });
            slot.runs.push(r);
            log(`big ${t.name} ${size.key} rep ${rep + 1}/${opts.reps}: ${r.mbps.toFixed(0)} MB/s (${r.calls} calls)`);
          } catch (e) {
            slot.error = e.message;
            log(`big ${t.name} ${size.key}: ${e.message}`);
          }
        }
      }
      // Memory: one transfer at a time, so garbage left by back-to-back answers is not counted.
      const proxy = measured.find((t) => t.name === 'proxy');
      const pid = proxy?.server?.child?.pid;
      for (let i = 0; pid && !probeError && i < (opts.smoke ? 1 : RSS_PROBES); i++) {
        try {
          const p = await rssProbe(proxy, pid);
          probes.push(p);
          log(`big proxy RSS probe: idle ${kibToMB(p.idleKiB).toFixed(1)} MB, peak ${signed(kibToMB(p.peakKiB - p.idleKiB), 1)} MB (${p.samples} samples)`);
        } catch (e) {
          probeError = e.message;
        }
      }
    }
    const sizes = {};
    for (const size of SIZES) {
      const byTarget = {};
      for (const [name, slot] of Object.entries(out[size.key])) {
        byTarget[name] = slot.error ? { error: slot.error } : { mbps: median(slot.runs.map((r) => r.mbps)), calls: slot.runs.reduce((n, r) => n + r.calls, 0) };
      }
      sizes[size.key] = { bytes: size.bytes, targets: byTarget, proxyVsDirect: ratio(byTarget.proxy?.mbps, byTarget.direct?.mbps) };
    }
    // Peak over idle: the worst probe counts (a peak is a peak); the median shows what is typical.
    const rss16mb = {};
    if (probeError) rss16mb.proxy = { error: probeError };
    else if (probes.length) {
      const above = probes.map((p) => kibToMB(p.peakKiB - p.idleKiB));
      const worst = probes[above.indexOf(Math.max(...above))];
      rss16mb.proxy = {
        probes: probes.length,
        idleMB: kibToMB(worst.idleKiB), peakMB: kibToMB(worst.peakKiB),
        peakAboveIdleMB: Math.max(...above), medianAboveIdleMB: median(above),
        samples: probes.reduce((n, p) => n + p.samples, 0),
      };
    }
    return { sizes, rss16mb };
  },
  numbers: (r) => {
    const out = {};
    for (const [key, s] of Object.entries(r.sizes)) for (const [name, t] of Object.entries(s.targets)) out[`${key} ${name} MB/s`] = t.mbps;
    if (r.sizes['16mb'].targets.proxy) out['proxy peak − idle MB'] = r.rss16mb.proxy?.peakAboveIdleMB;
    return out;
  },
  table(r) {
    const rows = [];
    for (const [key, s] of Object.entries(r.sizes)) {
      for (const [name, t] of Object.entries(s.targets)) {
        if (t.error) { rows.push([key, name, `failed: ${t.error.slice(0, 120)}`, '', '']); continue; }
        rows.push([key, name, fmt(t.mbps), name === 'proxy' ? fmt(s.proxyVsDirect, 2) : '', fmt(t.calls)]);
      }
    }
    const out = [mdTable(['size', 'target', 'MB/s', 'proxy ÷ direct', 'calls'], rows)];
    const m = r.rss16mb.proxy;
    if (m) {
      out.push('', m.error ? `proxy RSS probe failed: ${m.error}` : mdTable(
        ['proxy RSS, one 16 MB answer (sampled every 10 ms)', 'idle MB', 'peak MB', 'peak − idle MB (worst)', 'peak − idle MB (median)', 'probes'],
        [['worst probe', fmt(m.idleMB, 1), fmt(m.peakMB, 1), signed(m.peakAboveIdleMB, 1), signed(m.medianAboveIdleMB, 1), fmt(m.probes)]]));
    }
    return out.join('\n');
  },
};
