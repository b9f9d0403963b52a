// Tasks belong to the MCP session and principal that made them: every other caller gets the
// answer an unknown task id gets, never sees them listed, and cannot cancel them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Principal } from '../core/policy-engine.js';
import type { Snapshot } from '../policy/types.js';
import type { Upstream } from '../upstream/types.js';
import { ApprovalEngine, type NewApproval } from './engine.js';
import { ApprovalGateway, ownedBy } from './gateway.js';
import { FileStore } from './store/file.js';
import type { ApprovalRecord } from './types.js';

const principal = (id: string): Principal => ({ id, namespace: 'default', serviceAccount: id, roles: [], labels: {} });
let dir: string;
let store: FileStore;
let engine: ApprovalEngine;

const gateway = (who: string): ApprovalGateway => new ApprovalGateway({
  engine, upstream: {} as Upstream, snapshot: () => ({}) as Snapshot, principal: principal(who), keepaliveMs: 1000,
  taskTtlMinMs: 1000, taskTtlMaxMs: 3_600_000, defaultTimeoutMs: 600_000, maxResultBytes: 1 << 20,
  channelFor: () => 'console', consoleUrl: 'http://127.0.0.1/approvals',
});

function task(over: Partial<NewApproval> = {}): NewApproval {
  return {
    mode: 'task', method: 'tools/call', tool: 'wire', arguments: { amount: 5 }, principal: 'agent-1', sessionId: 'sess-A',
    sourceId: 'up', workflow: 'ops', channel: 'console', snapshot: 'v1', correlationId: 'c', timeoutMs: 600_000, onTimeout: 'deny',
    requiredApprovals: 1, approvers: [], request: { path: '/mcp', headers: {}, body: '{}' }, requestId: 1, taskTtlMs: 600_000, ...over,
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-gateway-'));
  store = new FileStore(dir);
  await store.open();
  engine = new ApprovalEngine({
    store, channels: new Map(), replicaId: 'r1', maxPending: 100, retentionMs: 600_000,
    execute: async () => ({ result: { content: [{ type: 'text', text: 'ran' }] } }),
    events: { transition: () => {}, log: () => {} },
  });
  await engine.start();
});

