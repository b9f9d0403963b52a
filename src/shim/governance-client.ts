// The shim's side of src/wrap/protocol.ts: judge, long-poll wait, list filter and event
// counts, over one keep-alive connection pool to the governance service `wrap` runs on
// 127.0.0.1. Every failure (refused, timed out, non-2xx, an answer of the wrong shape) is a
// GovernanceUnavailable, so the shim has exactly one thing to decide on: its profile.
import http from 'node:http';
import https from 'node:https';
import {
  SHIM_API,
  type EventsReport,
  type FilterRequest,
  type JudgeAnswer,
  type JudgeRequest,
  type WaitAnswer,
} from '../wrap/protocol.js';

export class GovernanceUnavailable extends Error {
  constructor(
    message: string,
    /** the HTTP status when the service answered at all */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'GovernanceUnavailable';
  }
}

/** What the shim needs from the governance service; tests substitute their own. */
export interface GovernanceApi {
  /** resolves when GET /healthz answers 2xx */
  health(timeoutMs: number): Promise<void>;
  judge(message: JudgeRequest['message']): Promise<JudgeAnswer>;
  /** one long poll of at most `timeoutMs` */
  wait(approvalId: string, timeoutMs: number): Promise<WaitAnswer>;
  /** the changed list response, or undefined when it is unchanged */
  filter(method: string, message: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
  events(report: Omit<EventsReport, 'serverId'>, timeoutMs?: number): Promise<void>;
  /** drops pooled and in-flight connections (in-flight calls reject) */
  close(): void;
}

export interface GovernanceClientOptions {
  /** e.g. http://127.0.0.1:41234 (a path prefix is kept) */
  baseUrl: string;
  serverId: string;
  /** the per-run secret; undefined sends no Authorization header */
  token: string | undefined;
  /** per judge/filter call (default 10 s) */
  callTimeoutMs?: number;
  /** largest answer body accepted (list filters can carry big tool lists) */
  maxAnswerBytes?: number;
}

/** Extra time a long poll may take beyond the timeout it asked the service for. */
const WAIT_GRACE_MS = 10_000;
/** A long poll asks for at most this (protocol.ts: N ≤ 30000). */
export const MAX_WAIT_MS = 30_000;

type Method = 'GET' | 'POST';

export class GovernanceClient implements GovernanceApi {
  private readonly base: URL;
  private readonly prefix: string;
  private readonly transport: typeof http | typeof https;
  private readonly agent: http.Agent;
  private readonly auth: string | undefined;
  private readonly callTimeoutMs: number;
  private readonly maxAnswerBytes: number;
  private readonly inFlight = new Set<http.ClientRequest>();
  private closed = false;

  constructor(private readonly opts: GovernanceClientOptions) {
    this.base = new URL(opts.baseUrl);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new Error(`governance URL must be http: or https: (got '${opts.baseUrl}')`);
    }
    this.prefix = this.base.pathname.replace(/\/+$/, '');
    this.transport = this.base.protocol === 'https:' ? https : http;
    // Keep-alive: a judge per governed call must not pay a TCP handshake; long polls each hold
    // their own socket, so the pool is not capped.
    this.agent = new this.transport.Agent({ keepAlive: true, keepAliveMsecs: 1000, scheduling: 'lifo' });
    this.auth = opts.token ? `Bearer ${opts.token}` : undefined;
    this.callTimeoutMs = opts.callTimeoutMs ?? 10_000;
    this.maxAnswerBytes = opts.maxAnswerBytes ?? 64 * 1024 * 1024;
  }

  async health(timeoutMs: number): Promise<void> {
    await this.call('GET', '/healthz', undefined, timeoutMs);
  }

  async judge(message: JudgeRequest['message']): Promise<JudgeAnswer> {
    const body: JudgeRequest = { serverId: this.opts.serverId, message };
    return checkJudgeAnswer(await this.call('POST', `${SHIM_API}/judge`, body, this.callTimeoutMs), false) as JudgeAnswer;
  }

  async wait(approvalId: string, timeoutMs: number): Promise<WaitAnswer> {
    const n = Math.max(0, Math.min(MAX_WAIT_MS, Math.floor(timeoutMs)));
    const path = `${SHIM_API}/wait/${encodeURIComponent(approvalId)}?timeoutMs=${n}`;
    const v = await this.call('GET', path, undefined, n + WAIT_GRACE_MS);
    if (!isObject(v) || typeof v['done'] !== 'boolean') throw new GovernanceUnavailable('wait answer has no boolean `done`');
    if (v['done'] === false) return { done: false };
    return { done: true, answer: checkJudgeAnswer(v['answer'], true) as Exclude<JudgeAnswer, { action: 'hold' }> };
  }

