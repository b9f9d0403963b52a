// LeanHttpUpstream: a minimal HTTP/1.1 client on net.Socket for the proxy's hot path, used in place
// of undici where the bench shows it wins (DESIGN.md "Platform facts"). One origin, http: only,
// a keep-alive pool of up to `connections` sockets, ONE request in flight per socket (no
// pipelining: a POST is never replayed, and one socket's failure fails only its own request).
//
// Per request: one Job (the sink's resume/abort handles), one buffer written with one write.
// Per socket: one Conn with its parser and bound listeners, reused for every request on it.
// Timeouts: one coarse interval sweeps the sockets (head deadline, body silence, idle expiry,
// connect deadline) instead of a timer per request.
import net from 'node:net';
import { GovError } from '../../core/errors.js';
import type { HeaderMap, ResponseSink, Upstream, UpstreamHealth, UpstreamRequest } from '../types.js';
import { Reachability, UNREACHABLE_CODES } from './probe.js';
import { StreamShare, defaultStreamShare } from './stream-share.js';
import { DEFAULT_MAX_HEAD_BYTES, ResponseParser, S_DONE, S_ERROR, type ParserHandler } from './parser.js';
import { RequestHeaderError, RequestWriter } from './request.js';

export interface LeanHttpUpstreamOptions {
  url: string;
  /** time from `send` to the response head */
  requestTimeoutMs: number;
  /** longest silence inside a body (not counted while the sink has us paused) */
  streamReadTimeoutMs: number;
  /** most sockets open at once */
  connections: number;
  /** longest a socket waits idle for reuse (default 4000); a server's `Keep-Alive: timeout` lowers it */
  idleTimeoutMs?: number;
  /** most upstream connections GET streams may hold (default half of `connections`); more are refused (429) */
  streamConnections?: number;
  /** connect deadline (default min(5000, requestTimeoutMs)) */
  connectTimeoutMs?: number;
  /** largest response head and largest trailer section (default 64 KiB) */
  maxHeadBytes?: number;
}

/** A server's Keep-Alive timeout hint is trusted minus this margin, for the FIN already in flight. */
const KEEP_ALIVE_MARGIN_MS = 1000;

// Error codes: the same names undici gives the same conditions, so `details` read the same
// whichever client runs (and mapUpstreamError's classification applies unchanged).
const HEADERS_TIMEOUT = 'UND_ERR_HEADERS_TIMEOUT';
const BODY_TIMEOUT = 'UND_ERR_BODY_TIMEOUT';
const CONNECT_TIMEOUT = 'UND_ERR_CONNECT_TIMEOUT';
const SOCKET = 'UND_ERR_SOCKET';
const DESTROYED = 'UND_ERR_DESTROYED';

/** Failures that mean "nothing usable came back from the server" when no response byte was read. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT',
  'ECONNABORTED', CONNECT_TIMEOUT, SOCKET, DESTROYED,
]);

/**
 * The GovError for a failure, classified as mapUpstreamError (upstream/http.ts) does: timeouts →
 * upstream_timeout; connection failures before any response byte → upstream_connection_failed;
 * everything else (malformed responses, failures mid-response) → upstream_error.
 */
export function leanUpstreamError(code: string, message: string, responseBytes: number): GovError {
  if (code === HEADERS_TIMEOUT || code === BODY_TIMEOUT) return new GovError('upstream_timeout', { details: code });
  if (responseBytes === 0 && CONNECTION_CODES.has(code)) {
    return new GovError('upstream_connection_failed', { details: `${code}: ${message}` });
  }
  return new GovError('upstream_error', { subject: message, details: code || message });
}

// Job states
const J_NEW = 0;
const J_QUEUED = 1;
const J_ACTIVE = 2;
const J_DONE = 3;

const EMPTY = Buffer.alloc(0);

/**
 * Every socket reads into this one buffer (net's `onread`): no allocation per read and no Readable
 * stream machinery (~15% less CPU per request than 'data' events, measured). Parsing is synchronous
 * inside the read callback; bytes that outlive it (body chunks handed to a sink, the unparsed rest
 * of a read when a sink pauses us) are copied out first.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** One request: what to write, its deadline, and the handles given to the sink. */
