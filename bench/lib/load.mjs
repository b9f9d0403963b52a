// autocannon runs in this process (the runner is otherwise idle while it loads a target).
// Its latency histogram has 1 ms resolution: the µs probe (probe.mjs) measures added latency.
import autocannon from 'autocannon';
import { idTemplate, nextVaryBase, varyTemplate } from './mcp.mjs';

function run(opts) {
  return new Promise((resolve, reject) => {
    // Without autocannon.track() nothing is printed, which is what we want.
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

// A fresh id per request (what MCP requires within a session) makes autocannon rebuild every
// request, which roughly halves its own ceiling; the runner gives every target the same workload.
let nextId = 1000; // above the ids the session handshake used
function freshIds(body) {
  const [pre, post] = idTemplate(body);
  return { setupRequest: (req) => { req.body = pre + nextId++ + post; return req; } };
}

/** A fresh value in place of the target's varyMark per request (and a fresh id if `uniqueIds`). */
function freshValues(body, mark, uniqueIds) {
  const [pre, post] = varyTemplate(body, String(mark));
  const [idPre, idPost] = uniqueIds ? idTemplate(pre) : [pre, ''];
  let value = nextVaryBase();
  return { setupRequest: (req) => { req.body = (uniqueIds ? idPre + nextId++ + idPost : pre) + value++ + post; return req; } };
}

/**
 * Loads `url` with the session's request for `durationS` seconds at `connections`.
 * A target that answers anything but 2xx has its numbers voided: fast errors are not throughput.
 */
function baseOptions({ url, headers, body, uniqueIds, varyMark }, connections) {
  const base = { url, method: 'POST', headers, body, connections, pipelining: 1, timeout: 10 };
  if (varyMark) base.requests = [freshValues(body, varyMark, uniqueIds)];
  else if (uniqueIds) base.requests = [freshIds(body)];
  return base;
}

/** Sends `requests` requests unmeasured: JIT, connection pools and caches settle first. */
export async function warmUp(target, { connections, requests }) {
  await run({ ...baseOptions(target, connections), amount: Math.max(requests, connections) });
}

export async function loadTarget(target, { connections, durationS, warmupRequests = 0 }) {
  if (warmupRequests > 0) await warmUp(target, { connections, requests: warmupRequests });
  const r = await run({ ...baseOptions(target, connections), duration: durationS });
  const total = r.requests.total ?? r['2xx'];
  const out = {
    rps: total / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    requests: total,
    durationS: r.duration,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
  if (r.non2xx > 0) out.error = `${r.non2xx} non-2xx answers (${JSON.stringify(r.statusCodeStats)})`;
  else if (!(out.rps > 0)) out.error = `no answers (${r.errors} errors, ${r.timeouts} timeouts)`;
  return out;
}
