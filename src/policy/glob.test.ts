import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileGlob, GlobError, globError } from './glob.js';

const matches = (pattern: string, subject: string): boolean => compileGlob(pattern)(subject);

describe('glob dialect (Rust glob 0.3, default MatchOptions)', () => {
  it('matches literals exactly and case-sensitively', () => {
    assert.equal(matches('delete_user', 'delete_user'), true);
    assert.equal(matches('delete_user', 'Delete_user'), false);
    assert.equal(matches('delete_user', 'delete_user2'), false);
    assert.equal(matches('', ''), true);
    assert.equal(matches('', 'a'), false);
  });

  it('`*` matches any run of characters, including `/`', () => {
    assert.equal(matches('delete_*', 'delete_'), true);
    assert.equal(matches('delete_*', 'delete_a/b/c'), true);
    assert.equal(matches('*_unsafe', 'x/y_unsafe'), true);
    assert.equal(matches('file://*', 'file:///etc/passwd'), true);
    assert.equal(matches('a*b*c', 'a/x/b/y/c'), true);
    assert.equal(matches('a*b*c', 'acb'), false);
    assert.equal(matches('*', ''), true);
    assert.equal(matches('*', 'any/thing'), true);
    assert.equal(matches('*mid*', 'xxmidyy'), true);
    assert.equal(matches('*mid*', 'xxmiyy'), false);
  });

  it('`?` matches exactly one character (a code point), `/` included', () => {
    assert.equal(matches('c?t', 'cat'), true);
    assert.equal(matches('c?t', 'c/t'), true);
    assert.equal(matches('c?t', 'ct'), false);
    assert.equal(matches('c?t', 'caat'), false);
    assert.equal(matches('?', '😀'), true);
    assert.equal(matches('a?b', 'a😀b'), true);
  });

  it('classes, ranges and negation', () => {
    assert.equal(matches('[abc]x', 'bx'), true);
    assert.equal(matches('[abc]x', 'dx'), false);
    assert.equal(matches('v[0-9]', 'v7'), true);
    assert.equal(matches('v[0-9]', 'va'), false);
    assert.equal(matches('k[!e]tteh', 'kitteh'), true);
    assert.equal(matches('k[!e]tteh', 'ketteh'), false);
    assert.equal(matches('[a-cx-z]', 'y'), true);
    assert.equal(matches('[abc-]', '-'), true); // `-` at the end is a member
    assert.equal(matches('[z-a]', 'm'), false); // a reversed range matches nothing
    assert.equal(matches('[!z-a]', 'm'), true);
    assert.equal(matches('[]]', ']'), true); // `]` first is a member
    assert.equal(matches('[!]]', 'a'), true);
    assert.equal(matches('[!]]', ']'), false);
    assert.equal(matches('[/]', '/'), true);
  });

  it('escapes a metacharacter by brackets', () => {
    assert.equal(matches('[*]', '*'), true);
    assert.equal(matches('[*]', 'a'), false);
    assert.equal(matches('a[?]', 'a?'), true);
    assert.equal(matches('a[?]', 'ab'), false);
    assert.equal(matches('[[]x', '[x'), true);
  });

  it('has no brace alternatives and no backslash escapes', () => {
    assert.equal(matches('{a,b}', '{a,b}'), true);
    assert.equal(matches('{a,b}', 'a'), false);
    assert.equal(matches('a\\*', 'a\\xyz'), true); // `\` is an ordinary character
  });

  it('`**` as a whole path component', () => {
    assert.equal(matches('**', 'anything/at/all'), true);
    assert.equal(matches('**/b', 'b'), true);
    assert.equal(matches('**/b', 'x/y/b'), true);
    assert.equal(matches('**/b', 'xb'), false);
    assert.equal(matches('a/**', 'a/'), true);
    assert.equal(matches('a/**', 'a/x/y'), true);
    assert.equal(matches('a/**', 'a'), false);
    assert.equal(matches('a/**/b', 'a/b'), true);
    assert.equal(matches('a/**/b', 'a/x/y/b'), true);
    assert.equal(matches('a/**/b', 'a/xb'), false);
    assert.equal(matches('a/**/', 'a/x'), true); // the crate consumes the `/` after `**`
  });

  it('rejects invalid patterns with the crate wording and position', () => {
    const cases: [string, string][] = [
      ['a**', 'Pattern syntax error near position 0: recursive wildcards must form a single path component'],
      ['**a', 'Pattern syntax error near position 2: recursive wildcards must form a single path component'],
      ['a/**b', 'Pattern syntax error near position 4: recursive wildcards must form a single path component'],
      ['***', 'Pattern syntax error near position 2: wildcards are either regular `*` or recursive `**`'],
      ['[invalid', 'Pattern syntax error near position 0: invalid range pattern'],
      ['x[', 'Pattern syntax error near position 1: invalid range pattern'],
      ['[]', 'Pattern syntax error near position 0: invalid range pattern'],
      ['[!]', 'Pattern syntax error near position 0: invalid range pattern'],
      ['[!ab', 'Pattern syntax error near position 0: invalid range pattern'],
    ];
    for (const [pattern, reason] of cases) {
      assert.throws(
        () => compileGlob(pattern),
        (e: unknown) => e instanceof GlobError && e.reason === reason && e.message === `invalid glob pattern '${pattern}': ${reason}`,
        pattern,
      );
      assert.equal(globError(pattern)?.reason, reason);
    }
    assert.equal(globError('ok_*'), undefined);
  });
});