class Job {
  state = J_NEW;
  conn: Conn | null = null;
  head: Buffer = EMPTY;
  body: Buffer | null = null;
  deadline = 0;
  headSeen = false;
  readonly sink: ResponseSink;

  constructor(sink: ResponseSink) {
    this.sink = sink;
  }

  /** sink.resume: the client drained */
  readonly resume = (): void => {
    this.conn?.resumeJob(this);
  };

  /** sink.abort: the client went away. The sink hears nothing more; an unread response kills its socket. */
  readonly abort = (): void => {
    const state = this.state;
    if (state === J_DONE) return;
    this.state = J_DONE;
    this.head = EMPTY; // a queued job is skipped (lazily) when it reaches the front
    this.body = null;
    const conn = this.conn;
    if (conn !== null) {
      this.conn = null;
      conn.abortJob(this);
    }
  };
}

/** FIFO of waiting jobs: an array with a head index (no shift()). */
class JobQueue {
  private items: (Job | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(job: Job): void {
    this.items.push(job);
  }

  peek(): Job | undefined {
    return this.items[this.head];
  }

  shift(): Job | undefined {
    const items = this.items;
    if (this.head >= items.length) return undefined;
    const job = items[this.head];
    items[this.head++] = undefined;
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    return job;
  }

  drain(): Job[] {
    const rest = this.items.slice(this.head).filter((j): j is Job => j !== undefined);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

// Conn states
const C_BUSY = 1;
const C_IDLE = 2;
const C_DEAD = 3;

/** One socket, its parser, and the request in flight on it (if any). */
class Conn implements ParserHandler {
  readonly socket: net.Socket;
  readonly parser: ResponseParser;
  private readonly owner: LeanHttpUpstream;
  state = C_BUSY;
  job: Job | null = null;
  connected = false;
  connectDeadline: number;
  /** the sink asked us to pause; `pending` holds the unparsed rest of the read we stopped in */
  paused = false;
  /** socket.pause() is in effect (may outlive `paused` when a resume completed the response) */
  private readStopped = false;
  private pending: Buffer | null = null;
  /** EOF seen while bytes were still pending (handled once they are parsed) */
  private eof = false;
  /** response bytes read for the current job */
  bytesIn = 0;
  lastActivity = 0;
  idleSince = 0;
  idleLimit: number;
  unrefd = false;

  constructor(owner: LeanHttpUpstream, host: string, port: number, now: number) {
    this.owner = owner;
    this.idleLimit = owner.idleTimeoutMs;
    this.connectDeadline = now + owner.connectTimeoutMs;
    this.parser = new ResponseParser(this, owner.maxHeadBytes);
    const socket = net.connect({
      host,
      port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      onread: { buffer: READ_BUFFER, callback: this.onRead },
    });
    this.socket = socket;
    socket.on('connect', this.onConnect);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** Writes `job` on this socket (connected or still connecting: net queues the write). */
  start(job: Job, now: number): void {
    this.state = C_BUSY;
    this.job = job;
    job.conn = this;
    job.state = J_ACTIVE;
    this.bytesIn = 0;
    this.lastActivity = now;
    this.parser.reset();
    if (this.unrefd) {
      this.unrefd = false;
      this.socket.ref();
    }
    const socket = this.socket;
    if (job.body === null) socket.write(job.head);
    else {
      socket.cork();
      socket.write(job.head);
      socket.write(job.body);
      socket.uncork();
    }
    job.head = EMPTY;
    job.body = null;
  }

  // ---- socket events (bound once per socket) ----

  private readonly onConnect = (): void => {
    this.connected = true;
  };

  /** `n` bytes were read into READ_BUFFER. Pausing goes through socket.pause(), so always true. */
  private readonly onRead = (n: number): boolean => {
    if (this.job === null) {
      // Bytes nobody asked for (an idle socket, or after an abort): never trust this socket again.
      this.kill();
      return true;
    }
    this.bytesIn += n;
    this.lastActivity = Date.now();
    this.run(READ_BUFFER.subarray(0, n), 0);
    return true;
  };

  private readonly onEnd = (): void => {
    if (this.pending !== null) {
      this.eof = true; // parse what we hold first (on resume)
      return;
    }
    this.atEof();
  };

  private readonly onError = (err: Error): void => {
    const code = (err as { code?: string }).code ?? SOCKET;
    if (this.job !== null) this.failJob(code, err.message);
    else this.kill();
  };

  private readonly onClose = (): void => {
    if (this.state === C_DEAD) return;
    if (this.pending !== null) this.failJob(SOCKET, 'other side closed'); // bytes left unparsed: not "complete"
    else this.atEof();
  };

  private atEof(): void {
    if (this.job !== null) {
      if (this.parser.finish()) this.complete(false);
      else this.failJob(SOCKET, 'other side closed');
    }
    this.kill();
  }

  // ---- parsing ----

  private run(buf: Buffer, pos: number): void {
    const job = this.job!;
    const parser = this.parser;
    const at = parser.execute(buf, pos, buf.length);
    if (this.job !== job) return; // aborted or failed inside a sink callback
    const state = parser.state;
    if (state === S_DONE) this.complete(at < buf.length);
    else if (state === S_ERROR) this.failJob(parser.errorCode, parser.error);
    else if (this.paused && at < buf.length) {
      // READ_BUFFER is overwritten by the next read on any socket: keep a copy of the rest. (The
      // rest of a pending copy that paused us again is ours already: a slice will do.)
      this.pending = buf.buffer === READ_BUFFER.buffer ? Buffer.from(buf.subarray(at)) : buf.subarray(at);
    }
  }

  onResponseHead(status: number, headers: HeaderMap): boolean {
    const job = this.job!;
    job.headSeen = true;
    try {
      job.sink.onHead(status, headers);
    } catch (err) {
      this.sinkThrew(job, err);
      return false;
    }
    return this.job === job;
  }

  onResponseBody(chunk: Buffer): boolean {
    const job = this.job!;
    let more: boolean;
    try {
      more = job.sink.onData(Buffer.from(chunk)); // the sink may keep it; the read buffer is shared
    } catch (err) {
      this.sinkThrew(job, err);
      return false;
    }
    if (this.job !== job) return false;
    if (more === false) {
      this.paused = true;
      if (!this.readStopped) {
        this.readStopped = true;
        this.socket.pause();
      }
      return false;
    }
    return true;
  }

  /** A sink callback threw: like undici, the request fails (the socket is not reusable mid-response). */
  private sinkThrew(job: Job, err: unknown): void {
    if (this.job !== job) return;
    this.failJob('', err instanceof Error ? err.message : String(err));
  }

  resumeJob(job: Job): void {
    if (this.job !== job || !this.paused) return;
    this.paused = false;
    this.lastActivity = Date.now();
    const pending = this.pending;
    if (pending !== null) {
      this.pending = null;
      this.run(pending, 0);
      if (this.job !== job || this.paused) return; // finished, failed or paused again
    }
    if (this.eof) {
      this.atEof();
      return;
    }
    if (this.readStopped) {
      this.readStopped = false;
      this.socket.resume();
    }
  }

  // ---- endings ----

  /** The response was read completely; `extra`: bytes followed it (so the socket is not reusable). */
  private complete(extra: boolean): void {
    const job = this.job!;
    const parser = this.parser;
    this.job = null;
    job.conn = null;
    job.state = J_DONE;
    this.pending = null;
    let reuse = !extra && parser.keepAlive && !this.eof && !this.socket.readableEnded;
    const hint = parser.keepAliveHintMs;
    if (reuse && hint >= 0) {
      const limit = hint - KEEP_ALIVE_MARGIN_MS;
      if (limit <= 0) reuse = false;
      else if (limit < this.idleLimit) this.idleLimit = limit;
    }
    this.paused = false;
    if (this.readStopped) {
      this.readStopped = false;
      if (reuse) this.socket.resume();
    }
    if (reuse) this.owner.release(this);
    else this.kill();
    job.sink.onEnd();
  }

  /**
   * Fails the job in flight with the error for `code` and kills the socket (whatever is left of
   * that response is unread). The sink hears about it last, when the pool is consistent again.
   */
  failJob(code: string, message: string): void {
    const job = this.job;
    if (job === null) {
      this.kill();
      return;
    }
    this.job = null;
    job.conn = null;
    job.state = J_DONE;
    const err = leanUpstreamError(code, message, this.bytesIn);
    // error path only: a socket that never connected tells /ready the upstream is unreachable
    if (!this.connected && UNREACHABLE_CODES.has(code)) this.owner.reachability.failed(code);
    this.kill();
    job.sink.onError(err);
  }

  /** The job's sink went away: its response is unread, so the socket goes too. */
  abortJob(job: Job): void {
    if (this.job !== job) return;
    this.job = null;
    this.kill();
  }

  /** Destroys the socket and forgets it. Idempotent. */
  kill(): void {
    if (this.state === C_DEAD) return;
    const wasIdle = this.state === C_IDLE;
    this.state = C_DEAD;
    this.pending = null;
    this.socket.destroy();
    this.owner.forget(this, wasIdle);
  }

  /** Called by the sweeper. */
  check(now: number, opts: LeanHttpUpstream): void {
    const job = this.job;
    if (this.state === C_IDLE) {
      if (now - this.idleSince >= this.idleLimit) this.kill();
      else if (!this.unrefd) {
        this.unrefd = true;
        this.socket.unref(); // an idle pool does not keep the process alive
      }
      return;
    }
    if (job === null) return;
    if (!this.connected && now >= this.connectDeadline) this.failJob(CONNECT_TIMEOUT, 'connect timeout');
    else if (!job.headSeen) {
      if (now >= job.deadline) this.failJob(HEADERS_TIMEOUT, 'headers timeout');
    } else if (!this.paused && now - this.lastActivity >= opts.streamReadTimeoutMs) {
      // If the head already went out, the sink decides what an error now means (it cuts the stream).
      this.failJob(BODY_TIMEOUT, 'body timeout');
    }
  }
}

export class LeanHttpUpstream implements Upstream {
  readonly target: string;
  readonly requestTimeoutMs: number;
  readonly streamReadTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxHeadBytes: number;
  private readonly max: number;
  private readonly host: string;
  private readonly port: number;
  private readonly writer: RequestWriter;
  private readonly conns: Conn[] = [];
  /** idle sockets, most recently used last (LIFO: the warmest socket is the least likely to be closed) */
  private readonly idle: Conn[] = [];
  private readonly queue = new JobQueue();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** @internal connect failures and a periodic TCP probe: what /ready reports */
  readonly reachability: Reachability;
  private readonly streams: StreamShare;

  constructor(opts: LeanHttpUpstreamOptions) {
    const url = new URL(opts.url);
    if (url.protocol !== 'http:') throw new Error(`LeanHttpUpstream speaks http: only, not ${url.protocol}`);
    this.target = url.origin; // like HttpUpstream (a Pool on the origin): userinfo in the URL is not sent
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? 80 : Number(url.port);
    this.writer = new RequestWriter(url.pathname + url.search, url.host);
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.streamReadTimeoutMs = opts.streamReadTimeoutMs;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 4000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? Math.min(5000, opts.requestTimeoutMs);
    this.maxHeadBytes = opts.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
    this.max = Number.isFinite(opts.connections) && opts.connections >= 1 ? Math.floor(opts.connections) : 1;
    // Sweep often enough that a deadline is late by at most ~1/8 of the shortest limit (10–500 ms).
    const shortest = Math.min(this.requestTimeoutMs, this.streamReadTimeoutMs, this.idleTimeoutMs, this.connectTimeoutMs);
    const period = Math.max(10, Math.min(500, Math.floor(shortest / 8)));
    this.timer = setInterval(this.sweep, period);
    this.timer.unref();
    this.reachability = new Reachability(this.host, this.port);
    this.streams = new StreamShare(opts.streamConnections !== undefined && opts.streamConnections >= 1 ? Math.min(Math.floor(opts.streamConnections), this.max) : defaultStreamShare(this.max));
  }

  health(): UpstreamHealth {
    return this.reachability.health;
  }

  /** sockets open now (connecting, busy or idle) */
  get connectionCount(): number {
    return this.conns.length;
  }

  /** requests waiting for a socket */
  get queued(): number {
    return this.queue.size;
  }

  send(req: UpstreamRequest, sink: ResponseSink): void {
    if (req.method === 'GET') {
      this.sendStream(req, sink);
      return;
    }
    const job = new Job(sink);
    sink.resume = job.resume;
    sink.abort = job.abort;
    this.dispatch(req, job, sink);
  }

  /** A GET stream: within its share of the pool (refused beyond it), its slot freed when it ends. */
  private sendStream(req: UpstreamRequest, sink: ResponseSink): void {
    const slot = this.streams.admit(sink, req.correlationId);
    if (slot === undefined) return;
    const job = new Job(slot);
    sink.resume = job.resume;
    sink.abort = () => {
      slot.release();
      job.abort();
    };
    this.dispatch(req, job, slot);
  }

  /** GET streams open now (holding or waiting for a connection) */
  get openStreams(): number {
    return this.streams.open;
  }

  private dispatch(req: UpstreamRequest, job: Job, sink: ResponseSink): void {
    if (this.closed) {
      job.state = J_DONE;
      sink.onError(leanUpstreamError(DESTROYED, 'upstream client closed', 0));
      return;
    }
    try {
      this.writer.build(req, job);
    } catch (err) {
      job.state = J_DONE;
      if (!(err instanceof RequestHeaderError)) throw err;
      sink.onError(leanUpstreamError(err.code, err.message, 0));
      return;
    }
    const now = Date.now();
    job.deadline = now + this.requestTimeoutMs;
    const conn = this.takeIdle(now);
    if (conn !== null) conn.start(job, now);
    else if (this.conns.length < this.max) this.open(now).start(job, now);
    else {
      job.state = J_QUEUED;
      this.queue.push(job);
    }
  }

  /** Destroys every socket; requests in flight or waiting fail with upstream_connection_failed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.reachability.close();
    const sockets = this.conns.map((c) => c.socket);
    for (const job of this.queue.drain()) {
      if (job.state !== J_QUEUED) continue;
      job.state = J_DONE;
      job.sink.onError(leanUpstreamError(DESTROYED, 'upstream client closed', 0));
    }
    for (const conn of this.conns.slice()) conn.failJob(DESTROYED, 'upstream client closed');
    await Promise.all(sockets.map((s) => (s.closed ? undefined : new Promise<void>((resolve) => s.once('close', () => resolve())))));
  }

  // ---- pool ----

  private open(now: number): Conn {
    const conn = new Conn(this, this.host, this.port, now);
    this.conns.push(conn);
    return conn;
  }

  private takeIdle(now: number): Conn | null {
    const idle = this.idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      conn.state = C_BUSY; // off the idle list (kill below must not look for it there)
      if (now - conn.idleSince < conn.idleLimit && !conn.socket.readableEnded && !conn.socket.destroyed) return conn;
      conn.kill();
    }
    return null;
  }

  /** A socket finished a response and may carry another: the next waiting job, or the idle list. */
  release(conn: Conn): void {
    const now = Date.now();
    if (!this.closed) {
      const next = this.nextQueued();
      if (next !== undefined) {
        conn.start(next, now);
        return;
      }
    }
    conn.state = C_IDLE;
    conn.idleSince = now;
    this.idle.push(conn);
  }

  /** A socket died. A waiting job gets a fresh socket in its place. */
  forget(conn: Conn, wasIdle: boolean): void {
    const i = this.conns.indexOf(conn);
    if (i !== -1) this.conns.splice(i, 1);
    if (wasIdle) {
      const k = this.idle.indexOf(conn);
      if (k !== -1) this.idle.splice(k, 1);
    }
    if (this.closed || this.conns.length >= this.max) return;
    const next = this.nextQueued();
    if (next !== undefined) {
      const now = Date.now();
      this.open(now).start(next, now);
    }
  }

  private nextQueued(): Job | undefined {
    const q = this.queue;
    for (;;) {
      const job = q.shift();
      if (job === undefined || job.state === J_QUEUED) return job;
    }
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    const conns = this.conns.slice();
    for (let i = 0; i < conns.length; i++) conns[i]!.check(now, this);
    // Waiting jobs share one timeout, so the oldest is at the front.
    const q = this.queue;
    for (let job = q.peek(); job !== undefined; job = q.peek()) {
      if (job.state === J_QUEUED && now < job.deadline) break;
      q.shift();
      if (job.state !== J_QUEUED) continue;
      job.state = J_DONE;
      job.sink.onError(leanUpstreamError(HEADERS_TIMEOUT, 'headers timeout (waiting for a connection)', 0));
    }
  };
}
