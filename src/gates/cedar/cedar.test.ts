import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CedarEngine } from './engine.js';
import { CedarLoadError, type CedarDecision } from './types.js';
import { ADMIN, AGENT, call, fixture } from './testkit.js';

const text = (name: string): string => readFileSync(fixture(name), 'utf8');
const load = (name: string, opts: { schema?: string; cacheSize?: number } = {}): Promise<CedarEngine> => {
  const o: { policyFiles: string[]; poolSize: number; maxQueue: number; schemaFile?: string; cacheSize?: number } = { policyFiles: [fixture(name)], poolSize: 0, maxQueue: 16 };
  if (opts.schema !== undefined) o.schemaFile = fixture(opts.schema);
  if (opts.cacheSize !== undefined) o.cacheSize = opts.cacheSize;
  return CedarEngine.create(o);
};

/** decide() with poolSize 0 answers synchronously */
function sync(d: CedarDecision | Promise<CedarDecision>): CedarDecision {
  assert.ok(!(d instanceof Promise), 'expected a synchronous decision');
  return d;
}

describe('README style (seed 004, exactly as written, no schema)', async () => {
  const e = await load('readme-example.cedar');

  it('loads three policies with Cedar ids', () => {
    assert.equal(e.policyCount, 3);
    assert.deepEqual(e.policies.map((p) => [p.id, p.line, p.effect]), [['policy0', 2, 'permit'], ['policy1', 11, 'permit'], ['policy2', 20, 'forbid']]);
    assert.match(e.version, /^[0-9a-f]{12}$/);
  });

  it('forwards tools/list (a method, no tool)', () => {
    const d = e.decideInline(call(undefined, { method: 'tools/list' }));
    assert.equal(d.outcome, 'forward');
    assert.deepEqual(d.policyIds, ['policy0']);
    assert.match(d.reason, /policy0 \(readme-example\.cedar:2\)/);
  });

  it('asks approval for delete_user', () => {
    const d = e.decideInline(call('delete_user'));
    assert.equal(d.outcome, 'approve');
    assert.deepEqual(d.policyIds, ['policy1']);
  });

  it('denies admin_reset by the forbid', () => {
    const d = e.decideInline(call('admin_reset'));
    assert.equal(d.outcome, 'deny');
    assert.deepEqual(d.policyIds, ['policy2']);
    assert.match(d.reason, /^Forbidden by policy: policy2/);
    assert.deepEqual(d.errors, []);
  });

  it('denies get_weather: no permit', () => {
    const d = e.decideInline(call('get_weather'));
    assert.equal(d.outcome, 'deny');
    assert.deepEqual(d.policyIds, []);
    assert.equal(d.reason, 'No policy permits this action (default-deny)');
  });

  it('the forbid wins over the approve permit (admin_delete? no: delete_admin is not admin_*)', () => {
    assert.equal(e.decideInline(call('delete_admin')).outcome, 'approve');
    const both = CedarEngine.fromText(text('readme-example.cedar') + '\npermit(principal, action == Action::"Approve", resource) when { resource.tool_name like "admin_*" };');
    assert.equal(both.decideInline(call('admin_reset')).outcome, 'deny');
  });

  it('sees prompt names and resource URIs (the original could not)', () => {
    assert.equal(e.decideInline(call('delete_everything', { method: 'prompts/get' })).outcome, 'approve');
    assert.equal(e.decideInline(call('admin_notes', { method: 'prompts/get' })).outcome, 'deny');
    const uri = CedarEngine.fromText('permit(principal, action == Action::"Forward", resource) when { resource.uri like "file:///public/*" && resource.method == "resources/read" };');
    assert.equal(uri.decideInline(call('file:///public/a.txt', { method: 'resources/read' })).outcome, 'forward');
    assert.equal(uri.decideInline(call('file:///etc/passwd', { method: 'resources/read' })).outcome, 'deny');
    assert.equal(uri.decideInline(call('file:///public/a.txt', { method: 'prompts/get' })).outcome, 'deny');
  });
});

