import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir, ensurePrivateFile, NotPrivateError } from './durable-fs.js';

const modeOf = (p: string): number => statSync(p).mode & 0o777;

test('ensurePrivateDir creates missing directories 0700 and tightens an existing open one', () => {
  const root = mkdtempSync(join(tmpdir(), 'tg-private-'));
  try {
    const fresh = join(root, 'a', 'b');
    assert.equal(ensurePrivateDir(fresh), undefined);
    assert.equal(modeOf(fresh), 0o700);
    const open = join(root, 'open');
    ensurePrivateDir(open);
    chmodSync(open, 0o755); // as an older version, a umask or an operator left it
    assert.equal(ensurePrivateDir(open), 0o755, 'reports the mode it replaced');
    assert.equal(modeOf(open), 0o700);
    assert.equal(ensurePrivateDir(open), undefined, 'nothing to do the second time');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ensurePrivateFile tightens a token file to 0600; a missing one is fine; a symlink is refused', () => {
  const root = mkdtempSync(join(tmpdir(), 'tg-private-'));
  try {
    const file = join(root, 'admin-token');
    assert.equal(ensurePrivateFile(file), undefined);
    writeFileSync(file, 'token\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    assert.equal(ensurePrivateFile(file), 0o644);
    assert.equal(modeOf(file), 0o600);
    const link = join(root, 'link');
    symlinkSync(file, link);
    assert.throws(() => ensurePrivateFile(link), NotPrivateError);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("someone else's open directory is refused, not silently used", () => {
  if (process.getuid?.() === 0) {
    // as root: hand a directory to another uid first
    const root = mkdtempSync(join(tmpdir(), 'tg-private-'));
    try {
      const theirs = join(root, 'theirs');
      ensurePrivateDir(theirs);
      chownSync(theirs, 12345, 12345);
      chmodSync(theirs, 0o755);
      assert.throws(() => ensurePrivateDir(theirs), (e: Error) => e instanceof NotPrivateError && /belongs to uid 12345/.test(e.message));
      assert.equal(modeOf(theirs), 0o755, 'left as it was');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    return;
  }
  // as a normal user: a world-readable directory of root's
  assert.throws(() => ensurePrivateDir('/usr'), (e: Error) => e instanceof NotPrivateError && /belongs to uid 0/.test(e.message));
});
