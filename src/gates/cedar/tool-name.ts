// What a policy's conditions say about the tool name, so that a tools/call can be evaluated
// against conditions specialised to its tool (evaluate.ts ToolSubsets).
//
// A tool-name test is `resource.name` or `resource.tool_name` compared with `like "…"` or
// `== "…"` (either side). On a tools/call both attributes are the tool's name, always a string,
// so such a test has one value per tool and never raises an error. Hence, for a given tool:
//   - replacing each test by its value (`true` / `false`) changes no decision and no error;
//   - a copy whose first `when` clause is then certainly false (see `falsified`) is unsatisfied
//     without error for every call of that tool, and can be left out of the set.
// A test's value is computed here from the pattern Cedar parsed (`policyToJson` gives `like`
// patterns as tokens: one `{Literal: char}` per character, `"Wildcard"` for `*`), so escapes are
// already Cedar's; what is left is matching characters (Unicode scalar values) and wildcards.
import type { PolicyJson } from './wasm.js';

type Node = Record<string, unknown>;
type Conditions = PolicyJson['conditions'];

const NAME_ATTRS = new Set(['name', 'tool_name']);

function readsToolName(e: unknown): boolean {
  const dot = (e as Node | null)?.['.'] as { left?: Node; attr?: string } | undefined;
  return dot !== undefined && NAME_ATTRS.has(dot.attr ?? '') && dot.left?.['Var'] === 'resource';
}

const isStringValue = (e: unknown): boolean => typeof (e as Node | null)?.['Value'] === 'string';

/** keys of the nodes seen (a plan's policies are walked once per new tool name: stringify once) */
const keys = new WeakMap<object, string | null>();

/** The key of a tool-name test (its JSON), or undefined when `e` is not one. */
export function testKey(e: unknown): string | undefined {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return undefined;
  let key = keys.get(e);
  if (key === undefined) {
    key = keyOf(e as Node) ?? null;
    keys.set(e, key);
  }
  return key ?? undefined;
}

function keyOf(n: Node): string | undefined {
  const like = n['like'] as { left: unknown } | undefined;
  if (like !== undefined) return readsToolName(like.left) ? JSON.stringify(n) : undefined;
  const eq = n['=='] as { left: unknown; right: unknown } | undefined;
  if (eq !== undefined && ((readsToolName(eq.left) && isStringValue(eq.right)) || (readsToolName(eq.right) && isStringValue(eq.left)))) {
    return JSON.stringify(n);
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

/**
 * Whether a tool-name test (a node `testKey` accepted) holds for `tool`, given as its characters
 * (`Array.from(name)`). Undefined for a node it cannot read (then nothing is specialised on it).
 */
export function testHolds(test: unknown, tool: readonly string[]): boolean | undefined {
  const n = test as Node;
  const like = n['like'] as { pattern?: unknown } | undefined;
  if (like !== undefined) {
    const tokens = likeTokens(like.pattern);
    return tokens === undefined ? undefined : likeMatches(tokens, tool);
  }
  const eq = n['=='] as { left: unknown; right: unknown } | undefined;
  if (eq !== undefined) {
    const literal = (isStringValue(eq.right) ? eq.right : eq.left) as { Value: string };
    return literal.Value === tool.join('');
  }
  return undefined;
}

/** Cedar's parsed pattern as one character or null (a wildcard) per token; undefined if unknown. */
function likeTokens(pattern: unknown): (string | null)[] | undefined {
  if (!Array.isArray(pattern)) return undefined;
  const out: (string | null)[] = [];
  for (const t of pattern) {
    if (t === 'Wildcard') out.push(null);
    else if (t !== null && typeof t === 'object' && typeof (t as { Literal?: unknown }).Literal === 'string') out.push((t as { Literal: string }).Literal);
    else return undefined;
  }
  return out;
}

/** Whole-string match, wildcards matching any run of characters (greedy, backtracking to the last one). */
function likeMatches(tokens: readonly (string | null)[], chars: readonly string[]): boolean {
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (i < chars.length) {
    if (j < tokens.length && tokens[j] === null) {
      star = j++;
      mark = i;
    } else if (j < tokens.length && tokens[j] === chars[i]) {
      i++;
      j++;
    } else if (star !== -1) {
      j = star + 1;
      i = ++mark;
    } else return false;
  }
  while (j < tokens.length && tokens[j] === null) j++;
  return j === tokens.length;
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
