import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GovError } from '../core/errors.js';
import { formatSseEvent, SseParser, type SseEvent } from './sse.js';

function parse(chunks: (string | Buffer)[], max = 1 << 20): { events: SseEvent[]; errors: string[] } {
  const events: SseEvent[] = [];
  const errors: string[] = [];
  const p = new SseParser((e) => events.push(e), max, (why) => errors.push(why));
  for (const c of chunks) p.push(c);
  p.end();
  return { events, errors };
}
const events = (...chunks: (string | Buffer)[]) => parse(chunks).events;
const only = (ev: SseEvent[]) => ev.filter((e) => !e.comment);

describe('SseParser: fields', () => {
  it('parses a simple event and keeps its raw text', () => {
    assert.deepEqual(events('event: message\ndata: {"a":1}\n\n'), [{ event: 'message', data: '{"a":1}', raw: 'event: message\ndata: {"a":1}\n\n' }]);
  });
  it('joins multi-line data with LF', () => {
    assert.equal(events('data: a\ndata: b\ndata:\ndata: c\n\n')[0]!.data, 'a\nb\n\nc');
  });
  it('strips exactly one leading space from values', () => {
    assert.equal(events('data:  two\n\n')[0]!.data, ' two');
    assert.equal(events('data:none\n\n')[0]!.data, 'none');
  });
  it('treats a field name without colon as an empty value', () => {
    const [e] = events('data\ndata\n\n');
    assert.equal(e!.data, '\n');
  });
  it('reads id and retry, ignoring invalid ones and unknown fields', () => {
    assert.deepEqual(events('id: 7\nretry: 1500\nfoo: bar\ndata: x\n\n')[0], { id: '7', retry: 1500, data: 'x', raw: 'id: 7\nretry: 1500\nfoo: bar\ndata: x\n\n' });
    const [e] = events('id: a\0b\nretry: 15x\ndata: x\n\n');
    assert.equal(e!.id, undefined);
    assert.equal(e!.retry, undefined);
  });
  it('delivers blocks without data (id/retry only) so they can be relayed', () => {
    assert.deepEqual(events('retry: 10\n\n'), [{ retry: 10, data: '', raw: 'retry: 10\n\n' }]);
  });
  it('keeps a colon inside the value', () => {
    assert.equal(events('data: a: b\n\n')[0]!.data, 'a: b');
  });
});

describe('SseParser: line endings', () => {
  it('handles LF, CRLF and CR, mixed', () => {
    const ev = events('data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r');
    assert.deepEqual(
      ev.map((e) => [e.data, e.raw]),
      [
        ['a\nb\nc', 'data: a\r\ndata: b\rdata: c\n\r\n'],
        ['d', 'data: d\r\r'],
      ],
    );
  });
  it('holds a CR at the end of a chunk until the next byte shows whether LF follows', () => {
    const got: SseEvent[] = [];
    const p = new SseParser((e) => got.push(e), 1000);
    p.push('data: a\r\n\r');
    assert.equal(got.length, 0);
    p.push('\n');
    assert.deepEqual(got, [{ data: 'a', raw: 'data: a\r\n\r\n' }]);
  });
  it('ends a CR-terminated event at end()', () => {
    assert.deepEqual(events('data: a\r\r'), [{ data: 'a', raw: 'data: a\r\r' }]);
  });
});

describe('SseParser: comments, blank lines, BOM', () => {
  it('delivers a standalone comment at once, flagged, for relaying', () => {
    const got: SseEvent[] = [];
    const p = new SseParser((e) => got.push(e), 1000);
    p.push(':keep-alive\n');
    assert.deepEqual(got, [{ data: '', raw: ':keep-alive\n', comment: true }]);
  });
  it('delivers blank lines outside events as comment units, so raw covers the stream', () => {
    const s = ': ping\n\n\ndata: x\n\n';
    const ev = events(s);
    assert.equal(ev.map((e) => e.raw).join(''), s);
    assert.deepEqual(only(ev), [{ data: 'x', raw: 'data: x\n\n' }]);
  });
  it('keeps a comment inside an event in that event', () => {
    assert.deepEqual(events('data: a\n: note\ndata: b\n\n'), [{ data: 'a\nb', raw: 'data: a\n: note\ndata: b\n\n' }]);
  });
  it('strips a leading BOM, also when split across chunks, but only at the start', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    assert.deepEqual(events(Buffer.concat([bom, Buffer.from('data: x\n\n')])), [{ data: 'x', raw: 'data: x\n\n' }]);
    assert.deepEqual(events(bom.subarray(0, 1), bom.subarray(1, 2), Buffer.concat([bom.subarray(2), Buffer.from('data: x\n\n')])), [{ data: 'x', raw: 'data: x\n\n' }]);
    assert.equal(events('data: x\n\n', Buffer.concat([bom, Buffer.from('data: y\n\n')]))[1]!.raw, '\ufeffdata: y\n\n');
  });
  it('does not mistake a BOM prefix for a BOM', () => {
    assert.deepEqual(events(Buffer.from([0xef]), Buffer.from([0xbb, 0x41, 0x0a])).length, 0); // invalid bytes, no blank line
    assert.equal(events(Buffer.from('d'), Buffer.from('ata: x\n\n'))[0]!.data, 'x');
  });
  it('discards an unterminated event at end()', () => {
    assert.deepEqual(events('data: a\n\ndata: b\n'), [{ data: 'a', raw: 'data: a\n\n' }]);
  });
});

