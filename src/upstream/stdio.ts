// A stdio MCP server governed over HTTP: the sidecar spawns one child per MCP session
// (on `initialize`), owns the Mcp-Session-Id, and maps Streamable HTTP onto the child's
// NDJSON stream. A POSTed request gets an SSE stream (when the client accepts one) carrying
// the progress notifications and server→client requests made while it runs, ending with its
// answer; other server messages go to the session's GET stream. Children end on DELETE, idle
// timeout, exit or shutdown.
//
// Bounded three ways, so one client cannot spawn everyone else out: a global session cap, a
// per-client share of it (session/client-quota.ts), and a memory budget over the children's
// sampled RSS (rss.ts). Under pressure (75% of the cap or the budget) a child with nothing in
// flight and no GET stream is ended after a shorter idle time; over the budget idle children
// are ended oldest-idle first. SDK clients' close() sends no DELETE, so without this their
// children would linger for the full idle timeout. A session whose child was ended answers 404
// "Session not found", and the client starts a new one.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { GovError } from '../core/errors.js';
import { parseStrict } from '../framing/decode.js';
import { LineSplitter, decodeLine } from '../framing/ndjson.js';
import { reportInternal } from '../transport/contain.js';
import { ClientQuota, type CapacityReason, type Lease } from '../session/client-quota.js';
import { procAvailable, residentBytes } from './rss.js';
import { LEGACY_VERSION, PROXY_INFO, cancelledNotice, UNCACHED, discoverFromInitialize, envelopeOf, discoverRequest, eraFromDiscover, toLegacyMessage, toModernAnswer, type Era } from './era.js';
import type { HeaderMap, ResponseSink, Upstream, UpstreamRequest } from './types.js';

export interface StdioUpstreamOptions {
  command: string;
  args: string[];
  /** the child's complete environment (child-env.ts builds it): nothing of the proxy's is added */
  env: Record<string, string>;
  maxSessions: number;
  /** sessions one client (UpstreamRequest.client) may hold */
  maxSessionsPerClient: number;
  /** the children's resident memory together; past it new sessions are refused and idle children ended */
  memoryBudgetBytes: number;
  /** children kept for stateless 2026-07-28 requests */
  poolSize: number;
  idleMs: number;
  /** idle time that ends a child while under pressure (75% of the session cap or memory budget) */
  idleUnderPressureMs: number;
  /** sampling and sweep interval; default a quarter of the shorter idle time, 1..30 s */
  sweepMs?: number;
  requestTimeoutMs: number;
  maxLineBytes: number;
  maxDepth: number;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** counts a framing error on the child's output */
  onFramingError: (errorType: string) => void;
  /** counts an initialize refused for capacity */
  onRefused?: (reason: CapacityReason) => void;
  /** counts a child ended for idling */
  onReaped?: (reason: ReapReason) => void;
  /** the children's sampled resident bytes together, after each sweep */
  onMemory?: (bytes: number) => void;
}

export type ReapReason = 'idle' | 'idle_under_pressure' | 'memory_budget';

/** seconds a client refused a session is told to wait */
const SESSION_RETRY_AFTER_S = 5;
/** the share of the session cap or memory budget past which idle children go sooner */
const PRESSURE = 0.75;

const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json' };
const POOL_INIT_ID = 'thoughtgate-pool-init';
const POOL_PROBE_ID = 'thoughtgate-pool-discover';
/** longest wait for the era probe's answer: it delays the first stateless request of a source */
const PROBE_TIMEOUT_MS = 30_000;
const SSE_HEADERS: HeaderMap = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

function jsonError(id: unknown, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code, message } });
}

/** Any LF/CR in valid JSON is insignificant whitespace (raw newlines are illegal inside strings). */
function toLine(body: Buffer): Buffer {
  let needs = false;
  for (let i = 0; i < body.length; i++) if (body[i] === 0x0a || body[i] === 0x0d) { needs = true; break; }
  if (!needs) return body;
  const copy = Buffer.from(body);
  for (let i = 0; i < copy.length; i++) if (copy[i] === 0x0a || copy[i] === 0x0d) copy[i] = 0x20;
  return copy;
}

