// The audit trail: one NDJSON line per decision, appended without blocking the event loop.
// Two durabilities:
//  - buffered (default): lines are batched (up to AUDIT_FLUSH_MS = 50 ms or 64 KiB) and written
//    through sonic-boom (pino.destination, async fs.write) without fsync: a crash or power loss
//    can lose the last batch. If the disk falls behind by more than `maxBufferBytes`, new lines
//    are dropped and counted (thoughtgate_audit_dropped_total) so memory stays bounded.
//  - strict: `writeDurable` resolves only once the line is written and fdatasync'ed. Group
//    commit: lines arriving while one fdatasync runs share the next one, so the cost is one
//    sync per batch, not per line.
// When a write fails (ENOSPC, EIO) the writer reports it once (`onHealth`, `failure`), keeps the
// bytes it could not write, and retries every `retryMs`; when space returns it writes them and
// carries on (a torn line is completed, never duplicated).

import { Buffer } from 'node:buffer';
import { closeSync, fdatasync, fdatasyncSync, fstatSync, mkdirSync, openSync, readSync, write as fsWrite, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import { metrics } from './metrics.js';

export const DEFAULT_AUDIT_PATH = './thoughtgate-audit.ndjson';
export const DEFAULT_AUDIT_MAX_BUFFER_BYTES = 16 * 1024 * 1024;
/** how long a decision's line may wait before it is written */
const AUDIT_FLUSH_MS = 50;
/** write at once when this much is waiting */
const AUDIT_BATCH_BYTES = 64 * 1024;

export interface AuditRecord {
  correlationId: string;
  session?: string | undefined;
  principal?: string | undefined;
  method: string;
  tool?: string | undefined;
  source?: string | undefined;
  /** gate that decided: visibility | governance | policy | approval (absent when none did) */
  gate?: string | undefined;
  /** forward | deny | approve | would_block | … */
  decision: string;
  /** enforce | audit | bypass */
  mode: string;
  reason?: string | undefined;
  durationMs: number;
  /** policy snapshot version the decision was made against */
  snapshot?: string | undefined;
  /** epoch ms; defaults to now */
  time?: number | undefined;
  /** gate 4 events: the approval (task) id, who decided, and what became of the call */
  approvalId?: string | undefined;
  approver?: string | undefined;
  outcome?: string | undefined;
}

export interface AuditOptions {
  /** file path, or '-' for stdout; default THOUGHTGATE_AUDIT_PATH, else ./thoughtgate-audit.ndjson */
  path?: string;
  maxBufferBytes?: number;
  /** called with the number of lines dropped (default: the metrics counter) */
  onDrop?: (n: number) => void;
  /** called on a write/open error (default: stderr) */
  onError?: (err: Error) => void;
  /** buffered (default) or strict (write + fdatasync before `writeDurable` resolves) */
  durability?: AuditDurability;
  /** called when the trail stops being writable (with the error) and when it recovers (undefined) */
  onHealth?: (err: Error | undefined) => void;
  /** how often a failed trail is retried (default 1000 ms) */
  retryMs?: number;
}

export type AuditDurability = 'buffered' | 'strict';
export type AuditOnFailure = 'fail_closed' | 'continue';

export interface AuditWriter {
  readonly path: string;
  /** false when the line was dropped (writer behind or failed) */
  write(r: AuditRecord): boolean;
  /**
   * Strict: resolves once the line is on disk (written and fdatasync'ed); rejects with the
   * error when the trail cannot be written. Buffered: the same as `write` (resolves at once).
   */
  writeDurable(r: AuditRecord): Promise<void>;
  readonly durability: AuditDurability;
  /** the error that keeps the trail from being written, or undefined while it is writable */
  readonly failure: Error | undefined;
  /** the raw NDJSON line (with newline) for `r` */
  format(r: AuditRecord): string;
  /** resolves once the destination is open */
  readonly opened: Promise<void>;
  /** resolves when every accepted line has reached the file descriptor */
  flush(): Promise<void>;
  /** reopen the file by name (after logrotate moved it); no-op on stdout */
  reopen(): void;
  close(): Promise<void>;
  readonly dropped: number;
}

export function auditPathFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.THOUGHTGATE_AUDIT_PATH;
  return p === undefined || p === '' ? DEFAULT_AUDIT_PATH : p;
}

// Most fields (ids, method and tool names, fixed reasons) need no escaping; quoting them by
// hand skips JSON.stringify's work (profiled at ~2.6% of the proxy's samples under load).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u2028\u2029\ud800-\udfff]/;
const str = (v: string | undefined): string =>
  v === undefined || v === null ? 'null' : NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : '"' + v + '"';

