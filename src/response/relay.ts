// Upstream → client. A ResponseSink that relays the upstream's answer as it chose it:
// JSON (buffered only when it must be inspected or is small enough to send in one write) or
// SSE, event by event as each arrives, never buffering a stream. Answers that may carry a list
// result pass through `inspect`, which filters them (gate 1 on answers). Garbage from the
// upstream (an HTML error page, a non-JSON body) never reaches the client as if it were a result.
import { isUtf8 } from 'node:buffer';
import { GovError } from '../core/errors.js';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { jsonDepthOver } from '../framing/depth.js';
import { SseParser, type SseEvent } from '../framing/sse.js';
import { reportInternal } from '../transport/contain.js';
import type { Exchange } from '../transport/http-server.js';
import type { HeaderMap, ResponseSink } from '../upstream/types.js';

/** Response headers that belong to one hop only (RFC 9110 §7.6.1) or that uWS sets itself. */
const DROP_RESPONSE_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'content-length', 'date', 'uwebsockets',
]);

/** JSON bodies up to this size are collected and sent in one write (no chunked framing). */
const SMALL_JSON_BYTES = 64 * 1024;

export interface RelayContext {
  readonly correlationId: string;
  /** true when the client's request expects a JSON-RPC answer in this body (a POSTed request) */
  expectsAnswer: boolean;
  /**
   * The POSTed request's id. When set (with expectsAnswer) the relay keeps answer discipline:
   * the client gets exactly one JSON-RPC response, and it carries this id — an upstream's answer
   * with another id, a second answer, a batch or a body that is not a response is never relayed
   * (a client would dispatch a foreign id to another of its requests, e.g. an unfiltered list);
   * an upstream that ends without answering gets the client a JSON-RPC error instead.
   */
  readonly id?: unknown;
  /** always parse and inspect JSON/SSE messages (list requests, initialize) */
  inspectAll: boolean;
  /** inspect messages that look like they may carry a list (GET streams: resumed answers of
   *  any request can arrive there); answers to other POSTed requests are never lists */
  scan: boolean;
  /** longest SSE event accepted from the upstream */
  maxEventBytes: number;
  /** deepest JSON accepted in an answer that is parsed (the client side's limit; default 64) */
  maxDepth?: number;
  /** called for each message that may need changing; returns a replacement text or undefined to relay as is */
  inspect: (message: unknown) => string | undefined;
  /** sees the head before it is relayed (session tracking) */
  onUpstreamHead?: (status: number, headers: HeaderMap) => void;
  /** render an error for this exchange (JSON-RPC error body with the request id) */
  renderError: (err: GovError) => string;
  /** called once when the exchange is over */
  onDone: (status: number, err: GovError | undefined) => void;
}

export function filterHeaders(headers: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const name in headers) if (!DROP_RESPONSE_HEADERS.has(name)) out[name] = headers[name]!;
  return out;
}

const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json' };

type Mode = 'none' | 'json-buffer' | 'json-stream' | 'sse' | 'raw' | 'reject';

export class Relay implements ResponseSink {
  private readonly ex: Exchange;
  private readonly ctx: RelayContext;
  private mode: Mode = 'none';
  private status = 0;
  private headers: HeaderMap = {};
  private chunks: Buffer[] = [];
  private size = 0;
  private sse: SseParser | null = null;
  private writable = true;
  private upstreamError: GovError | undefined;
  private ended = false;
  /** the one response for the request's id has been relayed (answer discipline) */
  private answered = false;
  /** an event carried an id: the client can resume this stream (see end()) */
  private resumable = false;
  resume?: () => void;
  abort?: () => void;

  constructor(ex: Exchange, ctx: RelayContext) {
    this.ex = ex;
    this.ctx = ctx;
    ex.onDrain = () => {
      this.writable = true;
      this.resume?.();
    };
    ex.onAbort = () => {
      if (this.ended) return;
      this.ended = true;
      this.abort?.();
      this.done(499, undefined); // client closed the request
    };
  }

  // The sink's four entry points are called from upstream code (socket, undici and child
  // process callbacks) where nothing would catch an exception: each runs contained, and a
  // failure answers this request with -32603 instead of ending the process.
  onHead(status: number, headers: HeaderMap): void {
    try {
      this.head(status, headers);
    } catch (e) {
      this.internal(e);
    }
  }

  onData(chunk: Buffer): boolean {
    try {
      return this.data(chunk);
    } catch (e) {
      this.internal(e);
      return true;
    }
  }

