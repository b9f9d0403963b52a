import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalRecord } from '../types.js';
import {
  APPROVE_ACTION_ID, MAX_ARGUMENTS_CHARS, REDACTED, REJECT_ACTION_ID, TRUNCATED_MARKER,
  buildApprovalMessage, buildOutcomeMessage, describeActor, escapeMrkdwn, formatArguments, formatUtc, maskArguments, slackRejectReason, truncate,
} from './slack-message.js';

function record(over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id: 'tg_0123456789abcdef01234',
    state: 'pending',
    mode: 'task',
    method: 'tools/call',
    tool: 'delete_user',
    arguments: { user_id: '12345' },
    principal: 'my-agent',
    sourceId: 'upstream',
    workflow: 'default',
    channel: 'slack',
    snapshot: 's1',
    correlationId: 'c1',
    createdAt: Date.UTC(2024, 0, 15, 10, 0),
    updatedAt: Date.UTC(2024, 0, 15, 10, 0),
    expiresAt: Date.UTC(2024, 0, 15, 10, 30, 59),
    onTimeout: 'deny',
    requiredApprovals: 1,
    approvers: [],
    votes: [],
    owner: 'r1',
    request: { path: '/mcp', headers: {}, body: '{}' },
    requestId: 1,
    keepUntil: Date.UTC(2024, 0, 16),
    pollIntervalMs: 2000,
    ...over,
  };
}

type AnyBlock = { type: string; text?: { type: string; text: string }; fields?: { text: string }[]; elements?: Record<string, unknown>[]; block_id?: string };

const blocksOf = (m: { blocks: unknown[] }) => m.blocks as AnyBlock[];
/** Every visible text of a message, one string per text object. */
function textsOf(m: { blocks: unknown[] }): string[] {
  const out: string[] = [];
  for (const b of blocksOf(m)) {
    if (b.text) out.push(b.text.text);
    for (const f of b.fields ?? []) out.push(f.text);
    for (const e of b.elements ?? []) if (typeof e.text === 'string') out.push(e.text);
  }
  return out;
}

test('masking: secret-looking keys at any depth, case-insensitive, whatever their value', () => {
  const masked = maskArguments({
    user: 'bob',
    Password: 'hunter2',
    nested: { deeper: { API_KEY: 'k1', apiKey: 'k2', 'x-api-key': 'k3', count: 3 } },
    headers: [{ Authorization: 'Basic Zm9vOmJhcg==' }, { accept: 'json' }],
    db: { credentials: { user: 'u', pass: 'p' }, private_key: '-----BEGIN', clientSecret: 42 },
    access_token: null,
  }) as Record<string, any>;
  assert.equal(masked.user, 'bob');
  assert.equal(masked.Password, REDACTED);
  assert.deepEqual(masked.nested.deeper, { API_KEY: REDACTED, apiKey: REDACTED, 'x-api-key': REDACTED, count: 3 });
  assert.deepEqual(masked.headers, [{ Authorization: REDACTED }, { accept: 'json' }]);
  assert.deepEqual(masked.db, { credentials: REDACTED, private_key: REDACTED, clientSecret: REDACTED });
  assert.equal(masked.access_token, REDACTED);
});

test('masking: credential-shaped values are masked inside strings, the rest stays readable', () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk';
  const values = {
    slack: 'xoxb-1234567890-abcdefABCDEF',
    slackUser: 'use xoxp-99999999-zzzz now',
    openai: 'sk-proj-abcdefghijklmnopqrstuvwx',
    github: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789',
    aws: 'AKIAIOSFODNN7EXAMPLE',
    header: 'curl -H "Authorization: Bearer abc.def-ghi" https://x',
    jwt,
    plain: 'skip the task-list; ask-me later',
  };
  const m = maskArguments(values) as Record<string, string>;
  assert.equal(m.slack, REDACTED);
  assert.equal(m.slackUser, `use ${REDACTED} now`);
  assert.equal(m.openai, REDACTED);
  assert.equal(m.github, REDACTED);
  assert.equal(m.aws, REDACTED);
  assert.equal(m.header, `curl -H "Authorization: ${REDACTED}" https://x`);
  assert.equal(m.jwt, REDACTED);
  assert.equal(m.plain, values.plain, 'ordinary text is not mistaken for a secret');
  assert.deepEqual(maskArguments(['AKIAIOSFODNN7EXAMPLE', 7, true]), [REDACTED, 7, true]);
});

test('masking: redact_fields are dotted paths matched where they end, arrays traversed', () => {
  const args = { ssn: '111', patient: { ssn: '222', name: 'Ann' }, auth: { user: 'u' }, items: [{ card: { number: '4111' } }, { card: { number: '4222' }, note: 'n' }] };
  const m = maskArguments(args, ['ssn', 'card.number', 'auth.user']) as any;
  assert.equal(m.ssn, REDACTED);
  assert.equal(m.patient.ssn, REDACTED);
  assert.equal(m.patient.name, 'Ann');
  assert.equal(m.auth.user, REDACTED);
  assert.deepEqual(m.items, [{ card: { number: REDACTED } }, { card: { number: REDACTED }, note: 'n' }]);
  assert.equal(args.ssn, '111', 'the record itself is not changed');
  assert.deepEqual(maskArguments({ a: { b: 1 } }, ['b.a']), { a: { b: 1 } }, 'a path must match in order');
});

