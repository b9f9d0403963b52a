// What a gate says about one message. Gates are pure: (message facts, snapshot) → Decision.
import type { ErrorKind, Gate } from '../core/errors.js';
import type { Principal } from '../core/policy-engine.js';
import type { ResourceKind } from '../policy/governable.js';
import type { Action } from '../policy/types.js';

export type GateName = 'gate1' | 'gate2' | 'gate3' | 'gate4';

/** The name each gate goes by in error data, audit lines and the decision API (as in the original). */
export const GATE_LABELS: Readonly<Record<GateName, Gate>> = Object.freeze({ gate1: 'visibility', gate2: 'governance', gate3: 'policy', gate4: 'approval' });

export interface Decision {
  /** forward: send upstream; deny: answer with `error`; approve/policy: gates 3–4 decide */
  action: Action;
  /** the gate that settled it (or handed it on) */
  gate: GateName;
  /** set when action is deny */
  error?: ErrorKind;
  /** one line for the audit trail and logs */
  reason: string;
  /** the rule glob that matched, when gate 2 matched one */
  rule?: string;
  policyId?: string;
  /** Cedar policies that determined the outcome (gate 3) */
  policyIds?: string[];
  /** how gate 3 answered, for its metrics */
  cedar?: { micros: number; cached: boolean };
  approval?: string;
}

/** What the gates need to know about a message; built once by the pipeline. */
export interface Subject {
  method: string;
  /** tool name, resource URI or prompt name; undefined for methods that are not governed */
  resource: string | undefined;
  /** how `resource` is compared (default: by method — a URI for resources/*, else a name) */
  kind?: ResourceKind;
  sourceId: string;
  /** tools/call arguments, for policies that read them (gate 3) */
  arguments?: unknown;
  /** who is calling, for policies that read it (gate 3) */
  principal?: Principal;
}

export const FORWARD_UNGOVERNED: Decision = Object.freeze({
  action: 'forward',
  gate: 'gate1',
  reason: 'method not governed',
}) as Decision;

/** The principal when none was resolved (tests, tools): a local caller with no roles. */
export const LOCAL_PRINCIPAL: Principal = Object.freeze({ id: 'local', namespace: 'local', serviceAccount: 'local', roles: [], labels: {} }) as Principal;
