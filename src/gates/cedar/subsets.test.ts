// Per-tool sets (evaluate.ts ToolSubsets, tool-name.ts): a tools/call is evaluated against its
// tool's own set, tool-name tests replaced by their values and copies they leave certainly false
// left out. That must never change an answer: checked against evaluation on the whole tool set,
// on generated policy files.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compile, resourceReads } from './compile.js';
import { evaluate, prepare, type WireInput } from './evaluate.js';
import { falsified, specialise, testHolds, testKey } from './tool-name.js';
import { cedar } from './wasm.js';
import { AGENT, ADMIN, MONDAY_10_UTC } from './testkit.js';

const planOf = (text: string) => compile([{ file: 'p.cedar', text }]);
/** the conditions of a one-policy file, as Cedar parses them */
const conditionsOf = (text: string) => {
  const j = cedar.policyToJson(text);
  assert.equal(j.type, 'success', text);
  return (j as { json: { conditions: Parameters<typeof falsified>[0] } }).json.conditions;
};
const allFalse = (): boolean => false;

const input = (tool: string, args: unknown = {}, over: Partial<WireInput> = {}): WireInput => ({
  method: 'tools/call', resource: tool, arguments: args, sourceId: 'upstream', policyId: 'default', principal: AGENT, now: MONDAY_10_UTC, ...over,
});

describe('tool-name tests', () => {
  it('decide a copy false on like / == tests of resource.name or resource.tool_name that Cedar evaluates first', () => {
    const guarded = [
      'permit(principal, action, resource) when { resource.tool_name like "get_*" };',
      'permit(principal, action, resource) when { resource.name == "transfer" };',
      'permit(principal, action, resource) when { "transfer" == resource.tool_name };',
      'permit(principal, action, resource) when { resource.tool_name like "a*" && resource.arguments.amount > 5 };',
      'permit(principal, action, resource) when { resource.tool_name like "a*" || resource.name == "b" };',
      'permit(principal, action, resource) when { (resource.tool_name == "a" && context.source_id == "x") || resource.tool_name like "b*" };',
      'permit(principal, action, resource) when { resource.tool_name like "a*" } unless { context.source_id == "prod" };',
    ];
    for (const t of guarded) assert.equal(falsified(conditionsOf(t), allFalse), true, t);
  });

  it('decide nothing where leaving the policy out could change an answer', () => {
    const unguarded = [
      // the argument test runs first: it can raise an error for any tool
      'permit(principal, action, resource) when { resource.arguments.amount > 5 && resource.tool_name like "a*" };',
      'permit(principal, action, resource) when { resource.tool_name like "a*" || context.source_id == "x" };',
      'permit(principal, action, resource) unless { resource.tool_name like "a*" };',
      'permit(principal, action, resource) when { !(resource.tool_name like "a*") };',
      'permit(principal, action, resource) when { principal.name == "a" };',
      'permit(principal, action, resource) when { resource.tool_name == context.source_id };',
      'permit(principal, action, resource) when { resource.server like "a*" };',
      'permit(principal, action, resource);',
    ];
    for (const t of unguarded) assert.equal(falsified(conditionsOf(t), allFalse), false, t);
  });

  it('are replaced by their value, so a request carries only what the rest reads', () => {
    const c = conditionsOf('permit(principal, action, resource) when { resource.tool_name like "a*" && resource.arguments.amount > 5 };');
    assert.deepEqual(resourceReads(c).sort(), ['arguments', 'tool_name']);
    const s = specialise(c, () => true);
    assert.deepEqual(resourceReads(s), ['arguments']);
    assert.equal(falsified(s, () => undefined), false);
    const unknown = specialise(c, () => undefined);
    assert.deepEqual(unknown, c);
  });

  it('leave a tool that no policy can apply to at a default deny, without asking Cedar', () => {
    const p = prepare(planOf('permit(principal, action == Action::"Forward", resource) when { resource.tool_name like "get_*" };'));
    assert.equal(evaluate(p, input('delete_all')).reason, 'No policy permits this action (default-deny)');
    assert.equal(evaluate(p, input('get_weather')).outcome, 'forward');
  });

  it('keep errors from the policies that do apply (and only those)', () => {
    const text = [
      '@id("needs-amount") permit(principal, action == Action::"Forward", resource) when { resource.tool_name == "pay" && resource.arguments.amount < 10 };',
      '@id("reads") permit(principal, action == Action::"Forward", resource) when { resource.tool_name like "get_*" };',
    ].join('\n');
    const p = prepare(planOf(text));
    const pay = evaluate(p, input('pay', { note: 'no amount' }));
    assert.equal(pay.outcome, 'deny');
    assert.deepEqual(pay.policyIds, ['needs-amount']);
    assert.equal(pay.errors.length, 1);
    assert.deepEqual(evaluate(p, input('get_x', { note: 'no amount' })).errors, []);
  });

  it('two engines of one plan in one thread keep their own subsets', () => {
    const plan = planOf('permit(principal, action == Action::"Forward", resource) when { resource.tool_name like "a*" };\npermit(principal, action == Action::"Approve", resource) when { resource.tool_name like "b*" };');
    const one = prepare(plan);
    const two = prepare(plan);
    assert.equal(evaluate(one, input('a1')).outcome, 'forward');
    assert.equal(evaluate(two, input('b1')).outcome, 'approve');
    assert.equal(evaluate(one, input('a1')).outcome, 'forward');
    assert.equal(evaluate(one, input('b1')).outcome, 'approve');
  });
});

