// The embedded state store: records in memory, every change appended to a journal file and
// fdatasync'ed before the caller is told it happened, so a kill -9 at any moment loses nothing
// that was acknowledged. Writes arriving together share one write + one sync (group commit).
// A torn line (the process died mid-write, or a write failed on a full disk) is skipped on
// replay with a log line: it was never acknowledged. The journal is compacted at start and
// when it grows well past the live set.
// Nothing here holds the whole journal in one string: replay reads it in chunks and splits on
// newlines, compaction writes the live set record by record. A journal of any size restarts
// (V8 strings stop at ~512 MiB: reading a 600 MB journal into one string made restarts fail).
// Writes are completed (a short write is continued) or fail before anything is acknowledged;
// a write that cannot be completed (ENOSPC) is cut back off the journal, so later lines stay
// whole. Compaction that cannot write (full disk) is skipped: the store still opens.
// One process per directory (a lock file with its pid); replicas share state through Redis.
import { openSync, readFileSync, writeFileSync, closeSync, unlinkSync, constants } from 'node:fs';
import { link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ensurePrivateDir, isProcessAlive, syncDir } from '../../core/durable-fs.js';
import { logger } from '../../telemetry/log.js';
import type { ApprovalRecord, Grant, StateStore } from '../types.js';
import { TERMINAL_STATES } from '../types.js';

/**
 * Longest journal line replay reads; longer ones are skipped (logged). Far above any record
 * the per-record byte limit lets in (its default 4 MiB, escaped at most ~2x), and far below
 * V8's string limit, so one bad line can neither stop a restart nor drop a record that a
 * lowered THOUGHTGATE_MAX_APPROVAL_BYTES would now refuse.
 */
export const MAX_JOURNAL_LINE_BYTES = 256 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
/** compaction writes in pieces of about this size (one syscall each, never the whole journal) */
const WRITE_CHUNK = 1024 * 1024;

export interface FileStoreOptions {
  /** longest journal line read on replay (tests lower it) */
  maxLineBytes?: number;
  /** where skipped lines and skipped compactions are reported */
  warn?: (msg: string, fields: Record<string, unknown>) => void;
  /** journal bytes below which it is never compacted for its size (tests lower it) */
  compactMinBytes?: number;
}

/**
 * Every update journals the whole record (arguments and held body included), so a few big
 * records updated a few times make a big journal long before the line count says so: the
 * journal is also compacted when it has grown to 4x its size after the last compaction.
 */
const COMPACT_MIN_BYTES = 64 * 1024 * 1024;

/** Writes all of `buf` (fs writes may be short: the rest is written, or the call fails). */
export async function writeAll(fh: Pick<FileHandle, 'write'>, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) throw new Error(`short write: ${off} of ${buf.length} bytes written`);
    off += bytesWritten;
  }
}

type Line = { t: 'r'; v: ApprovalRecord } | { t: 'd'; id: string } | { t: 'g'; v: Grant } | { t: 'x'; id: string } | { t: 'n'; k: string; u: number };

const JOURNAL = 'approvals.jsonl';
const LOCK = 'lock';

export class StateDirInUseError extends Error {}

export class FileStore implements StateStore {
  readonly kind = 'file' as const;
  readonly where: string;
  private readonly records = new Map<string, ApprovalRecord>();
  private readonly grants = new Map<string, Grant>();
  /** claimed nonces → until when (journalled, so a replay after a restart is still refused) */
  private readonly nonces = new Map<string, number>();
  private readonly listeners: ((id: string) => void)[] = [];
  private fh: FileHandle | undefined;
  private queue: { text: string; done: () => void; fail: (e: Error) => void }[] = [];
  private flushing = false;
  private journalLines = 0;
  /** journal length after the last complete write: a failed write is cut back to it */
  private size = 0;
  /** a failed write could not be cut back: the next write starts on a new line */
  private tornTail = false;
  private closed = false;
  /** lines skipped on replay that were not a torn final write: the journal is kept aside */
  private damaged = 0;
  private skipsSinceGood = 0;
  private readonly maxLineBytes: number;
  private readonly compactMinBytes: number;
  /** journal size right after the last compaction (or attempt) */
  private compactedBytes = 0;
  private readonly warn: (msg: string, fields: Record<string, unknown>) => void;

