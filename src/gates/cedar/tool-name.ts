// What a policy's conditions say about the tool name, so that a tools/call can be evaluated
// against conditions specialised to its tool (evaluate.ts ToolSubsets).
//
// A tool-name test is `resource.name` or `resource.tool_name` compared with `like "…"` or
// `== "…"` (either side). On a tools/call both attributes are the tool's name, always a string,
// so such a test has one value per tool and never raises an error. Hence, for a given tool:
//   - replacing each test by its value (`true` / `false`) changes no decision and no error;
//   - a copy whose first `when` clause is then certainly false (see `falsified`) is unsatisfied
//     without error for every call of that tool, and can be left out of the set.
// The tests' values for a tool are asked of Cedar itself (one policy per distinct test), so
// `like` patterns keep Cedar's own semantics.
import type { PolicyJson } from './wasm.js';

type Node = Record<string, unknown>;
type Conditions = PolicyJson['conditions'];

const NAME_ATTRS = new Set(['name', 'tool_name']);

function readsToolName(e: unknown): boolean {
  const dot = (e as Node | null)?.['.'] as { left?: Node; attr?: string } | undefined;
  return dot !== undefined && NAME_ATTRS.has(dot.attr ?? '') && dot.left?.['Var'] === 'resource';
}

const isStringValue = (e: unknown): boolean => typeof (e as Node | null)?.['Value'] === 'string';

/** The key of a tool-name test (its JSON), or undefined when `e` is not one. */
export function testKey(e: unknown): string | undefined {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return undefined;
  const n = e as Node;
  const like = n['like'] as { left: unknown } | undefined;
  if (like !== undefined) return readsToolName(like.left) ? JSON.stringify(e) : undefined;
  const eq = n['=='] as { left: unknown; right: unknown } | undefined;
  if (eq !== undefined && ((readsToolName(eq.left) && isStringValue(eq.right)) || (readsToolName(eq.right) && isStringValue(eq.left)))) {
    return JSON.stringify(e);
  }
  return undefined;
}

/** Adds every tool-name test in `conditions` to `found` (key → the test's node). */
export function collectTests(conditions: Conditions, found: Map<string, unknown>): void {
  const visit = (e: unknown): void => {
    if (e === null || typeof e !== 'object') return;
    if (Array.isArray(e)) {
      for (const x of e) visit(x);
      return;
    }
    const key = testKey(e);
    if (key !== undefined) {
      if (!found.has(key)) found.set(key, e);
      return;
    }
    const n = e as Node;
    if ('Value' in n) return; // data, never an expression
    for (const v of Object.values(n)) visit(v);
  };
  for (const c of conditions) visit(c.body);
}

/** The Cedar text asking whether one test holds: `permit(principal, action, resource) when { <test> };` */
export function testPolicy(test: unknown): PolicyJson {
  return {
    effect: 'permit', principal: { op: 'All' }, action: { op: 'All' }, resource: { op: 'All' },
    conditions: [{ kind: 'when', body: test }],
  } as PolicyJson;
}

/** The value of each test for one tool: key → true/false (undefined when not known). */
export type TestValues = (key: string) => boolean | undefined;

/** `conditions` with every tool-name test whose value is known replaced by that value. */
export function specialise(conditions: Conditions, values: TestValues): Conditions {
  const subst = (e: unknown): unknown => {
    if (e === null || typeof e !== 'object') return e;
    if (Array.isArray(e)) return e.map(subst);
    const key = testKey(e);
    if (key !== undefined) {
      const v = values(key);
      return v === undefined ? e : { Value: v };
    }
    const n = e as Node;
    if ('Value' in n) return n;
    const out: Node = {};
    for (const [k, v] of Object.entries(n)) out[k] = subst(v);
    return out;
  };
  return conditions.map((c) => ({ kind: c.kind, body: subst(c.body) })) as Conditions;
}

/**
 * True when `conditions`, for this tool, are certainly false without an error being raised:
 * Cedar evaluates the scope, then the clauses in order, each left to right with short-circuit,
 * so only the first clause, when it is a `when`, can be decided this way: a false test, the left
 * side of `&&` decided false, or both sides of `||` decided false.
 */
export function falsified(conditions: Conditions, values: TestValues): boolean {
  const first = conditions[0];
  if (first === undefined || first.kind !== 'when') return false;
  const isFalse = (e: unknown): boolean => {
    if (e === null || typeof e !== 'object') return false;
    const key = testKey(e);
    if (key !== undefined) return values(key) === false;
    const n = e as Node;
    const and = n['&&'] as { left: unknown } | undefined;
    if (and !== undefined) return isFalse(and.left);
    const or = n['||'] as { left: unknown; right: unknown } | undefined;
    if (or !== undefined) return isFalse(or.left) && isFalse(or.right);
    return false;
  };
  return isFalse(first.body);
}
