// One writer per direction keeps the stream's order while some messages wait for an answer
// from the governance service: a message still being judged (or filtered) holds back the
// messages after it, so nothing overtakes a call that will be forwarded; a message taken out
// of the stream (answered by the shim, or held for a person) frees its place at once, so one
// pending approval never blocks anything else. Messages that need no answer — almost all —
// are written straight through when nothing waits ahead of them.
import type { Writable } from 'node:stream';

const LF = Buffer.from('\n');

/** A place in the stream reserved for a message whose fate is not known yet. */
export class Slot {
  /** the line once ready; null while pending or when skipped */
  line: Buffer | string | null = null;
  pending = true;
  next: Slot | null = null;
}

export interface OrderedWriterEvents {
  /** the sink's buffer is full: stop reading the source that feeds it */
  onFull(): void;
  /** the sink drained: the source may be read again */
  onDrain(): void;
}

export class OrderedWriter {
  private head: Slot | null = null;
  private tail: Slot | null = null;
  private full = false;
  private closed = false;
  private settledWaiters: (() => void)[] = [];

  constructor(
    private readonly sink: Writable,
    private readonly events: OrderedWriterEvents,
  ) {
    sink.on('drain', () => this.onSinkDrain());
  }

  /** Lines waiting behind a pending slot (for tests and diagnostics). */
  get waiting(): number {
    let n = 0;
    for (let s = this.head; s !== null; s = s.next) n++;
    return n;
  }

  /** Writes `line` (no trailing newline) now, or after every slot reserved before it. */
  push(line: Buffer | string): void {
    if (this.closed) return;
    if (this.head === null) {
      this.write(line);
      return;
    }
    const s = new Slot();
    s.line = line;
    s.pending = false;
    this.append(s);
  }

  /** Reserves the next place in the stream for a message being judged. */
  reserve(): Slot {
    const s = new Slot();
    if (!this.closed) this.append(s);
    return s;
  }

  /** The reserved message goes out, in its place. */
  fill(slot: Slot, line: Buffer | string): void {
    slot.line = line;
    slot.pending = false;
    this.flush();
  }

  /** The reserved message does not go out (answered or held elsewhere). */
  skip(slot: Slot): void {
    slot.pending = false;
    this.flush();
  }

  /** Resolves once no reserved slot is pending (everything accepted so far is written or dropped). */
  settled(): Promise<void> {
    if (this.head === null) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Nothing more is written (the other side is gone or is being ended); pending slots are dropped. */
  close(): void {
    this.closed = true;
    this.head = this.tail = null;
    this.wakeSettled();
  }

  /** True while some slot is still waiting for its answer. */
  get hasPending(): boolean {
    return this.head !== null;
  }

  private append(s: Slot): void {
    if (this.tail === null) this.head = this.tail = s;
    else this.tail = this.tail.next = s;
  }

  private flush(): void {
    let s = this.head;
    while (s !== null && !s.pending) {
      if (s.line !== null) this.write(s.line);
      s = s.next;
    }
    this.head = s;
    if (s === null) {
      this.tail = null;
      this.wakeSettled();
    }
  }

  private write(line: Buffer | string): void {
    if (this.closed) return;
    // cork/uncork in one tick: the line and its newline leave in one writev, without a copy.
    this.sink.cork();
    this.sink.write(line);
    const ok = this.sink.write(LF);
    this.sink.uncork();
    if (!ok && !this.full) {
      this.full = true;
      this.events.onFull();
    }
  }

  private onSinkDrain(): void {
    if (!this.full) return;
    this.full = false;
    this.events.onDrain();
  }

  private wakeSettled(): void {
    if (this.settledWaiters.length === 0) return;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const w of waiters) w();
  }
}
