// `thoughtgate shim` end to end: real stdio servers (server-filesystem, server-everything, a tiny
// scriptable one) launched through the shim by the SDK's StdioClientTransport or by a raw
// process with pipes, governed by a local fake of the governance service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { BIN, ROOT, EVERYTHING, sleep } from './helpers.mjs';
import { startFakeGovernance } from './support/fake-governance.mjs';

const require = createRequire(import.meta.url);
const FILESYSTEM = join(dirname(require.resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist', 'index.js');
const MINI = join(ROOT, 'test', 'support', 'mini-server.mjs');
const SHIM = [BIN, 'shim'];

let gov;
before(async () => {
  gov = await startFakeGovernance({
    tools: {
      write_file: 'deny', create_directory: 'hold', // filesystem
      'get-sum': 'deny', 'trigger-long-running-operation': 'hold', // everything
      exit: 'forward', secret: 'deny',
    },
    hidden: ['move_file', 'get-tiny-image', 'secret'],
  });
});
after(async () => {
  await gov?.close();
});

const shimArgs = (serverId, extra = []) => [...SHIM, '--server-id', serverId, '--governance', gov.url, ...extra, '--'];
const shimEnv = (extra = {}) => ({ ...process.env, THOUGHTGATE_GOVERNANCE_TOKEN: gov.token, ...extra });
const codeOf = async (p) => { try { await p; return null; } catch (e) { return e.code; } };

/** Running (a zombie nobody reaped yet counts as gone). */
function alive(pid) {
  try { process.kill(pid, 0); } catch { return false; }
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'; } catch { return false; }
}
async function gone(pid) {
  for (let i = 0; i < 200 && alive(pid); i++) await sleep(25);
  return !alive(pid);
}

/** An SDK client talking to `command` through the shim; stderr captured. */
async function sdkThroughShim(serverId, command, { capabilities = {} } = {}) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [...shimArgs(serverId), ...command],
    env: shimEnv(),
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr.on('data', (d) => { stderr += d.toString(); });
  const client = new Client({ name: 'shim-e2e', version: '1.0.0' }, { capabilities });
  return { client, transport, stderr: () => stderr, connect: () => client.connect(transport) };
}

/** The shim as a raw process with pipes (no SDK): what an agent writes, byte for byte. */
function rawShim(serverId, command, { env = {}, extraArgs = [] } = {}) {
  const p = spawn(process.execPath, [...shimArgs(serverId, extraArgs), ...command], { env: shimEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const lines = [];
  const waiters = new Set();
  p.stdout.on('data', (d) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop();
    for (const l of parts) lines.push(l);
    for (const w of waiters) w();
  });
  p.stderr.on('data', (d) => { err += d.toString(); for (const w of waiters) w(); });
  const exited = new Promise((r) => p.on('exit', (code, signal) => r({ code, signal })));
  const until = (pred, what) => new Promise((resolve, reject) => {
    const check = () => { if (pred()) { waiters.delete(check); clearTimeout(t); resolve(); } };
    const t = setTimeout(() => { waiters.delete(check); reject(new Error(`timed out waiting for ${what}; stdout ${JSON.stringify(lines)} stderr ${err.slice(-1500)}`)); }, 20_000);
    waiters.add(check);
    check();
  });
  return {
    p, lines, exited, until,
    stderr: () => err,
    send: (text) => p.stdin.write(text + '\n'),
    messages: () => lines.map((l) => JSON.parse(l)),
    response: async (id) => {
      const find = () => lines.map((l) => JSON.parse(l)).find((m) => m.id === id && m.method === undefined);
      await until(() => find() !== undefined, `the response to ${JSON.stringify(id)}`);
      return find();
    },
  };
}

test('server-filesystem via the SDK: allowed calls work, denied never reach the server, hidden tools are gone, a held call does not block', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-shim-fs-'));
  writeFileSync(join(dir, 'hello.txt'), 'hello through the shim');
  const s = await sdkThroughShim('fs', [process.execPath, FILESYSTEM, dir]);
  await s.connect();
  try {
    const names = (await s.client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('read_text_file') && names.includes('write_file'), names.join(','));
    assert.ok(!names.includes('move_file'), 'a hidden tool is gone from tools/list');

    const read = await s.client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'hello.txt') } });
    assert.equal(read.content[0].text, 'hello through the shim');

    assert.equal(await codeOf(s.client.callTool({ name: 'write_file', arguments: { path: join(dir, 'denied.txt'), content: 'x' } })), -32014);
    assert.equal(existsSync(join(dir, 'denied.txt')), false, 'the denied write never reached the server');

    // held: a person has not decided yet, and a later call goes through meanwhile
    const held = s.client.callTool({ name: 'create_directory', arguments: { path: join(dir, 'approved-dir') } });
    const approvalId = await gov.nextHold();
    const later = await s.client.callTool({ name: 'list_directory', arguments: { path: dir } });
    assert.match(later.content[0].text, /hello\.txt/);
    assert.equal(existsSync(join(dir, 'approved-dir')), false, 'the held call has not run');
    gov.decide(approvalId, 'approve');
    const done = await held;
    assert.match(done.content[0].text, /Successfully created directory/);
    assert.equal(existsSync(join(dir, 'approved-dir')), true);
    assert.match(s.stderr(), /Secure MCP Filesystem Server running on stdio/, "the server's stderr reaches ours");
  } finally {
    await s.client.close();
  }
  // counts were reported (flushed at exit at the latest)
  const deadline = Date.now() + 10_000;
  while ((gov.totals('fs').messages['inbound tools/call'] ?? 0) < 4 && Date.now() < deadline) await sleep(50);
  const counts = gov.totals('fs').messages;
  assert.equal(counts['inbound tools/call'], 4, JSON.stringify(counts));
  assert.equal(counts['inbound tools/list'], 1);
  assert.equal(counts['outbound response'], 5, 'initialize, tools/list, two allowed calls and the approved one; the denied call never reached the server');
});

