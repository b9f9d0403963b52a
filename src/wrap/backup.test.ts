import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { parse } from 'jsonc-parser';
import {
  acquireLock,
  BackupExistsError,
  ConfigChangedError,
  findStale,
  isProcessAlive,
  LockedError,
  readMarker,
  restore,
  writeBackup,
} from './backup.js';
import { planRewrite } from './rewrite.js';
import type { RewriteOptions } from './rewrite.js';

const OPTS: RewriteOptions = {
  shimCommand: '/usr/bin/node',
  shimArgsPrefix: ['/opt/tg/bin/thoughtgate.js', 'shim'],
  governanceUrl: 'http://127.0.0.1:43117',
  token: 'tok-123',
  profile: 'production',
};

// Claude Desktop format, odd formatting, an unrelated key (as the acceptance check uses)
const DESKTOP = `{
  "globalShortcut": "Ctrl+Alt+Space",
    "mcpServers":{"filesystem" : {
      "command": "npx",
      "args": ["-y","@modelcontextprotocol/server-filesystem", "/tmp"]
  },
  "remote": { "url": "https://example.com/mcp" }}
}
`;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function fresh(text = DESKTOP, name = 'claude_desktop_config.json'): string {
  const dir = mkdtempSync(join(tmpdir(), 'tg-backup-'));
  dirs.push(dir);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Lock, plan and write backup + rewrite, as `wrap` does. */
function wrapFile(file: string) {
  const lock = acquireLock(file);
  const original = readFileSync(file);
  const plan = planRewrite(original.toString('utf8'), { path: file, agent: 'custom', format: 'mcpServers' }, OPTS);
  const written = writeBackup(file, original, plan.text);
  return { lock, original, plan, ...written };
}

const sideFiles = (file: string) => ['backup', 'marker', 'lock'].filter((s) => existsSync(`${file}.thoughtgate-${s}`));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A pid that certainly existed and is gone (reaped) now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

// ---- child processes --------------------------------------------------------------------------

const CHILD_ENV = {
  ...process.env,
  TG_BACKUP: new URL('./backup.js', import.meta.url).href,
  TG_REWRITE: new URL('./rewrite.js', import.meta.url).href,
  TG_OPTS: JSON.stringify(OPTS),
};

// rewrites the file like `wrap`, says "ready", then hangs until killed
const CRASHER = `
import { readFileSync } from 'node:fs';
const { acquireLock, writeBackup } = await import(process.env.TG_BACKUP);
const { planRewrite } = await import(process.env.TG_REWRITE);
const file = process.argv[2];
acquireLock(file);
const original = readFileSync(file);
const plan = planRewrite(original.toString('utf8'), { path: file, agent: 'custom', format: 'mcpServers' }, JSON.parse(process.env.TG_OPTS));
writeBackup(file, original, plan.text);
console.log('ready');
setInterval(() => {}, 1 << 30);
`;

// waits for "go", then tries to wrap; the winner holds on until its stdin closes, then restores
const RACER = `
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const { acquireLock, writeBackup, restore } = await import(process.env.TG_BACKUP);
const { planRewrite } = await import(process.env.TG_REWRITE);
const file = process.argv[2];
let lock;
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line !== 'go') return;
  try {
    lock = acquireLock(file);
  } catch (e) {
    console.log(e.name);
    process.exit(0);
  }
  const original = readFileSync(file);
  const plan = planRewrite(original.toString('utf8'), { path: file, agent: 'custom', format: 'mcpServers' }, JSON.parse(process.env.TG_OPTS));
  writeBackup(file, original, plan.text);
  console.log('won');
});
rl.on('close', () => {
  if (lock) {
    const r = restore(file);
    lock.release();
    console.log(r.restored && !r.userEdited ? 'restored' : 'restore-failed ' + JSON.stringify(r));
  }
  process.exit(0);
});
console.log('waiting');
`;

function scriptFile(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tg-child-'));
  dirs.push(dir);
  const f = join(dir, 'child.mjs');
  writeFileSync(f, source);
  return f;
}

interface Child {
  proc: ChildProcess;
  /** the next line the child prints; rejects if it exits first */
  nextLine(): Promise<string>;
  exited: Promise<void>;
}

function startChild(script: string, args: string[]): Child {
  const proc = spawn(process.execPath, [script, ...args], { env: CHILD_ENV, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let waiting: { resolve: (l: string) => void; reject: (e: Error) => void } | undefined;
  let ended = false;
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w.resolve(l);
    } else lines.push(l);
  });
  const exited = new Promise<void>((resolve) =>
    proc.on('exit', () => {
      ended = true;
      waiting?.reject(new Error(`child ${proc.pid} exited before printing a line`));
      resolve();
    }),
  );
  return {
    proc,
    exited,
    nextLine: () =>
      lines.length > 0
        ? Promise.resolve(lines.shift()!)
        : ended
          ? Promise.reject(new Error('child already exited'))
          : new Promise((resolve, reject) => (waiting = { resolve, reject })),
  };
}

