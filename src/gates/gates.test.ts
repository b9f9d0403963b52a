import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../policy/config.js';
import { buildSnapshot } from '../policy/snapshot.js';
import type { Snapshot } from '../policy/types.js';
import { judge as judgeGates } from './judge.js';
import { approvalGate } from './approval.js';

import type { Decision } from './decision.js';

// No cedar section in these snapshots: every decision is synchronous.
const judgeSync = (subject: Parameters<typeof judgeGates>[0], snapshot: Snapshot) => judgeGates(subject, snapshot) as Decision;
const judge = (subject: Parameters<typeof judgeGates>[0], snapshot: Snapshot) => approvalGate(judgeSync(subject, snapshot));
import { filterListResponse } from './list-filter.js';

function snapshotOf(yaml: string): Snapshot {
  return buildSnapshot(parseConfig(yaml, '/tmp/gates-test.yaml', {}), yaml);
}

const base = snapshotOf(`schema: 1
sources:
  - id: up
    kind: mcp
    url: http://127.0.0.1:1/mcp
    expose:
      mode: blocklist
      tools: ["secret_*", "file:///etc/*"]
governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      action: deny
    - match: "delete_*"
      action: forward
    - match: "admin_*"
      action: deny
      source: up
    - match: "pay_*"
      action: approve
    - match: "cedar_*"
      action: policy
      policy_id: p1
    - match: "file:///home/*"
      action: deny
`);

const subject = (resource: string, method = 'tools/call', sourceId = 'up') => ({ method, resource, sourceId });

// One case table for every gate: [resource, method, expected action, gate, error]
const cases: Array<[string, string, string, string, string | undefined]> = [
  ['echo', 'tools/call', 'forward', 'gate2', undefined],
  ['delete_user', 'tools/call', 'deny', 'gate2', 'governance_rule_denied'], // first match wins over the later forward
  ['admin_reset', 'tools/call', 'deny', 'gate2', 'governance_rule_denied'],
  ['secret_dump', 'tools/call', 'deny', 'gate1', 'tool_not_exposed'],
  ['pay_invoice', 'tools/call', 'deny', 'gate4', 'service_unavailable'], // fail closed until gate 4 exists
  ['cedar_x', 'tools/call', 'deny', 'gate3', 'policy_denied'], // fail closed until gate 3 exists
  ['file:///etc/passwd', 'resources/read', 'deny', 'gate1', 'tool_not_exposed'],
  ['file:///home/me/x', 'resources/read', 'deny', 'gate2', 'governance_rule_denied'],
  ['file:///tmp/x', 'resources/subscribe', 'forward', 'gate2', undefined],
  ['greeting', 'prompts/get', 'forward', 'gate2', undefined],
  ['DELETE_USER', 'tools/call', 'forward', 'gate2', undefined], // globs are case-sensitive
];

for (const [resource, method, action, gate, error] of cases) {
  test(`judge ${method} ${resource} → ${action} at ${gate}`, () => {
    const d = judge(subject(resource, method), base);
    assert.equal(d.action, action);
    assert.equal(d.gate, gate);
    assert.equal(d.error, error);
    assert.ok(d.reason.length > 0);
  });
}

test('ungoverned methods are forwarded without judging', () => {
  const d = judge({ method: 'ping', resource: undefined, sourceId: 'up' }, base);
  assert.equal(d.action, 'forward');
});

test('an unknown or disabled source hides everything (fail closed)', () => {
  assert.equal(judge(subject('echo', 'tools/call', 'other'), base).error, 'tool_not_exposed');
  const disabled = snapshotOf(`schema: 1
sources:
  - id: up
    kind: mcp
    url: http://127.0.0.1:1/mcp
    enabled: false
governance:
  defaults:
    action: forward
`);
  assert.equal(judge(subject('echo'), disabled).error, 'tool_not_exposed');
});

test('a rule limited to another source does not apply', () => {
  const s = snapshotOf(`schema: 1
sources:
  - id: up
    kind: mcp
    url: http://127.0.0.1:1/mcp
governance:
  defaults:
    action: deny
  rules:
    - match: "*"
      action: forward
      source: up
`);
  assert.equal(judge(subject('anything'), s).action, 'forward');
  assert.equal(judge(subject('anything', 'tools/call', 'elsewhere'), s).error, 'tool_not_exposed');
});

test('without gate 4, judge reports approve and the approval gate refuses it', () => {
  assert.equal(judgeSync(subject('pay_x'), base).action, 'approve');
  const held = judge(subject('pay_x'), base);
  assert.equal(held.action, 'deny');
  assert.match(held.reason, /approval engine not available/);
});

test('decisions are shared per snapshot, not rebuilt per call', () => {
  assert.equal(judge(subject('echo'), base), judge(subject('echo2'), base));
  assert.equal(judge(subject('delete_a'), base), judge(subject('delete_b'), base));
});

test('an allowlist shows only what it names', () => {
  const s = snapshotOf(`schema: 1
sources:
  - id: up
    kind: mcp
    url: http://127.0.0.1:1/mcp
    expose:
      mode: allowlist
      tools: ["read_*"]
governance:
  defaults:
    action: forward
`);
  assert.equal(judge(subject('read_file'), s).action, 'forward');
  assert.equal(judge(subject('write_file'), s).error, 'tool_not_exposed');
});

test('list results lose hidden items of every kind, in place', () => {
  const msg = {
    jsonrpc: '2.0', id: 1,
    result: {
      tools: [{ name: 'echo' }, { name: 'secret_dump' }, { name: 42 }, null],
      resources: [{ uri: 'file:///etc/passwd' }, { uri: 'file:///tmp/a' }],
      resourceTemplates: [{ uriTemplate: 'file:///etc/{x}' }, { uriTemplate: 'file:///var/{x}' }],
      prompts: [{ name: 'secret_prompt' }, { name: 'hello' }],
      nextCursor: 'abc',
    },
  };
  assert.equal(filterListResponse(msg, base, 'up'), true);
  assert.deepEqual(msg.result.tools, [{ name: 'echo' }]);
  assert.deepEqual(msg.result.resources, [{ uri: 'file:///tmp/a' }]);
  assert.deepEqual(msg.result.resourceTemplates, [{ uriTemplate: 'file:///var/{x}' }]);
  assert.deepEqual(msg.result.prompts, [{ name: 'hello' }]);
  assert.equal(msg.result.nextCursor, 'abc');
  assert.equal(filterListResponse({ jsonrpc: '2.0', id: 2, result: { tools: [{ name: 'echo' }] } }, base, 'up'), false);
  assert.equal(filterListResponse({ jsonrpc: '2.0', id: 3, error: { code: 1, message: 'x' } }, base, 'up'), false);
});
