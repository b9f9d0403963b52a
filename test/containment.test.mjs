// The last line of containment: an exception or rejection that escapes every handler is logged
// with its stack and counted, and the sidecar keeps serving (issue 14, item 1).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, freePort, sleep, sourceYaml, startRecordingUpstream, tempDir } from './helpers.mjs';

const upstreams = [];
after(() => upstreams.forEach((u) => u.close()));

test('an exception or rejection that escapes every handler is logged and counted; the sidecar keeps serving', async () => {
  const up = await startRecordingUpstream();
  upstreams.push(up);
  const dir = tempDir('contain');
  const config = join(dir, 'thoughtgate.yaml');
  writeFileSync(config, sourceYaml(`    url: ${up.url}`));
  const [port, adminPort] = [await freePort(), await freePort()];
  // In-process, so the test can throw where no handler catches: a timer and a promise nobody awaits.
  const script = `
    const { resolveSettings } = await import(${JSON.stringify(join(ROOT, 'dist/cli/settings.js'))});
    const { startSidecar } = await import(${JSON.stringify(join(ROOT, 'dist/main.js'))});
    await startSidecar(resolveSettings({ config: ${JSON.stringify(config)}, bind: '127.0.0.1' }));
    setTimeout(() => { throw new Error('escaped-from-a-timer'); }, 10);
    setTimeout(() => { Promise.reject(new Error('escaped-from-a-promise')); }, 20);
    setTimeout(() => process.stdout.write('THROWN\\n'), 200);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, THOUGHTGATE_OUTBOUND_PORT: String(port), THOUGHTGATE_ADMIN_PORT: String(adminPort), THOUGHTGATE_STATE_DIR: join(dir, 'state'), THOUGHTGATE_AUDIT_PATH: join(dir, 'audit.ndjson'), THOUGHTGATE_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 20000;
    while (!log.includes('THROWN') && Date.now() < deadline) await sleep(50);
    assert.ok(log.includes('THROWN'), `the sidecar did not get as far as throwing:\n${log.slice(-2000)}`);
    assert.equal(child.exitCode, null, 'the process is still running');
    assert.match(log, /uncaught exception; the sidecar keeps serving/);
    assert.match(log, /escaped-from-a-timer/);
    assert.match(log, /unhandled promise rejection; the sidecar keeps serving/);
    assert.match(log, /escaped-from-a-promise/);
    const health = await fetch(`http://127.0.0.1:${adminPort}/health`);
    assert.equal(health.status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('thoughtgate_errors_total') && l.includes('internal_error'));
    assert.ok(line !== undefined && Number(line.split(' ').pop()) >= 2, `internal errors counted: ${line}`);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
});