describe("the original's code model", async () => {
  const e = await load('code-model.cedar');

  it('uses @id annotations as policy ids', () => {
    assert.deepEqual(e.policies.map((p) => p.id), ['admins-deploy', 'no-deletes-on-prod', 'anyone-deletes-elsewhere', 'reads-need-rule']);
  });

  it('a permit on ThoughtGate::Action::"tools/call" means approval; roles are parents', () => {
    const d = e.decideInline(call('deploy_api', { principal: ADMIN }));
    assert.equal(d.outcome, 'approve');
    assert.deepEqual(d.policyIds, ['admins-deploy']);
    assert.match(d.reason, /action tools\/call/);
    assert.equal(e.decideInline(call('deploy_api', { principal: AGENT })).outcome, 'deny');
  });

  it('forbid by server (= source id) beats the permit', () => {
    assert.equal(e.decideInline(call('delete_row', { sourceId: 'staging' })).outcome, 'approve');
    const d = e.decideInline(call('delete_row', { sourceId: 'prod' }));
    assert.equal(d.outcome, 'deny');
    assert.deepEqual(d.policyIds, ['no-deletes-on-prod']);
  });

  it('mcp/method for resources/read, with context.policy_id and principal attributes', () => {
    const read = (over: Parameters<typeof call>[1]) => e.decideInline(call('file:///x', { method: 'resources/read', ...over }));
    assert.equal(read({ policyId: 'reads' }).outcome, 'approve');
    assert.equal(read({ policyId: 'default' }).outcome, 'deny');
    assert.equal(read({ policyId: 'reads', principal: ADMIN }).outcome, 'deny'); // namespace ops
    // tools/call-scoped policies never answer for other methods
    assert.equal(e.decideInline(call('delete_x', { method: 'prompts/get' })).outcome, 'deny');
  });

  it('validates against the original schema (code model is well-typed)', async () => {
    const v = await load('code-model.cedar', { schema: 'original.cedarschema' });
    assert.equal(v.decideInline(call('deploy_api', { principal: ADMIN })).outcome, 'approve');
  });
});

describe('arguments without a schema', async () => {
  const e = await load('arguments.cedar');

  it('reads resource.arguments.amount', () => {
    assert.equal(e.decideInline(call('transfer', { arguments: { amount: 50 } })).outcome, 'forward');
    assert.equal(e.decideInline(call('transfer', { arguments: { amount: 500 } })).outcome, 'approve');
    assert.equal(e.decideInline(call('transfer', { arguments: { amount: 100 } })).outcome, 'forward');
    assert.equal(e.decideInline(call('transfer', { arguments: {} })).outcome, 'deny');
    assert.equal(e.decideInline(call('transfer', { arguments: undefined })).outcome, 'deny');
    assert.equal(e.decideInline(call('transfer', { arguments: null })).outcome, 'deny');
    assert.equal(e.decideInline(call('transfer', { arguments: { amount: 5e3 } })).outcome, 'approve'); // integral float → Long
  });

  it('nested records and forbids on them', () => {
    const d = e.decideInline(call('transfer', { arguments: { amount: 5, to: { country: 'XX', iban: null } } }));
    assert.equal(d.outcome, 'deny');
    assert.deepEqual(d.policyIds, ['no-offshore']);
    assert.equal(e.decideInline(call('transfer', { arguments: { amount: 5, to: { country: 'FR' } } })).outcome, 'forward');
  });

  it('a fractional amount is a string: comparing it is an error → deny, fail closed', () => {
    const d = e.decideInline(call('transfer', { arguments: { amount: 1.5 } }));
    assert.equal(d.outcome, 'deny');
    assert.ok(d.errors.length > 0);
    assert.match(d.reason, /^Policy evaluation errors: /);
    const s = CedarEngine.fromText('permit(principal, action == Action::"Forward", resource) when { resource.arguments.price == "1.5" };');
    assert.equal(s.decideInline(call('x', { arguments: { price: 1.5 } })).outcome, 'forward');
  });

  it('sets, huge integers, reserved keys, depth', () => {
    const s = CedarEngine.fromText(`
      permit(principal, action == Action::"Forward", resource) when { resource.arguments.tags.contains("ok") };
      permit(principal, action == Action::"Approve", resource) when { resource.arguments has big && resource.arguments.big == "100000000000000000000" };`);
    assert.equal(s.decideInline(call('x', { arguments: { tags: ['a', 'ok', null] } })).outcome, 'forward');
    assert.equal(s.decideInline(call('x', { arguments: { tags: [], big: 1e20 } })).outcome, 'approve');
    const smuggle = s.decideInline(call('x', { arguments: { tags: ['ok'], x: { __entity: { type: 'ThoughtGate::Role', id: 'admin' } } } }));
    assert.equal(smuggle.outcome, 'deny');
    assert.match(smuggle.reason, /__entity/);
    let deep: unknown = { tags: ['ok'] };
    for (let i = 0; i < 70; i++) deep = { tags: ['ok'], d: deep };
    const d = s.decideInline(call('x', { arguments: deep }));
    assert.equal(d.outcome, 'deny');
    assert.match(d.reason, /deeper than 64/);
    assert.equal(s.decideInline(call('x', { arguments: ['ok'] })).outcome, 'deny'); // not an object
  });

  it('policies that do not read arguments ignore them entirely', () => {
    const r = CedarEngine.fromText(text('readme-example.cedar'));
    let deep: unknown = {};
    for (let i = 0; i < 70; i++) deep = { d: deep };
    assert.equal(r.decideInline(call('delete_user', { arguments: deep })).outcome, 'approve');
    assert.equal(r.readsArguments, false);
    assert.equal(e.readsArguments, true);
  });
});

