// Gate 4 until the approval engine exists: a call that needs a human's approval cannot get
// one, so it is refused (fail closed) with a message that says why.
import type { Decision } from './decision.js';

const held = new WeakMap<Decision, Decision>();

export function approvalGate(d: Decision): Decision {
  if (d.action !== 'approve') return d;
  let out = held.get(d);
  if (out === undefined) {
    out = Object.freeze({ ...d, action: 'deny', gate: 'gate4', error: 'service_unavailable', reason: `${d.reason}; approval engine not available (fail closed)` }) as Decision;
    held.set(d, out);
  }
  return out;
}
