import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackAddress } from './peer.js';

test('loopback in every spelling uWS and Node use', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '::1', '0000:0000:0000:0000:0000:0000:0000:0001', '0000:0000:0000:0000:0000:ffff:7f00:0001', '::ffff:127.0.0.1']) {
    assert.equal(isLoopbackAddress(a), true, a);
  }
});

test('anything else is not loopback, including lookalikes and garbage', () => {
  for (const a of ['10.0.0.1', '192.0.2.2', '128.0.0.1', 'fd00::2', '::', '0.0.0.0', '0000:0000:0000:0000:0000:ffff:0a00:0001', '::2', '', 'localhost', '127.0.0.1 ', '127.0.0.1.evil']) {
    assert.equal(isLoopbackAddress(a), false, a);
  }
});
