// Crash-safe custody of an agent's config while it is wrapped: a lock so two runs never edit
// one file, a backup and a marker written before the first change, and a restore that puts
// the original bytes back — or, when someone edited the file meanwhile, reverts only our
// entries and keeps their edits. Everything is synchronous so an exit path (signal handler,
// `process.on('exit')`) can run it to completion without the event loop.

import { createHash, randomUUID } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  realpathSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { applyPatch, structuredPatch } from 'diff';
import { findNodeAtLocation, getNodeValue } from 'jsonc-parser';
import type { Node } from 'jsonc-parser';
import { ConfigParseError, HEADER_UPSTREAM, parseConfigText, serverEntryPaths } from './rewrite.js';
import { ENV_SERVER_ID } from './protocol.js';
import { isProcessAlive, syncDir, writeFileAtomic } from '../core/durable-fs.js';

// wrap's tests and callers know these from here
export { isProcessAlive, writeFileAtomic };

export const LOCK_SUFFIX = '.thoughtgate-lock';
export const BACKUP_SUFFIX = '.thoughtgate-backup';
export const MARKER_SUFFIX = '.thoughtgate-marker';

/** A lock or marker younger than this with unreadable content is being written, not abandoned. */
const FRESH_MS = 10_000;
/** Slack between a process's recorded start and the kernel's, before a pid counts as reused. */

export interface SidePaths {
  /** the file itself, symlinks resolved (we replace the target, never the link) */
  config: string;
  lock: string;
  backup: string;
  marker: string;
}

export interface Lock {
  path: string;
  configPath: string;
  /** deletes the lock file (only if it is still ours) */
  release(): void;
}

export interface Marker {
  version: 1;
  pid: number;
  host: string;
  config: string;
  backup: string;
  /** sha256 of the bytes we wrote: the file still equals them when nobody edited it */
  rewrittenSha256: string;
  createdAt: string;
  /** the original file mode, given back on restore */
  mode: number;
  /** the server entries we rewrote, and a hash of what we wrote there */
  entries: { path: string[]; rewrittenSha256: string }[];
  /** what we wrote (the run's token included, hence mode 0600): lets restore replay someone's edits onto the original bytes */
  rewrittenText?: string;
}

export interface RestoreResult {
  restored: boolean;
  userEdited: boolean;
  warnings: string[];
}

export interface RestoreOptions {
  /** keep edits made to other keys while wrapped (default true); false puts the backup back as is */
  keepUserEdits?: boolean;
  /** restore even though the run that wrote the marker still seems to be alive */
  force?: boolean;
}

interface LockInfo {
  pid: number;
  started: string;
  host?: string;
  nonce?: string;
}

export class LockedError extends Error {
  readonly code = 'TG_LOCKED';
  constructor(
    readonly file: string,
    readonly pid: number | undefined,
    readonly lockPath: string,
    readonly host?: string,
  ) {
    const who = pid === undefined ? 'another thoughtgate wrap' : `another thoughtgate wrap (pid ${pid}${host && host !== hostname() ? ` on ${host}` : ''})`;
    super(
      `${who} is managing ${file}; wait for it to exit. ` +
        `If no such run exists, delete ${lockPath} and run \`thoughtgate restore --config-path ${file}\`.`,
    );
    this.name = 'LockedError';
  }
}

/** A backup from an earlier run that does not match the file now: never overwrite the only original. */
export class BackupExistsError extends Error {
  readonly code = 'TG_BACKUP_EXISTS';
  constructor(
    readonly file: string,
    readonly backupPath: string,
  ) {
    super(
      `${backupPath} from an earlier run is still there, so ${file} may not be the original. ` +
        `Run \`thoughtgate restore --config-path ${file}\` first.`,
    );
    this.name = 'BackupExistsError';
  }
}

