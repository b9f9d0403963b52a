import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EnvExpandError, expandEnv } from './env-expand.js';

const missingOf = (f: () => unknown): EnvExpandError => {
  try {
    f();
  } catch (e) {
    if (e instanceof EnvExpandError) return e;
    throw e;
  }
  assert.fail('expected EnvExpandError');
};

describe('expandEnv', () => {
  it('expands ${NAME} and ${NAME:-default}', () => {
    const env = { HOST: 'mcp', PORT: '3000' };
    assert.equal(expandEnv('url: http://${HOST}:${PORT}/mcp', env), 'url: http://mcp:3000/mcp');
    assert.equal(expandEnv('url: ${UNSET:-http://localhost:3000}', env), 'url: http://localhost:3000');
    assert.equal(expandEnv('a: ${UNSET:-}', env), 'a: ');
    assert.equal(expandEnv('a: ${UNSET:-two words, & more}', env), 'a: two words, & more');
  });

  it('uses a set-but-empty variable as empty, not the default', () => {
    assert.equal(expandEnv('a: "${EMPTY:-fallback}"', { EMPTY: '' }), 'a: ""');
    assert.equal(expandEnv('a: "${EMPTY}"', { EMPTY: '' }), 'a: ""');
  });

  it('leaves text that is not a reference alone', () => {
    const env = {};
    for (const s of ['cost: $5', 'a: $HOME', 'a: ${1BAD}', 'a: ${-x}', 'a: ${', 'a: ${A', 'a: $${']) {
      assert.equal(expandEnv(s, env), s);
    }
  });

  it('the default runs to the first }', () => {
    assert.equal(expandEnv('a: ${X:-a}b}', {}), 'a: ab}');
  });

  it('does not insert the value back into the scan (no recursive expansion)', () => {
    assert.equal(expandEnv('a: ${A}', { A: '${B}' }), 'a: ${B}');
    assert.equal(expandEnv('a: ${A} # ${B}', { A: '"x' }), 'a: "x # ${B}');
  });

  it('reports an unset variable with its line and column, in the original wording', () => {
    const e = missingOf(() => expandEnv('schema: 1\nsources:\n  - url: ${UPSTREAM_URL}\n', {}));
    assert.deepEqual(e.missing, [{ name: 'UPSTREAM_URL', line: 3, column: 10 }]);
    assert.equal(e.message, "environment variable 'UPSTREAM_URL' not set (required for field 'configuration') at line 3, column 10");
  });

  it('reports every unset variable', () => {
    const e = missingOf(() => expandEnv('a: ${A}\nb: ${B} ${C:-c} ${D}\n', {}));
    assert.deepEqual(e.missing.map((m) => [m.name, m.line, m.column]), [['A', 1, 4], ['B', 2, 4], ['D', 2, 17]]);
  });

  it('skips comments: whole-line, trailing, indented', () => {
    const text = '# ${A}\n  # ${B}\nkey: v # ${C}\nkey2: v\t# ${D}\n';
    assert.equal(expandEnv(text, {}), text);
  });

  it('a # inside a value or inside quotes is not a comment', () => {
    const env = { A: 'x' };
    assert.equal(expandEnv('url: http://h/#${A}', env), 'url: http://h/#x');
    assert.equal(expandEnv('k: "a # ${A}"', env), 'k: "a # x"');
    assert.equal(expandEnv("k: 'it''s # ${A}'", env), "k: 'it''s # x'");
    assert.equal(expandEnv('k: "q\\" # ${A}"', env), 'k: "q\\" # x"');
    assert.equal(expandEnv('k: ["a", "# ${A}"]', env), 'k: ["a", "# x"]');
    assert.throws(() => expandEnv('k: "a # ${UNSET}"', {}), EnvExpandError);
  });

  it('a quote inside a plain scalar does not hide a later comment', () => {
    assert.equal(expandEnv("k: don't # ${UNSET}", {}), "k: don't # ${UNSET}");
  });

  it('a comment ends at the end of its line', () => {
    assert.equal(expandEnv('# ${A}\nk: ${A}', { A: 'v' }), '# ${A}\nk: v');
  });

  it('reads only own properties of the env object', () => {
    assert.throws(() => expandEnv('a: ${constructor}', {}), EnvExpandError);
  });

  it('defaults to process.env', () => {
    process.env.TG_ENV_EXPAND_TEST = 'yes';
    try {
      assert.equal(expandEnv('a: ${TG_ENV_EXPAND_TEST}'), 'a: yes');
    } finally {
      delete process.env.TG_ENV_EXPAND_TEST;
    }
  });

  it('text without references comes back unchanged', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!s.includes('${'));
        assert.equal(expandEnv(s, {}), s);
      }),
    );
  });
});