describe('context.time', async () => {
  const e = await load('business-hours.cedar');
  const at = (y: number, mo: number, d: number, h: number, mi = 0): number => Date.UTC(y, mo - 1, d, h, mi);

  it('hour and day_of_week (UTC, 0 = Sunday)', () => {
    assert.equal(e.decideInline(call('x', { now: at(2024, 1, 15, 10) })).outcome, 'forward'); // Monday
    assert.equal(e.decideInline(call('x', { now: at(2024, 1, 15, 8, 59) })).outcome, 'approve');
    assert.equal(e.decideInline(call('x', { now: at(2024, 1, 15, 17) })).outcome, 'approve');
    assert.equal(e.decideInline(call('x', { now: at(2024, 1, 19, 16, 59) })).outcome, 'forward'); // Friday
    assert.equal(e.decideInline(call('x', { now: at(2024, 1, 20, 10) })).outcome, 'approve'); // Saturday
    assert.equal(e.decideInline(call('x', { now: at(2024, 1, 14, 10) })).outcome, 'approve'); // Sunday
  });

  it('the cache keys on hour and day only', () => {
    const c = CedarEngine.fromText(text('business-hours.cedar'));
    assert.equal(c.decideInline(call('x', { now: at(2024, 1, 15, 10, 1) })).cached, false);
    assert.equal(c.decideInline(call('x', { now: at(2024, 1, 15, 10, 59) })).cached, true);
    assert.equal(c.decideInline(call('x', { now: at(2024, 1, 22, 10, 5) })).cached, true); // next Monday, same hour
    const late = c.decideInline(call('x', { now: at(2024, 1, 15, 17, 1) }));
    assert.equal(late.cached, false);
    assert.equal(late.outcome, 'approve');
  });

  it('context.time.timestamp makes decisions uncacheable', async () => {
    const t = await load('timestamp.cedar');
    assert.equal(t.cacheable, false);
    const a = t.decideInline(call('x', { now: 1_700_000_000_000 }));
    const b = t.decideInline(call('x', { now: 1_700_000_000_000 }));
    assert.equal(a.outcome, 'forward');
    assert.equal(b.cached, false);
    assert.equal(t.decideInline(call('x', { now: 1_900_000_000_000 })).outcome, 'deny');
  });
});

