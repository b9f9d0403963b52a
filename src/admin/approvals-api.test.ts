import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalEngine, type NewApproval } from '../approvals/engine.js';
import { FileStore } from '../approvals/store/file.js';
import type { ApprovalRecord } from '../approvals/types.js';
import type { WorkflowConfig } from '../policy/types.js';
import { approvalRoutes, CONSOLE_CSP, type ApprovalView, type GrantView } from './approvals-api.js';
import { startAdminServer, type AdminServer } from './server.js';

const TOKEN = 'test-admin-token-0123456789abcdef';

let dir: string;
let store: FileStore;
let engine: ApprovalEngine;
let admin: AdminServer;
let base: string;
let executed: string[] = [];
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
let streamsOpen = 0;

function newApproval(over: Partial<NewApproval> = {}): NewApproval {
  return {
    mode: 'held', method: 'tools/call', tool: 'delete_file', arguments: { path: '/srv/data.db', force: true },
    principal: 'agent-7', sessionId: 'sess-1', sourceId: 'upstream', workflow: 'default', channel: 'console',
    snapshot: 'v1', correlationId: 'corr-1', timeoutMs: 600_000, onTimeout: 'deny', requiredApprovals: 1, approvers: [],
    // The held request's headers may carry the agent's credentials: the API must never show them.
    request: { path: '/mcp', headers: { authorization: 'Bearer upstream-secret-xyz' }, body: '{}' }, requestId: 1,
    ...over,
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-approvals-api-'));
  store = new FileStore(dir);
  await store.open();
  engine = new ApprovalEngine({
    store, channels: new Map(), replicaId: 'r1', maxPending: 100, retentionMs: 600_000,
    execute: async (rec) => {
      executed.push(rec.id);
      return { result: { content: [{ type: 'text', text: 'ok' }] } };
    },
    events: { transition: () => {}, log: () => {} },
  });
  await engine.start();
  // Counts open event-stream subscriptions (the wrapper delegates everything to the engine).
  const counted = Object.create(engine) as ApprovalEngine;
  counted.onAnyChange = (fn) => {
    streamsOpen++;
    const off = engine.onAnyChange(fn);
    return () => {
      streamsOpen--;
      off();
    };
  };
  admin = await startAdminServer({
    port: 0, host: '127.0.0.1', version: 't', metrics: { render: async () => '', contentType: 'text/plain' },
    readiness: () => ({ ready: true, checks: {} }),
    routes: [approvalRoutes({ engine: counted, token: TOKEN, log: (level, msg, fields) => logs.push({ level, msg, fields }) })],
  });
  base = `http://127.0.0.1:${admin.port}`;
});

