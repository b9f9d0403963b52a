import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../policy/config.js';
import { buildSnapshot } from '../policy/snapshot.js';
import type { Snapshot } from '../policy/types.js';
import { judge as judgeGates } from './judge.js';
import { approvalGate } from './approval.js';

import type { Decision, Subject } from './decision.js';

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

describe('one canonical name per resource, names compared as the server does', () => {
  const snap = (governance: string, expose = ''): Snapshot => {
    const text = `schema: 1
sources:
  - id: up
    kind: mcp
    url: http://localhost:3000
${expose}governance:
  defaults:
    action: forward
${governance}`;
    return buildSnapshot(parseConfig(text, '/tmp/gates-test.yaml', {}), text);
  };
  const subject = (method: string, resource: string, kind?: 'name' | 'uri' | 'template'): Subject => ({ method, resource, sourceId: 'up', ...(kind ? { kind } : {}) });

  it('judges every spelling of a denied or hidden URI as that URI', () => {
    const s = snap(`  rules:\n    - match: "DEMO://resource/dynamic/text/1"\n      action: deny\n`, `    expose:\n      mode: blocklist\n      tools: ["file:///etc/*"]\n`);
    for (const u of ['demo://resource/dynamic/text/1', 'DEMO://resource/dynamic/x/../text/1', 'demo://RESOURCE/dynamic/%74ext/1']) {
      assert.equal((judgeGates(subject('resources/read', u), s) as Decision).action, 'deny', u);
    }
    assert.equal((judgeGates(subject('resources/read', 'demo://resource/dynamic/text/2'), s) as Decision).action, 'forward');
    for (const u of ['FILE:///etc/passwd', 'file://localhost/etc/passwd', 'file:///tmp/../etc/passwd']) {
      const d = judgeGates(subject('resources/subscribe', u), s) as Decision;
      assert.equal(d.error, 'tool_not_exposed', u);
    }
  });

  it('a query, a fragment or an encoded slash does not take a URI out of what hides or denies it', () => {
    const s = snap(`  rules:\n    - match: "file:///etc/passwd"\n      action: deny\n    - match: "demo://r/held"\n      action: approve\n`, `    expose:\n      mode: blocklist\n      tools: ["demo://hidden/x"]\n`);
    for (const u of ['file:///etc/passwd?x', 'file:///etc/passwd#frag', 'file:///etc/passwd?a#b']) assert.equal((judgeGates(subject('resources/read', u), s) as Decision).error, 'governance_rule_denied', u);
    assert.equal((judgeGates(subject('resources/read', 'demo://hidden/x?y'), s) as Decision).error, 'tool_not_exposed');
    assert.equal((judgeGates(subject('resources/read', 'demo://r/held#now'), s) as Decision).action, 'approve');
    assert.equal((judgeGates(subject('resources/read', 'file:///etc/hosts?x'), s) as Decision).action, 'forward');
    // a server that percent-decodes the path reads an encoded slash as one
    for (const u of ['file:///etc%2Fpasswd', 'file:///tmp/..%2Fetc/passwd', 'file:///etc%5Cpasswd?q']) assert.equal((judgeGates(subject('resources/read', u), s) as Decision).error, 'governance_rule_denied', u);
  });

  it('filters list items on the same canonical form', () => {
    const s = snap('', `    expose:\n      mode: blocklist\n      tools: ["DEMO://secret/*", "secret_*"]\n`);
    const msg = { jsonrpc: '2.0', id: 1, result: { resources: [{ uri: 'demo://secret/a' }, { uri: 'demo://SECRET/b' }, { uri: 'demo://public/c' }], resourceTemplates: [{ uriTemplate: 'demo://secret/{id}' }, { uriTemplate: 'demo://public/{id}' }] } };
    assert.equal(filterListResponse(msg, s, 'up'), true);
    assert.deepEqual(msg.result.resources, [{ uri: 'demo://public/c' }]);
    assert.deepEqual(msg.result.resourceTemplates, [{ uriTemplate: 'demo://public/{id}' }]);
  });

  it('names are exact by default and folded under governance.names: casefold', () => {
    const rules = `  rules:\n    - match: "delete_*"\n      action: deny\n`;
    assert.equal((judgeGates(subject('tools/call', 'Delete_user'), snap(rules)) as Decision).action, 'forward');
    const folded = snap(`  names: casefold\n${rules}`, `    expose:\n      mode: blocklist\n      tools: ["Secret_*"]\n`);
    for (const n of ['Delete_user', 'DELETE_USER', 'ｄｅｌｅｔｅ_user', 'dele\u200bte_user']) {
      assert.equal((judgeGates(subject('tools/call', n), folded) as Decision).action, 'deny', n);
    }
    assert.equal((judgeGates(subject('prompts/get', 'SECRET_prompt'), folded) as Decision).error, 'tool_not_exposed');
    assert.equal((judgeGates(subject('completion/complete', 'secret_prompt', 'name'), folded) as Decision).error, 'tool_not_exposed');
    // URIs are not case-folded: their path is case-sensitive
    const uris = snap(`  names: casefold\n  rules:\n    - match: "demo://r/Secret"\n      action: deny\n`);
    assert.equal((judgeGates(subject('resources/read', 'demo://r/secret'), uris) as Decision).action, 'forward');
    assert.equal((judgeGates(subject('resources/read', 'DEMO://r/Secret'), uris) as Decision).action, 'deny');
  });

  it('judges completion on a resource template by its template URI', () => {
    const s = snap('', `    expose:\n      mode: blocklist\n      tools: ["demo://resource/dynamic/*"]\n`);
    assert.equal((judgeGates(subject('completion/complete', 'demo://resource/dynamic/text/{id}', 'template'), s) as Decision).error, 'tool_not_exposed');
    assert.equal((judgeGates(subject('completion/complete', 'demo://resource/static/{id}', 'template'), s) as Decision).action, 'forward');
  });
});

test('mayHold: true only where a rule admitting the source (or the default) is approve or policy', async () => {
  const { mayHold } = await import('./rules.js');
  const cfg = (rules: string, defaults = 'forward') => snapshotOf(`schema: 1
sources:
  - id: up
    kind: mcp
    url: http://127.0.0.1:1/mcp
governance:
  defaults:
    action: ${defaults}
  rules:
${rules || '    []'}
`);
  assert.equal(mayHold(cfg(''), 'up'), false, 'forward by default, no rules');
  assert.equal(mayHold(cfg('    - match: "x_*"\n      action: deny'), 'up'), false, 'deny rules hold nothing');
  assert.equal(mayHold(cfg('', 'approve'), 'up'), true, 'default approve');
  assert.equal(mayHold(cfg('    - match: "pay_*"\n      action: approve'), 'up'), true);
  assert.equal(mayHold(cfg('    - match: "pay_*"\n      action: policy\n      policy_id: p1'), 'up'), true, 'Cedar may answer approve');
  const scoped = cfg('    - match: "pay_*"\n      action: approve\n      source: up');
  assert.equal(mayHold(scoped, 'elsewhere'), false, 'a rule for another source');
  assert.equal(mayHold(scoped, 'up'), true);
  assert.equal(mayHold(base, 'up'), true);
});