test('server-everything via the SDK: echo, deny, hidden, sampling answered by the agent, held with the agent\'s progress token, rejected', async () => {
  const s = await sdkThroughShim('everything', [process.execPath, EVERYTHING, 'stdio'], { capabilities: { sampling: {} } });
  s.client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    model: 'fake-model', role: 'assistant', content: { type: 'text', text: 'sampled-by-agent' },
  }));
  await s.connect();
  try {
    assert.equal(s.client.getServerVersion()?.name, 'mcp-servers/everything');
    const names = (await s.client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('get-sum'));
    assert.ok(!names.includes('get-tiny-image'), 'hidden');
    assert.equal((await s.client.callTool({ name: 'echo', arguments: { message: 'via-shim' } })).content[0].text, 'Echo: via-shim');
    assert.equal(await codeOf(s.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), -32014);

    // a server→agent request and the agent's answer cross the shim both ways
    const sampled = await s.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } });
    assert.match(JSON.stringify(sampled.content), /sampled-by-agent/);

    const progress = [];
    const held = s.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    const approvalId = await gov.nextHold();
    const judged = gov.state.judged.find((m) => m.params?.name === 'trigger-long-running-operation');
    const token = judged.params._meta.progressToken;
    while (progress.length === 0) await sleep(20);
    assert.match(progress[0].message, /Awaiting approval for tools\/call 'trigger-long-running-operation'/);
    assert.match(progress[0].message, new RegExp(`console/${approvalId}`));
    gov.decide(approvalId, 'reject');
    assert.equal(await codeOf(held), -32007);
    assert.notEqual(token, undefined, 'the SDK sent a progress token, and the reminder used it (the SDK routes by token)');
  } finally {
    await s.client.close();
  }
});

test('the agent writes garbage: -32700 / -32600 back, nothing forwarded, counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-shim-raw-'));
  const record = join(dir, 'received.ndjson');
  const sh = rawShim('mini-raw', [process.execPath, MINI], { env: { MINI_RECORD: record } });
  sh.send('this is {not json');
  sh.send('{"jsonrpc":"2.0","id":5,"method":7}');
  sh.send('[{"jsonrpc":"2.0","id":6,"method":"ping"}]');
  sh.send('{"jsonrpc":"2.0","id":"ok","method":"ping"}');
  await sh.response('ok');
  const errors = sh.messages().filter((m) => m.error);
  assert.deepEqual(errors.map((m) => [m.id, m.error.code]), [[null, -32700], [5, -32600], [null, -32600]]);
  sh.p.stdin.end();
  const { code } = await sh.exited;
  assert.equal(code, 0);
  const received = readFileSync(record, 'utf8').split('\n').filter(Boolean);
  assert.deepEqual(received, ['{"jsonrpc":"2.0","id":"ok","method":"ping"}'], 'only the valid line reached the server');
  const t = gov.totals('mini-raw').framing;
  assert.ok(t['inbound malformed_json'] >= 1 && t['inbound invalid_request'] >= 1 && t['inbound unsupported_batch'] >= 1, JSON.stringify(t));
});