describe('SseParser: chunking and UTF-8', () => {
  it('decodes a multi-byte character split across chunks', () => {
    const b = Buffer.from('data: é✓😀\n\n');
    const chunks = [...b].map((x) => Buffer.from([x]));
    assert.deepEqual(events(...chunks), [{ data: 'é✓😀', raw: 'data: é✓😀\n\n' }]);
  });
  it('accepts strings as well as Buffers', () => {
    assert.deepEqual(events('data: é', '\n\n'), [{ data: 'é', raw: 'data: é\n\n' }]);
  });
  it('yields the same events for any chunking, and raw covers the whole stream (property)', () => {
    const line = fc.oneof(
      fc.constantFrom('data: {"jsonrpc":"2.0","id":1,"result":{}}', 'data:x', 'data', 'event: message', 'id: 5', 'retry: 100', ': keep-alive', ':', ''),
      fc.string({ unit: 'binary', maxLength: 8 }).map((s) => 'data: ' + s.replace(/[\r\n]/g, '')),
    );
    const eol = fc.constantFrom('\n', '\r\n', '\r');
    fc.assert(
      fc.property(fc.array(fc.tuple(line, eol), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (ls, cuts, bom) => {
        const text = ls.map(([l, e]) => l + e).join('');
        const whole = Buffer.concat([bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(text)]);
        const at = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of at) {
          chunks.push(whole.subarray(prev, c));
          prev = c;
        }
        chunks.push(whole.subarray(prev));
        const a = parse([whole]);
        assert.deepEqual(parse(chunks), a);
        // with a tight limit, drops and errors do not depend on chunking either
        assert.deepEqual(parse(chunks, 40), parse([whole], 40));
        // everything delivered is a prefix of the stream (the tail after the last blank line is discarded)
        assert.ok(text.startsWith(a.events.map((e) => e.raw).join('')));
      }),
    );
  });
});

describe('SseParser: size limit', () => {
  it('accepts an event of exactly maxEventBytes and rejects one byte more', () => {
    const ev = 'data: 12345\n\n'; // 13 bytes
    assert.deepEqual(parse([ev], 13), { events: [{ data: '12345', raw: ev }], errors: [] });
    const r = parse([ev], 12);
    assert.deepEqual(r.events, []);
    assert.equal(r.errors.length, 1);
  });
  it('drops an oversize event without buffering it and parses the next one', () => {
    const errors: string[] = [];
    const got: SseEvent[] = [];
    const p = new SseParser((e) => got.push(e), 50, (why) => errors.push(why));
    p.push('data: ');
    for (let i = 0; i < 100; i++) p.push('x'.repeat(100));
    assert.ok((p as unknown as { held: number }).held <= 50);
    p.push('\ndata: more\n\ndata: ok\n\n');
    p.end();
    assert.deepEqual(got, [{ data: 'ok', raw: 'data: ok\n\n' }]);
    assert.deepEqual(errors, ['SSE event exceeds 50 bytes']);
  });
  it('drops only an oversize standalone comment line', () => {
    const r = parse([':' + 'x'.repeat(30), 'x'.repeat(30) + '\ndata: ok\n\n'], 20);
    assert.deepEqual(r.events, [{ data: 'ok', raw: 'data: ok\n\n' }]);
    assert.equal(r.errors.length, 1);
  });
  it('throws a GovError from push when no error callback is given', () => {
    const p = new SseParser(() => {}, 5);
    assert.throws(() => p.push('data: 123456\n\n'), (e: unknown) => e instanceof GovError && e.kind === 'upstream_error');
  });
});

describe('formatSseEvent', () => {
  it('writes event, id and one data line per line', () => {
    assert.equal(formatSseEvent({ event: 'message', id: '3', data: 'a\nb\r\nc' }), 'event: message\nid: 3\ndata: a\ndata: b\ndata: c\n\n');
    assert.equal(formatSseEvent({ data: '' }), 'data: \n\n');
  });
  it('round-trips through the parser', () => {
    for (const data of ['{"jsonrpc":"2.0"}', ' lead', 'a\n\nb', '', 'é😀']) {
      const text = formatSseEvent({ event: 'message', id: 'x', data });
      assert.deepEqual(events(text), [{ event: 'message', id: 'x', data, raw: text }]);
    }
  });
  it('refuses event or id values that would inject fields', () => {
    assert.throws(() => formatSseEvent({ event: 'a\ndata: evil', data: '' }), GovError);
    assert.throws(() => formatSseEvent({ id: '1\r', data: '' }), GovError);
    assert.throws(() => formatSseEvent({ id: 'a\0', data: '' }), GovError);
  });
});

it('an event that is not valid UTF-8 is reported and dropped, never delivered with replacement characters', () => {
  const events: string[] = [];
  const errors: string[] = [];
  const p = new SseParser((ev) => events.push(ev.data), 1024, (why) => errors.push(why));
  // split inside the bad sequence and inside a good multi-byte character: events decode whole
  const bytes = Buffer.concat([Buffer.from('data: ok é\n\ndata: bad '), Buffer.from([0xc3, 0x28]), Buffer.from('\n\ndata: after\n\n')]);
  for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
  assert.deepEqual(events, ['ok é', 'after']);
  assert.deepEqual(errors, ['SSE event is not valid UTF-8']);
});
