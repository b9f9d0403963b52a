// The gate order, written once. Shared by the sidecar, the stdio shim and the decision API.
// The result is the governance decision (forward, deny, or approve = needs a human); what the
// proxy does with `approve` is gate 4's business (approval.ts).
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
  return ruled;
}
