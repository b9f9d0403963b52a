// Modes (enforce / audit / bypass) and upstream failures: down, slow, garbage, its own errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startRecordingUpstream, post, freePort, sourceYaml } from './helpers.mjs';

const call = (id, name) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
const H = { 'mcp-protocol-version': '2025-06-18' };
const rules = `    - match: "delete_*"
      action: deny
    - match: "pay_*"
      action: approve
    - match: "cedar_*"
      action: policy
      policy_id: p1`;
const expose = `    expose:
      mode: blocklist
      tools: ["secret_*"]`;

test('enforce: deny, hidden, and the engines that are not built yet all fail closed', async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`, { rules, expose }));
  try {
    const cases = [['delete_user', -32014], ['secret_dump', -32015], ['cedar_thing', -32003]];
    for (const [name, code] of cases) {
      const r = await post(p.url, call(1, name), H);
      assert.equal(r.messages[0].error.code, code, `${name}: ${r.text}`);
      assert.equal(up.received(name), false, `${name} was not forwarded`);
    }
    // approve: held for a human (here as a task, answered at once), never forwarded before a decision
    const held = await post(p.url, { ...call(2, 'pay_invoice'), params: { name: 'pay_invoice', arguments: {}, task: {} } }, H);
    assert.equal(held.messages[0].result.task.status, 'working', held.text);
    assert.equal(up.received('pay_invoice'), false);
  } finally {
    await p.stop();
    up.close();
  }
});

test('audit (MODE=audit): every gate judges, WOULD_BLOCK is logged and audited, the call is forwarded', async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`, { rules, expose }), { env: { MODE: 'audit' } });
  try {
    for (const name of ['delete_user', 'secret_dump', 'pay_invoice', 'cedar_thing']) {
      const r = await post(p.url, call(3, name), H);
      assert.ok(r.messages[0].result, `${name} forwarded in audit mode`);
      assert.equal(up.received(name), true);
    }
    await p.stop();
    const would = p.logText().split('\n').filter((l) => l.includes('WOULD_BLOCK'));
    assert.equal(would.length, 4);
    const lines = p.audit().filter((l) => l.decision === 'would_block');
    assert.deepEqual(lines.map((l) => l.tool).sort(), ['cedar_thing', 'delete_user', 'secret_dump']);
    // a call that needs approval is auto-approved in audit mode, and audited as such
    assert.deepEqual(p.audit().filter((l) => l.decision === 'auto_approved').map((l) => l.tool), ['pay_invoice']);
    assert.ok(p.audit().filter((l) => l.gate !== 'approval').every((l) => l.mode === 'audit'));
  } finally {
    await p.stop();
    up.close();
  }
});

test('--profile development is audit mode; --profile production overrides MODE=audit', async () => {
  const up = await startRecordingUpstream();
  const dev = await startProxy(sourceYaml(`    url: ${up.url}`, { rules }), { args: ['--profile', 'development'] });
  assert.ok((await post(dev.url, call(4, 'delete_me'), H)).messages[0].result);
  await dev.stop();
  const prod = await startProxy(sourceYaml(`    url: ${up.url}`, { rules }), { args: ['--profile', 'production'], env: { MODE: 'audit' } });
  assert.equal((await post(prod.url, call(5, 'delete_me'), H)).messages[0].error.code, -32014);
  await prod.stop();
  up.close();
});

test('bypass is refused outside THOUGHTGATE_ENVIRONMENT=development, and forwards unjudged inside it', async () => {
  const up = await startRecordingUpstream();
  const refused = await startProxy(sourceYaml(`    url: ${up.url}`, { rules }), { env: { MODE: 'bypass' }, expectFailure: true });
  const { code } = await refused.exited;
  assert.equal(code, 2);
  assert.match(refused.logText(), /bypass .* refused unless THOUGHTGATE_ENVIRONMENT=development/);
  const p = await startProxy(sourceYaml(`    url: ${up.url}`, { rules }), { env: { MODE: 'bypass', THOUGHTGATE_ENVIRONMENT: 'development' } });
  assert.ok((await post(p.url, call(6, 'delete_everything'), H)).messages[0].result);
  await p.stop();
  assert.equal(p.audit().length, 0, 'bypass judges nothing');
  up.close();
});

