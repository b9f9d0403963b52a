// The approval engine's life cycle against both stores (the embedded FileStore and Redis on a
// real redis-server), then what only Redis makes possible: several replicas sharing records.
// `execute` and the channel are stubs that record what they were asked; waits poll for a state.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRedis } from './testkit.js';
import { GovError } from '../core/errors.js';
import { ApprovalEngine, SYSTEM_AUTO_APPROVE, type NewApproval } from './engine.js';
import { FileStore } from './store/file.js';
import { RedisStore } from './store/redis.js';
import type { ApprovalChannel, ApprovalRecord, ApprovalState, Outcome, StateStore } from './types.js';
import { TERMINAL_STATES } from './types.js';

const { redis, skip: NO_REDIS } = await testRedis();

// --- stubs and rigs ----------------------------------------------------------------------

class StubChannel implements ApprovalChannel {
  readonly name = 'stub';
  readonly posts: ApprovalRecord[] = [];
  readonly updates: ApprovalRecord[] = [];
  /** false: post returns no reference (so the engine makes no extra write after posting) */
  postRef = true;
  async start(): Promise<void> {}
  async post(rec: ApprovalRecord): Promise<Record<string, string> | void> {
    this.posts.push(rec);
    return this.postRef ? { ts: `msg-${rec.id}` } : undefined;
  }
  async update(rec: ApprovalRecord): Promise<void> {
    this.updates.push(rec);
  }
  async close(): Promise<void> {}
}

const OK: Outcome = { result: { content: [{ type: 'text', text: 'ok' }] } };

interface Rig {
  engine: ApprovalEngine;
  store: StateStore;
  channel: StubChannel;
  executed: ApprovalRecord[];
  logs: { level: string; msg: string }[];
}

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** Where records live: each `open()` is a new store on the same state (a restart, or another replica). */
interface Space { open(): Promise<StateStore> }
const spaces: { name: string; skip: string | false; make(): Space }[] = [
  { name: 'FileStore', skip: false, make: () => { const dir = mkdtempSync(join(tmpdir(), 'tg-engine-')); dirs.push(dir); return { open: async () => { const s = new FileStore(dir); await s.open(); return s; } }; } },
  { name: 'RedisStore', skip: NO_REDIS, make: () => { const prefix = uniq('tgtest'); return { open: async () => { const s = new RedisStore(redis!.url, { prefix }); await s.open(); return s; } }; } },
];

let seq = 0;
function uniq(what: string): string {
  return `${what}-${process.pid}-${++seq}`;
}

/** Everything a test opened, closed at its end (engines first: they use the stores). */
class Scope {
  private readonly engines: ApprovalEngine[] = [];
  private readonly stores: StateStore[] = [];
  async rig(store: StateStore, o: { replicaId?: string; maxPending?: number; retentionMs?: number; sweepMs?: number; maxRecordBytes?: number; maxPendingBytes?: number } = {}): Promise<Rig> {
    this.stores.push(store);
    const channel = new StubChannel();
    const executed: ApprovalRecord[] = [];
    const logs: Rig['logs'] = [];
    const engine = new ApprovalEngine({
      store,
      channels: new Map([[channel.name, channel]]),
      replicaId: o.replicaId ?? 'r1',
      maxPending: o.maxPending ?? 100,
      maxRecordBytes: o.maxRecordBytes,
      maxPendingBytes: o.maxPendingBytes,
      retentionMs: o.retentionMs ?? 3_600_000,
      sweepMs: o.sweepMs,
      execute: async (rec) => { executed.push(rec); return OK; },
      events: { transition: () => {}, log: (level, msg) => { logs.push({ level, msg }); } },
    });
    await engine.start();
    this.engines.push(engine);
    return { engine, store, channel, executed, logs };
  }
  async close(): Promise<void> {
    for (const e of this.engines) await e.close();
    for (const s of this.stores) await s.close();
  }
}

function ask(over: Partial<NewApproval> = {}): NewApproval {
  return {
    mode: 'held', method: 'tools/call', tool: 'pay_invoice', arguments: { amount: 5, to: 'acme' }, principal: 'agent-1',
    sessionId: 'sess-1', sourceId: 'up', workflow: 'payments', channel: 'stub', snapshot: 'snap-1', correlationId: 'corr-1',
    timeoutMs: 600_000, onTimeout: 'deny', requiredApprovals: 1, approvers: [],
    request: { path: '/mcp', headers: {}, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}' }, requestId: 1, ...over,
  };
}

