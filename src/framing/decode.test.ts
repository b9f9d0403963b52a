import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GovError } from '../core/errors.js';
import { decodeBody, framingReason, validateMessage, type Decoded } from './decode.js';

const L = { maxBodyBytes: 400, maxDepth: 4, maxBatchSize: 3 };
const ROOMY = { maxBodyBytes: 1e6, maxDepth: 64, maxBatchSize: 100 };

const dec = (body: string | Uint8Array, limits = L): Decoded =>
  decodeBody(typeof body === 'string' ? Buffer.from(body) : body, limits);

/** Asserts decodeBody throws a GovError of `kind` whose details match `details`. */
function rejects(body: string | Uint8Array, kind: 'parse_error' | 'invalid_request', details?: RegExp | string, limits = L): GovError {
  let caught: unknown;
  try {
    dec(body, limits);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof GovError, `expected a GovError for ${String(body)}, got ${String(caught)}`);
  assert.equal(caught.kind, kind, `${String(body)}: ${caught.message}`);
  assert.equal(caught.code, kind === 'parse_error' ? -32700 : -32600);
  if (typeof details === 'string') assert.equal(caught.details, details);
  else if (details) assert.match(caught.details ?? '', details);
  return caught;
}

function single(body: string, limits = L): unknown {
  const d = dec(body, limits);
  assert.equal(d.kind, 'single');
  return d.kind === 'single' ? d.message : undefined;
}

const req = (extra = '', id = '1') => `{"jsonrpc":"2.0","id":${id},"method":"tools/call"${extra}}`;

describe('decodeBody: size', () => {
  it('accepts a body of exactly maxBodyBytes and rejects one byte more', () => {
    const base = req();
    const exact = base + ' '.repeat(L.maxBodyBytes - base.length);
    assert.equal(Buffer.byteLength(exact), L.maxBodyBytes);
    single(exact);
    const e = rejects(exact + ' ', 'invalid_request', `Request body exceeds maximum size of ${L.maxBodyBytes} bytes`);
    assert.equal(framingReason(e), 'message_too_large');
  });
  it('counts bytes, not characters', () => {
    const base = req(',"params":{"s":"é"}');
    const pad = L.maxBodyBytes - Buffer.byteLength(base);
    single(base + ' '.repeat(pad));
    rejects(base + ' '.repeat(pad + 1), 'invalid_request', /exceeds maximum size/);
  });
});

describe('decodeBody: encoding', () => {
  const withBytes = (...bytes: number[]) =>
    Buffer.concat([Buffer.from('{"jsonrpc":"2.0","method":"m","params":{"s":"'), Buffer.from(bytes), Buffer.from('"}}')]);
  it('accepts well-formed multi-byte UTF-8', () => {
    const m = single('{"jsonrpc":"2.0","method":"m","params":{"s":"héllo ✓ 😀"}}') as { params: { s: string } };
    assert.equal(m.params.s, 'héllo ✓ 😀');
  });
  for (const [name, bytes] of [
    ['a stray 0xff', [0xff]],
    ['a lone continuation byte', [0x80]],
    ['an overlong "/" (C0 AF)', [0xc0, 0xaf]],
    ['an overlong 3-byte "/" (E0 80 AF)', [0xe0, 0x80, 0xaf]],
    ['an overlong 4-byte NUL (F0 80 80 80)', [0xf0, 0x80, 0x80, 0x80]],
    ['a UTF-8 encoded surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a truncated sequence', [0xe2, 0x9c]],
  ] as const) {
    it(`rejects ${name} as parse_error`, () => {
      rejects(withBytes(...bytes), 'parse_error', /UTF-8/);
    });
  }
  it('rejects a body cut inside a multi-byte character', () => {
    const b = Buffer.from(req(',"params":{"s":"✓"}'));
    rejects(b.subarray(0, b.indexOf(Buffer.from('✓')) + 1), 'parse_error', /UTF-8/);
  });
  it('rejects a UTF-8 BOM', () => {
    rejects(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(req())]), 'parse_error', /byte order mark/);
  });
  it('accepts U+FEFF inside a string (not at the start)', () => {
    single('{"jsonrpc":"2.0","method":"m","params":{"s":"\ufeff"}}');
  });
  it('accepts a plain Uint8Array', () => {
    const b = Buffer.from(req());
    single(new Uint8Array(b.buffer, b.byteOffset, b.byteLength) as unknown as string);
  });
});

