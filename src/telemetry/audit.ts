// The audit trail: one NDJSON line per decision, appended without blocking the event loop.
// Writes go through sonic-boom (pino.destination, async fs.write); lines are built by string
// concatenation like pino does. If the disk falls behind by more than `maxBufferBytes`,
// new lines are dropped and counted (thoughtgate_audit_dropped_total) so memory stays bounded.

import { Buffer } from 'node:buffer';
import { closeSync, mkdirSync, openSync } from 'node:fs';
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
}

export interface AuditWriter {
  readonly path: string;
  /** false when the line was dropped (writer behind or failed) */
  write(r: AuditRecord): boolean;
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
  if (!toStdout) {
    // Once, at startup: later opens (reopen) are asynchronous.
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(path, 'a', 0o600)); // a new trail is the operator's to read, not every local user's
  }
  const max = opts.maxBufferBytes ?? DEFAULT_AUDIT_MAX_BUFFER_BYTES;
  const onDrop = opts.onDrop ?? ((n: number) => metrics.recordAuditDropped(n));
  const onError =
    opts.onError ?? ((err: Error) => process.stderr.write(`thoughtgate: audit trail ${path}: ${err.message}\n`));

  // Buffer mode: each batch is encoded once here; in its utf8 mode sonic-boom measures every
  // string's byte length twice more and fs.write encodes it again (profiled at ~3% under load).
  const stream = pino.destination({ dest: toStdout ? 1 : path, sync: false, mkdir: !toStdout, minLength: 0, contentMode: 'buffer' } as Parameters<typeof pino.destination>[0]);
  let pending = 0; // bytes accepted but not yet written
  let dropped = 0;
  let failed: Error | undefined;
  let closed = false;
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
  const writeBatch = (): void => {
    if (batchScheduled) clearTimeout(batchTimer);
    batchScheduled = false;
    if (batch.length === 0 || closed) return;
    const text = batch;
    batch = '';
    const bytes = Buffer.from(text, 'utf8');
    // pending counted characters; the stream reports bytes: re-base on what is handed over
    pending += bytes.length - text.length;
    (stream as unknown as { write(b: Buffer): boolean }).write(bytes);
  };
  stream.on('write', (n: number) => {
    pending -= n;
    if (pending <= 0) {
      pending = 0;
      wake();
    }
  });
  stream.on('error', (err: Error) => {
    // pino's broken-pipe filter re-emits, so the same error can arrive twice
    if (failed === err) return;
    failed = err;
    // A stream that never opened must be marked destroyed, or pino's exit hook flushes it and throws.
    const raw = stream as unknown as { fd: number; destroyed: boolean };
    if (raw.fd === -1) raw.destroyed = true;
    onError(err);
    wake(); // nothing more will drain; do not hang shutdown
  });

  return {
    path,
    opened,
    format: formatAuditLine,
    get dropped() {
      return dropped;
    },
    write(r) {
      const line = formatAuditLine(r);
      // Lines are ASCII except for user-supplied names; length is exact for ASCII and the
      // byte count only bounds memory, so the cheaper measure is enough.
      const n = line.length;
      if (closed || failed !== undefined || pending + n > max) {
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
      if (failed !== undefined) {
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

/** Reopens `writer` on `signal` (log rotation); returns a function that removes the handler. */
export function reopenOnSignal(writer: AuditWriter, signal: NodeJS.Signals = 'SIGUSR2'): () => void {
  const handler = (): void => writer.reopen();
  process.on(signal, handler);
  return () => {
    process.off(signal, handler);
  };
}