// ---- lock -------------------------------------------------------------------------------------

describe('acquireLock', () => {
  it('creates <config>.thoughtgate-lock holding {pid, started}; a second taker is refused; release deletes it', () => {
    const file = fresh();
    const lock = acquireLock(file);
    const info = JSON.parse(readFileSync(`${file}.thoughtgate-lock`, 'utf8'));
    assert.equal(info.pid, process.pid);
    assert.ok(!Number.isNaN(Date.parse(info.started)));
    assert.throws(
      () => acquireLock(file),
      (e: unknown) => e instanceof LockedError && e.pid === process.pid && e.message.includes(`(pid ${process.pid})`) && e.message.includes(file),
    );
    lock.release();
    assert.ok(!existsSync(`${file}.thoughtgate-lock`));
    acquireLock(file).release();
  });

  it('takes over a lock whose process is dead', () => {
    const file = fresh();
    writeFileSync(`${file}.thoughtgate-lock`, JSON.stringify({ pid: deadPid(), started: new Date().toISOString() }));
    const lock = acquireLock(file);
    assert.equal(JSON.parse(readFileSync(lock.path, 'utf8')).pid, process.pid);
    lock.release();
  });

  it('treats a live pid that started after the lock was written as reused, so the lock as stale', { skip: process.platform !== 'linux' }, () => {
    const file = fresh();
    writeFileSync(`${file}.thoughtgate-lock`, JSON.stringify({ pid: process.pid, started: '2001-01-01T00:00:00.000Z' }));
    acquireLock(file).release();
  });

  it('treats a fresh lock it cannot read as held (its owner is still writing it), an old one as stale', () => {
    const file = fresh();
    const lockPath = `${file}.thoughtgate-lock`;
    writeFileSync(lockPath, '');
    assert.throws(() => acquireLock(file), (e: unknown) => e instanceof LockedError && e.pid === undefined);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath, old, old);
    acquireLock(file).release();
  });

  it('release() leaves a lock that is no longer its own', () => {
    const file = fresh();
    const lock = acquireLock(file);
    writeFileSync(lock.path, JSON.stringify({ pid: 1, started: new Date().toISOString() }));
    lock.release();
    assert.ok(existsSync(lock.path));
    unlinkSync(lock.path);
  });
});

describe('two wraps of one config at once', () => {
  async function race(file: string, racers: number) {
    const script = scriptFile(RACER);
    const children = Array.from({ length: racers }, () => startChild(script, [file]));
    for (const c of children) assert.equal(await c.nextLine(), 'waiting');
    for (const c of children) c.proc.stdin!.write('go\n');
    const outcomes = await Promise.all(children.map((c) => c.nextLine()));
    return { children, outcomes };
  }

  it('exactly one of two processes wins; the config is wrapped once and restored byte for byte', async () => {
    const file = fresh();
    const original = readFileSync(file);
    const { children, outcomes } = await race(file, 2);
    assert.deepEqual([...outcomes].sort(), ['LockedError', 'won']);
    // wrapped exactly once: the shim runs the original command, not another shim
    const v = parse(readFileSync(file, 'utf8')) as { mcpServers: { filesystem: { args: string[] } } };
    const args = v.mcpServers.filesystem.args;
    assert.equal(args.filter((a) => a === 'shim').length, 1);
    assert.equal(args[args.indexOf('--') + 1], 'npx');
    const winner = children[outcomes.indexOf('won')]!;
    winner.proc.stdin!.end();
    assert.equal(await winner.nextLine(), 'restored');
    await Promise.all(children.map((c) => c.exited));
    assert.ok(readFileSync(file).equals(original));
    assert.deepEqual(sideFiles(file), []);
  });

  it('exactly one of four processes wins when they race to take over a stale lock', async () => {
    const file = fresh();
    const original = readFileSync(file);
    writeFileSync(`${file}.thoughtgate-lock`, JSON.stringify({ pid: deadPid(), started: new Date().toISOString() }));
    const { children, outcomes } = await race(file, 4);
    assert.deepEqual([...outcomes].sort(), ['LockedError', 'LockedError', 'LockedError', 'won']);
    const winner = children[outcomes.indexOf('won')]!;
    winner.proc.stdin!.end();
    assert.equal(await winner.nextLine(), 'restored');
    await Promise.all(children.map((c) => c.exited));
    assert.ok(readFileSync(file).equals(original));
    assert.deepEqual(sideFiles(file), []);
  });
});

