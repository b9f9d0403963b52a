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

test('bearerMatcher: the scheme in any case, the token exactly', async () => {
  const { bearerMatcher, bearerCredential } = await import('./secret.js');
  const m = bearerMatcher('s3cret-token');
  for (const ok of ['Bearer s3cret-token', 'bearer s3cret-token', 'BEARER s3cret-token', 'BeArEr \ts3cret-token ', '  Bearer s3cret-token']) assert.equal(m(ok), true, ok);
  for (const bad of ['Bearer S3CRET-TOKEN', 'Basic s3cret-token', 's3cret-token', 'Bearer', 'Bearer ', 'Bearers3cret-token', 'Bearer s3cret-token x', undefined]) assert.equal(m(bad), false, String(bad));
  assert.equal(bearerCredential('bearer abc'), 'abc');
  assert.equal(bearerCredential('Token abc'), undefined);
  assert.equal(bearerMatcher('')('Bearer '), false);
});