after(async () => {
  await admin.close();
  await engine.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const bearer = { authorization: `Bearer ${TOKEN}` };

async function call(method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown; raw?: string } = {}): Promise<{ status: number; headers: Headers; json: any; text: string }> {
  const headers: Record<string, string> = { ...bearer, ...opts.headers };
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const r = await fetch(base + path, { method, headers, body, redirect: 'manual' });
  const text = await r.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, json, text };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const stateOf = async (id: string): Promise<ApprovalRecord['state'] | undefined> => (await engine.get(id))?.state;

test('without the token: 401 on the API, the sign-in page at /approvals, nothing listed', async () => {
  const rec = await engine.request(newApproval());
  for (const headers of <Record<string, string>[]>[{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }, { cookie: 'tg_admin=wrong' }]) {
    const r = await fetch(`${base}/api/approvals`, { headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(((await r.json()) as { error: string }).error, 'unauthorized');
  }
  // A wrong bearer header is decisive even with a good cookie.
  assert.equal((await fetch(`${base}/api/approvals`, { headers: { authorization: 'Bearer wrong', cookie: `tg_admin=${TOKEN}` } })).status, 401);
  // The token itself is not a session: a cookie holding it is refused.
  for (const cookie of [`tg_admin=${TOKEN}`, `tg_session=${TOKEN}`]) assert.equal((await fetch(`${base}/api/approvals`, { headers: { cookie } })).status, 401, cookie);
  const page = await fetch(`${base}/approvals`);
  assert.equal(page.status, 401);
  assert.match(page.headers.get('content-type')!, /^text\/html/);
  assert.equal(page.headers.get('content-security-policy'), CONSOLE_CSP);
  const text = await page.text();
  assert.match(text, /<form method="post" action="\/approvals\/login">/);
  assert.ok(!text.includes(rec.id) && !text.includes('delete_file'));
  assert.equal((await fetch(`${base}/api/approvals/${rec.id}/approve`, { method: 'POST' })).status, 401);
  assert.equal(await stateOf(rec.id), 'pending');
  await engine.cancel(rec.id, 'test');
});

test('bearer list shows the pending record as a view, without the held request', async () => {
  const rec = await engine.request(newApproval({ tool: 'transfer_funds', arguments: { amount: 100, to: '<script>x</script>' } }));
  const r = await call('GET', '/api/approvals');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const list = r.json as ApprovalView[];
  assert.ok(list.every((v) => v.state === 'pending'));
  const v = list.find((x) => x.id === rec.id)!;
  assert.ok(v, 'listed');
  assert.deepEqual(v, {
    id: rec.id, state: 'pending', mode: 'held', method: 'tools/call', tool: 'transfer_funds', principal: 'agent-7',
    arguments: { amount: 100, to: '<script>x</script>' }, workflow: 'default', channel: 'console', session: 'sess-1',
    created_at: new Date(rec.createdAt).toISOString(), expires_at: new Date(rec.expiresAt).toISOString(),
    updated_at: new Date(rec.updatedAt).toISOString(), required_approvals: 1, votes: [],
  });
  assert.ok(!r.text.includes('upstream-secret-xyz'), 'held request headers are not exposed');
  const one = await call('GET', `/api/approvals/${rec.id}`);
  assert.equal(one.status, 200);
  assert.deepEqual(one.json, v);
  assert.equal((await call('GET', '/api/approvals/tg_nonexistent000000000')).status, 404);
  assert.equal((await call('GET', '/api/approvals/tg_nonexistent000000000')).json.error, 'not_found');
  assert.equal((await call('GET', '/api/approvals?state=bogus')).status, 400);
  // newest first
  const second = await engine.request(newApproval());
  const ids = ((await call('GET', '/api/approvals')).json as ApprovalView[]).map((x) => x.id);
  assert.ok(ids.indexOf(second.id) < ids.indexOf(rec.id));
  await engine.cancel(rec.id, 'test');
  await engine.cancel(second.id, 'test');
});

test('approve executes the call once; a second decision is 409', async () => {
  const rec = await engine.request(newApproval());
  const r = await call('POST', `/api/approvals/${rec.id}/approve`, { body: { by: 'alice', via: 'cli' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.ok, true);
  assert.equal(r.json.final, true);
  // The admin token votes as the one operator, whatever name the body types.
  assert.equal(r.json.approval.decided_by, 'cli:operator');
  await until('completed', async () => (await stateOf(rec.id)) === 'completed');
  assert.deepEqual(executed.filter((x) => x === rec.id), [rec.id]);
  const view = (await call('GET', `/api/approvals/${rec.id}`)).json as ApprovalView;
  assert.equal(view.outcome, 'completed');
  assert.equal(view.votes.length, 1);
  assert.equal(view.votes[0]!.by, 'cli:operator');

  const again = await call('POST', `/api/approvals/${rec.id}/approve`, { body: { by: 'bob' } });
  assert.equal(again.status, 409);
  assert.equal(again.json.error, 'already_decided');
  assert.match(again.json.message, /cli:operator/);
  const rej = await call('POST', `/api/approvals/${rec.id}/reject`, { body: { by: 'bob', reason: 'late' } });
  assert.equal(rej.status, 409);
  assert.equal(executed.filter((x) => x === rec.id).length, 1);
  assert.ok(logs.some((l) => l.msg.includes('approve') && l.fields?.approval_id === rec.id && l.fields?.by === 'cli:operator' && l.fields?.claimed_by === 'alice'), 'logged with who, and who they said they were');
  assert.equal((await call('POST', '/api/approvals/tg_nonexistent000000000/approve', { body: {} })).status, 404);
});

test('reject keeps the reason; the admin token decides as api:operator', async () => {
  const rec = await engine.request(newApproval());
  const r = await call('POST', `/api/approvals/${rec.id}/reject`, { body: { reason: 'not on a Friday' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.approval.state, 'rejected');
  assert.equal(r.json.approval.reason, 'not on a Friday');
  assert.equal(r.json.approval.decided_by, 'api:operator');
  const stored = await engine.get(rec.id);
  assert.equal(stored!.reason, 'not on a Friday');
  assert.equal(stored!.votes[0]!.reason, 'not on a Friday');
  assert.ok(!executed.includes(rec.id));
  const all = (await call('GET', '/api/approvals?state=all')).json as ApprovalView[];
  assert.equal(all.find((v) => v.id === rec.id)!.state, 'rejected');
  assert.ok(!((await call('GET', '/api/approvals')).json as ApprovalView[]).some((v) => v.id === rec.id), 'not pending any more');
});

test('the requester cannot approve its own call (403), under any spelling; cancel withdraws (then 409)', async () => {
  // A requester whose principal is a respelling of the operator (zero-width space, capital): still the operator.
  const rec = await engine.request(newApproval({ principal: 'Operator\u200b' }));
  const self = await call('POST', `/api/approvals/${rec.id}/approve`, { body: { by: 'someone-else', via: 'cli' } });
  assert.equal(self.status, 403);
  assert.equal(self.json.error, 'self_approval');
  assert.equal(await stateOf(rec.id), 'pending');
  const c = await call('POST', `/api/approvals/${rec.id}/cancel`, { body: { by: 'ops' } });
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.approval.state, 'cancelled');
  assert.equal(c.json.approval.decided_by, 'api:operator');
  assert.equal((await call('POST', `/api/approvals/${rec.id}/cancel`, { body: {} })).status, 409);
});

test('cookie sign-in via ?token=: a server-side session, not the token; changes need the csrf header and count as the console; sign-out revokes it', async () => {
  const wrong = await fetch(`${base}/approvals?token=nope`, { redirect: 'manual' });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('set-cookie'), null);

  const r = await fetch(`${base}/approvals?token=${TOKEN}`, { redirect: 'manual' });
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), '/approvals');
  const cookie = r.headers.get('set-cookie')!;
  assert.match(cookie, /^tg_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
  assert.ok(!cookie.includes(TOKEN), 'the cookie never carries the token');

  const jar = { cookie: cookie.split(';')[0]! };
  const page = await fetch(`${base}/approvals`, { headers: jar });
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-security-policy'), CONSOLE_CSP);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.match(await page.text(), /<script src="\/approvals\/console.js" defer><\/script>/);
  const js = await fetch(`${base}/approvals/console.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type')!, /^text\/javascript/);
  assert.match(await js.text(), /EventSource/);
  assert.match((await fetch(`${base}/approvals/console.css`)).headers.get('content-type')!, /^text\/css/);

  // The form posts the token in the body instead.
  const form = await fetch(`${base}/approvals/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
  assert.equal(form.status, 303);
  assert.match(form.headers.get('set-cookie')!, /^tg_session=/);
  assert.notEqual(form.headers.get('set-cookie')!.split(';')[0], cookie.split(';')[0], 'each sign-in is its own session');

  const rec = await engine.request(newApproval());
  const list = await fetch(`${base}/api/approvals`, { headers: jar });
  assert.equal(list.status, 200, 'reads need no csrf header');
  const noCsrf = await fetch(`${base}/api/approvals/${rec.id}/approve`, { method: 'POST', headers: { ...jar, 'content-type': 'application/json' }, body: '{"by":"mallory"}' });
  assert.equal(noCsrf.status, 403);
  assert.equal(((await noCsrf.json()) as { error: string }).error, 'csrf');
  assert.equal(await stateOf(rec.id), 'pending');

  const ok = await fetch(`${base}/api/approvals/${rec.id}/approve`, {
    method: 'POST', headers: { ...jar, 'content-type': 'application/json', 'x-thoughtgate-csrf': '1' }, body: '{"by":"bob","via":"cli"}',
  });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as { approval: ApprovalView }).approval.decided_by, 'console:operator');

  const out = await fetch(`${base}/approvals/logout`, { method: 'POST', headers: jar });
  assert.equal(out.status, 204);
  assert.match(out.headers.get('set-cookie')!, /Max-Age=0/);
  // Revoked on the server: a browser (or thief) that kept the cookie is signed out too.
  assert.equal((await fetch(`${base}/api/approvals`, { headers: jar })).status, 401);
  assert.equal((await fetch(`${base}/approvals`, { headers: jar })).status, 401);
});

test('invalid bodies are 400 and decide nothing', async () => {
  const rec = await engine.request(newApproval());
  const cases: [string, string][] = [
    ['not json', '{"by": '],
    ['array', '[]'],
    ['by not a string', '{"by": 5}'],
    ['by too long', JSON.stringify({ by: 'x'.repeat(201) })],
    ['by with a newline', JSON.stringify({ by: 'a\nb' })],
    ['bad via', '{"via": "slack"}'],
    ['bad scope', '{"scope": "forever"}'],
    ['hours missing', '{"scope": "hours"}'],
    ['hours out of range', '{"scope": "hours", "hours": 721}'],
    ['hours not a number', '{"scope": "hours", "hours": "2"}'],
    ['reason not a string', '{"reason": 1}'],
    ['over 16 KiB', JSON.stringify({ by: 'a', reason: 'x'.repeat(17 * 1024) })],
  ];
  for (const [what, raw] of cases) {
    const r = await call('POST', `/api/approvals/${rec.id}/approve`, { raw, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400, what);
    assert.equal(r.json.error, 'invalid_request', what);
  }
  assert.equal(await stateOf(rec.id), 'pending');
  assert.equal((await call('GET', `/api/approvals/${rec.id}/approve`)).status, 405);
  assert.equal((await call('POST', `/api/approvals/${rec.id}/explode`, { body: {} })).status, 404);
  // A session grant needs a session.
  const noSession = await engine.request(newApproval({ sessionId: undefined }));
  assert.equal((await call('POST', `/api/approvals/${noSession.id}/approve`, { body: { scope: 'session' } })).status, 400);
  assert.equal(await stateOf(noSession.id), 'pending');
  await engine.cancel(rec.id, 'test');
  await engine.cancel(noSession.id, 'test');
});

test('approving for some hours makes a standing approval; it is listed and revoked', async () => {
  const rec = await engine.request(newApproval({ tool: 'restart_service', arguments: { name: 'web' } }));
  const r = await call('POST', `/api/approvals/${rec.id}/approve`, { body: { by: 'carol', scope: 'hours', hours: 2 } });
  assert.equal(r.status, 200, r.text);
  const grant = await until('grant listed', async () => ((await call('GET', '/api/grants')).json as GrantView[]).find((g) => g.tool === 'restart_service'));
  assert.equal(grant.principal, 'agent-7');
  assert.equal(grant.granted_by, 'api:operator');
  assert.equal(grant.arguments_key, '{"name":"web"}');
  const hours = (Date.parse(grant.expires_at) - Date.parse(grant.created_at)) / 3_600_000;
  assert.ok(Math.abs(hours - 2) < 0.01, `expires after ${hours} h`);
  assert.equal((await call('POST', `/api/grants/${grant.id}`, { body: {} })).status, 405);
  const del = await call('DELETE', `/api/grants/${grant.id}`, { body: { by: 'dave' } });
  assert.equal(del.status, 200, del.text);
  assert.ok(!((await call('GET', '/api/grants')).json as GrantView[]).some((g) => g.id === grant.id));
  assert.equal((await call('DELETE', `/api/grants/${grant.id}`)).status, 404);
  assert.ok(logs.some((l) => l.fields?.grant_id === grant.id && l.fields?.by === 'api:operator'));
});

test('the event stream delivers changes and unsubscribes when the client goes away', async () => {
  const ac = new AbortController();
  const res = await fetch(`${base}/api/approvals/events`, { headers: bearer, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  await until('subscribed', async () => streamsOpen === 1);
  const deadline = setTimeout(() => ac.abort(), 5000); // a stream that never delivers fails the read
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const rec = await engine.request(newApproval({ tool: 'streamed_tool' }));
  const event = await until('the approval event', async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    buf += decoder.decode(value, { stream: true });
    const block = buf.split('\n\n').find((b) => b.includes(rec.id));
    return block;
  });
  const lines = event.split('\n');
  assert.equal(lines[0], 'event: approval');
  const view = JSON.parse(lines[1]!.slice('data: '.length)) as ApprovalView;
  assert.equal(view.id, rec.id);
  assert.equal(view.tool, 'streamed_tool');
  assert.equal(view.state, 'pending');
  clearTimeout(deadline);
  ac.abort();
  await until('unsubscribed', async () => streamsOpen === 0);
  await engine.cancel(rec.id, 'test');
  assert.equal((await fetch(`${base}/api/approvals/events`)).status, 401);
});

test('other paths still 404 and the probes still answer', async () => {
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  assert.equal((await fetch(`${base}/approvals/tg_abc`)).status, 404);
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

// --- per-approver tokens: a vote is whoever the token is ---------------------------------------

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef00';
const CAROL = 'carol-token-0123456789abcdef0';
const WORKFLOWS = {
  ops: { approvers: ['alice', 'bob'], required_approvals: 2, approver_tokens: { alice: ALICE, bob: BOB }, redact_fields: ['iban'] },
  payroll: { approvers: ['carol'], approver_tokens: { carol: CAROL } },
} as unknown as Record<string, WorkflowConfig>;

/** A second admin server over the same engine, with workflows that give approvers their own tokens. */
async function withTokens<T>(body: (call2: typeof call, base2: string) => Promise<T>, over: { now?: () => number; sessionTtlMs?: number; workflows?: () => Record<string, WorkflowConfig> } = {}): Promise<T> {
  const srv = await startAdminServer({
    port: 0, host: '127.0.0.1', version: 't', metrics: { render: async () => '', contentType: 'text/plain' },
    readiness: () => ({ ready: true, checks: {} }),
    routes: [approvalRoutes({ engine, token: TOKEN, workflows: () => WORKFLOWS, log: (level, msg, fields) => logs.push({ level, msg, fields }), ...over })],
  });
  const base2 = `http://127.0.0.1:${srv.port}`;
  const call2: typeof call = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...bearer, ...opts.headers };
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const r = await fetch(base2 + path, { method, headers, body, redirect: 'manual' });
    const text = await r.text();
    let json: unknown;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, headers: r.headers, json, text };
  };
  try {
    return await body(call2, base2);
  } finally {
    await srv.close();
  }
}

const opsApproval = (over: Partial<NewApproval> = {}) => newApproval({ workflow: 'ops', approvers: ['alice', 'bob'], requiredApprovals: 2, ...over });

test('one person, one vote: alice via the CLI and again via the API is one vote; bob makes two; the body cannot say who votes', async () => {
  await withTokens(async (api) => {
    const rec = await engine.request(opsApproval());
    const asAlice = { authorization: `Bearer ${ALICE}` };
    // The body claims bob: the token says alice, and alice it is.
    const first = await api('POST', `/api/approvals/${rec.id}/approve`, { headers: asAlice, body: { by: 'bob', via: 'cli' } });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.final, false);
    assert.deepEqual(first.json.approval.votes.map((v: { by: string }) => v.by), ['cli:alice']);
    for (const by of ['alice', 'Alice', 'аlice', 'bob']) { // Cyrillic а; another name
      const again = await api('POST', `/api/approvals/${rec.id}/approve`, { headers: { authorization: `bearer ${ALICE}` }, body: { by, via: 'api' } });
      assert.equal(again.status, 409, by);
      assert.equal(again.json.error, 'duplicate_vote');
    }
    assert.equal(await stateOf(rec.id), 'pending');
    assert.ok(!executed.includes(rec.id), 'one person agreeing twice does not run the call');
    const second = await api('POST', `/api/approvals/${rec.id}/approve`, { headers: { authorization: `BEARER ${BOB}` }, body: { by: 'alice' } });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.json.final, true);
    await until('completed', async () => (await stateOf(rec.id)) === 'completed');
    assert.deepEqual(executed.filter((x) => x === rec.id), [rec.id]);
    assert.deepEqual((await engine.get(rec.id))!.votes.map((v) => v.by), ['cli:alice', 'api:bob']);
  });
});

test('the admin token may list and manage but not vote where approvers are named; a token is only good for its own workflow', async () => {
  await withTokens(async (api) => {
    const rec = await engine.request(opsApproval());
    const pay = await engine.request(newApproval({ workflow: 'payroll', approvers: ['carol'] }));
    const admin = await api('POST', `/api/approvals/${rec.id}/approve`, { body: { by: 'alice' } });
    assert.equal(admin.status, 403);
    assert.equal(admin.json.error, 'not_allowed');
    assert.match(admin.json.message, /approver token/);
    assert.ok(((await api('GET', '/api/approvals')).json as ApprovalView[]).some((v) => v.id === rec.id), 'the admin token still lists');
    assert.equal((await api('GET', '/api/grants')).status, 200);

    const asCarol = { authorization: `Bearer ${CAROL}` };
    const cross = await api('POST', `/api/approvals/${rec.id}/approve`, { headers: asCarol, body: { by: 'alice' } });
    assert.equal(cross.status, 403, 'a payroll token cannot vote on an ops approval');
    assert.equal((await api('POST', `/api/approvals/${rec.id}/reject`, { headers: asCarol, body: {} })).status, 403);
    assert.equal((await api('GET', `/api/approvals/${rec.id}`, { headers: asCarol })).status, 404, 'nor see it');
    const carolList = (await api('GET', '/api/approvals', { headers: asCarol })).json as ApprovalView[];
    assert.ok(carolList.some((v) => v.id === pay.id) && !carolList.some((v) => v.id === rec.id), 'an approver lists their workflows only');
    assert.equal((await api('GET', '/api/grants', { headers: asCarol })).status, 403, 'standing approvals are the operator\'s');
    assert.equal((await api('POST', `/api/approvals/${pay.id}/cancel`, { headers: asCarol, body: {} })).status, 403, 'cancel is the operator\'s');
    assert.equal(await stateOf(rec.id), 'pending');
    assert.equal(await stateOf(pay.id), 'pending');
    // The operator still manages: cancel is theirs.
    assert.equal((await api('POST', `/api/approvals/${rec.id}/cancel`, { body: {} })).status, 200);
    const mine = await api('POST', `/api/approvals/${pay.id}/reject`, { headers: asCarol, body: { reason: 'no' } });
    assert.equal(mine.status, 200, mine.text);
    assert.equal(mine.json.approval.decided_by, 'api:carol');
    const me = await api('GET', '/api/whoami', { headers: asCarol });
    assert.deepEqual(me.json, { identity: 'carol', kind: 'approver', workflows: ['payroll'] });
    assert.deepEqual((await api('GET', '/api/whoami')).json, { identity: 'operator', kind: 'operator' });
    assert.equal((await api('GET', '/api/whoami', { headers: { authorization: 'Bearer not-a-token-at-all-xx' } })).status, 401);
  });
});

test('an approver cannot approve a call they requested, under any spelling', async () => {
  await withTokens(async (api) => {
    for (const principal of ['alice', 'Alice', 'alice\u200b', 'аlice', 'x:alice']) {
      const rec = await engine.request(opsApproval({ principal }));
      const r = await api('POST', `/api/approvals/${rec.id}/approve`, { headers: { authorization: `Bearer ${ALICE}` }, body: {} });
      assert.equal(r.status, 403, JSON.stringify(principal));
      assert.equal(r.json.error, 'self_approval');
      await engine.cancel(rec.id, 'test');
    }
  });
});

test('redact_fields: the value is masked (key kept) in the list, the single view, the event stream and grants; other arguments stay', async () => {
  await withTokens(async (api, base2) => {
    const ac = new AbortController();
    const stream = await fetch(`${base2}/api/approvals/events`, { headers: bearer, signal: ac.signal });
    const reader = stream.body!.getReader();
    // Held without redact_fields on the record: the workflow's fields now still apply.
    const rec = await engine.request(opsApproval({ arguments: { account: 'acct-7', iban: 'DE00SECRET123', nested: { iban: 'DE00SECRET456' } } }));
    const list = await api('GET', '/api/approvals');
    const one = await api('GET', `/api/approvals/${rec.id}`);
    for (const text of [list.text, one.text]) assert.ok(!text.includes('DE00SECRET'), text);
    assert.deepEqual(one.json.arguments, { account: 'acct-7', iban: '[REDACTED]', nested: { iban: '[REDACTED]' } });
    let buf = '';
    const decoder = new TextDecoder();
    const timer = setTimeout(() => ac.abort(), 5000);
    await until('the event', async () => {
      const { value } = await reader.read();
      buf += decoder.decode(value, { stream: true });
      return buf.includes(rec.id);
    });
    clearTimeout(timer);
    ac.abort();
    assert.ok(!buf.includes('DE00SECRET'), 'the event stream masks too');
    assert.match(buf, /"iban":"\[REDACTED\]"/);
    await engine.cancel(rec.id, 'test');

    // A standing approval's arguments key is the arguments: masked with the fields it was granted under.
    const open = await engine.request(newApproval({ tool: 'wire', arguments: { account: 'a', iban: 'DE00GRANTED' }, redactFields: ['iban'] }));
    assert.equal((await api('POST', `/api/approvals/${open.id}/approve`, { body: { scope: 'hours', hours: 1 } })).status, 200);
    const g = await until('grant', async () => ((await api('GET', '/api/grants')).json as GrantView[]).find((x) => x.tool === 'wire'));
    assert.equal(g.arguments_key, '{"account":"a","iban":"[REDACTED]"}');
    await engine.revokeGrant(g.id, 'test');
  });
});

test('console sessions expire, and a token removed from the config ends its sessions', async () => {
  let clock = Date.now();
  let current: Record<string, WorkflowConfig> = WORKFLOWS;
  await withTokens(async (_api, base2) => {
    const signIn = async (token: string): Promise<string> => {
      const r = await fetch(`${base2}/approvals/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(token)}` });
      assert.equal(r.status, 303);
      assert.match(r.headers.get('set-cookie')!, /Max-Age=60;?/);
      return r.headers.get('set-cookie')!.split(';')[0]!;
    };
    const jar = await signIn(ALICE);
    const who = await fetch(`${base2}/api/whoami`, { headers: { cookie: jar } });
    assert.deepEqual(await who.json(), { identity: 'alice', kind: 'approver', workflows: ['ops'] });
    clock += 59_000;
    assert.equal((await fetch(`${base2}/api/approvals`, { headers: { cookie: jar } })).status, 200, 'within its lifetime');
    clock += 2_000;
    assert.equal((await fetch(`${base2}/api/approvals`, { headers: { cookie: jar } })).status, 401, 'expired');

    // A reload that takes bob's token away signs bob's console out at once.
    const bobJar = await signIn(BOB);
    assert.equal((await fetch(`${base2}/api/approvals`, { headers: { cookie: bobJar } })).status, 200);
    current = { ...WORKFLOWS, ops: { ...WORKFLOWS['ops']!, approver_tokens: { alice: ALICE } } };
    assert.equal((await fetch(`${base2}/api/approvals`, { headers: { cookie: bobJar } })).status, 401, 'the token is gone, and so is its session');
  }, { now: () => clock, sessionTtlMs: 60_000, workflows: () => current });
});
