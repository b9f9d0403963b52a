import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalEngine, type NewApproval } from '../engine.js';
import { FileStore } from '../store/file.js';
import type { ApprovalChannel, ApprovalRecord } from '../types.js';
import { startInboundServer, type InboundServer } from '../../admin/inbound.js';
import { handleWebhookCallback, WebhookChannel, webhookRoute } from './webhook.js';

const SECRET = 'whsec-test-5f1c0e';

/** Independent of the module under test: the scheme as documented. */
const hmac = (secret: string, ts: string, body: string): string => 'sha256=' + createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');

interface Received { headers: http.IncomingHttpHeaders; body: string }

/** A receiver that records what it gets and answers with the next status in `statuses` (then 200). */
async function receiver(statuses: number[] = []): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(statuses.shift() ?? 200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/thoughtgate?token=abc`,
    got,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let dir: string;
let store: FileStore;
let engine: ApprovalEngine;
let inbound: InboundServer;
let inboundBase: string;
const channels = new Map<string, ApprovalChannel>();
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];

function newApproval(over: Partial<NewApproval> = {}): NewApproval {
  return {
    mode: 'task', method: 'tools/call', tool: 'drop_table', arguments: { table: 'users' }, principal: 'agent-3', sessionId: 'sess-9',
    sourceId: 'db', workflow: 'dba', channel: 'none', snapshot: 'v1', correlationId: 'c', timeoutMs: 600_000, onTimeout: 'deny',
    requiredApprovals: 1, approvers: [], request: { path: '/mcp', headers: {}, body: '{}' }, requestId: 7, ...over,
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-webhook-'));
  store = new FileStore(dir);
  await store.open();
  engine = new ApprovalEngine({
    store, channels, replicaId: 'r1', maxPending: 100, retentionMs: 600_000,
    execute: async () => ({ result: { content: [{ type: 'text', text: 'ok' }] } }),
    events: { transition: () => {}, log: (level, msg, fields) => logs.push({ level, msg, fields }) },
  });
  await engine.start();
  inbound = await startInboundServer({ port: 0, host: '127.0.0.1', routes: [webhookRoute({ decider: engine, secret: SECRET })] });
  inboundBase = `http://127.0.0.1:${inbound.port}`;
});

after(async () => {
  await inbound.close();
  await engine.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a request is posted signed, with what a person needs and where to answer', async () => {
  const hook = await receiver();
  const ch = new WebhookChannel({ url: hook.url, secret: SECRET, callbackBase: 'http://tg.internal:7468/', log: (l, m, f) => logs.push({ level: l, msg: m, fields: f }) });
  channels.set('hook-a', ch);
  try {
    const before = Math.floor(Date.now() / 1000);
    const rec = await engine.request(newApproval({ channel: 'hook-a' }));
    const got = await until('the post', () => hook.got[0]);
    assert.equal(got.headers['content-type'], 'application/json');
    const ts = got.headers['x-thoughtgate-timestamp'] as string;
    assert.match(ts, /^\d+$/);
    assert.ok(Math.abs(Number(ts) - before) <= 5);
    assert.equal(got.headers['x-thoughtgate-signature'], hmac(SECRET, ts, got.body));
    assert.notEqual(got.headers['x-thoughtgate-signature'], hmac('other-secret', ts, got.body));
    assert.deepEqual(JSON.parse(got.body), {
      type: 'approval.requested', id: rec.id, tool: 'drop_table', principal: 'agent-3', arguments: { table: 'users' }, workflow: 'dba',
      session: 'sess-9', created_at: new Date(rec.createdAt).toISOString(), expires_at: new Date(rec.expiresAt).toISOString(),
      required_approvals: 1, callback_url: `http://tg.internal:7468/approvals/${rec.id}`,
    });

    // The outcome follows, signed the same way.
    await engine.decide(rec.id, { verdict: 'reject', by: 'console:eve', reason: 'no' });
    const upd = await until('the update', () => hook.got[1]);
    const uts = upd.headers['x-thoughtgate-timestamp'] as string;
    assert.equal(upd.headers['x-thoughtgate-signature'], hmac(SECRET, uts, upd.body));
    const u = JSON.parse(upd.body) as Record<string, unknown>;
    assert.equal(u.type, 'approval.rejected');
    assert.equal(u.id, rec.id);
    assert.equal(u.decided_by, 'console:eve');
    assert.equal(u.reason, 'no');
  } finally {
    channels.delete('hook-a');
    await ch.close();
    await hook.close();
  }
});

