import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ArgumentError, canonicalArguments, toCedarArguments } from './args.js';
import { Lru } from './cache.js';

describe('toCedarArguments', () => {
  it('converts JSON to Cedar attribute values', () => {
    assert.deepEqual(toCedarArguments({ a: 1, b: 2.0, c: 1.5, d: 'x', e: true, f: null, g: [1, null, 'y'], h: { i: -0 }, j: 2 ** 70, k: -(2 ** 62) }),
      { a: 1, b: 2, c: '1.5', d: 'x', e: true, g: [1, 'y'], h: { i: 0 }, j: '1.1805916207174113e+21', k: -(2 ** 62) });
    assert.deepEqual(toCedarArguments(undefined), {});
    assert.deepEqual(toCedarArguments(null), {});
  });

  it('rejects non-objects, reserved keys and depth > 64', () => {
    assert.throws(() => toCedarArguments([1]), ArgumentError);
    assert.throws(() => toCedarArguments('x'), ArgumentError);
    for (const k of ['__entity', '__extn', '__expr']) assert.throws(() => toCedarArguments({ a: { [k]: 1 } }), /reserved/);
    const nest = (n: number): unknown => (n === 1 ? {} : { a: nest(n - 1) });
    assert.doesNotThrow(() => toCedarArguments(nest(64)));
    assert.throws(() => toCedarArguments(nest(65)), /deeper than 64/);
    assert.equal(canonicalArguments(nest(64)) !== undefined, true);
    assert.equal(canonicalArguments(nest(65)), undefined);
  });
});

describe('__proto__ as an argument name', () => {
  it('stays an ordinary key in the conversion and the cache key', () => {
    const o = JSON.parse('{"__proto__":{"x":1},"a":1}') as Record<string, unknown>;
    const c = toCedarArguments(o) as Record<string, unknown>;
    assert.deepEqual(Object.keys(c).sort(), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(c), Object.prototype);
    assert.deepEqual((c as { __proto__: unknown }).__proto__, { x: 1 });
    assert.equal(canonicalArguments(o), '{"__proto__":{"x":1},"a":1}');
  });
});

describe('canonicalArguments', () => {
  it('sorts keys at every level', () => {
    assert.equal(canonicalArguments({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}');
    assert.equal(canonicalArguments(undefined), '{}');
  });

  it('equal canonical text ⇒ equal conversion (the cache key is sound)', () => {
    const shuffle = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(shuffle);
      if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, shuffle(x)]));
      return v;
    };
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), (o) => {
      const s = shuffle(o);
      assert.equal(canonicalArguments(s), canonicalArguments(o));
      let a: unknown, b: unknown;
      try { a = toCedarArguments(o); } catch (e) { a = String(e); }
      try { b = toCedarArguments(s); } catch (e) { b = String(e); }
      assert.deepEqual(a, b);
    }));
  });
});

describe('Lru', () => {
  it('never holds more than its capacity, and keeps what was used recently', () => {
    const l = new Lru<number>(100);
    for (let i = 0; i < 1000; i++) {
      l.set(`k${i}`, i);
      assert.ok(l.get('hot') === undefined || l.get('hot') === -1);
      if (i % 10 === 0) l.set('hot', -1);
      assert.ok(l.size <= 100, `size ${l.size}`);
    }
    assert.equal(l.get('hot'), -1, 'an entry used every few inserts survives');
    assert.equal(l.get('k0'), undefined, 'an old, unused entry is gone');
    assert.equal(l.get('k999'), 999);
  });

  it('evicts the least recently used', () => {
    const l = new Lru<number>(2);
    l.set('a', 1);
    l.set('b', 2);
    assert.equal(l.get('a'), 1); // a is now newest
    l.set('c', 3);
    assert.equal(l.get('b'), undefined);
    assert.equal(l.get('a'), 1);
    assert.equal(l.get('c'), 3);
    assert.equal(l.size, 2);
    const z = new Lru<number>(0);
    z.set('a', 1);
    assert.equal(z.size, 0);
  });
});
