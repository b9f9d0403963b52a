// Stateless 2026-07-28 requests to an HTTP (`url:`) source that speaks only 2025. Such a server
// (the 1.x SDK's Streamable HTTP transport: server-everything) answers a request without a
// session with 400 "Server not initialized", so forwarding it unchanged fails every pinned
// 2026-07-28 client. This wrapper learns once, with a `server/discover` of our own, what the
// source speaks: a modern source gets stateless requests as they are; for a 2025-only one the
// sidecar holds one 2025 session of its own, sends each stateless request into it in the 2025
// shape and turns each answer back into the 2026-07-28 shape (era.ts). Everything else (2025
// sessions, batches, GET, DELETE) passes to the wrapped upstream untouched. The gates judged the
// client's message before it reached this layer: nothing here decides what may be sent.
import { GovError } from '../core/errors.js';
import { MODERN_VERSION } from '../core/jsonrpc.js';
import { SseParser, type SseEvent } from '../framing/sse.js';
import { LEGACY_VERSION, PROXY_INFO, cancelledNotice, discoverFromInitialize, discoverRequest, eraFromDiscover, toLegacyMessage, toModernAnswer, type Era } from './era.js';
import type { HeaderMap, ResponseSink, Upstream, UpstreamHealth, UpstreamRequest } from './types.js';

export interface HttpEraOptions {
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** largest answer collected whole (our probe and initialize, a JSON answer being translated) and largest SSE event */
  maxBytes: number;
}

const PROBE_ID = 'thoughtgate-http-discover';
const INIT_ID = 'thoughtgate-http-init';
const ACCEPT = 'application/json, text/event-stream';
/** longest the shutdown waits for the DELETE of our session */
const CLOSE_WAIT_MS = 1000;
/** an answer's stream that ends before the answer is resumed at most this often */
const MAX_RESUMES = 3;
/** wait before resuming when the server named none (its `retry:`), and the most we wait */
const RESUME_WAIT_MS = 1000;
const MAX_RESUME_WAIT_MS = 10_000;
/** refusals that say nothing about the protocol era (credentials, rate): decide nothing on them */
const UNDECIDED_STATUS = new Set([401, 403, 407, 408, 429]);
/**
 * Response headers of the upstream's session that must not reach a stateless client (the session
 * is ours, shared by every stateless caller), and lengths the translation changes.
 */
const DROP_ANSWER_HEADERS = new Set(['mcp-session-id', 'content-length', 'transfer-encoding']);

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

interface LegacySession {
  /** the upstream's Mcp-Session-Id (a stateless 2025 server gives none) */
  id: string | undefined;
  /** the revision it agreed to: the MCP-Protocol-Version of every request in the session */
  version: string;
  init: Record<string, unknown>;
}

interface Collected {
  status: number;
  headers: HeaderMap;
  body: Buffer;
}

export class HttpEraUpstream implements Upstream {
  readonly target: string;
  readonly health?: () => UpstreamHealth;
  /** what the source speaks to stateless requests, once the probe learned it */
  private era: Era | undefined;
  private probing: Promise<Era | undefined> | undefined;
  /** our 2025 session with a 2025-only source: one initialize shared by every request waiting on it */
  private session: Promise<LegacySession> | undefined;
  private internalIds = 0;

  constructor(private readonly inner: Upstream, private readonly opts: HttpEraOptions) {
    this.target = inner.target;
    if (inner.health !== undefined) this.health = () => inner.health!();
  }