test('5xx is retried, 4xx is not; a failed delivery is logged and the record stays pending', async () => {
  const hook = await receiver([503, 502]);
  const chLogs: string[] = [];
  const ch = new WebhookChannel({ url: hook.url, secret: SECRET, callbackBase: 'http://x', retryDelaysMs: [5, 5, 5], log: (_l, m) => chLogs.push(m) });
  const rec = await engine.request(newApproval());
  await ch.post(rec);
  assert.equal(hook.got.length, 3, 'two failures, then delivered');
  // every attempt is signed afresh and verifies
  for (const g of hook.got) assert.equal(g.headers['x-thoughtgate-signature'], hmac(SECRET, g.headers['x-thoughtgate-timestamp'] as string, g.body));
  assert.deepEqual(chLogs, []);

  const refusing = await receiver([400, 400, 400]);
  const fields: Record<string, unknown>[] = [];
  const ch2 = new WebhookChannel({ url: refusing.url, secret: SECRET, callbackBase: 'http://x', retryDelaysMs: [5, 5], log: (_l, _m, f) => fields.push(f!) });
  await ch2.post(rec);
  assert.equal(refusing.got.length, 1, 'a 4xx is not retried');
  assert.equal(fields[0]!.err, 'HTTP 400');
  assert.equal(fields[0]!.url, new URL(refusing.url).origin, 'the URL token stays out of the log');

  await refusing.close();
  const down = new WebhookChannel({ url: refusing.url, secret: SECRET, callbackBase: 'http://x', retryDelaysMs: [5, 5], log: (_l, _m, f) => fields.push(f!) });
  await down.post(rec);
  assert.equal(fields[1]!.attempts, 3, 'network errors are retried');
  assert.equal((await engine.get(rec.id))!.state, 'pending');
  assert.throws(() => new WebhookChannel({ url: hook.url, secret: '', callbackBase: 'http://x', log: () => {} }), /secret/);
  await hook.close();
  await engine.cancel(rec.id, 'test');
});

