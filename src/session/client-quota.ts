// Fair shares: how many of a bounded resource (stdio sessions, open GET streams) one client may
// hold at once, so one client cannot take every slot of a global cap and lock everyone else out.
//
// Who is "a client": the caller's principal and its TCP peer address (clientKey). The sidecar has
// one principal per process today (gates/cedar/principal.ts: pod labels, service account or
// THOUGHTGATE_PRINCIPAL), so the peer address is what tells two callers apart; once callers carry
// their own identity the principal part tells them apart and the address keeps one host from
// posing as many. Forwarding headers are never used: they are the client's word.
//
// Counting only: the caller decides what a refusal answers (-32009 + retry_after, HTTP 429 for a
// GET stream) and the refusal is reported through `onRefused` for the metric.
import type { Principal } from '../core/policy-engine.js';

/** Why something was refused for capacity: the `reason` label of thoughtgate_capacity_refusals_total. */
export type CapacityReason =
  | 'stdio_sessions'
  | 'stdio_sessions_per_client'
  | 'stdio_memory'
  | 'streams_per_client'
  | 'streams_per_session';

/** The key a client's shares are counted under. */
export function clientKey(principal: Principal, peer: string): string {
  return `${principal.namespace}/${principal.id}@${peer}`;
}

/** One slot taken; release() gives it back, once, however many times it is called. */
export class Lease {
  private held = true;
  constructor(private readonly quota: ClientQuota, readonly key: string) {}

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.quota.give(this.key);
  }
}

export class ClientQuota {
  /** key → slots held; a key is dropped at zero, so the map is bounded by the slots held */
  private readonly held = new Map<string, number>();

  constructor(
    /** slots per key; past it acquire() refuses */
    readonly max: number,
    readonly reason: CapacityReason,
    private readonly onRefused: (reason: CapacityReason) => void = () => {},
  ) {}

  /** A slot for `key`, or undefined (counted as refused) when the key holds `max` already. */
  acquire(key: string): Lease | undefined {
    const n = this.held.get(key) ?? 0;
    if (n >= this.max) {
      this.onRefused(this.reason);
      return undefined;
    }
    this.held.set(key, n + 1);
    return new Lease(this, key);
  }

  /** slots `key` holds now */
  count(key: string): number {
    return this.held.get(key) ?? 0;
  }

  /** distinct keys holding a slot */
  get keys(): number {
    return this.held.size;
  }

  /** @internal Lease.release */
  give(key: string): void {
    const n = this.held.get(key) ?? 0;
    if (n <= 1) this.held.delete(key);
    else this.held.set(key, n - 1);
  }
}

/** seconds a refused GET stream is told to wait (as for the upstream stream share) */
export const STREAM_RETRY_AFTER_S = 5;

/**
 * Open GET (server → client SSE) streams: each holds an upstream connection or a child's output
 * for as long as it is open, so each client and each session gets a share.
 */
export class StreamQuota {
  readonly perClient: ClientQuota;
  readonly perSession: ClientQuota;

  constructor(maxPerClient: number, maxPerSession: number, onRefused?: (reason: CapacityReason) => void) {
    this.perClient = new ClientQuota(maxPerClient, 'streams_per_client', onRefused);
    this.perSession = new ClientQuota(maxPerSession, 'streams_per_session', onRefused);
  }

  /** Both shares for one more stream, or the share that is full (nothing is taken then). */
  admit(client: string, session: string | undefined): StreamLease | CapacityReason {
    const c = this.perClient.acquire(client);
    if (c === undefined) return 'streams_per_client';
    if (session === undefined) return new StreamLease(c, undefined);
    const s = this.perSession.acquire(session);
    if (s === undefined) {
      c.release();
      return 'streams_per_session';
    }
    return new StreamLease(c, s);
  }
}

/** A stream's shares, given back together and once. */
export class StreamLease {
  constructor(private readonly client: Lease, private readonly session: Lease | undefined) {}

  release(): void {
    this.client.release();
    this.session?.release();
  }
}
