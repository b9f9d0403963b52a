// The Slack channel against a local fake of the Slack Web API, with a real engine and the
// embedded file store: reactions and button clicks decide, the message follows the outcome,
// rate limits are honoured, and the bot token never reaches a log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalEngine, type NewApproval } from '../engine.js';
import { FileStore } from '../store/file.js';
import type { ApprovalDecider, ApprovalRecord, DecideResult, Outcome } from '../types.js';
import { SlackChannel, reactionVerdict, type SlackChannelOptions } from './slack.js';
import { handleSlackInteraction, verifySlackSignature } from './slack-signature.js';

interface FakeCall { method: string; params: Record<string, any>; at: number; failed?: string }
interface FakeSlack {
  url: string;
  calls: FakeCall[];
  messages: Map<string, { channel: string; text?: string; blocks?: unknown[]; reactions: unknown[] }>;
  setReactions(ts: string, reactions: { name: string; users: string[] }[]): void;
  failNext(method: string, failure: { status: 429; retryAfter?: number } | { error: string; retryAfter?: number }): void;
  botUserId: string;
  close(): Promise<void>;
}
// Plain JS outside src/: loaded at run time from dist/approvals/channels/ (three levels down).
const { startFakeSlack } = (await import(new URL('../../../test/support/fake-slack.mjs', import.meta.url).href)) as {
  startFakeSlack(o: { token: string }): Promise<FakeSlack>;
};

const TOKEN = 'xoxb-424242424242-131313131313-SeCrEtToKeNvAlUe';
const SIGNING_SECRET = 'test-signing-secret-8f1c';
const OK_OUTCOME = { result: { content: [{ type: 'text', text: 'ok' }] } };

interface LogLine { level: string; msg: string; fields?: Record<string, unknown> }