  onEnd(): void {
    try {
      this.end();
    } catch (e) {
      this.internal(e);
    }
  }

  onError(err: GovError): void {
    try {
      this.error(err);
    } catch (e) {
      this.internal(e);
    }
  }

  /** whether this exchange answers one request whose id is known (see RelayContext.id) */
  private get disciplined(): boolean {
    return this.ctx.expectsAnswer && this.ctx.id !== undefined && this.ctx.id !== null;
  }

  private head(status: number, headers: HeaderMap): void {
    this.status = status;
    this.ctx.onUpstreamHead?.(status, headers);
    const type = (headers['content-type'] ?? '').toLowerCase();
    this.headers = filterHeaders(headers);
    if (this.disciplined && (status === 202 || status === 204 || status === 304)) {
      // A request must be answered (JSON or SSE); "accepted" or an empty body leaves the client
      // waiting for an answer that never comes, and whatever body came with it is not one.
      this.mode = 'reject';
      this.upstreamError = new GovError('upstream_error', { subject: `HTTP ${status}`, details: `Upstream error code: ${status}; the request was not answered` });
      return;
    }
    if (type.startsWith('text/event-stream')) {
      this.mode = 'sse';
      this.sse = new SseParser((ev) => this.onEvent(ev), this.ctx.maxEventBytes, (why) => this.failStream(why));
      this.ex.writeHead(status, this.headers);
      // uWS sends a head with the first body bytes only. A GET stream may carry nothing for a
      // long time (server-everything: 15 s), leaving the client waiting for a head the upstream
      // sent at once; an SSE comment, which every client ignores, opens it now.
      if (!this.ctx.expectsAnswer) this.ex.write(': stream open\n\n');
      return;
    }
    const isJson = type.startsWith('application/json') || type.endsWith('+json');
    if (this.ctx.expectsAnswer && !isJson && status !== 202 && status !== 204) {
      // An HTML error page or other garbage must not reach the client as if it were a result.
      this.mode = 'reject';
      this.upstreamError = new GovError('upstream_error', { subject: `HTTP ${status}`, details: `Upstream error code: ${status}; content-type '${type || 'none'}'` });
      return;
    }
    if (isJson) {
      // Collect only what must be inspected or is known to be small (one write, no chunked
      // framing); anything else streams, so a 16 MB answer never sits in memory.
      // An answer to a request of unknown length is held while it is small: if it ends within
      // SMALL_JSON_BYTES it is checked whole (answer discipline) like a json-buffer one.
      const length = Number(headers['content-length']);
      this.mode = this.ctx.inspectAll || (length >= 0 && length <= SMALL_JSON_BYTES) ? 'json-buffer' : 'json-stream';
      return;
    }
    this.mode = 'raw';
    this.ex.writeHead(status, this.headers);
  }

  private data(chunk: Buffer): boolean {
    if (this.ended) return true; // failed already (the upstream was told to stop): discard
    switch (this.mode) {
      case 'json-buffer':
        this.size += chunk.length;
        if (this.size > this.ctx.maxEventBytes) {
          // An answer we must inspect but cannot hold: fail it rather than grow without bound.
          this.mode = 'reject';
          this.chunks = [];
          this.upstreamError = new GovError('upstream_error', { subject: 'answer too large', details: `answer over ${this.ctx.maxEventBytes} bytes cannot be inspected` });
          this.abort?.();
          this.end();
          return true;
        }
        this.chunks.push(chunk);
        return true;
      case 'sse':
        this.sse!.push(chunk);
        return this.writable;
      case 'json-stream':
        if (!this.ex.headSent && this.disciplined && this.size + chunk.length <= SMALL_JSON_BYTES) {
          // Small so far: hold it, so that an answer that ends here is checked whole.
          this.size += chunk.length;
          this.chunks.push(chunk);
          return true;
        }
        if (!this.ex.headSent) {
          // The first non-blank byte decides whether this is JSON at all; the head waits for it.
          const verdict = looksLikeJsonValue(this.chunks.length > 0 ? Buffer.concat([...this.chunks, chunk]) : chunk);
          if (verdict === undefined) {
            this.chunks.push(chunk);
            return true;
          }
          if (this.ctx.expectsAnswer && !verdict) {
            this.mode = 'reject';
            this.chunks = [];
            this.upstreamError = new GovError('upstream_error', { subject: 'invalid JSON', details: `Upstream error code: ${this.status}; body is not JSON` });
            return true;
          }
          this.ex.writeHead(this.status, this.headers);
          for (const held of this.chunks) this.ex.write(held);
          this.chunks = [];
        }
        this.writable = this.ex.write(chunk);
        return this.writable;
      case 'raw':
        this.writable = this.ex.write(chunk);
        return this.writable;
      default:
        return true; // 'reject': drain and discard
    }
  }

