// The gate order, written once. Shared by the sidecar, the stdio shim and the decision API.
// The result is the governance decision (forward, deny, or approve = needs a human); what the
// proxy does with `approve` is gate 4's business (approval.ts). Gate 3 may answer from a
// worker, so judge returns a Decision or a promise of one.
import type { CedarDecision } from '../core/policy-engine.js';
import type { Snapshot } from '../policy/types.js';
import { FORWARD_UNGOVERNED, LOCAL_PRINCIPAL, type Decision, type Subject } from './decision.js';
import { visibilityGate } from './visibility.js';
import { rulesGate } from './rules.js';
import { matchKey } from './match-key.js';
import { resourceKindOf } from '../policy/governable.js';
import { canonicalUri } from '../policy/canonical.js';

export function judge(subject: Subject, snapshot: Snapshot): Decision | Promise<Decision> {
  if (subject.resource === undefined) return FORWARD_UNGOVERNED;
  // Every gate compares one spelling: the canonical URI, or the name as the server compares it.
  const kind = subject.kind ?? resourceKindOf(subject.method);
  const key = matchKey(subject.resource, kind, snapshot);
  const hidden = visibilityGate(subject, snapshot, key, kind);
  if (hidden !== undefined) return hidden;
  // Other readings of the same URI that servers make (see otherReadings): whatever hides or
  // restricts one of them applies to the URI too; the stricter decision wins.
  const others = kind === 'uri' ? otherReadings(key) : undefined;
  if (others !== undefined) {
    for (const r of others) {
      const otherHidden = visibilityGate(subject, snapshot, r, kind);
      if (otherHidden !== undefined) return otherHidden;
    }
  }
  let ruled = rulesGate(subject, snapshot, key, kind);
  if (others !== undefined) {
    for (const r of others) {
      const otherRuled = rulesGate(subject, snapshot, r, kind);
      if (STRICTNESS[otherRuled.action] > STRICTNESS[ruled.action]) ruled = otherRuled;
    }
  }
  if (ruled.action !== 'policy') return ruled;
  return policyGate(subject, snapshot, ruled, kind === 'name' ? subject.resource : key);
}

const STRICTNESS: Readonly<Record<Decision['action'], number>> = { forward: 0, policy: 1, approve: 2, deny: 3 };

/**
 * Readings of a canonical URI other than itself that servers make: without its query and
 * fragment (a file server opening `new URL(u).pathname` serves `file:///etc/passwd?x` as
 * /etc/passwd), and with encoded slashes decoded (a server that percent-decodes the path reads
 * `file:///tmp/..%2Fetc/passwd` as /etc/passwd). Undefined when there are none (the common case).
 */
function otherReadings(uri: string): string[] | undefined {
  let out: string[] | undefined;
  const add = (r: string | undefined): void => {
    if (r !== undefined && r !== uri && !(out ??= []).includes(r)) out.push(r);
  };
  const bare = withoutQuery(uri);
  add(bare);
  if (uri.includes('%2F') || uri.includes('%5C')) {
    const decoded = canonicalUri((bare ?? uri).replace(/%2F|%5C/g, '/'));
    add(decoded);
    if (decoded !== undefined) add(withoutQuery(decoded));
  }
  return out;
}

/** The URI up to its query or fragment; undefined when it has neither. */
function withoutQuery(uri: string): string | undefined {
  const q = uri.indexOf('?');
  const h = uri.indexOf('#');
  const end = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return end < 0 ? undefined : uri.slice(0, end);
}

/** Gate 3: Cedar. No engine, an error, a forbid or no permit: deny (fail closed). */
function policyGate(subject: Subject, snapshot: Snapshot, ruled: Decision, resource: string): Decision | Promise<Decision> {
  const cedar = snapshot.cedar;
  if (cedar === undefined) {
    return { ...ruled, action: 'deny', gate: 'gate3', error: 'policy_denied', reason: `${ruled.reason}; no cedar policies configured (fail closed)` };
  }
  const out = cedar.decide({
    method: subject.method,
    resource,
    arguments: subject.arguments,
    sourceId: subject.sourceId,
    policyId: ruled.policyId ?? 'default',
    principal: subject.principal ?? LOCAL_PRINCIPAL,
  });
  return out instanceof Promise ? out.then((d) => fromCedar(d, ruled)) : fromCedar(out, ruled);
}

function fromCedar(c: CedarDecision, ruled: Decision): Decision {
  const d: Decision = {
    action: c.outcome,
    gate: 'gate3',
    reason: c.reason,
    policyIds: c.policyIds as string[],
    cedar: { micros: c.micros, cached: c.cached },
  };
  if (ruled.rule !== undefined) d.rule = ruled.rule;
  if (ruled.policyId !== undefined) d.policyId = ruled.policyId;
  if (ruled.approval !== undefined) d.approval = ruled.approval;
  if (c.outcome === 'deny') d.error = 'policy_denied';
  return d;
}
