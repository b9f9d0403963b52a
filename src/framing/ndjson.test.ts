import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeLine, LineSplitter } from './ndjson.js';

function split(max: number, chunks: (string | Buffer)[], finish = true): { lines: string[]; drops: number[] } {
  const lines: string[] = [];
  const drops: number[] = [];
  const s = new LineSplitter(max, (l) => lines.push(l.toString('utf8')), (n) => drops.push(n));
  for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c) : c);
  if (finish) s.end();
  return { lines, drops };
}

describe('LineSplitter', () => {
  it('splits lines inside one chunk and across chunks', () => {
    assert.deepEqual(split(100, ['a\nb', 'c\n', 'd', '', 'e', '\nf\n']).lines, ['a', 'bc', 'de', 'f']);
  });
  it('strips a CR before LF, even when split from it, and keeps other CRs', () => {
    assert.deepEqual(split(100, ['a\r\nb\r', '\nc\rd\n']).lines, ['a', 'b', 'c\rd']);
  });
  it('skips empty lines', () => {
    assert.deepEqual(split(100, ['\n\r\n\na\n\n']).lines, ['a']);
  });
  it('emits an unterminated last line at end()', () => {
    assert.deepEqual(split(100, ['a\nlast']).lines, ['a', 'last']);
    assert.deepEqual(split(100, ['a\nlast'], false).lines, ['a']);
  });
  it('keeps multi-byte characters split across chunks intact', () => {
    const b = Buffer.from('é✓\n');
    assert.deepEqual(split(100, [b.subarray(0, 1), b.subarray(1, 3), b.subarray(3)]).lines, ['é✓']);
  });
  it('accepts a line of exactly maxLineBytes and drops one byte longer', () => {
    const r = split(5, ['12345\n123456\nok\n']);
    assert.deepEqual(r.lines, ['12345', 'ok']);
    assert.deepEqual(r.drops, [6]);
  });
  it('counts a CR before the newline toward the limit', () => {
    assert.deepEqual(split(5, ['12345\r\n']).drops, [6]);
    assert.deepEqual(split(6, ['12345\r\n']).lines, ['12345']);
  });
  it('drops an oversize line spread over many chunks, reports it once, then parses the next', () => {
    const r = split(10, ['{"a":', 'x'.repeat(8), 'y'.repeat(20), 'z'.repeat(30) + '\n{"ok":1}\n']);
    assert.deepEqual(r.lines, ['{"ok":1}']);
    assert.deepEqual(r.drops, [5 + 8 + 20 + 30]);
  });
  it('never holds more than maxLineBytes of one line', () => {
    const s = new LineSplitter(10, () => {}, () => {});
    for (let i = 0; i < 1000; i++) s.push(Buffer.from('xxxxxxx'));
    const held = (s as unknown as { partLen: number }).partLen;
    assert.ok(held <= 10);
  });
  it('reports an oversize line that the stream ends inside', () => {
    const r = split(3, ['ok\n', 'toolong']);
    assert.deepEqual(r.lines, ['ok']);
    assert.deepEqual(r.drops, [7]);
  });
  it('hands out zero-copy views for lines inside one chunk', () => {
    const chunk = Buffer.from('abc\ndef\n');
    const got: Buffer[] = [];
    const s = new LineSplitter(100, (l) => got.push(l), () => {});
    s.push(chunk);
    assert.equal(got[0]!.buffer, chunk.buffer);
  });
  it('yields the same lines and drops for any chunking (property)', () => {
    const line = fc.oneof(fc.string({ maxLength: 12 }), fc.constant(''), fc.string({ minLength: 13, maxLength: 30 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(line, fc.constantFrom('\n', '\r\n')), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 10 }), (ls, cuts) => {
        const whole = Buffer.from(ls.map(([l, e]) => l + e).join(''));
        const at = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of at) {
          chunks.push(whole.subarray(prev, c));
          prev = c;
        }
        chunks.push(whole.subarray(prev));
        assert.deepEqual(split(12, chunks), split(12, [whole]));
      }),
    );
  });
});

describe('decodeLine', () => {
  const opts = { allowBatch: false, maxDepth: 8 };
  const line = (s: string | Buffer, o = opts) => decodeLine(typeof s === 'string' ? Buffer.from(s) : s, o);
  const fails = (s: string | Buffer, errorType: string, id?: unknown, o = opts) => {
    const r = line(s, o);
    assert.equal(r.ok, false, String(s));
    if (r.ok) return;
    assert.equal(r.errorType, errorType, `${String(s)}: ${r.error.message}`);
    assert.equal(r.id, id);
    assert.equal(r.error.code, errorType === 'invalid_utf8' || errorType === 'malformed_json' ? -32700 : -32600);
  };
  it('decodes a message', () => {
    const r = line('{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
    assert.deepEqual(r, { ok: true, message: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
  });
  it('labels each failure like ThoughtGate does', () => {
    fails(Buffer.from([0x7b, 0xff, 0x7d]), 'invalid_utf8');
    fails('{"jsonrpc":"2.0",', 'malformed_json');
    fails(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"jsonrpc":"2.0","method":"m"}')]), 'malformed_json');
    fails('{"id":4,"method":"m"}', 'missing_version', 4);
    fails('{"jsonrpc":"1.0","id":"a","method":"m"}', 'unsupported_version', 'a');
    fails('[{"jsonrpc":"2.0","method":"m"}]', 'unsupported_batch');
    fails('{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}', 'duplicate_key');
    fails('{"jsonrpc":"2.0","id":1,"method":"a","params":[]}', 'invalid_request', 1);
    fails('{"jsonrpc":"2.0","id":1.5,"method":"a"}', 'invalid_request');
    fails('{"jsonrpc":"2.0","id":1,"method":"a","params":{"s":"\\ud800"}}', 'invalid_request');
    fails('{"jsonrpc":"2.0","method":"a","params":' + '['.repeat(8) + ']'.repeat(8) + '}', 'invalid_request');
    fails('7', 'invalid_request');
  });
  it('decodes batches where allowed, failing the line on any bad element', () => {
    const o = { ...opts, allowBatch: true, maxBatchSize: 2 };
    const r = line('[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]', o);
    assert.ok(r.ok && Array.isArray(r.message) && r.message.length === 2);
    fails('[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"q","method":5}]', 'invalid_request', 'q', o);
    fails('[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":9}]', 'invalid_request', 9, o);
    fails('[]', 'invalid_request', undefined, o);
    fails('[1,2,3]', 'invalid_request', undefined, o);
  });
});