  private end(): void {
    if (this.ended) return;
    // A CR at the very end completes the last event only now; that event is relayed (or fails
    // the stream) like any other.
    if (this.mode === 'sse') this.sse!.end();
    if (this.ended) return;
    this.ended = true;
    switch (this.mode) {
      case 'json-buffer': {
        const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
        this.chunks = [];
        this.finishJson(body);
        return;
      }
      case 'sse': {
        // A stream that gave event ids may end before its answer (SEP-1699 polling): the client
        // resumes with GET + Last-Event-ID and gets the answer there. Without ids it cannot.
        if (this.disciplined && !this.answered && !this.resumable) {
          this.endStreamWith(new GovError('upstream_error', { subject: 'no answer', details: `Upstream error code: ${this.status}; the stream ended without answering the request` }));
          return;
        }
        this.ex.end();
        this.done(this.status, undefined);
        return;
      }
      case 'reject':
        this.sendError(this.upstreamError!);
        return;
      case 'json-stream':
        if (!this.ex.headSent && this.disciplined) {
          // It ended small: checked whole.
          const body = Buffer.concat(this.chunks, this.size);
          this.chunks = [];
          this.finishJson(body);
          return;
        }
        if (!this.ex.headSent && !this.ctx.expectsAnswer) {
          this.ex.writeHead(this.status, this.headers);
          for (const held of this.chunks) this.ex.write(held);
        } else if (!this.ex.headSent) {
          // Nothing but whitespace arrived: that is no answer.
          this.sendError(new GovError('upstream_error', { subject: 'empty answer', details: `Upstream error code: ${this.status}; body is empty` }));
          return;
        }
        this.ex.end();
        this.done(this.status, undefined);
        return;
      case 'none':
        this.sendError(new GovError('upstream_error', { subject: 'no response', details: 'upstream ended without a response' }));
        return;
      default:
        this.ex.end();
        this.done(this.status, undefined);
    }
  }

  private error(err: GovError): void {
    if (this.ended) return;
    this.ended = true;
    if (this.mode === 'sse' && this.ex.headSent) {
      this.endStreamWith(err);
      return;
    }
    if (this.ex.headSent) {
      // Mid-stream: the status is gone, so the only honest signal left is to cut the stream.
      this.ex.close();
      this.done(this.status, err);
      return;
    }
    this.sendError(err);
  }

  private finishJson(body: Buffer): void {
    if (this.ctx.expectsAnswer && looksLikeJsonValue(body) !== true) {
      this.sendError(new GovError('upstream_error', { subject: 'invalid JSON', details: `Upstream error code: ${this.status}; body is not JSON` }));
      return;
    }
    let out: string | Buffer = body;
    if (this.disciplined) {
      // The whole answer is checked before a byte of it goes out: valid UTF-8, within the depth
      // limit, JSON, one response, this request's id. Relayed as the upstream's exact bytes
      // unless a list in it had to be filtered.
      if (!isUtf8(body)) {
        this.sendError(new GovError('upstream_error', { subject: 'answer is not valid UTF-8', details: `Upstream error code: ${this.status}; answer is not valid UTF-8` }));
        return;
      }
      const text = body.toString('utf8');
      const parsed = this.parseChecked(text);
      const problem = parsed === NOT_PARSED ? this.why : this.answerProblem(parsed);
      if (problem !== undefined) {
        this.sendError(new GovError('upstream_error', { subject: problem, details: `Upstream error code: ${this.status}; ${problem}` }));
        return;
      }
      this.answered = true;
      if (this.ctx.inspectAll || mayNeedInspection(text)) {
        const replaced = this.ctx.inspect(parsed);
        out = replaced ?? (mayNeedInspection(text) ? JSON.stringify(parsed) : body);
      }
      this.ex.respond(this.status, this.headers, out);
      this.done(this.status, undefined);
      return;
    }
    if (this.ctx.inspectAll || this.ctx.scan) {
      // Invalid UTF-8 in an answer that must be inspected is refused (an error for the request):
      // decoded, it would turn into U+FFFD and be neither the upstream's bytes nor filterable as
      // they meant. Answers that are not inspected stream on as the exact bytes.
      if (!isUtf8(body)) {
        this.sendError(new GovError('upstream_error', { subject: 'answer is not valid UTF-8', details: `Upstream error code: ${this.status}; answer is not valid UTF-8` }));
        return;
      }
      const replaced = this.inspectText(body.toString('utf8'), this.ctx.inspectAll);
      if (replaced === null) {
        this.sendError(new GovError('upstream_error', { subject: this.why, details: `Upstream error code: ${this.status}; ${this.why}` }));
        return;
      }
      if (replaced !== undefined) out = replaced;
    }
    this.ex.respond(this.status, this.headers, out);
    this.done(this.status, undefined);
  }

