// The Python MCP SDK (PyPI `mcp` 2.3, in a venv test/support/python.mjs makes) through the proxy,
// next to the TypeScript SDKs: a Python server over Streamable HTTP (`url:`) and over stdio
// (`command:`), the Python client on both eras (2025-11-25 handshake, stateless 2026-07-28, and
// the SDK's `auto` probe), the TS v1 and v2 clients against the Python server, the Python client
// against a v2 TS server. Rules: delete_* denied, secret_* hidden; the Python server records every
// tool call it runs, proving what (never) reached it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { startProxy, sourceYaml, blocklist, rule, tempDir } from './helpers.mjs';
import { pythonMcp, startPythonHttpServer, runPythonClient, PY_FIXTURES } from './support/python.mjs';
import { startV2Server } from './fixtures/v2-server.mjs';

const py = await pythonMcp();
const opts = py.skip ? { skip: `Python SDK tests: ${py.skip}` } : {};
const GOVERNED = { expose: blocklist('secret_*'), rules: rule('delete_*', 'deny') };
const CALLS = ['echo={"message":"hi from python"}', 'add={"a":2,"b":40}', 'delete_user={"user":"bob"}', 'secret_dump'];
const DENIED = -32014;
const HIDDEN = -32015;

let dir, httpRecord, stdioRecord, pyHttp, httpProxy, stdioProxy, v2, v2Proxy;
const recorded = (file) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t')[0]) : []);

before(async () => {
  if (py.skip) return;
  dir = tempDir('py');
  httpRecord = join(dir, 'http-calls.tsv');
  stdioRecord = join(dir, 'stdio-calls.tsv');
  pyHttp = await startPythonHttpServer(py.python, { env: { PY_SERVER_RECORD: httpRecord } });
  httpProxy = await startProxy(sourceYaml(`    url: ${pyHttp.url}`, GOVERNED));
  stdioProxy = await startProxy(sourceYaml(`    command: ${JSON.stringify(py.python)}
    args: [${JSON.stringify(join(PY_FIXTURES, 'server.py'))}, "stdio"]
    env: { PY_SERVER_RECORD: ${JSON.stringify(stdioRecord)} }`, GOVERNED));
  v2 = await startV2Server();
  v2Proxy = await startProxy(sourceYaml(`    url: ${v2.url}`, { expose: blocklist('test_image_*'), rules: rule('test_error_*', 'deny') }));
});

after(async () => {
  await Promise.all([httpProxy?.stop(), stdioProxy?.stop(), v2Proxy?.stop()]);
  await pyHttp?.stop();
  v2?.close();
});

/** What the Python client must see through a governed proxy in front of the Python server. */
function assertGoverned(out, era, record, from) {
  assert.equal(out.protocol_version, era);
  assert.deepEqual(out.tools, ['add', 'delete_user', 'echo', 'get_time'], 'secret_dump is hidden from tools/list');
  assert.equal(out.resource, 'Hello from the Python SDK');
  assert.equal(out.prompt, 'Say hello to Ada');
  const [echo, add, del, secret] = out.calls;
  assert.deepEqual(echo, { name: 'echo', ok: true, text: 'Echo: hi from python', is_error: false });
  assert.deepEqual(add, { name: 'add', ok: true, text: '42', is_error: false });
  assert.equal(del.ok, false, `a denied call raises in the Python client: ${JSON.stringify(del)}`);
  assert.equal(del.code, DENIED);
  assert.match(del.message, /delete_user/);
  assert.equal(secret.ok, false, `a hidden tool's call raises in the Python client: ${JSON.stringify(secret)}`);
  assert.equal(secret.code, HIDDEN);
  const ran = recorded(record).slice(from);
  assert.deepEqual(ran, ['echo', 'add'], 'only the forwarded calls reached the Python server');
}