/** The file changed between reading it and backing it up; plans made from the old text are void. */
export class ConfigChangedError extends Error {
  readonly code = 'TG_CONFIG_CHANGED';
  constructor(readonly file: string) {
    super(`${file} changed while thoughtgate was preparing to rewrite it; nothing was written. Run again.`);
    this.name = 'ConfigChangedError';
  }
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The real file behind a path (links followed), and the side files kept next to it. */
export function sidePaths(configPath: string): SidePaths {
  let config: string;
  try {
    config = realpathSync(configPath);
  } catch {
    // the file itself is gone (deleted while wrapped): its directory may still be a link
    const abs = resolve(configPath);
    let dir = dirname(abs);
    try {
      dir = realpathSync(dir);
    } catch {
      /* keep the lexical path */
    }
    config = join(dir, basename(abs));
  }
  return { config, lock: config + LOCK_SUFFIX, backup: config + BACKUP_SUFFIX, marker: config + MARKER_SUFFIX };
}

function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function unlinkIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Lock

/** Locks this process holds, so restore() inside a wrap does not fight its own lock. */
const heldLocks = new Set<string>();

function parseLockInfo(raw: Buffer): LockInfo | undefined {
  try {
    const v = JSON.parse(raw.toString('utf8')) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.started === 'string') return v as LockInfo;
  } catch {
    /* fall through */
  }
  return undefined;
}

function holderAlive(info: LockInfo): boolean {
  // a pid on another machine (shared home over NFS) cannot be checked: assume it runs
  if (info.host && info.host !== hostname()) return true;
  return isProcessAlive(info.pid, Date.parse(info.started));
}

/**
 * Removes the stale lock whose content was `staleRaw`, unless someone else already did.
 * A claim file named after that exact content serialises the racers: only its creator may
 * delete the lock, and only after re-reading that the lock still holds the stale content —
 * so a slow racer can never delete the fresh lock of the one that won.
 */
