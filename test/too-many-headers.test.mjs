// Issue 13 probe 6c: a request with too many headers. uWS 20.57 (the build used wherever it
// loads: Node 20-25 on glibc >= 2.38, and always in `npm run test:node24`) answers 431 and the
// proxy keeps serving; uWS 20.30 (older glibc) can only close the connection, and the proxy
// says so at start.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startProxy, startRecordingUpstream, post, sourceYaml } from './helpers.mjs';

const u = await startRecordingUpstream();
after(() => u.close());

function rawRequest(port, headerCount) {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1', () => {
      let h = '';
      for (let i = 0; i < headerCount; i++) h += `x-h${i}: v\r\n`;
      const body = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
      sock.write(`POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n${h}content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    });
    let text = '';
    sock.on('data', (d) => { text += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => resolve(text));
  });
}

test('300 request headers: 431 on uWS 20.57 (a clean close and a start warning on 20.30); the proxy serves the next request', async () => {
  const p = await startProxy(sourceYaml(`    url: ${u.url}`));
  try {
    const modern = /"uws":"@btc-vision\/uwebsockets\.js@20\.57\.0"/.test(p.logText());
    const text = await rawRequest(p.port, 300);
    if (modern) {
      assert.match(text, /^HTTP\/1\.1 431 /, text.slice(0, 120));
    } else {
      assert.equal(text, '', 'uWS 20.30 closes without an answer');
      assert.match(p.logText(), /without answering 431/, 'and the proxy warned at start');
    }
    const few = await rawRequest(p.port, 3);
    assert.match(few, /^HTTP\/1\.1 200 /, 'a request with few headers is served');
    assert.ok((await post(p.url, { jsonrpc: '2.0', id: 2, method: 'ping' })).status < 500, 'still serving');
  } finally {
    await p.stop();
  }
});

test('THOUGHTGATE_UWS_BUILD=bogus is refused at start with the allowed values', async () => {
  const p = await startProxy(sourceYaml(`    url: ${u.url}`), { env: { THOUGHTGATE_UWS_BUILD: 'bogus' }, expectFailure: true });
  const { code } = await p.exited;
  assert.notEqual(code, 0);
  assert.match(p.logText(), /THOUGHTGATE_UWS_BUILD='bogus' must be one of auto, modern, legacy/);
});
