import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { ServerProcess, exitCodeOf, serverEnv } from './child.js';
import { isProcessAlive } from '../core/durable-fs.js';

const node = process.execPath;
/** Running (a zombie nobody reaped yet counts as gone). */
/** running, and not a zombie waiting to be reaped */
const alive = (pid: number): boolean => isProcessAlive(pid);

describe('ServerProcess', () => {
  it('exit codes: the code, or 128 + the signal number', () => {
    assert.equal(exitCodeOf({ code: 3, signal: null }), 3);
    assert.equal(exitCodeOf({ code: null, signal: 'SIGTERM' }), 143);
    assert.equal(exitCodeOf({ code: null, signal: 'SIGKILL' }), 137);
    assert.equal(exitCodeOf({ code: null, signal: 'SIGINT' }), 130);
  });

  it('the server never sees the governance secret, URL, server id, the wrapped marker or anything else of ours', () => {
    const env = serverEnv({
      PATH: '/bin', THOUGHTGATE_GOVERNANCE_TOKEN: 't', THOUGHTGATE_GOVERNANCE_URL: 'u', THOUGHTGATE_SERVER_ID: 's', THOUGHTGATE_ACTIVE: '1',
      THOUGHTGATE_ADMIN_TOKEN: 'from the user shell', THOUGHTGATE_OTHER: 'x', GITHUB_TOKEN: 'the agent config gave it',
    });
    assert.deepEqual(env, { PATH: '/bin', GITHUB_TOKEN: 'the agent config gave it' });
  });

  it('runs in its own process group, with stderr piped to the given stream', async () => {
    const err = new PassThrough();
    let text = '';
    err.on('data', (d: Buffer) => (text += d.toString()));
    const p = new ServerProcess({
      command: [node, '-e', 'process.stderr.write("to-stderr\\n"); process.stdout.write(require("fs").readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")[2])'],
      env: { ...process.env, THOUGHTGATE_GOVERNANCE_TOKEN: 'secret' },
      stderr: err,
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exit = await p.exited;
    assert.equal(exit.code, 0);
    assert.equal(out.trim(), String(p.pid), 'its process group id is its own pid');
    assert.match(text, /to-stderr/);
  });

  it('end(): a server that exits when its stdin closes needs no signal', async () => {
    const p = new ServerProcess({ command: [node, '-e', 'process.stdin.resume(); process.stdin.on("end", () => process.exit(5))'], env: process.env, stderr: new PassThrough(), graceMs: 5000 });
    const exit = await p.end();
    assert.deepEqual(exit, { code: 5, signal: null });
  });

  it('end(): a server that ignores stdin close gets SIGTERM, then one that ignores SIGTERM gets SIGKILL', async () => {
    const polite = new ServerProcess({ command: [node, '-e', 'setInterval(() => {}, 1000)'], env: process.env, stderr: new PassThrough(), graceMs: 100 });
    assert.deepEqual(await polite.end(), { code: null, signal: 'SIGTERM' });

    const stubborn = new ServerProcess({
      command: [node, '-e', 'process.on("SIGTERM", () => {}); process.stdout.write("ready\\n"); setInterval(() => {}, 1000)'],
      env: process.env, stderr: new PassThrough(), graceMs: 100,
    });
    await new Promise((r) => stubborn.stdout.once('data', r)); // its SIGTERM handler is installed
    assert.deepEqual(await stubborn.end(), { code: null, signal: 'SIGKILL' });
  });

  it('what the server started in its group is ended with it', async () => {
    const script = `
      const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      process.stdout.write(String(c.pid) + '\\n');
      process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;
    const p = new ServerProcess({ command: [node, '-e', script], env: process.env, stderr: new PassThrough(), graceMs: 2000 });
    const grandchild = Number(await new Promise<string>((r) => p.stdout.once('data', (d: Buffer) => r(d.toString()))));
    assert.ok(alive(grandchild));
    await p.end();
    for (let i = 0; i < 100 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(grandchild), false, 'the grandchild is not left orphaned');
  });

  it('a command that does not exist exits 127 with the spawn error kept', async () => {
    const p = new ServerProcess({ command: ['/nonexistent/thoughtgate-test-server'], env: process.env, stderr: new PassThrough() });
    const exit = await p.exited;
    assert.equal(exitCodeOf(exit), 127);
    assert.equal(p.spawnError?.code, 'ENOENT');
  });
});
