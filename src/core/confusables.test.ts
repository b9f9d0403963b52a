import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { foldConfusables, foldName, skeleton, suspiciousCharacters } from './confusables.js';

describe('confusables', () => {
  it('folds case the way case-folding servers compare', () => {
    assert.equal(foldName('Delete_User'), 'delete_user');
    assert.equal(foldName('ＤＥＬＥＴＥ'), 'delete');
    assert.equal(foldName('ſtraße'), 'strasse');
    assert.equal(foldName('del\u200bete'), 'delete');
  });

  it('skeletons ignore separators, marks and confusable letters', () => {
    assert.equal(skeleton('tools/call'), 'toolscall');
    assert.equal(skeleton('T\u043e\u043eLS . c\u0430ll'), 'toolscall');
    assert.equal(skeleton('to\u0301ols_call'), 'toolscall');
    assert.notEqual(skeleton('tools/list'), skeleton('tools/call'));
  });

  it('names the characters a person would misread', () => {
    assert.deepEqual(suspiciousCharacters('delete_*'), []);
    assert.deepEqual(suspiciousCharacters('d\u0435lete\u200b'), ['U+0435', 'U+200B']);
  });
});

describe('foldConfusables (identities keep their separators)', () => {
  it('maps lookalikes and never an ASCII character', () => {
    const ascii = 'abcdefghijklmnopqrstuvwxyz0123456789-._:@ ';
    assert.equal(foldConfusables(ascii), ascii);
    assert.equal(foldConfusables(foldName('ſtraße')), 'strasse');
    assert.equal(foldConfusables('аgеnt\u20111'), 'agent-1');
    assert.equal(foldConfusables('мαх'), 'max');
  });

  it('agrees with skeleton on every letter it maps', () => {
    for (const s of ['аgеnt', 'οреn', 'һеlр', 'ѕеcrеt']) assert.equal(skeleton(foldConfusables(s)), skeleton(s), s);
  });
});
