// `thoughtgate shim`: sits between a desktop agent and one stdio MCP server it launches.
// Both directions are framed with the project's NDJSON checks; governed agent→server calls
// are judged by the governance service `thoughtgate wrap` runs (same gates, approvals and
// Cedar as the sidecar); list results are filtered there; everything else is relayed as the
// exact bytes. A call held for a person is taken out of the stream, so it never blocks the
// messages after it. The server is ended with us, whatever way we end.
import { randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { GovError, errorResponse } from '../core/errors.js';
import type { JsonRpcId } from '../core/jsonrpc.js';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { reject as framingError } from '../framing/decode.js';
import { LineSplitter, decodeLine, type LineOptions, type LineResult } from '../framing/ndjson.js';
import { LIST_METHODS, MCP_CLIENT_METHODS, isGoverned, lookalikeOf } from '../policy/governable.js';
import { ENV_GOVERNANCE_TOKEN, type JudgeAnswer } from '../wrap/protocol.js';
import { ServerProcess, exitCodeOf, type ServerExit } from './child.js';
import { EventCounts } from './event-counts.js';
import { GovernanceClient, GovernanceUnavailable, MAX_WAIT_MS, type GovernanceApi } from './governance-client.js';
import { OrderedWriter, type Slot } from './ordered-writer.js';

export type Profile = 'production' | 'development';
export type ShimLog = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface ShimOptions {
  serverId: string;
  governanceUrl: string;
  /** the per-run secret (THOUGHTGATE_GOVERNANCE_TOKEN); production refuses to start without one */
  token: string | undefined;
  profile: Profile;
  /** the server: command[0] with the rest as its arguments */
  command: string[];
  /** from the agent */
  stdin: Readable;
  /** to the agent: only protocol messages are ever written here */
  stdout: Writable;
  /** our diagnostics and the server's stderr */
  stderr: Writable;
  /** the environment the server starts from (the governance variables are removed) */
  env: NodeJS.ProcessEnv;
  maxLineBytes?: number;
  maxDepth?: number;
  log: ShimLog;
  /** SIGINT/SIGTERM/SIGHUP of this process end the server (the CLI sets it; tests drive `stdin`) */
  handleSignals?: boolean;
  /** the governance service (default: an HTTP client of `governanceUrl`); tests substitute one */
  governance?: GovernanceApi;
  /** how often a held call with a progress token tells the agent it still waits (default 15 s) */
  progressIntervalMs?: number;
  /** each polite step of ending the server (default 2 s) */
  graceMs?: number;
  /** how often counts are reported (default 1 s) */
  eventsIntervalMs?: number;
  /** how long one long poll for a decision asks to wait (default 25 s, at most 30 s) */
  waitPollMs?: number;
  /** GET /healthz attempts at start (default 6, with backoff) */
  healthTries?: number;
  /** first pause before asking again after a failed long poll (default 500 ms, doubling) */
  waitRetryMs?: number;
}

/** Runs the shim until the server exits; resolves with the exit code to pass on. */
export function runShim(opts: ShimOptions): Promise<number> {
  return new Shim(opts).run();
}

/** The fields of a decoded message the shim looks at. */
interface Message {
  id?: JsonRpcId;
  method?: string;
  params?: { _meta?: { progressToken?: unknown }; requestId?: unknown; name?: unknown; uri?: unknown };
  result?: unknown;
}

type Request = Message & { id: string | number; method: string };

const WAIT_RETRIES = 3;
const EXIT_FLUSH_MS = 1000;
const STDOUT_END_WAIT_MS = 1000;

class Shim {
  readonly governance: GovernanceApi;
  readonly toAgent: OrderedWriter;
  toServer!: OrderedWriter;
  readonly counts = new EventCounts();
  /** governed calls not yet decided (being judged, or held), by id: the agent may cancel them */
  readonly undecided = new Map<string | number, JudgedCall | HeldCall>();
  readonly progressIntervalMs: number;
  readonly waitPollMs: number;
  readonly waitRetryMs: number;
  private child!: ServerProcess;
  private readonly lineOpts: LineOptions;
  private readonly maxLineBytes: number;
  /** agent→server list requests by id: their answers are filtered */
  private readonly listRequests = new Map<string | number, string>();
  private readonly agentLines: LineSplitter;
  private serverLines!: LineSplitter;
  private inputEnded = false;
  private agentGone = false;
  private signalled = false;
  private serverPaused = false;
  private agentPaused = false;
  private eventsTimer: NodeJS.Timeout | undefined;
  /** the report being delivered, if any (at most one at a time) */
  private eventsFlight: Promise<void> | undefined;
  private serverStdoutEnded!: Promise<void>;

  constructor(readonly opts: ShimOptions) {
    this.maxLineBytes = opts.maxLineBytes ?? DEFAULT_LIMITS.maxLineBytes;
    this.lineOpts = { allowBatch: false, maxDepth: opts.maxDepth ?? DEFAULT_LIMITS.maxDepth };
    this.governance = opts.governance ?? new GovernanceClient({ baseUrl: opts.governanceUrl, serverId: opts.serverId, token: opts.token });
    this.progressIntervalMs = opts.progressIntervalMs ?? 15_000;
    this.waitPollMs = Math.min(opts.waitPollMs ?? 25_000, MAX_WAIT_MS);
    this.waitRetryMs = opts.waitRetryMs ?? 500;
    this.toAgent = new OrderedWriter(opts.stdout, { onFull: () => this.pauseServer(), onDrain: () => this.resumeServer() });
    this.agentLines = new LineSplitter(this.maxLineBytes, (line) => this.onAgentLine(line), (n) => this.onAgentOversize(n));
    this.onAgentData = this.onAgentData.bind(this);
    this.onAgentEnd = this.onAgentEnd.bind(this);
    this.onServerData = this.onServerData.bind(this);
    this.onSignal = this.onSignal.bind(this);
    this.onStdoutError = this.onStdoutError.bind(this);
  }

  get production(): boolean {
    return this.opts.profile === 'production';
  }

  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.opts.log(level, msg, fields);
  }

  /** A line for a person, on stderr (never on stdout: that is the agent's protocol stream). */
  say(text: string): void {
    this.opts.stderr.write(`thoughtgate shim (${this.opts.serverId}): ${text}\n`);
  }

  async run(): Promise<number> {
    if (this.opts.command.length === 0) {
      this.say('no server command given');
      return 2;
    }
    if (!(await this.preflight())) {
      this.governance.close();
      return 1;
    }
    this.child = new ServerProcess({
      command: this.opts.command,
      env: this.opts.env,
      stderr: this.opts.stderr === process.stderr ? 'inherit' : this.opts.stderr,
      ...(this.opts.graceMs !== undefined ? { graceMs: this.opts.graceMs } : {}),
    });
    this.toServer = new OrderedWriter(this.child.stdin, { onFull: () => this.pauseAgent(), onDrain: () => this.resumeAgent() });
    this.serverLines = new LineSplitter(this.maxLineBytes, (line) => this.onServerLine(line), (n) => this.onServerOversize(n));
    this.serverStdoutEnded = new Promise((resolve) => {
      this.child.stdout.once('end', resolve);
      this.child.stdout.once('close', resolve);
    });
    this.child.stdout.on('data', this.onServerData);
    this.opts.stdout.on('error', this.onStdoutError);
    this.opts.stdin.on('data', this.onAgentData);
    this.opts.stdin.once('end', this.onAgentEnd);
    this.opts.stdin.once('error', this.onAgentEnd);
    if (this.opts.handleSignals === true) for (const s of SIGNALS) process.on(s, this.onSignal);
    this.eventsTimer = setInterval(() => this.flushEvents(), this.opts.eventsIntervalMs ?? 1000);
    this.eventsTimer.unref();
    if (this.child.pid !== undefined) this.log('info', 'shim started', { serverPid: this.child.pid, command: this.opts.command, profile: this.opts.profile });

    const exit = await this.child.exited;
    return this.finish(exit);
  }

  /** Is the governance service there (and does it take our token)? Production will not run ungoverned. */
  private async preflight(): Promise<boolean> {
    if (this.production && !this.opts.token) {
      this.say(`${ENV_GOVERNANCE_TOKEN} is not set; refusing to start (production never runs a server ungoverned)`);
      return false;
    }
    const tries = Math.max(1, this.opts.healthTries ?? 6);
    let lastError = '';
    let reachable = false;
    for (let i = 0; i < tries && !reachable; i++) {
      if (i > 0) await delay(Math.min(1000, 100 * 2 ** (i - 1)));
      try {
        await this.governance.health(1000);
        reachable = true;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
    if (!reachable) {
      if (this.production) {
        this.say(`the governance service at ${this.opts.governanceUrl} is unreachable (${lastError}); refusing to start (production never forwards ungoverned)`);
        return false;
      }
      this.log('warn', 'WOULD_BLOCK: governance service unreachable at start; forwarding ungoverned (development profile)', { error: lastError });
      return true;
    }
    // An empty report proves the token is accepted before the first call depends on it.
    try {
      await this.governance.events({ messages: [], framing: [] }, 2000);
    } catch (e) {
      const status = (e as GovernanceUnavailable).status;
      if (status === 401 || status === 403) {
        if (this.production) {
          this.say(`the governance service at ${this.opts.governanceUrl} refused our token (HTTP ${status}); refusing to start`);
          return false;
        }
        this.log('warn', 'WOULD_BLOCK: governance service refused the token; forwarding (development profile)', { status });
      }
    }
    return true;
  }

  // ---- agent → server ----

  private onAgentData(chunk: Buffer): void {
    this.agentLines.push(chunk);
  }

  private onAgentLine(line: Buffer): void {
    const d = decodeLine(line, this.lineOpts);
    if (!d.ok) {
      this.onAgentFramingError(line, d);
      return;
    }
    const msg = d.message as Message;
    const method = msg.method;
    if (method === undefined) {
      this.counts.message('inbound', 'response');
      this.toServer.push(line);
      return;
    }
    this.counts.message('inbound', method);
    if (msg.id === undefined) {
      if (method === 'notifications/cancelled' && this.undecided.size > 0 && this.cancelUndecided(msg)) return;
      if (MCP_CLIENT_METHODS.has(method) && !isGoverned(method)) this.toServer.push(line);
      else this.onUnusualNotification(line, msg, method);
      return;
    }
    // Governed calls, and methods that are not MCP's (lookalikes are refused there; the
    // service applies `governance.unknown_methods` to the rest), are judged by the service.
    if (isGoverned(method) || !MCP_CLIENT_METHODS.has(method)) {
      this.judge(line, msg as Request);
      return;
    }
    if (Object.hasOwn(LIST_METHODS, method)) this.listRequests.set(msg.id as string | number, method);
    this.toServer.push(line);
  }

  /**
   * A notification naming a governed method cannot be judged (no id to answer), and a lookalike
   * of an MCP method is never passed on: both are dropped here. Any other method that is not
   * MCP's goes to the service, which applies `governance.unknown_methods`; its place in the
   * stream is kept meanwhile.
   */
  private onUnusualNotification(line: Buffer, msg: Message, method: string): void {
    const imitated = isGoverned(method) ? method : lookalikeOf(method);
    if (imitated !== undefined) {
      const errorType = imitated === method ? 'governed_notification' : 'method_lookalike';
      this.counts.framingError('inbound', errorType);
      this.log('warn', `agent sent ${imitated === method ? 'a governed method as a notification' : `a lookalike of ${imitated}`}; not forwarded`, { method });
      return;
    }
    const slot = this.toServer.reserve();
    this.governance.judge(msg as never).then(
      (answer) => {
        if (answer.action === 'forward') return this.toServer.fill(slot, line);
        this.toServer.skip(slot);
        this.log('info', 'notification refused by governance; not forwarded', { method });
      },
      (err: unknown) => {
        const reason = err instanceof Error ? err.message : String(err);
        if (this.production) {
          this.toServer.skip(slot);
          this.log('error', 'governance service unavailable; notification not forwarded', { method, error: reason });
        } else {
          this.log('warn', 'WOULD_BLOCK: governance service unavailable; notification forwarded (development profile)', { method, error: reason });
          this.toServer.fill(slot, line);
        }
      },
    );
  }

  private judge(line: Buffer, request: Request): void {
    const call = new JudgedCall(this, line, request, this.toServer.reserve());
    this.governance.judge(request as never).then(
      (answer) => call.onAnswer(answer),
      (err: unknown) => call.onFailure(err),
    );
  }

  /**
   * The agent gave up on a call the server has not seen (being judged or held): it never
   * reaches the server, and neither does the cancellation.
   */
  private cancelUndecided(msg: Message): boolean {
    const id = msg.params?.requestId;
    if (typeof id !== 'string' && typeof id !== 'number') return false;
    const call = this.undecided.get(id);
    if (call === undefined) return false;
    call.cancel();
    this.log('info', 'governed call cancelled by the agent before it was forwarded', { id });
    return true;
  }

  private onAgentFramingError(line: Buffer, d: Extract<LineResult, { ok: false }>): void {
    this.counts.framingError('inbound', d.errorType);
    this.log('warn', `agent sent an invalid line (${d.errorType}); not forwarded`, { error: d.error.message });
    // JSON-RPC: a request we cannot read is answered with id null; a response is never answered.
    if (shapeOf(line) === 'response') return;
    this.toAgent.push(errorResponse(d.id ?? null, d.error, randomUUID()));
  }

  private onAgentOversize(bytes: number): void {
    this.counts.framingError('inbound', 'message_too_large');
    this.log('warn', 'agent sent a line over the size limit; not forwarded', { bytes, maxLineBytes: this.maxLineBytes });
    const err = framingError('message_too_large', `line of ${bytes} bytes exceeds the maximum of ${this.maxLineBytes} bytes`);
    this.toAgent.push(errorResponse(null, err, randomUUID()));
  }

  private onAgentEnd(): void {
    if (this.inputEnded) return;
    this.agentLines.end();
    this.stopReadingAgent();
    this.log('info', 'agent closed its input; ending the server');
    // Calls still being judged go out (or are answered) first; then the server's stdin closes.
    void this.toServer.settled().then(() => this.endServer());
  }

  private stopReadingAgent(): void {
    this.inputEnded = true;
    this.opts.stdin.off('data', this.onAgentData);
    this.opts.stdin.pause();
    // Nobody is left to answer a held call; calls still being judged go out (the agent sent them).
    for (const call of this.undecided.values()) if (call instanceof HeldCall) call.cancel();
  }

  private endServer(): void {
    this.toServer.close();
    void this.child.end();
  }

  // ---- governed calls: decisions ----

  /** A response the governance service composed; it always answers the call's own id. */
  respond(id: string | number, response: Record<string, unknown>): void {
    this.toAgent.push(JSON.stringify({ ...response, jsonrpc: '2.0', id }));
  }

  /** The service failed: production answers -32013 and never forwards; development forwards. */
  governanceFailed(line: Buffer, request: Request, err: unknown, slot: Slot | undefined): void {
    const reason = err instanceof Error ? err.message : String(err);
    if (!this.production) {
      this.log('warn', 'WOULD_BLOCK: governance service unavailable; forwarding (development profile)', {
        method: request.method, id: request.id, name: request.params?.name ?? request.params?.uri, error: reason,
      });
      if (slot !== undefined) this.toServer.fill(slot, line);
      else this.toServer.push(line);
      return;
    }
    this.log('error', 'governance service unavailable; call refused', { method: request.method, id: request.id, error: reason });
    if (slot !== undefined) this.toServer.skip(slot);
    const e = new GovError('service_unavailable', { details: `governance service unavailable: ${reason}` });
    this.toAgent.push(errorResponse(request.id, e, randomUUID()));
  }

  hold(line: Buffer, request: Request, approvalId: string, consoleUrl: string): void {
    if (this.inputEnded) return; // the agent is gone: nobody to answer
    const held = new HeldCall(this, line, request, approvalId, consoleUrl);
    this.undecided.set(request.id, held);
    this.log('info', 'call held for approval', { method: request.method, id: request.id, approvalId, consoleUrl });
    held.start();
  }

  // ---- server → agent ----

  private onServerData(chunk: Buffer): void {
    this.serverLines.push(chunk);
  }

  private onServerLine(line: Buffer): void {
    const d = decodeLine(line, this.lineOpts);
    if (!d.ok) {
      this.onServerFramingError(line, d);
      return;
    }
    const msg = d.message as Message;
    if (msg.method !== undefined) {
      this.counts.message('outbound', msg.method);
      this.toAgent.push(line);
      return;
    }
    this.counts.message('outbound', 'response');
    if (this.listRequests.size > 0 && (typeof msg.id === 'string' || typeof msg.id === 'number')) {
      const method = this.listRequests.get(msg.id);
      if (method !== undefined) {
        this.listRequests.delete(msg.id);
        if (msg.result !== undefined) {
          this.filterList(line, msg as Request, method);
          return;
        }
      }
    }
    this.toAgent.push(line);
  }

  private filterList(line: Buffer, response: Request, method: string): void {
    const slot = this.toAgent.reserve();
    this.governance.filter(method, response as unknown as Record<string, unknown>).then(
      (changed) => this.toAgent.fill(slot, changed === undefined ? line : JSON.stringify({ ...changed, jsonrpc: '2.0', id: response.id })),
      (err: unknown) => this.filterFailed(slot, line, response, method, err),
    );
  }

  /** Never show an unfiltered list in production: hidden items would leak. */
  private filterFailed(slot: Slot, line: Buffer, response: Request, method: string, err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    if (!this.production) {
      this.log('warn', 'WOULD_BLOCK: governance service unavailable; list relayed unfiltered (development profile)', { method, error: reason });
      this.toAgent.fill(slot, line);
      return;
    }
    this.log('error', 'governance service unavailable; list result withheld', { method, error: reason });
    const e = new GovError('service_unavailable', { details: `governance service unavailable: ${reason}` });
    this.toAgent.fill(slot, errorResponse(response.id, e, randomUUID()));
  }

  private onServerFramingError(line: Buffer, d: Extract<LineResult, { ok: false }>): void {
    this.counts.framingError('outbound', d.errorType);
    this.log('warn', `server wrote an invalid line (${d.errorType}); dropped`, { error: d.error.message });
    if (d.id === undefined || d.id === null) return;
    const shape = shapeOf(line);
    if (shape === 'request') {
      // The server waits for an answer to its request: tell it why none will come.
      this.toServer.push(errorResponse(d.id, d.error, randomUUID()));
    } else if (shape === 'response') {
      // The agent waits for this answer: an error beats waiting forever.
      if (typeof d.id === 'string' || typeof d.id === 'number') this.listRequests.delete(d.id);
      const e = new GovError('upstream_error', { details: `the server sent an invalid response (${d.errorType})` });
      this.toAgent.push(errorResponse(d.id, e, randomUUID()));
    }
  }

  private onServerOversize(bytes: number): void {
    this.counts.framingError('outbound', 'message_too_large');
    this.log('warn', 'server wrote a line over the size limit; dropped', { bytes, maxLineBytes: this.maxLineBytes });
  }

  // ---- backpressure: a full sink pauses the stream that feeds it ----

  private pauseServer(): void {
    this.serverPaused = true;
    this.child?.stdout.pause();
  }

  private resumeServer(): void {
    if (!this.serverPaused) return;
    this.serverPaused = false;
    this.child.stdout.resume();
  }

  private pauseAgent(): void {
    this.agentPaused = true;
    this.opts.stdin.pause();
  }

  private resumeAgent(): void {
    if (!this.agentPaused) return;
    this.agentPaused = false;
    if (!this.inputEnded) this.opts.stdin.resume();
  }

  // ---- lifecycle ----

  private onStdoutError(err: Error): void {
    if (this.agentGone) return;
    this.agentGone = true;
    this.log('warn', 'cannot write to the agent (it is gone); ending the server', { error: (err as NodeJS.ErrnoException).code ?? err.message });
    this.toAgent.close();
    this.resumeServer(); // keep draining the server so it is not stuck writing while it ends
    if (!this.inputEnded) this.stopReadingAgent();
    this.endServer();
  }

  private onSignal(signal: NodeJS.Signals): void {
    if (this.signalled) {
      this.log('warn', `second ${signal}: killing the server`);
      this.child.kill();
      return;
    }
    this.signalled = true;
    this.log('info', `${signal}: passing it to the server and ending it`);
    this.child.signalGroup(signal);
    if (!this.inputEnded) this.stopReadingAgent();
    this.endServer();
  }

  private async finish(exit: ServerExit): Promise<number> {
    const code = exitCodeOf(exit);
    if (this.child.spawnError !== undefined) {
      this.say(`cannot start the server '${this.opts.command[0]}': ${this.child.spawnError.message}`);
    } else {
      this.log('info', 'server exited', { code: exit.code, signal: exit.signal, exitCode: code });
    }
    // Relay what the server wrote before it exited, and the answers still being filtered.
    await raceDelay(this.serverStdoutEnded, STDOUT_END_WAIT_MS);
    this.serverLines.end();
    await raceDelay(this.toAgent.settled(), EXIT_FLUSH_MS * 10);
    if (!this.inputEnded) this.stopReadingAgent();
    // ('error' listeners stay: a late EPIPE must not become an uncaught exception.)
    this.opts.stdin.off('end', this.onAgentEnd);
    this.child.stdout.off('data', this.onServerData);
    if (this.opts.handleSignals === true) for (const s of SIGNALS) process.off(s, this.onSignal);
    for (const call of this.undecided.values()) call.cancel();
    clearInterval(this.eventsTimer);
    if (this.eventsFlight !== undefined) await raceDelay(this.eventsFlight, EXIT_FLUSH_MS);
    await raceDelay(this.flushEvents(EXIT_FLUSH_MS), EXIT_FLUSH_MS);
    this.governance.close();
    return code;
  }

  /** Reports the counts so far; never more than one report in flight, never blocks relaying. */
  flushEvents(timeoutMs?: number): Promise<void> {
    if (this.eventsFlight !== undefined || this.counts.isEmpty) return Promise.resolve();
    const report = this.counts.take();
    this.eventsFlight = this.governance.events(report, timeoutMs).then(
      () => {
        this.eventsFlight = undefined;
      },
      (e: unknown) => {
        this.eventsFlight = undefined;
        this.counts.restore(report); // the next report carries them
        this.log('debug', 'could not report counts; will retry', { error: (e as Error).message });
      },
    );
    return this.eventsFlight;
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** One governed call while the service judges it; keeps its place in the agent→server stream. */
class JudgedCall {
  private cancelled = false;

  constructor(
    private readonly shim: Shim,
    private readonly line: Buffer,
    private readonly request: Request,
    private readonly slot: Slot,
  ) {
    shim.undecided.set(request.id, this);
  }

  cancel(): void {
    this.cancelled = true;
  }

  onAnswer(answer: JudgeAnswer): void {
    const shim = this.shim;
    if (this.settle()) return;
    switch (answer.action) {
      case 'forward':
        shim.toServer.fill(this.slot, this.line);
        return;
      case 'respond':
        shim.toServer.skip(this.slot);
        shim.respond(this.request.id, answer.response);
        return;
      case 'hold':
        // Out of the stream: what comes after it goes on while a person decides.
        shim.toServer.skip(this.slot);
        shim.hold(this.line, this.request, answer.approvalId, answer.consoleUrl);
        return;
    }
  }

  onFailure(err: unknown): void {
    if (this.settle()) return;
    this.shim.governanceFailed(this.line, this.request, err, this.slot);
  }

  /** Leaves the undecided calls; true (and its place freed) when the agent cancelled it. */
  private settle(): boolean {
    if (this.shim.undecided.get(this.request.id) === this) this.shim.undecided.delete(this.request.id);
    if (this.cancelled) this.shim.toServer.skip(this.slot);
    return this.cancelled;
  }
}

/** A call a person must decide on: long-polls for the decision, tells the agent it waits. */
class HeldCall {
  private done = false;
  private failures = 0;
  private progress = 0;
  private progressTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly progressToken: string | number | undefined;

  constructor(
    private readonly shim: Shim,
    private readonly line: Buffer,
    private readonly request: Request,
    readonly approvalId: string,
    private readonly consoleUrl: string,
  ) {
    // Only a token the agent issued: a made-up one is a protocol error for the client.
    const token = request.params?._meta?.progressToken;
    this.progressToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
  }

  start(): void {
    if (this.progressToken !== undefined) {
      this.tellWaiting();
      this.progressTimer = setInterval(() => this.tellWaiting(), this.shim.progressIntervalMs);
    }
    this.poll();
  }

  cancel(): void {
    this.end();
  }

  private poll(): void {
    if (this.done) return;
    this.shim.governance.wait(this.approvalId, this.shim.waitPollMs).then(
      (a) => {
        if (this.done) return;
        this.failures = 0;
        if (!a.done) return this.poll();
        this.end();
        if (a.answer.action === 'forward') {
          this.shim.log('info', 'held call approved; forwarding', { id: this.request.id, approvalId: this.approvalId });
          this.shim.toServer.push(this.line);
        } else {
          this.shim.log('info', 'held call refused', { id: this.request.id, approvalId: this.approvalId });
          this.shim.respond(this.request.id, a.answer.response);
        }
      },
      (err: unknown) => {
        if (this.done) return;
        // A dropped long poll is retried a few times; then the service counts as failed.
        if (++this.failures <= WAIT_RETRIES) {
          this.retryTimer = setTimeout(() => this.poll(), this.shim.waitRetryMs * 2 ** (this.failures - 1));
          return;
        }
        this.end();
        this.shim.governanceFailed(this.line, this.request, err, undefined);
      },
    );
  }

  private tellWaiting(): void {
    const where = this.consoleUrl ? ` — decide at ${this.consoleUrl}` : '';
    const what = typeof this.request.params?.name === 'string' ? `${this.request.method} '${this.request.params.name}'` : this.request.method;
    // progress must increase with each notification (MCP), so it counts the reminders.
    this.shim.toAgent.push(JSON.stringify({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: this.progressToken, progress: ++this.progress, message: `Awaiting approval for ${what}${where}` },
    }));
  }

  private end(): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.progressTimer);
    clearTimeout(this.retryTimer);
    if (this.shim.undecided.get(this.request.id) === this) this.shim.undecided.delete(this.request.id);
  }
}

/** What an invalid line looks like it was meant to be (only asked on the error path). */
function shapeOf(line: Buffer): 'request' | 'notification' | 'response' | 'unknown' {
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    return 'unknown';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'unknown';
  if (Object.hasOwn(v, 'method')) return Object.hasOwn(v, 'id') ? 'request' : 'notification';
  if (Object.hasOwn(v, 'result') || Object.hasOwn(v, 'error')) return 'response';
  return 'unknown';
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `p`, but no longer than `ms`. */
async function raceDelay(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