  send(req: UpstreamRequest, sink: ResponseSink): void {
    const m = req.message;
    if (this.era === 'modern' || req.method !== 'POST' || m === undefined || !m.modern || m.isInitialize || req.headers['mcp-session-id'] !== undefined) {
      this.inner.send(req, sink);
      return;
    }
    let gone = false;
    let current: Translating | undefined;
    let currentSession: LegacySession | undefined;
    // Until an inner send takes over the sink, the client's going away stops what we are doing.
    sink.abort = () => {
      gone = true;
      // 2026-07-28: closing the request is cancellation; in our 2025 session the upstream knows
      // the request by our id only, so we send the notification the client cannot.
      if (current?.cancel() === true && currentSession !== undefined) this.cancelUpstream(req, currentSession, current.upstreamId!);
    };
    sink.resume = () => current?.resume?.();
    this.sourceEra(req).then(async (era) => {
      if (gone) return;
      if (era !== 'legacy') {
        // modern, or not learned (unreachable, refused for credentials): as it is, as before
        this.inner.send(req, sink);
        return;
      }
      for (let attempt = 0; ; attempt++) {
        const opened = this.legacySession(req);
        const session = await opened;
        if (gone) return;
        if (m.method === 'server/discover') {
          reply(sink, { jsonrpc: '2.0', id: m.id, result: discoverFromInitialize(session.init) });
          return;
        }
        const outcome = await new Promise<'sent' | 'session_gone'>((resolve) => {
          const { request, ourId } = this.translate(req, session);
          const reconnect = (lastEventId: string, into: ResponseSink): void => {
            const headers: HeaderMap = { ...withSession(ownHeaders(req.headers), session), accept: 'text/event-stream', 'last-event-id': lastEventId };
            delete headers['content-type'];
            this.inner.send({ method: 'GET', path: req.path, headers, correlationId: req.correlationId }, into);
          };
          const t = new Translating(sink, m.id, ourId, m.method, this.opts.maxBytes, session, attempt === 0, reconnect, resolve);
          current = t;
          currentSession = session;
          this.inner.send(request, t);
        });
        if (outcome === 'sent' || gone) return;
        // The upstream no longer knows our session (it restarted, or expired it): the first
        // request to see that opens a new one, the others wait for it; then each is sent again
        // (the server did not run a request it refused for its session).
        if (this.session === opened) {
          this.session = undefined;
          this.opts.log('info', 'upstream forgot our 2025 session; initializing again', { upstream: this.target });
        }
      }
    }).catch((err: unknown) => {
      if (gone) return;
      sink.onError(err instanceof GovError ? err : new GovError('upstream_connection_failed', { details: (err as Error)?.message ?? String(err) }));
    });
  }

