import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { procAvailable, residentBytes, vmRssBytes } from './rss.js';

const linux = procAvailable();

test('a live process has a resident size; a pid that does not exist has none', { skip: !linux && 'no /proc here' }, () => {
  const own = vmRssBytes(process.pid);
  assert.ok(own !== undefined && own > 1024 * 1024, `own RSS ${own}`);
  assert.equal(vmRssBytes(2 ** 22 + 12345), undefined);
  assert.equal(residentBytes(2 ** 22 + 12345), undefined);
});

test("a process's children count with it (a launcher's real server is its child)", { skip: !linux && 'no /proc here' }, async () => {
  const child = spawn(process.execPath, ['-e', 'globalThis.keep = Buffer.alloc(32 * 1024 * 1024, 1); process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await once(child.stdout!, 'data');
    const childBytes = residentBytes(child.pid!)!;
    assert.ok(childBytes > 32 * 1024 * 1024, `child RSS ${childBytes} holds its 32 MiB`);
    const withChildren = residentBytes(process.pid)!;
    const alone = vmRssBytes(process.pid)!;
    assert.ok(withChildren - alone > 16 * 1024 * 1024, `the tree (${withChildren}) counts the child beyond our own ${alone}`);
  } finally {
    child.kill('SIGKILL');
  }
});
