// Incremental Server-Sent Events parser (WHATWG HTML "event stream interpretation") that
// keeps each event's exact source text, so an event the proxy does not change is relayed
// byte for byte. It splits on bytes (CR and LF never occur inside a UTF-8 sequence) and
// decodes whole events only, so a chunk may end anywhere, even inside a character.

import { isUtf8 } from 'node:buffer';
import { GovError } from '../core/errors.js';

export interface SseEvent {
  /** the `event` field, if the event has one */
  event?: string;
  /** data lines joined by LF; '' when there are none */
  data: string;
  /** this event's own `id` field (the spec's last-event-ID carry-over is the caller's) */
  id?: string;
  retry?: number;
  /** exact source text, including the line ending(s) that ended it */
  raw: string;
  /**
   * Set on units that carry no event: a comment line seen between events (keep-alives),
   * or a blank line with no fields before it. Relay `raw`; there is nothing to inspect.
   */
  comment?: true;
}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

/** What is being discarded after an oversize unit. */
const Drop = { None: 0, ToLineEnd: 1 /* a standalone comment line */, ToBlankLine: 2 /* an event */ } as const;
type Drop = (typeof Drop)[keyof typeof Drop];

/**
 * Feeds `onEvent` one SseEvent per event, in order. The concatenated `raw` of everything
 * delivered is the input minus a leading BOM, minus oversize units and an unterminated
 * tail at `end()` (which the spec also discards). A unit larger than `maxEventBytes` is
 * dropped without buffering the rest of it, and reported via `onError` (thrown from
 * `push` when no `onError` is given); so is a unit that is not valid UTF-8.
 *
 * Comments after an event's first field stay inside that event's `raw`; a CR at the very
 * end of a chunk is held until the next byte shows whether it is half of a CRLF.
 */
export class SseParser {
  private head: Buffer | undefined = Buffer.alloc(0); // first bytes, until the BOM check
  private parts: Buffer[] = []; // the current unit's bytes from earlier chunks
  private held = 0;
  private lineLen = 0;
  private lineFirst = -1;
  private hasFields = false;
  private pendingCR = false;
  private drop: Drop = Drop.None;

  constructor(
    private readonly onEvent: (ev: SseEvent) => void,
    private readonly maxEventBytes: number,
    /** told why, e.g. to fail the stream; without it push() throws a GovError */
    private readonly onError?: (why: string) => void,
  ) {}

  push(chunk: Buffer | string): void {
    let buf: Buffer | undefined = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (this.head !== undefined) {
      buf = this.stripBom(buf);
      if (buf === undefined) return;
    }
    this.process(buf);
  }

  end(): void {
    if (this.head !== undefined && this.head.length > 0) {
      const h = this.head;
      this.head = undefined;
      this.process(h);
    }
    if (this.pendingCR) {
      this.pendingCR = false;
      this.lineEnd(Buffer.alloc(0), 0, 0);
    }
    this.parts = [];
    this.held = 0;
    this.lineLen = 0;
    this.lineFirst = -1;
    this.hasFields = false;
    this.drop = Drop.None;
  }

  private stripBom(buf: Buffer): Buffer | undefined {
    const all = this.head!.length > 0 ? Buffer.concat([this.head!, buf]) : buf;
    const isBom = all[0] === 0xef && (all.length < 2 || all[1] === 0xbb) && (all.length < 3 || all[2] === 0xbf);
    if (all.length < 3 && (all.length === 0 || isBom)) {
      this.head = all; // could still become a BOM
      return undefined;
    }
    this.head = undefined;
    return isBom ? all.subarray(3) : all;
  }

