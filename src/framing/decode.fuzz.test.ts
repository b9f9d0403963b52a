// Property tests: decodeBody against JSON.parse and against a small, independent
// reference reader that knows which texts other parsers could read differently.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GovError } from '../core/errors.js';
import { decodeBody } from './decode.js';

const LIMITS = { maxBodyBytes: 1 << 20, maxDepth: 4, maxBatchSize: 50 };

function attempt(buf: Uint8Array): { ok: true; value: unknown } | { ok: false; err: GovError } {
  try {
    const d = decodeBody(buf, LIMITS);
    return { ok: true, value: d.kind === 'single' ? d.message : d.items };
  } catch (e) {
    if (!(e instanceof GovError)) throw new Error(`non-GovError thrown: ${String(e)}`);
    assert.ok(e.kind === 'parse_error' || e.kind === 'invalid_request', e.kind);
    return { ok: false, err: e };
  }
}

/** Recursive-descent reader of valid JSON text, collecting differential hazards. */
function hazards(text: string): { dup: boolean; lone: boolean; inexact: boolean; nulKey: boolean; depth: number } {
  const out = { dup: false, lone: false, inexact: false, nulKey: false, depth: 0 };
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    const m = /"(?:[^"\\]|\\.)*"/y;
    m.lastIndex = i;
    const tok = m.exec(text)![0];
    i += tok.length;
    const s = JSON.parse(tok) as string;
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)) out.lone = true;
    return s;
  };
  const value = (d: number): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      out.depth = Math.max(out.depth, d + 1);
      i++;
      const keys = new Set<string>();
      ws();
      if (text[i] === (c === '{' ? '}' : ']')) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          ws();
          const k = str();
          if (keys.has(k)) out.dup = true;
          if (k.includes('\0') && /\\/.test(text)) out.nulKey = true;
          keys.add(k);
          ws();
          i++; // ':'
        }
        value(d + 1);
        ws();
        if (text[i++] !== ',') return; // '}' or ']'
      }
    }
    if (c === '"') {
      str();
      return;
    }
    const m = /-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false|null/y;
    m.lastIndex = i;
    const tok = m.exec(text)![0];
    i += tok.length;
    if (/^-?[0-9]/.test(tok)) {
      const v = Number(tok);
      if (!Number.isFinite(v) || (/^-?[0-9]+$/.test(tok) && BigInt(tok) !== BigInt(v))) out.inexact = true;
    }
  };
  value(0);
  return out;
}

// JSON text with the hazards in reach: a small key alphabet (duplicates), escapes that may
// spell the same key or a lone surrogate, big and odd numbers, random whitespace.
const wsArb = fc.constantFrom('', '', ' ', '\n', '\t ', '\r\n');
const keyArb = fc
  .tuple(fc.constantFrom('id', 'name', 'a', 'b', 'method', 'é', '', 'x\u0000', 'a_key_longer_than_sixteen_bytes'), fc.boolean())
  .map(([k, esc]) => (esc && k.length > 0 ? '"' + [...k].map((ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0')).join('') + '"' : JSON.stringify(k)));
const strArb = fc.oneof(
  fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 4 }).map((s) => JSON.stringify(s)),
  // long strings (the scanner's indexOf path) with escapes anywhere
  fc
    .array(
      fc.oneof(
        fc.string({ maxLength: 20 }).map((x) => JSON.stringify(x).slice(1, -1)),
        fc.constantFrom('\\ud800', '\\udc00', '\\ud83d\\ude00', '\\"', '\\\\', '\\n', '\\u0041', 'x'.repeat(17)),
      ),
      { maxLength: 6 },
    )
    .map((parts) => '"' + parts.join('') + '"'),
  fc.constantFrom('"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"\\ud83d"', '"a\\nb\\"c"', '"' + 'long '.repeat(10) + '\\n' + '"'),
);
const numArb = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.constantFrom('1e400', '-0', '1.0', '1e3', '9007199254740993', '0.1', '1E-400'),
);
const { json: jsonText } = fc.letrec<{ json: string; obj: string; arr: string }>((tie) => ({
  json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, strArb, numArb, fc.constantFrom('true', 'false', 'null'), tie('obj'), tie('arr')),
  obj: fc
    .array(fc.tuple(wsArb, keyArb, wsArb, tie('json'), wsArb), { maxLength: 5 })
    .map((ms) => '{' + ms.map(([w1, k, w2, v, w3]) => `${w1}${k}${w2}:${v}${w3}`).join(',') + '}'),
  arr: fc.array(fc.tuple(wsArb, tie('json')), { maxLength: 4 }).map((vs) => '[' + vs.map(([w, v]) => w + v).join(',') + ']'),
}));
const idArb = fc.oneof(fc.integer().map(String), fc.string({ maxLength: 4 }).map((s) => JSON.stringify(s)), numArb, fc.constant('null'));
const messageText = fc
  .tuple(idArb, fc.constantFrom('"tools/call"', '"tools/list"'), jsonText, fc.boolean())
  .map(([id, method, params, asObj]) => `{"jsonrpc":"2.0","id":${id},"method":${method},"params":${asObj && !params.startsWith('{') ? '{"v":' + params + '}' : params}}`);