describe('decodeBody: strict JSON', () => {
  it('rejects empty and whitespace-only bodies', () => {
    rejects('', 'parse_error', 'empty body');
    rejects(' \r\n\t ', 'parse_error', 'empty body');
  });
  const bad: [string, string][] = [
    ['trailing data', req() + ' x'],
    ['two documents', req() + req()],
    ['a line comment', '// c\n' + req()],
    ['a block comment', '{"jsonrpc":"2.0",/* c */"method":"m"}'],
    ['NaN', req(',"params":{"n":NaN}')],
    ['Infinity', req(',"params":{"n":Infinity}')],
    ['-Infinity', req(',"params":{"n":-Infinity}')],
    ['a trailing comma in an object', '{"jsonrpc":"2.0","method":"m",}'],
    ['a trailing comma in an array', '[' + req() + ',]'],
    ['single quotes', "{'jsonrpc':'2.0','method':'m'}"],
    ['an unquoted key', '{jsonrpc:"2.0","method":"m"}'],
    ['a leading zero', req('', '01')],
    ['a leading plus', req('', '+1')],
    ['a hex number', req('', '0x10')],
    ['a bare fraction', req('', '.5')],
    ['a raw control character in a string', '{"jsonrpc":"2.0","method":"a\tb"}'],
    ['an invalid escape', '{"jsonrpc":"2.0","method":"\\x41"}'],
    ['a short \\u escape', '{"jsonrpc":"2.0","method":"\\u12"}'],
    ['non-JSON whitespace (NBSP)', '\u00a0' + req()],
    ['an unterminated object', '{"jsonrpc":"2.0"'],
  ];
  for (const [name, body] of bad) {
    it(`rejects ${name} as parse_error with JSON.parse's message`, () => {
      let msg = '';
      try {
        JSON.parse(body);
      } catch (e) {
        msg = (e as Error).message;
      }
      assert.notEqual(msg, '', 'JSON.parse should reject it too');
      rejects(body, 'parse_error', msg);
    });
  }
});

describe('decodeBody: duplicate keys', () => {
  const dup = (body: string, key: string) => rejects(body, 'invalid_request', `duplicate key '${key}'`);
  it('rejects a duplicated method at top level', () => {
    dup('{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}', 'method');
  });
  it('rejects duplicated id and jsonrpc', () => {
    dup('{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}', 'id');
    dup('{"jsonrpc":"2.0","jsonrpc":"1.0","method":"m"}', 'jsonrpc');
  });
  it('rejects duplicates nested inside params.arguments', () => {
    dup(req(',"params":{"name":"rm","arguments":{"path":"/tmp","path":"/etc"}}'), 'path');
  });
  it('rejects duplicates deeper inside arrays of objects', () => {
    dup(req(',"params":{"a":[{"x":1},{"y":1,"y":2}]}'), 'y');
  });
  it('rejects a duplicate after a nested object closed', () => {
    dup(req(',"params":{"a":{"b":1},"a":2}'), 'a');
  });
  it('rejects keys that are duplicates only after unescaping', () => {
    dup(req(',"params":{"name":1,"na\\u006de":2}'), 'name');
    dup(req(',"params":{"na\\u006de":1,"name":2}'), 'name');
    dup(req(',"params":{"\\u006eame":1,"na\\u006De":2}'), 'name');
    dup('{"jsonrpc":"2.0","id":1,"method":"tools/call","\\u006dethod":"tools/list"}', 'method');
    dup(req(',"params":{"a\\/b":1,"a/b":2}'), 'a/b');
    dup(req(',"params":{"é":1,"\\u00e9":2}'), 'é');
    dup(req(',"params":{"😀":1,"\\ud83d\\ude00":2}'), '😀');
  });
  it('rejects duplicate empty keys', () => {
    dup(req(',"params":{"":1,"":2}'), '');
  });
  it('rejects duplicates in objects large enough to use a Set', () => {
    const many = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(',');
    rejects(req(`,"params":{${many},"k7":0}`), 'invalid_request', "duplicate key 'k7'", ROOMY);
    rejects(req(`,"params":{${many},"k\\u0033\\u0039":0}`), 'invalid_request', "duplicate key 'k39'", ROOMY);
    rejects(req(`,"params":{${many},"x":{"k1":{},"k2":1},"k2":0}`), 'invalid_request', "duplicate key 'k2'", ROOMY);
    single(req(`,"params":{${many},"x":{"k1":{"k1":1},"k2":1}}`), ROOMY);
  });
  it('accepts same-named keys in different objects and different keys with equal signatures', () => {
    single(req(',"params":{"a":{"a":{"a":1}}}'));
    assert.equal(dec('[' + req(',"params":{"a":1}') + ',' + req(',"params":{"a":2}', '2') + ']').kind, 'batch');
    // same length, first, middle and last byte: must still be told apart
    single(req(',"params":{"axbyc":1,"azbwc":2,"a\\u0078bzc":3}'));
    single(req(',"params":{"name":1,"Name":2,"name ":3,"nam":4}'));
  });
  it('rejects a NUL in an escaped key (C parsers may truncate it)', () => {
    rejects(req(',"params":{"a\\u0000b":1}'), 'invalid_request', /NUL/);
  });
  it('rejects a duplicate inside one batch element as a whole-body failure', () => {
    dup('[' + req() + ',{"jsonrpc":"2.0","id":2,"method":"a","method":"b"}]', 'method');
  });
});

