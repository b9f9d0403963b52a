// The stdio MCP server the shim governs: spawned in its own process group (a Ctrl-C in the
// agent's terminal reaches the shim, which decides, not the server directly; and killing the
// group also ends whatever the server started, e.g. `npx` → node), ended politely and then
// firmly, never left running after the shim is gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { withoutOurs } from '../upstream/child-env.js';

export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnServerOptions {
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  /**
   * Where the server's stderr goes: 'inherit' shares our fd 2 (no copying, and it keeps
   * working while we exit); a stream gets it piped (tests).
   */
  stderr: 'inherit' | Writable;
  /** polite → SIGTERM → SIGKILL steps (default 2 s each) */
  graceMs?: number;
}

/** Exit code for a server that exited by itself or was killed: the shell's 128 + signal number. */
export function exitCodeOf(exit: ServerExit): number {
  if (exit.code !== null) return exit.code;
  const n = exit.signal === null ? undefined : constants.signals[exit.signal];
  return n === undefined ? 1 : 128 + n;
}

/** The exit code for a command that could not be started (as shells report it). */
export function spawnFailureCode(err: NodeJS.ErrnoException): number {
  if (err.code === 'ENOENT') return 127;
  if (err.code === 'EACCES') return 126;
  return 1;
}

/**
 * The server's environment: what the agent gave the shim (its config's `env` for this server
 * is the agent's business), minus every THOUGHTGATE_* variable — the per-run governance token
 * and URL are the shim's, THOUGHTGATE_ACTIVE would make a nested wrap think it is wrapped, and
 * anything else of ours (an admin token in the user's shell) is no server's business.
 */
export function serverEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return withoutOurs(env);
}

export class ServerProcess {
  readonly child: ChildProcess;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** settles once: the exit, or the failure to start */
  readonly exited: Promise<ServerExit>;
  /** set when spawning failed (the command does not exist, is not executable, …) */
  spawnError: NodeJS.ErrnoException | undefined;
  private exit: ServerExit | undefined;
  private ending: Promise<ServerExit> | undefined;
  private readonly graceMs: number;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(opts: SpawnServerOptions) {
    const [file, ...args] = opts.command;
    if (file === undefined) throw new Error('no server command');
    this.graceMs = opts.graceMs ?? 2000;
    this.child = spawn(file, args, {
      stdio: ['pipe', 'pipe', opts.stderr === 'inherit' ? 'inherit' : 'pipe'],
      env: serverEnv(opts.env),
      detached: true,
    });
    if (opts.stderr !== 'inherit') this.child.stderr!.pipe(opts.stderr, { end: false });
    this.stdin = this.child.stdin!;
    this.stdout = this.child.stdout!;
    // EPIPE after the server died is reported by 'exit'; nothing to do here.
    this.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err: NodeJS.ErrnoException) => {
        // 'error' without a pid: it never ran. (With a pid it is a failed kill/send; ignore.)
        if (this.child.pid !== undefined) return;
        this.spawnError = err;
        this.settle({ code: spawnFailureCode(err), signal: null }, resolve);
      });
      this.child.once('exit', (code, signal) => this.settle({ code, signal }, resolve));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** Sends `signal` to the server's whole process group; false when nothing was there. */
  signalGroup(signal: NodeJS.Signals): boolean {
    const pid = this.child.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      // The group is gone (or was never made): try the process itself.
      try {
        return this.child.kill(signal);
      } catch {
        return false;
      }
    }
  }

  /**
   * Ends the server: close its stdin (the MCP stdio way to ask it to stop), then SIGTERM its
   * group after the grace period, then SIGKILL. Resolves with its exit. Idempotent.
   */
  end(): Promise<ServerExit> {
    if (this.ending !== undefined) return this.ending;
    this.stdin.end();
    if (this.exit === undefined) {
      this.timers.push(setTimeout(() => this.signalGroup('SIGTERM'), this.graceMs));
      this.timers.push(setTimeout(() => this.signalGroup('SIGKILL'), 2 * this.graceMs));
    }
    this.ending = this.exited;
    return this.ending;
  }

  /** Skips the polite steps (a second Ctrl-C, or the shim itself must go now). */
  kill(): void {
    if (this.exit === undefined) this.signalGroup('SIGKILL');
  }

  private settle(exit: ServerExit, resolve: (e: ServerExit) => void): void {
    if (this.exit !== undefined) return;
    this.exit = exit;
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    // The leader is gone; anything it left in its group would be orphaned with us: end it.
    // (A group id is not reused while the group still has members, so this cannot hit a stranger.)
    if (this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, 'SIGTERM');
      } catch {
        // no members left: the usual case
      }
    }
    resolve(exit);
  }
}