describe('decodeBody (properties)', () => {
  it('only ever throws GovError, for arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => void attempt(b)), { numRuns: 2000 });
  });

  it('only ever throws GovError, for mutated messages', () => {
    const base = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,"\\u00e9",{"b":null}]}}}';
    fc.assert(
      fc.property(fc.nat(base.length), fc.nat(base.length), fc.string({ unit: 'binary', maxLength: 3 }), (from, to, ins) => {
        const text = base.slice(0, Math.min(from, to)) + ins + base.slice(Math.max(from, to));
        const r = attempt(Buffer.from(text));
        if (r.ok) assert.deepEqual(r.value, JSON.parse(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts valid JSON-RPC from random JSON values and returns what JSON.parse returns', () => {
    const msg = fc.record({
      jsonrpc: fc.constant('2.0'),
      id: fc.oneof(fc.string(), fc.integer()),
      method: fc.string(),
      params: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })),
    });
    fc.assert(
      fc.property(msg, (m) => {
        const text = JSON.stringify(m);
        const r = attempt(Buffer.from(text));
        const h = hazards(text);
        // JSON.stringify may print doubles as inexact integers; depth is limited on purpose
        if (h.inexact || h.depth > LIMITS.maxDepth) return;
        assert.ok(r.ok, r.ok ? '' : `${r.err.message} for ${text}`);
        assert.deepEqual(r.value, JSON.parse(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('for random JSON values: a GovError or the value JSON.parse gives', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        const r = attempt(Buffer.from(text));
        if (r.ok) assert.deepEqual(r.value, Array.isArray(v) ? r.value : JSON.parse(text));
        else assert.equal(r.err.kind, 'invalid_request'); // it is valid JSON
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects exactly the texts a differential reader flags, and returns JSON.parse values otherwise', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(messageText, (text) => {
        const r = attempt(Buffer.from(text));
        const h = hazards(text);
        const flagged: string[] = [];
        if (h.dup) flagged.push('duplicate key');
        if (h.lone) flagged.push('lone surrogate');
        if (h.inexact) flagged.push('cannot be represented exactly');
        if (h.nulKey) flagged.push('NUL');
        if (h.depth > LIMITS.maxDepth) flagged.push('maximum depth');
        for (const f of flagged.length > 0 ? flagged : [r.ok ? 'accepted' : 'rejected by shape']) seen.set(f, (seen.get(f) ?? 0) + 1);
        if (flagged.length > 0) {
          assert.ok(!r.ok, `accepted despite ${flagged.join(', ')}: ${text}`);
          assert.ok(
            flagged.some((f) => r.err.details?.includes(f)),
            `${text}: expected one of ${flagged.join(', ')}, got ${r.err.details}`,
          );
          return;
        }
        if (r.ok) assert.deepEqual(r.value, JSON.parse(text));
        else assert.match(r.err.details ?? '', /'id'|'params'/, `${text}: ${r.err.details}`);
      }),
      { numRuns: 3000 },
    );
    // the generator must actually reach every hazard, and produce acceptable texts too
    for (const f of ['duplicate key', 'lone surrogate', 'cannot be represented exactly', 'NUL', 'maximum depth', 'accepted']) {
      assert.ok((seen.get(f) ?? 0) >= 10, `generator rarely produced '${f}': ${JSON.stringify([...seen])}`);
    }
  });

  it('slices batch elements so that each parses to the element JSON.parse sees', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(messageText, wsArb, wsArb), { minLength: 1, maxLength: 6 }), (els) => {
        const text = '[' + els.map(([m, a, b]) => a + m + b).join(',') + ']';
        const r = attempt(Buffer.from(text));
        if (!r.ok) return;
        const parsed = JSON.parse(text) as unknown[];
        const items = r.value as { ok: boolean; raw?: string; message?: unknown }[];
        items.forEach((it, k) => {
          if (!it.ok) return;
          assert.equal(it.raw, els[k]![0]);
          assert.deepEqual(JSON.parse(it.raw!), parsed[k]);
          assert.deepEqual(it.message, parsed[k]);
        });
      }),
      { numRuns: 500 },
    );
  });
});