describe('evaluation errors fail closed', () => {
  it('an error in any of the three questions denies, even when Forward is permitted', async () => {
    const e = await load('eval-error.cedar');
    const d = e.decideInline(call('anything', { arguments: { amount: 1 } }));
    assert.equal(d.outcome, 'deny');
    assert.deepEqual(d.policyIds, ['careless']);
    assert.equal(d.errors.length, 1);
    assert.match(d.errors[0]!, /careless \(eval-error\.cedar:5\): .*missing/);
    assert.match(d.reason, /^Policy evaluation errors: careless .*missing/);
    // with the attribute present, no error: forward
    assert.equal(e.decideInline(call('anything', { arguments: { missing: 2 } })).outcome, 'forward');
  });

  it('an error in a policy that applies to another method does not count', () => {
    const e = CedarEngine.fromText(`
      permit(principal, action == Action::"Forward", resource);
      forbid(principal, action == ThoughtGate::Action::"mcp/method", resource) when { resource.arguments.nope == 1 };`);
    assert.equal(e.decideInline(call('x')).outcome, 'forward');
    assert.equal(e.decideInline(call('x', { method: 'prompts/get' })).outcome, 'deny');
  });
});

describe('loading', () => {
  it('a malformed policy file → CedarLoadError naming file:line:column', async () => {
    await assert.rejects(load('malformed.cedar'), (err: unknown) => {
      assert.ok(err instanceof CedarLoadError);
      assert.match(err.message, /malformed\.cedar:5:\d+: .*unexpected token/);
      return true;
    });
  });

  it('a user schema that rejects a policy → CedarLoadError with its location', async () => {
    await assert.rejects(load('schema-rejected.cedar', { schema: 'original.cedarschema' }), (err: unknown) => {
      assert.ok(err instanceof CedarLoadError);
      assert.equal(err.problems.length, 1);
      assert.match(err.message, /schema-rejected\.cedar:7:\d+: for policy `reads-amount`.*arguments/);
      return true;
    });
    // the README example does not validate against the original's schema (the original's bug) …
    await assert.rejects(load('readme-example.cedar', { schema: 'original.cedarschema' }), CedarLoadError);
    // … but loads, and works, without a schema
    await load('readme-example.cedar');
  });

  it('a schema that validates loads; a broken schema names its line', async () => {
    const ok = await load('schema-ok.cedar', { schema: 'original.cedarschema' });
    assert.equal(ok.decideInline(call('deploy_x', { principal: ADMIN })).outcome, 'approve');
    assert.throws(() => CedarEngine.fromText('permit(principal, action, resource);', { schema: { file: 'bad.cedarschema', text: 'namespace X {\n  entity A { x: String };\n  oops\n}' } }),
      (err: unknown) => err instanceof CedarLoadError && /bad\.cedarschema:3:3: /.test(err.message));
    assert.throws(() => CedarEngine.fromText('permit(principal, action, resource);', { schema: { file: 's.json', text: '{"X": ' } }), CedarLoadError);
  });

  it('unreadable file, duplicate @id, templates', async () => {
    await assert.rejects(CedarEngine.create({ policyFiles: ['/nonexistent/p.cedar'], poolSize: 0, maxQueue: 1 }), /\/nonexistent\/p\.cedar: cannot read: ENOENT/);
    assert.throws(() => CedarEngine.fromText([
      { file: 'a.cedar', text: '@id("x") permit(principal, action, resource);' },
      { file: 'b.cedar', text: '\n@id("x") forbid(principal, action, resource);' },
    ]), /b\.cedar:2:1: duplicate policy id 'x' \(also a\.cedar:1:1\)/);
    assert.throws(() => CedarEngine.fromText('permit(principal == ?principal, action, resource);'), /templates/);
  });

  it('policyN numbering runs across files (the original concatenated them)', () => {
    const e = CedarEngine.fromText([
      { file: 'a.cedar', text: 'permit(principal, action == Action::"Approve", resource);\n' },
      { file: 'b.cedar', text: '// b\n\nforbid(principal, action, resource) when { resource.tool_name == "x" };\n' },
    ]);
    assert.deepEqual(e.policies.map((p) => `${p.id}@${p.file}:${p.line}`), ['policy0@a.cedar:1', 'policy1@b.cedar:3']);
    assert.match(e.decideInline(call('x')).reason, /policy1 \(b\.cedar:3\)/);
  });

  it('ids are stable past 10 policies (Cedar sorts them as strings)', () => {
    let t = '';
    for (let i = 0; i < 12; i++) t += `permit(principal, action == Action::"Approve", resource) when { resource.tool_name == "t${i}" };\n`;
    const e = CedarEngine.fromText(t);
    for (let i = 0; i < 12; i++) {
      const d = e.decideInline(call(`t${i}`));
      assert.deepEqual(d.policyIds, [`policy${i}`]);
      assert.equal(e.policies[i]!.line, i + 1);
    }
  });

  it('an empty policy set denies everything; version changes with the text', () => {
    const e = CedarEngine.fromText('// nothing\n');
    assert.equal(e.policyCount, 0);
    assert.equal(e.decideInline(call('x')).reason, 'No policy permits this action (default-deny)');
    assert.notEqual(CedarEngine.fromText('permit(principal, action, resource);').version, e.version);
  });
});

