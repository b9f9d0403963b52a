// The command line: help covers every flag and variable, bad input is a clear error with an
// exit code, a config error names file, line and field, and the default config loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, startProxy, post, freePort, sourceYaml, blocklist, rule } from './helpers.mjs';

const run = (args, env = {}) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20000 });

test('thoughtgate --help names the commands; serve --help lists every THOUGHTGATE_* variable the code reads', async () => {
  const top = run(['--help']);
  assert.equal(top.status, 0);
  assert.match(top.stdout, /thoughtgate serve/);
  const serve = run(['serve', '--help']);
  assert.equal(serve.status, 0);
  for (const flag of ['--config', '--profile', '--bind', '--verbose']) assert.ok(serve.stdout.includes(flag), flag);
  const { ENV_HELP } = await import(join(ROOT, 'dist', 'cli', 'settings.js'));
  for (const [name] of ENV_HELP) assert.ok(serve.stdout.includes(name), `${name} in help`);
  // every variable the settings read is documented (grep the compiled source for env lookups)
  const src = (await import('node:fs')).readFileSync(join(ROOT, 'dist', 'cli', 'settings.js'), 'utf8');
  for (const m of src.matchAll(/'(THOUGHTGATE_[A-Z_]+)'/g)) assert.ok(serve.stdout.includes(m[1]), `${m[1]} documented`);
});

test('unknown commands and flags exit 2 with a message', () => {
  const a = run(['frobnicate']);
  assert.equal(a.status, 2);
  assert.match(a.stderr, /unknown command 'frobnicate'/);
  const b = run(['serve', '--nope']);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /--nope/);
  const c = run(['serve', '--profile', 'staging']);
  assert.equal(c.status, 2);
  assert.match(c.stderr, /--profile must be production or development/);
});

test('invalid environment values are startup errors naming the variable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
  const cfg = join(dir, 'c.yaml');
  writeFileSync(cfg, 'schema: 1\nsources:\n  - id: a\n    kind: mcp\n    url: http://127.0.0.1:1/mcp\ngovernance:\n  defaults:\n    action: forward\n');
  const r = run(['serve', '--config', cfg], { THOUGHTGATE_MAX_BATCH_SIZE: 'lots' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /THOUGHTGATE_MAX_BATCH_SIZE='lots' is not an integer/);
  const r2 = run(['serve', '--config', cfg], { THOUGHTGATE_MAX_BATCH_SIZE: '0' });
  assert.match(r2.stderr, /THOUGHTGATE_MAX_BATCH_SIZE=0 is out of range \[1, 10000\]/);
  const r3 = run(['serve', '--config', cfg], { MODE: 'yolo' });
  assert.match(r3.stderr, /MODE must be enforce, audit or bypass/);
});

test('a config with a typo refuses to start and names file, line and field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
  const cfg = join(dir, 'bad.yaml');
  writeFileSync(cfg, `schema: 1
sources:
  - id: a
    kind: mcp
    url: http://127.0.0.1:1/mcp
governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      acton: deny
`);
  const port = await freePort();
  const admin = await freePort();
  const r = run(['serve', '--config', cfg], { THOUGHTGATE_OUTBOUND_PORT: String(port), THOUGHTGATE_ADMIN_PORT: String(admin) });
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(`${cfg}:11:`), r.stderr);
  assert.match(r.stderr, /acton/);
  const missing = run(['serve', '--config', join(dir, 'nope.yaml')], { THOUGHTGATE_OUTBOUND_PORT: String(port), THOUGHTGATE_ADMIN_PORT: String(admin) });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.yaml/);
});

test('the config comes from --config, else THOUGHTGATE_CONFIG, else ./thoughtgate.yaml', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
  const yaml = (id) => `schema: 1\nsources:\n  - id: ${id}\n    kind: mcp\n    url: http://127.0.0.1:1/mcp\ngovernance:\n  defaults:\n    action: deny\n`;
  writeFileSync(join(dir, 'thoughtgate.yaml'), yaml('from-cwd'));
  writeFileSync(join(dir, 'env.yaml'), yaml('from-env'));
  const sourceOf = async (extraEnv, args = []) => {
    const port = await freePort();
    const admin = await freePort();
    const { spawn } = await import('node:child_process');
    const proc = spawn(process.execPath, [BIN, 'serve', ...args], {
      cwd: dir, env: { ...process.env, THOUGHTGATE_OUTBOUND_PORT: String(port), THOUGHTGATE_ADMIN_PORT: String(admin), THOUGHTGATE_AUDIT_PATH: '-', ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    proc.stderr.on('data', (d) => { log += d; });
    for (let i = 0; i < 200 && !log.includes('thoughtgate ready'); i++) await new Promise((r) => setTimeout(r, 50));
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    return /"source":"([^"]+)"/.exec(log)?.[1];
  };
  assert.equal(await sourceOf({}), 'from-cwd');
  assert.equal(await sourceOf({ THOUGHTGATE_CONFIG: join(dir, 'env.yaml') }), 'from-env');
  writeFileSync(join(dir, 'flag.yaml'), yaml('from-flag'));
  assert.equal(await sourceOf({ THOUGHTGATE_CONFIG: join(dir, 'env.yaml') }, ['--config', join(dir, 'flag.yaml')]), 'from-flag');
});