function removeStaleLock(lockPath: string, staleRaw: Buffer): void {
  const claim = `${lockPath}.takeover-${sha256(staleRaw).slice(0, 16)}`;
  let fd: number;
  try {
    fd = openSync(claim, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // someone else is taking it over right now; or died while doing so (then clear the claim)
    const info = parseLockInfo(readIfExists(claim) ?? Buffer.alloc(0));
    if (info ? !holderAlive(info) : ageMs(claim) > FRESH_MS) unlinkIfExists(claim);
    else sleepSync(5); // let the claimant finish rather than spin through our attempts
    return;
  }
  try {
    writeFileSync(fd, JSON.stringify({ pid: process.pid, started: new Date().toISOString(), host: hostname() }));
    closeSync(fd);
    const now = readIfExists(lockPath);
    if (now && now.equals(staleRaw)) unlinkSync(lockPath);
  } finally {
    unlinkIfExists(claim);
  }
}

/**
 * Takes `<config>.thoughtgate-lock` (created with O_EXCL, holding {pid, started}). A lock held
 * by a live process → LockedError; a lock whose process is gone is taken over.
 */
export function acquireLock(configPath: string): Lock {
  const paths = sidePaths(configPath);
  const mine: LockInfo = { pid: process.pid, started: new Date().toISOString(), host: hostname(), nonce: randomUUID() };
  const content = Buffer.from(JSON.stringify(mine) + '\n');
  for (let attempt = 0; attempt < 20; attempt++) {
    let fd: number;
    try {
      fd = openSync(paths.lock, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const raw = readIfExists(paths.lock);
      if (raw === undefined) continue; // released between our open and read
      const holder = parseLockInfo(raw);
      if (holder === undefined) {
        // created but not yet written by its owner — or abandoned in that instant long ago
        if (ageMs(paths.lock) < FRESH_MS) throw new LockedError(paths.config, undefined, paths.lock);
      } else if (holderAlive(holder)) {
        throw new LockedError(paths.config, holder.pid, paths.lock, holder.host);
      }
      removeStaleLock(paths.lock, raw);
      continue;
    }
    try {
      writeFileSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    heldLocks.add(paths.lock);
    return {
      path: paths.lock,
      configPath: paths.config,
      release() {
        heldLocks.delete(paths.lock);
        const now = readIfExists(paths.lock);
        // never delete a lock that is no longer ours
        if (now && now.equals(content)) unlinkIfExists(paths.lock);
      },
    };
  }
  throw new LockedError(paths.config, undefined, paths.lock);
}

// ---------------------------------------------------------------------------------------------
// Backup and marker

/** The server entries `rewritten` changed relative to `original`, with a hash of the new value. */
function rewrittenEntries(original: string, rewritten: string, file: string): Marker['entries'] {
  const before = parseConfigText(original, file).root;
  const after = parseConfigText(rewritten, file).root;
  const entries: Marker['entries'] = [];
  for (const path of serverEntryPaths(after)) {
    const was = findNodeAtLocation(before, path);
    const now = findNodeAtLocation(after, path)!;
    if (!was) continue;
    const nowJson = JSON.stringify(getNodeValue(now));
    if (JSON.stringify(getNodeValue(was)) !== nowJson) entries.push({ path, rewrittenSha256: sha256(nowJson) });
  }
  return entries;
}

/**
 * Before the first change: `<config>.thoughtgate-backup` (the original bytes, read back and
 * compared) and `<config>.thoughtgate-marker`, then the config replaced — each atomically.
 * The caller holds the lock. Refuses when the file is no longer `originalBytes` or an earlier
 * run's backup would be overwritten.
 */
export function writeBackup(configPath: string, originalBytes: Uint8Array, rewrittenText: string): { backupPath: string; markerPath: string } {
  const paths = sidePaths(configPath);
  const original = Buffer.from(originalBytes);
  if (readIfExists(paths.marker) !== undefined) throw new BackupExistsError(paths.config, paths.backup);
  const oldBackup = readIfExists(paths.backup);
  // a backup without a marker is left by a crash before the marker: harmless if it is this original
  if (oldBackup !== undefined && !oldBackup.equals(original)) throw new BackupExistsError(paths.config, paths.backup);
  const current = readFileSync(paths.config);
  if (!current.equals(original)) throw new ConfigChangedError(paths.config);
  const mode = statSync(paths.config).mode & 0o7777;
  const rewritten = Buffer.from(rewrittenText, 'utf8');
  const entries = rewrittenEntries(original.toString('utf8'), rewrittenText, paths.config);

  writeFileAtomic(paths.backup, original, mode);
  if (!readFileSync(paths.backup).equals(original)) {
    unlinkIfExists(paths.backup);
    throw new Error(`the backup ${paths.backup} did not read back identical; ${paths.config} was not changed`);
  }
  const marker: Marker = {
    version: 1,
    pid: process.pid,
    host: hostname(),
    config: paths.config,
    backup: paths.backup,
    rewrittenSha256: sha256(rewritten),
    createdAt: new Date().toISOString(),
    mode,
    entries,
    rewrittenText,
  };
  writeFileAtomic(paths.marker, Buffer.from(JSON.stringify(marker, null, 2) + '\n'), 0o600);
  // The rewritten file holds the run's governance token: owner-only while wrapped (the
  // marker keeps the original mode, which restore gives back).
  writeFileAtomic(paths.config, rewritten, 0o600);
  return { backupPath: paths.backup, markerPath: paths.marker };
}

/** The marker of a run that rewrote this file; undefined when there is none. Throws if it is corrupt. */
export function readMarker(configPath: string): Marker | undefined {
  const paths = sidePaths(configPath);
  const raw = readIfExists(paths.marker);
  if (raw === undefined) return undefined;
  try {
    const m = JSON.parse(raw.toString('utf8')) as Marker;
    if (typeof m.pid === 'number' && typeof m.rewrittenSha256 === 'string' && Array.isArray(m.entries)) return m;
  } catch {
    /* fall through */
  }
  throw new Error(`${paths.marker} is corrupt; the original config is in ${paths.backup}: copy it over ${paths.config} by hand`);
}

/** Whether the run that wrote the marker still runs (one on another machine is assumed to). */
function markerRunAlive(marker: Marker): boolean {
  if (marker.host && marker.host !== hostname()) return true;
  return isProcessAlive(marker.pid, Date.parse(marker.createdAt));
}

/** A rewrite whose run is gone (crash, kill -9): the next wrap or `thoughtgate restore` must restore it first. */
export function findStale(configPath: string): boolean {
  let marker: Marker | undefined;
  try {
    marker = readMarker(configPath);
  } catch {
    return true; // corrupt: restore() explains what to do
  }
  return marker !== undefined && !markerRunAlive(marker);
}

// ---------------------------------------------------------------------------------------------
// Restore

/**
 * Puts the original config back. Untouched since the rewrite → the backup's exact bytes.
 * Edited meanwhile (by the user or the agent) → the current text with each entry we rewrote
 * replaced by its original text, other edits kept, and a warning saying so. Unparseable now →
 * left alone, backup kept, and a warning naming it. Takes the lock unless this process holds it.
 */
export function restore(configPath: string, opts: RestoreOptions = {}): RestoreResult {
  const paths = sidePaths(configPath);
  const lock = heldLocks.has(paths.lock) ? undefined : acquireLock(paths.config);
  try {
    return restoreLocked(paths, opts);
  } finally {
    lock?.release();
  }
}

function finish(paths: SidePaths): void {
  // marker first: a crash in between leaves a backup that restore recognises as already applied
  unlinkIfExists(paths.marker);
  unlinkIfExists(paths.backup);
  syncDir(dirname(paths.config));
}

function restoreLocked(paths: SidePaths, opts: RestoreOptions): RestoreResult {
  const marker = readMarker(paths.config);
  if (!marker) return orphanBackup(paths);
  if (!opts.force && marker.pid !== process.pid && markerRunAlive(marker)) {
    throw new LockedError(paths.config, marker.pid, paths.lock, marker.host);
  }
  const backup = readIfExists(paths.backup);
  if (backup === undefined) {
    unlinkIfExists(paths.marker);
    return {
      restored: false,
      userEdited: false,
      warnings: [`the backup ${paths.backup} is missing, so ${paths.config} could not be restored; remove thoughtgate's entries from it by hand`],
    };
  }
  const mode = typeof marker.mode === 'number' ? marker.mode : 0o600;
  const current = readIfExists(paths.config);
  if (current === undefined) {
    writeFileAtomic(paths.config, backup, mode);
    finish(paths);
    return { restored: true, userEdited: true, warnings: [`${paths.config} was deleted while wrapped; the original was put back`] };
  }
  if (current.equals(backup) || sha256(current) === marker.rewrittenSha256) {
    if (!current.equals(backup)) writeFileAtomic(paths.config, backup, mode);
    finish(paths);
    return { restored: true, userEdited: false, warnings: [] };
  }
  if (opts.keepUserEdits === false) {
    writeFileAtomic(paths.config, backup, mode);
    finish(paths);
    return { restored: true, userEdited: true, warnings: [`${paths.config} was changed while wrapped; those changes were discarded and the original put back`] };
  }
  return mergeBack(paths, marker, backup, current, mode);
}

/** The user's current text with only our entries put back to their original text. */
function mergeBack(paths: SidePaths, marker: Marker, backup: Buffer, current: Buffer, mode: number): RestoreResult {
  let cur: { root: Node; bom: string; body: string };
  try {
    cur = parseConfigText(current.toString('utf8'), paths.config);
  } catch (e) {
    if (!(e instanceof ConfigParseError)) throw e;
    return {
      restored: false,
      userEdited: true,
      warnings: [
        `${paths.config} was changed while wrapped and no longer parses (line ${e.line}, column ${e.column}: ${e.problem}); it was left as is. ` +
          `The original is in ${paths.backup}: fix the file or copy the backup over it, then run \`thoughtgate restore --config-path ${paths.config}\`.`,
      ],
    };
  }
  const orig = parseConfigText(backup.toString('utf8'), paths.backup);
  const warnings: string[] = [];
  const reverted: string[] = [];
  const editedOurs: string[] = [];
  const splices: { offset: number; length: number; text: string }[] = [];
  for (const entry of marker.entries) {
    const id = entry.path[entry.path.length - 1]!;
    const was = findNodeAtLocation(orig.root, entry.path);
    if (!was) continue;
    const now = findNodeAtLocation(cur.root, entry.path);
    if (!now) {
      warnings.push(`server '${id}' was removed from ${paths.config} while wrapped; it was not put back`);
      continue;
    }
    if (sha256(JSON.stringify(getNodeValue(now))) !== entry.rewrittenSha256) editedOurs.push(id);
    // the original entry's own text, comments and layout included
    splices.push({ offset: now.offset, length: now.length, text: orig.body.slice(was.offset, was.offset + was.length) });
    reverted.push(id);
  }
  let body = cur.body;
  for (const s of splices.sort((a, b) => b.offset - a.offset)) body = body.slice(0, s.offset) + s.text + body.slice(s.offset + s.length);
  let merged = Buffer.from(cur.bom + body, 'utf8');
  let mergedRoot = parseConfigText(merged.toString('utf8'), paths.config).root; // must still parse

  // Better still: the edits replayed onto the original bytes, which keeps even the layout our
  // rewrite changed around the entries — used only when it means exactly the same as the splice.
  const replayed = marker.rewrittenText === undefined ? undefined : replayEdits(backup.toString('utf8'), marker.rewrittenText, current.toString('utf8'));
  if (replayed !== undefined) {
    try {
      const root = parseConfigText(replayed, paths.config).root;
      if (JSON.stringify(getNodeValue(root)) === JSON.stringify(getNodeValue(mergedRoot))) {
        merged = Buffer.from(replayed, 'utf8');
        mergedRoot = root;
      }
    } catch {
      /* keep the splice */
    }
  }

  if (merged.equals(backup)) {
    // only our entries differed (e.g. the agent rewrote the file with the same layout)
    writeFileAtomic(paths.config, backup, mode);
    finish(paths);
    return { restored: true, userEdited: false, warnings };
  }
  writeFileAtomic(paths.config, merged, mode);
  finish(paths);
  warnings.unshift(
    `${paths.config} was changed while wrapped: the original entries of ${reverted.map((r) => `'${r}'`).join(', ') || 'no servers'} were put back and the other changes kept`,
  );
  if (editedOurs.length > 0) {
    warnings.push(`the wrapped entries of ${editedOurs.map((r) => `'${r}'`).join(', ')} had been edited while wrapped; those edits were replaced by the originals`);
  }
  for (const leftover of stillWrapped(mergedRoot)) {
    warnings.push(`server '${leftover}' in ${paths.config} still runs through thoughtgate (it was added while wrapped); edit it by hand`);
  }
  return { restored: true, userEdited: true, warnings };
}

/** The changes from `rewritten` to `current` applied to `original`; undefined when they do not apply cleanly. */
function replayEdits(original: string, rewritten: string, current: string): string | undefined {
  const patch = structuredPatch('rewritten', 'current', rewritten, current, undefined, undefined, { context: 3 });
  const out = applyPatch(original, patch, { fuzzFactor: 0, autoConvertLineEndings: false });
  return out === false ? undefined : out;
}

/** Entries that still carry our rewrite, e.g. copied by the agent under a new name. */
function stillWrapped(root: Node): string[] {
  const ids: string[] = [];
  for (const path of serverEntryPaths(root)) {
    const v = getNodeValue(findNodeAtLocation(root, path)!) as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null) continue;
    const envs = [v.env, (v.command as Record<string, unknown> | undefined)?.env];
    const headers = v.headers;
    const marked =
      envs.some((e) => typeof e === 'object' && e !== null && ENV_SERVER_ID in e) ||
      (typeof headers === 'object' && headers !== null && Object.keys(headers).some((h) => h.toLowerCase() === HEADER_UPSTREAM));
    if (marked) ids.push(path[path.length - 1]!);
  }
  return ids;
}

/** No marker: a backup may remain from a crash before the marker was written, or after restore finished writing. */
function orphanBackup(paths: SidePaths): RestoreResult {
  const backup = readIfExists(paths.backup);
  if (backup === undefined) return { restored: false, userEdited: false, warnings: [] };
  const current = readIfExists(paths.config);
  if (current && current.equals(backup)) {
    unlinkIfExists(paths.backup);
    return { restored: false, userEdited: false, warnings: [] };
  }
  return {
    restored: false,
    userEdited: false,
    warnings: [`${paths.backup} is left from an interrupted run but ${paths.config} differs from it; both were left as they are — compare them and delete the backup`],
  };
}