test('upstream down → -32000 within the request, never a hang', async () => {
  const dead = await freePort();
  const p = await startProxy(sourceYaml(`    url: http://127.0.0.1:${dead}/mcp`));
  try {
    const r = await post(p.url, call(7, 'echo'), H);
    assert.equal(r.status, 200);
    assert.equal(r.messages[0].error.code, -32000);
    assert.equal(r.messages[0].id, 7);
  } finally {
    await p.stop();
  }
});

test('upstream slow → -32001 after THOUGHTGATE_REQUEST_TIMEOUT_SECS', async () => {
  const up = await startRecordingUpstream({ behave: (req, raw, res) => raw.includes('slow_tool') && (setTimeout(() => res.destroy(), 5000), true) });
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_REQUEST_TIMEOUT_SECS: '1' } });
  try {
    const r = await post(p.url, call(8, 'slow_tool'), H);
    assert.equal(r.messages[0].error.code, -32001);
  } finally {
    await p.stop();
    up.close();
  }
});

test('an upstream HTML error page or non-JSON body becomes -32002, never a result', async () => {
  const up = await startRecordingUpstream({
    behave: (req, raw, res) => {
      if (raw.includes('html_tool')) { res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad Gateway</body></html>'); return true; }
      if (raw.includes('garbage_tool')) { res.writeHead(200, { 'content-type': 'application/json' }).end('<<not json>>'); return true; }
      if (raw.includes('plain_tool')) { res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'); return true; }
      return false;
    },
  });
  const p = await startProxy(sourceYaml(`    url: ${up.url}`));
  try {
    for (const name of ['html_tool', 'garbage_tool', 'plain_tool']) {
      const r = await post(p.url, call(9, name), H);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(r.messages[0].error.code, -32002, `${name}: ${r.text}`);
      assert.doesNotMatch(r.text, /Bad Gateway|not json/);
    }
  } finally {
    await p.stop();
    up.close();
  }
});

test("an upstream's own JSON-RPC error passes through unchanged, status included", async () => {
  const own = { jsonrpc: '2.0', id: 10, error: { code: -32601, message: 'Method not found', data: { foreign: true } } };
  const up = await startRecordingUpstream({
    behave: (req, raw, res) => {
      if (raw.includes('own_error')) { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(own)); return true; }
      if (raw.includes('session_gone')) { res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } })); return true; }
      return false;
    },
  });
  const p = await startProxy(sourceYaml(`    url: ${up.url}`));
  try {
    const r = await post(p.url, call(10, 'own_error'), H);
    assert.deepEqual(r.messages[0], own);
    const gone = await post(p.url, call(11, 'session_gone'), H);
    assert.equal(gone.status, 404, 'clients re-initialize on 404, so the status must survive');
    assert.equal(gone.messages[0].error.message, 'Session not found');
  } finally {
    await p.stop();
    up.close();
  }
});

test('SIGTERM drains an in-flight request before exiting and flushes the audit trail', async () => {
  let release;
  const up = await startRecordingUpstream({
    behave: (req, raw, res) => {
      if (!raw.includes('held_tool')) return false;
      release = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: 12, result: { content: [{ type: 'text', text: 'finished' }] } }));
      return true;
    },
  });
  const p = await startProxy(sourceYaml(`    url: ${up.url}`));
  try {
    const pending = post(p.url, call(12, 'held_tool'), H);
    while (!release) await new Promise((r) => setTimeout(r, 20));
    p.proc.kill('SIGTERM');
    // while draining, /ready reports not ready and new requests are refused
    let ready;
    for (let i = 0; i < 50; i++) {
      ready = await fetch(`http://127.0.0.1:${p.adminPort}/ready`).then((r) => r.status, () => 0);
      if (ready === 503) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(ready, 503);
    release();
    const r = await pending;
    assert.equal(r.messages[0].result.content[0].text, 'finished');
    const { code } = await p.exited;
    assert.equal(code, 0);
    assert.ok(p.audit().some((l) => l.tool === 'held_tool'), 'the decision reached the audit file');
  } finally {
    await p.stop();
    up.close();
  }
});

