// The embedded state store: records in memory, every change appended to a journal file and
// fdatasync'ed before the caller is told it happened, so a kill -9 at any moment loses nothing
// that was acknowledged. Writes arriving together share one write + one sync (group commit).
// A torn last line (the process died mid-write) is ignored on replay: it was never
// acknowledged. The journal is compacted at start and when it grows well past the live set.
// One process per directory (a lock file with its pid); replicas share state through Redis.
import { openSync, readFileSync, writeFileSync, closeSync, unlinkSync, constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateDir, isProcessAlive, writeFileAtomic } from '../../core/durable-fs.js';
import type { ApprovalRecord, Grant, StateStore } from '../types.js';
import { TERMINAL_STATES } from '../types.js';

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
  private closed = false;

  constructor(private readonly dir: string) {
    this.where = join(dir, JOURNAL);
  }

  async open(): Promise<void> {
    // held calls' arguments and results live here: this user's only, also when the directory existed
    ensurePrivateDir(this.dir);
    this.lock();
    this.replay();
    this.compactSync();
    this.fh = await open(this.where, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
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

  private replay(): void {
    let text: string;
    try {
      text = readFileSync(this.where, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!;
      if (raw === '') continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        if (i === lines.length - 1) break; // torn final write: never acknowledged
        throw new Error(`${this.where}:${i + 1}: corrupt journal line (not JSON); move the file away to start empty`);
      }
      this.apply(line);
    }
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

  /** Rewrites the journal as just the live set: temp file, fsync, rename, fsync the directory. */
  private compactSync(): void {
    let text = '';
    for (const v of this.records.values()) text += JSON.stringify({ t: 'r', v }) + '\n';
    for (const v of this.grants.values()) text += JSON.stringify({ t: 'g', v }) + '\n';
    this.dropLapsedNonces(Date.now());
    for (const [k, u] of this.nonces) text += JSON.stringify({ t: 'n', k, u }) + '\n';
    writeFileAtomic(this.where, Buffer.from(text, 'utf8'), 0o600);
    this.journalLines = this.records.size + this.grants.size + this.nonces.size;
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
        let text = '';
        for (const w of batch) text += w.text;
        await this.fh!.write(text);
        await this.fh!.datasync();
        this.journalLines += batch.length;
        for (const w of batch) w.done();
      } catch (e) {
        for (const w of batch) w.fail(e as Error);
      }
      if (this.journalLines > 1000 && this.journalLines > 4 * (this.records.size + this.grants.size + this.nonces.size)) await this.compact();
    }
    this.flushing = false;
  }

  private async compact(): Promise<void> {
    await this.fh!.close();
    this.compactSync();
    this.fh = await open(this.where, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
  }

  private changed(id: string): void {
    for (const l of this.listeners) l(id);
  }

  async create(rec: ApprovalRecord, maxActive: number): Promise<boolean> {
    let active = 0;
    for (const r of this.records.values()) if (!TERMINAL_STATES.has(r.state)) active++;
    if (active >= maxActive) return false;
    this.records.set(rec.id, rec);
    await this.append({ t: 'r', v: rec });
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
    await this.append({ t: 'r', v: next });
    this.changed(id);
    return { rec: next, changed: true };
  }

  async delete(id: string): Promise<void> {
    if (!this.records.delete(id)) return;
    await this.append({ t: 'd', id });
    this.changed(id);
  }

  async putGrant(g: Grant): Promise<void> {
    this.grants.set(g.id, g);
    await this.append({ t: 'g', v: g });
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