describe('actions', () => {
  it('namespace-insensitive action scopes; `action` in conditions sees each action', () => {
    const e = CedarEngine.fromText(`
      permit(principal, action == ThoughtGate::Action::"Forward", resource) when { resource.tool_name == "a" };
      permit(principal, action, resource) when { action == Action::"Approve" && resource.tool_name == "b" };
      permit(principal, action in [Action::"Forward", Action::"Approve"], resource) when { resource.tool_name == "c" && action != Action::"Forward" };`);
    assert.equal(e.decideInline(call('a')).outcome, 'forward');
    assert.equal(e.decideInline(call('b')).outcome, 'approve');
    assert.equal(e.decideInline(call('c')).outcome, 'approve');
  });

  it('a forbid on Forward only still lets Approve through', () => {
    const e = CedarEngine.fromText(`
      permit(principal, action == Action::"Forward", resource);
      permit(principal, action == Action::"Approve", resource);
      forbid(principal, action == Action::"Forward", resource) when { resource.tool_name like "pay_*" };`);
    assert.equal(e.decideInline(call('read')).outcome, 'forward');
    assert.equal(e.decideInline(call('pay_bill')).outcome, 'approve');
  });

  it('schema action groups count in `action in` scopes; unknown actions never apply', () => {
    const schema = `namespace ThoughtGate {
      entity App; entity ToolCall = { name: String };
      action governed;
      action "tools/call" in [governed] appliesTo { principal: [App], resource: [ToolCall] };
    }`;
    const e = CedarEngine.fromText('permit(principal, action in ThoughtGate::Action::"governed", resource) when { resource.name == "x" };', { schema });
    assert.equal(e.decideInline(call('x')).outcome, 'approve');
    const u = CedarEngine.fromText('permit(principal, action == Action::"Deny", resource);');
    assert.equal(u.warnings.length, 1);
    assert.equal(u.decideInline(call('x')).outcome, 'deny');
  });
});

