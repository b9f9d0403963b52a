// The load generator for suites that compare two proxies or one odd request: wrk when installed
// (it does not saturate itself first, so its ratios are honest), autocannon otherwise.
import { runWrk, wrkPath } from './wrk.mjs';
import { loadTarget } from './load.mjs';

export const generatorName = () => (wrkPath() ? 'wrk' : 'autocannon');

/** target: { url, headers, body, uniqueIds } → { rps, p50Ms, p99Ms, ..., error? } */
export function loadWith(target, { connections, durationS }) {
  return wrkPath() ? runWrk(target, { connections, durationS }) : loadTarget(target, { connections, durationS });
}
