// The contract between `thoughtgate shim` (one per stdio MCP server an agent launches) and
// the governance service `thoughtgate wrap` runs on 127.0.0.1. The shim frames and relays;
// the service judges with the same gates, approvals and snapshot as the sidecar, and exports
// the stdio metrics. Every request carries `Authorization: Bearer <per-run secret>`.

export const SHIM_API = '/shim/v1';

/** Environment the shim reads (written into each rewritten server entry by `wrap`). */
export const ENV_GOVERNANCE_URL = 'THOUGHTGATE_GOVERNANCE_URL';
export const ENV_GOVERNANCE_TOKEN = 'THOUGHTGATE_GOVERNANCE_TOKEN';
export const ENV_SERVER_ID = 'THOUGHTGATE_SERVER_ID';
/** set in the agent's environment while wrapped: a nested `wrap` refuses to double-wrap */
export const ENV_ACTIVE = 'THOUGHTGATE_ACTIVE';

/**
 * POST /shim/v1/judge  {serverId, message}  — one agent→server request (it has an id and a method).
 * `respond` carries the complete JSON-RPC response the shim writes back to the agent instead
 * of forwarding. `hold` means a person must decide: the shim keeps relaying other messages
 * and waits on GET /shim/v1/wait/{approvalId}.
 */
export type JudgeAnswer =
  | { action: 'forward' }
  | { action: 'respond'; response: Record<string, unknown> }
  | { action: 'hold'; approvalId: string; consoleUrl: string };

export interface JudgeRequest {
  serverId: string;
  message: { jsonrpc: '2.0'; id: string | number; method: string; params?: Record<string, unknown> };
}

/**
 * GET /shim/v1/wait/{approvalId}?timeoutMs=N (long poll, N ≤ 30000):
 * `{done: false}` when nothing was decided within N ms; otherwise the final answer
 * (forward = approved; respond = rejected/expired/cancelled/drift, a JSON-RPC error response
 * with the request's id).
 */
export type WaitAnswer = { done: false } | { done: true; answer: Exclude<JudgeAnswer, { action: 'hold' }> };

/**
 * POST /shim/v1/filter  {serverId, method, message} — a server→agent response to a list
 * request the shim saw go out (tools/list, resources/list, resources/templates/list,
 * prompts/list). Answer `{message}` when it changed (items hidden), `{}` when not.
 */
export interface FilterRequest {
  serverId: string;
  method: string;
  message: Record<string, unknown>;
}

/**
 * POST /shim/v1/events — counts since the last report (the shim batches them, ~1 s, and
 * flushes at exit). Direction: agent→server is 'inbound', server→agent 'outbound'.
 */
export interface EventsReport {
  serverId: string;
  messages: { direction: 'inbound' | 'outbound'; method: string; count: number }[];
  framing: { direction: 'inbound' | 'outbound'; errorType: string; count: number }[];
}
