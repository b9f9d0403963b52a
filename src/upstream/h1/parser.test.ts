import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { HeaderMap } from '../types.js';
import { ResponseParser, SET_COOKIES, S_DONE, S_ERROR, S_BODY_CLOSE, type ParserHandler } from './parser.js';
import { responseArb, serialise, splitAt } from './testkit.js';

interface Parsed {
  status: number;
  headers: HeaderMap | undefined;
  body: Buffer;
  /** how many body callbacks */
  pieces: number;
  state: number;
  error: string;
  errorCode: string;
  keepAlive: boolean;
  hint: number;
  /** bytes left over after the response completed */
  extra: number;
}

class Collector implements ParserHandler {
  status = 0;
  headers: HeaderMap | undefined;
  heads = 0;
  chunks: Buffer[] = [];
  stopOnBody = false;
  onResponseHead(status: number, headers: HeaderMap): boolean {
    this.heads++;
    this.status = status;
    this.headers = headers;
    return true;
  }
  onResponseBody(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk));
    return !this.stopOnBody;
  }
}

/** Feeds `pieces` in order (as separate reads); `eof` tells the parser the connection closed after. */
function parse(pieces: (string | Buffer)[], eof = false, maxHead?: number): Parsed {
  const c = new Collector();
  const p = new ResponseParser(c, maxHead);
  let extra = 0;
  for (const piece of pieces) {
    const buf = typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece;
    if (p.state === S_DONE || p.state === S_ERROR) {
      extra += buf.length;
      continue;
    }
    const at = p.execute(buf, 0, buf.length);
    if (p.state === S_DONE) extra += buf.length - at;
    else if (p.state !== S_ERROR) assert.equal(at, buf.length, 'consumed everything while not done');
  }
  if (eof) p.finish();
  assert.ok(c.heads <= 1, 'one final head at most');
  return {
    status: c.status,
    headers: c.headers,
    body: Buffer.concat(c.chunks),
    pieces: c.chunks.length,
    state: p.state,
    error: p.error,
    errorCode: p.errorCode,
    keepAlive: p.keepAlive,
    hint: p.keepAliveHintMs,
    extra,
  };
}

const whole = (text: string, eof = false) => parse([text], eof);
const bytewise = (text: string, eof = false) => parse([...Buffer.from(text, 'latin1')].map((b) => Buffer.from([b])), eof);

function ok(r: Parsed): Parsed {
  assert.equal(r.state, S_DONE, `expected a complete response, got state ${r.state} ${r.errorCode} ${r.error}`);
  return r;
}

function bad(r: Parsed, code?: string | RegExp): Parsed {
  assert.equal(r.state, S_ERROR, `expected an error, got state ${r.state}`);
  if (typeof code === 'string') assert.equal(r.errorCode, code, r.error);
  else if (code) assert.match(r.error, code);
  return r;
}

const CHUNKED = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n' +
  '5\r\nhello\r\n' + '1;ext=1;b="x y"\r\n,\r\n' + 'A \t;name\r\n world!!!!\r\n' + '0\r\nx-trailer: 1\r\nx-other: two\r\n\r\n';

