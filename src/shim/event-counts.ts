// Message and framing-error counts for the governance service's stdio metrics, reported in
// batches (about once a second) so counting never waits on the network, and flushed at exit.
import type { EventsReport } from '../wrap/protocol.js';

export type Direction = 'inbound' | 'outbound';
type Report = Omit<EventsReport, 'serverId'>;

/** Distinct method names kept per batch; a peer inventing method names cannot grow memory. */
const MAX_KEYS = 256;
/** Method names longer than this are reported as 'other' (metric labels stay sane). */
const MAX_METHOD_CHARS = 128;

export class EventCounts {
  private messages = new Map<string, number>();
  private framing = new Map<string, number>();

  message(direction: Direction, method: string): void {
    const m = method.length <= MAX_METHOD_CHARS ? method : 'other';
    bump(this.messages, direction === 'inbound' ? `i${m}` : `o${m}`);
  }

  framingError(direction: Direction, errorType: string): void {
    bump(this.framing, direction === 'inbound' ? `i${errorType}` : `o${errorType}`);
  }

  get isEmpty(): boolean {
    return this.messages.size === 0 && this.framing.size === 0;
  }

  /** The counts so far as a report, and a fresh start. */
  take(): Report {
    const report: Report = { messages: [], framing: [] };
    for (const [k, count] of this.messages) report.messages.push({ direction: dir(k), method: k.slice(1), count });
    for (const [k, count] of this.framing) report.framing.push({ direction: dir(k), errorType: k.slice(1), count });
    this.messages = new Map();
    this.framing = new Map();
    return report;
  }

  /** Puts back a report that could not be delivered, so the next one carries it. */
  restore(report: Report): void {
    for (const m of report.messages) bump(this.messages, (m.direction === 'inbound' ? 'i' : 'o') + m.method, m.count);
    for (const f of report.framing) bump(this.framing, (f.direction === 'inbound' ? 'i' : 'o') + f.errorType, f.count);
  }
}

const dir = (k: string): Direction => (k.charCodeAt(0) === 0x69 /* i */ ? 'inbound' : 'outbound');

function bump(map: Map<string, number>, key: string, by = 1): void {
  const n = map.get(key);
  if (n !== undefined) map.set(key, n + by);
  else if (map.size < MAX_KEYS) map.set(key, by);
  else {
    const other = key[0] + 'other';
    map.set(other, (map.get(other) ?? 0) + by);
  }
}
