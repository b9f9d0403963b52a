import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityKey, personOf, samePerson } from './identity.js';

test('identityKey folds case, compatibility forms, invisible characters and lookalikes to one key', () => {
  for (const spelling of ['agent-1', 'Agent-1', 'AGENT-1', 'agent-1\u200b', '\u200dagent\u00ad-1', 'аgent-1' /* Cyrillic а */, 'ａｇｅｎｔ－１' /* fullwidth */, 'agent\u20101', 'agεnt-1' /* Greek ε */, ' agent-1 ', 'age\u0301nt-1']) {
    assert.equal(identityKey(spelling), 'agent-1', JSON.stringify(spelling));
  }
  assert.equal(identityKey('Straße'), 'strasse');
  assert.notEqual(identityKey('alice'), identityKey('bob'));
  assert.equal(identityKey(identityKey('Аlice\u200b')), identityKey('Аlice\u200b'), 'idempotent');
});

test('personOf drops the channel a vote came through, and only that', () => {
  assert.equal(personOf('cli:alice'), 'alice');
  assert.equal(personOf('api:Alice'), 'alice');
  assert.equal(personOf('console:аlice'), 'alice');
  assert.equal(personOf('CLI:alice'), 'alice');
  assert.equal(personOf('slack:U123ABC'), 'u123abc');
  assert.equal(personOf('alice'), 'alice');
  assert.equal(personOf('webhook:ops'), 'webhook:ops', 'a webhook is its own actor, not a person named ops');
  assert.equal(personOf('system:auto-approve'), 'system:auto-approve');
});

test('samePerson sees the requester behind any prefix or respelling', () => {
  for (const voter of ['agent-1', 'Agent-1', 'agent-1\u200b', 'аgent-1', 'x:agent-1', 'api:x:agent-1', 'cli:AGENT-1']) {
    assert.ok(samePerson(voter, 'agent-1'), JSON.stringify(voter));
  }
  assert.ok(samePerson('alice', 'user:alice'), 'a prefixed principal is still alice');
  assert.ok(!samePerson('alice', 'agent-1'));
  assert.ok(!samePerson('api:bob', 'agent-1'));
});