test('masking keeps a __proto__ key a key', () => {
  const args = JSON.parse('{"__proto__": {"password": "p", "x": 1}}');
  const m = maskArguments(args) as Record<string, unknown>;
  assert.deepEqual(Object.keys(m), ['__proto__']);
  assert.deepEqual({ ...(m['__proto__'] as object) }, { password: REDACTED, x: 1 });
});

test('arguments are pretty JSON, escaped for mrkdwn, no ``` escape from the code block', () => {
  const s = formatArguments({ q: '<!channel> & <@U1> ```rm -rf```' });
  assert.ok(s.startsWith('{\n  "q": '));
  assert.ok(!s.includes('<') && !s.includes('`'), s);
  assert.ok(s.includes('&lt;!channel&gt; &amp; &lt;@U1&gt;'));
  assert.ok(s.includes('\\u0060\\u0060\\u0060rm'), 'backticks stay valid JSON escapes');
});

test('arguments are truncated to a bound with a marker, never mid-entity', () => {
  const big = { blob: 'x'.repeat(10_000), secret: 'no' };
  const s = formatArguments(big);
  assert.ok(s.length <= MAX_ARGUMENTS_CHARS, `length ${s.length}`);
  assert.ok(s.endsWith(TRUNCATED_MARKER));
  const amps = formatArguments({ a: '&'.repeat(3000) });
  assert.ok(amps.length <= MAX_ARGUMENTS_CHARS);
  assert.match(amps.slice(0, -TRUNCATED_MARKER.length), /(&amp;)+$/, 'the cut falls between entities');
  assert.equal(truncate('ab\u{1F600}', 3, ''), 'ab', 'a surrogate pair is not split');
  assert.equal(formatArguments({ a: 1 }), '{\n  "a": 1\n}', 'short arguments are untouched');
});

test('request message: header, fields, arguments, buttons, hints, task line, metadata', () => {
  const rec = record({ arguments: { user_id: '12345', password: 'pw' } });
  const m = buildApprovalMessage(rec, { consoleUrl: 'https://tg.example/console?a=1&b=2' });
  const blocks = blocksOf(m);
  assert.deepEqual(blocks.map((b) => b.type), ['header', 'section', 'section', 'actions', 'context', 'context']);
  assert.deepEqual(blocks[0]!.text, { type: 'plain_text', text: '🔒 Approval Required: delete_user', emoji: true });
  assert.deepEqual(blocks[1]!.fields!.map((f) => f.text), ['*Tool:*\n`delete_user`', '*Principal:*\nmy-agent']);
  assert.equal(blocks[2]!.text!.text, '*Arguments:*\n```\n{\n  "user_id": "12345",\n  "password": "[REDACTED]"\n}\n```');
  const [approve, reject] = blocks[3]!.elements as Record<string, any>[];
  assert.deepEqual([approve!.action_id, approve!.value, approve!.style, approve!.text.text], [APPROVE_ACTION_ID, rec.id, 'primary', 'Approve']);
  assert.deepEqual([reject!.action_id, reject!.value, reject!.style, reject!.text.text], [REJECT_ACTION_ID, rec.id, 'danger', 'Reject']);
  assert.equal(blocks[4]!.elements![0]!.text, 'React with 👍 to approve or 👎 to reject • <https://tg.example/console?a=1&amp;b=2|Open in the console>');
  assert.equal(blocks[5]!.elements![0]!.text, `Task ID: ${rec.id} • Expires: 2024-01-15 10:30 UTC`);
  assert.deepEqual(m.metadata, { event_type: 'thoughtgate_approval', event_payload: { task_id: rec.id } });
  assert.match(m.text, /delete_user/);
  assert.match(m.text, new RegExp(rec.id));

  const noConsole = buildApprovalMessage(rec);
  assert.equal(blocksOf(noConsole)[4]!.elements![0]!.text, 'React with 👍 to approve or 👎 to reject');
});

test('request message: "Needs N approvals" and progress when several approvals are required', () => {
  const rec = record({ requiredApprovals: 2, votes: [{ by: 'slack:U1', verdict: 'approve', at: 1 }] });
  const texts = textsOf(buildApprovalMessage(rec));
  assert.ok(texts.includes(`Task ID: ${rec.id} • Expires: 2024-01-15 10:30 UTC • Needs 2 approvals`), texts.join('\n'));
  assert.ok(texts.includes('Approvals: 1 of 2 (<@U1>)'));
  assert.ok(!textsOf(buildApprovalMessage(record())).some((t) => t.includes('Needs')));
});

