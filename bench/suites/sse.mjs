// (e) SSE relay latency: the fixture's sse_tick writes `count` notifications `intervalMs` apart,
// each stamped with the wall clock in µs just before its write; the client reads the clock the
// moment the bytes arrive. The gap between events means each is measured on its own (no queue,
// no coalescing). Direct and proxy share the fixture and the client, so any clock offset cancels
// in "added" = proxy − direct.
import http from 'node:http';
import { wallClockMicros } from '../lib/clock.mjs';
import { summarise } from '../lib/probe.mjs';
import { mdTable } from '../lib/report.mjs';
import { fmt, signed } from '../lib/stats.mjs';

const INTERVAL_MS = 2;
let nextId = 5_000_000;

/** One sse_tick call; resolves with the relay latency (µs) of every notification. */
export function sseRun(target, { count, intervalMs }) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'sse_tick', arguments: { count, intervalMs } } });
  return new Promise((resolve, reject) => {
    const latencies = [];
    let final = null;
    const req = http.request(target.url, {
      method: 'POST', agent: false,
      headers: { ...target.headers, 'content-length': Buffer.byteLength(body) },
    });
    req.setNoDelay(true);
    req.setTimeout(count * intervalMs + 20_000, () => req.destroy(new Error('sse: timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      const type = res.headers['content-type'] ?? '';
      if (res.statusCode !== 200 || !type.startsWith('text/event-stream')) {
        res.resume();
        return reject(new Error(`sse: HTTP ${res.statusCode} ${type} from ${target.url}`));
      }
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        const now = wallClockMicros(); // first: everything below is our own cost
        buf += chunk.includes('\r') ? chunk.replace(/\r\n?/g, '\n') : chunk;
        for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(l[5] === ' ' ? 6 : 5)).join('\n');
          if (!data) continue;
          const msg = JSON.parse(data);
          if (msg.method === 'notifications/message') latencies.push(now - msg.params.data.t_us);
          else if (msg.id !== undefined) final = msg;
        }
      });
      res.on('error', reject);
      res.on('end', () => {
        if (!final?.result) return reject(new Error(`sse: stream ended without the result (${latencies.length}/${count} events)`));
        if (latencies.length !== count) return reject(new Error(`sse: ${latencies.length} of ${count} events arrived`));
        resolve(latencies);
      });
    });
    req.end(body);
  });
}

export default {
  name: 'sse',
  title: `SSE relay latency (upstream write → client arrival, one event every ${INTERVAL_MS} ms, µs)`,
  skipReason: (opts) => (opts.target ? 'needs the local fixture (not with --target)' : null),
  async run({ targets, opts, log }) {
    const measured = targets.filter((t) => t.name === 'direct' || t.name === 'proxy');
    const count = opts.smoke ? 200 : Math.max(100, Math.round((opts.durationS * 1000) / INTERVAL_MS));
    const pooled = Object.fromEntries(measured.map((t) => [t.name, { samples: [], error: null }]));
    // A short stream first: the proxy's SSE path has not been exercised by the earlier suites.
    for (const t of measured) await sseRun(t, { count: 20, intervalMs: 1 }).catch(() => {});
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const t of measured) {
        const slot = pooled[t.name];
        if (slot.error) continue;
        try {
          const lat = await sseRun(t, { count, intervalMs: INTERVAL_MS });
          slot.samples.push(...lat);
          log(`sse ${t.name} rep ${rep + 1}/${opts.reps}: ${lat.length} events, p50 ${summarise(lat).p50Us.toFixed(0)} µs`);
        } catch (e) {
          slot.error = e.message;
          log(`sse ${t.name}: ${e.message}`);
        }
      }
    }
    const byTarget = {};
    for (const [name, slot] of Object.entries(pooled)) {
      if (slot.error) { byTarget[name] = { error: slot.error }; continue; }
      const { samples, ...stats } = summarise(slot.samples);
      byTarget[name] = stats;
    }
    const d = byTarget.direct, p = byTarget.proxy;
    const added = Number.isFinite(d?.p50Us) && Number.isFinite(p?.p50Us)
      ? { p50Us: p.p50Us - d.p50Us, p99Us: p.p99Us - d.p99Us }
      : null;
    return { eventsPerRun: count, intervalMs: INTERVAL_MS, targets: byTarget, added };
  },
  numbers: (r) => ({
    ...Object.fromEntries(Object.entries(r.targets).map(([name, t]) => [`${name} p50 µs`, t.p50Us])),
    ...(r.targets.proxy ? { 'added p50 µs': r.added?.p50Us } : {}),
  }),
  table(r) {
    const base = r.targets.direct;
    const rows = Object.entries(r.targets).map(([name, t]) => t.error
      ? [name, `failed: ${t.error.slice(0, 120)}`, '', '', '', '', '']
      : [name, fmt(t.count), fmt(t.p50Us), fmt(t.p99Us), fmt(t.maxUs),
        name === 'direct' || !base?.p50Us ? '' : signed(t.p50Us - base.p50Us),
        name === 'direct' || !base?.p99Us ? '' : signed(t.p99Us - base.p99Us)]);
    return mdTable(['target', 'events', 'p50', 'p99', 'max', 'added p50', 'added p99'], rows);
  },
};