// ---- a direct transliteration of glob 0.3's Pattern::new / matches_from, as an oracle ----

type RTok =
  | { k: 'char'; c: number }
  | { k: 'any' }
  | { k: 'seq' }
  | { k: 'rseq' }
  | { k: 'in' | 'out'; spec: [number, number][] };

function rustNew(pattern: string): RTok[] | { pos: number; msg: string } {
  const chars = Array.from(pattern);
  const tokens: RTok[] = [];
  const specs = (s: string[]): [number, number][] => {
    const out: [number, number][] = [];
    for (let i = 0; i < s.length; ) {
      if (i + 3 <= s.length && s[i + 1] === '-') {
        out.push([s[i]!.codePointAt(0)!, s[i + 2]!.codePointAt(0)!]);
        i += 3;
      } else {
        out.push([s[i]!.codePointAt(0)!, s[i]!.codePointAt(0)!]);
        i += 1;
      }
    }
    return out;
  };
  let i = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === '?') {
      tokens.push({ k: 'any' });
      i++;
    } else if (c === '*') {
      const old = i;
      while (i < chars.length && chars[i] === '*') i++;
      const count = i - old;
      if (count > 2) return { pos: old + 2, msg: 'wildcards are either regular `*` or recursive `**`' };
      if (count === 2) {
        if (i === 2 || chars[i - count - 1] === '/') {
          if (i < chars.length && chars[i] === '/') i++;
          else if (i !== chars.length) return { pos: i, msg: 'recursive wildcards must form a single path component' };
        } else {
          return { pos: old - 1, msg: 'recursive wildcards must form a single path component' };
        }
        if (!(tokens.length > 1 && tokens[tokens.length - 1]!.k === 'rseq')) tokens.push({ k: 'rseq' });
      } else {
        tokens.push({ k: 'seq' });
      }
    } else if (c === '[') {
      if (i + 4 <= chars.length && chars[i + 1] === '!') {
        const j = chars.slice(i + 3).indexOf(']');
        if (j >= 0) {
          tokens.push({ k: 'out', spec: specs(chars.slice(i + 2, i + 3 + j)) });
          i += j + 4;
          continue;
        }
      } else if (i + 3 <= chars.length && chars[i + 1] !== '!') {
        const j = chars.slice(i + 2).indexOf(']');
        if (j >= 0) {
          tokens.push({ k: 'in', spec: specs(chars.slice(i + 1, i + 2 + j)) });
          i += j + 3;
          continue;
        }
      }
      return { pos: i, msg: 'invalid range pattern' };
    } else {
      tokens.push({ k: 'char', c: c.codePointAt(0)! });
      i++;
    }
  }
  return tokens;
}

const SUB = 0;
const ENTIRE = 1;
const MATCH = 2;