// Many lines share a millisecond under load: format the timestamp once per millisecond.
let isoMs = -1;
let isoText = '';
function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

export function formatAuditLine(r: AuditRecord): string {
  const d = r.durationMs;
  return (
    '{"time":"' + isoTime(r.time ?? Date.now()) +
    '","correlation_id":' + str(r.correlationId) +
    ',"session":' + str(r.session) +
    ',"principal":' + str(r.principal) +
    ',"method":' + str(r.method) +
    ',"tool":' + str(r.tool) +
    ',"source":' + str(r.source) +
    ',"gate":' + str(r.gate) +
    ',"decision":' + str(r.decision) +
    ',"mode":' + str(r.mode) +
    ',"reason":' + str(r.reason) +
    ',"duration_ms":' + (Number.isFinite(d) ? Math.round(d * 1000) / 1000 : 'null') +
    ',"snapshot":' + str(r.snapshot) +
    (r.approvalId === undefined ? '' : ',"approval_id":' + str(r.approvalId) + ',"approver":' + str(r.approver) + ',"outcome":' + str(r.outcome)) +
    '}\n'
  );
}

/**
 * Opens the audit trail. Throws when the file cannot be created: an audit trail that
 * silently records nothing is worse than a proxy that refuses to start.
 */
export function createAuditWriter(opts: AuditOptions = {}): AuditWriter {
  const path = opts.path ?? auditPathFromEnv();
  const toStdout = path === '-';
  const durability: AuditDurability = opts.durability ?? 'buffered';
  if (durability === 'strict' && toStdout) throw new Error("strict audit durability needs a file (THOUGHTGATE_AUDIT_PATH), not '-': stdout cannot be fdatasync'ed");
  if (!toStdout) {
    // Once, at startup: later opens (reopen) are asynchronous.
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(path, 'a', 0o600)); // a new trail is the operator's to read, not every local user's
  }
  const max = opts.maxBufferBytes ?? DEFAULT_AUDIT_MAX_BUFFER_BYTES;
  const onDrop = opts.onDrop ?? ((n: number) => metrics.recordAuditDropped(n));
  const onError =
    opts.onError ?? ((err: Error) => process.stderr.write(`thoughtgate: audit trail ${path}: ${err.message}\n`));
  const onHealth = opts.onHealth ?? (() => {});
  const retryMs = opts.retryMs ?? 1000;
  return durability === 'strict'
    ? strictWriter(path, max, onDrop, onError, onHealth, retryMs)
    : bufferedWriter(path, toStdout, max, onDrop, onError, onHealth, retryMs);
}

const NEWLINE = Buffer.from('\n');

function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/** true for an empty file or one whose last byte is a newline */
function endsWithNewline(fd: number): boolean {
  const size = fstatSync(fd).size;
  if (size === 0) return true;
  const one = Buffer.alloc(1);
  readSync(fd, one, 0, 1, size - 1);
  return one[0] === 10;
}