  /** why the last inspectText or parseChecked failed */
  private why = '';

  /** JSON text parsed within the depth limit, or NOT_PARSED (`why` says why) */
  private parseChecked(text: string): unknown {
    const maxDepth = this.ctx.maxDepth ?? DEFAULT_LIMITS.maxDepth;
    if (jsonDepthOver(text, maxDepth)) {
      this.why = `answer nested deeper than ${maxDepth} levels`;
      return NOT_PARSED;
    }
    try {
      return JSON.parse(text);
    } catch {
      this.why = 'invalid JSON';
      return NOT_PARSED;
    }
  }

  /** why `m` is not the one answer to this request, or undefined when it is */
  private answerProblem(m: unknown): string | undefined {
    if (Array.isArray(m)) return 'a batch answer to a single request';
    if (m === null || typeof m !== 'object') return 'not a JSON-RPC response';
    if ('method' in m) return 'a request or notification instead of the answer';
    if (('result' in m) === ('error' in m)) return 'not a JSON-RPC response';
    const id = (m as { id?: unknown }).id;
    // An error with id null (or none, as the SDK servers send "Session not found" / "Bad
    // Request" with 400/404) is the server's answer to a request it could not read the id of
    // (JSON-RPC 2.0 §5): it answers this request, no other; it passes, status included.
    if ((id === null || id === undefined) && 'error' in m) return undefined;
    if (id !== this.ctx.id) return `an answer for id ${JSON.stringify(id) ?? 'none'}, not for this request`;
    return undefined;
  }

  /**
   * undefined: relay as is; null: cannot be inspected (not JSON, too deep; `why` says which),
   * so it must not be relayed: a list nobody could filter would show hidden items;
   * string: the replacement.
   */
  private inspectText(text: string, always: boolean): string | undefined | null {
    if (!always && !mayNeedInspection(text)) return undefined;
    const maxDepth = this.ctx.maxDepth ?? DEFAULT_LIMITS.maxDepth;
    // Before parsing: what inspect does next (filtering, JSON.stringify) recurses.
    if (jsonDepthOver(text, maxDepth)) {
      this.why = `answer nested deeper than ${maxDepth} levels`;
      return null;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.why = 'invalid JSON';
      return null;
    }
    // Text that may carry a list goes out as the parsed view the filter saw, re-serialised,
    // never as the upstream's bytes: those could hold a second "tools" key (JSON.parse keeps the
    // last, another client's parser may keep the first) or an escaped spelling of it.
    const reserialise = mayNeedInspection(text);
    if (Array.isArray(parsed)) {
      let changed = reserialise;
      const parts = parsed.map((m) => {
        const r = this.ctx.inspect(m);
        if (r !== undefined) changed = true;
        return r ?? JSON.stringify(m);
      });
      return changed ? `[${parts.join(',')}]` : undefined;
    }
    const replaced = this.ctx.inspect(parsed);
    return replaced ?? (reserialise ? JSON.stringify(parsed) : undefined);
  }

  private onEvent(ev: SseEvent): void {
    if (this.ended) return;
    if (this.disciplined && ev.data.length > 0) {
      this.onAnswerStreamEvent(ev);
      return;
    }
    let raw = ev.raw;
    if (ev.data.length > 0 && (this.ctx.inspectAll || (this.ctx.scan && mayNeedInspection(ev.data)))) {
      // On a list request's stream every event must parse (garbage could hide a list); elsewhere
      // only events that may carry one are parsed.
      const replaced = this.inspectText(ev.data, this.ctx.inspectAll);
      if (replaced === null) {
        this.failStream(`event cannot be inspected: ${this.why}`);
        return;
      }
      if (replaced !== undefined) raw = rebuildEvent(ev, replaced);
    }
    if (ev.id !== undefined && ev.id !== '') this.resumable = true; // the client has an id to resume from
    this.writable = this.ex.write(raw);
  }

