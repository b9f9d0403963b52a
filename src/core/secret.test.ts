import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secretMatcher } from './secret.js';

test('secretMatcher: only the exact secret matches', () => {
  const m = secretMatcher('s3cret-token');
  assert.equal(m('s3cret-token'), true);
  for (const wrong of ['s3cret-tokeN', 's3cret-toke', 's3cret-token ', ' s3cret-token', 'S3CRET-TOKEN', '', 'x'.repeat(1000)]) assert.equal(m(wrong), false, wrong);
  assert.equal(m(undefined), false);
});

test('secretMatcher: an empty secret matches nothing, not even an empty presentation', () => {
  const m = secretMatcher('');
  assert.equal(m(''), false);
  assert.equal(m(undefined), false);
  assert.equal(m('anything'), false);
});