test('request message: untrusted tool, principal and arguments cannot mention, and stay within Slack limits', () => {
  const rec = record({
    tool: '<!here>' + 'T'.repeat(400),
    principal: '<@U999> ' + 'p'.repeat(5000),
    arguments: { list: Array.from({ length: 2000 }, (_, i) => ({ i, s: '<&>' })) },
  });
  const m = buildApprovalMessage(rec);
  const blocks = blocksOf(m);
  assert.ok(blocks.length <= 50);
  assert.ok(blocks[0]!.text!.text.length <= 150, 'header text ≤ 150');
  for (const f of blocks[1]!.fields!) assert.ok(f.text.length <= 2000, 'a field ≤ 2000');
  assert.ok(blocks[2]!.text!.text.length <= 3000, 'section text ≤ 3000');
  assert.ok(blocks[2]!.text!.text.includes(TRUNCATED_MARKER));
  for (const t of [...textsOf(m).slice(1), m.text]) {
    assert.ok(!t.includes('<!here>') && !t.includes('<@U999>'), t.slice(0, 80));
  }
  assert.ok(m.text.length <= 4000);
  assert.ok(JSON.stringify(m.blocks).length < 16_000);
});

test('formatUtc and describeActor', () => {
  assert.equal(formatUtc(Date.UTC(2024, 0, 15, 10, 30, 59, 999)), '2024-01-15 10:30 UTC');
  assert.equal(describeActor('slack:U123ABC'), '<@U123ABC>');
  assert.equal(describeActor('console:alice'), 'alice');
  assert.equal(describeActor('cli:bob@host'), 'bob@host');
  assert.equal(describeActor('system:auto-approve'), 'automatically (on_timeout: approve)');
  assert.equal(describeActor('slack:<!channel>'), '&lt;!channel&gt;', 'only real user ids become mentions');
  assert.equal(escapeMrkdwn('a<b>&c'), 'a&lt;b&gt;&amp;c');
});

test('outcome: approved by a Slack user, by a console user, automatically; no buttons left', () => {
  const bySlack = buildOutcomeMessage(record({ state: 'approved', decidedBy: 'slack:U1', votes: [{ by: 'slack:U1', verdict: 'approve', at: 1 }] }));
  assert.ok(!blocksOf(bySlack).some((b) => b.type === 'actions'));
  assert.equal(blocksOf(bySlack)[0]!.text!.text, '✅ Approved: delete_user');
  assert.ok(textsOf(bySlack).includes('✅ *Approved* by <@U1>'));
  assert.ok(textsOf(bySlack).some((t) => t.includes('"user_id"')), 'the request stays visible');

  const byConsole = buildOutcomeMessage(record({ state: 'completed', decidedBy: 'console:alice', votes: [{ by: 'console:alice', verdict: 'approve', at: 1 }] }));
  assert.ok(textsOf(byConsole).includes('✅ *Approved* by alice — executed'));

  const auto = buildOutcomeMessage(record({ state: 'approved', decidedBy: 'system:auto-approve' }));
  assert.ok(textsOf(auto).includes('✅ *Approved* automatically (on_timeout: approve)'));
});

test('outcome: rejected with reason, expired, cancelled, and who voted', () => {
  const rej = buildOutcomeMessage(record({ state: 'rejected', decidedBy: 'console:bob', reason: 'too risky <!here>', votes: [{ by: 'console:bob', verdict: 'reject', at: 1 }] }));
  assert.ok(textsOf(rej).includes('❌ *Rejected* by bob: too risky &lt;!here&gt;'), textsOf(rej).join('\n'));
  const inSlack = buildOutcomeMessage(record({ state: 'rejected', decidedBy: 'slack:U2', reason: slackRejectReason('U2') }));
  assert.ok(textsOf(inSlack).includes('❌ *Rejected* by <@U2>'), 'Slack\'s own reason is not repeated');

  const exp = buildOutcomeMessage(record({ state: 'expired', decidedBy: 'system:timeout' }));
  assert.ok(textsOf(exp).includes('⌛ *Expired*: timed out, not executed'));
  assert.equal(blocksOf(exp)[0]!.text!.text, '⌛ Expired: delete_user');

  const can = buildOutcomeMessage(record({ state: 'cancelled', decidedBy: 'console:carol' }));
  assert.ok(textsOf(can).includes('🚫 *Cancelled* by carol, not executed'));

  const several = buildOutcomeMessage(record({
    state: 'rejected', decidedBy: 'slack:U3', requiredApprovals: 2,
    votes: [{ by: 'slack:U1', verdict: 'approve', at: 1 }, { by: 'slack:U3', verdict: 'reject', at: 2 }],
  }));
  assert.ok(textsOf(several).includes('Votes: <@U1> approved, <@U3> rejected'));
  const two = buildOutcomeMessage(record({
    state: 'approved', decidedBy: 'slack:U1, console:dan', requiredApprovals: 2,
    votes: [{ by: 'slack:U1', verdict: 'approve', at: 1 }, { by: 'console:dan', verdict: 'approve', at: 2 }],
  }));
  assert.ok(textsOf(two).includes('✅ *Approved* by <@U1>, dan'));
  assert.ok(textsOf(two).includes('Votes: <@U1> approved, dan approved'));
});