for (const [mode, era] of [['legacy', '2025-11-25'], ['2026-07-28', '2026-07-28'], ['auto', '2026-07-28']]) {
  test(`Python client (mode=${mode}) → proxy → Python server over Streamable HTTP: ${era}, denied and hidden tools governed`, opts, async () => {
    const from = recorded(httpRecord).length;
    const out = await runPythonClient(py.python, httpProxy.url, mode, CALLS);
    assertGoverned(out, era, httpRecord, from);
  });
}

test('Python client (mode=legacy) → proxy → Python server over stdio (command: source): 2025-11-25, governed', opts, async () => {
  const from = recorded(stdioRecord).length;
  const out = await runPythonClient(py.python, stdioProxy.url, 'legacy', CALLS);
  assertGoverned(out, '2025-11-25', stdioRecord, from);
});

// A stdio child stays in one era (upstream/era.ts): the Python server fixes its connection's era
// at the first message, and stateless 2026-07-28 calls reach a child set up for that era.
for (const mode of ['2026-07-28', 'auto']) {
  test(`Python client (mode=${mode}) → proxy → Python server over stdio (command: source): 2026-07-28, governed`, { ...opts }, async () => {
    const from = recorded(stdioRecord).length;
    const out = await runPythonClient(py.python, stdioProxy.url, mode, CALLS);
    assertGoverned(out, '2026-07-28', stdioRecord, from);
  });
}

for (const [name, proxyOf, recordOf] of [['Streamable HTTP', () => httpProxy, () => httpRecord], ['stdio', () => stdioProxy, () => stdioRecord]]) {
  test(`TS SDK v1 client → proxy → Python server over ${name}: lists filtered, calls, denials`, opts, async () => {
    const from = recorded(recordOf()).length;
    const c = new Client({ name: 'ts-v1', version: '1.0.0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(proxyOf().url)));
    try {
      assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), ['add', 'delete_user', 'echo', 'get_time']);
      const r = await c.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
      assert.equal(r.content[0].text, '3');
      const res = await c.readResource({ uri: 'test://python/greeting' });
      assert.equal(res.contents[0].text, 'Hello from the Python SDK');
      for (const [tool, code] of [['delete_user', DENIED], ['secret_dump', HIDDEN]]) {
        await assert.rejects(c.callTool({ name: tool, arguments: tool === 'delete_user' ? { user: 'x' } : {} }), (e) => e.code === code);
      }
    } finally {
      await c.close();
    }
    assert.deepEqual(recorded(recordOf()).slice(from), ['add']);
  });
}

test('TS SDK v2 client pinned to 2026-07-28 → proxy → Python server over Streamable HTTP', opts, async () => {
  const from = recorded(httpRecord).length;
  const c = new V2Client({ name: 'ts-v2', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await c.connect(new V2Transport(new URL(httpProxy.url)));
  try {
    assert.equal(c.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), ['add', 'delete_user', 'echo', 'get_time']);
    assert.equal((await c.callTool({ name: 'echo', arguments: { message: 'v2' } })).content[0].text, 'Echo: v2');
    await assert.rejects(c.callTool({ name: 'delete_user', arguments: { user: 'x' } }), (e) => e.code === DENIED);
  } finally {
    await c.close();
  }
  assert.deepEqual(recorded(httpRecord).slice(from), ['echo']);
});

for (const [mode, era] of [['legacy', '2025-11-25'], ['2026-07-28', '2026-07-28']]) {
  test(`Python client (mode=${mode}) → proxy → v2 TS SDK server: ${era}, governed`, opts, async () => {
    const out = await runPythonClient(py.python, v2Proxy.url, mode, ['test_simple_text', 'test_error_handling', 'test_image_content'], { extras: false });
    assert.equal(out.protocol_version, era);
    assert.ok(out.tools.includes('test_simple_text') && !out.tools.includes('test_image_content'), `hidden tool filtered: ${out.tools}`);
    assert.deepEqual(out.calls[0], { name: 'test_simple_text', ok: true, text: 'This is a simple text response for testing.', is_error: false });
    assert.equal(out.calls[1].code, DENIED);
    assert.equal(out.calls[2].code, HIDDEN);
  });
}