describe('decodeBody: surrogate escapes', () => {
  const str = (s: string) => `{"jsonrpc":"2.0","method":"m","params":{"s":"${s}"}}`;
  for (const s of ['\\ud800', '\\udc00', '\\udfff', '\\ud800x', 'x\\ud800', '\\ud800\\u0041', '\\ud800\\ud800', '\\udc00\\ud800', '\\ud83d😀', '\\ud800\\n', '\\uDBFF"'.slice(0, -1)]) {
    it(`rejects lone surrogate "${s}"`, () => {
      rejects(str(s), 'invalid_request', /lone surrogate/);
    });
  }
  it('rejects a lone surrogate in a key and in a long string', () => {
    rejects(req(',"params":{"\\ud800":1}'), 'invalid_request', /lone surrogate/);
    rejects(str('x'.repeat(100) + '\\n'.repeat(5) + '\\udc01' + 'y'.repeat(50)), 'invalid_request', /lone surrogate/);
  });
  it('accepts valid pairs, in either hex case, and non-surrogate escapes', () => {
    const m = single(str('\\ud83d\\ude00 \\uD83D\\uDE00 \\u00e9 \\\\ud800 \\"')) as { params: { s: string } };
    assert.equal(m.params.s, '😀 😀 é \\ud800 "');
  });
});

describe('decodeBody: depth', () => {
  const nest = (d: number) => '{"jsonrpc":"2.0","method":"m","params":' + '{"a":'.repeat(d - 2) + '{}' + '}'.repeat(d - 2) + '}';
  it('accepts nesting of exactly maxDepth and rejects maxDepth + 1', () => {
    single(nest(L.maxDepth));
    rejects(nest(L.maxDepth + 1), 'invalid_request', `nesting exceeds maximum depth of ${L.maxDepth}`);
  });
  it('counts arrays and the batch array too', () => {
    single('{"jsonrpc":"2.0","method":"m","params":{"a":[[]]}}');
    rejects('{"jsonrpc":"2.0","method":"m","params":{"a":[[[]]]}}', 'invalid_request', /depth/);
    const d = dec('[{"jsonrpc":"2.0","method":"m","params":{"a":[]}}]');
    assert.equal(d.kind, 'batch');
    rejects('[{"jsonrpc":"2.0","method":"m","params":{"a":[[]]}}]', 'invalid_request', /depth/);
  });
  it('rejects very deep nesting without a stack overflow', () => {
    rejects('['.repeat(100_000) + ']'.repeat(100_000), 'invalid_request', /depth/, { ...L, maxBodyBytes: 1e6 });
  });
});

