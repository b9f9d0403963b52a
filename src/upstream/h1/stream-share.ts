// Long-lived GET streams (server → client SSE) hold an upstream connection for as long as the
// client keeps them open. Without a bound, 128 open GETs hold all 128 pool connections and every
// other client's calls wait for the request timeout. Both HTTP clients give GET streams their own
// share (THOUGHTGATE_UPSTREAM_STREAM_CONNECTIONS, default half the pool) and refuse a GET beyond
// it at once (HTTP 429, Retry-After, a -32009 body) instead of queueing it.
import { GovError, errorResponse } from '../../core/errors.js';
import type { ResponseSink } from '../types.js';

/** seconds a refused GET is told to wait before trying again */
export const STREAM_RETRY_AFTER_S = 5;

/** Default share: half the pool, at least one, so request/response calls always keep half. */
export function defaultStreamShare(connections: number): number {
  return Math.max(1, Math.floor(connections / 2));
}

export class StreamShare {
  open = 0;
  constructor(readonly max: number) {}

  /** Takes a slot for a GET, or answers the sink with 429 and returns undefined. */
  admit(sink: ResponseSink, correlationId: string): StreamSlot | undefined {
    if (this.open >= this.max) {
      const err = new GovError('rate_limited', { details: `${this.max} upstream connections for GET streams are in use; retry later`, retryAfter: STREAM_RETRY_AFTER_S });
      sink.onHead(429, { 'content-type': 'application/json', 'retry-after': String(STREAM_RETRY_AFTER_S) });
      sink.onData(Buffer.from(errorResponse(null, err, correlationId)));
      sink.onEnd();
      return undefined;
    }
    this.open++;
    return new StreamSlot(sink, this);
  }
}

/** Wraps a GET's sink: gives the slot back once, when the stream ends, fails or is aborted. */
export class StreamSlot implements ResponseSink {
  private held = true;
  /** set by the upstream (as on any sink); the caller forwards the inner sink's to these */
  resume?: () => void;
  abort?: () => void;
  constructor(private readonly inner: ResponseSink, private readonly share: StreamShare) {}

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.share.open--;
  }

  onHead(status: number, headers: Record<string, string>): void {
    this.inner.onHead(status, headers);
  }

  onData(chunk: Buffer): boolean {
    return this.inner.onData(chunk);
  }

  onEnd(): void {
    this.release();
    this.inner.onEnd();
  }

  onError(err: GovError): void {
    this.release();
    this.inner.onError(err);
  }
}
