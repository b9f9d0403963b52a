import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverFromInitialize, discoverRequest, eraFromDiscover, toLegacyMessage, toModernAnswer } from './era.js';

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/logLevel': 'info',
};

test('a server speaks 2026-07-28 only when its discover answer lists it', () => {
  assert.equal(eraFromDiscover({ jsonrpc: '2.0', id: 1, result: { supportedVersions: ['2026-07-28'], capabilities: {} } }), 'modern');
  assert.equal(eraFromDiscover({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'Method not found' } }), 'legacy');
  assert.equal(eraFromDiscover({ jsonrpc: '2.0', id: 1, error: { code: -32600, message: 'this connection serves the handshake protocol era' } }), 'legacy');
  assert.equal(eraFromDiscover({ jsonrpc: '2.0', id: 1, result: { supportedVersions: ['2027-01-01'] } }), 'legacy');
  assert.equal(eraFromDiscover({ jsonrpc: '2.0', id: 1, result: {} }), 'legacy');
  assert.equal(eraFromDiscover(null), 'legacy');
});

test('our probe is a 2026-07-28 server/discover with a valid envelope', () => {
  const m = JSON.parse(discoverRequest('p'));
  assert.equal(m.method, 'server/discover');
  assert.equal(m.id, 'p');
  assert.equal(m.params._meta['io.modelcontextprotocol/protocolVersion'], '2026-07-28');
  assert.deepEqual(m.params._meta['io.modelcontextprotocol/clientCapabilities'], {});
});

test('a request in the 2025 shape: envelope and retry fields gone, other _meta and params kept, our id', () => {
  const m = toLegacyMessage({
    jsonrpc: '2.0', id: 7, method: 'tools/call',
    params: { name: 'echo', arguments: { a: 1 }, requestState: 's', inputResponses: {}, _meta: { ...ENVELOPE, progressToken: 3, traceparent: 't' } },
  }, 'tg-1');
  assert.deepEqual(m, { jsonrpc: '2.0', id: 'tg-1', method: 'tools/call', params: { name: 'echo', arguments: { a: 1 }, _meta: { progressToken: 3, traceparent: 't' } } });
  // nothing left: no params at all, as a 2025 client sends tools/list
  assert.deepEqual(toLegacyMessage({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { ...ENVELOPE } } }, 'tg-2'), { jsonrpc: '2.0', id: 'tg-2', method: 'tools/list' });
  // a notification keeps its own params named like retry fields (reserved on requests only)
  assert.deepEqual(toLegacyMessage({ jsonrpc: '2.0', method: 'notifications/x', params: { requestState: 'keep', _meta: { ...ENVELOPE } } }), { jsonrpc: '2.0', method: 'notifications/x', params: { requestState: 'keep' } });
});

test('an answer in the 2026 shape: resultType, serverInfo, list cache hints; errors as they are', () => {
  const info = { name: 's', version: '1' };
  assert.deepEqual(toModernAnswer({ jsonrpc: '2.0', id: 1, result: { tools: [], ttlMs: 60000, cacheScope: 'public' } }, info, true), {
    jsonrpc: '2.0', id: 1, result: { tools: [], ttlMs: 0, cacheScope: 'private', resultType: 'complete', _meta: { 'io.modelcontextprotocol/serverInfo': info } },
  });
  assert.deepEqual(toModernAnswer({ jsonrpc: '2.0', id: 1, result: { content: [], _meta: { k: 1 } } }, info, false), {
    jsonrpc: '2.0', id: 1, result: { content: [], resultType: 'complete', _meta: { k: 1, 'io.modelcontextprotocol/serverInfo': info } },
  });
  const err = { jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'bad' } };
  assert.deepEqual(toModernAnswer(structuredClone(err), info, false), err);
});

test("a 2025 server's discover answer is its initialize answer's capabilities, instructions and identity", () => {
  const r = discoverFromInitialize({ protocolVersion: '2025-11-25', capabilities: { tools: { listChanged: true } }, serverInfo: { name: 's', version: '1' }, instructions: 'hi' });
  assert.deepEqual(r, {
    supportedVersions: ['2026-07-28'], capabilities: { tools: { listChanged: true } }, resultType: 'complete', ttlMs: 0, cacheScope: 'private',
    _meta: { 'io.modelcontextprotocol/serverInfo': { name: 's', version: '1' } }, instructions: 'hi',
  });
});