  constructor(private readonly dir: string, opts: FileStoreOptions = {}) {
    this.where = join(dir, JOURNAL);
    this.maxLineBytes = opts.maxLineBytes ?? MAX_JOURNAL_LINE_BYTES;
    this.compactMinBytes = opts.compactMinBytes ?? COMPACT_MIN_BYTES;
    this.warn = opts.warn ?? ((msg, fields) => logger.warn(fields, msg));
  }

  async open(): Promise<void> {
    // held calls' arguments and results live here: this user's only, also when the directory existed
    ensurePrivateDir(this.dir);
    this.lock();
    await this.replay();
    await this.compactOrSkip();
    await this.openJournal();
    this.compactedBytes = this.size;
  }

  private async openJournal(): Promise<void> {
    this.fh = await open(this.where, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    this.size = (await this.fh.stat()).size;
    this.tornTail = false;
  }

  /** Refuses a directory another live process is using (two sidecars would lose each other's writes). */
  private lock(): void {
    const path = join(this.dir, LOCK);
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (pid !== process.pid && isProcessAlive(pid)) {
      throw new StateDirInUseError(`state directory ${this.dir} is in use by process ${pid} (one sidecar per directory; use Redis to share state between replicas)`);
    }
    writeFileSync(path, String(process.pid), { mode: 0o600 }); // stale lock of a dead process
  }

  /** Reads the journal in chunks, one line at a time; bad or oversized lines are skipped (logged). */
  private async replay(): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(this.where, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    try {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let parts: Buffer[] = [];
      let partBytes = 0;
      let oversized = false;
      let lineNo = 0;
      const endLine = (): void => {
        lineNo++;
        if (oversized) {
          this.warn('approvals journal: line over the length limit skipped', { path: this.where, line: lineNo, limit_bytes: this.maxLineBytes });
          this.damaged++;
        } else if (partBytes > 0) {
          this.applyText(Buffer.concat(parts, partBytes).toString('utf8'), lineNo);
        }
        parts = [];
        partBytes = 0;
        oversized = false;
      };
      const take = (piece: Buffer): void => {
        if (oversized || piece.length === 0) return;
        if (partBytes + piece.length > this.maxLineBytes) {
          oversized = true; // drop what we have; skip to the next newline
          parts = [];
          partBytes = 0;
          return;
        }
        parts.push(Buffer.from(piece)); // a copy: `buf` is reused by the next read
        partBytes += piece.length;
      };
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        let from = 0;
        for (;;) {
          const nl = buf.indexOf(10, from);
          if (nl === -1 || nl >= bytesRead) break;
          take(buf.subarray(from, nl));
          endLine();
          from = nl + 1;
        }
        take(buf.subarray(from, bytesRead));
      }
      if (partBytes > 0 || oversized) endLine(); // a last line without its newline: torn, or whole
    } finally {
      await fh.close();
    }
  }

