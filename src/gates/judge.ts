// The gate order, written once. Shared by the sidecar, the stdio shim and the decision API.
// Gates 3 (Cedar) and 4 (approval) have no engine yet: a call that reaches one fails closed.
import type { Snapshot } from '../policy/types.js';
import { FORWARD_UNGOVERNED, type Decision, type Subject } from './decision.js';
import { visibilityGate } from './visibility.js';
import { rulesGate } from './rules.js';

export function judge(subject: Subject, snapshot: Snapshot): Decision {
  if (subject.resource === undefined) return FORWARD_UNGOVERNED;
  const hidden = visibilityGate(subject, snapshot);
  if (hidden !== undefined) return hidden;
  const ruled = rulesGate(subject, snapshot);
  if (ruled.action === 'policy') {
    // Fail closed until the Cedar engine lands: nothing is forwarded that could not be judged.
    return { ...ruled, action: 'deny', gate: 'gate3', error: 'policy_denied', reason: `${ruled.reason}; Cedar engine not configured (fail closed)` };
  }
  if (ruled.action === 'approve') {
    return { ...ruled, action: 'deny', gate: 'gate4', error: 'service_unavailable', reason: `${ruled.reason}; approval engine not available (fail closed)` };
  }
  return ruled;
}
