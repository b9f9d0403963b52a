// The approvals console end to end in real headless Chromium, against the real engine and
// the file store: sign-in, a live list, approve and reject with a reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalEngine } from '../dist/approvals/engine.js';
import { FileStore } from '../dist/approvals/store/file.js';
import { startAdminServer } from '../dist/admin/server.js';
import { approvalRoutes } from '../dist/admin/approvals-api.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-test-token-9f8e7d6c';
const ALICE = 'console-alice-token-0a1b2c3d4e';
/** The workflow the first test's records name: alice has her own token; iban is masked. */
const WORKFLOWS = { default: { approvers: ['alice'], approver_tokens: { alice: ALICE }, redact_fields: ['iban'] } };
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && process.env.CI !== 'true' ? `no ${CHROMIUM} (apt-get install chromium, or npm test installs it)` : false;

async function until(what, fn, ms = 8000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function newApproval(over = {}) {
  return {
    mode: 'held', method: 'tools/call', tool: 'delete_repository', arguments: { repo: 'acme/api' }, principal: 'agent-1', sessionId: 'sess-42',
    sourceId: 'gh', workflow: 'default', channel: 'console', snapshot: 'v1', correlationId: 'c', timeoutMs: 600_000, onTimeout: 'deny',
    requiredApprovals: 1, approvers: [], request: { path: '/mcp', headers: {}, body: '{}' }, requestId: 1, ...over,
  };
}

test('the console signs in with an approver token, votes as that approver, lists live (redacted), approves and rejects with a reason, and signs out for good', { skip, timeout: 60_000 }, async () => {
  assert.ok(haveChromium, `${CHROMIUM} is required when CI=true`);
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'tg-console-'));
  const store = new FileStore(dir);
  await store.open();
  const executed = [];
  const engine = new ApprovalEngine({
    store, channels: new Map(), replicaId: 'r1', maxPending: 100, retentionMs: 600_000,
    execute: async (rec) => { executed.push(rec.id); return { result: { content: [{ type: 'text', text: 'ok' }] } }; },
    events: { transition: () => {}, log: () => {} },
  });
  await engine.start();
  const admin = await startAdminServer({
    port: 0, host: '127.0.0.1', version: 't', metrics: { render: async () => '', contentType: 'text/plain' },
    readiness: () => ({ ready: true, checks: {} }), routes: [approvalRoutes({ engine, token: TOKEN, workflows: () => WORKFLOWS })],
  });
  const base = `http://127.0.0.1:${admin.port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    // Arguments are the agent's: markup in them must show as text, never become elements.
    const first = await engine.request(newApproval({ approvers: ['alice'], arguments: { repo: 'acme/api', note: '<img src=x id=pwned>', iban: 'DE99000011112222' } }));
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !/401/.test(m.text())) problems.push(`console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() === 404) problems.push(`404: ${r.url()}`); });

    // Without the token: the sign-in page, nothing listed.
    const denied = await page.goto(`${base}/approvals`);
    assert.equal(denied.status(), 401);
    await page.locator('#unauthorized').waitFor();
    assert.equal(await page.locator('[data-approval]').count(), 0);
    assert.ok(!(await page.content()).includes(first.id));
    await page.fill('input[name="token"]', 'not-the-token');
    await page.click('button[type="submit"]');
    await page.locator('.error', { hasText: 'not right' }).waitFor();
    assert.equal(await page.locator('[data-approval]').count(), 0);

    // With alice's own token: a session cookie is set and the pending call is listed.
    await page.goto(`${base}/approvals?token=${ALICE}`);
    assert.equal(new URL(page.url()).search, '', 'the token leaves the address bar');
    const card1 = page.locator(`[data-approval="${first.id}"]`);
    await card1.waitFor();
    assert.equal(await card1.locator('.tool').textContent(), 'delete_repository');
    assert.match(await card1.locator('pre.args').textContent(), /"note": "<img src=x id=pwned>"/);
    assert.match(await card1.locator('pre.args').textContent(), /"iban": "\[REDACTED\]"/, 'redact_fields hold in the console');
    assert.ok(!(await page.content()).includes('DE99000011112222'));
    const cookies = await page.context().cookies();
    assert.ok(cookies.every((c) => !c.value.includes(ALICE)), 'the cookie is a session id, not the token');
    assert.equal(await page.locator('#pwned').count(), 0);
    assert.equal(await card1.locator('dd').nth(1).textContent(), 'sess-42');
    await page.locator('#conn[data-state="live"]').waitFor();

    // Approve: the session is alice's, so the vote is alice's (nothing typed decides that).
    await until('who is signed in', async () => (await page.locator('#who').textContent()) === 'alice');
    await card1.locator('button[data-action="approve"]').click();
    await until('first completed', async () => (await engine.get(first.id))?.state === 'completed');
    assert.deepEqual(executed, [first.id]);
    assert.equal((await engine.get(first.id)).decidedBy, 'console:alice');
    await card1.waitFor({ state: 'detached' });
    await page.locator(`[data-decided="${first.id}"]`, { hasText: 'by console:alice' }).waitFor();

    // A call held after the page loaded shows up without a reload.
    await page.evaluate(() => { window.__sameDocument = true; });
    const second = await engine.request(newApproval({ tool: 'send_payment', arguments: { amount: 5000 } }));
    const card2 = page.locator(`[data-approval="${second.id}"]`);
    await card2.waitFor();
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'not reloaded');

    // Reject with a reason.
    await card2.locator('button[data-action="reject"]').click();
    await card2.locator('input[data-field="reason"]').fill('payments need a ticket');
    await card2.locator('button[data-action="confirm-reject"]').click();
    await until('second rejected', async () => (await engine.get(second.id))?.state === 'rejected');
    const rejected = await engine.get(second.id);
    assert.equal(rejected.reason, 'payments need a ticket');
    assert.equal(rejected.decidedBy, 'console:alice');
    assert.deepEqual(executed, [first.id], 'the rejected call never ran');
    await page.locator(`[data-decided="${second.id}"]`, { hasText: 'payments need a ticket' }).waitFor();
    assert.deepEqual(problems, [], 'no script errors and no CSP violations');

    // Sign out: the session ends on the server, so the old cookie no longer opens anything.
    const session = (await page.context().cookies()).find((c) => c.name === 'tg_session');
    assert.ok(session, 'signed in with a tg_session cookie');
    await page.click('#logout');
    await page.locator('#unauthorized').waitFor();
    assert.equal((await fetch(`${base}/api/approvals`, { headers: { cookie: `tg_session=${session.value}` } })).status, 401);
  } finally {
    await browser.close();
    await admin.close();
    await engine.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('through the sidecar: a held SDK call appears in the console, a click approves it, the client gets the upstream result', { skip, timeout: 60_000 }, async () => {
  assert.ok(haveChromium, `${CHROMIUM} is required when CI=true`);
  const { chromium } = await import('playwright-core');
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const { auditUntil, startProxy, startRecordingUpstream, sourceYaml } = await import('./helpers.mjs');
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`, { rules: '    - match: "delete_*"\n      action: approve' }), { env: { THOUGHTGATE_ADMIN_TOKEN: TOKEN } });
  const client = new Client({ name: 'console-e2e', version: '1.0.0' });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const base = `http://127.0.0.1:${p.adminPort}`;
    const noToken = await fetch(`${base}/api/approvals`);
    assert.equal(noToken.status, 401, 'the API refuses a request without the admin token');
    await client.connect(new StreamableHTTPClientTransport(new URL(p.url)));
    const result = client.callTool({ name: 'delete_user', arguments: { user_id: 'console-c1' } });
    const page = await browser.newPage();
    await page.goto(`${base}/approvals?token=${TOKEN}`);
    const card = page.locator('[data-approval]', { hasText: 'delete_user' });
    await card.waitFor();
    assert.match(await card.locator('pre.args').textContent(), /console-c1/);
    assert.equal(up.received('console-c1'), false, 'held, not forwarded');
    // Signed in with the shared admin token: the vote is the one operator's.
    await until('who is signed in', async () => (await page.locator('#who').textContent()) === 'operator');
    await card.locator('button[data-action="approve"]').click();
    const res = await result;
    assert.equal(res.content[0].text, 'ran delete_user');
    assert.equal(up.bodies.filter((b) => b.raw.includes('console-c1')).length, 1);
    const lines = await auditUntil(p, (ls) => ls.some((l) => l.decision === 'approved'));
    assert.ok(lines.some((l) => l.decision === 'approved' && l.approver === 'console:operator'), 'who approved is in the audit trail');
  } finally {
    await browser.close();
    await client.close().catch(() => {});
    await p.stop();
    up.close();
  }
});