  /**
   * An event on the stream answering a POSTed request: requests and notifications from the
   * server go on (inspected as elsewhere); of the responses only the first for this request's
   * id does; an event that is not one JSON-RPC message fails the stream.
   */
  private onAnswerStreamEvent(ev: SseEvent): void {
    const m = this.parseChecked(ev.data);
    if (m === NOT_PARSED) {
      this.failStream(`event cannot be inspected: ${this.why}`);
      return;
    }
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      this.failStream('event is not one JSON-RPC message');
      return;
    }
    if (!('method' in m)) {
      if (this.answered || this.answerProblem(m) !== undefined) return; // a duplicate or foreign answer: dropped
      this.answered = true;
    }
    let raw = ev.raw;
    if (this.ctx.inspectAll || mayNeedInspection(ev.data)) {
      const replaced = this.ctx.inspect(m);
      if (replaced !== undefined || mayNeedInspection(ev.data)) raw = rebuildEvent(ev, replaced ?? JSON.stringify(m));
    }
    if (ev.id !== undefined && ev.id !== '') this.resumable = true; // the client has an id to resume from
    this.writable = this.ex.write(raw);
  }

  /** The upstream's stream broke a rule (event too large, not UTF-8, not inspectable): stop it. */
  private failStream(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.abort?.(); // the upstream connection is dropped: what follows is not read
    this.endStreamWith(new GovError('upstream_error', { subject: why, details: why }));
  }

  /**
   * The head is gone, so the error travels the way the client reads answers on a stream: a
   * `message` event with the request's id, then a clean end (a reset reads as a network
   * failure and loses the reason). A GET stream has no request to answer: it just ends.
   */
  private endStreamWith(err: GovError): void {
    if (this.ctx.expectsAnswer && !this.answered) this.ex.write(`event: message\ndata: ${this.ctx.renderError(err)}\n\n`);
    this.ex.end();
    this.done(this.status, err);
  }

  private isDone = false;

  /** ctx.onDone exactly once (an internal error may strike before or after it) */
  private done(status: number, err: GovError | undefined): void {
    if (this.isDone) return;
    this.isDone = true;
    this.ctx.onDone(status, err);
  }

  /** An exception nobody expected (a bug): answer -32603, count it, log its stack, carry on. */
  private internal(e: unknown): void {
    const err = new GovError('internal_error', { subject: this.ctx.correlationId });
    reportInternal(e, this.ctx.correlationId, 'relay');
    this.ended = true;
    try {
      this.abort?.();
      if (this.ex.headSent) {
        if (this.mode === 'sse') this.ex.write(`event: message\ndata: ${this.ctx.renderError(err)}\n\n`);
        if (this.mode === 'sse' || this.mode === 'none') this.ex.end();
        else this.ex.close();
      } else this.ex.respond(200, JSON_HEADERS, this.ctx.renderError(err));
      this.done(500, err);
    } catch (again) {
      reportInternal(again, this.ctx.correlationId, 'relay (while answering an internal error)');
    }
  }

  private sendError(err: GovError): void {
    this.ex.respond(200, JSON_HEADERS, this.ctx.renderError(err));
    this.done(200, err);
  }
}

const NOT_PARSED = Symbol('not parsed');

function rebuildEvent(ev: SseEvent, data: string): string {
  let out = '';
  if (ev.id !== undefined) out += `id: ${ev.id}\n`;
  if (ev.event !== undefined) out += `event: ${ev.event}\n`;
  if (ev.retry !== undefined) out += `retry: ${ev.retry}\n`;
  // JSON.stringify output has no raw newlines, so one data line carries it.
  return `${out}data: ${data}\n\n`;
}

/** whether text may carry a list result; an escape (`"\u0074ools"`) may spell a key, so it counts too */
function mayNeedInspection(text: string): boolean {
  return text.includes('\\u') || text.includes('"tools"') || text.includes('"resources"') || text.includes('"prompts"') || text.includes('"resourceTemplates"');
}

/** Whether a body starts like a JSON object or array; undefined while it holds only whitespace. */
function looksLikeJsonValue(body: Buffer): boolean | undefined {
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    return c === 0x7b /* { */ || c === 0x5b /* [ */;
  }
  return undefined;
}