/** Writes all of `buf` at the current end of `fd` (throws on failure). */
function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function bufferedWriter(
  path: string, toStdout: boolean, max: number, onDrop: (n: number) => void, onError: (err: Error) => void,
  onHealth: (err: Error | undefined) => void, retryMs: number,
): AuditWriter {
  // Buffer mode: each batch is encoded once here; in its utf8 mode sonic-boom measures every
  // string's byte length twice more and fs.write encodes it again (profiled at ~3% under load).
  const makeStream = () => pino.destination({ dest: toStdout ? 1 : path, sync: false, mkdir: !toStdout, minLength: 0, contentMode: 'buffer' } as Parameters<typeof pino.destination>[0]);
  let stream = makeStream();
  let pending = 0; // bytes accepted but not yet written
  let dropped = 0;
  let failed: Error | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let waiters: Array<() => void> = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  const opened = new Promise<void>((resolve, reject) => {
    stream.once('ready', () => resolve());
    stream.once('error', reject);
  });
  opened.catch(() => {}); // observed through `opened` or onError, never unhandled
  let batch = '';
  let batchScheduled = false;
  let batchTimer: NodeJS.Timeout | undefined;
  /** bytes of a failed retry that are still to be written (a torn line's rest included) */
  let carry: Buffer | null = null;
  const writeBatch = (): void => {
    if (batchScheduled) clearTimeout(batchTimer);
    batchScheduled = false;
    // while failed, lines wait in `batch` (bounded by `max`) for the retry to write them
    if (batch.length === 0 || closed || failed !== undefined) return;
    const text = batch;
    batch = '';
    const bytes = Buffer.from(text, 'utf8');
    // pending counted characters; the stream reports bytes: re-base on what is handed over
    pending += bytes.length - text.length;
    (stream as unknown as { write(b: Buffer): boolean }).write(bytes);
  };
  const attach = (s: typeof stream): void => {
    s.on('write', (n: number) => {
      if (s !== stream) return;
      pending -= n;
      if (pending <= 0) {
        pending = 0;
        wake();
      }
    });
    s.on('error', (err: Error) => {
      // pino's broken-pipe filter re-emits, so the same error can arrive twice
      if (s !== stream || failed === err) return;
      // A stream that never opened must be marked destroyed, or pino's exit hook flushes it and throws.
      const raw = s as unknown as { fd: number; destroyed: boolean };
      if (raw.fd === -1) raw.destroyed = true;
      fail(err);
    });
  };
  const fail = (err: Error): void => {
    const first = failed === undefined;
    failed = err;
    // what sonic-boom held is lost with it (the documented window); what waits in `batch` is kept
    pending = batch.length + (carry?.length ?? 0);
    if (first) {
      onError(err);
      metrics.setAuditWritable(false);
      onHealth(err);
    }
    wake(); // nothing more will drain; do not hang shutdown
    if (!toStdout && !closed && retryTimer === undefined) {
      retryTimer = setInterval(retry, retryMs);
      retryTimer.unref();
    }
  };
  // Once per retryMs while failed: write what waited, synchronously and to a fresh descriptor
  // (a few KiB at most once a second); only when all of it is written is a new stream made.
  const retry = (): void => {
    if (closed || failed === undefined) return;
    let fd = -1;
    try {
      const more = batch.length > 0 ? Buffer.from(batch, 'utf8') : null;
      batch = '';
      carry = carry === null ? more : more === null ? carry : Buffer.concat([carry, more]);
      fd = openSync(path, 'a+', 0o600);
      // sonic-boom may have written part of a line before the disk filled: end that fragment
      // so the lines that follow are whole (its rest is inside the documented loss window)
      if (!endsWithNewline(fd)) writeAllSync(fd, NEWLINE);
      while (carry !== null && carry.length > 0) {
        const n = writeSync(fd, carry, 0, carry.length);
        carry = n >= carry.length ? null : carry.subarray(n);
      }
      carry = null;
    } catch (e) {
      failed = e as Error;
      pending = carry?.length ?? 0;
      return;
    } finally {
      if (fd !== -1) closeSync(fd);
    }
    clearInterval(retryTimer);
    retryTimer = undefined;
    const old = stream;
    stream = makeStream();
    attach(stream);
    old.destroy();
    failed = undefined;
    pending = 0;
    metrics.setAuditWritable(true);
    onHealth(undefined);
  };
  attach(stream);
  metrics.setAuditWritable(true);

  return {
    path,
    opened,
    durability: 'buffered',
    format: formatAuditLine,
    get failure() {
      return failed;
    },
    get dropped() {
      return dropped;
    },
    write(r) {
      const line = formatAuditLine(r);
      // Lines are ASCII except for user-supplied names; length is exact for ASCII and the
      // byte count only bounds memory, so the cheaper measure is enough.
      const n = line.length;
      if (closed || pending + n > max) {
        dropped++;
        onDrop(1);
        return false;
      }
      pending += n;
      // Submitting a file write costs the event loop ~15-45 µs whatever its size (measured:
      // bench/profile.mjs showed per-turn writes at ~20% of the proxy's samples under load),
      // so lines are collected and written every AUDIT_FLUSH_MS or once AUDIT_BATCH_BYTES
      // are waiting. SIGTERM flushes; a kill -9 can lose at most that window.
      batch += line;
      if (batch.length >= AUDIT_BATCH_BYTES) writeBatch();
      else if (!batchScheduled) {
        batchScheduled = true;
        batchTimer = setTimeout(writeBatch, AUDIT_FLUSH_MS);
        batchTimer.unref();
      }
      return true;
    },
    writeDurable(r) {
      this.write(r);
      return Promise.resolve();
    },
    flush() {
      if (batch.length > 0) writeBatch();
      if (pending <= 0 || failed !== undefined) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    reopen() {
      if (!toStdout && !closed && failed === undefined) stream.reopen();
    },
    async close() {
      if (closed) return;
      await this.flush();
      closed = true;
      clearInterval(retryTimer);
      if (failed !== undefined) {
        const lost = (batch.length > 0 ? batch.split('\n').length - 1 : 0) + (carry === null ? 0 : countLines(carry));
        if (lost > 0) {
          dropped += lost;
          onDrop(lost);
        }
        stream.destroy();
        return;
      }
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        stream.end();
      });
    },
  };
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