describe('ResponseParser: heads', () => {
  it('parses status, lower-cases names, trims OWS, keeps values verbatim otherwise', () => {
    const r = ok(whole('HTTP/1.1 201 Created\r\nContent-Type:  application/json \t\r\nX-Mixed-Case: A b  C\r\nEmpty:\r\nContent-Length: 2\r\n\r\n{}'));
    assert.equal(r.status, 201);
    assert.deepEqual(r.headers, { 'content-type': 'application/json', 'x-mixed-case': 'A b  C', empty: '', 'content-length': '2' });
    assert.equal(r.body.toString(), '{}');
    assert.equal(r.keepAlive, true);
  });
  it('common names matched in place fold case exactly, and near misses stay themselves', () => {
    const r = ok(whole('HTTP/1.1 200 OK\r\nDATE: d\r\nDat3: x\r\nuWebSockets: 20\r\nKeep_Alive: y\r\nMcp-Session-ID: s\r\ncontent-typf: z\r\nContent-Length: 0\r\n\r\n'));
    assert.deepEqual(r.headers, { date: 'd', dat3: 'x', uwebsockets: '20', keep_alive: 'y', 'mcp-session-id': 's', 'content-typf': 'z', 'content-length': '0' });
  });
  it('accepts a status line without reason phrase, with an empty one, and with obs-text in it', () => {
    assert.equal(ok(whole('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n')).status, 200);
    assert.equal(ok(whole('HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n')).status, 404);
    assert.equal(ok(whole('HTTP/1.1 500 Gr\xfc\xdfe\r\nContent-Length: 0\r\n\r\n')).status, 500);
  });
  it('joins repeated headers with ", " and keeps set-cookie values apart under SET_COOKIES', () => {
    const r = ok(whole('HTTP/1.1 200 OK\r\nX-A: 1\r\nSet-Cookie: a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\nx-a: 2\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n'));
    assert.equal(r.headers!['x-a'], '1, 2');
    assert.equal(r.headers!['set-cookie'], 'a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT, b=2');
    assert.deepEqual((r.headers as Record<symbol, unknown>)[SET_COOKIES], ['a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT', 'b=2']);
    assert.deepEqual(Object.keys(r.headers!), ['x-a', 'set-cookie', 'content-length']);
  });
  it('decodes UTF-8 values like undici and is not fooled by names on Object.prototype', () => {
    const r = ok(parse([Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-Name: '), Buffer.from('caf\u00e9 \u2713'), Buffer.from('\r\nconstructor: c\r\nConstructor: d\r\n__proto__: p\r\ntoString: t\r\nContent-Length: 0\r\n\r\n')])]));
    assert.equal(r.headers!['x-name'], 'caf\u00e9 \u2713');
    assert.equal(r.headers!['constructor'], 'c, d');
    assert.equal(r.headers!['tostring'], 't');
    assert.equal(Object.getOwnPropertyDescriptor(r.headers, '__proto__')?.value, 'p');
    assert.equal(Object.getPrototypeOf(r.headers), Object.prototype);
  });
  it('skips 1xx heads (100 Continue, 103 Early Hints with fields) and reports only the final one', () => {
    const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc';
    for (const r of [whole(text), bytewise(text)]) {
      ok(r);
      assert.equal(r.status, 200);
      assert.deepEqual(r.headers, { 'content-length': '3' });
      assert.equal(r.body.toString(), 'abc');
    }
  });
  it('rejects 101 Switching Protocols (never asked for)', () => {
    bad(whole('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'), /101/);
  });
  it('reads keep-alive semantics: HTTP/1.1 default on, close tokens, HTTP/1.0 default off', () => {
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).keepAlive, true);
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n')).keepAlive, false);
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nConnection: x-foo, close\r\nContent-Length: 0\r\n\r\n')).keepAlive, false);
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n')).keepAlive, true);
    assert.equal(ok(whole('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')).keepAlive, false);
    assert.equal(ok(whole('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n')).keepAlive, true);
  });
  it('reads a Keep-Alive timeout hint in ms', () => {
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n')).hint, 5000);
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nKeep-Alive: max=100\r\nContent-Length: 0\r\n\r\n')).hint, -1);
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).hint, -1);
  });
  it('gathers a head split at every byte boundary', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nContent-Length: 7\r\n\r\n{"a":1}';
    const expected = whole(text);
    for (let i = 1; i < text.length; i++) {
      const r = ok(parse([text.slice(0, i), text.slice(i)]));
      assert.deepEqual(r.headers, expected.headers, `split at ${i}`);
      assert.equal(r.body.toString(), '{"a":1}', `split at ${i}`);
    }
    assert.deepEqual(ok(bytewise(text)).headers, expected.headers);
  });
  it('enforces the head size limit across reads, and accepts a head exactly at the limit', () => {
    const limit = 1024;
    const pad = (n: number) => `HTTP/1.1 200 OK\r\nX-Pad: ${'p'.repeat(n)}\r\nContent-Length: 0\r\n\r\n`;
    const base = pad(0).length;
    const exact = pad(limit - base);
    assert.equal(exact.length, limit);
    ok(parse([exact], false, limit));
    ok(parse([exact.slice(0, 500), exact.slice(500)], false, limit));
    bad(parse([pad(limit - base + 1)], false, limit), 'HPE_HEADER_OVERFLOW');
    bad(parse([pad(limit - base + 1).slice(0, 600), pad(limit - base + 1).slice(600)], false, limit), 'HPE_HEADER_OVERFLOW');
    // a head that never ends fails once it passes the limit, without waiting for a terminator
    bad(parse(['HTTP/1.1 200 OK\r\n', ...Array(20).fill('X-Long: ' + 'y'.repeat(90) + '\r\n')], false, limit), 'HPE_HEADER_OVERFLOW');
    // the default limit is 64 KiB
    bad(whole(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(64 * 1024)}\r\nContent-Length: 0\r\n\r\n`), 'HPE_HEADER_OVERFLOW');
    ok(whole(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(60 * 1024)}\r\nContent-Length: 0\r\n\r\n`));
  });
});