test("the repo's own thoughtgate.yaml serves the bundled server: allow, hide, deny and approve at once", async () => {
  const { readFileSync } = await import('node:fs');
  const p = await startProxy(readFileSync(join(ROOT, 'thoughtgate.yaml'), 'utf8'), {
    env: { THOUGHTGATE_DEMO_SERVER: join(ROOT, 'node_modules', '.bin', 'mcp-server-everything') },
  });
  try {
    const init = await post(p.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    const h = { 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-06-18' };
    const list = await post(p.url, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, h);
    const names = list.messages.find((m) => m.id === 2).result.tools.map((t) => t.name);
    assert.ok(names.includes('echo') && !names.includes('get-env'));
    const echo = await post(p.url, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'demo' } } }, h);
    assert.equal(echo.messages.find((m) => m.id === 3).result.content[0].text, 'Echo: demo');
    const hidden = await post(p.url, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'get-env', arguments: {} } }, h);
    assert.equal(hidden.messages[0].error.code, -32015);
    const denied = await post(p.url, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'toggle-simulated-logging', arguments: {} } }, h);
    assert.equal(denied.messages[0].error.code, -32014);
    // approve: held until a person says yes (here through the admin API the console uses)
    const held = post(p.url, { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 1 } } }, h);
    const auth = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
    let pending;
    for (let i = 0; i < 200 && !pending; i++) {
      pending = (await (await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals`, { headers: auth })).json())[0];
      if (!pending) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(pending.tool, 'trigger-long-running-operation');
    const ok = await fetch(`http://127.0.0.1:${p.adminPort}/api/approvals/${pending.id}/approve`, { method: 'POST', headers: auth, body: '{"by":"demo-user"}' });
    assert.equal(ok.status, 200);
    const done = (await held).messages.find((m) => m.id === 6);
    assert.match(done.result.content[0].text, /Long running operation completed/);
  } finally {
    await p.stop();
  }
});

test('thoughtgate check replays cases (YAML and NDJSON) and exits 1 when an expectation fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-check-'));
  const cfg = join(dir, 'c.yaml');
  writeFileSync(cfg, sourceYaml('    url: http://127.0.0.1:1/mcp', { expose: blocklist('secret_*'), rules: [rule('delete_*', 'deny'), rule('pay_*', 'approve')].join('\n') }));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, '- tool: delete_user\n  expect: deny\n- tool: echo\n  expect: forward\n- tool: secret_x\n  expect: deny\n- tool: pay_bill\n  expect: approve\n- method: tools/list\n');
  const r = run(['check', '--config', cfg, good]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /delete_user\s+deny\s+governance\s+delete_\*\s+deny\s+ok/);
  assert.match(r.stdout, /secret_x\s+deny\s+visibility/);
  assert.match(r.stdout, /5 calls, 0 not as expected/);
  const bad = join(dir, 'bad.ndjson');
  writeFileSync(bad, '{"tool":"echo","expect":"deny"}\n\n{"method":"tools/call","params":{"name":"delete_me"},"expect":"deny"}\n');
  const b = run(['check', '--config', cfg, bad]);
  assert.equal(b.status, 1);
  assert.match(b.stdout, /echo\s+forward\s+governance\s+\(default\)\s+deny\s+FAIL/);
  assert.match(b.stdout, /2 calls, 1 not as expected/);
  const json = run(['check', '--config', cfg, '--json', bad]);
  assert.equal(JSON.parse(json.stdout)[1].decision, 'deny');
  const malformed = join(dir, 'm.ndjson');
  writeFileSync(malformed, '{"tool":"echo"}\n{oops\n');
  const m = run(['check', '--config', cfg, malformed]);
  assert.equal(m.status, 1);
  assert.match(m.stderr, /m\.ndjson:2: not JSON/);
});

test('thoughtgate validate: ok with a summary, or the error with its location', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-validate-'));
  const ok = run(['validate', '--config', join(ROOT, 'thoughtgate.yaml')]);
  assert.equal(ok.status, 0);
  assert.match(ok.stdout, /valid \(snapshot [0-9a-f]{12}\)/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'schema: 1\nsources:\n  - id: a\n    kind: mcp\n    url: http://x/mcp\ngovernance:\n  defaults:\n    action: maybe\n');
  const b = run(['validate', '--config', bad]);
  assert.equal(b.status, 1);
  assert.ok(b.stderr.includes(`${bad}:8:`), b.stderr);
});