// ---- backup and restore -----------------------------------------------------------------------

describe('writeBackup', () => {
  it('writes the backup (original bytes) and the marker before replacing the config; owner-only while wrapped, its mode back on restore', () => {
    const file = fresh();
    chmodSync(file, 0o640);
    const { lock, original, plan, backupPath, markerPath } = wrapFile(file);
    try {
      assert.equal(backupPath, `${file}.thoughtgate-backup`);
      assert.ok(readFileSync(backupPath).equals(original));
      assert.equal(readFileSync(file, 'utf8'), plan.text);
      assert.equal(statSync(file).mode & 0o777, 0o600, 'the rewritten file holds the per-run token');
      assert.equal(statSync(backupPath).mode & 0o777, 0o640);
      assert.equal(statSync(markerPath).mode & 0o777, 0o600);
      const m = JSON.parse(readFileSync(markerPath, 'utf8'));
      assert.equal(m.pid, process.pid);
      assert.equal(m.config, file);
      assert.equal(m.rewrittenSha256, sha256(readFileSync(file)));
      assert.ok(!Number.isNaN(Date.parse(m.createdAt)));
      assert.deepEqual(
        m.entries.map((e: { path: string[] }) => e.path),
        [
          ['mcpServers', 'filesystem'],
          ['mcpServers', 'remote'],
        ],
      );
      assert.equal(findStale(file), false, 'our own live run is not stale');
      restore(file);
      assert.equal(statSync(file).mode & 0o777, 0o640);
    } finally {
      lock.release();
    }
  });

  it('refuses when the file changed since it was read, writing nothing', () => {
    const file = fresh();
    const lock = acquireLock(file);
    const original = readFileSync(file);
    const plan = planRewrite(original.toString('utf8'), { path: file, agent: 'custom', format: 'mcpServers' }, OPTS);
    writeFileSync(file, DESKTOP.replace('Ctrl', 'Cmd'));
    assert.throws(() => writeBackup(file, original, plan.text), ConfigChangedError);
    assert.deepEqual(sideFiles(file), ['lock']);
    lock.release();
  });

  it('refuses to overwrite another run’s backup that differs from this original', () => {
    const file = fresh();
    writeFileSync(`${file}.thoughtgate-backup`, 'an older original');
    const lock = acquireLock(file);
    const original = readFileSync(file);
    const plan = planRewrite(original.toString('utf8'), { path: file, agent: 'custom', format: 'mcpServers' }, OPTS);
    assert.throws(() => writeBackup(file, original, plan.text), (e: unknown) => e instanceof BackupExistsError && /thoughtgate restore/.test(e.message));
    assert.ok(readFileSync(file).equals(original));
    assert.equal(readFileSync(`${file}.thoughtgate-backup`, 'utf8'), 'an older original');
    lock.release();
  });

  it('replaces the file a symlink points to and keeps the link', () => {
    const target = fresh();
    const linkDir = mkdtempSync(join(tmpdir(), 'tg-link-'));
    dirs.push(linkDir);
    const link = join(linkDir, 'config.json');
    symlinkSync(target, link);
    const original = readFileSync(target);
    const { lock } = wrapFile(link);
    try {
      assert.ok(lstatSync(link).isSymbolicLink());
      assert.ok(!readFileSync(target).equals(original));
      assert.ok(existsSync(`${target}.thoughtgate-backup`));
      assert.equal(restore(link).restored, true);
      assert.ok(lstatSync(link).isSymbolicLink());
      assert.ok(readFileSync(target).equals(original));
    } finally {
      lock.release();
    }
  });
});

