// Gate 2: YAML rules. The first rule whose source filter admits the source and whose glob
// matches the resource name wins; otherwise `governance.defaults.action`.
import type { Snapshot } from '../policy/types.js';
import type { Decision, Subject } from './decision.js';

export function rulesGate(subject: Subject, snapshot: Snapshot): Decision {
  const name = subject.resource as string;
  const rules = snapshot.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.sources !== undefined && !rule.sources.has(subject.sourceId)) continue;
    if (!rule.matches(name)) continue;
    const c = rule.config;
    const d: Decision = { action: c.action, gate: 'gate2', reason: `rule '${c.match}' → ${c.action}`, rule: c.match };
    if (c.action === 'deny') d.error = 'governance_rule_denied';
    if (c.policy_id !== undefined) d.policyId = c.policy_id;
    if (c.approval !== undefined) d.approval = c.approval;
    return d;
  }
  const action = snapshot.defaultAction;
  const d: Decision = { action, gate: 'gate2', reason: `no rule matched; default ${action}` };
  if (action === 'deny') d.error = 'governance_rule_denied';
  return d;
}