  /** Ends our session politely (a 1.x SDK server keeps a server instance per session), then the upstream. */
  async close(): Promise<void> {
    const opened = this.session;
    this.session = undefined;
    if (opened !== undefined) {
      const ended = opened.then((session) => new Promise<void>((resolve) => {
        if (session.id === undefined) return resolve();
        const done = (): void => resolve();
        this.inner.send({
          method: 'DELETE', path: '/', headers: withSession({}, session), correlationId: 'thoughtgate-http-era-close',
        }, { onHead: () => {}, onData: () => true, onEnd: done, onError: done });
      }), () => {});
      // bounded: shutting down never waits on a slow server
      await Promise.race([ended, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    }
    return this.inner.close();
  }

  /** The era the source speaks: known, or learned once by the probe every waiting request shares. */
  private sourceEra(req: UpstreamRequest): Promise<Era | undefined> {
    if (this.era !== undefined) return Promise.resolve(this.era);
    this.probing ??= this.probe(req).finally(() => { this.probing = undefined; });
    return this.probing;
  }

  /**
   * `server/discover` in the 2026-07-28 shape: a result listing 2026-07-28 means modern; a
   * JSON-RPC error or an HTTP 4xx (the 1.x SDK: 400 "Server not initialized", or an unsupported
   * MCP-Protocol-Version) means 2025 only. No answer, a 5xx or a credentials refusal decides
   * nothing: that request goes as it is and the next one asks again.
   */
  private async probe(req: UpstreamRequest): Promise<Era | undefined> {
    let got: Collected;
    try {
      got = await this.collect(req, {
        ...ownHeaders(req.headers), 'mcp-protocol-version': MODERN_VERSION, 'mcp-method': 'server/discover',
      }, discoverRequest(PROBE_ID));
    } catch (e) {
      this.opts.log('warn', 'could not ask the upstream which MCP revision it speaks', { upstream: this.target, error: (e as Error).message });
      return undefined;
    }
    if (UNDECIDED_STATUS.has(got.status) || got.status >= 500) {
      this.opts.log('warn', 'the upstream refused our server/discover for a reason that says nothing about its revision', { upstream: this.target, status: got.status });
      return undefined;
    }
    const era = got.status >= 400 ? 'legacy' : eraFromDiscover(answerIn(got, PROBE_ID));
    this.era = era;
    this.opts.log('info', era === 'modern' ? 'upstream speaks 2026-07-28: stateless requests go to it as they are' : 'upstream speaks only 2025 revisions: stateless requests are translated into a 2025 session of ours', {
      upstream: this.target, status: got.status,
    });
    return era;
  }

  private legacySession(req: UpstreamRequest): Promise<LegacySession> {
    if (this.session !== undefined) return this.session;
    const opening = this.openSession(req);
    this.session = opening;
    // a failed initialize is not kept: the next request tries again
    opening.catch(() => { if (this.session === opening) this.session = undefined; });
    return opening;
  }

  /** initialize + notifications/initialized, as a 2025-11-25 client with no capabilities (nothing for the server to ask us). */
  private async openSession(req: UpstreamRequest): Promise<LegacySession> {
    const base = ownHeaders(req.headers);
    const got = await this.collect(req, base, JSON.stringify({
      jsonrpc: '2.0', id: INIT_ID, method: 'initialize',
      params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: PROXY_INFO },
    }));
    const answer = answerIn(got, INIT_ID);
    const result = answer?.['result'];
    if (got.status !== 200 || !isObject(result)) {
      const message = isObject(answer?.['error']) ? (answer['error'] as { message?: unknown }).message : undefined;
      throw new GovError('upstream_error', { subject: 'initialize refused', details: `HTTP ${got.status}: ${typeof message === 'string' ? message : 'no result'}` });
    }
    const session: LegacySession = {
      id: got.headers['mcp-session-id'],
      version: typeof result['protocolVersion'] === 'string' ? result['protocolVersion'] : LEGACY_VERSION,
      init: result,
    };
    const note = await this.collect(req, withSession(base, session), '{"jsonrpc":"2.0","method":"notifications/initialized"}');
    if (note.status >= 300) throw new GovError('upstream_error', { subject: 'initialized refused', details: `HTTP ${note.status}` });
    this.opts.log('info', 'opened a 2025 session with the upstream for stateless requests', { upstream: this.target, version: session.version });
    return session;
  }

  /** The client's request in the 2025 shape, inside our session: its own id replaced by one of ours. */
  private translate(req: UpstreamRequest, session: LegacySession): { request: UpstreamRequest; ourId: string | undefined } {
    const message = JSON.parse(req.body!.toString('utf8')) as Record<string, unknown>;
    // Stateless callers share the session: their ids could collide in it, ours cannot.
    const ourId = req.message!.kind === 'request' ? `tg-http-${++this.internalIds}` : undefined;
    toLegacyMessage(message, ourId);
    const request: UpstreamRequest = {
      ...req,
      // Mcp-Method / Mcp-Name stay: they still agree with the body, and 2025 servers (the 1.x
      // SDK) ignore them; MCP-Protocol-Version must change (2026-07-28 is refused with 400).
      headers: withSession(req.headers, session),
      body: Buffer.from(JSON.stringify(message), 'utf8'),
    };
    return { request, ourId };
  }

  /** Tells the upstream (in our session) that a request it knows as `ourId` was cancelled; best effort. */
  private cancelUpstream(req: UpstreamRequest, session: LegacySession, ourId: string): void {
    const body = cancelledNotice(ourId);
    const headers: HeaderMap = { ...withSession(ownHeaders(req.headers), session), 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    this.collect(req, headers, body).catch(() => { /* the upstream is gone or refused: nothing more to do */ });
  }

  /** Sends a request of our own and resolves with the whole response (bounded). */
  private collect(req: UpstreamRequest, headers: HeaderMap, body: string): Promise<Collected> {
    return new Promise((resolve, reject) => {
      let status = 0;
      let head: HeaderMap = {};
      const chunks: Buffer[] = [];
      let size = 0;
      const sink: ResponseSink = {
        onHead: (s, h) => { status = s; head = h; },
        onData: (chunk) => {
          size += chunk.length;
          if (size > this.opts.maxBytes) {
            sink.abort?.();
            reject(new GovError('upstream_error', { subject: 'answer too large', details: `an answer to our own request exceeded ${this.opts.maxBytes} bytes` }));
          } else chunks.push(chunk);
          return true;
        },
        onEnd: () => resolve({ status, headers: head, body: Buffer.concat(chunks) }),
        onError: (err) => reject(err),
      };
      this.inner.send({ method: 'POST', path: req.path, headers, body: Buffer.from(body, 'utf8'), correlationId: req.correlationId }, sink);
    });
  }
}

/** The headers of a request of ours: the client's others (credentials, tracing) with the MCP ones set by us. */
function ownHeaders(client: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const name in client) if (!name.startsWith('mcp-') && name !== 'content-type' && name !== 'accept' && name !== 'last-event-id') out[name] = client[name]!;
  out['content-type'] = 'application/json';
  out['accept'] = ACCEPT;
  return out;
}

function withSession(headers: HeaderMap, session: LegacySession): HeaderMap {
  const out: HeaderMap = { ...headers, 'mcp-protocol-version': session.version };
  if (session.id !== undefined) out['mcp-session-id'] = session.id;
  return out;
}

/** The JSON-RPC messages in a whole response body, JSON or SSE. */
function messagesIn(got: Collected): unknown[] {
  const out: unknown[] = [];
  try {
    if ((got.headers['content-type'] ?? '').toLowerCase().startsWith('text/event-stream')) {
      const parser = new SseParser((ev) => { if (!ev.comment && ev.data !== '') out.push(JSON.parse(ev.data)); }, Infinity, () => {});
      parser.push(got.body);
      parser.end();
    } else if (got.body.length > 0) {
      const v = JSON.parse(got.body.toString('utf8')) as unknown;
      out.push(...(Array.isArray(v) ? v : [v]));
    }
  } catch {
    // not JSON-RPC: no answer in it
  }
  return out;
}

function answerIn(got: Collected, id: string): Record<string, unknown> | undefined {
  return messagesIn(got).find((m): m is Record<string, unknown> => isObject(m) && m['id'] === id && m['method'] === undefined);
}

function reply(sink: ResponseSink, message: unknown): void {
  sink.onHead(200, { 'content-type': 'application/json' });
  sink.onData(Buffer.from(JSON.stringify(message), 'utf8'));
  sink.onEnd();
}

/**
 * The answer to one translated request, back in the 2026-07-28 shape, JSON or SSE as the
 * upstream chose: our id replaced by the client's, `resultType`, the server's identity and (for
 * lists) uncached hints added. SSE events are translated one by one as they come. A 400/404 is
 * held whole first when `checkSession`: one about our session is the caller's to retry, not the
 * client's to see. A stream that ends before its answer after naming an event id is resumed here
 * (2025-11-25: GET with Last-Event-ID after the server's `retry:`), as its 2025 client would:
 * a stateless client has no way to.
 */
class Translating implements ResponseSink {
  resume?: () => void;
  abort?: () => void;
  private mode: 'hold' | 'json' | 'sse' | 'raw' = 'raw';
  private status = 0;
  private headers: HeaderMap = {};
  private chunks: Buffer[] = [];
  private size = 0;
  private sse: SseParser | undefined;
  private writable = true;
  private headSent = false;
  private finished = false;
  private answered = false;
  private lastEventId: string | undefined;
  private retryMs: number | undefined;
  private resumes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly isList: boolean;
  private readonly serverInfo: unknown;

