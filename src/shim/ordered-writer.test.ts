import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { EventCounts } from './event-counts.js';
import { OrderedWriter } from './ordered-writer.js';

/** A sink that keeps what it was given, line by line. */
function collector(highWaterMark = 1 << 20): { sink: Writable; lines: () => string[]; release: () => void } {
  let text = '';
  let held: (() => void)[] = [];
  let holding = false;
  const sink = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      if (holding) held.push(cb);
      else cb();
    },
  });
  return {
    sink,
    lines: () => text.split('\n').filter(Boolean),
    release: () => {
      holding = false;
      const cbs = held;
      held = [];
      for (const cb of cbs) cb();
    },
  };
}

const noEvents = { onFull: () => {}, onDrain: () => {} };

describe('OrderedWriter', () => {
  it('writes straight through when nothing waits, one line per message', () => {
    const c = collector();
    const w = new OrderedWriter(c.sink, noEvents);
    w.push(Buffer.from('{"a":1}'));
    w.push('{"b":2}');
    assert.deepEqual(c.lines(), ['{"a":1}', '{"b":2}']);
  });

  it('a message being judged holds back later ones until it is filled (earlier forwards are not overtaken)', () => {
    const c = collector();
    const w = new OrderedWriter(c.sink, noEvents);
    w.push('first');
    const judged = w.reserve();
    w.push('after-judged');
    const judged2 = w.reserve();
    w.push('last');
    assert.deepEqual(c.lines(), ['first']);
    w.fill(judged2, 'judged-2'); // answered first, but it is behind `judged`
    assert.deepEqual(c.lines(), ['first'], 'a later slot must not overtake an earlier pending one');
    w.fill(judged, 'judged-1');
    assert.deepEqual(c.lines(), ['first', 'judged-1', 'after-judged', 'judged-2', 'last']);
    assert.equal(w.hasPending, false);
  });

  it('a skipped slot (held or answered) frees its place at once', () => {
    const c = collector();
    const w = new OrderedWriter(c.sink, noEvents);
    const held = w.reserve();
    w.push('ping');
    w.push('notification');
    assert.deepEqual(c.lines(), []);
    w.skip(held);
    assert.deepEqual(c.lines(), ['ping', 'notification']);
    w.push('later');
    assert.deepEqual(c.lines(), ['ping', 'notification', 'later']);
  });

  it('settled() waits for pending slots; close() drops them and writes nothing more', async () => {
    const c = collector();
    const w = new OrderedWriter(c.sink, noEvents);
    const s = w.reserve();
    w.push('queued');
    let settled = false;
    const p = w.settled().then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false);
    w.fill(s, 'x');
    await p;
    assert.deepEqual(c.lines(), ['x', 'queued']);

    const s2 = w.reserve();
    w.push('dropped');
    w.close();
    await w.settled();
    w.fill(s2, 'late');
    w.push('after-close');
    assert.deepEqual(c.lines(), ['x', 'queued']);
  });

  it('reports a full sink once and its drain once', async () => {
    const c = collector(16);
    let full = 0;
    let drained = 0;
    const w = new OrderedWriter(c.sink, { onFull: () => full++, onDrain: () => drained++ });
    w.push('0123456789abcdef0123');
    w.push('more');
    assert.equal(full, 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, 1);
  });
});

describe('EventCounts', () => {
  it('counts by direction and method, takes and restores', () => {
    const e = new EventCounts();
    assert.equal(e.isEmpty, true);
    e.message('inbound', 'tools/call');
    e.message('inbound', 'tools/call');
    e.message('outbound', 'tools/call');
    e.framingError('inbound', 'malformed_json');
    const r = e.take();
    assert.equal(e.isEmpty, true);
    assert.deepEqual(r.messages.sort((a, b) => a.direction.localeCompare(b.direction)), [
      { direction: 'inbound', method: 'tools/call', count: 2 },
      { direction: 'outbound', method: 'tools/call', count: 1 },
    ]);
    assert.deepEqual(r.framing, [{ direction: 'inbound', errorType: 'malformed_json', count: 1 }]);
    e.message('inbound', 'tools/call');
    e.restore(r);
    const r2 = e.take();
    assert.equal(r2.messages.find((m) => m.direction === 'inbound')!.count, 3);
  });

  it('keeps a bounded number of method names per batch', () => {
    const e = new EventCounts();
    for (let i = 0; i < 1000; i++) e.message('inbound', `m${i}`);
    e.message('inbound', 'x'.repeat(500));
    const r = e.take();
    assert.ok(r.messages.length <= 260, `${r.messages.length} entries`);
    const total = r.messages.reduce((n, m) => n + m.count, 0);
    assert.equal(total, 1001, 'nothing is lost, only lumped into other');
    assert.ok(r.messages.some((m) => m.method === 'other'));
  });
});