test('the server writes garbage: dropped and counted; its stderr reaches our stderr, never stdout', async () => {
  const sh = rawShim('mini-garbage', [process.execPath, MINI], { env: { MINI_GARBAGE: '1', MINI_STDERR: 'mini-stderr-marker' } });
  sh.send('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  await sh.response(1);
  sh.p.stdin.end();
  await sh.exited;
  assert.deepEqual(sh.messages(), [{ jsonrpc: '2.0', id: 1, result: {} }], 'the agent saw only valid messages');
  assert.ok(sh.stderr().includes('mini-stderr-marker'));
  assert.ok(!sh.lines.some((l) => l.includes('mini-stderr-marker')));
  assert.deepEqual(gov.totals('mini-garbage').framing, {
    'outbound malformed_json': 1, 'outbound invalid_request': 1, 'outbound unsupported_batch': 1,
  });
});

test('the server\'s exit code is ours', async () => {
  const sh = rawShim('mini-exit', [process.execPath, MINI]);
  sh.send('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"exit","arguments":{"code":5}}}');
  assert.equal((await sh.exited).code, 5);
  const sh2 = rawShim('mini-exit2', [process.execPath, MINI], { env: { MINI_EXIT_CODE: '3' } });
  sh2.p.stdin.end();
  assert.equal((await sh2.exited).code, 3);
});

test('SIGINT and SIGTERM to the shim end the server (also one that ignores SIGTERM)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-shim-sig-'));
  const pidFile = join(dir, 'pid');
  const sh = rawShim('everything-sig', [process.execPath, EVERYTHING, 'stdio']);
  sh.send('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  await sh.response(1);
  const pid = serverPidFromLog(sh.stderr());
  assert.ok(pid > 0 && alive(pid), `server pid ${pid}`);
  sh.p.kill('SIGINT');
  const r = await sh.exited;
  assert.ok(r.code !== null, `the shim exits with a code (${JSON.stringify(r)})`);
  assert.ok(await gone(pid), 'server-everything is gone');

  const stubborn = rawShim('mini-sig', [process.execPath, MINI], { env: { MINI_IGNORE_TERM: '1', MINI_PID_FILE: pidFile } });
  stubborn.send('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  await stubborn.response(1);
  const pid2 = Number(readFileSync(pidFile, 'utf8'));
  stubborn.p.kill('SIGTERM'); // passed on (and ignored), then stdin closed, SIGTERM again, SIGKILL
  const r2 = await stubborn.exited;
  assert.equal(r2.code, 137, 'killed in the end, and the code says so');
  assert.ok(await gone(pid2));
});

test('the agent goes away (stdout closed): the server does not outlive the shim', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-shim-pipe-'));
  const pidFile = join(dir, 'pid');
  const sh = rawShim('mini-epipe', [process.execPath, MINI], { env: { MINI_PID_FILE: pidFile, MINI_ECHO: '1' } });
  sh.send('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  await sh.response(1);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  sh.p.stdout.destroy(); // the agent stops reading: our next write fails with EPIPE
  sh.send('{"jsonrpc":"2.0","method":"notifications/x"}');
  const r = await sh.exited;
  assert.notEqual(r.code, null);
  assert.ok(await gone(pid));
});

test('kill -9 of the shim: the server sees its stdin close and exits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-shim-k9-'));
  const sh = rawShim('fs-k9', [process.execPath, FILESYSTEM, dir]);
  sh.send('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  await sh.response(1);
  const pid = serverPidFromLog(sh.stderr());
  assert.ok(pid > 0 && alive(pid));
  sh.p.kill('SIGKILL');
  await sh.exited;
  assert.ok(await gone(pid), 'no orphan left behind');
});

test('production refuses to start without a reachable governance service or with a wrong token; development runs', async () => {
  const closedPort = await new Promise((resolve) => {
    const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const run = (args, env) => new Promise((resolve) => {
    const p = spawn(process.execPath, [...SHIM, ...args, '--', process.execPath, MINI], { env: shimEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, out, err }));
    p.stdin.end('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
  });
  const down = await run(['--server-id', 'x', '--governance', `http://127.0.0.1:${closedPort}`], {});
  assert.equal(down.code, 1);
  assert.match(down.err, /unreachable.*refusing to start/);
  assert.equal(down.out, '', 'nothing forwarded ungoverned');

  const badToken = await run(['--server-id', 'x', '--governance', gov.url], { THOUGHTGATE_GOVERNANCE_TOKEN: 'wrong' });
  assert.equal(badToken.code, 1);
  assert.match(badToken.err, /refused our token/);

  const dev = await run(['--server-id', 'x', '--governance', `http://127.0.0.1:${closedPort}`, '--profile', 'development'], {});
  assert.equal(dev.code, 0);
  assert.deepEqual(JSON.parse(dev.out.trim()), { jsonrpc: '2.0', id: 1, result: {} });
  assert.match(dev.err, /WOULD_BLOCK/);

  const usage = await run(['--governance', gov.url], {});
  assert.equal(usage.code, 2);
  assert.match(usage.err, /usage: thoughtgate shim/);
});

/** The server's pid, from the shim's "shim started" log line. */
function serverPidFromLog(text) {
  for (const line of text.split('\n')) {
    if (!line.includes('"shim started"')) continue;
    try { return JSON.parse(line).serverPid; } catch {}
  }
  return undefined;
}
