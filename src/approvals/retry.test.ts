// Nothing runs that nobody waits for (issue 14, item 6): an approved held call whose client is
// gone is parked, not executed; the identical retry redeems it once (across replicas on Redis);
// unredeemed ones are cancelled after the window; a pending one is re-attached to a retry.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRedis } from './testkit.js';
import { ApprovalEngine, SYSTEM_NO_RETRY, type NewApproval } from './engine.js';
import { FileStore } from './store/file.js';
import { RedisStore } from './store/redis.js';
import type { ApprovalRecord, StateStore } from './types.js';

const { redis, skip: NO_REDIS } = await testRedis();
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
let seq = 0;

const stores: { name: string; skip: string | false; open(): () => Promise<StateStore> }[] = [
  { name: 'FileStore', skip: false, open: () => { const dir = mkdtempSync(join(tmpdir(), 'tg-retry-')); dirs.push(dir); return async () => { const s = new FileStore(dir); await s.open(); return s; }; } },
  { name: 'RedisStore', skip: NO_REDIS, open: () => { const prefix = `tgretry-${process.pid}-${++seq}`; return async () => { const s = new RedisStore(redis!.url, { prefix }); await s.open(); return s; }; } },
];

interface Rig { engine: ApprovalEngine; store: StateStore; executed: ApprovalRecord[]; waiting: Set<string>; clock: { t: number } }

async function rig(store: StateStore, o: { replicaId?: string; windowMs?: number; perClient?: number; clock?: { t: number } } = {}): Promise<Rig> {
  const executed: ApprovalRecord[] = [];
  const waiting = new Set<string>();
  const clock = o.clock ?? { t: Date.now() };
  const engine = new ApprovalEngine({
    store, channels: new Map(), replicaId: o.replicaId ?? 'r1', maxPending: 100, retentionMs: 3_600_000, sweepMs: 20,
    execute: async (rec) => { executed.push(rec); return { result: { ok: true } }; },
    events: { transition: () => {}, log: () => {} },
    now: () => clock.t,
    hasWaiter: (rec) => waiting.has(rec.id),
    retryWindowMs: o.windowMs ?? 60_000,
    ...(o.perClient === undefined ? {} : { maxPendingPerClient: o.perClient }),
  });
  await engine.start();
  return { engine, store, executed, waiting, clock };
}

const ask = (over: Partial<NewApproval> = {}): NewApproval => ({
  mode: 'held', method: 'tools/call', tool: 'pay', arguments: { amount: 5, to: 'acme' }, principal: 'agent-1',
  sessionId: 's1', sourceId: 'up', workflow: 'w', channel: 'none', snapshot: 'v1', correlationId: 'c1',
  timeoutMs: 600_000, onTimeout: 'deny', requiredApprovals: 1, approvers: [],
  request: { path: '/mcp', headers: {}, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}' }, requestId: 1, ...over,
});
const key = { principal: 'agent-1', sourceId: 'up', tool: 'pay', arguments: { to: 'acme', amount: 5 } };

