import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { GovError } from '../../core/errors.js';
import { CedarEngine } from './engine.js';
import type { CedarDecision, CedarInput, Principal } from './types.js';
import { ADMIN, AGENT, call, fixture } from './testkit.js';

const text = (name: string): string => readFileSync(fixture(name), 'utf8');
const ALL = [
  ...['readme-example.cedar', 'code-model.cedar', 'arguments.cedar', 'business-hours.cedar'].map((f) => ({ file: f, text: text(f) })),
  // an evaluation error on one tool only (no `has` guard)
  { file: 'careless.cedar', text: 'forbid(principal, action == Action::"Approve", resource) when { resource.tool_name == "careless" && resource.arguments.missing == 1 };' },
];

const engines: CedarEngine[] = [];
const track = (e: CedarEngine): CedarEngine => (engines.push(e), e);
after(async () => {
  await Promise.all(engines.map((e) => e.close()));
});

const strip = (d: CedarDecision) => ({ outcome: d.outcome, policyIds: [...d.policyIds], reason: d.reason, errors: [...d.errors] });

describe('piscina pool', () => {
  it('a worker spins for the next task before it parks (spin-wait.ts is on piscina\'s wait path)', async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const text1 = 'permit(principal, action == Action::"Forward", resource) when { resource.tool_name like "get_*" };';
    // A window far longer than the gap between back-to-back calls: the waits end spinning.
    const spinning = track(CedarEngine.fromText(text1, { poolSize: 1, cacheSize: 0, spinMicros: 500_000 }));
    await spinning.warm();
    for (let i = 0; i < 20; i++) assert.equal((await spinning.decide(call(`get_${i}`))).outcome, 'forward');
    const a = (await spinning.spinStats())!;
    assert.ok(a.spun >= 15, JSON.stringify(a));
    // A window far shorter than the gaps: every wait parks, and decisions are the same.
    const parking = track(CedarEngine.fromText(text1, { poolSize: 1, cacheSize: 0, spinMicros: 10 }));
    await parking.warm();
    for (let i = 0; i < 5; i++) {
      await sleep(5);
      assert.equal((await parking.decide(call(`get_${i}`))).outcome, 'forward');
    }
    const b = (await parking.spinStats())!;
    assert.ok(b.parked >= 5, JSON.stringify(b));
    // 0 leaves piscina's own wait alone.
    const off = track(CedarEngine.fromText(text1, { poolSize: 1, cacheSize: 0, spinMicros: 0 }));
    assert.equal((await off.decide(call('get_x'))).outcome, 'forward');
    assert.deepEqual(await off.spinStats(), { spun: 0, parked: 0 });
  });

  it('create() with a pool: decisions come back as promises from workers, hits stay synchronous', async () => {
    const e = track(await CedarEngine.create({ policyFiles: [fixture('readme-example.cedar')], poolSize: 2, maxQueue: 64 }));
    const p = e.decide(call('delete_user'));
    assert.ok(p instanceof Promise);
    const d = await p;
    assert.equal(d.outcome, 'approve');
    assert.equal(d.cached, false);
    const hit = e.decide(call('delete_user'));
    assert.ok(!(hit instanceof Promise));
    assert.equal(hit.cached, true);
    assert.equal(hit.outcome, 'approve');
  });

  it('200 concurrent decides all answer', async () => {
    const e = track(CedarEngine.fromText(ALL, { poolSize: 2, maxQueue: 1000, cacheSize: 0 }));
    const inputs = Array.from({ length: 200 }, (_, i) => call(['delete_', 'admin_', 'get_', 'transfer'][i % 4]! + (i % 4 === 3 ? '' : String(i)), { arguments: { amount: i }, now: Date.UTC(2024, 0, 14, 10) }));
    const ds = await Promise.all(inputs.map((x) => e.decide(x)));
    assert.equal(ds.length, 200);
    ds.forEach((d, i) => assert.deepEqual(strip(d), strip(e.decideInline(inputs[i]!))));
    assert.ok(ds.some((d) => d.outcome === 'forward') && ds.some((d) => d.outcome === 'approve') && ds.some((d) => d.outcome === 'deny'));
  });

  it('identical concurrent misses share one evaluation', async () => {
    const e = track(CedarEngine.fromText(text('readme-example.cedar'), { poolSize: 1, maxQueue: 1 }));
    const ds = await Promise.all(Array.from({ length: 20 }, () => e.decide(call('delete_user'))));
    assert.equal(ds.filter((d) => !d.cached).length, 1);
    assert.ok(ds.every((d) => d.outcome === 'approve'));
  });

  it('maxQueue 1 with a busy pool → GovError rate_limited (a rejected promise, never a throw)', async () => {
    const e = track(CedarEngine.fromText(text('readme-example.cedar'), { poolSize: 1, maxQueue: 1, cacheSize: 0 }));
    await e.warm();
    const ps = Array.from({ length: 10 }, (_, i) => {
      let r: unknown;
      assert.doesNotThrow(() => (r = e.decide(call(`tool_${i}`))));
      return r as Promise<CedarDecision>;
    });
    const settled = await Promise.allSettled(ps);
    const ok = settled.filter((s) => s.status === 'fulfilled');
    const limited = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    assert.ok(ok.length >= 1 && ok.length <= 2, `answered ${ok.length}`);
    assert.equal(limited.length, 10 - ok.length);
    for (const r of limited) {
      assert.ok(r.reason instanceof GovError);
      assert.equal(r.reason.kind, 'rate_limited');
      assert.equal(r.reason.code, -32009);
    }
    // the pool recovers
    assert.equal((await e.decide(call('delete_user'))).outcome, 'approve');
  });

  it('close() during traffic: in-flight decisions still answer', async () => {
    const e = CedarEngine.fromText(text('readme-example.cedar'), { poolSize: 1, maxQueue: 100, cacheSize: 0 });
    const ps = Array.from({ length: 20 }, (_, i) => e.decide(call(`delete_${i}`)));
    await e.close();
    const ds = await Promise.all(ps);
    assert.ok(ds.every((d) => d.outcome === 'approve'), JSON.stringify(ds.map((d) => d.reason)));
  });
});

