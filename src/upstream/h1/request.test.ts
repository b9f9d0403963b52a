import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { UpstreamRequest } from '../types.js';
import { COPY_BODY_MAX, RequestHeaderError, RequestWriter, type SerialisedRequest } from './request.js';

const writer = new RequestWriter('/mcp?x=1', '127.0.0.1:8080');

function build(req: Partial<UpstreamRequest>): SerialisedRequest {
  const out: SerialisedRequest = { head: Buffer.alloc(0), body: null };
  writer.build({ method: 'POST', path: '/', headers: {}, correlationId: 'c', ...req }, out);
  return out;
}

describe('RequestWriter', () => {
  it('serialises a POST into one buffer: request line, host, keep-alive, fields, length, body', () => {
    const out = build({ headers: { 'content-type': 'application/json', 'mcp-session-id': 's1' }, body: Buffer.from('{"a":1}') });
    assert.equal(out.body, null);
    assert.equal(
      out.head.toString('latin1'),
      'POST /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: keep-alive\r\ncontent-type: application/json\r\nmcp-session-id: s1\r\ncontent-length: 7\r\n\r\n{"a":1}',
    );
  });
  it('GET and DELETE carry no content-length; a POST without body says 0', () => {
    assert.equal(build({ method: 'GET', headers: { accept: 'text/event-stream' } }).head.toString(), 'GET /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: keep-alive\r\naccept: text/event-stream\r\n\r\n');
    assert.doesNotMatch(build({ method: 'DELETE' }).head.toString(), /content-length/);
    assert.match(build({ method: 'POST' }).head.toString(), /content-length: 0\r\n\r\n$/);
  });
  it('keeps a large body as its own buffer (written corked with the head: one writev)', () => {
    const body = Buffer.alloc(COPY_BODY_MAX + 1, 0x61);
    const out = build({ body });
    assert.equal(out.body, body);
    assert.match(out.head.toString(), new RegExp(`content-length: ${body.length}\\r\\n\\r\\n$`));
    const small = build({ body: Buffer.alloc(COPY_BODY_MAX, 0x62) });
    assert.equal(small.body, null);
    assert.equal(small.head.length, small.head.indexOf('\r\n\r\n') + 4 + COPY_BODY_MAX);
  });
  it('writes obs-text values as single bytes (latin1), like undici', () => {
    const out = build({ headers: { 'x-name': 'caf\u00e9' } });
    assert.ok(out.head.includes(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0d, 0x0a])));
  });
  it('skips the framing and hop-by-hop fields it owns, whatever their case', () => {
    const head = build({ headers: { Host: 'x', 'Content-Length': '5', Connection: 'close', 'Transfer-Encoding': 'chunked', TE: 'trailers', Upgrade: 'h2c', Expect: '100-continue', 'x-ok': '1' }, body: Buffer.from('ab') }).head.toString();
    assert.equal(head, 'POST /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: keep-alive\r\nx-ok: 1\r\ncontent-length: 2\r\n\r\nab');
  });
  it('rejects any name that is not a token and any value with CR, LF, NUL, other controls or chars > 0xFF', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), (name, value) => {
        const nameOk = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name);
        const valueOk = !/[^\t\x20-\x7e\x80-\xff]/.test(value);
        let threw = false;
        try {
          build({ headers: { [name]: value } });
        } catch (err) {
          assert.ok(err instanceof RequestHeaderError);
          threw = true;
        }
        assert.equal(threw, !(nameOk && valueOk), `${JSON.stringify(name)}: ${JSON.stringify(value)}`);
      }),
      { numRuns: 2000 },
    );
    for (const [name, value] of [['x', 'a\r\nb: c'], ['x', 'a\nb'], ['x', 'a\rb'], ['x', 'a\0b'], ['x\r\ny', 'v'], ['x y', 'v'], ['', 'v']] as const) {
      assert.throws(() => build({ headers: { [name]: value } }), RequestHeaderError);
    }
  });
  it('remembers names, not verdicts on values: repeats are skipped, refused or forwarded as the first time', () => {
    for (let round = 0; round < 3; round++) {
      assert.throws(() => build({ headers: { 'bad name': 'v' } }), RequestHeaderError);
      assert.throws(() => build({ headers: { 'x-ok': 'a\r\nb' } }), RequestHeaderError);
      const head = build({ headers: { Host: 'evil', 'x-ok': `v${round}` } }).head.toString();
      assert.match(head, new RegExp(`\r\nx-ok: v${round}\r\n`));
      assert.doesNotMatch(head, /evil/);
    }
    // past the remembered names, each is still checked and forwarded
    const many: Record<string, string> = {};
    for (let i = 0; i < 600; i++) many[`x-h${i}`] = String(i);
    const head = build({ headers: { ...many, 'Content-Length': '99' } }).head.toString();
    assert.match(head, /\r\nx-h599: 599\r\n/);
    assert.doesNotMatch(head, /content-length: 99/i);
  });
  it('rejects a method that is not a token, and a path with spaces or controls', () => {
    assert.throws(() => build({ method: 'PO ST' as 'POST' }), RequestHeaderError);
    assert.throws(() => new RequestWriter('/a b', 'h'), RequestHeaderError);
    assert.throws(() => new RequestWriter('/a\r\nb', 'h'), RequestHeaderError);
    assert.throws(() => new RequestWriter('a', 'h'), RequestHeaderError);
  });
});
