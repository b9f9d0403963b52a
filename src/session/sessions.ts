// What the proxy remembers about each MCP session: the negotiated protocol version (batches
// are valid only on 2025-03-26 sessions). Learnt from the upstream's answer to `initialize`,
// forgotten on DELETE and after idling; bounded so a flood of sessions cannot grow memory.

export interface SessionInfo {
  version: string;
  lastSeen: number;
  /** the client declared URL-mode elicitation (2025-11-25): a held call can offer it the console link */
  urlElicitation: boolean;
}

export class SessionTable {
  private readonly map = new Map<string, SessionInfo>();
  constructor(
    private readonly maxSessions: number,
    private readonly idleMs: number,
  ) {}

  remember(id: string, version: string, urlElicitation = false): void {
    this.map.delete(id);
    this.map.set(id, { version, lastSeen: Date.now(), urlElicitation });
    if (this.map.size > this.maxSessions) {
      // Map iterates in insertion order: the first key is the least recently remembered.
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
  }

  get(id: string): SessionInfo | undefined {
    const s = this.map.get(id);
    if (s === undefined) return undefined;
    const now = Date.now();
    if (now - s.lastSeen > this.idleMs) {
      this.map.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  forget(id: string): void {
    this.map.delete(id);
  }

  get size(): number {
    return this.map.size;
  }
}