// ---------------------------------------------------------------------------------------------

const principalArb: fc.Arbitrary<Principal> = fc.record({
  id: fc.constantFrom('my-agent', 'ops-bot', 'x'),
  namespace: fc.constantFrom('agents', 'ops'),
  serviceAccount: fc.constantFrom('sa', 'default'),
  roles: fc.subarray(['admin', 'dev']),
  labels: fc.constant({}),
});

const argValue = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 4 }),
  fc.boolean(),
  fc.constant(null),
);

const inputArb: fc.Arbitrary<CedarInput> = fc.record({
  method: fc.constantFrom('tools/call', 'tools/call', 'resources/read', 'prompts/get', 'tools/list'),
  resource: fc.option(fc.oneof(
    fc.constantFrom('delete_user', 'admin_reset', 'deploy_api', 'transfer', 'get_weather', 'careless', 'file:///x'),
    fc.string({ maxLength: 8 }),
  ), { nil: undefined }),
  arguments: fc.oneof(
    fc.record({ amount: argValue, to: fc.option(fc.record({ country: fc.constantFrom('XX', 'FR') }), { nil: undefined }) }, { requiredKeys: [] }),
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }),
  ),
  sourceId: fc.constantFrom('upstream', 'prod'),
  policyId: fc.constantFrom('default', 'reads'),
  principal: principalArb,
  now: fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2024, 11, 31) }),
});

describe('pool and inline agree (fast-check)', () => {
  it('decide() through workers == decideInline() on generated inputs', async () => {
    const pool = track(CedarEngine.fromText(ALL, { poolSize: 2, maxQueue: 10_000, cacheSize: 0 }));
    const inline = CedarEngine.fromText(ALL, { cacheSize: 0 });
    await pool.warm();
    await fc.assert(
      fc.asyncProperty(fc.array(inputArb, { minLength: 1, maxLength: 8 }), async (inputs) => {
        const viaPool = await Promise.all(inputs.map((x) => pool.decide(x)));
        inputs.forEach((x, i) => assert.deepEqual(strip(viaPool[i]!), strip(inline.decideInline(x))));
      }),
      { numRuns: 150 },
    );
  });

  it('the cache never changes an answer (cached engine == uncached engine)', () => {
    // large enough to hold the whole small domain, so repeats really are answered from it
    const cached = CedarEngine.fromText(ALL, { cacheSize: 4096 });
    const fresh = CedarEngine.fromText(ALL, { cacheSize: 0 });
    // a small domain so repeats (hits) are frequent
    const small: fc.Arbitrary<CedarInput> = fc.record({
      method: fc.constantFrom('tools/call', 'resources/read'),
      resource: fc.constantFrom('delete_user', 'transfer', 'deploy_api', 'careless', 'file:///x'),
      arguments: fc.constantFrom(undefined, { amount: 5 }, { amount: 500 }, { amount: 5, to: { country: 'XX' } }),
      sourceId: fc.constantFrom('upstream', 'prod'),
      policyId: fc.constantFrom('default', 'reads'),
      principal: fc.constantFrom(AGENT, ADMIN),
      now: fc.constantFrom(Date.UTC(2024, 0, 15, 10), Date.UTC(2024, 0, 15, 10, 40), Date.UTC(2024, 0, 15, 20), Date.UTC(2024, 0, 14, 10)),
    });
    let hits = 0;
    fc.assert(
      fc.property(fc.array(small, { minLength: 1, maxLength: 30 }), (inputs) => {
        for (const x of inputs) {
          const a = cached.decideInline(x);
          if (a.cached) hits++;
          assert.deepEqual(strip(a), strip(fresh.decideInline(x)));
        }
      }),
      { numRuns: 100 },
    );
    assert.ok(hits > 100, `hits ${hits}`);
  });
});