describe('decision cache', () => {
  it('a repeat is cached (synchronously) and returns the same decision', () => {
    const e = CedarEngine.fromText(text('readme-example.cedar'));
    const a = sync(e.decide(call('delete_user')));
    const b = sync(e.decide(call('delete_user')));
    assert.equal(a.cached, false);
    assert.equal(b.cached, true);
    assert.deepEqual({ ...b, cached: false, micros: 0 }, { ...a, micros: 0 });
    assert.equal(e.cacheSize, 1);
    // decideInline shares the cache
    assert.equal(e.decideInline(call('delete_user')).cached, true);
  });

  it('a different argument value is a miss when policies read arguments', async () => {
    const e = await load('arguments.cedar');
    assert.equal(e.decideInline(call('transfer', { arguments: { amount: 50 } })).cached, false);
    assert.equal(e.decideInline(call('transfer', { arguments: { amount: 50 } })).cached, true);
    const big = e.decideInline(call('transfer', { arguments: { amount: 500 } }));
    assert.equal(big.cached, false);
    assert.equal(big.outcome, 'approve');
    // key order does not matter (canonical JSON)
    assert.equal(e.decideInline(call('transfer', { arguments: { b: 1, amount: 7, a: [1, { y: 1, x: 2 }] } })).cached, false);
    assert.equal(e.decideInline(call('transfer', { arguments: { a: [1, { x: 2, y: 1 }], amount: 7, b: 1 } })).cached, true);
  });

  it('policies that do not read arguments cache across arguments', () => {
    const e = CedarEngine.fromText(text('readme-example.cedar'));
    e.decideInline(call('delete_user', { arguments: { id: 1 } }));
    const d = e.decideInline(call('delete_user', { arguments: { id: 2, other: 'x' } }));
    assert.equal(d.cached, true);
    assert.equal(d.outcome, 'approve');
  });

  it('a new engine (reload) starts empty: no stale decision', () => {
    const input = call('delete_user');
    const a = CedarEngine.fromText('permit(principal, action == Action::"Forward", resource);');
    assert.equal(a.decideInline(input).outcome, 'forward');
    assert.equal(a.decideInline(input).cached, true);
    const b = CedarEngine.fromText('forbid(principal, action, resource) when { resource.tool_name like "delete_*" };\npermit(principal, action == Action::"Forward", resource);');
    assert.equal(b.cacheSize, 0);
    const d = b.decideInline(input);
    assert.equal(d.cached, false);
    assert.equal(d.outcome, 'deny');
    assert.equal(a.decideInline(input).outcome, 'forward'); // A is its own snapshot
  });

  it('is bounded (approximately LRU) and can be disabled', () => {
    const e = CedarEngine.fromText(text('readme-example.cedar'), { cacheSize: 3 });
    for (const t of ['a', 'b', 'c', 'd']) e.decideInline(call(t));
    assert.ok(e.cacheSize <= 3, `holds ${e.cacheSize} entries`);
    assert.equal(e.decideInline(call('a')).cached, false); // evicted
    assert.equal(e.decideInline(call('d')).cached, true);
    const off = CedarEngine.fromText(text('readme-example.cedar'), { cacheSize: 0 });
    off.decideInline(call('a'));
    assert.equal(off.decideInline(call('a')).cached, false);
  });

  it('close() drops the cache; decide keeps answering inline', async () => {
    const e = CedarEngine.fromText(text('readme-example.cedar'));
    e.decideInline(call('a'));
    await e.close();
    assert.equal(e.cacheSize, 0);
    assert.equal(sync(e.decide(call('delete_user'))).outcome, 'approve');
  });
});

describe('cache key covers every input a policy can read', () => {
  it('tool, method, source, policy id and principal', async () => {
    const e = await load('code-model.cedar');
    const base = call('file:///x', { method: 'resources/read', policyId: 'reads' });
    assert.equal(e.decideInline(base).outcome, 'approve');
    assert.equal(e.decideInline({ ...base, policyId: 'other' }).outcome, 'deny');
    assert.equal(e.decideInline({ ...base, principal: ADMIN }).outcome, 'deny');
    assert.equal(e.decideInline({ ...base, principal: { ...AGENT, namespace: 'elsewhere' } }).outcome, 'deny');
    assert.equal(e.decideInline({ ...base, method: 'prompts/get' }).outcome, 'deny');
    assert.equal(e.decideInline(call('delete_a', { sourceId: 'dev' })).outcome, 'approve');
    assert.equal(e.decideInline(call('delete_a', { sourceId: 'prod' })).outcome, 'deny');
    assert.equal(e.decideInline(call('deploy_a', { principal: ADMIN })).outcome, 'approve');
    assert.equal(e.decideInline(call('deploy_a', { principal: { ...ADMIN, roles: [] } })).outcome, 'deny');
    assert.equal(e.decideInline(call('deploy_b', { principal: AGENT })).outcome, 'deny');
  });
});
