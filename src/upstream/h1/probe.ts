// Is the upstream reachable? What /ready reports per source. Two cheap signals, never a tool call:
//  - the clients' own connect failures (refused, unreachable, connect timeout), reported from
//    their error paths only, so a healthy request pays nothing;
//  - a TCP connect probe every `intervalMs` (default 3 s, 2 s deadline), which also notices
//    an upstream that went down while idle and one that came back.
// So /ready turns within intervalMs + timeoutMs (5 s) of the upstream going down or returning.
import net from 'node:net';
import type { UpstreamHealth } from '../types.js';

export class Reachability {
  private state: UpstreamHealth = { reachable: true };
  private readonly timer: NodeJS.Timeout;
  private probing = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly intervalMs = 3000,
    private readonly timeoutMs = 2000,
  ) {
    this.timer = setInterval(this.probe, intervalMs);
    this.timer.unref();
  }

  get health(): UpstreamHealth {
    return this.state;
  }

  /** a connection to the upstream could not be made (`why`: the error code) */
  failed(why: string): void {
    if (this.state.reachable || this.state.reason !== why) this.state = { reachable: false, reason: why, since: Date.now() };
  }

  ok(): void {
    if (!this.state.reachable) this.state = { reachable: true, since: Date.now() };
  }

  /** One TCP connect, closed at once (nothing is sent). */
  readonly probe = (): void => {
    if (this.probing) return;
    this.probing = true;
    const socket = net.connect({ host: this.host, port: this.port });
    const done = (why: string | undefined): void => {
      if (!this.probing) return;
      this.probing = false;
      clearTimeout(deadline);
      socket.destroy();
      if (why === undefined) this.ok();
      else this.failed(why);
    };
    const deadline = setTimeout(() => done('connect timeout (probe)'), this.timeoutMs);
    deadline.unref();
    socket.unref();
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: Error) => done((err as { code?: string }).code ?? err.message));
  };

  close(): void {
    clearInterval(this.timer);
  }
}

/** Connect failures that say the upstream cannot be reached (not that a call failed). */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT',
]);