  constructor(
    private readonly out: ResponseSink,
    private readonly clientId: unknown,
    /** the id we sent in its place (none for a notification) */
    private readonly ourId: string | undefined,
    method: string | undefined,
    private readonly maxBytes: number,
    session: LegacySession,
    private readonly checkSession: boolean,
    /** opens the GET that resumes this answer's stream after `lastEventId`, into this sink */
    private readonly reconnect: (lastEventId: string, sink: ResponseSink) => void,
    private readonly done: (outcome: 'sent' | 'session_gone') => void,
  ) {
    this.isList = method?.endsWith('/list') === true;
    this.serverInfo = session.init['serverInfo'];
  }

  /** the client went away; true when its request was still unanswered (the upstream should be told) */
  cancel(): boolean {
    const open = !this.finished && !this.answered && this.ourId !== undefined;
    this.finished = true;
    clearTimeout(this.timer);
    this.abort?.();
    return open;
  }

  /** the id the upstream knows this request by */
  get upstreamId(): string | undefined {
    return this.ourId;
  }

  onHead(status: number, headers: HeaderMap): void {
    if (this.finished) return;
    if (this.headSent) {
      // a resumed stream: the client's head went out with the first one
      if (status !== 200 || !(headers['content-type'] ?? '').toLowerCase().startsWith('text/event-stream')) {
        this.abort?.();
        this.fail(new GovError('upstream_error', { subject: `HTTP ${status}`, details: `resuming the answer's event stream was refused: HTTP ${status}` }));
        return;
      }
      this.newParser();
      return;
    }
    this.status = status;
    this.headers = headers;
    if (this.checkSession && (status === 404 || status === 400)) {
      this.mode = 'hold';
      return;
    }
    this.start();
  }

  private newParser(): void {
    this.mode = 'sse';
    this.sse = new SseParser((ev) => this.event(ev), this.maxBytes, (why) => this.fail(new GovError('upstream_error', { subject: 'invalid event stream', details: why })));
  }

  private start(): 'json' | 'sse' | 'raw' {
    const type = (this.headers['content-type'] ?? '').toLowerCase();
    const headers: HeaderMap = {};
    for (const name in this.headers) if (!DROP_ANSWER_HEADERS.has(name)) headers[name] = this.headers[name]!;
    let mode: 'json' | 'sse' | 'raw' = 'raw'; // not an answer: the relay judges it as it would any other
    if (type.startsWith('text/event-stream')) mode = 'sse';
    else if (type.startsWith('application/json') || type.endsWith('+json')) mode = 'json';
    if (mode === 'sse') this.newParser();
    else this.mode = mode;
    this.headSent = true;
    this.out.onHead(this.status, headers);
    return mode;
  }

