// Collects the upstream's answer to an approved call, so it can be kept (task result) or
// written to a client that has been waiting: the JSON-RPC response with the request's id,
// whether the upstream answered with JSON or SSE. Bounded: a bigger answer is an error,
// never a partial result.
import { GovError } from '../core/errors.js';
import { SseParser } from '../framing/sse.js';
import type { HeaderMap, ResponseSink } from '../upstream/types.js';
import type { Outcome } from './types.js';

export class CaptureSink implements ResponseSink {
  private status = 0;
  private sse = false;
  private chunks: Buffer[] = [];
  private size = 0;
  private found: Outcome | undefined;
  private parser: SseParser | undefined;
  private settled = false;
  resume?: () => void;
  abort?: () => void;

  constructor(
    private readonly requestId: unknown,
    private readonly maxBytes: number,
    private readonly done: (outcome: Outcome) => void,
  ) {}

  onHead(status: number, headers: HeaderMap): void {
    this.status = status;
    this.sse = (headers['content-type'] ?? '').toLowerCase().startsWith('text/event-stream');
    if (this.sse) {
      this.parser = new SseParser((ev) => {
        if (ev.data !== '') this.consider(ev.data);
      }, this.maxBytes, (why) => this.fail(new GovError('upstream_error', { subject: `invalid SSE stream: ${why}` })));
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return true;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      this.abort?.();
      this.fail(new GovError('upstream_error', { subject: `answer larger than ${this.maxBytes} bytes cannot be held for an approved call` }));
      return true;
    }
    if (this.parser !== undefined) this.parser.push(chunk);
    else this.chunks.push(chunk);
    return true;
  }

  onEnd(): void {
    if (this.settled) return;
    if (this.parser !== undefined) this.parser.end();
    else if (this.chunks.length > 0) this.consider(Buffer.concat(this.chunks).toString('utf8'));
    if (this.found !== undefined) return this.finish(this.found);
    this.fail(new GovError('upstream_error', { subject: this.status >= 400 ? `HTTP ${this.status} with no JSON-RPC answer` : 'the upstream sent no answer to the approved call' }));
  }

  onError(err: GovError): void {
    this.fail(err);
  }

  /** A JSON text from the upstream: keep it if it is the response to our request. */
  private consider(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return;
    const m = msg as { id?: unknown; result?: unknown; error?: Outcome['error'] };
    if (m.id !== this.requestId || (m.result === undefined && m.error === undefined)) return;
    this.found = m.error !== undefined ? { error: m.error } : { result: m.result };
  }

  private fail(err: GovError): void {
    this.finish({ error: { code: err.code, message: err.message, data: err.details === undefined ? undefined : { details: err.details } } });
  }

  private finish(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.done(outcome);
  }
}
