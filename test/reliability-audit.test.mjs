// Audit you can count on: strict durability (the line is on disk before the call is answered),
// and a trail that cannot be written (/dev/full): fail_closed refuses governed calls and turns
// /ready 503; continue forwards them, counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { startProxy, startRecordingUpstream, sourceYaml, post, sleep } from './helpers.mjs';

const H = { 'mcp-protocol-version': '2025-06-18' };
const call = (id, name) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
const auditNow = (p) => readFileSync(p.auditPath, 'utf8');
const noDevFull = !existsSync('/dev/full') && 'no /dev/full';

async function readyUntil(p, pred, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${p.adminPort}/ready`);
    const out = { status: r.status, body: await r.json() };
    if (pred(out) || Date.now() > deadline) return out;
    await sleep(50);
  }
}

for (const how of ['env', 'config']) {
  test(`strict durability (${how}): an answered call's audit line is already in the file when the answer arrives`, async () => {
    const up = await startRecordingUpstream();
    const yaml = sourceYaml(`    url: ${up.url}`) + (how === 'config' ? 'audit:\n  durability: strict\n' : '');
    const p = await startProxy(yaml, { env: how === 'env' ? { THOUGHTGATE_AUDIT_DURABILITY: 'strict' } : {} });
    try {
      for (let i = 0; i < 20; i++) {
        const name = `strict_${how}_${i}`;
        const r = await post(p.url, call(i + 1, name), H);
        assert.ok(r.messages[0].result, JSON.stringify(r.messages[0]));
        // read at once, no waiting: buffered mode would hold it for up to 50 ms
        assert.ok(auditNow(p).includes(`"tool":"${name}"`), `${name} not on disk when answered`);
      }
    } finally {
      await p.stop();
      up.close();
    }
  });
}

test('an unknown THOUGHTGATE_AUDIT_DURABILITY or audit.on_failure stops the start', async () => {
  const up = await startRecordingUpstream();
  try {
    const a = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_AUDIT_DURABILITY: 'sometimes' }, expectFailure: true });
    assert.notEqual((await a.exited).code, 0);
    assert.match(a.logText(), /THOUGHTGATE_AUDIT_DURABILITY='sometimes' must be one of buffered, strict/);
    const b = await startProxy(sourceYaml(`    url: ${up.url}`) + 'audit:\n  on_failure: shrug\n', { expectFailure: true });
    assert.notEqual((await b.exited).code, 0);
    assert.match(b.logText(), /on_failure/);
  } finally {
    up.close();
  }
});

for (const durability of ['buffered', 'strict']) {
  test(`fail_closed (production default, ${durability}): a trail that cannot be written refuses governed calls with -32013 and /ready says why`, { skip: noDevFull }, async () => {
    const up = await startRecordingUpstream();
    const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_AUDIT_PATH: '/dev/full', THOUGHTGATE_AUDIT_DURABILITY: durability } });
    try {
      // buffered: the first line fails at its batch's write, a moment after its call went on
      if (durability === 'buffered') await post(p.url, call(1, 'first_call'), H);
      const r = await readyUntil(p, (x) => x.status === 503 || durability === 'strict');
      if (durability === 'buffered') {
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.match(r.body.reason, /audit.*cannot be written.*ENOSPC/);
        assert.equal(r.body.checks.audit_writable, false);
      }
      const refused = await post(p.url, call(2, 'refused_call'), H);
      const err = refused.messages[0].error;
      assert.equal(err?.code, -32013, JSON.stringify(refused.messages[0]));
      assert.match(JSON.stringify(err.data), /audit trail cannot be written/);
      assert.equal(up.received('refused_call'), false, 'a call whose decision could not be recorded reached the upstream');
      const after = await readyUntil(p, (x) => x.status === 503);
      assert.equal(after.status, 503);
    } finally {
      await p.stop();
      up.close();
    }
  });
}

test('continue (THOUGHTGATE_AUDIT_ON_FAILURE): calls are forwarded while the trail fails, counted and logged', { skip: noDevFull }, async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_AUDIT_PATH: '/dev/full', THOUGHTGATE_AUDIT_DURABILITY: 'strict', THOUGHTGATE_AUDIT_ON_FAILURE: 'continue' } });
  try {
    const r = await post(p.url, call(1, 'unrecorded_call'), H);
    assert.ok(r.messages[0].result, JSON.stringify(r.messages[0]));
    assert.equal(up.received('unrecorded_call'), true);
    const ready = await fetch(`http://127.0.0.1:${p.adminPort}/ready`);
    assert.equal(ready.status, 200); // it still serves; the check says the trail is not written
    assert.equal((await ready.json()).checks.audit_writable, false);
    const metrics = await (await fetch(`http://127.0.0.1:${p.adminPort}/metrics`)).text();
    assert.match(metrics, /^thoughtgate_audit_unrecorded_total\{outcome="forwarded"\} [1-9]/m);
    assert.match(metrics, /^thoughtgate_audit_writable 0$/m);
    assert.match(p.logText(), /audit trail cannot be written: forwarding governed calls unrecorded/);
  } finally {
    await p.stop();
    up.close();
  }
});