after(async () => {
  await engine.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

type Answer = { error?: { code: number; message: string; data?: Record<string, unknown> }; result?: Record<string, unknown> };
const ask = async (gw: ApprovalGateway, method: string, params: Record<string, unknown>, session: string | undefined): Promise<Answer> =>
  JSON.parse((await gw.taskMethod(method, params, 9, 'corr', session)).body) as Answer;

/** The error's shape with the task id taken out: what must not differ between "theirs" and "unknown". */
const shape = (a: Answer, id: string): unknown => JSON.parse(JSON.stringify(a.error ?? null).split(id).join('<id>'));

test("another session (or none) sees another's task exactly as an unknown id, and cannot cancel it", async () => {
  const gw = gateway('agent-1');
  const mine = await engine.request(task());
  const unknown = 'tg_' + '0'.repeat(21);
  assert.equal((await ask(gw, 'tasks/get', { taskId: mine.id }, 'sess-A')).result?.['status'], 'working', 'the owner sees it');
  assert.ok(((await ask(gw, 'tasks/list', {}, 'sess-A')).result?.['tasks'] as { taskId: string }[]).some((t) => t.taskId === mine.id));

  for (const other of ['sess-B', undefined]) {
    const listed = (await ask(gw, 'tasks/list', {}, other)).result?.['tasks'] as { taskId: string }[];
    assert.ok(!listed.some((t) => t.taskId === mine.id), `not listed for ${other ?? 'no session'}`);
    for (const m of ['tasks/get', 'tasks/result', 'tasks/cancel']) {
      const theirs = await ask(gw, m, { taskId: mine.id }, other);
      const none = await ask(gw, m, { taskId: unknown }, other);
      assert.ok(theirs.error !== undefined, `${m} from ${other ?? 'no session'} is an error`);
      assert.deepEqual(shape(theirs, mine.id), shape(none, unknown), `${m}: the same answer as an unknown id`);
    }
  }
  assert.equal((await engine.get(mine.id))?.state, 'pending', 'their cancel changed nothing');
  // Same session, another principal: not theirs either.
  assert.ok((await ask(gateway('agent-2'), 'tasks/get', { taskId: mine.id }, 'sess-A')).error);
  await engine.cancel(mine.id, 'test');
});

test('a task made without a session belongs to "no session" + principal: a session cannot reach it', async () => {
  const gw = gateway('agent-1');
  const stateless = await engine.request(task({ sessionId: undefined }));
  assert.equal((await ask(gw, 'tasks/get', { taskId: stateless.id }, undefined)).result?.['taskId'], stateless.id);
  assert.ok((await ask(gw, 'tasks/get', { taskId: stateless.id }, 'sess-A')).error, 'a session does not see a stateless task');
  const cancel = await ask(gw, 'tasks/cancel', { taskId: stateless.id }, 'sess-A');
  assert.ok(cancel.error);
  assert.equal((await engine.get(stateless.id))?.state, 'pending');
  const own = await ask(gw, 'tasks/cancel', { taskId: stateless.id }, undefined);
  assert.equal(own.result?.['status'], 'cancelled', 'its owner may cancel it');
});

test('the result of an approved task is read by its session only', async () => {
  const gw = gateway('agent-1');
  const rec = await engine.request(task());
  assert.ok((await engine.decide(rec.id, { verdict: 'approve', by: 'api:alice' })).ok);
  for (let i = 0; i < 200 && (await engine.get(rec.id))?.state !== 'completed'; i++) await new Promise((r) => setTimeout(r, 10));
  const ownResult = await ask(gw, 'tasks/result', { taskId: rec.id }, 'sess-A');
  assert.deepEqual((ownResult.result?.['content'] as unknown[])[0], { type: 'text', text: 'ran' });
  const stolen = await ask(gw, 'tasks/result', { taskId: rec.id }, 'sess-B');
  assert.equal(stolen.result, undefined);
  assert.ok(stolen.error);
});

test('ownedBy: principal and session both have to match; no session matches only no session', () => {
  const r = { principal: 'p', sessionId: 's' } as ApprovalRecord;
  assert.equal(ownedBy(r, 'p', 's'), true);
  assert.equal(ownedBy(r, 'p', 'S'), false);
  assert.equal(ownedBy(r, 'q', 's'), false);
  assert.equal(ownedBy(r, 'p', undefined), false);
  assert.equal(ownedBy({ principal: 'p' } as ApprovalRecord, 'p', undefined), true);
  assert.equal(ownedBy({ principal: 'p' } as ApprovalRecord, 'p', ''), false);
});

test('cancelHeld (notifications/cancelled): withdraws the held call of this principal, session and JSON-RPC id; never a task, another id type, session or principal', async () => {
  const held = (over: Partial<NewApproval>) => engine.request(task({ mode: 'held', taskTtlMs: undefined, ...over }));
  const mine = await held({ requestId: 41 });
  const asTask = await engine.request(task({ requestId: 41 }));
  const stringId = await held({ requestId: '41' });
  const otherSession = await held({ requestId: 41, sessionId: 'sess-B' });
  const otherPrincipal = await held({ requestId: 41, principal: 'agent-2' });
  assert.deepEqual(await gateway('agent-1').cancelHeld('sess-A', 41), [mine.id]);
  assert.equal((await engine.get(mine.id))?.state, 'cancelled');
  for (const r of [asTask, stringId, otherSession, otherPrincipal]) assert.equal((await engine.get(r.id))?.state, 'pending', `${r.id} left alone`);
  assert.deepEqual(await gateway('agent-1').cancelHeld('sess-A', 41), [], 'a second cancellation finds nothing');
  assert.deepEqual(await gateway('agent-1').cancelHeld('sess-A', { id: 41 }), [], 'a requestId that is not an id is ignored');
  assert.deepEqual(await gateway('agent-1').cancelHeld('sess-A', '41'), [stringId.id], 'the string id names its own call');
});
