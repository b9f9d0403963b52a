// Child processes of the bench: every one is tracked and killed when the runner exits
// (normally, on an error, or on SIGINT/SIGTERM), so no stray upstream keeps serving a port.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import net from 'node:net';

const children = new Set();
let hooked = false;

function killAll() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}

/** Installs the exit hooks once: SIGINT/SIGTERM kill the children, then exit as the signal would. */
export function installCleanup() {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping children\n`);
      killAll();
      removeScratch();
      process.exit(code);
    });
  }
}

/** Tracks a child started elsewhere (e.g. wrk) so that it dies with the runner too. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The scratch directory for configs, logs and audit files of this run (made on first use). */
let scratch = null;
export function scratchDir() {
  scratch ??= mkdtempSync(join(tmpdir(), 'tg-bench-'));
  return scratch;
}

/** Deletes the scratch directory (the proxy's audit file grows with every request). */
export function removeScratch() {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

/**
 * Spawns a tracked child whose stdout/stderr go to a log file: the kernel writes it, so a chatty
 * child (civic logs every request) costs the runner no CPU and never blocks on a full pipe.
 */
export function spawnLogged(name, cmd, args, { env = process.env, cwd } = {}) {
  const logPath = join(scratchDir(), `${name}.log`);
  const fd = openSync(logPath, 'w');
  const child = track(spawn(cmd, args, { env, cwd, stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  return { child, logPath, logTail: (n = 1500) => { try { return readFileSync(logPath, 'utf8').slice(-n); } catch { return ''; } } };
}

/** Stops one child: SIGTERM, then SIGKILL if it lingers. */
export function stopChild(child, graceMs = 2000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

/** A port nobody listens on right now (bind 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a truthy value; fails early when the child dies. */
export async function waitFor(what, probe, { child, logTail, timeoutMs = 20000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}): ${logTail?.() ?? ''}`);
    }
    try { const v = await probe(); if (v) return v; } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${what} not ready in ${timeoutMs} ms: ${logTail?.() ?? ''}`);
    await sleep(50);
  }
}

/** True once something accepts TCP connections on the port. */
export function portOpen(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
