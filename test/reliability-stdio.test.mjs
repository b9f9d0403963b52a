// A hostile stdio server (issue 14, item 2): its NDJSON lines are untrusted input. An answer
// line that is not valid UTF-8, or nested past the depth limit, gets the client a JSON-RPC error
// for that request at once (not a timeout, never the decoded U+FFFD text); the process lives on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy, post, rawSession, tempDir } from './helpers.mjs';

const SERVER = `
const readline = require('node:readline');
const out = (x) => process.stdout.write(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x) + '\\n');
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  if (m.method === 'initialize') return out({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1' } } });
  const name = m.params?.name;
  const head = '{"jsonrpc":"2.0","id":' + JSON.stringify(m.id) + ',"result":{"content":[{"type":"text","text":';
  if (name === 'bad_utf8') return out(Buffer.concat([Buffer.from(head + '"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}}\\n')]));
  if (name === 'deep') return out(head + '"x","extra":' + '['.repeat(100000) + ']'.repeat(100000) + '}]}}\\n');
  out({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'ok ' + name }] } });
});
`;
let proxy;

before(async () => {
  const dir = tempDir('hostile-stdio');
  const script = join(dir, 'server.cjs');
  writeFileSync(script, SERVER);
  proxy = await startProxy(`schema: 1
sources:
  - id: hostile
    kind: mcp
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(script)}]
governance:
  defaults:
    action: forward
`, { env: { THOUGHTGATE_REQUEST_TIMEOUT_SECS: '120' } });
});
after(async () => {
  await proxy?.stop();
});

for (const [name, why] of [['bad_utf8', /invalid_utf8/], ['deep', /invalid_request|too_deep|malformed/]]) {
  test(`an answer line from the child that is ${name === 'deep' ? 'nested 100,000 deep' : 'not valid UTF-8'}: an error for that request now, the session goes on`, async () => {
    const { headers } = await rawSession(proxy.url);
    const r = await post(proxy.url, { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name, arguments: {} } }, { ...headers, accept: 'application/json' });
    const ans = r.messages.find((m) => m.id === 11);
    assert.equal(ans?.error?.code, -32002, r.text.slice(0, 200));
    assert.match(ans.error.message, why);
    assert.ok(!r.text.includes('\ufffd'));
    const next = await post(proxy.url, { jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'fine', arguments: {} } }, headers);
    assert.equal(next.messages.find((m) => m.id === 12)?.result?.content?.[0]?.text, 'ok fine');
    assert.equal(proxy.proc.exitCode, null);
  });
}
