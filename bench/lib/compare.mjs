// Runs the targets in interleaved rounds (direct, proxy, civic, direct, proxy, civic, ...) so that
// a noisy neighbour hurts all of them alike, then keeps the median of each target's runs.
import { median, ratio } from './stats.mjs';

/**
 * runOne(target, rep) → { rps, p50Ms, p99Ms, ..., error? }. A target that errors once is dropped
 * from the later rounds (its numbers would mislead) and reported with its error.
 */
export async function interleaved(targets, reps, runOne, log = () => {}) {
  const out = Object.fromEntries(targets.map((t) => [t.name, { runs: [], error: null }]));
  for (let rep = 0; rep < reps; rep++) {
    for (const t of targets) {
      const slot = out[t.name];
      if (slot.error) continue;
      try {
        const r = await runOne(t, rep);
        if (r.error) slot.error = r.error;
        else slot.runs.push(r);
        log(`${t.name} rep ${rep + 1}/${reps}: ${r.error ?? `${Math.round(r.rps)} req/s`}`);
      } catch (e) {
        slot.error = e.message;
        log(`${t.name} rep ${rep + 1}/${reps}: ${e.message}`);
      }
    }
  }
  for (const slot of Object.values(out)) {
    if (slot.error || !slot.runs.length) continue;
    slot.median = {
      rps: median(slot.runs.map((r) => r.rps)),
      p50Ms: median(slot.runs.map((r) => r.p50Ms)),
      p99Ms: median(slot.runs.map((r) => r.p99Ms)),
    };
  }
  return out;
}

/** proxy/direct and proxy/civic throughput ratios from interleaved results. */
export function throughputRatios(byTarget) {
  const rps = (name) => byTarget[name]?.median?.rps;
  return { proxyVsDirect: ratio(rps('proxy'), rps('direct')), proxyVsCivic: ratio(rps('proxy'), rps('civic')) };
}
