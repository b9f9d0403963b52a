// Limits on untrusted input. Each has an env override (THOUGHTGATE_*) resolved by cli/env.ts.

export interface Limits {
  /** largest HTTP request body accepted, bytes */
  maxBodyBytes: number;
  /** bytes of an over-limit body read and discarded so the client gets the 413 (then the connection closes) */
  maxDrainBytes: number;
  /** largest JSON nesting depth accepted */
  maxDepth: number;
  /** largest JSON-RPC batch (2025-03-26 sessions only) */
  maxBatchSize: number;
  /** longest stdio line, bytes */
  maxLineBytes: number;
  /** most concurrent MCP sessions backed by spawned stdio children */
  maxStdioSessions: number;
  /** most of those one client (session/client-quota.ts) may hold: one client cannot take them all */
  maxStdioSessionsPerClient: number;
  /** most GET (server → client SSE) streams one client may hold open */
  maxStreamsPerClient: number;
  /** most GET streams open on one MCP session */
  maxStreamsPerSession: number;
  /** most requests in flight at once; more get -32009 */
  maxConcurrentRequests: number;
}

export const DEFAULT_LIMITS: Limits = {
  // 4 MiB: what the SDK servers accept (TypeScript MAXIMUM_MESSAGE_SIZE '4mb', Python likewise);
  // a smaller limit refused calls the server behind us would have taken.
  maxBodyBytes: 4 * 1024 * 1024,
  maxDrainBytes: 16 * 1024 * 1024,
  maxDepth: 64,
  maxBatchSize: 100,
  maxLineBytes: 10 * 1024 * 1024,
  maxStdioSessions: 64,
  maxStdioSessionsPerClient: 16,
  maxStreamsPerClient: 16,
  maxStreamsPerSession: 4,
  maxConcurrentRequests: 10000,
};
