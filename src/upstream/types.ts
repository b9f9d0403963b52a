// The one contract between the pipeline and any upstream (HTTP pool or stdio child):
// `send(request, sink)`. The upstream drives the sink through a lifecycle like undici's
// dispatch handler: onHead once, onData repeatedly, then onEnd or onError exactly once.
import type { GovError } from '../core/errors.js';

/** Headers as lower-cased name → value; a repeated header is joined with ', '. */
export type HeaderMap = Record<string, string>;

export interface UpstreamRequest {
  method: 'POST' | 'GET' | 'DELETE';
  /** path and query as the client sent them */
  path: string;
  /** already filtered: no hop-by-hop headers, no host/content-length */
  headers: HeaderMap;
  /** exact bytes that were judged (POST only) */
  body?: Buffer;
  /** set for a POST carrying one message: what the stdio upstream needs to route it */
  message?: {
    kind: 'request' | 'notification' | 'response';
    id?: unknown;
    method?: string;
    progressToken?: unknown;
    isInitialize: boolean;
    /** the body claims the stateless 2026-07-28 revision (no session) */
    modern: boolean;
  };
  /** correlation id, for logs */
  correlationId: string;
  /** who is asking (session/client-quota.ts clientKey), set on `initialize` only: a stdio source counts sessions per client */
  client?: string;
}

export interface ResponseSink {
  onHead(status: number, headers: HeaderMap): void;
  /** returns false when the client is not draining: the upstream should pause until `resume` */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(err: GovError): void;
  /** set by the upstream: called by the sink when the client drained after onData returned false */
  resume?: () => void;
  /** set by the upstream: called by the sink when the client went away */
  abort?: () => void;
}

/** What /ready reports for a source: can a new call reach it? */
export interface UpstreamHealth {
  reachable: boolean;
  /** why not (an error code), while unreachable */
  reason?: string;
  /** epoch ms of the last change */
  since?: number;
}

export interface Upstream {
  readonly target: string;
  send(req: UpstreamRequest, sink: ResponseSink): void;
  close(): Promise<void>;
  /**
   * Cheap (no I/O): the last known state, from call outcomes and a periodic connect probe.
   * Absent: always reachable as far as we know (stdio spawns a child per session on demand).
   */
  health?(): UpstreamHealth;
}