  private process(buf: Buffer): void {
    let pos = 0;
    let unitStart = 0; // where the current unit's bytes begin in `buf`
    if (this.pendingCR) {
      if (buf.length === 0) return;
      this.pendingCR = false;
      pos = buf[0] === LF ? 1 : 0;
      unitStart = this.lineEnd(buf, 0, pos);
    }
    let nextLF = buf.indexOf(LF, pos);
    let nextCR = buf.indexOf(CR, pos);
    while (pos < buf.length) {
      if (nextLF !== -1 && nextLF < pos) nextLF = buf.indexOf(LF, pos);
      if (nextCR !== -1 && nextCR < pos) nextCR = buf.indexOf(CR, pos);
      const t = nextCR === -1 ? nextLF : nextLF === -1 ? nextCR : Math.min(nextLF, nextCR);
      const contentEnd = t === -1 ? buf.length : t;
      if (contentEnd > pos) {
        if (this.lineFirst === -1) this.lineFirst = buf[pos]!;
        this.lineLen += contentEnd - pos;
      }
      if (t === -1) break;
      let end: number;
      if (buf[t] === CR) {
        if (t + 1 === buf.length) {
          this.pendingCR = true;
          break;
        }
        end = buf[t + 1] === LF ? t + 2 : t + 1;
      } else end = t + 1;
      unitStart = this.lineEnd(buf, unitStart, end);
      pos = end;
    }
    if (this.drop !== Drop.None || unitStart >= buf.length) return;
    const tail = buf.length - unitStart;
    if (this.held + tail > this.maxEventBytes) {
      this.drop = !this.hasFields && this.lineFirst === COLON ? Drop.ToLineEnd : Drop.ToBlankLine;
      this.parts = [];
      this.held = 0;
      this.oversize();
      return;
    }
    this.parts.push(unitStart === 0 ? buf : buf.subarray(unitStart));
    this.held += tail;
  }

  /** A line ended at `end` (exclusive, after its terminator). Returns the new unit start. */
  private lineEnd(buf: Buffer, unitStart: number, end: number): number {
    const empty = this.lineLen === 0;
    const first = this.lineFirst;
    this.lineLen = 0;
    this.lineFirst = -1;
    if (this.drop !== Drop.None) {
      if (this.drop === Drop.ToLineEnd || empty) {
        this.drop = Drop.None;
        this.hasFields = false;
      }
      return end;
    }
    if (empty) {
      const isEvent = this.hasFields;
      this.hasFields = false;
      this.deliver(buf, unitStart, end, isEvent);
      return end;
    }
    if (first === COLON && !this.hasFields) {
      this.deliver(buf, unitStart, end, false);
      return end;
    }
    this.hasFields = true;
    return unitStart;
  }

  private deliver(buf: Buffer, unitStart: number, end: number, isEvent: boolean): void {
    const size = this.held + (end - unitStart);
    const parts = this.parts;
    this.parts = [];
    this.held = 0;
    if (size > this.maxEventBytes) return this.oversize();
    const own = buf.subarray(unitStart, end);
    const bytes = parts.length === 0 ? own : Buffer.concat([...parts, own], size);
    // Invalid UTF-8 is refused, never relayed: decoding would silently turn it into U+FFFD,
    // so the client would get neither the upstream's bytes nor an error. (isUtf8 is simdutf:
    // cheap beside the decode that follows.)
    if (!isUtf8(bytes)) return this.problem('SSE event is not valid UTF-8');
    const raw = bytes.toString('utf8');
    this.onEvent(isEvent ? parseEvent(raw) : { data: '', raw, comment: true });
  }

  private oversize(): void {
    this.problem(`SSE event exceeds ${this.maxEventBytes} bytes`);
  }

  private problem(why: string): void {
    if (this.onError === undefined) throw new GovError('upstream_error', { details: why });
    this.onError(why);
  }
}

/** Field interpretation of one complete event's text. */
function parseEvent(raw: string): SseEvent {
  const ev: SseEvent = { data: '', raw };
  let data: string[] | undefined;
  for (const line of raw.split(/\r\n|\r|\n/)) {
    if (line === '' || line.charCodeAt(0) === COLON) continue;
    const c = line.indexOf(':');
    const name = c === -1 ? line : line.slice(0, c);
    const value = c === -1 ? '' : line.slice(line.charCodeAt(c + 1) === 0x20 ? c + 2 : c + 1);
    switch (name) {
      case 'data':
        (data ??= []).push(value);
        break;
      case 'event':
        ev.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) ev.id = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) ev.retry = Number(value);
        break;
    }
  }
  if (data !== undefined) ev.data = data.join('\n');
  return ev;
}

/** Serialises one event; multi-line data becomes several `data:` lines. */
export function formatSseEvent(ev: { event?: string; data: string; id?: string }): string {
  let out = '';
  // A line break in event or id would smuggle extra fields into the stream.
  if (ev.event !== undefined) out += `event: ${singleLine(ev.event, 'event')}\n`;
  if (ev.id !== undefined) {
    if (ev.id.includes('\0')) throw new GovError('internal_error', { details: 'SSE id must not contain NUL' });
    out += `id: ${singleLine(ev.id, 'id')}\n`;
  }
  for (const line of ev.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return out + '\n';
}

function singleLine(v: string, field: string): string {
  if (/[\r\n]/.test(v)) throw new GovError('internal_error', { details: `SSE ${field} must not contain a line break` });
  return v;
}
