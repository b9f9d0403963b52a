// Batches (2025-03-26 sessions): denied and invalid elements are answered in place, the rest
// forwarded as one smaller batch, and the upstream's answers (JSON array or SSE events) merged
// back in the client's order. A batch answer is bounded by the batch size, so it is collected.
// Elements held for a person's approval are answered when decided; until then the head and
// leading-whitespace keep-alives go out (valid JSON), so the client is not left in silence.
import { isUtf8 } from 'node:buffer';
import { GovError, errorResponse } from '../core/errors.js';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { jsonDepthOver } from '../framing/depth.js';
import { SseParser } from '../framing/sse.js';
import { reportInternal } from '../transport/contain.js';
import type { Exchange } from '../transport/http-server.js';
import type { HeaderMap, ResponseSink } from '../upstream/types.js';
import type { RelayContext } from './relay.js';

const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json' };
const MAX_BATCH_ANSWER_BYTES = 64 * 1024 * 1024;
const KEEPALIVE_MS = 15_000;

export class BatchCollector implements ResponseSink {
  /** per element: its final answer text, or the id we wait for from the upstream */
  private readonly answers: (string | undefined)[];
  private readonly waiting = new Map<string, number>();
  private readonly extra: string[] = [];
  private ex: Exchange | null = null;
  private ctx: RelayContext | null = null;
  private chunks: Buffer[] = [];
  private size = 0;
  private status = 0;
  private sse = false;
  /** elements waiting for a person's decision */
  private holding = 0;
  /** the forwarded part is complete; the answer goes out once nothing is held */
  private ready: { err: GovError | undefined } | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private sent = false;
  resume?: () => void;
  abort?: () => void;

  constructor(length: number) {
    this.answers = new Array(length);
  }

  answer(index: number, text: string): void {
    this.answers[index] = text;
  }

  expect(index: number, id: unknown): void {
    this.waiting.set(JSON.stringify(id), index);
  }

  /** Element `index` waits for an approval; `fill` answers it. */
  hold(_index: number): void {
    this.holding++;
  }

  fill(index: number, text: string): void {
    if (this.answers[index] !== undefined || this.sent) return;
    this.answers[index] = text;
    this.holding--;
    if (this.holding === 0 && this.ready !== undefined) this.send(this.ready.err);
  }

  bind(ex: Exchange, ctx: RelayContext): void {
    this.ex = ex;
    this.ctx = ctx;
    ex.onAbort = () => {
      this.stopKeepalive();
      this.abort?.();
    };
    this.startKeepalive();
  }