/** One in-flight client request waiting for the child's answer. */
class Pending {
  timer: NodeJS.Timeout | undefined;
  headSent = false;
  /** pooled (2026-07-28) requests: rewrites the child's answer back to the client's id and shape */
  rewrite: ((line: string) => string) | undefined;
  constructor(
    readonly id: unknown,
    readonly sink: ResponseSink,
    readonly sse: boolean,
    readonly progressToken: unknown,
    readonly sessionHeader: string | undefined,
  ) {}

  /** false when the client is not keeping up */
  deliver(line: string): boolean {
    this.head();
    return this.sink.onData(Buffer.from(`event: message\ndata: ${line}\n\n`));
  }

  head(): void {
    if (this.headSent) return;
    this.headSent = true;
    const headers = { ...(this.sse ? SSE_HEADERS : JSON_HEADERS) };
    if (this.sessionHeader !== undefined) headers['mcp-session-id'] = this.sessionHeader;
    this.sink.onHead(200, headers);
  }

  finish(line: string): void {
    clearTimeout(this.timer);
    if (this.rewrite !== undefined) line = this.rewrite(line);
    if (this.sse) {
      this.deliver(line);
    } else {
      this.head();
      this.sink.onData(Buffer.from(line));
    }
    this.sink.onEnd();
  }

