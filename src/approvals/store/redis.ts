// The shared state store: approval records in Redis, so every replica sees the same records and
// "first decision wins" holds across processes. Writes are Lua scripts (atomic on the server):
// create checks the cap and inserts in one step; update is an optimistic compare-and-set (read,
// apply the pure `fn`, write only if the record still hashes to what was read; retry otherwise).
// Not WATCH/MULTI: WATCH belongs to a connection, and this store shares one connection between
// concurrent calls, so one call's EXEC would clear another's WATCH and let both writers through.
// Every write publishes the record id on `<prefix>:changes`; a second connection subscribes and
// calls the listeners, for this process's own writes too (once per change: the echo only).
// After the subscriber reconnects, every record is announced once (changes meanwhile were lost).
//
// Durability is the operator's: a write is acknowledged once Redis has it in memory. Run Redis
// with `appendonly yes` (and `appendfsync everysec` or `always`) so that approvals survive a
// Redis restart; the embedded FileStore is the choice when that is not wanted.
//
// Keys: <prefix>:rec:<id> (record JSON), <prefix>:active (set of non-terminal ids, for the cap),
// <prefix>:all (set of every id, for list), <prefix>:bytes (hash active id → its `bytes`, for
// the byte budget; records of older versions have none and count 0), <prefix>:grants (hash id → grant JSON),
// <prefix>:replica:<id> (heartbeat, expires after its ttl), <prefix>:nonce:<sha256> (a used
// signed callback, expires when its window closes).
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ApprovalRecord, Grant, StateStore } from '../types.js';
import { TERMINAL_STATES } from '../types.js';

export interface RedisStoreOptions {
  /** key and channel prefix; replicas sharing state use the same one (default `thoughtgate`) */
  prefix?: string;
  /** heartbeat ttl when `heartbeat` is called without one (default 30 s) */
  heartbeatTtlMs?: number;
}

/** How often `update` re-reads after losing a race before it gives up. */
const MAX_CAS_ATTEMPTS = 50;
/** At startup, fail instead of retrying forever: the operator should hear that Redis is unreachable. */
const CONNECT_TIMEOUT_MS = 5000;
/** How many reconnects a command waits through before it fails (the caller logs and retries later). */
const MAX_RETRIES_PER_REQUEST = 2;
const MGET_CHUNK = 500;

// KEYS: rec, active, all, bytes. ARGV: id, json, maxActive (-1 = no cap), '1' when the record is
// active, channel, the record's bytes, maxActiveBytes (-1 = no budget).
// -1 = id taken, 0 = full, 1 = created.
const CREATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local cap = tonumber(ARGV[3])
if cap >= 0 and redis.call('SCARD', KEYS[2]) >= cap then return 0 end
local budget = tonumber(ARGV[7])
if budget >= 0 and ARGV[4] == '1' then
  local total = tonumber(ARGV[6])
  for _, v in ipairs(redis.call('HVALS', KEYS[4])) do total = total + tonumber(v) end
  if total > budget then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[6])