test('THOUGHTGATE_MAX_CONCURRENT_REQUESTS: at the limit calls wait upstream, past it -32009 with retry_after', async () => {
  const held = [];
  const up = await startRecordingUpstream({
    behave: (req, raw, res) => {
      if (!raw.includes('hold_me')) return false;
      held.push(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: JSON.parse(raw).id, result: { content: [] } })));
      return true;
    },
  });
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_MAX_CONCURRENT_REQUESTS: '2' } });
  try {
    const a = post(p.url, call(20, 'hold_me'), H);
    const b = post(p.url, call(21, 'hold_me'), H);
    while (held.length < 2) await new Promise((r) => setTimeout(r, 20));
    const c = await post(p.url, call(22, 'hold_me_too'), H);
    assert.equal(c.messages[0].error.code, -32009);
    assert.equal(c.messages[0].id, 22);
    assert.ok(c.messages[0].error.data.retry_after >= 1);
    assert.equal(up.received('hold_me_too'), false);
    for (const release of held) release();
    assert.ok((await a).messages[0].result && (await b).messages[0].result);
    const d = await post(p.url, call(23, 'echo'), H);
    assert.ok(d.messages[0].result, 'capacity is back once the held calls finish');
  } finally {
    await p.stop();
    up.close();
  }
});

test('a large JSON answer of unknown length streams through; garbage of unknown length is still refused', async () => {
  let clientGotFirst;
  const firstSeen = new Promise((r) => { clientGotFirst = r; });
  const order = [];
  const up = await startRecordingUpstream({
    behave: (req, raw, res) => {
      if (raw.includes('stream_tool')) {
        res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no content-length
        res.write(`{"jsonrpc":"2.0","id":30,"result":{"content":[{"type":"text","text":"${'a'.repeat(200_000)}`);
        firstSeen.then(() => {
          order.push('upstream finishing');
          res.end(`${'b'.repeat(200_000)}"}]}}`);
        });
        return true;
      }
      if (raw.includes('chunked_garbage')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('   ');
        res.end('<html>oops</html>');
        return true;
      }
      return false;
    },
  });
  const p = await startProxy(sourceYaml(`    url: ${up.url}`));
  try {
    const r = await fetch(p.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...H }, body: JSON.stringify(call(30, 'stream_tool')) });
    const reader = r.body.getReader();
    let text = '';
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (text.length === 0) { order.push('client got first bytes'); clientGotFirst(); }
      text += dec.decode(value, { stream: true });
    }
    assert.deepEqual(order, ['client got first bytes', 'upstream finishing']);
    const msg = JSON.parse(text);
    assert.equal(msg.result.content[0].text.length, 400_000);
    const g = await post(p.url, call(31, 'chunked_garbage'), H);
    assert.equal(g.messages[0].error.code, -32002);
  } finally {
    await p.stop();
    up.close();
  }
});

test('a list answer too large to inspect is refused (-32002), not relayed unfiltered', async () => {
  const up = await startRecordingUpstream({ tools: Array.from({ length: 200 }, (_, i) => `tool_${i}_${'x'.repeat(20)}`) });
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_MAX_SSE_EVENT_BYTES: '2048' } });
  try {
    const r = await post(p.url, { jsonrpc: '2.0', id: 40, method: 'tools/list' }, H);
    assert.equal(r.messages[0].error.code, -32002);
    assert.doesNotMatch(r.text, /tool_199/);
  } finally {
    await p.stop();
    up.close();
  }
});