function strictWriter(
  path: string, max: number, onDrop: (n: number) => void, onError: (err: Error) => void,
  onHealth: (err: Error | undefined) => void, retryMs: number,
): AuditWriter {
  let fd = openSync(path, 'a', 0o600);
  let queue = ''; // lines waiting for the next group commit
  let queued: Waiter[] = [];
  let syncing = false; // a write + fdatasync is running
  let pending = 0; // characters queued or being committed
  let dropped = 0;
  let failed: Error | undefined;
  let closed = false;
  let reopenWanted = false;
  /** bytes not written when a write failed: written first on recovery, so a torn line is completed */
  let carry: Buffer | null = null;
  let retryTimer: NodeJS.Timeout | undefined;
  let idle: Array<() => void> = [];

  const settleIdle = (): void => {
    const w = idle;
    idle = [];
    for (const f of w) f();
  };
  const fail = (err: Error, group: Waiter[]): void => {
    const first = failed === undefined;
    failed = err;
    const rest = queued;
    queued = [];
    queue = '';
    pending = 0;
    for (const w of group) w.reject(err);
    for (const w of rest) w.reject(err);
    if (first) {
      onError(err);
      metrics.setAuditWritable(false);
      onHealth(err);
    }
    settleIdle();
    if (!closed && retryTimer === undefined) {
      retryTimer = setInterval(retry, retryMs);
      retryTimer.unref();
    }
  };
  const retry = (): void => {
    if (closed || failed === undefined || syncing) return;
    try {
      while (carry !== null && carry.length > 0) {
        const n = writeSync(fd, carry, 0, carry.length);
        carry = n >= carry.length ? null : carry.subarray(n);
      }
      carry = null;
      fdatasyncSync(fd);
    } catch (e) {
      failed = e as Error;
      return;
    }
    clearInterval(retryTimer);
    retryTimer = undefined;
    failed = undefined;
    metrics.setAuditWritable(true);
    onHealth(undefined);
  };
  // One group: everything queued so far, written at the end of the file and synced once.
  const commit = (): void => {
    if (syncing || failed !== undefined) return;
    if (reopenWanted) {
      reopenWanted = false;
      try {
        const next = openSync(path, 'a', 0o600);
        closeSync(fd);
        fd = next;
      } catch (e) {
        onError(e as Error); // keep writing to the old descriptor
      }
    }
    if (queue.length === 0) {
      settleIdle();
      return;
    }
    syncing = true;
    const group = queued;
    const chars = queue.length;
    const buf = Buffer.from(queue, 'utf8');
    queued = [];
    queue = '';
    const step = (off: number): void => {
      fsWrite(fd, buf, off, buf.length - off, null, (err, n) => {
        if (err) {
          syncing = false;
          carry = buf.subarray(off);
          return fail(err, group);
        }
        if (off + n < buf.length) return step(off + n);
        fdatasync(fd, (err2) => {
          syncing = false;
          // written but not known to be on disk: the lines are in the file, so nothing to carry
          if (err2) return fail(err2, group);
          pending -= chars;
          for (const w of group) w.resolve();
          commit(); // lines that arrived meanwhile form the next group
        });
      });
    };
    step(0);
  };
  metrics.setAuditWritable(true);

  const accept = (r: AuditRecord): string | undefined => {
    const line = formatAuditLine(r);
    if (closed || failed !== undefined || pending + line.length > max) {
      dropped++;
      onDrop(1);
      return undefined;
    }
    pending += line.length;
    queue += line;
    return line;
  };

  return {
    path,
    durability: 'strict',
    opened: Promise.resolve(),
    format: formatAuditLine,
    get failure() {
      return failed;
    },
    get dropped() {
      return dropped;
    },
    write(r) {
      if (accept(r) === undefined) return false;
      if (!syncing) commit();
      return true;
    },
    writeDurable(r) {
      if (accept(r) === undefined) return Promise.reject(failed ?? new Error(closed ? 'audit trail closed' : 'audit trail is behind (buffer full)'));
      return new Promise<void>((resolve, reject) => {
        queued.push({ resolve, reject });
        if (!syncing) commit();
      });
    },
    flush() {
      if (!syncing && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
    reopen() {
      reopenWanted = true;
      if (!syncing) commit();
    },
    async close() {
      if (closed) return;
      await this.flush();
      closed = true;
      clearInterval(retryTimer);
      closeSync(fd);
    },
  };
}

/** Reopens `writer` on `signal` (log rotation); returns a function that removes the handler. */
export function reopenOnSignal(writer: AuditWriter, signal: NodeJS.Signals = 'SIGUSR2'): () => void {
  const handler = (): void => writer.reopen();
  process.on(signal, handler);
  return () => {
    process.off(signal, handler);
  };
}