async function until<T>(what: string, probe: () => T | Promise<T>): Promise<NonNullable<T>> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const s of stores) {
  test(`${s.name}: approved with its client waiting runs at once; approved with nobody waiting is parked, not run`, { skip: s.skip }, async () => {
    const store = await s.open()();
    const r = await rig(store);
    try {
      const waited = await r.engine.request(ask());
      r.waiting.add(waited.id);
      await r.engine.decide(waited.id, { verdict: 'approve', by: 'console:alice' });
      await until('executed', () => r.executed.some((x) => x.id === waited.id));

      const gone = await r.engine.request(ask({ arguments: { amount: 6 } }));
      await r.engine.decide(gone.id, { verdict: 'approve', by: 'console:alice' });
      const parked = await until('parked', async () => { const x = await r.engine.get(gone.id); return x?.awaitingRetryUntil !== undefined ? x : undefined; });
      assert.equal(parked.state, 'approved');
      assert.equal(parked.awaitingRetryUntil, r.clock.t + 60_000);
      assert.ok(!r.executed.some((x) => x.id === gone.id), 'not run for nobody');
      // A task is never parked: it outlives its connection by design.
      const task = await r.engine.request(ask({ mode: 'task', arguments: { amount: 7 } }));
      await r.engine.decide(task.id, { verdict: 'approve', by: 'console:alice' });
      await until('task executed', () => r.executed.some((x) => x.id === task.id));
    } finally {
      await r.engine.close();
      await store.close();
    }
  });

  test(`${s.name}: the identical retry (any key order, another session) redeems a parked approval once; other arguments, tools or principals do not`, { skip: s.skip }, async () => {
    const store = await s.open()();
    const r = await rig(store);
    try {
      const rec = await r.engine.request(ask());
      await r.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
      await until('parked', async () => (await r.engine.get(rec.id))?.awaitingRetryUntil !== undefined);
      assert.equal(await r.engine.redeemRetry({ ...key, arguments: { amount: 5, to: 'other' } }, 'c2'), undefined, 'other arguments');
      assert.equal(await r.engine.redeemRetry({ ...key, tool: 'pay2' }, 'c2'), undefined, 'another tool');
      assert.equal(await r.engine.redeemRetry({ ...key, principal: 'agent-2' }, 'c2'), undefined, 'another caller');
      assert.equal(await r.engine.redeemRetry({ ...key, sourceId: 'elsewhere' }, 'c2'), undefined, 'another source');
      const used = await r.engine.redeemRetry(key, 'c-retry');
      assert.equal(used?.id, rec.id);
      assert.equal(used?.state, 'completed');
      assert.match(used?.reason ?? '', /c-retry/);
      assert.equal(await r.engine.redeemRetry(key, 'c3'), undefined, 'used once');
      assert.ok(!r.executed.some((x) => x.id === rec.id), 'the retry itself is forwarded by the caller, not by the engine');
    } finally {
      await r.engine.close();
      await store.close();
    }
  });

  test(`${s.name}: a parked approval nobody retried within the window is cancelled by ${SYSTEM_NO_RETRY}, never run; a retry after it finds nothing`, { skip: s.skip }, async () => {
    const store = await s.open()();
    const r = await rig(store, { windowMs: 1000 });
    try {
      const rec = await r.engine.request(ask());
      await r.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
      await until('parked', async () => (await r.engine.get(rec.id))?.awaitingRetryUntil !== undefined);
      r.clock.t += 999;
      await new Promise((res) => setTimeout(res, 100)); // several sweeps at the edge
      assert.equal((await r.engine.get(rec.id))?.state, 'approved', 'still redeemable 1 ms before the end');
      r.clock.t += 1;
      const done = await until('cancelled', async () => { const x = await r.engine.get(rec.id); return x?.state === 'cancelled' ? x : undefined; });
      assert.equal(done.decidedBy, SYSTEM_NO_RETRY);
      assert.match(done.reason ?? '', /approved by console:alice.*not executed/);
      assert.equal(await r.engine.redeemRetry(key, 'late'), undefined);
      assert.ok(!r.executed.some((x) => x.id === rec.id));
    } finally {
      await r.engine.close();
      await store.close();
    }
  });

  test(`${s.name}: a client that starts waiting just after the decision (resume) gets the call run`, { skip: s.skip }, async () => {
    const store = await s.open()();
    const r = await rig(store);
    try {
      const rec = await r.engine.request(ask());
      await r.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
      await until('parked', async () => (await r.engine.get(rec.id))?.awaitingRetryUntil !== undefined);
      r.waiting.add(rec.id);
      await r.engine.resume(rec.id);
      await until('executed', () => r.executed.some((x) => x.id === rec.id));
      assert.equal((await r.engine.get(rec.id))?.state, 'completed');
    } finally {
      await r.engine.close();
      await store.close();
    }
  });

  test(`${s.name}: a pending approval with nobody waiting is re-attached to the identical retry (request and id replaced); one with a waiter is not`, { skip: s.skip }, async () => {
    const store = await s.open()();
    const r = await rig(store);
    try {
      const waited = await r.engine.request(ask({ arguments: { amount: 1 } }));
      r.waiting.add(waited.id);
      assert.equal(await r.engine.reattach({ ...key, arguments: { amount: 1 } }, { request: { path: '/mcp', headers: {}, body: 'x' }, requestId: 9, sessionId: 's2' }), undefined);
      const rec = await r.engine.request(ask());
      const next = { request: { path: '/mcp', headers: { 'mcp-session-id': 's2' }, body: '{"jsonrpc":"2.0","id":9,"method":"tools/call"}' }, requestId: 9, sessionId: 's2' };
      const again = await r.engine.reattach(key, next);
      assert.equal(again?.id, rec.id);
      assert.equal(again?.requestId, 9);
      assert.equal(again?.sessionId, 's2');
      assert.deepEqual(again?.request, next.request);
      assert.equal((await r.engine.list((x) => x.state === 'pending')).length, 2, 'no second approval');
    } finally {
      await r.engine.close();
      await store.close();
    }
  });

  test(`${s.name}: pending approvals per client (principal + session): at the cap the next is -32009; another session or principal is not counted`, { skip: s.skip }, async () => {
    const store = await s.open()();
    const r = await rig(store, { perClient: 2 });
    try {
      await r.engine.request(ask());
      await r.engine.request(ask());
      await assert.rejects(r.engine.request(ask()), (e: Error & { code?: number; retryAfter?: number }) => e.code === -32009 && /MAX_PENDING_APPROVALS_PER_CLIENT is 2/.test(String((e as { details?: string }).details)));
      await r.engine.request(ask({ sessionId: 's2' }));
      await r.engine.request(ask({ principal: 'agent-2' }));
      await r.engine.request(ask({ sessionId: undefined }));
      // a decided one frees its slot
      const [first] = await r.engine.list((x) => x.state === 'pending' && x.sessionId === 's1' && x.principal === 'agent-1');
      await r.engine.decide(first!.id, { verdict: 'reject', by: 'console:alice' });
      await r.engine.request(ask());
    } finally {
      await r.engine.close();
      await store.close();
    }
  });

  test(`${s.name}: across replicas, a parked approval is redeemed by exactly one of two concurrent retries`, { skip: s.skip || (s.name === 'FileStore' ? 'one process owns a FileStore' : false) }, async () => {
    const open = s.open();
    const [sa, sb] = [await open(), await open()];
    const clock = { t: Date.now() };
    const a = await rig(sa, { replicaId: 'ra', clock });
    const b = await rig(sb, { replicaId: 'rb', clock });
    try {
      const rec = await a.engine.request(ask());
      await a.engine.decide(rec.id, { verdict: 'approve', by: 'console:alice' });
      await until('parked', async () => (await a.engine.get(rec.id))?.awaitingRetryUntil !== undefined);
      const both = await Promise.all([a.engine.redeemRetry(key, 'ca'), b.engine.redeemRetry(key, 'cb')]);
      assert.equal(both.filter((x) => x !== undefined).length, 1, 'exactly one retry runs it');
    } finally {
      await a.engine.close();
      await b.engine.close();
      await sa.close();
      await sb.close();
    }
  });
}
