// `thoughtgate wrap` end to end with a fake agent (test/support/fake-agent.mjs) that reads its
// config in the real formats and launches its servers as agents do: server-everything and
// server-filesystem over stdio through the shim, server-everything over HTTP through the
// governance service. Configs are byte-identical afterwards: at exit, after SIGTERM, and after
// kill -9 (the next run restores first).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BIN, EVERYTHING, ROOT, sleep, startEverythingHttp, tempDir } from './helpers.mjs';

const require = createRequire(import.meta.url);
const FILESYSTEM = join(dirname(require.resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist', 'index.js');
const AGENT = join(ROOT, 'test', 'support', 'fake-agent.mjs');
const cleanups = [];
after(() => cleanups.forEach((c) => c()));

const GOV = `schema: 1
sources:
  - id: everything
    kind: mcp
    command: unused
    expose:
      mode: blocklist
      tools: ["get-env"]
governance:
  defaults:
    action: forward
  rules:
    - match: "get-sum"
      action: deny
    - match: "write_file"
      action: deny
      source: [fs]
`;

function home() {
  const h = tempDir('wrap-home');
  mkdirSync(join(h, '.config'), { recursive: true });
  mkdirSync(join(h, 'project'), { recursive: true });
  writeFileSync(join(h, 'thoughtgate.yaml'), GOV);
  return h;
}

function wrap(h, args, { env = {}, cwd = h } = {}) {
  const out = [];
  const p = spawn(process.execPath, [BIN, 'wrap', ...args], {
    cwd, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: h, XDG_CONFIG_HOME: join(h, '.config'), XDG_STATE_HOME: join(h, '.state'), THOUGHTGATE_LOG_FILE: join(h, 'wrap.log'), ...env },
  });
  cleanups.push(() => { try { p.kill('SIGKILL'); } catch {} });
  p.stdout.on('data', (d) => out.push(['out', d]));
  p.stderr.on('data', (d) => out.push(['err', d]));
  const done = new Promise((r) => p.on('exit', (code, signal) => r({ code, signal })));
  const text = (which) => Buffer.concat(out.filter(([w]) => w === which).map(([, d]) => d)).toString('utf8');
  return { p, done, stdout: () => text('out'), stderr: () => text('err') };
}

const sideFiles = (file) => readdirSync(dirname(file)).filter((n) => n.includes('.thoughtgate-'));
const seenOf = async (out, ms = 30000) => {
  for (let i = 0; i < ms / 100; i++) {
    try {
      if (existsSync(out)) return JSON.parse(readFileSync(out, 'utf8'));
    } catch { /* being written: read again */ }
    await sleep(100);
  }
  throw new Error('the fake agent wrote nothing');
};
const byName = (s, name) => s.results.find((r) => r.name === name);

test('stdio and HTTP servers run governed; allowed calls work, denied and hidden ones are refused; config byte-identical after', async () => {
  const h = home();
  const files = tempDir('fsroot');
  const http = await startEverythingHttp();
  cleanups.push(() => http.stop());
  const cfg = join(h, '.config', 'Claude', 'claude_desktop_config.json');
  mkdirSync(dirname(cfg), { recursive: true });
  const original = Buffer.from(`{
    "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "everything": { "command": ${JSON.stringify(process.execPath)}, "args": [${JSON.stringify(EVERYTHING)}, "stdio"] },
    "fs": { "command": ${JSON.stringify(process.execPath)}, "args": [${JSON.stringify(FILESYSTEM)}, ${JSON.stringify(files)}] },
    "remote": { "url": ${JSON.stringify(http.url)} }
  }
}
`);
  writeFileSync(cfg, original);
  const out = join(h, 'seen.json');
  const calls = [
    { name: 'echo', arguments: { message: 'wrapped-hello' } },
    { name: 'get-sum', arguments: { a: 1, b: 2 } },
    { name: 'get-env', arguments: {} },
    { name: 'write_file', arguments: { path: join(files, 'pwned.txt'), content: 'x' } },
    { name: 'list_allowed_directories', arguments: {} },
  ];
  const w = wrap(h, ['--agent-type', 'claude-desktop', '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', process.execPath, AGENT, 'mcpServers', cfg, out], { env: { FAKE_AGENT_CALLS: JSON.stringify(calls) } });
  const { code } = await w.done;
  const seen = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(code, 7, `the agent's exit code is passed back: ${w.stderr().slice(-500)}`);
  assert.equal(seen.env.active, '1');
  assert.notEqual(seen.configText, original.toString(), 'the agent saw a rewritten config');
  const ev = seen.servers.everything;
  assert.equal(ev.error, undefined, ev.error);
  assert.match(ev.entry.args.join(' '), /shim --server-id everything/);
  assert.equal(byName(ev, 'echo').text, 'Echo: wrapped-hello');
  assert.equal(byName(ev, 'get-sum').code, -32014);
  assert.equal(byName(ev, 'get-env').code, -32015);
  assert.ok(!ev.tools.includes('get-env') && ev.tools.includes('echo'), 'hidden tools are gone from tools/list');
  const fs = seen.servers.fs;
  assert.equal(fs.error, undefined, fs.error);
  assert.equal(byName(fs, 'write_file').code, -32014, 'the rule for source fs applies to the server named fs');
  assert.equal(existsSync(join(files, 'pwned.txt')), false, 'the denied write never reached the server');
  assert.match(byName(fs, 'list_allowed_directories').text, /Allowed directories/);
  const remote = seen.servers.remote;
  assert.equal(remote.error, undefined, remote.error);
  assert.match(remote.entry.url, /\/http\/remote\/mcp$/);
  assert.equal(byName(remote, 'echo').text, 'Echo: wrapped-hello');
  assert.equal(byName(remote, 'get-sum').code, -32014);
  assert.ok(readFileSync(cfg).equals(original), 'byte-identical after the agent exited');
  assert.deepEqual(sideFiles(cfg), [], 'no backup, marker or lock left behind');
  assert.match(w.stderr(), /rewrote .*claude_desktop_config\.json/);
  assert.match(w.stderr(), /governing everything \[stdio\], fs \[stdio\], remote \[http\]/);
  assert.doesNotMatch(w.stdout(), /thoughtgate/, 'nothing of ours in the agent\'s stdout');
});

test('SIGTERM to wrap ends the agent and restores the config', async () => {
  const h = home();
  const cfg = join(h, 'agent.json');
  const original = Buffer.from(`{"mcpServers":{"everything":{"command":${JSON.stringify(process.execPath)},"args":[${JSON.stringify(EVERYTHING)},"stdio"]}}}`);
  writeFileSync(cfg, original);
  const out = join(h, 'seen.json');
  const w = wrap(h, ['--agent-type', 'custom', '--config-path', cfg, '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', process.execPath, AGENT, 'mcpServers', cfg, out, 'sleep']);
  const seen = await seenOf(out);
  assert.notEqual(seen.configText, original.toString());
  w.p.kill('SIGTERM');
  const r = await w.done;
  assert.equal(r.code, 128 + 15, 'the agent was ended by the forwarded SIGTERM');
  assert.ok(readFileSync(cfg).equals(original));
  let agentAlive = true;
  try { process.kill(seen.pid, 0); } catch { agentAlive = false; }
  assert.equal(agentAlive, false, 'the agent is gone');
});

test('after kill -9 of wrap the next wrap restores first and says so; thoughtgate restore does it too', async () => {
  const h = home();
  const cfg = join(h, 'agent.json');
  const original = Buffer.from(`{
  // a comment the agent's JSONC reader allows
  "mcpServers": {
    "everything": {"command": ${JSON.stringify(process.execPath)}, "args": [${JSON.stringify(EVERYTHING)}, "stdio"],},
  },
}
`);
  writeFileSync(cfg, original);
  const out = join(h, 'seen.json');
  const base = ['--agent-type', 'custom', '--config-path', cfg, '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', process.execPath, AGENT, 'mcpServers', cfg];
  const w1 = wrap(h, [...base, out, 'sleep']);
  const seen = await seenOf(out);
  w1.p.kill('SIGKILL');
  await w1.done;
  try { process.kill(seen.pid, 'SIGKILL'); } catch {}
  assert.ok(!readFileSync(cfg).equals(original), 'left rewritten by the crash');
  assert.match(readFileSync(cfg, 'utf8'), /a comment the agent's JSONC reader allows/, 'comments kept in the rewrite');
  const out2 = join(h, 'seen2.json');
  const w2 = wrap(h, [...base, out2]);
  const r2 = await w2.done;
  assert.equal(r2.code, 7, w2.stderr().slice(-400));
  assert.match(w2.stderr(), /restored .*agent\.json .*did not finish/);
  assert.ok(readFileSync(cfg).equals(original));

  // and the same repaired by `thoughtgate restore`
  const out3 = join(h, 'seen3.json');
  const w3 = wrap(h, [...base, out3, 'sleep']);
  const seen3 = await seenOf(out3);
  w3.p.kill('SIGKILL');
  await w3.done;
  try { process.kill(seen3.pid, 'SIGKILL'); } catch {}
  const rr = spawn(process.execPath, [BIN, 'restore', '--agent-type', 'custom', '--config-path', cfg], { env: { ...process.env, HOME: h }, stdio: ['ignore', 'pipe', 'pipe'] });
  const err = [];
  rr.stderr.on('data', (d) => err.push(d));
  const rc = await new Promise((r) => rr.on('exit', r));
  assert.equal(rc, 0);
  assert.match(Buffer.concat(err).toString(), /restored/);
  assert.ok(readFileSync(cfg).equals(original));
  assert.deepEqual(sideFiles(cfg), []);
});

test('--dry-run prints a diff and writes nothing; an unparseable or unjudgeable setup refuses and touches nothing', async () => {
  const h = home();
  const cfg = join(h, 'agent.json');
  const original = `{"mcpServers":{"everything":{"command":"node","args":["server.js"]}}}\n`;
  writeFileSync(cfg, original);
  const before = statSync(cfg).mtimeMs;
  const dry = wrap(h, ['--dry-run', '--agent-type', 'custom', '--config-path', cfg, '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', 'true']);
  assert.equal((await dry.done).code, 0, dry.stderr());
  assert.match(dry.stdout(), /^--- .*agent\.json/m);
  assert.match(dry.stdout(), /^\+.*"shim"/m);
  assert.equal(readFileSync(cfg, 'utf8'), original);
  assert.equal(statSync(cfg).mtimeMs, before);
  assert.deepEqual(sideFiles(cfg), []);

  const broken = join(h, 'broken.json');
  writeFileSync(broken, '{"mcpServers": {"x": {"command": "node",, }}}');
  const b = wrap(h, ['--agent-type', 'custom', '--config-path', broken, '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', 'true']);
  assert.notEqual((await b.done).code, 0);
  assert.match(b.stderr(), /broken\.json:1:/);
  assert.equal(readFileSync(broken, 'utf8'), '{"mcpServers": {"x": {"command": "node",, }}}');
  assert.deepEqual(sideFiles(broken), []);

  const noGov = wrap(h, ['--agent-type', 'custom', '--config-path', cfg, '--thoughtgate-config', join(h, 'missing.yaml'), '--', 'true']);
  assert.notEqual((await noGov.done).code, 0);
  assert.match(noGov.stderr(), /missing\.yaml not found.*refusing/);
  writeFileSync(join(h, 'bad.yaml'), 'schema: 1\nsources: []\ngovernance:\n  defaults:\n    action: maybe\n');
  const badGov = wrap(h, ['--agent-type', 'custom', '--config-path', cfg, '--thoughtgate-config', join(h, 'bad.yaml'), '--', 'true']);
  assert.notEqual((await badGov.done).code, 0);
  assert.match(badGov.stderr(), /bad\.yaml:\d+/);
  assert.equal(readFileSync(cfg, 'utf8'), original, 'a governance config that does not load leaves the agent config alone');
});

test('--profile development forwards what production blocks and logs WOULD_BLOCK; Claude Code configs (~/.claude.json project + .mcp.json) are wrapped and restored', async () => {
  const h = home();
  const project = join(h, 'project');
  const claudeJson = join(h, '.claude.json');
  const mcpJson = join(project, '.mcp.json');
  const entry = { command: process.execPath, args: [EVERYTHING, 'stdio'] };
  const userBytes = Buffer.from(JSON.stringify({ numStartups: 3, projects: { [project]: { mcpServers: { everything: entry } } } }, null, 2));
  const projectBytes = Buffer.from(JSON.stringify({ mcpServers: { second: entry } }, null, 2) + '\n');
  writeFileSync(claudeJson, userBytes);
  writeFileSync(mcpJson, projectBytes);
  const out = join(h, 'seen.json');
  const calls = [{ name: 'get-sum', arguments: { a: 2, b: 3 } }];
  const w = wrap(h, ['--agent-type', 'claude-code', '--profile', 'development', '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', process.execPath, AGENT, 'claude-code', claudeJson, out], { cwd: project, env: { FAKE_AGENT_CALLS: JSON.stringify(calls) } });
  assert.equal((await w.done).code, 7, w.stderr().slice(-400));
  const seen = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(seen.servers.everything.error, undefined, seen.servers.everything.error);
  assert.equal(byName(seen.servers.everything, 'get-sum').text, 'The sum of 2 and 3 is 5.', 'development forwards');
  assert.match(w.stderr(), /rewrote .*\.mcp\.json/, 'the project .mcp.json is wrapped too');
  assert.match(readFileSync(join(h, 'wrap.log'), 'utf8'), /WOULD_BLOCK/);
  assert.ok(readFileSync(claudeJson).equals(userBytes));
  assert.ok(readFileSync(mcpJson).equals(projectBytes));
});

test('a second wrap of the same agent while the first runs is refused and changes nothing', async () => {
  const h = home();
  const cfg = join(h, 'agent.json');
  const original = Buffer.from(`{"mcpServers":{"everything":{"command":${JSON.stringify(process.execPath)},"args":[${JSON.stringify(EVERYTHING)},"stdio"]}}}`);
  writeFileSync(cfg, original);
  const base = ['--agent-type', 'custom', '--config-path', cfg, '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', process.execPath, AGENT, 'mcpServers', cfg];
  const w1 = wrap(h, [...base, join(h, 'seen1.json'), 'sleep']);
  await seenOf(join(h, 'seen1.json'));
  const rewritten = readFileSync(cfg);
  const w2 = wrap(h, [...base, join(h, 'seen2.json')]);
  const r2 = await w2.done;
  assert.notEqual(r2.code, 0);
  assert.match(w2.stderr(), /another thoughtgate wrap \(pid \d+\)/);
  assert.equal(existsSync(join(h, 'seen2.json')), false, 'the second agent never started');
  assert.ok(readFileSync(cfg).equals(rewritten), 'the first run\'s file is untouched');
  w1.p.kill('SIGTERM');
  await w1.done;
  assert.ok(readFileSync(cfg).equals(original));
  assert.deepEqual(sideFiles(cfg), []);
});

test('a wrapped stdio server gets its agent-config env but no THOUGHTGATE_* variable: not the shim\'s run token, not our secrets', async () => {
  const h = home();
  writeFileSync(join(h, 'thoughtgate.yaml'), GOV.replace('tools: ["get-env"]', 'tools: ["get-tiny-image"]'));
  const cfg = join(h, '.config', 'Claude', 'claude_desktop_config.json');
  mkdirSync(dirname(cfg), { recursive: true });
  writeFileSync(cfg, `{"mcpServers": {"everything": {"command": ${JSON.stringify(process.execPath)}, "args": [${JSON.stringify(EVERYTHING)}, "stdio"], "env": {"FROM_AGENT_CONFIG": "the-agents-business"}}}}\n`);
  const out = join(h, 'seen.json');
  const secrets = { THOUGHTGATE_ADMIN_TOKEN: 'wrap-admin-secret-0001', THOUGHTGATE_API_TOKEN: 'wrap-api-secret-0002', THOUGHTGATE_WEBHOOK_SECRET: 'wrap-hook-secret-0003' };
  const w = wrap(h, ['--agent-type', 'claude-desktop', '--thoughtgate-config', join(h, 'thoughtgate.yaml'), '--', process.execPath, AGENT, 'mcpServers', cfg, out],
    { env: { ...secrets, FAKE_AGENT_CALLS: JSON.stringify([{ name: 'get-env', arguments: {} }]) } });
  const { code } = await w.done;
  assert.equal(code, 7, w.stderr().slice(-500));
  const seen = JSON.parse(readFileSync(out, 'utf8'));
  const ev = seen.servers.everything;
  assert.equal(ev.error, undefined, ev.error);
  const text = byName(ev, 'get-env').text;
  const env = JSON.parse(text);
  assert.deepEqual(Object.keys(env).filter((k) => /^thoughtgate_/i.test(k)), [], 'no THOUGHTGATE_* variable reached the server');
  for (const [k, v] of Object.entries(secrets)) assert.ok(!text.includes(v), `${k} reached the server`);
  const runToken = ev.entry.env.THOUGHTGATE_GOVERNANCE_TOKEN;
  assert.ok(typeof runToken === 'string' && runToken.length > 16, 'the shim was given its run token');
  assert.ok(!text.includes(runToken), 'the run token stayed with the shim');
  assert.equal(env.FROM_AGENT_CONFIG, 'the-agents-business');
  assert.equal(typeof env.PATH, 'string');
});
