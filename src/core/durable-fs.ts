// Files that must survive a crash, and the processes that hold them: an atomic replace
// (temp file, fsync, rename, fsync the directory) and "is the process that wrote this still
// running" (zombies and reused pids count as gone). Shared by wrap's backups and locks and the
// approvals' embedded store.
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, fchmodSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A process that started this long after the moment it was recorded is another one with the same pid. */
const PID_REUSE_SLACK_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// Processes

/** Linux: when a process started (ms since epoch) and whether it is a zombie; undefined elsewhere. */
function linuxProcess(pid: number): { startMs: number; zombie: boolean } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name, which is in parentheses and may itself contain them
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]);
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (!btime || !Number.isFinite(startTicks)) return undefined;
    // USER_HZ is 100 on every Linux architecture Node supports
    return { startMs: Number(btime[1]) * 1000 + startTicks * 10, zombie: fields[0] === 'Z' };
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that wrote a lock or marker at `recordedAt` is still running. A pid that
 * exists but started after that moment is a different process that reused the number (common
 * after a reboot), so it counts as dead.
 */
export function isProcessAlive(pid: number, recordedAt?: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const info = linuxProcess(pid);
  if (info?.zombie) return false;
  if (info && recordedAt !== undefined && Number.isFinite(recordedAt) && info.startMs > recordedAt + PID_REUSE_SLACK_MS) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Atomic files

export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some filesystems refuse fsync on a directory; the rename itself is still atomic
  }
}

/** Temp file in the same directory, fsync, rename over the target, fsync the directory. */
export function writeFileAtomic(path: string, data: Uint8Array, mode: number): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}-${randomUUID().slice(0, 8)}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeFileSync(fd, data);
      fchmodSync(fd, mode); // after creation, so the umask cannot narrow the original mode
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already renamed or never created */
    }
    throw e;
  }
  syncDir(dir);
}

// ---------------------------------------------------------------------------------------------
// Private places (token files: 0600 in a 0700 directory)

export class NotPrivateError extends Error {}

/**
 * Makes `dir` (created when missing, parents included) accessible to this user only. An
 * existing directory is tightened too: `mkdir -p` never changes one, so a state directory made
 * 0755 by an older version, a umask or an operator would keep its token readable by anyone.
 * Throws NotPrivateError when it is someone else's and open to others (we cannot chmod it).
 * Returns the old mode when it had to be tightened (for a log line), undefined otherwise.
 */
export function ensurePrivateDir(dir: string): number | undefined {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return tighten(dir, 0o700, 'directory');
}

/** As ensurePrivateDir for a file that exists (0600); undefined also when it does not exist. */
export function ensurePrivateFile(path: string): number | undefined {
  try {
    lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return tighten(path, 0o600, 'file');
}

function tighten(path: string, mode: number, what: string): number | undefined {
  const st = lstatSync(path);
  if (what === 'directory' ? !st.isDirectory() : !st.isFile()) throw new NotPrivateError(`${path} is not a ${what}`);
  const old = st.mode & 0o777;
  if ((old & 0o077) === 0) return undefined;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new NotPrivateError(`${path} is readable by others (mode ${old.toString(8).padStart(4, '0')}) and belongs to uid ${st.uid}, not to this user (${uid}); make it ${mode.toString(8).padStart(4, '0')} or use a ${what} of this user's`);
  }
  chmodSync(path, mode);
  return old;
}