async function callback(id: string, body: unknown, opts: { secret?: string; ts?: number; sig?: string; raw?: string } = {}): Promise<{ status: number; json: any }> {
  const text = opts.raw ?? JSON.stringify(body);
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const r = await fetch(`${inboundBase}/approvals/${id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-thoughtgate-timestamp': ts, 'x-thoughtgate-signature': opts.sig ?? hmac(opts.secret ?? SECRET, ts, text) },
    body: text,
  });
  return { status: r.status, json: await r.json() };
}

const stateOf = async (id: string): Promise<ApprovalRecord['state'] | undefined> => (await engine.get(id))?.state;

test('a correctly signed callback decides; bad or stale signatures decide nothing', async () => {
  const rec = await engine.request(newApproval());
  const decision = { decision: 'approve', by: 'ops-bot', reason: 'ticket CHG-42' };

  assert.equal((await callback(rec.id, decision, { secret: 'wrong-secret' })).status, 401);
  assert.equal((await callback(rec.id, decision, { sig: 'sha256=' + '0'.repeat(64) })).status, 401);
  assert.equal((await callback(rec.id, decision, { sig: 'garbage' })).status, 401);
  assert.equal((await callback(rec.id, decision, { ts: Math.floor(Date.now() / 1000) - 600 })).status, 401, 'stale');
  assert.equal((await callback(rec.id, decision, { ts: Math.floor(Date.now() / 1000) + 600 })).status, 401, 'from the future');
  const unsigned = await fetch(`${inboundBase}/approvals/${rec.id}`, { method: 'POST', body: JSON.stringify(decision) });
  assert.equal(unsigned.status, 401);
  assert.equal(await stateOf(rec.id), 'pending');

  const ok = await callback(rec.id, decision);
  assert.equal(ok.status, 200);
  assert.equal(ok.json.ok, true);
  assert.ok(['approved', 'executing', 'completed'].includes(ok.json.state), ok.json.state);
  await until('completed', async () => (await stateOf(rec.id)) === 'completed');
  const done = (await engine.get(rec.id))!;
  assert.equal(done.decidedBy, 'webhook:dba', "the webhook's own identity (its workflow), not the body's by");
  assert.equal(done.votes[0]!.reason, 'ticket CHG-42');

  const again = await callback(rec.id, { decision: 'reject', by: 'other' });
  assert.equal(again.status, 409);
  assert.equal(again.json.error, 'already_decided');
  assert.equal((await callback('tg_doesnotexist000000000', { decision: 'approve', by: 'ops-bot', id: 'tg_doesnotexist000000000' })).status, 404);
});

test('invalid callback bodies are 400; a used signature cannot decide another call', async () => {
  const rec = await engine.request(newApproval());
  for (const body of [{ decision: 'maybe', by: 'x' }, { decision: 'approve', by: 7 }, { decision: 'approve', by: '' }, { decision: 'reject', by: 'x', reason: 7 }, [], { decision: 'approve', by: 'x', id: 'tg_other' }]) {
    const r = await callback(rec.id, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error, 'invalid_request');
  }
  assert.equal((await callback(rec.id, null, { raw: '{nope' })).status, 400);
  assert.equal(await stateOf(rec.id), 'pending');

  // Replaying the exact signed request that rejected one call against another is refused.
  const other = await engine.request(newApproval());
  const ts = String(Math.floor(Date.now() / 1000));
  const text = JSON.stringify({ decision: 'reject', by: 'ops-bot', reason: 'no' });
  const headers = { 'x-thoughtgate-timestamp': ts, 'x-thoughtgate-signature': hmac(SECRET, ts, text) };
  const first = await handleWebhookCallback(rec.id, Buffer.from(text), headers, engine, SECRET);
  assert.equal(first.status, 200);
  assert.equal(await stateOf(rec.id), 'rejected');
  const replay = await handleWebhookCallback(other.id, Buffer.from(text), headers, engine, SECRET);
  assert.equal(replay.status, 409);
  assert.equal(JSON.parse(replay.body).error, 'replayed');
  assert.equal(await stateOf(other.id), 'pending');
  // A body that names its id is bound to it (the signature covers the id).
  const bound = JSON.stringify({ decision: 'approve', by: 'ops-bot', id: rec.id });
  const boundHeaders = { 'x-thoughtgate-timestamp': ts, 'x-thoughtgate-signature': hmac(SECRET, ts, bound) };
  assert.equal((await handleWebhookCallback(other.id, Buffer.from(bound), boundHeaders, engine, SECRET)).status, 400);
  assert.equal(await stateOf(other.id), 'pending');

  // The 5-minute window is measured against the clock given.
  const later = await handleWebhookCallback(other.id, Buffer.from(text), headers, engine, SECRET, Date.now() + 301_000);
  assert.equal(later.status, 401);
  assert.equal(await stateOf(other.id), 'pending');
  await engine.cancel(other.id, 'test');
});

test('a signed decision without an id is used once, also after a restart (the claim is in the state store)', async () => {
  const d2 = mkdtempSync(join(tmpdir(), 'tg-webhook-restart-'));
  const mk = async () => {
    const st = new FileStore(d2);
    await st.open();
    const en = new ApprovalEngine({
      store: st, channels: new Map(), replicaId: 'r-restart', maxPending: 100, retentionMs: 600_000,
      execute: async () => ({ result: {} }), events: { transition: () => {}, log: () => {} },
    });
    await en.start();
    return { st, en };
  };
  try {
    const one = await mk();
    const a = await one.en.request(newApproval());
    const b = await one.en.request(newApproval());
    const ts = String(Math.floor(Date.now() / 1000));
    const text = JSON.stringify({ decision: 'approve', by: 'ops-bot' });
    const headers = { 'x-thoughtgate-timestamp': ts, 'x-thoughtgate-signature': hmac(SECRET, ts, text) };
    assert.equal((await handleWebhookCallback(a.id, Buffer.from(text), headers, one.en, SECRET)).status, 200);
    await one.en.close();
    await one.st.close();

    const two = await mk();
    try {
      const replay = await handleWebhookCallback(b.id, Buffer.from(text), headers, two.en, SECRET);
      assert.equal(replay.status, 409, 'the same signed body after a restart is a replay');
      assert.equal(JSON.parse(replay.body).error, 'replayed');
      assert.equal((await two.en.get(b.id))?.state, 'pending');
    } finally {
      await two.en.close();
      await two.st.close();
    }
  } finally {
    rmSync(d2, { recursive: true, force: true });
  }
});

test("the body's by is not a person: one webhook is one vote, however many names it sends", async () => {
  const rec = await engine.request(newApproval({ requiredApprovals: 2 }));
  assert.equal((await callback(rec.id, { decision: 'approve', by: 'alice', id: rec.id })).status, 200);
  const second = await callback(rec.id, { decision: 'approve', by: 'bob', id: rec.id });
  assert.equal(second.status, 409);
  assert.equal(second.json.error, 'duplicate_vote');
  assert.equal(await stateOf(rec.id), 'pending');
  await engine.cancel(rec.id, 'test');
});

test("the request sent to the receiver masks the workflow's redact_fields (key kept, other arguments clear)", async () => {
  const hook = await receiver();
  const ch = new WebhookChannel({ url: hook.url, secret: SECRET, callbackBase: 'http://tg.internal:7468/', log: () => {} });
  channels.set('hook-r', ch);
  try {
    const rec = await engine.request(newApproval({ channel: 'hook-r', arguments: { account: 'acct-1', iban: 'DE0012345678' }, redactFields: ['iban'] }));
    const got = await until('the post', () => hook.got[0]);
    assert.ok(!got.body.includes('DE0012345678'), got.body);
    assert.deepEqual(JSON.parse(got.body).arguments, { account: 'acct-1', iban: '[REDACTED]' });
    await engine.cancel(rec.id, 'test');
  } finally {
    channels.delete('hook-r');
    await ch.close();
    await hook.close();
  }
});

test('the inbound server: only its routes, small bodies, POST only', async () => {
  assert.equal((await fetch(`${inboundBase}/elsewhere`, { method: 'POST', body: '{}' })).status, 404);
  assert.equal((await fetch(`${inboundBase}/approvals/tg_x`)).status, 405);
  const big = await fetch(`${inboundBase}/approvals/tg_x`, { method: 'POST', body: 'x'.repeat(65 * 1024) });
  assert.equal(big.status, 413);
  const mid = await fetch(`${inboundBase}/approvals/tg_x`, { method: 'POST', body: 'x'.repeat(20 * 1024) });
  assert.equal(mid.status, 413, 'the callback route reads at most 16 KiB');
  // Without a declared length (chunked) the limit holds while reading.
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${inboundBase}/approvals/tg_x`, { method: 'POST' }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    for (let i = 0; i < 20; i++) req.write('x'.repeat(1024));
    req.end();
  });
  assert.equal(chunked, 413);
});
