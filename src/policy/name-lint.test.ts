import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BASE, parse } from './config-testkit.js';
import { lintNameGlobs } from './name-lint.js';

const config = (rules: string, extra = ''): ReturnType<typeof parse> =>
  parse(BASE.replace('    url: http://localhost:3000\n', `    url: http://localhost:3000\n${extra}`) + `  rules:\n${rules}`);

describe('validate: globs a name variant slips past', () => {
  it('under names: exact, one line naming the case-sensitive denials and a variant that passes', () => {
    const w = lintNameGlobs(config(`    - match: "delete_*"\n      action: deny\n    - match: "read_*"\n      action: forward\n`));
    assert.equal(w.length, 1);
    assert.match(w[0]!, /'delete_\*'/);
    assert.match(w[0]!, /Delete_x/);
    assert.match(w[0]!, /names: casefold/);
    assert.doesNotMatch(w[0]!, /read_/); // an allow rule fails closed on a variant: not worth a warning
  });

  it('says nothing about case under names: casefold', () => {
    const c = parse(BASE + `  names: casefold\n  rules:\n    - match: "delete_*"\n      action: deny\n`);
    assert.deepEqual(lintNameGlobs(c), []);
  });

  it('warns about non-ASCII and invisible characters in a glob', () => {
    const w = lintNameGlobs(config(`    - match: "d\u0435lete_*"\n      action: deny\n`));
    assert.ok(w.some((x) => x.includes('U+0435') && x.includes('not stopped')), w.join('\n'));
  });

  it('tells how a URI glob is matched and what after a wildcard cannot be canonicalised', () => {
    const w = lintNameGlobs(config(`    - match: "DEMO://resource/*/../Secret"\n      action: deny\n`));
    assert.ok(w.some((x) => x.includes("is matched as 'demo://resource/*/../Secret'")), w.join('\n'));
    assert.ok(w.some((x) => x.includes('after its first wildcard')), w.join('\n'));
    assert.ok(!w.some((x) => x.includes('governance.names is exact')), 'URI globs are not name globs');
  });

  it('is quiet for a config with nothing to say', () => {
    assert.deepEqual(lintNameGlobs(config(`    - match: "demo://resource/*"\n      action: deny\n    - match: "*"\n      action: forward\n`)), []);
    // a path is case-sensitive: capitals after a wildcard are not a finding; %2F is canonical
    assert.deepEqual(lintNameGlobs(config(`    - match: "file:///*/Documents/a%2Fb*"\n      action: deny\n`)), []);
  });
});