  onData(chunk: Buffer): boolean {
    if (this.finished) return true;
    switch (this.mode) {
      case 'hold':
      case 'json':
        this.size += chunk.length;
        if (this.size > this.maxBytes) {
          this.abort?.();
          this.fail(new GovError('upstream_error', { subject: 'answer too large', details: `answer over ${this.maxBytes} bytes cannot be translated` }));
          return true;
        }
        this.chunks.push(chunk);
        return true;
      case 'sse':
        this.writable = true;
        this.sse!.push(chunk);
        if (this.answered && this.resumes > 0 && !this.finished) {
          // a resumed GET stays open after the answer: it was the one thing we read it for
          this.abort?.();
          this.finish();
        }
        return this.writable;
      default:
        return this.out.onData(chunk);
    }
  }

  onEnd(): void {
    if (this.finished) return;
    if (this.mode === 'hold') {
      const body = Buffer.concat(this.chunks);
      if (sessionGone(this.status, body)) {
        this.finished = true;
        this.done('session_gone');
        return;
      }
      const mode = this.start();
      if (mode === 'sse') this.sse!.push(body);
      else if (mode === 'raw') { if (body.length > 0) this.out.onData(body); }
      else this.chunks = [body];
    }
    if (this.mode === 'json') {
      const body = Buffer.concat(this.chunks);
      let text: string;
      try {
        text = JSON.stringify(this.answer(JSON.parse(body.toString('utf8'))));
      } catch {
        text = body.toString('utf8'); // not JSON: the relay refuses it as garbage
      }
      if (text.length > 0) this.out.onData(Buffer.from(text, 'utf8'));
    } else if (this.mode === 'sse') {
      this.sse!.end();
      if (this.finished) return;
      if (!this.answered && this.ourId !== undefined && this.lastEventId !== undefined && this.resumes < MAX_RESUMES) {
        this.resumes++;
        const lastEventId = this.lastEventId;
        this.timer = setTimeout(() => { if (!this.finished) this.reconnect(lastEventId, this); }, Math.min(this.retryMs ?? RESUME_WAIT_MS, MAX_RESUME_WAIT_MS));
        return;
      }
    }
    this.finish();
  }

  onError(err: GovError): void {
    if (this.finished) return;
    this.fail(err);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.out.onEnd();
    this.done('sent');
  }

  private fail(err: GovError): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.out.onError(err);
    this.done('sent');
  }

  /** One SSE event: an answer translated, a notification as it is, a server request dropped. */
  private event(ev: SseEvent): void {
    if (this.finished) return;
    if (ev.comment) {
      this.writable = this.out.onData(Buffer.from(ev.raw, 'utf8')) && this.writable;
      return;
    }
    if (ev.id !== undefined) this.lastEventId = ev.id;
    if (ev.retry !== undefined) this.retryMs = ev.retry;
    // ids are for resuming our session's stream, which we do; 2026-07-28 has no resumption
    if (ev.data === '') return;
    let msg: unknown;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      this.writable = this.out.onData(Buffer.from(ev.raw, 'utf8')) && this.writable; // the relay refuses it
      return;
    }
    // We declared no capabilities, so a server has nothing to ask; what it asks anyway a
    // stateless client could not answer.
    if (isObject(msg) && msg['method'] !== undefined && msg['id'] !== undefined) return;
    if (this.answered && isObject(msg) && msg['method'] === undefined) return; // a resumed stream's repeat
    this.writable = this.out.onData(Buffer.from(`event: message\ndata: ${JSON.stringify(this.answer(msg))}\n\n`, 'utf8')) && this.writable;
  }

  private answer(msg: unknown): unknown {
    if (this.ourId === undefined || !isObject(msg) || msg['method'] !== undefined || msg['id'] !== this.ourId) return msg;
    this.answered = true;
    msg['id'] = this.clientId;
    return toModernAnswer(msg, this.serverInfo, this.isList);
  }
}

/** Our session is unknown to the upstream: 404 (the spec's answer), or the 1.x SDK's 400s that name it. */
function sessionGone(status: number, body: Buffer): boolean {
  if (status === 404) return true;
  let message: unknown;
  try {
    message = (JSON.parse(body.toString('utf8')) as { error?: { message?: unknown } }).error?.message;
  } catch {
    return false;
  }
  return typeof message === 'string' && /session|not initialized/i.test(message);
}