describe('restore', () => {
  it('without a marker there is nothing to do', () => {
    const file = fresh();
    assert.deepEqual(restore(file), { restored: false, userEdited: false, warnings: [] });
    assert.ok(readFileSync(file).equals(Buffer.from(DESKTOP)));
  });

  it('clears a backup left without a marker when the file is already the original', () => {
    const file = fresh();
    writeFileSync(`${file}.thoughtgate-backup`, DESKTOP);
    assert.deepEqual(restore(file), { restored: false, userEdited: false, warnings: [] });
    assert.deepEqual(sideFiles(file), []);
  });

  it('keeps the user’s edit of other keys byte for byte, reverts our entries, and says so', () => {
    const file = fresh(`{
  "globalShortcut": "Ctrl+Alt+Space",
  "theme": "dark",
  "window": { "width": 800, "height": 600 },
  "telemetry": false,
    "mcpServers":{"filesystem" : {
      "command": "npx",
      "args": ["-y","@modelcontextprotocol/server-filesystem", "/tmp"]
  }},
  "a": 1,
  "b": 2,
  "c": 3,
  "lastKey": "x"
}
`);
    const { lock, original } = wrapFile(file);
    try {
      const edit = (t: string) => t.replace('"Ctrl+Alt+Space"', '"Ctrl+Shift+K"').replace('"lastKey": "x"', '"lastKey": "y",\n  "newKey": true');
      writeFileSync(file, edit(readFileSync(file, 'utf8')));
      const r = restore(file);
      assert.equal(r.restored, true);
      assert.equal(r.userEdited, true);
      assert.equal(readFileSync(file, 'utf8'), edit(original.toString('utf8')));
      assert.match(r.warnings[0]!, /was changed while wrapped: the original entries of 'filesystem' were put back and the other changes kept/);
      assert.deepEqual(sideFiles(file), ['lock']);
    } finally {
      lock.release();
    }
  });

  it('keeps an edit right next to our entries too (same meaning, our entries reverted)', () => {
    const file = fresh();
    const { lock, original } = wrapFile(file);
    try {
      // the edits touch lines our rewrite changed, so they cannot be replayed line for line
      const edit = (t: string) => t.replace('"Ctrl+Alt+Space"', '"Ctrl+Shift+K"').replace(/\n}\n$/, ',\n  "newKey": true\n}\n');
      writeFileSync(file, edit(readFileSync(file, 'utf8')));
      const r = restore(file);
      assert.equal(r.userEdited, true);
      assert.deepEqual(parse(readFileSync(file, 'utf8')), parse(edit(original.toString('utf8'))));
      // the entries themselves are the original text, not a re-serialisation
      assert.ok(readFileSync(file, 'utf8').includes('"args": ["-y","@modelcontextprotocol/server-filesystem", "/tmp"]'));
      assert.match(r.warnings[0]!, /the original entries of 'filesystem', 'remote' were put back and the other changes kept/);
    } finally {
      lock.release();
    }
  });

  it('keeps an agent’s own rewrite of the whole file (Claude Code re-serialises ~/.claude.json) and reverts only our entries', () => {
    const project = '/home/me/app';
    const obj = {
      numStartups: 1,
      mcpServers: { github: { type: 'stdio', command: 'npx', args: ['-y', 'server-github'], env: {} } },
      projects: { [project]: { allowedTools: [], mcpServers: { fs: { command: 'node', args: ['fs.js'] } } } },
    };
    const file = fresh(JSON.stringify(obj, null, 2), '.claude.json');
    const lock = acquireLock(file);
    try {
      const original = readFileSync(file);
      const plan = planRewrite(original.toString('utf8'), { path: file, agent: 'claude-code', format: 'claude-code-projects', projectKey: project }, OPTS);
      writeBackup(file, original, plan.text);
      const live = JSON.parse(readFileSync(file, 'utf8'));
      live.numStartups = 2;
      live.projects[project].allowedTools.push('mcp__fs__read');
      writeFileSync(file, JSON.stringify(live, null, 2));
      const r = restore(file);
      assert.equal(r.userEdited, true);
      const expected = structuredClone(obj);
      expected.numStartups = 2;
      (expected.projects[project]!.allowedTools as string[]).push('mcp__fs__read');
      assert.equal(readFileSync(file, 'utf8'), JSON.stringify(expected, null, 2));
    } finally {
      lock.release();
    }
  });

  it('warns when one of our entries was itself edited or removed while wrapped', () => {
    const file = fresh();
    const { lock, original } = wrapFile(file);
    try {
      const live = parse(readFileSync(file, 'utf8'));
      live.mcpServers.filesystem.args.push('--extra');
      delete live.mcpServers.remote;
      writeFileSync(file, JSON.stringify(live, null, 2));
      const r = restore(file);
      assert.equal(r.restored, true);
      const now = JSON.parse(readFileSync(file, 'utf8'));
      assert.deepEqual(now.mcpServers.filesystem, parse(original.toString('utf8')).mcpServers.filesystem);
      assert.equal(now.mcpServers.remote, undefined);
      assert.ok(r.warnings.some((w) => /'remote' was removed .* not put back/.test(w)));
      assert.ok(r.warnings.some((w) => /wrapped entries of 'filesystem' had been edited/.test(w)));
    } finally {
      lock.release();
    }
  });

  it('with keepUserEdits false puts the backup back as it was', () => {
    const file = fresh();
    const { lock, original } = wrapFile(file);
    try {
      writeFileSync(file, readFileSync(file, 'utf8').replace('Ctrl+Alt+Space', 'X'));
      const r = restore(file, { keepUserEdits: false });
      assert.equal(r.userEdited, true);
      assert.ok(readFileSync(file).equals(original));
      assert.match(r.warnings[0]!, /discarded/);
    } finally {
      lock.release();
    }
  });

  it('leaves a file that no longer parses, keeps the backup and names it; restores once fixed', () => {
    const file = fresh();
    const { lock, original, plan } = wrapFile(file);
    try {
      writeFileSync(file, '{ "broken": ');
      const r = restore(file);
      assert.equal(r.restored, false);
      assert.equal(r.userEdited, true);
      assert.equal(readFileSync(file, 'utf8'), '{ "broken": ');
      assert.ok(r.warnings[0]!.includes(`${file}.thoughtgate-backup`));
      assert.match(r.warnings[0]!, /no longer parses \(line 1, column 13/);
      assert.deepEqual(sideFiles(file), ['backup', 'marker', 'lock']);
      writeFileSync(file, plan.text);
      assert.equal(restore(file).restored, true);
      assert.ok(readFileSync(file).equals(original));
    } finally {
      lock.release();
    }
  });

  it('puts the original back when the file was deleted while wrapped', () => {
    const file = fresh();
    const { lock, original } = wrapFile(file);
    try {
      unlinkSync(file);
      const r = restore(file);
      assert.equal(r.restored, true);
      assert.ok(readFileSync(file).equals(original));
      assert.match(r.warnings[0]!, /deleted while wrapped/);
    } finally {
      lock.release();
    }
  });
});

describe('after kill -9 of the process that rewrote the config', () => {
  it('the rewrite is found stale and restored byte for byte; the dead run’s lock is taken over', async () => {
    const file = fresh();
    const original = readFileSync(file);
    const crasher = startChild(scriptFile(CRASHER), [file]);
    assert.equal(await crasher.nextLine(), 'ready');
    assert.ok(!readFileSync(file).equals(original), 'the child rewrote the file');
    // while it runs, nobody else may take the file or restore it behind its back
    assert.equal(findStale(file), false);
    assert.throws(() => acquireLock(file), (e: unknown) => e instanceof LockedError && e.pid === crasher.proc.pid);
    assert.throws(() => restore(file), LockedError);

    crasher.proc.kill('SIGKILL');
    await crasher.exited;
    assert.equal(isProcessAlive(crasher.proc.pid!), false);
    assert.equal(findStale(file), true);
    assert.equal(readMarker(file)!.pid, crasher.proc.pid);
    const r = restore(file);
    assert.deepEqual(r, { restored: true, userEdited: false, warnings: [] });
    assert.ok(readFileSync(file).equals(original));
    assert.deepEqual(sideFiles(file), []);
    assert.equal(findStale(file), false);
  });
});
