// µs-resolution latency probe: one keep-alive socket, one request at a time, paced at a fixed
// rate, process.hrtime.bigint() around each call. A raw net.Socket keeps client overhead to a
// few µs, so the difference proxy − direct is the proxy's added latency, not the client's.
import net from 'node:net';
import { percentile } from './stats.mjs';
import { idTemplate, nextVaryBase, varyTemplate } from './mcp.mjs';

const CRLF2 = Buffer.from('\r\n\r\n');

/**
 * Returns a function giving the bytes of the next POST, each with a fresh JSON-RPC id (MCP forbids
 * reusing one in a session). Ids have a fixed width so the head, with its content-length, is built once.
 * A target with `varyMark` also gets a fresh 10-digit value in place of the mark (mcp.mjs VARY_MARK).
 */
export function requestMaker({ url, headers, body, varyMark }) {
  const u = new URL(url);
  const [pre, afterId] = idTemplate(body);
  const [mid, post] = varyMark ? varyTemplate(afterId, String(varyMark)) : [afterId, ''];
  let id = 1_000_000_000;
  let value = varyMark ? nextVaryBase() : 0;
  const length = Buffer.byteLength(pre) + String(id).length + Buffer.byteLength(mid) + (varyMark ? String(value).length : 0) + Buffer.byteLength(post);
  const lines = [`POST ${u.pathname}${u.search} HTTP/1.1`, `host: ${u.host}`, `content-length: ${length}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const head = `${lines.join('\r\n')}\r\n\r\n${pre}`;
  if (varyMark) return () => Buffer.from(head + id++ + mid + value++ + post);
  return () => Buffer.from(head + id++ + mid);
}

/**
 * Returns the length of a complete response at the start of `buf`, or 0 when more bytes are
 * needed. Handles content-length and chunked bodies (the proxy may answer either).
 */
export function completeLength(buf) {
  const headEnd = buf.indexOf(CRLF2);
  if (headEnd < 0) return 0;
  const head = buf.toString('latin1', 0, headEnd).toLowerCase();
  const bodyStart = headEnd + 4;
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) { const end = bodyStart + Number(cl[1]); return buf.length >= end ? end : 0; }
  if (!/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) {
    if (/^http\/1\.1 (1\d\d|204|304)/.test(head)) return bodyStart; // no body by definition
    throw new Error(`probe: response without length: ${head.slice(0, 200)}`);
  }
  let pos = bodyStart;
  for (;;) { // chunk-size CRLF data CRLF ... 0 CRLF (trailers) CRLF
    const lineEnd = buf.indexOf('\r\n', pos, 'latin1');
    if (lineEnd < 0) return 0;
    const size = parseInt(buf.toString('latin1', pos, lineEnd), 16);
    if (size === 0) { // the blank line after the (usually absent) trailers ends the message
      const end = buf.indexOf(CRLF2, lineEnd);
      return end < 0 ? 0 : end + 4;
    }
    pos = lineEnd + 2 + size + 2;
    if (pos > buf.length) return 0;
  }
}

/** One keep-alive connection; send() resolves with the status line when the answer is complete. */
function connect(url) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port || 80), u.hostname);
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let waiting = null;
    sock.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (!waiting) return;
      let n;
      try { n = completeLength(buf); } catch (e) { const w = waiting; waiting = null; return w.reject(e); }
      if (!n) return;
      const status = buf.toString('latin1', 9, 12);
      buf = buf.subarray(n);
      const w = waiting; waiting = null; w.resolve(status);
    });
    const fail = (e) => { if (waiting) { const w = waiting; waiting = null; w.reject(e); } };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('probe: connection closed by server')));
    sock.once('connect', () => resolve({
      send: (bytes) => new Promise((res, rej) => { waiting = { resolve: res, reject: rej }; sock.write(bytes); }),
      close: () => sock.destroy(),
    }));
    sock.once('error', reject);
  });
}

// Sleeping with Atomics.wait gives sub-millisecond pacing without spinning a core (setTimeout
// has 1 ms granularity). Blocking the loop is harmless: nothing is in flight while we wait.
const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepNs(ns) { if (ns > 20_000n) Atomics.wait(sleeper, 0, 0, Number(ns) / 1e6); }

/**
 * Sends `warmup + requests` requests at `rate` per second (or as fast as answers come when the
 * target is slower). Returns latency percentiles in µs over the measured requests.
 */
export async function probeLatency(target, { requests, rate = 2000, warmup = 100 }) {
  const nextRequest = requestMaker(target);
  const conn = await connect(target.url);
  const samples = new Float64Array(requests);
  const interval = BigInt(Math.round(1e9 / rate));
  let due = process.hrtime.bigint();
  try {
    for (let i = -warmup; i < requests; i++) {
      const bytes = nextRequest();
      const now = process.hrtime.bigint();
      if (due > now) sleepNs(due - now);
      const t0 = process.hrtime.bigint();
      const status = await conn.send(bytes);
      const t1 = process.hrtime.bigint();
      if (status[0] !== '2') throw new Error(`probe: HTTP ${status} from ${target.url}`);
      if (i >= 0) samples[i] = Number(t1 - t0) / 1000;
      // Fixed schedule, but never burst to catch up after a slow answer.
      due = due + interval > t1 ? due + interval : t1;
    }
  } finally {
    conn.close();
  }
  return summarise(samples);
}

export function summarise(samples) {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50Us: percentile(sorted, 50),
    p90Us: percentile(sorted, 90),
    p99Us: percentile(sorted, 99),
    p999Us: percentile(sorted, 99.9),
    maxUs: sorted[sorted.length - 1],
    samples: sorted,
  };
}

/** Log-spaced buckets for printing a latency histogram of a deployment (--target). */
export function histogram(sortedUs) {
  const edges = [50, 100, 200, 300, 500, 750, 1000, 2000, 5000, 10000, 20000, 50000, 100000, Infinity];
  const rows = [];
  let i = 0;
  let lo = 0;
  for (const hi of edges) {
    let n = 0;
    while (i < sortedUs.length && sortedUs[i] < hi) { n++; i++; }
    if (n) rows.push({ from: lo, to: hi, count: n, share: n / sortedUs.length });
    lo = hi;
  }
  return rows;
}