  async filter(method: string, message: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
    const body: FilterRequest = { serverId: this.opts.serverId, method, message };
    const v = await this.call('POST', `${SHIM_API}/filter`, body, this.callTimeoutMs);
    if (!isObject(v)) throw new GovernanceUnavailable('filter answer is not an object');
    const changed = v['message'];
    if (changed === undefined) return undefined;
    if (!isObject(changed)) throw new GovernanceUnavailable('filter answer `message` is not an object');
    return changed;
  }

  async events(report: Omit<EventsReport, 'serverId'>, timeoutMs = this.callTimeoutMs): Promise<void> {
    const body: EventsReport = { serverId: this.opts.serverId, ...report };
    await this.call('POST', `${SHIM_API}/events`, body, timeoutMs);
  }

  close(): void {
    this.closed = true;
    for (const req of this.inFlight) req.destroy(new GovernanceUnavailable('governance client closed'));
    this.inFlight.clear();
    this.agent.destroy();
  }

  private async call(method: Method, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    try {
      return await this.once(method, path, payload, timeoutMs);
    } catch (e) {
      // A pooled socket the service closed while idle fails at once with ECONNRESET before the
      // request was read; sending it again on a fresh socket is safe (node:http docs' advice).
      if ((e as RetryableReset).reusedSocketReset === true && !this.closed) return this.once(method, path, payload, timeoutMs);
      throw e;
    }
  }

  private once(method: Method, path: string, payload: Buffer | undefined, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new GovernanceUnavailable('governance client closed'));
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
      if (this.auth !== undefined) headers['authorization'] = this.auth;
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = payload.length;
      }
      const req = this.transport.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          path: this.prefix + path,
          method,
          headers,
          agent: this.agent,
        },
        (res) => this.readAnswer(res, method, path, resolve, reject),
      );
      this.inFlight.add(req);
      const timer = setTimeout(() => req.destroy(new GovernanceUnavailable(`${method} ${path} timed out after ${timeoutMs} ms`)), timeoutMs);
      req.once('close', () => {
        clearTimeout(timer);
        this.inFlight.delete(req);
      });
      req.once('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof GovernanceUnavailable) return reject(err);
        const failure = new GovernanceUnavailable(`${method} ${path}: ${err.code ?? err.message}`) as GovernanceUnavailable & RetryableReset;
        if (req.reusedSocket && err.code === 'ECONNRESET') failure.reusedSocketReset = true;
        reject(failure);
      });
      req.end(payload);
    });
  }

  private readAnswer(
    res: http.IncomingMessage,
    method: Method,
    path: string,
    resolve: (v: unknown) => void,
    reject: (e: Error) => void,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > this.maxAnswerBytes) {
        res.destroy(new GovernanceUnavailable(`${method} ${path}: answer larger than ${this.maxAnswerBytes} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.once('error', reject);
    res.once('end', () => {
      const status = res.statusCode ?? 0;
      const text = Buffer.concat(chunks).toString('utf8');
      if (status < 200 || status > 299) {
        reject(new GovernanceUnavailable(`${method} ${path}: HTTP ${status}${text ? ` ${text.slice(0, 200)}` : ''}`, status));
        return;
      }
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new GovernanceUnavailable(`${method} ${path}: answer is not JSON`, status));
      }
    });
  }
}

interface RetryableReset {
  reusedSocketReset?: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape of a judge (or final wait) answer; a malformed one is a service failure. */
function checkJudgeAnswer(v: unknown, final: boolean): JudgeAnswer {
  if (!isObject(v)) throw new GovernanceUnavailable('judge answer is not an object');
  switch (v['action']) {
    case 'forward':
      return { action: 'forward' };
    case 'respond': {
      const response = v['response'];
      if (!isObject(response)) throw new GovernanceUnavailable('judge answer `respond` carries no response object');
      return { action: 'respond', response };
    }
    case 'hold': {
      if (final) throw new GovernanceUnavailable('a final wait answer cannot be `hold`');
      const approvalId = v['approvalId'];
      if (typeof approvalId !== 'string' || approvalId === '') throw new GovernanceUnavailable('judge answer `hold` has no approvalId');
      const consoleUrl = typeof v['consoleUrl'] === 'string' ? v['consoleUrl'] : '';
      return { action: 'hold', approvalId, consoleUrl };
    }
    default:
      throw new GovernanceUnavailable(`judge answer has an unknown action ${JSON.stringify(v['action'])}`);
  }
}
