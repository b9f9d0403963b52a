// Gate 2: YAML rules. The first rule whose source filter admits the source and whose glob
// matches the resource name wins; otherwise `governance.defaults.action`.
import type { ResourceKind } from '../policy/governable.js';
import { ruleMatches } from '../policy/snapshot.js';
import type { CompiledRule, Snapshot } from '../policy/types.js';
import type { Decision, Subject } from './decision.js';

// A rule's decision never changes for its snapshot, so it is built once and shared (no
// allocation per call). Keyed weakly: a reloaded snapshot's rules take theirs with them.
const ruleDecisions = new WeakMap<CompiledRule, Decision>();
const defaultDecisions = new WeakMap<Snapshot, Decision>();

function ruleDecision(rule: CompiledRule): Decision {
  let d = ruleDecisions.get(rule);
  if (d === undefined) {
    const c = rule.config;
    d = { action: c.action, gate: 'gate2', reason: `rule '${c.match}' → ${c.action}`, rule: c.match };
    if (c.action === 'deny') d.error = 'governance_rule_denied';
    if (c.policy_id !== undefined) d.policyId = c.policy_id;
    if (c.approval !== undefined) d.approval = c.approval;
    Object.freeze(d);
    ruleDecisions.set(rule, d);
  }
  return d;
}

function defaultDecision(snapshot: Snapshot): Decision {
  let d = defaultDecisions.get(snapshot);
  if (d === undefined) {
    const action = snapshot.defaultAction;
    d = { action, gate: 'gate2', reason: `no rule matched; default ${action}` };
    if (action === 'deny') d.error = 'governance_rule_denied';
    Object.freeze(d);
    defaultDecisions.set(snapshot, d);
  }
  return d;
}

/** `key` is the resource as compared (see match-key.ts); by default the name as given. */
export function rulesGate(subject: Subject, snapshot: Snapshot, key = subject.resource as string, kind: ResourceKind = 'name'): Decision {
  const rules = snapshot.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.sources !== undefined && !rule.sources.has(subject.sourceId)) continue;
    if (kind === 'name' ? rule.matches(key) : ruleMatches(rule, key, kind)) return ruleDecision(rule);
  }
  return defaultDecision(snapshot);
}

const holdable = new WeakMap<Snapshot, Map<string, boolean>>();

/**
 * Whether any call to `sourceId` can be held for a person under this snapshot: a rule admitting
 * the source (or the default) says approve, or policy (Cedar may answer approve). Only then does
 * the proxy offer tasks of its own for that source; otherwise it adds nothing the upstream lacks.
 */
export function mayHold(snapshot: Snapshot, sourceId: string): boolean {
  let bySource = holdable.get(snapshot);
  if (bySource === undefined) holdable.set(snapshot, (bySource = new Map()));
  let v = bySource.get(sourceId);
  if (v === undefined) {
    const holds = (a: string): boolean => a === 'approve' || a === 'policy';
    v = holds(snapshot.defaultAction) || snapshot.rules.some((r) => (r.sources === undefined || r.sources.has(sourceId)) && holds(r.config.action));
    bySource.set(sourceId, v);
  }
  return v;
}