describe('decodeBody: ids', () => {
  it('accepts strings and integers within ±MAX_SAFE_INTEGER', () => {
    for (const id of ['"abc"', '""', '0', '-1', '42', String(Number.MAX_SAFE_INTEGER), String(-Number.MAX_SAFE_INTEGER), '"1.5"']) {
      const m = single(req('', id)) as { id: unknown };
      assert.deepEqual(m.id, JSON.parse(id));
    }
  });
  for (const id of ['1.5', '1.0', '1e3', '1E3', '1e+3', '10e-1', '-0', '-0.0', '9007199254740992', '-9007199254740992', '1e400', 'true', 'false', '{}', '[]', '[1]', '{"a":1}']) {
    it(`rejects id ${id}`, () => {
      rejects(req('', id), 'invalid_request');
    });
  }
  it('rejects null ids on requests, and on notifications that have one', () => {
    rejects(req('', 'null'), 'invalid_request', /must not be null/);
  });
  it('allows a null id only on error responses', () => {
    single('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
    rejects('{"jsonrpc":"2.0","id":null,"result":{}}', 'invalid_request', /null only in an error response/);
  });
  it('checks the id token in responses too', () => {
    single('{"jsonrpc":"2.0","id":7,"result":{}}');
    rejects('{"jsonrpc":"2.0","id":7.0,"result":{}}', 'invalid_request', /'id'/);
  });
  it('ignores "id" keys below the top level', () => {
    single(req(',"params":{"id":1.5,"arguments":{"id":1e3}}'));
  });
});

describe('decodeBody: numbers another parser would read differently', () => {
  it('rejects integers a double cannot hold exactly and overflowing numbers', () => {
    // String(2 ** 60) is '1152921504606847000': JS reads it as 2^60, Python as ...7000.
    const ns = ['12345678901234567890', '-9007199254740993', String(2 ** 60), '1' + '0'.repeat(400), '1e400', '-1E999', '1.5e308999'];
    for (const n of ns) {
      rejects(req(`,"params":{"n":${n}}`), 'invalid_request', /cannot be represented exactly/, ROOMY);
    }
  });
  it('accepts exactly representable big integers, decimals and underflow', () => {
    for (const n of [(2n ** 60n).toString(), (2n ** 64n).toString(), '9007199254740993.5', '0.1', '1e-400', '3.141592653589793238462643383279', '123456789012345', '1E2', '-0']) {
      const m = single(req(`,"params":{"n":${n}}`)) as { params: { n: number } };
      assert.equal(m.params.n, JSON.parse(n));
    }
  });
});

describe('decodeBody: JSON-RPC shape', () => {
  it('accepts requests, notifications and responses', () => {
    single(req(',"params":{"name":"x","arguments":{}}'));
    single('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    single('{"method":"m","jsonrpc":"2.0","params":{}}');
    single('{"jsonrpc":"2.0","id":"r1","result":{"tools":[]}}');
    single('{"jsonrpc":"2.0","id":"r1","result":null}');
    single('{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope","data":{"x":1}}}');
    single(' \n\t' + req() + '\r\n ');
  });
  const invalid: [string, string, RegExp][] = [
    ['missing jsonrpc', '{"id":1,"method":"m"}', /missing 'jsonrpc'/],
    ['jsonrpc 1.0', '{"jsonrpc":"1.0","id":1,"method":"m"}', /"2.0"/],
    ['jsonrpc as a number', '{"jsonrpc":2.0,"id":1,"method":"m"}', /"2.0"/],
    ['jsonrpc "2.0 "', '{"jsonrpc":"2.0 ","id":1,"method":"m"}', /"2.0"/],
    ['a non-string method', '{"jsonrpc":"2.0","id":1,"method":5}', /'method'/],
    ['a null method', '{"jsonrpc":"2.0","id":1,"method":null}', /'method'/],
    ['array params', req(',"params":[1,2]'), /'params'/],
    ['null params', req(',"params":null'), /'params'/],
    ['string params', req(',"params":"x"'), /'params'/],
    ['method with result', req(',"result":{}'), /must not carry/],
    ['method with error', req(',"error":{"code":1,"message":"x"}'), /must not carry/],
    ['result and error', '{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}', /both/],
    ['a response without id', '{"jsonrpc":"2.0","result":{}}', /must carry an 'id'/],
    ['neither request nor response', '{"jsonrpc":"2.0","id":1}', /neither/],
    ['an error that is not an object', '{"jsonrpc":"2.0","id":1,"error":"bad"}', /'error'/],
    ['an error without a message', '{"jsonrpc":"2.0","id":1,"error":{"code":1}}', /'error'/],
    ['an error with a float code', '{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}', /'error'/],
    ['a top-level number', '42', /JSON object/],
    ['a top-level string', '"x"', /JSON object/],
    ['a top-level null', 'null', /JSON object/],
    ['a top-level true', 'true', /JSON object/],
  ];
  for (const [name, body, re] of invalid) {
    it(`rejects ${name}`, () => {
      rejects(body, 'invalid_request', re);
    });
  }
  it('returns the parsed object itself', () => {
    const text = req(',"params":{"name":"x","arguments":{"a":[1,2,{"b":null}]}}');
    assert.deepEqual(single(text, ROOMY), JSON.parse(text));
  });
  it('ignores inherited properties (prototype pollution cannot make a message valid)', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.jsonrpc = '2.0';
    try {
      rejects('{"id":1,"method":"m"}', 'invalid_request', /missing 'jsonrpc'/);
    } finally {
      delete proto.jsonrpc;
    }
  });
});

describe('decodeBody: batches', () => {
  const a = req();
  const b = '{"jsonrpc":"2.0","method":"notifications/x"}';
  const c = '{"jsonrpc":"2.0","id":"z","result":{}}';
  it('returns each element with its exact source text', () => {
    const body = `[ ${a} ,\n\t${b}\r\n,${c}]`;
    const d = dec(body);
    assert.equal(d.kind, 'batch');
    if (d.kind !== 'batch') return;
    assert.deepEqual(
      d.items.map((i) => (i.ok ? i.raw : undefined)),
      [a, b, c],
    );
    assert.deepEqual(d.items.map((i) => (i.ok ? i.message : undefined)), [JSON.parse(a), JSON.parse(b), JSON.parse(c)]);
  });
  it('keeps multi-byte text and whitespace inside elements exact', () => {
    const e = '{ "jsonrpc" : "2.0" , "method" : "é✓😀" , "params" : { "s" : "a\\nb" } }';
    const d = dec(`[${e}]`);
    assert.ok(d.kind === 'batch' && d.items[0]!.ok && d.items[0].raw === e);
  });
  it('accepts exactly maxBatchSize elements and rejects one more', () => {
    const d = dec(`[${a},${a},${a}]`);
    assert.ok(d.kind === 'batch' && d.items.length === 3);
    rejects(`[${a},${a},${a},${a}]`, 'invalid_request', `Batch size 4 exceeds maximum of ${L.maxBatchSize}`);
  });
  it('rejects an empty batch', () => {
    rejects('[]', 'invalid_request', 'Empty batch is not allowed');
    rejects(' [ \n ] ', 'invalid_request', 'Empty batch is not allowed');
  });
  it('reports invalid elements individually, with their id when readable', () => {
    const body = `[${a},{"jsonrpc":"1.0","id":"x","method":"m"},{"jsonrpc":"2.0","id":2.5,"method":"m"},7]`;
    const d = dec(body, { ...L, maxBatchSize: 10 });
    assert.equal(d.kind, 'batch');
    if (d.kind !== 'batch') return;
    assert.equal(d.items[0]!.ok, true);
    const errs = d.items.slice(1).map((i) => (i.ok ? undefined : [i.id, i.error.kind]));
    assert.deepEqual(errs, [
      ['x', 'invalid_request'],
      [null, 'invalid_request'],
      [null, 'invalid_request'],
    ]);
  });
  it('holds element ids to plain integer spelling', () => {
    const d = dec(`[{"jsonrpc":"2.0","id":1e0,"method":"m"},{"jsonrpc":"2.0","id":  5,"method":"m"}]`);
    assert.ok(d.kind === 'batch');
    if (d.kind !== 'batch') return;
    assert.equal(d.items[0]!.ok, false);
    assert.equal(d.items[1]!.ok, true);
  });
  it('rejects nested batches element-wise', () => {
    const d = dec(`[[${a}]]`);
    assert.ok(d.kind === 'batch' && !d.items[0]!.ok);
  });
});

describe('validateMessage', () => {
  it('applies the same rules to parsed objects', () => {
    assert.deepEqual(validateMessage({ jsonrpc: '2.0', id: 1, method: 'm', params: {} }), { jsonrpc: '2.0', id: 1, method: 'm', params: {} });
    for (const bad of [
      null,
      [],
      'x',
      { jsonrpc: '2.0', id: 1.5, method: 'm' },
      { jsonrpc: '2.0', id: 2 ** 53, method: 'm' },
      { jsonrpc: '2.0', id: -0, method: 'm' },
      { jsonrpc: '2.0', id: null, method: 'm' },
      { jsonrpc: '2.0', id: 1, method: 'm', params: [] },
      { jsonrpc: '2.0', id: 1 },
      { id: 1, method: 'm' },
    ]) {
      assert.throws(() => validateMessage(bad), (e: unknown) => e instanceof GovError && e.kind === 'invalid_request', JSON.stringify(bad));
    }
  });
});
