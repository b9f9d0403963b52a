// One contract suite for every StateStore (the embedded FileStore and Redis against a real
// redis-server), then what only the FileStore promises: survival across restarts, torn
// writes, the directory lock and kill -9 safety.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRedis } from '../testkit.js';
import type { ApprovalRecord, ApprovalState, Grant, StateStore } from '../types.js';
import { FileStore, StateDirInUseError, writeAll } from './file.js';
import { Redis } from 'ioredis';
import { RedisStore, redactRedisUrl } from './redis.js';

// --- shared helpers ---------------------------------------------------------------------

const { redis, skip: NO_REDIS } = await testRedis();

let seq = 0;
const uniq = (what: string) => `${what}-${process.pid}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'tg-store-')); dirs.push(d); return d; };
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function record(over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  const now = Date.now();
  return {
    id: uniq('tg'), state: 'pending', mode: 'held', method: 'tools/call', tool: 'pay_invoice', arguments: { amount: 5 },
    principal: 'agent-1', sourceId: 'up', workflow: 'default', channel: 'stub', snapshot: 's1', correlationId: 'c1',
    createdAt: now, updatedAt: now, expiresAt: now + 60_000, onTimeout: 'deny', requiredApprovals: 1, approvers: [], votes: [],
    owner: 'r1', request: { path: '/mcp', headers: {}, body: '{}' }, requestId: 1, keepUntil: now + 120_000, pollIntervalMs: 1000,
    ...over,
  };
}

function grant(over: Partial<Grant> = {}): Grant {
  return {
    id: uniq('gr'), tool: 'pay_invoice', sourceId: 'up', principal: 'agent-1', snapshot: 's1', grantedBy: 'console:alice',
    createdAt: Date.now(), expiresAt: Date.now() + 60_000, approvalId: 'tg_x', ...over,
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

const decide = (state: ApprovalState) => (r: ApprovalRecord) => ({ ...r, state, updatedAt: Date.now() });

/**
 * A fresh pair of handles on one shared state: `a` and `b` are separate RedisStore objects on one
 * server and prefix; the FileStore allows one instance per directory, so there `b` is `a`.
 */
interface Kit { a: StateStore; b: StateStore; close(): Promise<void> }
const kinds: { name: string; skip: string | false; make(): Promise<Kit> }[] = [
  {
    name: 'FileStore', skip: false,
    async make() {
      const a = new FileStore(tempDir());
      await a.open();
      return { a, b: a, close: () => a.close() };
    },
  },
  {
    name: 'RedisStore', skip: NO_REDIS,
    async make() {
      const prefix = uniq('tgtest');
      const a = new RedisStore(redis!.url, { prefix });
      const b = new RedisStore(redis!.url, { prefix });
      await a.open();
      await b.open();
      return { a, b, close: async () => { await a.close(); await b.close(); } };
    },
  },
];

async function withKit(make: () => Promise<Kit>, body: (k: Kit) => Promise<void>): Promise<void> {
  const kit = await make();
  try { await body(kit); } finally { await kit.close(); }
}

// --- the contract -----------------------------------------------------------------------

for (const kind of kinds) {
  const t = (name: string, body: (k: Kit) => Promise<void>) => test(`${kind.name}: ${name}`, { skip: kind.skip }, () => withKit(kind.make, body));

  t('create refuses past the cap of non-terminal records; finished or deleted ones free a slot', async ({ a, b }) => {
    const recs = [record(), record(), record()];
    for (const r of recs) assert.equal(await a.create(r, 3), true);
    assert.equal(await b.create(record(), 3), false, 'a fourth active record is over the cap');
    assert.equal((await a.list()).length, 3, 'the refused record was not stored');
    await b.update(recs[0]!.id, decide('rejected'));
    const fourth = record();
    assert.equal(await a.create(fourth, 3), true, 'a terminal record no longer counts');
    assert.equal(await a.create(record(), 3), false);
    await b.delete(recs[1]!.id);
    assert.equal(await a.create(record(), 3), true, 'a deleted record no longer counts');
    await a.update(fourth.id, decide('approved'));
    assert.equal(await a.create(record(), 3), false, 'approved is not terminal: it still counts');
  });

  t('create refuses past the byte budget of non-terminal records (at the edge it fits); finished or deleted ones free their bytes', async ({ a, b }) => {
    const r1 = record({ bytes: 600 });
    const r2 = record({ bytes: 400 });
    assert.equal(await a.create(r1, 100, 1000), true);
    assert.equal(await b.create(r2, 100, 1000), true, 'exactly at the budget: fits');
    assert.equal(await a.create(record({ bytes: 1 }), 100, 1000), false, 'one byte past it: full');
    assert.equal(await a.create(record({ bytes: 0 }), 100, 1000), true, 'a record of no bytes still fits');
    await b.update(r1.id, decide('rejected'));
    assert.equal(await a.create(record({ bytes: 600 }), 100, 1000), true, 'a terminal record no longer counts');
    assert.equal(await a.create(record({ bytes: 1 }), 100, 1000), false);
    await b.delete(r2.id);
    assert.equal(await a.create(record({ bytes: 400 }), 100, 1000), true, 'a deleted record no longer counts');
    assert.equal(await a.create(record({ bytes: 10_000 }), 100), true, 'no budget given: not checked');
  });

  t('get, list and delete', async ({ a, b }) => {
    const r1 = record({ arguments: { nested: { list: [1, 'two', null] }, text: 'é ✓' } });
    const r2 = record();
    await a.create(r1, 10);
    await a.create(r2, 10);
    assert.deepEqual(await b.get(r1.id), r1, 'a record reads back as written');
    assert.equal(await b.get('tg_missing'), undefined);
    assert.deepEqual((await b.list()).map((r) => r.id).sort(), [r1.id, r2.id].sort());
    await b.delete(r1.id);
    await b.delete(r1.id); // deleting twice is harmless
    assert.equal(await a.get(r1.id), undefined);
    assert.deepEqual((await a.list()).map((r) => r.id), [r2.id]);
  });

  t('update: fn sees the stored record; undefined leaves it alone; unknown ids are reported', async ({ a, b }) => {
    const r = record();
    await a.create(r, 10);
    const same = await b.update(r.id, (cur) => { assert.deepEqual(cur, r); return undefined; });
    assert.deepEqual(same, { rec: r, changed: false });
    const done = await b.update(r.id, (cur) => ({ ...cur, state: 'approved', decidedBy: 'console:alice' }));
    assert.equal(done.changed, true);
    assert.equal(done.rec?.state, 'approved');
    assert.equal((await a.get(r.id))?.decidedBy, 'console:alice');
    assert.deepEqual(await a.update('tg_missing', (cur) => cur), { rec: undefined, changed: false });
  });

  t('update is a compare-and-set: of 40 concurrent first decisions exactly one wins', async ({ a, b }) => {
    const r = record();
    await a.create(r, 10);
    const attempts = [];
    for (let n = 0; n < 20; n++) {
      for (const [store, name] of [[a, 'a'], [b, 'b']] as const) {
        const me = `me-${name}${n}`;
        const firstWins = (cur: ApprovalRecord) => (cur.state === 'pending' ? { ...cur, state: 'approved' as const, decidedBy: me } : undefined);
        attempts.push(store.update(r.id, firstWins).then((res) => ({ me, ...res })));
      }
    }
    const results = await Promise.all(attempts);
    const winners = results.filter((x) => x.changed);
    assert.equal(winners.length, 1, `exactly one update reports a change (got ${winners.map((w) => w.me).join(', ')})`);
    assert.equal((await a.get(r.id))?.decidedBy, winners[0]!.me, 'the stored decision is the winner\'s');
    for (const x of results) assert.equal(x.rec?.decidedBy, winners[0]!.me, 'losers see the winning record');
  });

  t('grants: put, list, overwrite, delete', async ({ a, b }) => {
    const g1 = grant({ argumentsKey: '{"amount":5}', sessionId: 'sess-1' });
    const g2 = grant();
    await a.putGrant(g1);
    await a.putGrant(g2);
    assert.deepEqual((await b.listGrants()).sort((x, y) => x.id.localeCompare(y.id)), [g1, g2].sort((x, y) => x.id.localeCompare(y.id)));
    await b.putGrant({ ...g1, grantedBy: 'console:carol' });
    assert.equal((await a.listGrants()).find((g) => g.id === g1.id)?.grantedBy, 'console:carol', 'same id replaces');
    assert.equal(await a.deleteGrant(g1.id), true);
    assert.equal(await b.deleteGrant(g1.id), false, 'already gone');
    assert.deepEqual((await b.listGrants()).map((g) => g.id), [g2.id]);
  });

  t('claimOnce: a key is claimed once across handles until its window closes, then may be claimed again', async ({ a, b }) => {
    const k = uniq('nonce');
    const now = Date.now();
    assert.equal(await a.claimOnce(k, now + 60_000), true, 'first claim');
    assert.equal(await b.claimOnce(k, now + 60_000), false, 'the other handle sees the claim');
    assert.equal(await a.claimOnce(k, now + 60_000), false, 'and so does the same one');
    const other = uniq('nonce');
    assert.equal(await b.claimOnce(other, now + 60_000), true, 'keys are independent');
    const brief = uniq('nonce');
    assert.equal(await a.claimOnce(brief, Date.now() + 30), true);
    await until('the brief claim to lapse', async () => (await b.claimOnce(brief, Date.now() + 60_000)) || undefined);
  });

  t('claimOnce: of 20 concurrent claims of one key exactly one wins', async ({ a, b }) => {
    const k = uniq('nonce');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claimOnce(k, Date.now() + 60_000)));
    assert.equal(results.filter(Boolean).length, 1);
  });

  t('subscribe: every change made through one handle reaches a listener on the other, once', async ({ a, b }) => {
    const seen: string[] = [];
    b.subscribe((id) => seen.push(id));
    const r = record();
    await a.create(r, 10);
    await a.update(r.id, decide('approved'));
    await a.update(r.id, () => undefined); // not a change
    await a.delete(r.id);
    // A later change as a marker: notifications arrive in order, so once it is seen every earlier one was.
    const marker = record();
    await a.create(marker, 10);
    await until('the marker notification', () => seen.includes(marker.id));
    assert.deepEqual(seen.filter((id) => id === r.id), [r.id, r.id, r.id], 'create, update and delete: one notification each');
  });
}

// --- Redis only ---------------------------------------------------------------------------

test('RedisStore: an unreachable server fails open() quickly, naming the URL without its password', async () => {
  const store = new RedisStore('redis://:s3cret@127.0.0.1:1/0');
  assert.equal(store.where, 'redis://:***@127.0.0.1:1/0');
  await assert.rejects(store.open(), (e: Error) => {
    assert.match(e.message, /redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0/);
    assert.doesNotMatch(e.message, /s3cret/);
    return true;
  });
  await store.close();
});

test('redactRedisUrl hides passwords only', () => {
  assert.equal(redactRedisUrl('redis://user:pw@host:6379'), 'redis://user:***@host:6379');
  assert.equal(redactRedisUrl('rediss://:pw@host'), 'rediss://:***@host');
  assert.equal(redactRedisUrl('redis://host:6379/2'), 'redis://host:6379/2');
});

test('RedisStore: heartbeat marks a replica alive until its ttl runs out', { skip: NO_REDIS }, async () => {
  const store = new RedisStore(redis!.url, { prefix: uniq('tgtest') });
  await store.open();
  try {
    assert.equal(await store.isAlive('A'), false);
    await store.heartbeat('A', 60_000);
    assert.equal(await store.isAlive('A'), true);
    assert.equal(await store.isAlive('B'), false);
    await store.heartbeat('A', 30);
    await until('the heartbeat to expire', async () => !(await store.isAlive('A')));
  } finally {
    await store.close();
  }
});

test('RedisStore: after its subscriber reconnects, every record is announced again (changes meanwhile were lost)', { skip: NO_REDIS }, async () => {
  const prefix = uniq('tgtest');
  const a = new RedisStore(redis!.url, { prefix });
  const b = new RedisStore(redis!.url, { prefix });
  const admin = new Redis(redis!.url);
  await a.open();
  await b.open();
  try {
    const r = record();
    await a.create(r, 10);
    const seen: string[] = [];
    b.subscribe((id) => seen.push(id));
    const marker = record();
    await a.create(marker, 10);
    await until('the live notification', () => seen.includes(marker.id));
    seen.length = 0;
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'); // every subscriber connection on this server drops
    await until('both records announced after the reconnect', () => seen.includes(r.id) && seen.includes(marker.id));
    const later = record();
    await a.create(later, 10);
    await until('live notifications again', () => seen.includes(later.id));
  } finally {
    admin.disconnect();
    await a.close();
    await b.close();
  }
});

test('RedisStore: prefixes keep deployments apart', { skip: NO_REDIS }, async () => {
  const one = new RedisStore(redis!.url, { prefix: uniq('tgtest') });
  const two = new RedisStore(redis!.url, { prefix: uniq('tgtest') });
  await one.open();
  await two.open();
  try {
    await one.create(record(), 1);
    assert.equal(await two.create(record(), 1), true, 'the other prefix has its own cap');
    assert.equal((await two.list()).length, 1);
  } finally {
    await one.close();
    await two.close();
  }
});

// --- FileStore only -------------------------------------------------------------------------

const FILE_JS = new URL('./file.js', import.meta.url).href;

/** A node child running `source` (an ES module); resolves once it printed `ready`. */
function child(source: string): { proc: ReturnType<typeof spawn>; out: () => string; ready: Promise<void>; exited: Promise<unknown> } {
  const script = join(tempDir(), 'child.mjs');
  writeFileSync(script, source);
  const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise((r) => proc.once('exit', r));
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d) => { out += d; if (out.includes('ready\n')) resolve(); });
    proc.stderr!.on('data', (d) => { err += d; });
    void exited.then(() => reject(new Error(`child exited before it was ready:\n${out}\n${err}`)));
  });
  ready.catch(() => {}); // awaited by the caller when it matters
  return { proc, out: () => out, ready, exited };
}

test('FileStore: records and grants survive close and reopen', async () => {
  const dir = tempDir();
  const s1 = new FileStore(dir);
  await s1.open();
  const kept = record();
  const gone = record();
  const g = grant();
  await s1.create(kept, 10);
  await s1.create(gone, 10);
  await s1.update(kept.id, decide('approved'));
  await s1.delete(gone.id);
  await s1.putGrant(g);
  await s1.close();

  const s2 = new FileStore(dir);
  await s2.open();
  assert.equal((await s2.get(kept.id))?.state, 'approved', 'the update survived');
  assert.equal(await s2.get(gone.id), undefined, 'the delete survived');
  assert.deepEqual(await s2.listGrants(), [g]);
  await s2.close();
});

test('FileStore: a claimed nonce is still claimed after close and reopen (replays across a restart are refused)', async () => {
  const dir = tempDir();
  const first = new FileStore(dir);
  await first.open();
  assert.equal(await first.claimOnce('webhook:sig-1', Date.now() + 60_000), true);
  assert.equal(await first.claimOnce('webhook:lapsed', Date.now() - 1), true, 'a claim already lapsed');
  await first.close();
  const second = new FileStore(dir);
  await second.open();
  try {
    assert.equal(await second.claimOnce('webhook:sig-1', Date.now() + 60_000), false, 'the claim survived the restart');
    assert.equal(await second.claimOnce('webhook:lapsed', Date.now() + 60_000), true, 'a lapsed claim is not kept');
  } finally {
    await second.close();
  }
});

test('FileStore: a torn final journal line (a write cut short) is ignored', async () => {
  const dir = tempDir();
  const s1 = new FileStore(dir);
  await s1.open();
  const r = record();
  await s1.create(r, 10);
  await s1.close();
  appendFileSync(join(dir, 'approvals.jsonl'), '{"t":"r","v":{"id":"tg_torn","state":"pen');

  const s2 = new FileStore(dir);
  await s2.open();
  assert.deepEqual((await s2.list()).map((x) => x.id), [r.id]);
  const later = record();
  await s2.create(later, 10);
  await s2.close();

  const s3 = new FileStore(dir); // the torn line must not poison later replays
  await s3.open();
  assert.deepEqual((await s3.list()).map((x) => x.id).sort(), [r.id, later.id].sort());
  await s3.close();
});

test('FileStore: a corrupt line that is not the last one is skipped (logged), never fatal; the journal as it was is kept aside', async () => {
  const dir = tempDir();
  const good = record();
  const text = 'not json\n' + JSON.stringify({ t: 'r', v: good }) + '\n';
  writeFileSync(join(dir, 'approvals.jsonl'), text);
  const warned: string[] = [];
  const s = new FileStore(dir, { warn: (msg) => warned.push(msg) });
  await s.open();
  assert.deepEqual((await s.list()).map((x) => x.id), [good.id], 'the record after the bad line is kept');
  assert.ok(warned.some((m) => /corrupt line skipped/.test(m)), `logged: ${warned.join('; ')}`);
  const aside = readdirSync(dir).filter((f) => f.startsWith('approvals.jsonl.damaged-'));
  assert.equal(aside.length, 1, 'the damaged journal is kept beside the compacted one');
  assert.equal(readFileSync(join(dir, aside[0]!), 'utf8'), text);
  await s.close();
});

test('FileStore: a directory held by a live process is refused; once that process is gone it is taken over', async () => {
  const dir = tempDir();
  const holder = child(`
    import { FileStore } from ${JSON.stringify(FILE_JS)};
    const s = new FileStore(${JSON.stringify(dir)});
    await s.open();
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `);
  await holder.ready;
  try {
    await assert.rejects(new FileStore(dir).open(), (e: Error) => {
      assert.ok(e instanceof StateDirInUseError, `a StateDirInUseError, got ${e.name}: ${e.message}`);
      assert.match(e.message, new RegExp(`process ${holder.proc.pid}`));
      return true;
    });
  } finally {
    holder.proc.kill('SIGKILL');
    await holder.exited;
  }
  const s = new FileStore(dir);
  await s.open(); // the lock names a dead pid now
  assert.equal(readFileSync(join(dir, 'lock'), 'utf8').trim(), String(process.pid), 'the lock is ours');
  await s.close();
});

test('FileStore: a stale lock file of a dead pid is taken over', async () => {
  const dir = tempDir();
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => dead.once('exit', r));
  writeFileSync(join(dir, 'lock'), String(dead.pid));
  const s = new FileStore(dir);
  await s.open();
  await s.create(record(), 10);
  await s.close();
});

test('FileStore: kill -9 loses no acknowledged record', async () => {
  const dir = tempDir();
  const writer = child(`
    import { FileStore } from ${JSON.stringify(FILE_JS)};
    const s = new FileStore(${JSON.stringify(dir)});
    await s.open();
    process.stdout.write('ready\\n');
    const base = ${JSON.stringify(record())};
    for (let i = 0; ; i++) {
      const id = 'tg_kill_' + i;
      // several in flight at once, so group commits are in the picture too
      await Promise.all([0, 1, 2].map((k) => s.create({ ...base, id: id + '_' + k }, 1e9).then(() => process.stdout.write('ack ' + id + '_' + k + '\\n'))));
    }
  `);
  await writer.ready;
  const acked = () => writer.out().split('\n').slice(0, -1).filter((l) => l.startsWith('ack ')).map((l) => l.slice(4));
  await until('50 acknowledged creates', () => acked().length >= 50, 60_000);
  writer.proc.kill('SIGKILL');
  await writer.exited;
  const ids = acked(); // whatever reached us before the kill: all of it was acknowledged

  const s = new FileStore(dir);
  await s.open();
  const stored = new Set((await s.list()).map((r) => r.id));
  const lost = ids.filter((id) => !stored.has(id));
  assert.deepEqual(lost, [], `${lost.length} of ${ids.length} acknowledged records were lost`);
  await s.close();
});

test('FileStore: a journal line over the length limit is skipped (logged), the lines around it kept', async () => {
  const dir = tempDir();
  const before = record();
  const after = record();
  const big = record({ arguments: { blob: 'z'.repeat(5000) } });
  writeFileSync(join(dir, 'approvals.jsonl'), [before, big, after].map((v) => JSON.stringify({ t: 'r', v })).join('\n') + '\n');
  const warned: string[] = [];
  const s = new FileStore(dir, { maxLineBytes: 4096, warn: (msg) => warned.push(msg) });
  await s.open();
  assert.deepEqual((await s.list()).map((x) => x.id).sort(), [before.id, after.id].sort());
  assert.ok(warned.some((m) => /over the length limit/.test(m)), `logged: ${warned.join('; ')}`);
  await s.close();
  // at the limit (the line without its newline) it is read
  const exact = JSON.stringify({ t: 'r', v: big });
  writeFileSync(join(dir, 'approvals.jsonl'), exact + '\n');
  const s2 = new FileStore(dir, { maxLineBytes: Buffer.byteLength(exact), warn: () => {} });
  await s2.open();
  assert.deepEqual((await s2.list()).map((x) => x.id), [big.id]);
  await s2.close();
});

test('FileStore: records larger than a read chunk replay whole, also after compaction and a reopen', async () => {
  const dir = tempDir();
  const s1 = new FileStore(dir);
  await s1.open();
  const recs = [0, 1, 2].map((i) => record({ arguments: { i, blob: 'é'.repeat(700_000 + i) } })); // ~1.4 MB lines, multi-byte characters across chunk edges
  for (const r of recs) await s1.create(r, 10);
  await s1.close();
  for (let round = 0; round < 2; round++) {
    const s = new FileStore(dir);
    await s.open();
    const got = new Map((await s.list()).map((x) => [x.id, x]));
    for (const r of recs) assert.deepEqual(got.get(r.id)?.arguments, r.arguments, `round ${round}: ${r.id} intact`);
    await s.close();
  }
});

test('writeAll completes short writes, and fails (never pretends) when nothing can be written', async () => {
  const got: number[] = [];
  const oneByte = { write: async (b: Buffer, off: number, len: number) => { assert.ok(len > 0); got.push(b[off]!); return { bytesWritten: 1, buffer: b }; } };
  await writeAll(oneByte as never, Buffer.from('hello'));
  assert.equal(Buffer.from(got).toString(), 'hello');
  const stuck = { write: async (b: Buffer) => ({ bytesWritten: 0, buffer: b }) };
  await assert.rejects(writeAll(stuck as never, Buffer.from('x')), /short write/);
});

test('FileStore: a write that fails part-way acknowledges nothing, leaves no record, and later lines stay readable', async () => {
  const dir = tempDir();
  const s = new FileStore(dir);
  await s.open();
  const kept = record();
  await s.create(kept, 10);
  // The next write reaches the file only in part, then the disk is full.
  const inner = (s as unknown as { fh: import('node:fs/promises').FileHandle }).fh;
  let fail = true;
  const faulty = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'write') {
        return async (b: Buffer, off: number, len: number) => {
          if (!fail) return target.write(b, off, len);
          fail = false;
          await target.write(b, off, Math.floor(len / 2));
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  (s as unknown as { fh: unknown }).fh = faulty;
  const lost = record();
  await assert.rejects(s.create(lost, 10), /ENOSPC/);
  assert.equal(await s.get(lost.id), undefined, 'not acknowledged, not listed');
  // the same for an update, a delete and a grant: as before the failed write
  for (const failing of [
    () => s.update(kept.id, decide('approved')),
    () => s.delete(kept.id),
  ]) {
    fail = true;
    await assert.rejects(failing(), /ENOSPC/);
    assert.equal((await s.get(kept.id))?.state, 'pending', 'the record is as it was');
  }
  fail = true;
  await assert.rejects(s.putGrant(grant()), /ENOSPC/);
  assert.deepEqual(await s.listGrants(), [], 'no grant that was not written');
  const later = record();
  await s.create(later, 10);
  (s as unknown as { fh: unknown }).fh = inner;
  await s.close();
  const warned: string[] = [];
  const s2 = new FileStore(dir, { warn: (m) => warned.push(m) });
  await s2.open();
  assert.deepEqual((await s2.list()).map((x) => x.id).sort(), [kept.id, later.id].sort(), 'the failed record is gone, the later one whole');
  assert.deepEqual(warned, [], 'the torn half was cut off the journal: nothing to skip');
  await s2.close();
});

test('FileStore on a full disk (tmpfs): new records are refused, nothing acknowledged is lost, it reopens while full and recovers when space returns', async (t) => {
  const mnt = tempDir();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
  if (mounted.status !== 0) { t.skip('cannot mount a tmpfs here (needs root)'); return; }
  try {
    const dir = join(mnt, 'state');
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(64 * 1024)); // removed later: the space that returns
    const s = new FileStore(dir);
    await s.open();
    const acked: string[] = [];
    let refused: Error | undefined;
    for (let i = 0; i < 1000 && refused === undefined; i++) {
      const r = record({ arguments: { i, blob: 'f'.repeat(4000) } });
      try {
        await s.create(r, 1e9);
        acked.push(r.id);
      } catch (e) { refused = e as Error; }
    }
    assert.ok(refused, 'the disk filled up');
    assert.match(String((refused as NodeJS.ErrnoException).code ?? refused.message), /ENOSPC|short write/);
    assert.equal((await s.list()).length, acked.length, 'the refused record is not listed');
    await s.close();
    // Reopen while the disk is still full: compaction cannot write; the store opens anyway.
    const warned: string[] = [];
    const s2 = new FileStore(dir, { warn: (m) => warned.push(m) });
    await s2.open();
    assert.deepEqual((await s2.list()).map((x) => x.id).sort(), [...acked].sort(), 'every acknowledged record is there');
    assert.ok(warned.some((m) => /compaction skipped/.test(m)), `compaction was skipped: ${warned.join('; ')}`);
    await assert.rejects(s2.create(record({ arguments: { blob: 'f'.repeat(4000) } }), 1e9), 'still full: refused');
    // Space returns: the same open store takes new records again.
    rmSync(filler);
    const fresh = record();
    await s2.create(fresh, 1e9);
    await s2.close();
    const s3 = new FileStore(dir, { warn: () => {} });
    await s3.open();
    assert.deepEqual((await s3.list()).map((x) => x.id).sort(), [...acked, fresh.id].sort());
    await s3.close();
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('FileStore: a journal of few lines but many bytes (big records updated often) is compacted by its size', async () => {
  const dir = tempDir();
  const s = new FileStore(dir, { compactMinBytes: 64 * 1024 });
  await s.open();
  const big = record({ arguments: { blob: 'q'.repeat(20_000) } });
  await s.create(big, 10);
  for (let i = 0; i < 60; i++) await s.update(big.id, (r) => ({ ...r, updatedAt: r.updatedAt + 1 }));
  // 61 lines of ~20 KB: ~1.2 MB without compaction; with it, at most ~4x the 64 KiB floor
  const size = statSync(join(dir, 'approvals.jsonl')).size;
  assert.ok(size < 4 * 64 * 1024 + 25_000, `journal is ${size} bytes`);
  await s.close();
  const s2 = new FileStore(dir);
  await s2.open();
  assert.equal((await s2.get(big.id))?.updatedAt, big.updatedAt + 60, 'the latest version survived compaction');
  await s2.close();
});
