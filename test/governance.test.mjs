// wrap's governance service over HTTP, as the shims use it: judged by the sidecar's gates, a
// held call released or refused by a person, list answers filtered, stdio metrics exported,
// and nothing served without the per-run secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGovernanceService } from '../dist/wrap/governance.js';
import { resolveSettings } from '../dist/cli/settings.js';
import { tempDir } from './helpers.mjs';

const TOKEN = 'per-run-secret-for-tests';
let gov;
let dir;

before(async () => {
  dir = tempDir('gov');
  const cfg = join(dir, 'thoughtgate.yaml');
  writeFileSync(cfg, `schema: 1
sources:
  - id: fs
    kind: mcp
    command: unused
    expose:
      mode: blocklist
      tools: ["secret_*"]
governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      action: approve
    - match: "write_*"
      action: deny
      source: [fs]
`);
  const settings = resolveSettings({ config: cfg }, { THOUGHTGATE_ADMIN_TOKEN: 'admin-t', THOUGHTGATE_AUDIT_PATH: join(dir, 'audit.ndjson'), THOUGHTGATE_OUTBOUND_PORT: '0', THOUGHTGATE_ADMIN_PORT: '0', HOME: dir });
  gov = await startGovernanceService({ configPath: cfg, settings, token: TOKEN, port: 0, serverIds: ['fs', 'other'] });
});
after(async () => gov?.close());

async function call(path, body, token = TOKEN) {
  const r = await fetch(gov.url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: r.status === 204 ? undefined : await r.json() };
}
const req = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

test('without the per-run secret nothing is judged', async () => {
  assert.equal((await call('/shim/v1/judge', { serverId: 'fs', message: req(1, 'echo') }, 'wrong')).status, 401);
  assert.equal((await fetch(gov.url + '/healthz')).status, 200);
});

test('forward, deny (per source), hide, and every agent server governed under its own id', async () => {
  assert.deepEqual((await call('/shim/v1/judge', { serverId: 'fs', message: req(1, 'echo') })).json, { action: 'forward' });
  const denied = (await call('/shim/v1/judge', { serverId: 'fs', message: req(2, 'write_file') })).json;
  assert.equal(denied.action, 'respond');
  assert.equal(denied.response.id, 2);
  assert.equal(denied.response.error.code, -32014);
  assert.deepEqual((await call('/shim/v1/judge', { serverId: 'other', message: req(3, 'write_file') })).json, { action: 'forward' }, 'the rule names source fs only');
  const hidden = (await call('/shim/v1/judge', { serverId: 'fs', message: req(4, 'secret_dump') })).json;
  assert.equal(hidden.response.error.code, -32015);
});

test('a held call: hold at once, wait times out without a decision, approve releases it, reject refuses the next', async () => {
  const held = (await call('/shim/v1/judge', { serverId: 'fs', message: req(5, 'delete_file', { path: '/tmp/x' }) })).json;
  assert.equal(held.action, 'hold');
  assert.match(held.consoleUrl, /\/approvals$/);
  assert.deepEqual((await call(`/shim/v1/wait/${held.approvalId}?timeoutMs=50`)).json, { done: false });
  const waiting = call(`/shim/v1/wait/${held.approvalId}?timeoutMs=20000`);
  const admin = `http://127.0.0.1:${gov.adminPort}`;
  const ok = await fetch(`${admin}/api/approvals/${held.approvalId}/approve`, { method: 'POST', headers: { authorization: 'Bearer admin-t', 'content-type': 'application/json' }, body: '{"by":"alice"}' });
  assert.equal(ok.status, 200);
  assert.deepEqual((await waiting).json, { done: true, answer: { action: 'forward' } });

  const second = (await call('/shim/v1/judge', { serverId: 'fs', message: req(6, 'delete_file', { path: '/tmp/y' }) })).json;
  await fetch(`${admin}/api/approvals/${second.approvalId}/reject`, { method: 'POST', headers: { authorization: 'Bearer admin-t', 'content-type': 'application/json' }, body: '{"by":"bob","reason":"no"}' });
  const answer = (await call(`/shim/v1/wait/${second.approvalId}?timeoutMs=20000`)).json;
  assert.equal(answer.answer.action, 'respond');
  assert.equal(answer.answer.response.id, 6);
  assert.equal(answer.answer.response.error.code, -32007);
});

test('list answers are filtered; events become stdio metrics', async () => {
  const list = { jsonrpc: '2.0', id: 7, result: { tools: [{ name: 'echo' }, { name: 'secret_dump' }] } };
  const f = (await call('/shim/v1/filter', { serverId: 'fs', method: 'tools/list', message: list })).json;
  assert.deepEqual(f.message.result.tools.map((t) => t.name), ['echo']);
  assert.deepEqual((await call('/shim/v1/filter', { serverId: 'fs', method: 'tools/list', message: { jsonrpc: '2.0', id: 8, result: { tools: [{ name: 'echo' }] } } })).json, {});
  assert.equal((await call('/shim/v1/events', { serverId: 'fs', messages: [{ direction: 'inbound', method: 'tools/call', count: 3 }], framing: [{ direction: 'inbound', errorType: 'malformed_json', count: 2 }] })).status, 204);
  const text = await (await fetch(`http://127.0.0.1:${gov.adminPort}/metrics`)).text();
  assert.match(text, /thoughtgate_stdio_messages_total\{server_id="fs",direction="agent_to_server",method="tools\/call"\} 3/);
  assert.match(text, /thoughtgate_stdio_framing_errors_total\{server_id="fs",error_type="malformed_json"\} 2/);
  assert.match(text, /thoughtgate_stdio_governance_decisions_total\{server_id="fs",decision="deny",profile="production"\} [1-9]/);
  assert.match(text, /thoughtgate_stdio_governance_decisions_total\{server_id="fs",decision="pending_approval",profile="production"\} [1-9]/);
});

test('lookalikes, governed notifications, completion refs and URI spellings are judged as on the sidecar', async () => {
  const judge = async (message) => (await call('/shim/v1/judge', { serverId: 'fs', message })).json;
  const lookalike = await judge({ jsonrpc: '2.0', id: 1, method: 'Tools/call', params: { name: 'echo' } });
  assert.equal(lookalike.action, 'respond');
  assert.equal(lookalike.response.error.code, -32601);
  assert.equal(lookalike.response.error.data.error_type, 'method_lookalike');
  const notification = await judge({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'echo' } });
  assert.equal(notification.action, 'respond', 'a governed method without an id is refused');
  assert.deepEqual(await judge({ jsonrpc: '2.0', method: 'vendor/notice' }), { action: 'forward' }, 'unknown_methods: forward by default');
  const hiddenPrompt = await judge({ jsonrpc: '2.0', id: 2, method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'secret_prompt' }, argument: { name: 'a', value: '' } } });
  assert.equal(hiddenPrompt.response.error.code, -32015);
  const respelt = await judge({ jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'FILE:///tmp/../etc/passwd' } });
  assert.equal(respelt.response.error.code, -32602);
  assert.match(respelt.response.error.message, /file:\/\/\/etc\/passwd/);
  assert.deepEqual(await judge({ jsonrpc: '2.0', id: 4, method: 'resources/read', params: { uri: 'file:///etc/passwd' } }), { action: 'forward' });
});