end
redis.call('PUBLISH', ARGV[5], ARGV[1])
return 1`;

// KEYS: rec, active, bytes. ARGV: sha1 of the value read, new json, '1' when active, id, channel.
// 0 = the record changed (or vanished) since it was read, 1 = written.
const CAS_LUA = `
local cur = redis.call('GET', KEYS[1])
if not cur or redis.sha1hex(cur) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == '1' then redis.call('SADD', KEYS[2], ARGV[4]) else
  redis.call('SREM', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[3], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1`;

// KEYS: rec, active, all, bytes. ARGV: id, channel. Returns how many records were deleted (0 or 1).
const DELETE_LUA = `
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
if n == 1 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return n`;

/** The scripts, registered with `defineCommand` (EVALSHA, falling back to EVAL once). */
interface Scripts {
  tgCreate(rec: string, active: string, all: string, bytesKey: string, id: string, json: string, cap: string, isActive: string, channel: string, bytes: string, budget: string): Promise<number>;
  tgCas(rec: string, active: string, bytesKey: string, sha: string, json: string, isActive: string, id: string, channel: string): Promise<number>;
  tgDelete(rec: string, active: string, all: string, bytesKey: string, id: string, channel: string): Promise<number>;
}

/** The URL as logs may show it: any password replaced by `***`. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol.startsWith('redis') && u.password !== '') {
      u.password = '***';
      return u.href;
    }
    if (u.protocol.startsWith('redis')) return url;
  } catch { /* not a URL: fall through to the pattern */ }
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly where: string;
  private readonly prefix: string;
  private readonly heartbeatTtlMs: number;
  private readonly channel: string;
  private readonly listeners: ((id: string) => void)[] = [];
  private client: (Redis & Scripts) | undefined;
  private subscriber: Redis | undefined;
  /** once connected, reconnect forever (Redis restarts); before that, fail open() at once */
  private connectedOnce = false;
  private lastError: Error | undefined;
  private closed = false;

  constructor(private readonly url: string, opts: RedisStoreOptions = {}) {
    this.where = redactRedisUrl(url);
    this.prefix = opts.prefix ?? 'thoughtgate';
    this.heartbeatTtlMs = opts.heartbeatTtlMs ?? 30_000;
    this.channel = `${this.prefix}:changes`;
  }

  private recKey(id: string): string { return `${this.prefix}:rec:${id}`; }
  private get activeKey(): string { return `${this.prefix}:active`; }
  private get allKey(): string { return `${this.prefix}:all`; }
  private get bytesKey(): string { return `${this.prefix}:bytes`; }
  private get grantsKey(): string { return `${this.prefix}:grants`; }
  private replicaKey(replica: string): string { return `${this.prefix}:replica:${replica}`; }
  private nonceKey(key: string): string { return `${this.prefix}:nonce:${createHash('sha256').update(key).digest('hex')}`; }

  async open(): Promise<void> {
    const client = new Redis(this.url, {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
      retryStrategy: (times) => (this.connectedOnce && !this.closed ? Math.min(times * 200, 2000) : null),
    });
    // Without a listener ioredis prints every connection error; callers see failures as rejected commands.
    client.on('error', (e: Error) => { this.lastError = e; });
    client.defineCommand('tgCreate', { numberOfKeys: 4, lua: CREATE_LUA });
    client.defineCommand('tgCas', { numberOfKeys: 3, lua: CAS_LUA });
    client.defineCommand('tgDelete', { numberOfKeys: 4, lua: DELETE_LUA });
    this.client = client as Redis & Scripts;
    const subscriber = client.duplicate();
    subscriber.on('error', (e: Error) => { this.lastError = e; });
    subscriber.on('message', (channel: string, id: string) => {
      if (channel === this.channel) this.notify(id);
    });
    let readies = 0;
    subscriber.on('ready', () => {
      if (readies++ > 0) void this.resync(subscriber); // a reconnect, not the first connect
    });
    this.subscriber = subscriber;
    try {
      await client.connect();
      await subscriber.connect();
      await subscriber.subscribe(this.channel);
      this.connectedOnce = true;
    } catch (e) {
      client.disconnect();
      subscriber.disconnect();
      const why = this.lastError?.message ?? (e as Error).message;
      throw new Error(`cannot connect to Redis at ${this.where}: ${why}`);
    }
  }

  private notify(id: string): void {
    if (this.closed) return;
    for (const l of this.listeners) {
      try { l(id); } catch { /* one listener's failure must not starve the others (or ioredis's parser) */ }
    }
  }

  /**
   * Pub/sub delivers at most once: what changed while the subscriber was reconnecting was never
   * announced. Once it listens again, announce every record, so listeners re-read and catch up.
   */
  private async resync(subscriber: Redis): Promise<void> {
    try {
      await subscriber.ping(); // answered after ioredis's automatic re-SUBSCRIBE: from here on nothing is missed
      const ids = await this.redis.smembers(this.allKey);
      for (const id of ids) this.notify(id);
    } catch { /* disconnected again (or closed): the next reconnect tries again */ }
  }

  private get redis(): Redis & Scripts {
    if (this.client === undefined || this.closed) throw new Error('state store is closed');
    return this.client;
  }

  async create(rec: ApprovalRecord, maxActive: number, maxActiveBytes?: number): Promise<boolean> {
    const cap = Number.isFinite(maxActive) ? String(Math.max(0, Math.floor(maxActive))) : '-1';
    const budget = maxActiveBytes !== undefined && Number.isFinite(maxActiveBytes) ? String(Math.max(0, Math.floor(maxActiveBytes))) : '-1';
    const r = await this.redis.tgCreate(this.recKey(rec.id), this.activeKey, this.allKey, this.bytesKey, rec.id, JSON.stringify(rec), cap, isActive(rec), this.channel, String(Math.max(0, Math.floor(rec.bytes ?? 0))), budget);
    if (r === -1) throw new Error(`approval ${rec.id} already exists`);
    return r === 1;
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const raw = await this.redis.get(this.recKey(id));
    return raw === null ? undefined : (JSON.parse(raw) as ApprovalRecord);
  }

  async list(): Promise<ApprovalRecord[]> {
    const ids = await this.redis.smembers(this.allKey);
    const out: ApprovalRecord[] = [];
    for (let i = 0; i < ids.length; i += MGET_CHUNK) {
      const raws = await this.redis.mget(ids.slice(i, i + MGET_CHUNK).map((id) => this.recKey(id)));
      for (const raw of raws) if (raw !== null) out.push(JSON.parse(raw) as ApprovalRecord); // deleted since SMEMBERS
    }
    return out;
  }

  async update(id: string, fn: (rec: ApprovalRecord) => ApprovalRecord | undefined): Promise<{ rec: ApprovalRecord | undefined; changed: boolean }> {
    const redis = this.redis;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const raw = await redis.getBuffer(this.recKey(id));
      if (raw === null) return { rec: undefined, changed: false };
      const cur = JSON.parse(raw.toString('utf8')) as ApprovalRecord;
      const next = fn(cur);
      if (next === undefined) return { rec: cur, changed: false };
      if (next.id !== id) throw new Error(`update of ${id} returned a record with id ${next.id}`);
      const sha = createHash('sha1').update(raw).digest('hex');
      if ((await redis.tgCas(this.recKey(id), this.activeKey, this.bytesKey, sha, JSON.stringify(next), isActive(next), id, this.channel)) === 1) {
        return { rec: next, changed: true };
      }
      // Someone else wrote in between: back off a little (jittered, so racers spread out) and re-read.
      await new Promise((r) => setTimeout(r, Math.random() * 5 * Math.min(attempt + 1, 10)));
    }
    throw new Error(`approval ${id}: gave up after ${MAX_CAS_ATTEMPTS} conflicting concurrent updates`);
  }

  async delete(id: string): Promise<void> {
    await this.redis.tgDelete(this.recKey(id), this.activeKey, this.allKey, this.bytesKey, id, this.channel);
  }

  async putGrant(g: Grant): Promise<void> {
    await this.redis.hset(this.grantsKey, g.id, JSON.stringify(g));
  }

  async listGrants(): Promise<Grant[]> {
    return (await this.redis.hvals(this.grantsKey)).map((raw) => JSON.parse(raw) as Grant);
  }

  async deleteGrant(id: string): Promise<boolean> {
    return (await this.redis.hdel(this.grantsKey, id)) > 0;
  }

  async claimOnce(key: string, untilMs: number): Promise<boolean> {
    // SET NX PX: one atomic claim on the server, expiring by itself when its window closes.
    const ttl = Math.max(1, Math.ceil(untilMs - Date.now()));
    return (await this.redis.set(this.nonceKey(key), '1', 'PX', ttl, 'NX')) === 'OK';
  }

  subscribe(listener: (id: string) => void): void {
    this.listeners.push(listener);
  }

  async heartbeat(replica: string, ttlMs: number = this.heartbeatTtlMs): Promise<void> {
    await this.redis.set(this.replicaKey(replica), String(Date.now()), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async isAlive(replica: string): Promise<boolean> {
    return (await this.redis.exists(this.replicaKey(replica))) === 1;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const conn of [this.subscriber, this.client]) {
      if (conn === undefined) continue;
      try {
        await conn.quit();
      } catch {
        conn.disconnect(); // not connected (any more): nothing to say goodbye to
      }
    }
  }
}

function isActive(rec: ApprovalRecord): '1' | '0' {
  return TERMINAL_STATES.has(rec.state) ? '0' : '1';
}