describe('ResponseParser: malformed heads', () => {
  const cases: [string, string][] = [
    ['HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['garbage\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['<html>hello</html>\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0\nX: y\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n', 'HPE_STRICT'],
    ['HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nX: a\x7fb\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\n: novalue\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nX(y): 1\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\nx', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
  ];
  for (const [text, code] of cases) {
    it(`rejects ${JSON.stringify(text.slice(0, 70))}`, () => {
      bad(whole(text), code);
      bad(bytewise(text), code);
    });
  }
  it('accepts the same Content-Length twice', () => {
    const r = ok(whole('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 003\r\n\r\nabc'));
    assert.equal(r.body.toString(), 'abc');
  });
});

describe('ResponseParser: bodies', () => {
  it('reads exactly content-length bytes and reports what follows as extra', () => {
    const r = ok(whole('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA'));
    assert.equal(r.body.toString(), 'hello');
    assert.equal(r.extra, 5);
  });
  it('delivers body bytes as views of the read, one callback per read', () => {
    const r = ok(parse(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01', '234', '56789']));
    assert.equal(r.body.toString(), '0123456789');
    assert.equal(r.pieces, 3);
  });
  it('has no body for 204 and 304 (even with a length) nor for content-length 0', () => {
    const r204 = ok(whole('HTTP/1.1 204 No Content\r\n\r\n'));
    assert.equal(r204.body.length, 0);
    assert.equal(r204.keepAlive, true);
    const r304 = ok(whole('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n'));
    assert.equal(r304.body.length, 0);
    assert.equal(ok(whole('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).body.length, 0);
  });
  it('reads until close when there is neither length nor chunked, and never keeps that connection', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this until EOF';
    const open = whole(text);
    assert.equal(open.state, S_BODY_CLOSE);
    const r = ok(whole(text, true));
    assert.equal(r.body.toString(), 'all of this until EOF');
    assert.equal(r.keepAlive, false);
    const gz = ok(whole('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz', true));
    assert.equal(gz.body.toString(), 'zzz');
    assert.equal(gz.keepAlive, false);
  });
  it('does not complete a length-delimited body at EOF', () => {
    const r = whole('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', true);
    assert.notEqual(r.state, S_DONE);
  });
  it('reads chunked bodies with extensions (ignored), BWS before them, and trailers (dropped)', () => {
    const r = ok(whole(CHUNKED));
    assert.equal(r.body.toString(), 'hello, world!!!!');
    assert.equal(r.headers!['x-trailer'], undefined);
    assert.equal(r.extra, 0);
    assert.equal(r.keepAlive, true);
  });
  it('reads a chunked body split at every byte boundary, and byte by byte', () => {
    const expected = 'hello, world!!!!';
    for (let i = 1; i < CHUNKED.length; i++) {
      const r = ok(parse([CHUNKED.slice(0, i), CHUNKED.slice(i)]));
      assert.equal(r.body.toString(), expected, `split at ${i}`);
      assert.equal(r.extra, 0, `split at ${i}`);
    }
    for (let i = 1; i < CHUNKED.length - 1; i++) {
      for (let j = i + 1; j < CHUNKED.length; j += 7) {
        const r = ok(parse([CHUNKED.slice(0, i), CHUNKED.slice(i, j), CHUNKED.slice(j)]));
        assert.equal(r.body.toString(), expected, `split at ${i}, ${j}`);
      }
    }
    const b = ok(bytewise(CHUNKED));
    assert.equal(b.body.toString(), expected);
  });
  it('accepts upper- and lower-case hex with leading zeros', () => {
    const r = ok(whole('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00A\r\n0123456789\r\nb\r\nabcdefghijk\r\n000\r\n\r\n'));
    assert.equal(r.body.toString(), '0123456789abcdefghijk');
  });
  it('treats a chunked coding after others as chunked', () => {
    const r = ok(whole('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
    assert.equal(r.body.toString(), 'abc');
  });
  const badChunked: [string, string][] = [
    ['zz\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['0x5\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['-5\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['+5\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    [' 5\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['5 5\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['fffffffffffffff\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['5\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['5\rhello\r\n0\r\n\r\n', 'HPE_STRICT'],
    ['5\r\nhelloX\r\n0\r\n\r\n', 'HPE_STRICT'],
    ['5\r\nhello\n0\r\n\r\n', 'HPE_STRICT'],
    ['5;a\x00b\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_EXTENSIONS'],
    ['5;a\nb\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_EXTENSIONS'],
    ['0\r\nbad trailer\x01\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['0\r\n x: folded\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['0\r\n\rX', 'HPE_STRICT'],
  ];
  for (const [body, code] of badChunked) {
    it(`rejects chunked framing ${JSON.stringify(body)}`, () => {
      const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + body;
      bad(whole(text), code);
      bad(bytewise(text), code);
    });
  }
  it('limits trailers and chunk extensions', () => {
    bad(parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n', `x: ${'t'.repeat(2000)}\r\n\r\n`], false, 1024), 'HPE_HEADER_OVERFLOW');
    bad(whole(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(20000)}\r\nx\r\n0\r\n\r\n`), 'HPE_CHUNK_EXTENSIONS_OVERFLOW');
  });
  it('stops where the handler says and continues from there', () => {
    const text = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n');
    const c = new Collector();
    c.stopOnBody = true;
    const p = new ResponseParser(c);
    let at = 0;
    let rounds = 0;
    while (p.state !== S_DONE) {
      assert.ok(rounds++ < 10);
      at = p.execute(text, at, text.length);
    }
    assert.equal(at, text.length);
    assert.equal(Buffer.concat(c.chunks).toString(), 'abcdef');
    assert.equal(rounds, 3); // stopped after each of the two chunks
  });
  it('reset() readies the parser for the next response on the connection', () => {
    const c = new Collector();
    const p = new ResponseParser(c);
    const one = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na');
    const two = Buffer.from('HTTP/1.1 404 Nope\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n');
    p.execute(one, 0, one.length);
    assert.equal(p.state, S_DONE);
    p.reset();
    p.execute(two.subarray(0, 20), 0, 20);
    p.execute(two, 20, two.length);
    assert.equal(p.state, S_DONE);
    assert.equal(c.status, 404);
    assert.equal(Buffer.concat(c.chunks).toString(), 'ab');
  });
});

// ---- property: any response, split any way, parses the same as in one read ----

describe('ResponseParser: properties', () => {
  it('parses any generated response the same whatever the read boundaries', () => {
    fc.assert(
      fc.property(responseArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }), (r, cuts) => {
        const wire = serialise(r);
        const eof = r.framing === 'close';
        const one = ok(parse([wire], eof));
        const split = ok(parse(splitAt(wire, cuts), eof));
        assert.equal(one.status, r.status);
        assert.deepEqual(split.headers, one.headers);
        assert.deepEqual(split.body, one.body);
        assert.deepEqual(one.body, r.status === 204 || r.status === 304 ? Buffer.alloc(0) : Buffer.from(r.body));
        const expectedHeaders: Record<string, string> = {};
        for (const [k, v] of r.headers) {
          const n = k.toLowerCase();
          expectedHeaders[n] = n in expectedHeaders ? `${expectedHeaders[n]}, ${v}` : v;
        }
        for (const [k, v] of Object.entries(expectedHeaders)) assert.equal(one.headers![k], v);
        assert.equal(one.extra, 0);
      }),
      { numRuns: 500 },
    );
  });
  it('never throws on arbitrary bytes, and ends in a definite state', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, prefix) => {
        const buf = prefix ? Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n'), bytes]) : Buffer.from(bytes);
        const r = parse([buf], true);
        assert.ok(r.state === S_DONE || r.state === S_ERROR || r.state >= 0);
      }),
      { numRuns: 2000 },
    );
  });
});