  private applyText(raw: string, lineNo: number): void {
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      // A write cut short (kill -9, full disk): never acknowledged. Logged, never fatal.
      this.warn('approvals journal: torn or corrupt line skipped', { path: this.where, line: lineNo, bytes: Buffer.byteLength(raw) });
      this.skipsSinceGood++;
      return;
    }
    if (line === null || typeof line !== 'object') {
      this.warn('approvals journal: line that is not a record skipped', { path: this.where, line: lineNo });
      this.skipsSinceGood++;
      return;
    }
    // A bad line followed by good ones was not a torn final write: count it as damage.
    this.damaged += this.skipsSinceGood;
    this.skipsSinceGood = 0;
    this.apply(line);
  }

  private apply(line: Line): void {
    switch (line.t) {
      case 'r': this.records.set(line.v.id, line.v); break;
      case 'd': this.records.delete(line.id); break;
      case 'g': this.grants.set(line.v.id, line.v); break;
      case 'x': this.grants.delete(line.id); break;
      case 'n': this.nonces.set(line.k, line.u); break;
    }
  }

  /**
   * Rewrites the journal as just the live set, record by record: temp file, fdatasync, rename,
   * fsync the directory. When it cannot (full disk), the old journal stays as it is and is
   * used as it is: compaction only saves space, it is never needed to start.
   */
  private async compactOrSkip(): Promise<boolean> {
    this.dropLapsedNonces(Date.now());
    const tmp = join(this.dir, `.${JOURNAL}.${process.pid}-${randomUUID().slice(0, 8)}.tmp`);
    let out: FileHandle | undefined;
    try {
      out = await open(tmp, 'wx', 0o600);
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const put = async (line: Line): Promise<void> => {
        const b = Buffer.from(JSON.stringify(line) + '\n', 'utf8');
        pending.push(b);
        pendingBytes += b.length;
        if (pendingBytes >= WRITE_CHUNK) {
          await writeAll(out!, Buffer.concat(pending, pendingBytes));
          pending = [];
          pendingBytes = 0;
        }
      };
      for (const v of this.records.values()) await put({ t: 'r', v });
      for (const v of this.grants.values()) await put({ t: 'g', v });
      for (const [k, u] of this.nonces) await put({ t: 'n', k, u });
      if (pendingBytes > 0) await writeAll(out, Buffer.concat(pending, pendingBytes));
      await out.datasync();
      await out.close();
      out = undefined;
      if (this.damaged > 0) {
        // Lines were skipped mid-journal: keep the journal as it was (a hard link, no space)
        // for whoever wants to look, rather than compacting them away unseen.
        const aside = `${this.where}.damaged-${Date.now()}`;
        try {
          await link(this.where, aside);
          this.warn('approvals journal: skipped lines; the journal as it was is kept', { path: aside, lines: this.damaged });
        } catch { /* no link (filesystem, or gone): the log lines above are what is left */ }
        this.damaged = 0;
      }
      await rename(tmp, this.where);
      syncDir(this.dir);
      this.journalLines = this.records.size + this.grants.size + this.nonces.size;
      return true;
    } catch (e) {
      await out?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      this.warn('approvals journal: compaction skipped (the journal is kept as it is)', { path: this.where, err: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
      return false;
    }
  }

  private append(line: Line): Promise<void> {
    if (this.closed || this.fh === undefined) return Promise.reject(new Error('state store is closed'));
    return new Promise((done, fail) => {
      this.queue.push({ text: JSON.stringify(line) + '\n', done, fail });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        let text = this.tornTail ? '\n' : ''; // a fragment left by a failed write ends here, as its own (skipped) line
        for (const w of batch) text += w.text;
        const buf = Buffer.from(text, 'utf8');
        await writeAll(this.fh!, buf);
        await this.fh!.datasync();
        this.size += buf.length;
        this.tornTail = false;
        this.journalLines += batch.length;
        for (const w of batch) w.done();
      } catch (e) {
        // Nothing of this batch is acknowledged. Cut off what part of it reached the file, so
        // the next write does not continue a torn line (which would make that line unreadable).
        try {
          await this.fh!.truncate(this.size);
        } catch {
          this.tornTail = true;
        }
        for (const w of batch) w.fail(e as Error);
      }
      const manyLines = this.journalLines > 1000 && this.journalLines > 4 * (this.records.size + this.grants.size + this.nonces.size);
      const manyBytes = this.size > this.compactMinBytes && this.size > 4 * this.compactedBytes;
      if (manyLines || manyBytes) await this.compact();
    }
    this.flushing = false;
  }

  private async compact(): Promise<void> {
    await this.fh!.close();
    let done = false;
    try {
      done = await this.compactOrSkip();
    } finally {
      await this.openJournal();
    }
    // Skipped (full disk): try again after as many lines again, not after every write.
    if (!done) this.journalLines = Math.floor(this.journalLines / 2);
    this.compactedBytes = this.size;
  }

  private changed(id: string): void {
    for (const l of this.listeners) l(id);
  }

  async create(rec: ApprovalRecord, maxActive: number, maxActiveBytes?: number): Promise<boolean> {
    let active = 0;
    let bytes = 0;
    for (const r of this.records.values()) {
      if (TERMINAL_STATES.has(r.state)) continue;
      active++;
      bytes += r.bytes ?? 0;
    }
    if (active >= maxActive) return false;
    if (maxActiveBytes !== undefined && !TERMINAL_STATES.has(rec.state) && bytes + (rec.bytes ?? 0) > maxActiveBytes) return false;
    this.records.set(rec.id, rec);
    try {
      await this.append({ t: 'r', v: rec });
    } catch (e) {
      // not durable, so not created: nobody may see (or count) it
      if (this.records.get(rec.id) === rec) this.records.delete(rec.id);
      throw e;
    }
    this.changed(rec.id);
    return true;
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    return this.records.get(id);
  }

  async list(): Promise<ApprovalRecord[]> {
    return [...this.records.values()];
  }

  async update(id: string, fn: (rec: ApprovalRecord) => ApprovalRecord | undefined): Promise<{ rec: ApprovalRecord | undefined; changed: boolean }> {
    const cur = this.records.get(id);
    if (cur === undefined) return { rec: undefined, changed: false };
    const next = fn(cur);
    if (next === undefined) return { rec: cur, changed: false };
    // Applied in memory at once (so a second update sees it: first decision wins), durable before we answer.
    this.records.set(id, next);
    try {
      await this.append({ t: 'r', v: next });
    } catch (e) {
      if (this.records.get(id) === next) this.records.set(id, cur); // not durable: as it was
      throw e;
    }
    this.changed(id);
    return { rec: next, changed: true };
  }

  async delete(id: string): Promise<void> {
    const cur = this.records.get(id);
    if (cur === undefined) return;
    this.records.delete(id);
    try {
      await this.append({ t: 'd', id });
    } catch (e) {
      if (!this.records.has(id)) this.records.set(id, cur); // still in the journal: still here
      throw e;
    }
    this.changed(id);
  }

  async putGrant(g: Grant): Promise<void> {
    const before = this.grants.get(g.id);
    this.grants.set(g.id, g);
    try {
      await this.append({ t: 'g', v: g });
    } catch (e) {
      // not durable: a standing approval nobody was told about must not let calls through
      if (this.grants.get(g.id) === g) {
        if (before === undefined) this.grants.delete(g.id);
        else this.grants.set(g.id, before);
      }
      throw e;
    }
  }

  async listGrants(): Promise<Grant[]> {
    return [...this.grants.values()];
  }

  async deleteGrant(id: string): Promise<boolean> {
    if (!this.grants.delete(id)) return false;
    await this.append({ t: 'x', id });
    return true;
  }

  async claimOnce(key: string, untilMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.nonces.size > 1000) this.dropLapsedNonces(now);
    const held = this.nonces.get(key);
    if (held !== undefined && held > now) return false;
    // Claimed in memory first (a concurrent second claim loses at once), durable before we answer.
    this.nonces.set(key, untilMs);
    await this.append({ t: 'n', k: key, u: untilMs });
    return true;
  }

  private dropLapsedNonces(now: number): void {
    for (const [k, u] of this.nonces) if (u <= now) this.nonces.delete(k);
  }

  subscribe(listener: (id: string) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
    await this.fh?.close();
    try {
      if (readFileSync(join(this.dir, LOCK), 'utf8').trim() === String(process.pid)) unlinkSync(join(this.dir, LOCK));
    } catch { /* already gone */ }
  }
}