  fail(err: GovError): void {
    clearTimeout(this.timer);
    if (this.headSent && this.sse) {
      // The stream is open: end it with the error as its answer.
      this.sink.onData(Buffer.from(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: this.id, error: { code: err.code, message: err.message } })}\n\n`));
      this.sink.onEnd();
      return;
    }
    this.sink.onError(err);
  }
}

class StdioSession {
  readonly child: ChildProcess;
  readonly pending = new Map<string, Pending>();
  getStream: ResponseSink | null = null;
  lastSeen = Date.now();
  exited = false;
  /** the client's share this session holds (released when it ends, whichever way) */
  lease: Lease | undefined;
  /** resident bytes at the last sample (the child and its descendants); -1 before the first */
  rss = -1;
  /** pooled children (2026-07-28 traffic): the era this connection speaks, fixed at its first message */
  era: Era | undefined;
  /** a legacy pooled child: what its `initialize` (sent by the sidecar) answered */
  initResult: Record<string, unknown> | undefined;
  /** a pooled child is ready for requests (a legacy one once initialized) */
  ready: Promise<void> | undefined;
  /** the sidecar ended it: its exit says nothing about the server */
  ending = false;

  constructor(
    readonly id: string,
    private readonly up: StdioUpstream,
    opts: StdioUpstreamOptions,
  ) {
    this.child = spawn(opts.command, opts.args, {
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const splitter = new LineSplitter(opts.maxLineBytes, (line) => this.onLine(line, opts), () => {
      opts.onFramingError('message_too_large');
      opts.log('warn', 'stdio server wrote an oversize line; dropped', { session: id });
    });
    // Child-process events run contained (transport/contain.ts): a bug met while routing one
    // line must not end the process and every other session with it.
    this.child.stdout!.on('data', (c: Buffer) => {
      try {
        splitter.push(c);
      } catch (e) {
        reportInternal(e, undefined, `stdio session ${id}`);
      }
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (t: string) => {
      for (const l of t.split('\n')) if (l.trim()) opts.log('info', l, { session: id, stream: 'stderr', command: opts.command });
    });
    this.child.stdin!.on('error', () => {}); // EPIPE after the child died is reported by 'exit'
    this.child.on('error', (err) => {
      opts.log('error', `stdio server failed to start: ${err.message}`, { session: id, command: opts.command });
      this.onExit(`failed to start: ${err.message}`);
    });
    this.child.on('exit', (code, signal) => {
      try {
        this.onExit(`exited (${signal ?? code})`);
      } catch (e) {
        reportInternal(e, undefined, `stdio session ${id} exit`);
      }
    });
  }

  /**
   * Sends a request of our own and resolves with the child's whole answer (a result or an
   * error); rejects when the child ends or stays silent for `timeoutMs`.
   */
  ask(id: string, body: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const key = JSON.stringify(id);
      let answer: Record<string, unknown> | undefined;
      const sink: ResponseSink = {
        onHead: () => {},
        onData: (chunk) => {
          try {
            answer = JSON.parse(chunk.toString('utf8')) as Record<string, unknown>;
          } catch (e) {
            reject(new GovError('upstream_error', { subject: 'invalid answer', details: (e as Error).message }));
          }
          return true;
        },
        onEnd: () => {
          if (answer !== undefined) resolve(answer);
        },
        onError: (err) => reject(err),
      };
      const p = new Pending(id, sink, false, undefined, undefined);
      p.timer = setTimeout(() => {
        if (this.pending.get(key) === p) this.pending.delete(key);
        reject(new GovError('upstream_timeout', { details: `stdio server did not answer ${id}` }));
      }, timeoutMs);
      this.pending.set(key, p);
      this.write(Buffer.from(body));
    });
  }

  /** Runs the 2025 handshake ourselves, for a child that serves stateless requests of a 2025 server. */
  initializeForPool(timeoutMs: number): Promise<void> {
    this.ready ??= this.ask(POOL_INIT_ID, JSON.stringify({
      jsonrpc: '2.0', id: POOL_INIT_ID, method: 'initialize',
      params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: PROXY_INFO },
    }), timeoutMs).then((answer) => {
      const result = answer['result'];
      if (result === null || typeof result !== 'object') {
        const message = (answer['error'] as { message?: unknown } | undefined)?.message;
        throw new Error(`stdio server refused initialize: ${typeof message === 'string' ? message : 'no result'}`);
      }
      this.initResult = result as Record<string, unknown>;
      this.write(Buffer.from('{"jsonrpc":"2.0","method":"notifications/initialized"}'));
    });
    return this.ready;
  }

  write(body: Buffer): void {
    this.lastSeen = Date.now();
    const stdin = this.child.stdin!;
    stdin.write(toLine(body));
    stdin.write('\n');
  }

  private onLine(line: Buffer, opts: StdioUpstreamOptions): void {
    if (line.length === 0) return;
    const decoded = decodeLine(line, { allowBatch: false, maxDepth: opts.maxDepth });
    if (!decoded.ok) {
      opts.onFramingError(decoded.errorType);
      opts.log('warn', `stdio server wrote an invalid line (${decoded.errorType}); dropped`, { session: this.id });
      // When the broken line still names a request we wait for, that request gets an error now
      // rather than a timeout later. Invalid UTF-8 on stdio is answered this way, never relayed:
      // the id is read from a lenient decode (U+FFFD), only to know whom to answer.
      let id = decoded.id;
      if (id === undefined) {
        try {
          id = (JSON.parse(line.toString('utf8')) as { id?: unknown } | null)?.id as typeof id;
        } catch {
          // no id to be read: the request it answered runs into its timeout
        }
      }
      const key = id === undefined || id === null ? undefined : JSON.stringify(id);
      const p = key === undefined ? undefined : this.pending.get(key);
      if (p !== undefined) {
        this.pending.delete(key!);
        p.fail(new GovError('upstream_error', { subject: `invalid answer (${decoded.errorType})`, details: decoded.error.message }));
      }
      return;
    }
    const msg = decoded.message as { id?: unknown; method?: string; params?: { progressToken?: unknown } };
    const text = line.toString('utf8');
    if (msg.method === undefined) {
      // An answer: ends the client request with that id.
      const key = JSON.stringify(msg.id);
      const p = this.pending.get(key);
      if (p === undefined) {
        opts.log('warn', 'stdio server answered an unknown request id; dropped', { session: this.id, id: msg.id });
        return;
      }
      this.pending.delete(key);
      p.finish(text);
      return;
    }
    // A notification or server→client request: route it to the request it belongs to.
    const token = msg.params?.progressToken;
    let target: Pending | undefined;
    if (token !== undefined) {
      for (const p of this.pending.values()) if (p.sse && p.progressToken === token) { target = p; break; }
    } else if (msg.id !== undefined) {
      for (const p of this.pending.values()) if (p.sse) target = p; // the most recent open stream
    }
    if (target !== undefined) {
      if (!target.deliver(text)) this.throttle(target.sink);
      return;
    }
    if (this.getStream !== null) {
      if (!this.getStream.onData(Buffer.from(`event: message\ndata: ${text}\n\n`))) this.throttle(this.getStream);
      return;
    }
    if (msg.id !== undefined) {
      // A server→client request nobody can receive: answer it so the server does not wait forever.
      this.write(Buffer.from(jsonError(msg.id, -32601, 'No client stream open to deliver this request')));
    }
  }

  /** A slow client pauses the child's output (backpressure reaches the server) until it drains. */
  private throttle(sink: ResponseSink): void {
    const out = this.child.stdout!;
    out.pause();
    sink.resume = () => out.resume();
  }

  private onExit(why: string): void {
    if (this.exited) return;
    this.exited = true;
    const err = new GovError('upstream_connection_failed', { details: `stdio server ${why}` });
    for (const p of this.pending.values()) p.fail(err);
    this.pending.clear();
    this.getStream?.onEnd();
    this.getStream = null;
    this.up.removed(this);
  }

  /** nothing in flight and no stream open: ending it now costs its client a new initialize only */
  get idle(): boolean {
    return this.pending.size === 0 && this.getStream === null;
  }

  kill(): void {
    this.ending = true;
    if (this.exited) return;
    this.child.stdin!.end();
    this.child.kill('SIGTERM');
    const hard = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    hard.unref();
  }
}

export class StdioUpstream implements Upstream {
  readonly target: string;
  private readonly sessions = new Map<string, StdioSession>();
  private readonly sweeper: NodeJS.Timeout;
  /** children shared by stateless 2026-07-28 requests, which have no session to own one */
  private readonly pool: StdioSession[] = [];
  private poolNext = 0;
  private internalIds = 0;
  /** the era the server speaks to stateless requests, once a probe learned it; cleared when its children fail */
  private era: Era | undefined;
  private probing: Promise<Era> | undefined;
  private readonly perClient: ClientQuota;
  /** the memory budget is measured only where /proc exists; elsewhere the session caps alone apply */
  private readonly measured = procAvailable();
  readonly sweepMs: number;

  constructor(private readonly opts: StdioUpstreamOptions) {
    this.target = `stdio:${opts.command}`;
    this.perClient = new ClientQuota(opts.maxSessionsPerClient, 'stdio_sessions_per_client', opts.onRefused);
    this.sweepMs = opts.sweepMs ?? Math.min(30_000, Math.max(1000, Math.min(opts.idleMs, opts.idleUnderPressureMs) / 4));
    if (!this.measured) opts.log('warn', 'no /proc on this system: the stdio memory budget cannot be measured; only the session caps bound stdio servers');
    this.sweeper = setInterval(() => {
      try {
        this.sweep();
      } catch (e) {
        reportInternal(e, undefined, 'stdio idle sweep'); // a timer's exception would end the process
      }
    }, this.sweepMs);
    this.sweeper.unref();
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  send(req: UpstreamRequest, sink: ResponseSink): void {
    const sid = req.headers['mcp-session-id'];
    if (req.method === 'POST' && req.message?.isInitialize) {
      this.initialize(req, sink);
      return;
    }
    if (sid === undefined && req.method === 'POST' && req.message?.modern) {
      this.modern(req, sink);
      return;
    }
    if (sid === undefined) {
      const id = req.message?.id;
      reply(sink, 400, jsonError(id, -32000, 'Bad Request: Mcp-Session-Id header is required'));
      return;
    }
    const session = this.sessions.get(sid);
    if (session === undefined) {
      reply(sink, 404, jsonError(req.message?.id, -32001, 'Session not found'));
      return;
    }
    session.lastSeen = Date.now();
    if (req.method === 'DELETE') {
      this.end(session);
      reply(sink, 200, '');
      return;
    }
    if (req.method === 'GET') {
      if (session.getStream !== null) {
        reply(sink, 409, jsonError(null, -32000, 'Conflict: Only one SSE stream is allowed per session'));
        return;
      }
      session.getStream = sink;
      sink.abort = () => {
        if (session.getStream === sink) session.getStream = null;
        session.child.stdout!.resume();
      };
      sink.onHead(200, { ...SSE_HEADERS, 'mcp-session-id': sid });
      sink.onData(Buffer.from(': stream open\n\n'));
      return;
    }
    this.post(session, req, sink, undefined);
  }

  private initialize(req: UpstreamRequest, sink: ResponseSink): void {
    const o = this.opts;
    // The client's own share first: a client at its share is told so, whatever the totals.
    const lease = req.client === undefined ? undefined : this.perClient.acquire(req.client);
    if (req.client !== undefined && lease === undefined) {
      sink.onError(new GovError('rate_limited', {
        details: `this client holds ${o.maxSessionsPerClient} stdio sessions (THOUGHTGATE_MAX_STDIO_SESSIONS_PER_CLIENT); end one with DELETE or retry later`,
        retryAfter: SESSION_RETRY_AFTER_S,
      }));
      return;
    }
    if (this.sessions.size >= o.maxSessions) {
      lease?.release();
      o.onRefused?.('stdio_sessions');
      sink.onError(new GovError('rate_limited', { details: `stdio session limit reached (${o.maxSessions})`, retryAfter: SESSION_RETRY_AFTER_S }));
      return;
    }
    // Children started since the last sweep are sampled now: a burst of initializes inside one
    // sweep interval then meets the budget too, not only the session caps.
    if (this.measured) for (const s of this.sessions.values()) if (s.rss < 0) this.sample(s);
    if (this.measured && !this.makeRoom()) {
      lease?.release();
      o.onRefused?.('stdio_memory');
      sink.onError(new GovError('rate_limited', {
        details: `stdio servers use their memory budget (THOUGHTGATE_STDIO_MEMORY_BUDGET_MB=${Math.round(o.memoryBudgetBytes / 1048576)}) and none is idle`,
        retryAfter: Math.max(1, Math.ceil(this.sweepMs / 1000)),
      }));
      return;
    }
    const sid = randomUUID();
    const session = new StdioSession(sid, this, this.opts);
    session.lease = lease;
    this.sessions.set(sid, session);
    this.opts.log('info', 'stdio server started for new session', { session: sid, pid: session.child.pid, command: this.opts.command });
    this.post(session, req, sink, sid);
  }

  private post(session: StdioSession, req: UpstreamRequest, sink: ResponseSink, newSessionId: string | undefined): void {
    const m = req.message;
    if (m === undefined) {
      // No single message: the pipeline forwards a batch (2025-03-26 sessions) this way.
      this.batch(session, req, sink);
      return;
    }
    if (m.kind !== 'request') {
      session.write(req.body!);
      reply(sink, 202, '');
      return;
    }
    const key = JSON.stringify(m.id);
    if (session.pending.has(key)) {
      reply(sink, 200, jsonError(m.id, -32600, 'Invalid JSON-RPC request: a request with this id is already in flight'), JSON_HEADERS);
      return;
    }
    const accept = req.headers['accept'] ?? '';
    const p = new Pending(m.id, sink, !m.isInitialize && accept.includes('text/event-stream'), m.progressToken, newSessionId);
    this.track(session, key, p, sink);
    session.write(req.body!);
  }

  /**
   * A batch (2025-03-26): each element goes to the session's child as its own line and the
   * answers come back as one JSON array. Lines rather than one batch line because current
   * SDK servers no longer read batches; the elements were judged one by one, so sending them
   * one by one changes nothing the gates saw. Each element is the exact text that was judged.
   */
  private batch(session: StdioSession, req: UpstreamRequest, sink: ResponseSink): void {
    let parsed;
    try {
      parsed = parseStrict(req.body ?? Buffer.alloc(0), this.opts.maxDepth);
    } catch (e) {
      reply(sink, 200, jsonError(null, -32600, `Invalid JSON-RPC batch: ${(e as Error).message}`));
      return;
    }
    const { bytes, value, scan } = parsed;
    if (!Array.isArray(value)) {
      reply(sink, 200, jsonError(null, -32600, 'Invalid JSON-RPC batch: not an array'));
      return;
    }
    const answers: string[] = [];
    const aborts: (() => void)[] = [];
    let waiting = 0;
    let sent = false;
    const done = (): void => {
      if (sent || waiting > 0) return;
      sent = true;
      if (answers.length === 0) reply(sink, 202, '');
      else reply(sink, 200, `[${answers.join(',')}]`);
    };
    sink.abort = () => {
      sent = true;
      for (const a of aborts) a();
    };
    for (let k = 0; k < value.length; k++) {
      const el = value[k] as { id?: unknown; method?: unknown } | null;
      const raw = bytes.subarray(scan.elements[2 * k]!, scan.elements[2 * k + 1]!);
      if (el === null || typeof el !== 'object' || el.method === undefined || el.id === undefined) {
        session.write(raw); // a notification or a response to the server: nothing comes back
        continue;
      }
      const key = JSON.stringify(el.id);
      if (session.pending.has(key)) {
        answers.push(jsonError(el.id, -32600, 'Invalid JSON-RPC request: a request with this id is already in flight'));
        continue;
      }
      waiting++;
      const id = el.id;
      const part: ResponseSink = {
        onHead: () => {},
        onData: (chunk) => {
          answers.push(chunk.toString('utf8'));
          return true;
        },
        onEnd: () => {
          waiting--;
          done();
        },
        onError: (err) => {
          answers.push(jsonError(id, err.code, err.message));
          waiting--;
          done();
        },
      };
      this.track(session, key, new Pending(id, part, false, undefined, undefined), part);
      aborts.push(part.abort!);
      session.write(raw);
    }
    done();
  }

  /** Registers a request waiting for the child's answer, with its timeout and abort. */
  private track(session: StdioSession, key: string, p: Pending, sink: ResponseSink, cancel?: { id: string; meta?: Record<string, unknown> }): void {
    p.timer = setTimeout(() => {
      if (session.pending.get(key) === p) session.pending.delete(key);
      p.fail(new GovError('upstream_timeout', { details: `no answer from the stdio server in ${this.opts.requestTimeoutMs / 1000}s` }));
    }, this.opts.requestTimeoutMs);
    sink.abort = () => {
      clearTimeout(p.timer);
      const unanswered = session.pending.get(key) === p;
      if (unanswered) session.pending.delete(key);
      session.child.stdout!.resume(); // a client gone while throttling must not stall the others
      // 2026-07-28: closing the stream is cancellation. The child knows the request by our id
      // (`cancel.id`), so the client could not cancel it itself: we tell the child, in the
      // request's own envelope on a 2026-07-28 child.
      if (unanswered && cancel !== undefined && !session.exited) session.write(Buffer.from(cancelledNotice(cancel.id, cancel.meta)));
    };
    session.pending.set(key, p);
  }

  /** @internal called by a session whose child is gone */
  removed(session: StdioSession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    session.lease?.release();
    const i = this.pool.indexOf(session);
    if (i !== -1) {
      this.pool.splice(i, 1);
      // A pooled child that ended by itself: the server may have changed; probe again.
      if (!session.ending && session.era === this.era) this.era = undefined;
    }
  }

  /** Ends a session: out of the table and its client's share given back now, the child told to go. */
  private end(session: StdioSession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    session.lease?.release();
    session.kill();
  }

  /** Sessions' and pooled children's memory: sampled sizes, and the sampled average for a child not sampled yet. */
  private memoryNow(): number {
    let sampled = 0;
    let known = 0;
    let unknown = 0;
    for (const s of this.sessions.values()) if (s.rss >= 0) { sampled += s.rss; known++; } else unknown++;
    for (const s of this.pool) if (s.rss >= 0) { sampled += s.rss; known++; } else unknown++;
    return known === 0 ? 0 : sampled + unknown * (sampled / known);
  }

  private sample(s: StdioSession): void {
    if (!s.exited && s.child.pid !== undefined) s.rss = residentBytes(s.child.pid) ?? s.rss;
  }

  private sizeOf(s: StdioSession, average: number): number {
    return s.rss >= 0 ? s.rss : average;
  }

  /**
   * Ends idle children, oldest-idle first, until the budget has `room` bytes free (the expected
   * size of one more child at initialize, 0 in the sweep). False when not enough could be freed.
   * Their memory is counted as gone at once: the exit follows within the kill's grace period.
   */
  private makeRoom(forNewChild = true): boolean {
    const budget = this.opts.memoryBudgetBytes;
    const count = this.sessions.size + this.pool.length;
    let total = this.memoryNow();
    const average = count === 0 ? 0 : total / count;
    const room = forNewChild ? average : 0;
    if (total + room <= budget) return true;
    const idle = [...this.sessions.values()].filter((s) => s.idle).sort((a, b) => a.lastSeen - b.lastSeen);
    for (const s of idle) {
      if (total + room <= budget) break;
      total -= this.sizeOf(s, average);
      this.opts.log('info', 'stdio servers over their memory budget; ending an idle one', { session: s.id, rss: s.rss, total, budget });
      this.opts.onReaped?.('memory_budget');
      this.end(s);
    }
    return total + room <= budget;
  }

  private spawnPooled(): StdioSession {
    const s = new StdioSession(`pool-${randomUUID()}`, this, this.opts);
    this.opts.log('info', 'stdio server started for stateless requests', { session: s.id, pid: s.child.pid, command: this.opts.command });
    this.pool.push(s);
    return s;
  }

  /** A pooled child of the source's era: a new one while the pool has room, else the next in turn. */
  private pooledChild(era: Era): StdioSession {
    const mine = this.pool.filter((s) => s.era === era);
    if (mine.length < this.opts.poolSize) {
      const s = this.spawnPooled();
      s.era = era;
      // A modern child needs no opening of ours: its first request's envelope fixes its era.
      if (era === 'modern') s.ready = Promise.resolve();
      else s.initializeForPool(this.opts.requestTimeoutMs).catch(() => {}); // awaited by each request
      return s;
    }
    return mine[this.poolNext++ % mine.length]!;
  }

  /** The era the server speaks: known, or learned once by the probe every waiting request shares. */
  private sourceEra(): Promise<Era> {
    if (this.era !== undefined) return Promise.resolve(this.era);
    this.probing ??= this.probe().finally(() => { this.probing = undefined; });
    return this.probing;
  }

  /**
   * Asks a new child `server/discover` as its first message. A server that lists 2026-07-28 keeps
   * the child as the first of its modern pool; any other answer means 2025 only, and the child is
   * ended: its era is fixed by that first message (the Python SDK refuses a 2025 handshake after
   * it), so the 2025 children are new connections.
   */
  private async probe(): Promise<Era> {
    const child = this.spawnPooled();
    let era: Era;
    let why = '';
    try {
      era = eraFromDiscover(await child.ask(POOL_PROBE_ID, discoverRequest(POOL_PROBE_ID), Math.min(this.opts.requestTimeoutMs, PROBE_TIMEOUT_MS)));
    } catch (e) {
      // No answer: some 2025 servers stay silent on, or exit at, a request before the handshake.
      // Taking it for 2025 costs little when wrong: a server that refuses the handshake fails its
      // child's initialize, and the next request probes again.
      era = 'legacy';
      why = (e instanceof GovError ? e.details : undefined) ?? (e as Error).message;
    }
    if (era === 'modern') {
      child.era = 'modern';
      child.ready = Promise.resolve();
    } else {
      this.dropPooled(child);
    }
    this.opts.log('info', era === 'modern' ? 'stdio server speaks 2026-07-28: stateless requests go to it as they are' : 'stdio server speaks only 2025 revisions: stateless requests are translated for it', {
      command: this.opts.command, ...(why !== '' && { probe: why }),
    });
    this.era = era;
    // Children of the era the server spoke before (it was replaced, or its children failed) go.
    for (const s of [...this.pool]) if (s.era !== undefined && s.era !== era) this.dropPooled(s);
    return era;
  }

  private dropPooled(s: StdioSession): void {
    const i = this.pool.indexOf(s);
    if (i !== -1) this.pool.splice(i, 1);
    s.kill();
  }

  /** A stateless (2026-07-28) message: answered from, or sent to, a pooled child of the server's era. */
  private modern(req: UpstreamRequest, sink: ResponseSink): void {
    this.sourceEra().then((era) => {
      const child = this.pooledChild(era);
      return child.ready!.then(() => this.sendPooled(child, req, sink), (err: unknown) => {
        // The child never became ready: ask the server's era again on the next request.
        if (this.era === child.era) this.era = undefined;
        this.dropPooled(child);
        throw err;
      });
    }).catch((err: unknown) => {
      sink.onError(err instanceof GovError ? err : new GovError('upstream_connection_failed', { details: (err as Error)?.message ?? String(err) }));
    });
  }

  private sendPooled(child: StdioSession, req: UpstreamRequest, sink: ResponseSink): void {
    const m = req.message!;
    const legacy = child.era === 'legacy';
    if (legacy && m.method === 'server/discover') {
      reply(sink, 200, JSON.stringify({ jsonrpc: '2.0', id: m.id, result: discoverFromInitialize(child.initResult!) }));
      return;
    }
    if (m.kind !== 'request') {
      child.write(legacy ? Buffer.from(JSON.stringify(toLegacyMessage(JSON.parse(req.body!.toString('utf8')) as Record<string, unknown>))) : req.body!);
      reply(sink, 202, '');
      return;
    }
    // Requests from many clients share this child: give each an id of ours, put theirs back after.
    const internal = `tg-${++this.internalIds}`;
    const message = JSON.parse(req.body!.toString('utf8')) as Record<string, unknown>;
    const envelope = legacy ? undefined : envelopeOf(message);
    if (legacy) toLegacyMessage(message, internal);
    else message['id'] = internal;
    const p = new Pending(m.id, sink, false, undefined, undefined);
    const isList = m.method?.endsWith('/list') === true;
    const serverInfo = child.initResult?.['serverInfo'];
    p.rewrite = (line) => {
      const answer = JSON.parse(line) as Record<string, unknown>;
      answer['id'] = m.id;
      if (legacy) toModernAnswer(answer, serverInfo, isList);
      else if (isList && answer['result'] !== null && typeof answer['result'] === 'object') {
        // A list the gates filter is never shared between callers, whatever the server suggests.
        Object.assign(answer['result'] as object, UNCACHED);
      }
      return JSON.stringify(answer);
    };
    this.track(child, JSON.stringify(internal), p, sink, { id: internal, meta: envelope });
    child.write(Buffer.from(JSON.stringify(message)));
  }

  /** Samples the children's memory, keeps to the budget, and ends children idle too long. */
  private sweep(): void {
    const o = this.opts;
    if (this.measured) {
      // Synchronous procfs reads: a few µs each, at most a few hundred per sweep.
      for (const s of this.sessions.values()) this.sample(s);
      for (const s of this.pool) this.sample(s);
      this.makeRoom(false);
    }
    const pressure = this.sessions.size > PRESSURE * o.maxSessions || (this.measured && this.memoryNow() > PRESSURE * o.memoryBudgetBytes);
    const limit = pressure ? Math.min(o.idleMs, o.idleUnderPressureMs) : o.idleMs;
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.idle && now - s.lastSeen > limit) {
        const early = now - s.lastSeen <= o.idleMs;
        o.log('info', early ? 'stdio session idle under pressure; ending its server' : 'stdio session idle; ending its server', { session: s.id });
        o.onReaped?.(early ? 'idle_under_pressure' : 'idle');
        this.end(s);
      }
    }
    if (this.measured) o.onMemory?.(this.memoryNow());
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const exits: Promise<void>[] = [];
    for (const s of [...this.sessions.values(), ...this.pool]) {
      if (!s.exited) exits.push(new Promise((r) => s.child.once('exit', () => r())));
      s.lease?.release();
      s.kill();
    }
    this.sessions.clear();
    this.pool.length = 0;
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}

function reply(sink: ResponseSink, status: number, body: string, headers: HeaderMap = JSON_HEADERS): void {
  sink.onHead(status, body.length > 0 ? headers : {});
  if (body.length > 0) sink.onData(Buffer.from(body));
  sink.onEnd();
}