async function until<T>(what: string, probe: () => T | Promise<T>, deadlineMs = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const stateOf = (rig: Rig, id: string, state: ApprovalState) =>
  until(`${id} to be ${state}`, async () => { const r = await rig.engine.get(id); return r?.state === state ? r : undefined; });

/** `real` with some methods replaced (a fault, a probe); everything else passes through. */
function delegate(real: StateStore, over: Partial<StateStore>): StateStore {
  const through: StateStore = {
    kind: real.kind, where: real.where,
    open: () => real.open(), close: () => real.close(),
    create: (r, max, bytes) => real.create(r, max, bytes), get: (id) => real.get(id), list: () => real.list(),
    update: (id, fn) => real.update(id, fn), delete: (id) => real.delete(id),
    putGrant: (g) => real.putGrant(g), listGrants: () => real.listGrants(), deleteGrant: (id) => real.deleteGrant(id),
    subscribe: (l) => real.subscribe(l), claimOnce: (k, u) => real.claimOnce(k, u),
  };
  if (real.heartbeat !== undefined) through.heartbeat = (replica, ttl) => real.heartbeat!(replica, ttl);
  if (real.isAlive !== undefined) through.isAlive = (replica) => real.isAlive!(replica);
  return { ...through, ...over };
}

const LIFE_CYCLE: ApprovalState[] = ['pending', 'approved', 'executing', 'completed'];

// --- one engine, either store ---------------------------------------------------------------

for (const space of spaces) {
  const t = (name: string, body: (s: Scope, space: Space) => Promise<void>) => test(`${space.name}: ${name}`, { skip: space.skip }, async () => {
    const scope = new Scope();
    try { await body(scope, space.make()); } finally { await scope.close(); }
  });

  t('request: a pending record, listed, posted to its channel; past maxPending it is -32009', async (s, sp) => {
    const rig = await s.rig(await sp.open(), { maxPending: 2 });
    const rec = await rig.engine.request(ask());
    assert.match(rec.id, /^tg_[0-9a-f]{21}$/);
    assert.equal(rec.state, 'pending');
    assert.equal(rec.owner, 'r1');
    assert.deepEqual((await rig.engine.list()).map((r) => r.id), [rec.id]);
    assert.deepEqual(rig.channel.posts.map((r) => r.id), [rec.id]);
    await until('the channel reference to be stored', async () => (await rig.engine.get(rec.id))?.channelRef?.ts === `msg-${rec.id}`);
    await rig.engine.request(ask());
    await assert.rejects(rig.engine.request(ask()), (e: unknown) => e instanceof GovError && e.code === -32009);
    assert.equal((await rig.engine.list()).length, 2, 'the refused request left no record');
  });

  t('per-record byte limit: a call at the limit is held; one byte past it is -32602 naming the limit, nothing stored or posted', async (s, sp) => {
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call"}';
    const args = { blob: 'x'.repeat(1000) };
    const size = Buffer.byteLength(body) + Buffer.byteLength(JSON.stringify(args));
    const rig = await s.rig(await sp.open(), { maxRecordBytes: size });
    const at = await rig.engine.request(ask({ arguments: args, request: { path: '/mcp', headers: {}, body } }));
    assert.equal(at.bytes, size, 'the record carries its size (body + arguments)');
    const past = { blob: 'x'.repeat(1001) };
    await assert.rejects(rig.engine.request(ask({ arguments: past, request: { path: '/mcp', headers: {}, body } })), (e: unknown) => {
      assert.ok(e instanceof GovError && e.code === -32602, `-32602, got ${String(e)}`);
      assert.match(e.message, new RegExp(`size limit of ${size} bytes`), 'the message itself names the limit');
      return true;
    });
    assert.deepEqual((await rig.engine.list()).map((r) => r.id), [at.id], 'the refused call left no record');
    assert.deepEqual(rig.channel.posts.map((r) => r.id), [at.id], 'nobody was asked about it');
  });

  t('total byte budget: past it -32009 with retry_after; a finished record frees its bytes', async (s, sp) => {
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call"}';
    const args = { blob: 'y'.repeat(500) };
    const size = Buffer.byteLength(body) + Buffer.byteLength(JSON.stringify(args));
    const rig = await s.rig(await sp.open(), { maxPendingBytes: 2 * size });
    const first = await rig.engine.request(ask({ arguments: args, request: { path: '/mcp', headers: {}, body } }));
    await rig.engine.request(ask({ arguments: args, request: { path: '/mcp', headers: {}, body } }));
    await assert.rejects(rig.engine.request(ask({ arguments: args, request: { path: '/mcp', headers: {}, body } })), (e: unknown) => {
      assert.ok(e instanceof GovError && e.code === -32009, `-32009, got ${String(e)}`);
      assert.ok(e.retryAfter !== undefined && e.retryAfter > 0, 'retry_after is set');
      assert.match(String(e.details), /THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES/);
      return true;
    });
    await rig.engine.decide(first.id, { verdict: 'reject', by: 'console:alice' });
    await rig.engine.request(ask({ arguments: args, request: { path: '/mcp', headers: {}, body } }));
    assert.equal((await rig.engine.list((r) => r.state === 'pending')).length, 2);
  });

  t('a store that cannot write (full disk) refuses the call with -32013: nothing acknowledged', async (s, sp) => {
    const real = await sp.open();
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const rig = await s.rig(delegate(real, { create: async () => { throw full; } }));
    await assert.rejects(rig.engine.request(ask()), (e: unknown) => {
      assert.ok(e instanceof GovError && e.kind === 'service_unavailable', `service_unavailable, got ${String(e)}`);
      assert.match(String(e.details), /ENOSPC/);
      return true;
    });
    assert.equal(rig.channel.posts.length, 0, 'nobody was asked');
    assert.ok(rig.logs.some((l) => l.level === 'error' && /could not be stored/.test(l.msg)));
  });

  t('approve: approved → executing → completed, executed once, outcome kept, channel told', async (s, sp) => {
    const rig = await s.rig(await sp.open());
    const rec = await rig.engine.request(ask());
    const res = await rig.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
    assert.ok(res.ok && res.final, 'one approval settles it');
    const done = await stateOf(rig, rec.id, 'completed');
    assert.deepEqual(done.outcome, OK);
    assert.equal(done.decidedBy, 'console:alice');
    assert.equal(rig.executed.length, 1);
    assert.equal(rig.executed[0]!.id, rec.id);
    assert.equal(rig.executed[0]!.state, 'executing', 'execute sees the claimed record');
    assert.ok(rig.channel.updates.some((r) => r.id === rec.id && r.state === 'approved'), 'the channel heard of the approval');
  });

  t('reject: reason kept, never executed; a second decision is refused', async (s, sp) => {
    const rig = await s.rig(await sp.open());
    const rec = await rig.engine.request(ask());
    const res = await rig.engine.decide(rec.id, { verdict: 'reject', by: 'slack:U1', reason: 'too expensive' });
    assert.ok(res.ok && res.final);
    const stored = await rig.engine.get(rec.id);
    assert.equal(stored?.state, 'rejected');
    assert.equal(stored?.reason, 'too expensive');
    assert.equal(stored?.decidedBy, 'slack:U1');
    const again = await rig.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
    assert.equal(again.ok, false);
    assert.equal(!again.ok && again.code, 'already_decided');
    assert.equal((await rig.engine.get(rec.id))?.state, 'rejected', 'the first decision stands');
    assert.deepEqual(await rig.engine.decide('tg_nope', { verdict: 'approve', by: 'console:alice' }).then((r) => !r.ok && r.code), 'not_found');
    assert.equal(rig.executed.length, 0);
  });

  t('votes: two distinct approvers needed, no duplicate votes, no self-approval, allow-lists hold', async (s, sp) => {
    const rig = await s.rig(await sp.open());
    const two = await rig.engine.request(ask({ requiredApprovals: 2 }));
    const self = await rig.engine.decide(two.id, { verdict: 'approve', by: 'console:agent-1' });
    assert.equal(!self.ok && self.code, 'self_approval', 'the requester cannot approve its own call');
    const first = await rig.engine.decide(two.id, { verdict: 'approve', by: 'console:alice' });
    assert.ok(first.ok && !first.final && first.rec.state === 'pending', 'one of two approvals leaves it pending');
    const dup = await rig.engine.decide(two.id, { verdict: 'approve', by: 'console:alice' });
    assert.equal(!dup.ok && dup.code, 'duplicate_vote');
    assert.equal((await rig.engine.get(two.id))?.state, 'pending', 'a duplicate vote does not count');
    assert.equal(rig.executed.length, 0);
    const second = await rig.engine.decide(two.id, { verdict: 'approve', by: 'slack:U2' });
    assert.ok(second.ok && second.final);
    const done = await stateOf(rig, two.id, 'completed');
    assert.equal(done.decidedBy, 'console:alice, slack:U2');
    assert.equal(done.votes.length, 2);
    assert.equal(rig.executed.length, 1);

    const listed = await rig.engine.request(ask({ approvers: ['alice'] }));
    const bob = await rig.engine.decide(listed.id, { verdict: 'approve', by: 'console:bob' });
    assert.equal(!bob.ok && bob.code, 'not_allowed');
    const alice = await rig.engine.decide(listed.id, { verdict: 'approve', by: 'slack:alice' });
    assert.ok(alice.ok && alice.final, 'the listed approver may decide, through any channel');
  });

  t('one person is one vote across channels and spellings; the requester under any spelling cannot approve', async (s, sp) => {
    const rig = await s.rig(await sp.open());
    const two = await rig.engine.request(ask({ requiredApprovals: 2, approvers: ['alice', 'bob'] }));
    assert.ok((await rig.engine.decide(two.id, { verdict: 'approve', by: 'cli:alice' })).ok);
    // The same person again, through another channel or respelled (case, zero-width space, Cyrillic а, fullwidth).
    for (const by of ['api:alice', 'console:Alice', 'slack:alice', 'api:alice\u200b', 'api:аlice', 'api:ａｌｉｃｅ', 'alice']) {
      const again = await rig.engine.decide(two.id, { verdict: 'approve', by });
      assert.equal(!again.ok && again.code, 'duplicate_vote', by);
    }
    assert.equal((await rig.engine.get(two.id))?.state, 'pending');
    assert.equal(rig.executed.length, 0, 'one person agreeing twice runs nothing');
    // An allow-listed name respelled is that approver (and so a second vote of hers would be refused).
    const bob = await rig.engine.decide(two.id, { verdict: 'approve', by: 'api:BOB' });
    assert.ok(bob.ok && bob.final, 'a second person makes two');
    await stateOf(rig, two.id, 'completed');

    for (const by of ['api:Agent-1', 'api:agent-1\u200b', 'api:аgent-1', 'api:x:agent-1', 'console:AGENT\u20101']) {
      const rec = await rig.engine.request(ask({ approvers: [] }));
      const self = await rig.engine.decide(rec.id, { verdict: 'approve', by });
      assert.equal(!self.ok && self.code, 'self_approval', by);
      await rig.engine.cancel(rec.id, 'test');
    }
    // A record from before votes were compared as people may hold one person twice: counted once.
    const legacy = await rig.engine.request(ask({ requiredApprovals: 3 }));
    await rig.engine.store.update(legacy.id, (r) => ({ ...r, votes: [{ by: 'cli:alice', verdict: 'approve', at: 1 }, { by: 'api:alice', verdict: 'approve', at: 2 }] }));
    const third = await rig.engine.decide(legacy.id, { verdict: 'approve', by: 'api:bob' });
    assert.ok(third.ok && !third.final && third.rec.state === 'pending', 'alice twice and bob are two people of three');
    await rig.engine.cancel(legacy.id, 'test');
    // A webhook is its own actor: not the person of the same name.
    const hook = await rig.engine.request(ask({ requiredApprovals: 2 }));
    assert.ok((await rig.engine.decide(hook.id, { verdict: 'approve', by: 'api:ops' })).ok);
    assert.ok((await rig.engine.decide(hook.id, { verdict: 'approve', by: 'webhook:ops' })).ok, 'webhook:ops is not the person ops');
  });

  t('timeouts: on_timeout deny expires; on_timeout approve executes as the system', async (s, sp) => {
    const rig = await s.rig(await sp.open());
    const denied = await rig.engine.request(ask({ timeoutMs: 50, onTimeout: 'deny' }));
    const approved = await rig.engine.request(ask({ timeoutMs: 50, onTimeout: 'approve' }));
    const expired = await stateOf(rig, denied.id, 'expired');
    assert.equal(expired.decidedBy, 'system:timeout');
    const done = await stateOf(rig, approved.id, 'completed');
    assert.equal(done.decidedBy, SYSTEM_AUTO_APPROVE);
    assert.deepEqual(rig.executed.map((r) => r.id), [approved.id], 'only the auto-approved call ran');
    assert.ok(rig.channel.updates.some((r) => r.id === denied.id && r.state === 'expired'));
  });

  t('cancel: pending → cancelled, never executed; watchers see each transition', async (s, sp) => {
    const rig = await s.rig(await sp.open());
    const gone = await rig.engine.request(ask());
    const cancelled = await rig.engine.cancel(gone.id, 'client');
    assert.equal(cancelled?.state, 'cancelled');
    assert.equal(cancelled?.decidedBy, 'client');
    assert.equal((await rig.engine.decide(gone.id, { verdict: 'approve', by: 'console:alice' })).ok, false, 'too late to approve');
    assert.equal((await rig.engine.cancel(gone.id, 'client'))?.state, 'cancelled', 'cancelling twice is harmless');

    rig.channel.postRef = false; // no channel-reference write racing with the transitions watched
    const rec = await rig.engine.request(ask());
    const seen: ApprovalState[] = [];
    const anySeen: string[] = [];
    rig.engine.watch(rec.id, (r) => seen.push(r.state));
    rig.engine.onAnyChange((r) => anySeen.push(r.id));
    await rig.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
    await until('the watcher to see completed', () => seen.includes('completed'));
    if (rig.store.kind === 'file') {
      // (the creation's own notification may still be on its way when the watcher is added)
      assert.deepEqual(seen.filter((st) => st !== 'pending'), ['approved', 'executing', 'completed']);
    } else {
      // Redis tells ids, not states; a reader may find a later state than the one announced,
      // but never an earlier one, and always the last.
      const order = seen.map((st) => LIFE_CYCLE.indexOf(st));
      assert.deepEqual(order, [...order].sort((x, y) => x - y), `states in life-cycle order: ${seen.join(' → ')}`);
      assert.equal(seen.at(-1), 'completed');
    }
    assert.ok(anySeen.includes(rec.id), 'onAnyChange saw it too');
    assert.equal(rig.executed.length, 1);
  });

  t('restart: a pending record is adopted and runs on the new replica; an interrupted execution fails, not re-run', async (s, sp) => {
    const first = await s.rig(await sp.open(), { replicaId: 'r1', sweepMs: 50 });
    const waiting = await first.engine.request(ask());
    const interrupted = await first.engine.request(ask());
    await first.store.update(interrupted.id, (r) => ({ ...r, state: 'executing' })); // as if killed mid-call
    await until('the channel reference to be stored', async () => (await first.engine.get(waiting.id))?.channelRef !== undefined);
    await first.engine.close();
    await first.store.close();

    const second = await s.rig(await sp.open(), { replicaId: 'r2', sweepMs: 50 });
    const adopted = await until('the pending record to be adopted', async () => { const r = await second.engine.get(waiting.id); return r?.owner === 'r2' ? r : undefined; });
    assert.equal(adopted.state, 'pending');
    const failed = await stateOf(second, interrupted.id, 'failed');
    assert.equal(failed.owner, 'r2');
    assert.match(JSON.stringify(failed.outcome?.error), /not retried/);
    assert.equal(second.executed.length, 0, 'the interrupted call was not run again');

    const res = await second.engine.decide(waiting.id, { verdict: 'approve', by: 'console:alice' });
    assert.ok(res.ok);
    await stateOf(second, waiting.id, 'completed');
    assert.deepEqual(second.executed.map((r) => r.id), [waiting.id]);
    assert.equal(first.executed.length, 0);
  });

  t('restart under the same replica id: an approved record runs, an executing one fails', async (s, sp) => {
    // A replica id can outlive its process (a stable host name); what that process left behind still needs settling.
    const store = await sp.open();
    const seed = await s.rig(store, { replicaId: 'same' });
    const approved = await seed.engine.request(ask());
    const executing = await seed.engine.request(ask());
    await until('the channel references to be stored', async () => (await seed.engine.list()).every((r) => r.channelRef !== undefined));
    await seed.engine.close(); // closed first: the approval below must not run here
    await store.update(approved.id, (r) => ({ ...r, state: 'approved', decidedBy: 'console:alice' }));
    await store.update(executing.id, (r) => ({ ...r, state: 'executing' }));
    await store.close();

    const again = await s.rig(await sp.open(), { replicaId: 'same' });
    await stateOf(again, approved.id, 'completed');
    assert.deepEqual(again.executed.map((r) => r.id), [approved.id]);
    const failed = await stateOf(again, executing.id, 'failed');
    assert.match(JSON.stringify(failed.outcome?.error), /not retried/);
    assert.equal(seed.executed.length, 0);
  });

  t('retention: the sweep deletes finished records past keepUntil and keeps pending ones', async (s, sp) => {
    const rig = await s.rig(await sp.open(), { retentionMs: 1, sweepMs: 20 });
    const waiting = await rig.engine.request(ask());
    const finished = await rig.engine.request(ask({ taskTtlMs: 1 }));
    const timedOut = await rig.engine.request(ask({ timeoutMs: 30 }));
    await rig.engine.decide(finished.id, { verdict: 'approve', by: 'console:alice' });
    await until('the completed record to be deleted', async () => (await rig.engine.get(finished.id)) === undefined);
    await until('the expired record to be deleted', async () => (await rig.engine.get(timedOut.id)) === undefined);
    assert.equal(rig.executed.length, 1, 'it ran before it was deleted');
    assert.equal((await rig.engine.get(waiting.id))?.state, 'pending', 'a pending record is never swept');
  });

  t('grants: a session grant covers the same call in the same session on the same snapshot only; revoke removes it', async (s, sp) => {
    const rig = await s.rig(await sp.open());
    const rec = await rig.engine.request(ask({ arguments: { to: 'acme', amount: 5 } }));
    await rig.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice', grant: { scope: 'session' } });
    await stateOf(rig, rec.id, 'completed');
    const grants = await rig.engine.listGrants();
    assert.equal(grants.length, 1);
    assert.equal(grants[0]!.sessionId, 'sess-1');
    assert.equal(grants[0]!.grantedBy, 'console:alice');
    const q = { tool: 'pay_invoice', sourceId: 'up', principal: 'agent-1', arguments: { amount: 5, to: 'acme' }, sessionId: 'sess-1', snapshot: 'snap-1' };
    assert.equal((await rig.engine.findGrant(q))?.id, grants[0]!.id, 'same call (keys in another order) is covered');
    assert.equal(await rig.engine.findGrant({ ...q, sessionId: 'sess-2' }), undefined, 'another session');
    assert.equal(await rig.engine.findGrant({ ...q, arguments: { amount: 6, to: 'acme' } }), undefined, 'other arguments');
    assert.equal(await rig.engine.findGrant({ ...q, snapshot: 'snap-2' }), undefined, 'another policy snapshot');
    assert.equal(await rig.engine.findGrant({ ...q, principal: 'agent-2' }), undefined, 'another requester');
    assert.equal(await rig.engine.revokeGrant(grants[0]!.id, 'console:alice'), true);
    assert.equal(await rig.engine.findGrant(q), undefined, 'revoked');
    assert.equal(await rig.engine.revokeGrant(grants[0]!.id, 'console:alice'), false);

    const once = await rig.engine.request(ask());
    await rig.engine.decide(once.id, { verdict: 'approve', by: 'console:alice', grant: { scope: 'once' } });
    await stateOf(rig, once.id, 'completed');
    assert.equal((await rig.engine.listGrants()).length, 0, "'once' stands for this call only");
  });

  t('an approval whose notification never arrived is run by the owner\'s sweep', async (s, sp) => {
    const real = await sp.open();
    const deaf = delegate(real, { subscribe: () => {} }); // this replica hears of no change
    const rig = await s.rig(deaf, { sweepMs: 20 });
    rig.channel.postRef = false;
    const rec = await rig.engine.request(ask());
    // decided elsewhere (another replica, straight in the store)
    await real.update(rec.id, (r) => ({ ...r, state: 'approved', decidedBy: 'console:alice', votes: [{ by: 'console:alice', verdict: 'approve', at: Date.now() }] }));
    await stateOf(rig, rec.id, 'completed');
    assert.deepEqual(rig.executed.map((r) => r.id), [rec.id]);
  });

  t('a store failing while a change is handled is logged, not an unhandled rejection', async (s, sp) => {
    const real = await sp.open();
    let failing = false;
    const flaky = delegate(real, { get: (id) => (failing ? Promise.reject(new Error('store unreachable')) : real.get(id)) });
    const rig = await s.rig(flaky);
    const rec = await rig.engine.request(ask());
    await until('the channel reference to be stored', async () => (await real.get(rec.id))?.channelRef !== undefined);
    failing = true;
    await real.update(rec.id, (r) => ({ ...r, updatedAt: r.updatedAt + 1 })); // a change the engine will fail to read
    await until('the failure to be logged', () => rig.logs.some((l) => l.level !== 'info' && /change/.test(l.msg)));
    failing = false;
  });
}

// --- replicas sharing Redis ---------------------------------------------------------------------

const redisSpace = spaces[1]!;
const rt = (name: string, body: (s: Scope, space: Space) => Promise<void>) => test(`RedisStore replicas: ${name}`, { skip: NO_REDIS }, async () => {
  const scope = new Scope();
  try { await body(scope, redisSpace.make()); } finally { await scope.close(); }
});

rt('a record created on A and approved on B runs on A only', async (s, sp) => {
  const a = await s.rig(await sp.open(), { replicaId: 'A' });
  const b = await s.rig(await sp.open(), { replicaId: 'B' });
  const rec = await a.engine.request(ask());
  await until('B to see the record', async () => (await b.engine.get(rec.id)) !== undefined);
  const res = await b.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
  assert.ok(res.ok && res.final);
  const done = await stateOf(a, rec.id, 'completed');
  assert.equal(done.owner, 'A');
  assert.equal(a.executed.length, 1);
  assert.equal(b.executed.length, 0);
  assert.ok(b.channel.updates.some((r) => r.id === rec.id), 'the deciding replica updates the channel');
});

rt('simultaneous approve (A) and reject (B): one decision per record, each approved one runs once', async (s, sp) => {
  const a = await s.rig(await sp.open(), { replicaId: 'A' });
  const b = await s.rig(await sp.open(), { replicaId: 'B' });
  const recs = await Promise.all(Array.from({ length: 20 }, () => a.engine.request(ask())));
  const outcomes = await Promise.all(recs.map(async (rec) => {
    const [yes, no] = await Promise.all([
      a.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' }),
      b.engine.decide(rec.id, { verdict: 'reject', by: 'console:bob', reason: 'no' }),
    ]);
    return { rec, yes, no };
  }));
  for (const { rec, yes, no } of outcomes) {
    assert.equal(Number(yes.ok) + Number(no.ok), 1, `${rec.id}: exactly one decision wins`);
    const loser = yes.ok ? no : yes;
    assert.equal(!loser.ok && loser.code, 'already_decided');
  }
  const final = await until('every record to settle', async () => {
    const all = await Promise.all(recs.map((r) => a.engine.get(r.id)));
    return all.every((r) => r !== undefined && TERMINAL_STATES.has(r.state)) ? (all as ApprovalRecord[]) : undefined;
  });
  const approvedIds = outcomes.filter((o) => o.yes.ok).map((o) => o.rec.id).sort();
  for (const r of final) {
    assert.equal(r.votes.length, 1, `${r.id}: only the winning vote is recorded`);
    assert.equal(r.state, approvedIds.includes(r.id) ? 'completed' : 'rejected');
  }
  assert.deepEqual(a.executed.map((r) => r.id).sort(), approvedIds, 'each approved call ran once, on its owner');
  assert.equal(b.executed.length, 0);
});

rt("a live replica's records stay its own; once its heartbeat is gone another replica's sweep adopts them", async (s, sp) => {
  const a = await s.rig(await sp.open(), { replicaId: 'A', sweepMs: 50 });
  const realB = await sp.open();
  let sawAAlive = 0;
  const storeB = delegate(realB, {
    isAlive: async (replica) => { const alive = await realB.isAlive!(replica); if (replica === 'A' && alive) sawAAlive++; return alive; },
  });
  const b = await s.rig(storeB, { replicaId: 'B', sweepMs: 30 });

  assert.equal(await a.store.isAlive!('A'), true, 'a running engine heartbeats');
  const rec = await a.engine.request(ask());
  await until("B's sweep to find A alive three times", () => sawAAlive >= 3);
  assert.equal((await b.engine.get(rec.id))?.owner, 'A', 'not adopted while A is alive');

  await a.engine.close();
  await a.store.heartbeat!('A', 1); // A died: its heartbeat lapses
  const adopted = await until('B to adopt the record', async () => { const r = await b.engine.get(rec.id); return r?.owner === 'B' ? r : undefined; });
  assert.equal(adopted.state, 'pending');
  await b.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
  await stateOf(b, rec.id, 'completed');
  assert.equal(b.executed.length, 1);
  assert.equal(a.executed.length, 0);
});
