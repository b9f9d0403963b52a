// Where the ports listen: `serve --bind 127.0.0.1` (what `npm start` runs) keeps the admin port
// (console, approvals API, its token) on loopback too unless THOUGHTGATE_ADMIN_BIND says
// otherwise. Read from /proc/net/tcp, so the test sees the kernel's listening sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { startProxy, startRecordingUpstream, sourceYaml } from './helpers.mjs';

/** IPv4 addresses listening on `port` (state 0A), from /proc/net/tcp. */
function listening(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`))
    .map((f) => f[1].split(':')[0].match(/../g).reverse().map((h) => parseInt(h, 16)).join('.'));
}

test('--bind 127.0.0.1 puts the admin port on loopback; THOUGHTGATE_ADMIN_BIND still overrides', { skip: !existsSync('/proc/net/tcp') && 'no /proc/net/tcp' }, async () => {
  const up = await startRecordingUpstream();
  // the helper pins both binds; blank them so only the flag speaks
  const local = await startProxy(sourceYaml(`    url: ${up.url}`), { args: ['--bind', '127.0.0.1'], env: { THOUGHTGATE_BIND: '', THOUGHTGATE_ADMIN_BIND: '' } });
  const open = await startProxy(sourceYaml(`    url: ${up.url}`), { args: ['--bind', '127.0.0.1'], env: { THOUGHTGATE_BIND: '', THOUGHTGATE_ADMIN_BIND: '0.0.0.0' } });
  try {
    assert.deepEqual(listening(local.port), ['127.0.0.1'], 'traffic port');
    assert.deepEqual(listening(local.adminPort), ['127.0.0.1'], 'admin port follows --bind');
    assert.deepEqual(listening(open.adminPort), ['0.0.0.0'], 'explicit THOUGHTGATE_ADMIN_BIND wins');
    assert.match(local.logText(), /"admin_bind":"127\.0\.0\.1"/);
  } finally {
    await local.stop();
    await open.stop();
    up.close();
  }
});

test('an admin bind that is not an IP address is a startup error naming the variable', async () => {
  const up = await startRecordingUpstream();
  try {
    const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_ADMIN_BIND: 'localhots' }, expectFailure: true });
    const { code } = await p.exited;
    assert.notEqual(code, 0);
    assert.match(p.logText(), /THOUGHTGATE_ADMIN_BIND='localhots' is not an IP address/);
  } finally {
    up.close();
  }
});
