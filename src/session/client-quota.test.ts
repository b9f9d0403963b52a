import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientQuota, StreamLease, StreamQuota, clientKey, type CapacityReason } from './client-quota.js';
import type { Principal } from '../core/policy-engine.js';

const principal: Principal = { id: 'agent', namespace: 'ns', serviceAccount: 'sa', roles: [], labels: {} };

test('at the cap a client still gets a slot; past it it is refused and the refusal counted', () => {
  const refused: CapacityReason[] = [];
  const q = new ClientQuota(3, 'stdio_sessions_per_client', (r) => refused.push(r));
  const leases = [q.acquire('a'), q.acquire('a'), q.acquire('a')];
  assert.ok(leases.every((l) => l !== undefined), 'the third (at the cap) is granted');
  assert.equal(q.count('a'), 3);
  assert.equal(q.acquire('a'), undefined, 'the fourth is refused');
  assert.equal(q.acquire('a'), undefined);
  assert.deepEqual(refused, ['stdio_sessions_per_client', 'stdio_sessions_per_client']);
  assert.equal(q.count('a'), 3, 'a refusal takes nothing');
});

test('one client at its cap does not limit another', () => {
  const q = new ClientQuota(1, 'streams_per_client');
  assert.ok(q.acquire('a'));
  assert.equal(q.acquire('a'), undefined);
  assert.ok(q.acquire('b'), 'another key has its own share');
  assert.equal(q.keys, 2);
});

test('release gives the slot back once, however often it is called; a key at zero is forgotten', () => {
  const q = new ClientQuota(2, 'streams_per_session');
  const a = q.acquire('a')!;
  const b = q.acquire('a')!;
  assert.equal(q.acquire('a'), undefined);
  a.release();
  a.release();
  a.release();
  assert.equal(q.count('a'), 1, 'a repeated release does not free a slot it no longer holds');
  const c = q.acquire('a');
  assert.ok(c, 'the freed slot is usable');
  assert.equal(q.acquire('a'), undefined, 'and only that one');
  b.release();
  c!.release();
  assert.equal(q.count('a'), 0);
  assert.equal(q.keys, 0, 'nothing kept for a client holding nothing');
});

test('a cap of one: acquire, refuse, release, acquire again (no client is locked out for good)', () => {
  const q = new ClientQuota(1, 'stdio_sessions_per_client');
  for (let i = 0; i < 5; i++) {
    const l = q.acquire('x');
    assert.ok(l, `round ${i}`);
    assert.equal(q.acquire('x'), undefined);
    l!.release();
  }
  assert.equal(q.keys, 0);
});

test('clientKey: the principal and the peer address, so two hosts of one principal are two clients', () => {
  assert.equal(clientKey(principal, '127.0.0.1'), 'ns/agent@127.0.0.1');
  assert.notEqual(clientKey(principal, '127.0.0.1'), clientKey(principal, '127.0.0.2'));
  assert.notEqual(clientKey(principal, '10.0.0.1'), clientKey({ ...principal, id: 'other' }, '10.0.0.1'));
});

test('streams: a client share and a session share; the full one is named and nothing is kept', () => {
  const refused: CapacityReason[] = [];
  const q = new StreamQuota(3, 2, (r) => refused.push(r));
  const a = q.admit('c1', 's1');
  const b = q.admit('c1', 's1');
  assert.ok(a instanceof StreamLease && b instanceof StreamLease, 'at the session share');
  assert.equal(q.admit('c1', 's1'), 'streams_per_session');
  assert.equal(q.perClient.count('c1'), 2, 'a session refusal gives the client slot back');
  const c = q.admit('c1', 's2');
  assert.ok(c instanceof StreamLease, 'at the client share, on another session');
  assert.equal(q.admit('c1', 's3'), 'streams_per_client');
  assert.equal(q.perSession.count('s3'), 0);
  assert.ok(q.admit('c2', undefined) instanceof StreamLease, 'another client; a stream without a session counts for the client only');
  assert.deepEqual(refused, ['streams_per_session', 'streams_per_client']);
  for (const l of [a, b, c] as StreamLease[]) {
    l.release();
    l.release();
  }
  assert.equal(q.perClient.count('c1'), 0);
  assert.equal(q.perSession.keys, 0);
  assert.ok(q.admit('c1', 's1') instanceof StreamLease, 'released shares are usable again');
});