interface Rig {
  fake: FakeSlack;
  engine: ApprovalEngine;
  channel: SlackChannel;
  logs: LogLine[];
  executed: ApprovalRecord[];
  dir: string;
  request(over?: Partial<NewApproval>): Promise<ApprovalRecord>;
  /** the record once its Slack message exists (channelRef stored) */
  posted(id: string): Promise<{ channel: string; ts: string }>;
  state(id: string): Promise<ApprovalRecord>;
  close(): Promise<void>;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, deadlineMs = 15_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rig(opts: { token?: string; channel?: Partial<SlackChannelOptions>; dir?: string; fake?: FakeSlack; execute?: (rec: ApprovalRecord) => Promise<Outcome> } = {}): Promise<Rig> {
  const fake = opts.fake ?? (await startFakeSlack({ token: TOKEN }));
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tg-slack-'));
  const store = new FileStore(dir);
  await store.open();
  const logs: LogLine[] = [];
  const executed: ApprovalRecord[] = [];
  const log = (level: string, msg: string, fields?: Record<string, unknown>) => void logs.push({ level, msg, ...(fields ? { fields } : {}) });
  const token = opts.token ?? TOKEN;
  const channel = new SlackChannel({ token, channel: '#approvals', apiUrl: fake.url, pollIntervalMs: 20, log, ...opts.channel });
  const engine = new ApprovalEngine({
    store,
    channels: new Map([['slack', channel]]),
    replicaId: 'replica-1',
    maxPending: 100,
    retentionMs: 60_000,
    execute: async (rec) => {
      executed.push(rec);
      return opts.execute ? opts.execute(rec) : OK_OUTCOME;
    },
    events: { transition: () => {}, log },
  });
  await engine.start();
  const r: Rig = {
    fake, engine, channel, logs, executed, dir,
    request: (over = {}) => engine.request({
      mode: 'task', method: 'tools/call', tool: 'delete_user', arguments: { user_id: '12345', api_token: 'tok' },
      principal: 'my-agent', sessionId: undefined, sourceId: 'upstream', workflow: 'default', channel: 'slack',
      snapshot: 's1', correlationId: 'corr-1', timeoutMs: 60_000, onTimeout: 'deny', requiredApprovals: 1, approvers: [],
      request: { path: '/mcp', headers: {}, body: '{}' }, requestId: 1,
      ...over,
    }),
    posted: (id) => waitFor(`the Slack message of ${id}`, async () => {
      const ref = (await engine.get(id))?.channelRef;
      return ref?.ts !== undefined && ref.channel !== undefined ? { channel: ref.channel, ts: ref.ts } : undefined;
    }),
    state: async (id) => (await engine.get(id))!,
    close: async () => {
      await engine.close();
      await store.close();
      if (opts.fake === undefined) await fake.close();
      if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
      // Whatever happened in the test, the token never reached a log line.
      assert.ok(!JSON.stringify(logs).includes(token), 'the bot token appears in a log line');
    },
  };
  return r;
}

const reactionPolls = (fake: FakeSlack, ts: string) => fake.calls.filter((c) => c.method === 'reactions.get' && c.params.timestamp === ts);
const updatesOf = (fake: FakeSlack, ts: string) => fake.calls.filter((c) => c.method === 'chat.update' && c.params.ts === ts && c.failed === undefined);
/** Polls of `ts` made after the first `n` seen: a way to let the poller run a few rounds without timing it. */
async function morePolls(fake: FakeSlack, ts: string, n: number): Promise<void> {
  const seen = reactionPolls(fake, ts).length;
  await waitFor(`${n} more reactions.get of ${ts}`, () => reactionPolls(fake, ts).length >= seen + n);
}
const blocksText = (blocks: unknown) => JSON.stringify(blocks);

test('reaction names: 👍/👎 with and without skin tones; others ignored', () => {
  for (const n of ['+1', 'thumbsup', '+1::skin-tone-2', 'thumbsup::skin-tone-6']) assert.equal(reactionVerdict(n), 'approve', n);
  for (const n of ['-1', 'thumbsdown', '-1::skin-tone-3', 'thumbsdown::skin-tone-5']) assert.equal(reactionVerdict(n), 'reject', n);
  for (const n of ['heart', '+1::skin-tone-7', '+1::heart', 'thumbsup_all', '']) assert.equal(reactionVerdict(n), undefined, n);
});

test('👍 releases the call: executed once, the message edited in place', async () => {
  const r = await rig({ channel: { consoleUrl: 'https://tg.example/console' } });
  try {
    const rec = await r.request();
    const ref = await r.posted(rec.id);
    const post = r.fake.calls.find((c) => c.method === 'chat.postMessage')!;
    assert.equal(post.params.channel, '#approvals');
    assert.match(post.params.text, /delete_user/);
    assert.deepEqual(post.params.metadata, { event_type: 'thoughtgate_approval', event_payload: { task_id: rec.id } });
    const posted = blocksText(post.params.blocks);
    assert.ok(posted.includes('🔒 Approval Required: delete_user') && posted.includes('"action_id":"tg_approve"'));
    assert.ok(posted.includes('[REDACTED]') && !posted.includes('"tok"'), 'api_token is masked in Slack');
    assert.ok(posted.includes('https://tg.example/console'));
    assert.equal(ref.channel, r.fake.messages.get(ref.ts)!.channel, 'the channel id Slack answered is kept');

    r.fake.setReactions(ref.ts, [{ name: '+1', users: ['U_ALICE'] }]);
    const done = await waitFor('completed', async () => ((await r.state(rec.id)).state === 'completed' ? r.state(rec.id) : undefined));
    assert.equal(done.decidedBy, 'slack:U_ALICE');
    assert.deepEqual(done.outcome, OK_OUTCOME);
    assert.equal(r.executed.length, 1);
    const update = await waitFor('chat.update', () => updatesOf(r.fake, ref.ts)[0]);
    assert.equal(update.params.channel, ref.channel);
    assert.match(update.params.text, /Approved/);
    const edited = blocksText(r.fake.messages.get(ref.ts)!.blocks);
    assert.ok(edited.includes('*Approved* by <@U_ALICE>'), edited);
    assert.ok(!edited.includes('tg_approve'), 'no buttons once decided');
    assert.equal(r.fake.calls.filter((c) => c.method === 'chat.postMessage').length, 1, 'edited, not posted again');
  } finally {
    await r.close();
  }
});

test('👎 rejects: never executed, the message says who rejected', async () => {
  const r = await rig();
  try {
    const rec = await r.request();
    const ref = await r.posted(rec.id);
    r.fake.setReactions(ref.ts, [{ name: 'thumbsdown', users: ['U_BOB'] }]);
    const done = await waitFor('rejected', async () => ((await r.state(rec.id)).state === 'rejected' ? r.state(rec.id) : undefined));
    assert.equal(done.decidedBy, 'slack:U_BOB');
    assert.equal(done.reason, 'rejected in Slack by <@U_BOB>');
    await waitFor('chat.update', () => updatesOf(r.fake, ref.ts)[0]);
    assert.ok(blocksText(r.fake.messages.get(ref.ts)!.blocks).includes('*Rejected* by <@U_BOB>'));
    assert.equal(r.executed.length, 0);
  } finally {
    await r.close();
  }
});

test('an outsider\'s 👍 is ignored and logged once; an approver\'s 👍 then releases', async () => {
  const r = await rig();
  try {
    const rec = await r.request({ approvers: ['U_ALLOWED'] });
    const ref = await r.posted(rec.id);
    r.fake.setReactions(ref.ts, [{ name: '+1', users: ['U_OUTSIDER'] }]);
    const ignored = (l: LogLine) => l.msg.includes('ignored reaction from U_OUTSIDER: not an approver');
    await waitFor('the outsider logged', () => r.logs.some(ignored));
    await morePolls(r.fake, ref.ts, 3);
    assert.equal(r.logs.filter(ignored).length, 1, 'logged once, not on every poll');
    const meanwhile = await r.state(rec.id);
    assert.equal(meanwhile.state, 'pending');
    assert.deepEqual(meanwhile.votes, []);

    r.fake.setReactions(ref.ts, [{ name: '+1', users: ['U_OUTSIDER', 'U_ALLOWED'] }]);
    const done = await waitFor('completed', async () => ((await r.state(rec.id)).state === 'completed' ? r.state(rec.id) : undefined));
    assert.equal(done.decidedBy, 'slack:U_ALLOWED');
    assert.equal(r.logs.filter(ignored).length, 1);
  } finally {
    await r.close();
  }
});

test('a skin-tone 👍 counts; the bot\'s own reaction does not', async () => {
  const r = await rig();
  try {
    const rec = await r.request();
    const ref = await r.posted(rec.id);
    r.fake.setReactions(ref.ts, [{ name: '+1', users: [r.fake.botUserId] }]);
    await morePolls(r.fake, ref.ts, 3);
    assert.equal((await r.state(rec.id)).state, 'pending', 'the bot cannot approve');
    r.fake.setReactions(ref.ts, [{ name: '+1', users: [r.fake.botUserId] }, { name: 'thumbsup::skin-tone-4', users: ['U_TONE'] }]);
    const done = await waitFor('completed', async () => ((await r.state(rec.id)).state === 'completed' ? r.state(rec.id) : undefined));
    assert.equal(done.decidedBy, 'slack:U_TONE');
    assert.deepEqual(done.votes.map((v) => v.by), ['slack:U_TONE']);
  } finally {
    await r.close();
  }
});

test('two approvals required: one 👍 waits, the second releases; both shown', async () => {
  const r = await rig();
  try {
    const rec = await r.request({ requiredApprovals: 2 });
    const ref = await r.posted(rec.id);
    assert.ok(blocksText(r.fake.messages.get(ref.ts)!.blocks).includes('Needs 2 approvals'));
    r.fake.setReactions(ref.ts, [{ name: '+1', users: ['U_ONE'] }]);
    await waitFor('first vote', async () => (await r.state(rec.id)).votes.length === 1);
    await morePolls(r.fake, ref.ts, 3);
    assert.equal((await r.state(rec.id)).state, 'pending');
    assert.equal((await r.state(rec.id)).votes.length, 1, 'a vote counts once however often it is polled');
    r.fake.setReactions(ref.ts, [{ name: '+1', users: ['U_ONE', 'U_TWO'] }]);
    await waitFor('completed', async () => (await r.state(rec.id)).state === 'completed');
    await waitFor('chat.update', () => updatesOf(r.fake, ref.ts)[0]);
    const edited = blocksText(r.fake.messages.get(ref.ts)!.blocks);
    assert.ok(edited.includes('*Approved* by <@U_ONE>, <@U_TWO>'), edited);
    assert.ok(edited.includes('Votes: <@U_ONE> approved, <@U_TWO> approved'));
  } finally {
    await r.close();
  }
});

test('a 429 with Retry-After pauses all polling until it has passed', async () => {
  const r = await rig();
  try {
    const a = await r.request();
    const b = await r.request({ tool: 'drop_table' });
    const refA = await r.posted(a.id);
    await r.posted(b.id);
    await morePolls(r.fake, refA.ts, 1);
    r.fake.failNext('reactions.get', { status: 429, retryAfter: 1 });
    const limited = await waitFor('the 429', () => r.fake.calls.find((c) => c.failed === 'http_429'));
    const next = await waitFor('a poll after the 429', () => r.fake.calls.find((c) => c.method === 'reactions.get' && c.at > limited.at));
    assert.ok(next.at - limited.at >= 1000, `next reactions.get ${next.at - limited.at} ms after the 429`);
    assert.ok(r.logs.some((l) => l.msg.includes('rate limited') && l.fields?.retry_after_ms === 1000));
    r.fake.setReactions(refA.ts, [{ name: '+1', users: ['U_ALICE'] }]);
    await waitFor('completed after the pause', async () => (await r.state(a.id)).state === 'completed');
  } finally {
    await r.close();
  }
});

test('a `ratelimited` answer pauses polling for its Retry-After too', async () => {
  const r = await rig();
  try {
    const rec = await r.request();
    const ref = await r.posted(rec.id);
    await morePolls(r.fake, ref.ts, 1);
    r.fake.failNext('reactions.get', { error: 'ratelimited', retryAfter: 1 });
    const limited = await waitFor('the ratelimited answer', () => r.fake.calls.find((c) => c.failed === 'ratelimited'));
    const next = await waitFor('a poll after it', () => r.fake.calls.find((c) => c.method === 'reactions.get' && c.at > limited.at));
    assert.ok(next.at - limited.at >= 1000, `next reactions.get ${next.at - limited.at} ms after ratelimited`);
    assert.equal((await r.state(rec.id)).state, 'pending');
  } finally {
    await r.close();
  }
});

test('expiry and cancellation edit the message too', async () => {
  const r = await rig();
  try {
    const soon = await r.request({ timeoutMs: 300 });
    const refSoon = await r.posted(soon.id);
    await waitFor('expired', async () => (await r.state(soon.id)).state === 'expired');
    const upd = await waitFor('chat.update (expired)', () => updatesOf(r.fake, refSoon.ts)[0]);
    assert.match(upd.params.text, /Expired/);
    assert.ok(blocksText(r.fake.messages.get(refSoon.ts)!.blocks).includes('timed out, not executed'));

    const rec = await r.request();
    const ref = await r.posted(rec.id);
    await r.engine.cancel(rec.id, 'console:carol');
    await waitFor('chat.update (cancelled)', () => updatesOf(r.fake, ref.ts)[0]);
    assert.ok(blocksText(r.fake.messages.get(ref.ts)!.blocks).includes('*Cancelled* by carol'));
    const pollsAfterCancel = reactionPolls(r.fake, ref.ts).length;
    // Another record keeps the poller busy: the cancelled one is no longer read.
    const other = await r.request();
    const otherRef = await r.posted(other.id);
    await morePolls(r.fake, otherRef.ts, 3);
    assert.ok(reactionPolls(r.fake, ref.ts).length <= pollsAfterCancel + 1, 'a settled record stops being polled');
    assert.equal(r.executed.length, 0);
  } finally {
    await r.close();
  }
});

test('a restart keeps polling the messages of pending records', async () => {
  const fake = await startFakeSlack({ token: TOKEN });
  const dir = mkdtempSync(join(tmpdir(), 'tg-slack-restart-'));
  try {
    const first = await rig({ fake, dir });
    const rec = await first.request();
    const ref = await first.posted(rec.id);
    await first.close();

    const second = await rig({ fake, dir });
    try {
      fake.setReactions(ref.ts, [{ name: '+1', users: ['U_LATER'] }]);
      const done = await waitFor('completed after restart', async () => ((await second.state(rec.id)).state === 'completed' ? second.state(rec.id) : undefined));
      assert.equal(done.decidedBy, 'slack:U_LATER');
      assert.equal(second.executed.length, 1);
      assert.equal(fake.calls.filter((c) => c.method === 'chat.postMessage').length, 1, 'not posted again');
    } finally {
      await second.close();
    }
  } finally {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('invalid_auth: polling of that message stops, the record stays pending, the token is never logged', async () => {
  const r = await rig();
  try {
    const rec = await r.request();
    const ref = await r.posted(rec.id);
    r.fake.failNext('reactions.get', { error: 'invalid_auth' });
    const stopped = await waitFor('stop logged', () => r.logs.find((l) => l.msg.includes('stopped polling') && l.msg.includes('invalid_auth')));
    assert.equal(stopped.fields?.slack_error, 'invalid_auth');
    const pollsThen = reactionPolls(r.fake, ref.ts).length;
    const other = await r.request();
    const otherRef = await r.posted(other.id);
    await morePolls(r.fake, otherRef.ts, 3);
    assert.equal(reactionPolls(r.fake, ref.ts).length, pollsThen, 'no more polls of the failed message');
    assert.equal((await r.state(rec.id)).state, 'pending', 'the console and CLI can still decide it');
    assert.equal(r.logs.filter((l) => l.msg.includes('stopped polling')).length, 1);
  } finally {
    await r.close();
  }
});

test('a wrong token: post and auth.test fail with invalid_auth, and the token is in no log line', async () => {
  const wrong = 'xoxb-999999999999-888888888888-WrOnGtOkEnVaLuE';
  const r = await rig({ token: wrong });
  try {
    await waitFor('auth.test logged', () => r.logs.some((l) => l.msg.includes('auth.test failed: invalid_auth')));
    const rec = await r.request();
    const failed = await waitFor('post failure logged', () => r.logs.find((l) => l.msg.includes('could not post')));
    assert.match(String(failed.fields?.err), /invalid_auth/);
    assert.equal((await r.state(rec.id)).channelRef, undefined);
    const all = JSON.stringify(r.logs);
    assert.ok(!all.includes(wrong) && !all.includes('WrOnGtOkEnVaLuE'));
  } finally {
    await r.close();
  }
});

test('a slow approved call does not hold up polling of the other messages', async () => {
  let release!: () => void;
  const slow = new Promise<void>((resolve) => (release = resolve));
  const r = await rig({ execute: async (rec) => (rec.tool === 'slow_tool' ? slow.then(() => OK_OUTCOME) : OK_OUTCOME) });
  try {
    const a = await r.request({ tool: 'slow_tool' });
    const b = await r.request({ tool: 'fast_tool' });
    const refA = await r.posted(a.id);
    const refB = await r.posted(b.id);
    r.fake.setReactions(refA.ts, [{ name: '+1', users: ['U_ALICE'] }]);
    await waitFor('slow call executing', async () => (await r.state(a.id)).state === 'executing');
    r.fake.setReactions(refB.ts, [{ name: '+1', users: ['U_ALICE'] }]);
    await waitFor('the other call completed meanwhile', async () => (await r.state(b.id)).state === 'completed');
    assert.equal((await r.state(a.id)).state, 'executing');
    release();
    await waitFor('slow call completed', async () => (await r.state(a.id)).state === 'completed');
  } finally {
    release();
    await r.close();
  }
});

test('while one record\'s decision is in progress, the other messages are still polled', async () => {
  const fake = await startFakeSlack({ token: TOKEN });
  const base = { state: 'pending', channel: 'slack', principal: 'p', arguments: {}, expiresAt: Date.now() + 60_000, requiredApprovals: 1, votes: [] };
  const recs = new Map([['tg_a', { ...base, id: 'tg_a', tool: 'a' }], ['tg_b', { ...base, id: 'tg_b', tool: 'b' }]]) as unknown as Map<string, ApprovalRecord>;
  let release!: () => void;
  const hang = new Promise<void>((resolve) => (release = resolve));
  const decided: string[] = [];
  const decider: ApprovalDecider = {
    decide: async (id) => {
      decided.push(id);
      if (id === 'tg_a') await hang; // the engine returns a final approval only after the call ran
      return { ok: true, rec: recs.get(id)!, final: true };
    },
    get: async (id) => recs.get(id),
    list: async () => [],
    cancel: async () => undefined,
  };
  const logs: LogLine[] = [];
  const ch = new SlackChannel({ token: TOKEN, channel: '#approvals', apiUrl: fake.url, pollIntervalMs: 20, log: (level, msg) => void logs.push({ level, msg }) });
  try {
    await ch.start(decider);
    const refA = await ch.post(recs.get('tg_a')!);
    const refB = await ch.post(recs.get('tg_b')!);
    fake.setReactions(refA.ts!, [{ name: '+1', users: ['U_ALICE'] }]);
    await waitFor('decide(a)', () => decided.includes('tg_a'));
    fake.setReactions(refB.ts!, [{ name: '+1', users: ['U_ALICE'] }]);
    await waitFor('decide(b) while a is still deciding', () => decided.includes('tg_b'));
    assert.equal(decided.filter((d) => d === 'tg_a').length, 1, 'a is not sent again while its decision runs');
  } finally {
    release();
    await ch.close();
    await fake.close();
  }
  assert.ok(!JSON.stringify(logs).includes(TOKEN));
});

test('close() stops polling', async () => {
  const fake = await startFakeSlack({ token: TOKEN });
  const a = await rig({ fake });
  const b = await rig({ fake });
  try {
    const recA = await a.request();
    const refA = await a.posted(recA.id);
    await morePolls(fake, refA.ts, 2);
    await a.close();
    const atClose = reactionPolls(fake, refA.ts).length;
    const recB = await b.request();
    const refB = await b.posted(recB.id);
    await morePolls(fake, refB.ts, 5);
    assert.ok(reactionPolls(fake, refA.ts).length <= atClose + 1, 'at most the poll in flight at close');
  } finally {
    await b.close();
    await fake.close();
  }
});

test('pending approvals do not keep the process alive (polling timers are unref\'d)', async () => {
  const fake = await startFakeSlack({ token: TOKEN });
  try {
    const slackJs = new URL('./slack.js', import.meta.url).href;
    // A process that posts one request, keeps it pending and never calls close(): it must exit on its own.
    const script = `
      const { SlackChannel } = await import(${JSON.stringify(slackJs)});
      const rec = { id: 'tg_0123456789abcdef01234', state: 'pending', tool: 't', principal: 'p', arguments: {}, expiresAt: Date.now() + 60000, requiredApprovals: 1, votes: [] };
      const decider = { decide: async () => ({ ok: false, code: 'not_found', message: '' }), get: async () => rec, list: async () => [], cancel: async () => undefined };
      const ch = new SlackChannel({ token: ${JSON.stringify(TOKEN)}, channel: '#a', apiUrl: ${JSON.stringify(fake.url)}, pollIntervalMs: 20, log: () => {} });
      await ch.start(decider);
      await ch.post(rec);
      console.log('posted');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = setTimeout(() => child.kill(), 15_000);
    const code = await exited;
    clearTimeout(deadline);
    assert.equal(code, 0, 'exited by itself (killed at the deadline otherwise)');
    assert.match(out, /posted/);
    assert.equal(fake.calls.filter((c) => c.method === 'chat.postMessage').length, 1);
  } finally {
    await fake.close();
  }
});

// --- interactive buttons ------------------------------------------------------------------

function signed(body: string, opts: { secret?: string; timestamp?: number } = {}): { raw: Buffer; headers: Record<string, string> } {
  const ts = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const sig = 'v0=' + createHmac('sha256', opts.secret ?? SIGNING_SECRET).update(`v0:${ts}:${body}`).digest('hex');
  return { raw: Buffer.from(body), headers: { 'x-slack-request-timestamp': ts, 'x-slack-signature': sig, 'content-type': 'application/x-www-form-urlencoded' } };
}

function clickBody(actionId: string, approvalId: string, userId: string): string {
  const payload = { type: 'block_actions', user: { id: userId, username: 'someone' }, actions: [{ type: 'button', action_id: actionId, block_id: 'tg_decision', value: approvalId }], container: { type: 'message' } };
  return 'payload=' + encodeURIComponent(JSON.stringify(payload));
}

function recordingDecider(): ApprovalDecider & { votes: unknown[] } {
  const votes: unknown[] = [];
  const refuse: DecideResult = { ok: false, code: 'not_found', message: 'none' };
  return {
    votes,
    decide: async (id, vote) => {
      votes.push({ id, ...vote });
      return refuse;
    },
    get: async () => undefined,
    list: async () => [],
    cancel: async () => undefined,
  };
}

test('signature: valid, tampered, wrong secret, stale or future timestamp, missing headers', () => {
  const now = Date.now();
  const { raw, headers } = signed('payload=%7B%7D', { timestamp: Math.floor(now / 1000) });
  assert.equal(verifySlackSignature(raw, headers, SIGNING_SECRET, now), true);
  const upper = { 'X-Slack-Request-Timestamp': headers['x-slack-request-timestamp']!, 'X-Slack-Signature': headers['x-slack-signature']! };
  assert.equal(verifySlackSignature(raw, upper, SIGNING_SECRET, now), true, 'header names in any case');
  assert.equal(verifySlackSignature(Buffer.from('payload=%7B%7D '), headers, SIGNING_SECRET, now), false, 'tampered body');
  assert.equal(verifySlackSignature(raw, headers, 'another-secret', now), false);
  assert.equal(verifySlackSignature(raw, headers, '', now), false, 'no secret configured');
  assert.equal(verifySlackSignature(raw, headers, SIGNING_SECRET, now + 301_000), false, 'older than 5 minutes');
  assert.equal(verifySlackSignature(raw, headers, SIGNING_SECRET, now - 301_000), false, 'from the future');
  assert.equal(verifySlackSignature(raw, headers, SIGNING_SECRET, now + 299_000), true, 'within the window');
  assert.equal(verifySlackSignature(raw, { 'x-slack-signature': headers['x-slack-signature']! }, SIGNING_SECRET, now), false);
  assert.equal(verifySlackSignature(raw, { ...headers, 'x-slack-signature': 'v0=abc' }, SIGNING_SECRET, now), false);
  assert.equal(verifySlackSignature(raw, { ...headers, 'x-slack-signature': headers['x-slack-signature']!.replace('v0=', 'v1=') }, SIGNING_SECRET, now), false);
});

test('a bad signature or a stale timestamp is refused with 401 and decides nothing', async () => {
  const decider = recordingDecider();
  const body = clickBody('tg_approve', 'tg_0123456789abcdef01234', 'U_EVE');
  const wrongSecret = signed(body, { secret: 'guessed' });
  const stale = signed(body, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
  for (const [what, raw, headers] of [
    ['wrong secret', wrongSecret.raw, wrongSecret.headers],
    ['stale timestamp', stale.raw, stale.headers],
    ['no signature', Buffer.from(body), {}],
  ] as const) {
    const res = await handleSlackInteraction(raw, headers, decider, SIGNING_SECRET);
    assert.equal(res.status, 401, what);
  }
  assert.deepEqual(decider.votes, []);

  const garbage = signed('payload=%7Bnot-json');
  assert.equal((await handleSlackInteraction(garbage.raw, garbage.headers, decider, SIGNING_SECRET)).status, 400);
  const noUser = signed('payload=' + encodeURIComponent(JSON.stringify({ type: 'block_actions', actions: [] })));
  assert.equal((await handleSlackInteraction(noUser.raw, noUser.headers, decider, SIGNING_SECRET)).status, 400);
  const otherType = signed('payload=' + encodeURIComponent(JSON.stringify({ type: 'view_submission' })));
  assert.deepEqual(await handleSlackInteraction(otherType.raw, otherType.headers, decider, SIGNING_SECRET), { status: 200, headers: {}, body: '' });
  assert.deepEqual(decider.votes, []);
});

test('a signed Approve click decides and releases; a Reject click rejects with its reason', async () => {
  const r = await rig();
  try {
    const rec = await r.request();
    const ref = await r.posted(rec.id);
    const click = signed(clickBody('tg_approve', rec.id, 'U_CLICK'));
    const res = await handleSlackInteraction(click.raw, click.headers, r.engine, SIGNING_SECRET, (level, msg) => void r.logs.push({ level, msg }));
    assert.deepEqual(res, { status: 200, headers: {}, body: '' });
    const done = await waitFor('completed', async () => ((await r.state(rec.id)).state === 'completed' ? r.state(rec.id) : undefined));
    assert.equal(done.decidedBy, 'slack:U_CLICK');
    await waitFor('chat.update', () => updatesOf(r.fake, ref.ts)[0]);
    assert.ok(blocksText(r.fake.messages.get(ref.ts)!.blocks).includes('*Approved* by <@U_CLICK>'));

    const second = await r.request();
    const reject = signed(clickBody('tg_reject', second.id, 'U_NO'));
    assert.equal((await handleSlackInteraction(reject.raw, reject.headers, r.engine, SIGNING_SECRET)).status, 200);
    const rejected = await waitFor('rejected', async () => ((await r.state(second.id)).state === 'rejected' ? r.state(second.id) : undefined));
    assert.equal(rejected.decidedBy, 'slack:U_NO');
    assert.equal(rejected.reason, 'rejected in Slack by <@U_NO>');
    assert.equal(r.executed.length, 1);
  } finally {
    await r.close();
  }
});

test('a click the engine refuses still gets 200 (Slack wants it) and is logged', async () => {
  const r = await rig();
  try {
    const rec = await r.request({ approvers: ['U_ALLOWED'] });
    const click = signed(clickBody('tg_approve', rec.id, 'U_OUTSIDER'));
    const lines: LogLine[] = [];
    const res = await handleSlackInteraction(click.raw, click.headers, r.engine, SIGNING_SECRET, (level, msg, fields) => void lines.push({ level, msg, ...(fields ? { fields } : {}) }));
    assert.deepEqual(res, { status: 200, headers: {}, body: '' });
    const refused = await waitFor('refusal logged', () => lines.find((l) => l.msg.includes('refused')));
    assert.equal(refused.fields?.code, 'not_allowed');
    assert.equal((await r.state(rec.id)).state, 'pending');
    assert.deepEqual((await r.state(rec.id)).votes, []);
  } finally {
    await r.close();
  }
});

test('a signed click is used once: replayed (also after a restart) it is refused with 409 and decides nothing', async () => {
  const fake = await startFakeSlack({ token: TOKEN });
  const dir = mkdtempSync(join(tmpdir(), 'tg-slack-replay-'));
  try {
    const first = await rig({ fake, dir });
    const rec = await first.request({ requiredApprovals: 2 });
    const click = signed(clickBody('tg_approve', rec.id, 'U_ONCE'));
    assert.equal((await handleSlackInteraction(click.raw, click.headers, first.engine, SIGNING_SECRET)).status, 200);
    await waitFor('the vote', async () => ((await first.state(rec.id)).votes.length === 1 ? true : undefined));
    const again = await handleSlackInteraction(click.raw, click.headers, first.engine, SIGNING_SECRET);
    assert.equal(again.status, 409, 'the same signed request twice');
    await first.close();

    const second = await rig({ fake, dir });
    try {
      const replay = await handleSlackInteraction(click.raw, click.headers, second.engine, SIGNING_SECRET);
      assert.equal(replay.status, 409, 'replayed after a restart');
      const now = await second.state(rec.id);
      assert.equal(now.state, 'pending');
      assert.deepEqual(now.votes.map((v) => v.by), ['slack:U_ONCE']);
    } finally {
      await second.close();
    }
  } finally {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
