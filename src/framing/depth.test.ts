import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepthOver } from './depth.js';

test('depth counts containers, a top-level {} is depth 1', () => {
  assert.equal(jsonDepthOver('{}', 1), false);
  assert.equal(jsonDepthOver('{"a":[]}', 1), true);
  assert.equal(jsonDepthOver('{"a":[]}', 2), false);
  assert.equal(jsonDepthOver('[1,[2],{"x":[3]}]', 3), false);
  assert.equal(jsonDepthOver('[1,[2],{"x":[3]}]', 2), true);
});

test('brackets inside strings (escaped quotes and backslashes included) do not count', () => {
  assert.equal(jsonDepthOver('{"a":"[[[[{{{{"}', 1), false);
  assert.equal(jsonDepthOver('{"a":"\\"[[[[\\\\"}', 1), false);
  assert.equal(jsonDepthOver('{"a":"x\\\\","b":[[]]}', 2), true);
});

test('an answer nested 100,000 levels deep is over any sane limit without a stack overflow', () => {
  const deep = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"x","inputSchema":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}}`;
  assert.equal(jsonDepthOver(deep, 64), true);
  assert.equal(jsonDepthOver(deep, 200_000), false);
});