  private startKeepalive(): void {
    if (this.holding === 0 || this.keepalive !== undefined) return;
    const ex = this.ex!;
    ex.writeHead(200, JSON_HEADERS);
    ex.write(' ');
    this.keepalive = setInterval(() => ex.write(' '), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  private stopKeepalive(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  onHead(status: number, headers: HeaderMap): void {
    this.status = status;
    this.ctx!.onUpstreamHead?.(status, headers);
    this.sse = (headers['content-type'] ?? '').toLowerCase().startsWith('text/event-stream');
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > MAX_BATCH_ANSWER_BYTES) {
      this.abort?.();
      this.onError(new GovError('upstream_error', { subject: 'batch answer too large', details: `over ${MAX_BATCH_ANSWER_BYTES} bytes` }));
      return true;
    }
    this.chunks.push(chunk);
    return true;
  }

  onEnd(): void {
    // Called from upstream code, where nothing would catch: contained (transport/contain.ts).
    try {
      this.collected();
    } catch (e) {
      this.internal(e);
    }
  }

  private collected(): void {
    if (this.sent) return;
    const bytes = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    // A batch answer is parsed, filtered and re-serialised, never relayed as the upstream's
    // bytes; invalid UTF-8 would decode to U+FFFD, so it is refused instead.
    if (!isUtf8(bytes)) {
      this.failForwarded(new GovError('upstream_error', { subject: 'invalid batch answer', details: `Upstream error code: ${this.status}; answer is not valid UTF-8` }));
      return;
    }
    const text = bytes.toString('utf8');
    const messages: unknown[] = [];
    const maxDepth = this.ctx!.maxDepth ?? DEFAULT_LIMITS.maxDepth;
    // Depth first: place() filters and re-serialises, which recurses (a 100,000-deep answer
    // would overflow the stack); such an answer is refused, never relayed unfiltered.
    const parse = (t: string): unknown => {
      if (jsonDepthOver(t, maxDepth)) throw new Error(`answer nested deeper than ${maxDepth} levels`);
      return JSON.parse(t);
    };
    try {
      if (this.sse) {
        const parser = new SseParser((ev) => { if (ev.data.length > 0) messages.push(parse(ev.data)); }, MAX_BATCH_ANSWER_BYTES, (why) => { throw new Error(why); });
        parser.push(text);
        parser.end();
      } else if (text.trim().length > 0) {
        const parsed = parse(text);
        if (Array.isArray(parsed)) messages.push(...parsed);
        else messages.push(parsed);
      }
    } catch (e) {
      const why = e instanceof SyntaxError ? 'batch answer is not JSON' : (e as Error).message;
      this.failForwarded(new GovError('upstream_error', { subject: 'invalid batch answer', details: `Upstream error code: ${this.status}; ${why}` }));
      return;
    }
    for (const m of messages) this.place(m);
    this.failForwarded(new GovError('upstream_error', { subject: 'no answer', details: `Upstream error code: ${this.status}; no answer for this element` }));
  }

  onError(err: GovError): void {
    try {
      this.failForwarded(err);
    } catch (e) {
      this.internal(e);
    }
  }

  /** An exception nobody expected: every forwarded element is answered -32603; logged with its stack. */
  private internal(e: unknown): void {
    const correlationId = this.ctx?.correlationId ?? '';
    reportInternal(e, correlationId, 'batch');
    try {
      this.abort?.();
      // Whatever place() filled in may be half-done: forwarded elements get the error instead.
      this.extra.length = 0;
      this.failForwarded(new GovError('internal_error', { subject: correlationId }));
    } catch (again) {
      reportInternal(again, correlationId, 'batch (while answering an internal error)');
      if (this.ex !== null && !this.ex.finished) this.ex.close();
    }
  }

  /** Sends what we have (used directly when nothing needed forwarding). */
  finish(ex: Exchange, ctx: RelayContext): void {
    this.bind(ex, ctx);
    this.send(undefined);
  }

  private place(m: unknown): void {
    const id = (m as { id?: unknown } | null)?.id;
    const replaced = this.ctx!.inspect(m);
    const text = replaced ?? JSON.stringify(m);
    const key = id === undefined ? undefined : JSON.stringify(id);
    const index = key === undefined ? undefined : this.waiting.get(key);
    if (index === undefined) {
      this.extra.push(text);
      return;
    }
    this.waiting.delete(key!);
    this.answers[index] = text;
  }

  /** Every forwarded element still without an answer gets `err`; then the batch is sent. */
  private failForwarded(err: GovError): void {
    for (const [key, index] of this.waiting) {
      this.answers[index] = errorResponse(JSON.parse(key), err, this.ctx!.correlationId);
    }
    this.waiting.clear();
    this.send(err);
  }

  private send(err: GovError | undefined): void {
    if (this.holding > 0) {
      this.ready = { err };
      return;
    }
    if (this.sent) return;
    this.sent = true;
    const parts: string[] = [];
    for (const a of this.answers) if (a !== undefined) parts.push(a);
    for (const e of this.extra) parts.push(e);
    if (this.keepalive !== undefined) {
      this.stopKeepalive();
      this.ex!.end(`[${parts.join(',')}]`);
    } else if (parts.length === 0) this.ex!.respond(202, null, '');
    else this.ex!.respond(200, JSON_HEADERS, `[${parts.join(',')}]`);
    this.ctx!.onDone(200, err);
  }
}
