import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalEngine, type NewApproval } from '../approvals/engine.js';
import { FileStore } from '../approvals/store/file.js';
import type { ApprovalRecord } from '../approvals/types.js';
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