describe('a tool-name test\'s value is Cedar\'s (fast-check)', () => {
  // Cedar itself, asked whether `resource.tool_name like <pattern>` holds for a name.
  const cedarLike = (pattern: string, name: string): boolean => {
    const id = `like-check:${pattern}`;
    const r = cedar.preparsePolicySet(id, { staticPolicies: { p: `permit(principal, action, resource) when { resource.tool_name like "${pattern}" };` } });
    assert.equal(r.type, 'success', pattern);
    const resource = { type: 'T', id: 'r' };
    const a = cedar.statefulIsAuthorized({ principal: { type: 'P', id: 'p' }, action: { type: 'A', id: 'a' }, resource, context: {}, preparsedPolicySetId: id, entities: [{ uid: resource, attrs: { tool_name: name }, parents: [] }] as never });
    assert.equal(a.type, 'success');
    return (a as { response: { decision: string } }).response.decision === 'allow';
  };
  const likeNode = (pattern: string): unknown => {
    const c = conditionsOf(`permit(principal, action, resource) when { resource.tool_name like "${pattern}" };`);
    return c[0]!.body;
  };

  it('like: wildcards, escaped stars, multi-byte and astral characters', () => {
    const chars = fc.constantFrom('a', 'b', '*', 'é', '😀', '_', '\\*');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 6 }), fc.array(fc.constantFrom('a', 'b', '*', 'é', '😀', '_'), { maxLength: 6 }), (p, n) => {
        const pattern = p.join('');
        const name = n.join('');
        const node = likeNode(pattern);
        assert.notEqual(testKey(node), undefined);
        assert.equal(testHolds(node, Array.from(name)), cedarLike(pattern, name), `${JSON.stringify(pattern)} vs ${JSON.stringify(name)}`);
      }),
      { numRuns: 400 },
    );
  });

  it('==, either side', () => {
    for (const [text, name, want] of [['resource.name == "é😀"', 'é😀', true], ['"x" == resource.tool_name', 'x', true], ['resource.tool_name == "x"', 'xx', false], ['resource.tool_name == ""', '', true]] as const) {
      const node = conditionsOf(`permit(principal, action, resource) when { ${text} };`)[0]!.body;
      assert.equal(testHolds(node, Array.from(name)), want, text);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// generated policy files: subsets == whole set

const patternArb = fc.array(fc.constantFrom('get_', 'a', 'b', '*', '\\*', '_', 'é', 'x', '😀'), { minLength: 1, maxLength: 4 }).map((p) => p.join(''));
const literalArb = fc.constantFrom('a', 'ab', 'get_x', '*', 'transfer', 'é', '');
const attrArb = fc.constantFrom('resource.tool_name', 'resource.name');
const guardArb: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(attrArb, patternArb).map(([a, p]) => `${a} like "${p}"`),
  fc.tuple(attrArb, literalArb).map(([a, l]) => `${a} == "${l}"`),
  fc.tuple(attrArb, literalArb).map(([a, l]) => `"${l}" == ${a}`),
);
const restArb = fc.constantFrom(
  'resource.arguments.amount > 5', // an error when amount is missing
  'resource has arguments && resource.arguments has amount && resource.arguments.amount < 0',
  'context.source_id == "prod"',
  'principal.name == "ops-bot"',
  'resource.server == "upstream"',
  'true',
);
const conditionArb: fc.Arbitrary<string> = fc.oneof(
  guardArb,
  fc.tuple(guardArb, restArb).map(([g, r]) => `${g} && ${r}`),
  fc.tuple(restArb, guardArb).map(([r, g]) => `${r} && ${g}`),
  fc.tuple(guardArb, guardArb).map(([a, b]) => `${a} || ${b}`),
  fc.tuple(guardArb, restArb, guardArb).map(([a, r, b]) => `(${a} && ${r}) || ${b}`),
  fc.tuple(guardArb, restArb).map(([g, r]) => `${g} || ${r}`),
  restArb,
);
const scopeArb = fc.constantFrom('action', 'action == Action::"Forward"', 'action == Action::"Approve"', 'action == ThoughtGate::Action::"tools/call"', 'action in [Action::"Forward", Action::"Approve"]');
const policyArb = fc.tuple(fc.constantFrom('permit', 'forbid'), scopeArb, fc.array(fc.tuple(fc.constantFrom('when', 'unless'), conditionArb), { minLength: 0, maxLength: 2 }))
  .map(([effect, scope, clauses]) => `${effect}(principal, ${scope}, resource)${clauses.map(([k, c]) => ` ${k} { ${c} }`).join('')};`);
const toolArb = fc.oneof(fc.constantFrom('get_x', 'get_', 'a', 'ab', '*', 'a*', 'é', 'éx', '', 'transfer', 'b_x', 'a😀', '😀'), fc.string({ maxLength: 4 }));
const argsArb = fc.constantFrom(undefined, {}, { amount: 7 }, { amount: -1 }, { amount: 'x' });

describe('subsets never change a decision (fast-check)', () => {
  it('evaluate with per-tool subsets == evaluate on the whole tool set', () => {
    fc.assert(
      fc.property(fc.array(policyArb, { minLength: 1, maxLength: 8 }), fc.array(fc.tuple(toolArb, argsArb, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 12 }), (policies, calls) => {
        const plan = planOf(policies.join('\n'));
        const subsets = prepare(plan);
        const whole = prepare(plan, { toolSubsets: false });
        for (const [tool, args, admin, prod] of calls) {
          const x = input(tool, args, { principal: admin ? ADMIN : AGENT, sourceId: prod ? 'prod' : 'upstream' });
          assert.deepEqual(evaluate(subsets, x), evaluate(whole, x), `${policies.join('\n')}\n-- tool ${JSON.stringify(tool)} args ${JSON.stringify(args)}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});
