// The closed set of errors the proxy answers with (DESIGN.md "Decisions and errors").
// Every denial and failure becomes one of these kinds; this table is the only place a
// kind turns into a JSON-RPC code, message and `data` shape.

export type Gate = 'visibility' | 'governance' | 'policy' | 'approval';

export type ErrorKind =
  | 'tool_not_exposed'
  | 'governance_rule_denied'
  | 'policy_denied'
  | 'approval_rejected'
  | 'approval_timeout'
  | 'task_expired'
  | 'task_cancelled'
  | 'task_not_found'
  | 'policy_drift'
  | 'task_result_not_ready'
  | 'rate_limited'
  | 'service_unavailable'
  | 'upstream_connection_failed'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'parse_error'
  | 'invalid_request'
  | 'body_too_large'
  | 'invalid_params'
  | 'internal_error'
  | 'header_mismatch'
  | 'method_not_found'
  | 'method_lookalike';

interface Row {
  code: number;
  gate?: Gate;
  /**
   * The HTTP status when this error is the proxy's own rejection of a whole HTTP request (the
   * status the MCP transport specification gives; the SDK servers answer the same). Absent: 200.
   * Per-message answers (gate denials, an element of a batch, an upstream failure) are always
   * HTTP 200 whatever this says: clients treat a non-2xx answer as a transport failure.
   */
  status?: number;
  /** builds the message from the subject (tool name, task id, detail) */
  message: (subject: string) => string;
}

const TABLE: Record<ErrorKind, Row> = {
  tool_not_exposed: { code: -32015, gate: 'visibility', message: (s) => `Tool '${s}' is not available` },
  governance_rule_denied: { code: -32014, gate: 'governance', message: (s) => `Tool '${s}' is denied by governance rules` },
  policy_denied: { code: -32003, gate: 'policy', message: (s) => `Policy denied access to tool '${s}'` },
  approval_rejected: { code: -32007, gate: 'approval', message: (s) => `Approval rejected for tool '${s}'` },
  approval_timeout: { code: -32008, gate: 'approval', message: (s) => `Approval timeout for tool '${s}'` },
  task_expired: { code: -32005, message: (s) => `Task '${s}' has expired` },
  task_cancelled: { code: -32006, message: (s) => `Task '${s}' was cancelled` },
  task_not_found: { code: -32602, message: (s) => `Task '${s}' not found` },
  policy_drift: { code: -32011, gate: 'policy', message: (s) => `Policy changed since approval for tool '${s}'` },
  task_result_not_ready: { code: -32020, message: (s) => `Task '${s}' result not ready` },
  rate_limited: { code: -32009, message: () => 'Too many requests' },
  service_unavailable: { code: -32013, message: () => 'Service temporarily unavailable' },
  upstream_connection_failed: { code: -32000, message: () => 'Cannot connect to MCP server' },
  upstream_timeout: { code: -32001, message: () => 'MCP server did not respond in time' },
  upstream_error: { code: -32002, message: (s) => `MCP server error: ${s}` },
  parse_error: { code: -32700, status: 400, message: (s) => `Invalid JSON: ${s}` },
  invalid_request: { code: -32600, status: 400, message: (s) => `Invalid JSON-RPC request: ${s}` },
  // Over THOUGHTGATE_MAX_REQUEST_BODY_BYTES: 413, and the body is read to its end first so the
  // client gets this answer instead of a reset (transport/http-server.ts).
  body_too_large: { code: -32600, status: 413, message: (s) => `Request body too large: ${s}` },
  invalid_params: { code: -32602, message: (s) => `Invalid parameters: ${s}` },
  internal_error: { code: -32603, message: (s) => `Internal error. Reference: ${s}` },
  // The v2 SDK server answers a header/body disagreement with HTTP 400 and -32020 (SEP-2243);
  // we answer the same way so clients see one behaviour with or without the proxy.
  header_mismatch: { code: -32020, status: 400, message: (s) => `Header mismatch: ${s}` },
  // `governance.unknown_methods: deny`: what a server answers for a method it does not have.
  method_not_found: { code: -32601, message: (s) => `Method not found: ${s}` },
  // A spelling of an MCP method that is not one (`Tools/call`, `tools.call`, homoglyphs): no MCP
  // method by that name exists (-32601), and it is refused whatever the policy, as an attempt.
  method_lookalike: { code: -32601, gate: 'governance', message: (s) => `Method not found: '${s}' is not an MCP method` },
};

export interface ErrorData {
  correlation_id: string;
  error_type: ErrorKind;
  gate?: Gate;
  tool?: string;
  details?: string;
  retry_after?: number;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: ErrorData;
}

export interface GovErrorInit {
  /** tool name, task id or short detail the message is built from */
  subject?: string;
  tool?: string;
  details?: string;
  retryAfter?: number;
  /** HTTP status when this error ends a whole HTTP exchange (default: the table's status, else 200) */
  httpStatus?: number;
}

/** A typed failure. Thrown or returned inside the proxy; rendered once by `toJsonRpcError`. */
export class GovError extends Error {
  readonly kind: ErrorKind;
  readonly code: number;
  readonly gate: Gate | undefined;
  readonly tool: string | undefined;
  readonly details: string | undefined;
  readonly retryAfter: number | undefined;
  readonly httpStatus: number;

  constructor(kind: ErrorKind, init: GovErrorInit = {}) {
    const row = TABLE[kind];
    super(row.message(init.subject ?? init.tool ?? init.details ?? ''));
    this.kind = kind;
    this.code = row.code;
    this.gate = row.gate;
    this.tool = init.tool;
    this.details = init.details;
    this.retryAfter = init.retryAfter ?? (kind === 'rate_limited' ? 1 : undefined);
    this.httpStatus = init.httpStatus ?? row.status ?? 200;
  }

  toJsonRpcError(correlationId: string): JsonRpcErrorObject {
    const data: ErrorData = { correlation_id: correlationId, error_type: this.kind };
    if (this.gate !== undefined) data.gate = this.gate;
    if (this.tool !== undefined) data.tool = this.tool;
    if (this.details !== undefined) data.details = this.details;
    if (this.retryAfter !== undefined) data.retry_after = this.retryAfter;
    return { code: this.code, message: this.message, data };
  }
}

export const codeOf = (kind: ErrorKind): number => TABLE[kind].code;

/** A JSON-RPC error response for `id` (null when the id is unknown). */
export function errorResponse(id: unknown, err: GovError, correlationId: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: id === undefined ? null : id, error: err.toJsonRpcError(correlationId) });
}