function rustMatchesFrom(tokens: RTok[], followsSep: boolean, file: number[], f: number, ti: number): number {
  for (let t = ti; t < tokens.length; t++) {
    const tok = tokens[t]!;
    if (tok.k === 'seq' || tok.k === 'rseq') {
      let r = rustMatchesFrom(tokens, followsSep, file, f, t + 1);
      if (r !== SUB) return r;
      while (f < file.length) {
        const c = file[f++]!;
        followsSep = c === 0x2f;
        if (tok.k === 'rseq' && !followsSep) continue;
        r = rustMatchesFrom(tokens, followsSep, file, f, t + 1);
        if (r !== SUB) return r;
      }
    } else {
      if (f >= file.length) return ENTIRE;
      const c = file[f++]!;
      const inSpec = (spec: [number, number][]): boolean => spec.some(([lo, hi]) => c >= lo && c <= hi);
      const ok = tok.k === 'any' ? true : tok.k === 'char' ? tok.c === c : tok.k === 'in' ? inSpec(tok.spec) : !inSpec(tok.spec);
      if (!ok) return SUB;
      followsSep = c === 0x2f;
    }
  }
  return f >= file.length ? MATCH : SUB;
}

const rustMatches = (tokens: RTok[], s: string): boolean =>
  rustMatchesFrom(tokens, true, Array.from(s, (c) => c.codePointAt(0)!), 0, 0) === MATCH;

describe('glob properties', () => {
  const patternChars = fc.constantFrom('a', 'b', '/', '*', '?', '[', ']', '!', '-', 'é');
  const subjectChars = fc.constantFrom('a', 'b', '/', '-', '!', '*', ']', 'é', '😀');
  const pattern = fc.array(patternChars, { maxLength: 9 }).map((a) => a.join(''));
  const subject = fc.array(subjectChars, { maxLength: 9 }).map((a) => a.join(''));

  it('agrees with a transliteration of the Rust crate on validity, errors and matches', () => {
    fc.assert(
      fc.property(pattern, fc.array(subject, { minLength: 1, maxLength: 8 }), (p, subjects) => {
        const oracle = rustNew(p);
        if (!Array.isArray(oracle)) {
          const e = globError(p);
          assert.ok(e, `expected '${p}' to be invalid`);
          assert.equal(e.reason, `Pattern syntax error near position ${oracle.pos}: ${oracle.msg}`);
          return;
        }
        const m = compileGlob(p);
        for (const s of subjects) assert.equal(m(s), rustMatches(oracle, s), `'${p}' vs '${s}'`);
      }),
      { numRuns: 3000 },
    );
  });

  const plain = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !/[*?[\]]/.test(s));

  it('a pattern without metacharacters matches only itself', () => {
    fc.assert(
      fc.property(plain, fc.string({ maxLength: 12 }), (p, s) => {
        const m = compileGlob(p);
        assert.equal(m(p), true);
        assert.equal(m(s), s === p);
      }),
    );
  });

  it('`prefix*` matches exactly the strings starting with prefix', () => {
    fc.assert(
      fc.property(plain, fc.string({ maxLength: 12 }), (prefix, rest) => {
        const m = compileGlob(`${prefix}*`);
        assert.equal(m(prefix + rest), true);
        assert.equal(m(rest), rest.startsWith(prefix));
      }),
    );
  });

  it('`*suffix` matches exactly the strings ending with suffix', () => {
    fc.assert(
      fc.property(plain, fc.string({ maxLength: 12 }), (suffix, rest) => {
        const m = compileGlob(`*${suffix}`);
        assert.equal(m(rest + suffix), true);
        assert.equal(m(rest), rest.endsWith(suffix));
      }),
    );
  });

  it('bracket-escaping any string yields a pattern matching only that string', () => {
    const escape = (s: string): string => s.replace(/[*?[\]]/g, (c) => `[${c}]`);
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (s, other) => {
        const m = compileGlob(escape(s));
        assert.equal(m(s), true);
        assert.equal(m(other), other === s);
      }),
    );
  });

  it('stays fast on adversarial subjects (no exponential backtracking)', () => {
    const m = compileGlob('*a*a*a*a*a*a*a*b');
    const started = process.hrtime.bigint();
    assert.equal(m('a'.repeat(5000)), false);
    assert.ok(process.hrtime.bigint() - started < 2_000_000_000n);
  });
});
