// Hot reload: SIGHUP or a file change builds a whole new snapshot and swaps it; a broken or
// unsafe config keeps the old one serving, logged and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, symlinkSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy, startRecordingUpstream, post, sleep, sourceYaml, tempDir, rule } from './helpers.mjs';

const call = (id, name) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
const H = { 'mcp-protocol-version': '2025-06-18' };
const denyRule = (glob) => rule(glob, 'deny');
const codeFor = async (p, name) => (await post(p.url, call(1, name), H)).messages[0]?.error?.code ?? 'ok';

/** polls fn until it returns `want` (or satisfies it, when `want` is a function) */
async function until(fn, want) {
  let got;
  for (let i = 0; i < 300; i++) {
    got = await fn();
    if (typeof want === 'function' ? want(got) : got === want) return got;
    await sleep(50);
  }
  return got;
}
const metric = async (p, re) => re.exec(await (await fetch(`http://127.0.0.1:${p.adminPort}/metrics`)).text())?.[1];

test('SIGHUP swaps in the new rules; a broken config keeps the old snapshot serving', async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`, { rules: denyRule('admin_*') }));
  try {
    assert.equal(await codeFor(p, 'echo'), 'ok');
    writeFileSync(p.cfg, sourceYaml(`    url: ${up.url}`, { rules: `${denyRule('admin_*')}\n${denyRule('echo')}` }));
    p.proc.kill('SIGHUP');
    assert.equal(await until(() => codeFor(p, 'echo'), -32014), -32014);
    // the audit writer is asynchronous: wait for the lines to land
    const versions = await until(() => new Set(p.audit().map((l) => l.snapshot)).size, 2);
    assert.equal(versions, 2, 'audit lines carry the snapshot each decision was made on');

    writeFileSync(p.cfg, 'schema: 1\nsources: [\n  - id: upstream\n');
    p.proc.kill('SIGHUP');
    // the file watch and the signal may both fire: at least one failed reload is counted
    assert.ok(Number(await until(() => metric(p, /^thoughtgate_config_reloads_total\{outcome="failure"\} (\d+)/m), (v) => Number(v) >= 1)) >= 1);
    assert.equal((await fetch(`http://127.0.0.1:${p.adminPort}/ready`)).status, 200);
    assert.equal(await codeFor(p, 'echo'), -32014, 'the previous snapshot still decides');
    assert.equal(await codeFor(p, 'get_time'), 'ok');
    const log = await until(() => p.logText(), (t) => /reload failed; the previous snapshot keeps serving/.test(t));
    assert.match(log, /reload failed; the previous snapshot keeps serving/);
    assert.match(log, /thoughtgate\.yaml:\d+/, 'the error names file and line');
    assert.ok(Number(await metric(p, /^thoughtgate_config_reloads_total\{outcome="success"\} (\d+)/m)) >= 1);
  } finally {
    await p.stop();
    up.close();
  }
});

test('a change to the file reloads without a signal, also through a Kubernetes-style symlink swap', async () => {
  const up = await startRecordingUpstream();
  // a ConfigMap mount: dir/thoughtgate.yaml -> ..data/thoughtgate.yaml, ..data -> ..v1
  const dir = join(tempDir('configmap'), 'cm');
  mkdirSync(join(dir, '..v1'), { recursive: true });
  writeFileSync(join(dir, '..v1', 'thoughtgate.yaml'), sourceYaml(`    url: ${up.url}`));
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync(join('..data', 'thoughtgate.yaml'), join(dir, 'thoughtgate.yaml'));
  const q = await startProxy('unused: true\n', { args: ['--config', join(dir, 'thoughtgate.yaml')] });
  try {
    assert.equal(await codeFor(q, 'echo'), 'ok');
    mkdirSync(join(dir, '..v2'));
    writeFileSync(join(dir, '..v2', 'thoughtgate.yaml'), sourceYaml(`    url: ${up.url}`, { rules: denyRule('echo') }));
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    assert.equal(await until(() => codeFor(q, 'echo'), -32014), -32014);
  } finally {
    await q.stop();
    up.close();
  }
});

test('a reload that would switch upstreams is refused: the old snapshot and connection stay', async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`));
  try {
    writeFileSync(p.cfg, sourceYaml('    url: http://127.0.0.1:9/mcp', { rules: denyRule('echo') }));
    p.proc.kill('SIGHUP');
    assert.ok(Number(await until(() => metric(p, /^thoughtgate_config_reloads_total\{outcome="failure"\} (\d+)/m), (v) => Number(v) >= 1)) >= 1);
    // The log line goes out asynchronously: it may land just after the counter moved.
    assert.match(await until(() => p.logText(), (t) => /sources\[0\]\.url changed/.test(t)), /sources\[0\]\.url changed/);
    assert.equal(await codeFor(p, 'echo'), 'ok');
  } finally {
    await p.stop();
    up.close();
  }
});
