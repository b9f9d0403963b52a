// Request headers: which pass to the upstream, the protocol era of a message, and the
// SEP-2243 cross-check of Mcp-Method / Mcp-Name against the body. The proxy judges the body,
// never a header; a header that disagrees with the body is refused (HTTP 400, -32020) so no
// intermediary or server downstream can act on a name the gates did not see.
import { GovError } from '../core/errors.js';
import { MODERN_VERSION } from '../core/jsonrpc.js';
import type { HeaderMap, UpstreamRequest } from '../upstream/types.js';

/** Hop-by-hop (RFC 9110 §7.6.1) and headers undici computes itself. */
const DROP_REQUEST_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect',
]);

export function upstreamHeaders(client: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  // Headers named in Connection are hop-by-hop too (parsed once per request, not per header).
  const listed = connectionOptions(client['connection']);
  for (const name in client) {
    if (DROP_REQUEST_HEADERS.has(name) || (listed !== null && listed.includes(name))) continue;
    out[name] = client[name]!;
  }
  return out;
}

/**
 * The header names a Connection value lists, lower-cased; null when it lists nothing that is not
 * dropped anyway. `keep-alive` (what nearly every client sends) is answered without splitting.
 */
function connectionOptions(value: string | undefined): string[] | null {
  if (value === undefined || value === 'keep-alive' || value === 'Keep-Alive') return null;
  const names: string[] = [];
  for (const part of value.toLowerCase().split(',')) {
    const name = part.trim();
    if (name !== '' && !DROP_REQUEST_HEADERS.has(name)) names.push(name);
  }
  return names.length === 0 ? null : names;
}

const META_VERSION = 'io.modelcontextprotocol/protocolVersion';

/** The protocol version a request body claims in its 2026-07-28 `_meta` envelope, if any. */
export function bodyClaimedVersion(params: Record<string, unknown> | undefined): string | undefined {
  const meta = params?._meta;
  if (meta === null || typeof meta !== 'object') return undefined;
  const v = (meta as Record<string, unknown>)[META_VERSION];
  return typeof v === 'string' ? v : undefined;
}

/** params field each method's Mcp-Name header mirrors (SEP-2243, SEP-2663). */
const MCP_NAME_SOURCE: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';
const BASE64_CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeNameHeader(raw: string): string | undefined {
  const value = raw.trim();
  if (!(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX))) return value;
  const b64 = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length);
  if (!BASE64_CANONICAL.test(b64)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
}

function mismatch(details: string): GovError {
  return new GovError('header_mismatch', { subject: details, details }); // HTTP 400: the table's status
}

/**
 * Cross-checks the standard headers against one request body. On a modern (2026-07-28) request
 * the headers are required as the v2 SDK requires them; on any era a header that is present
 * must agree with the body.
 */
export function checkStandardHeaders(
  headers: HeaderMap,
  method: string,
  params: Record<string, unknown> | undefined,
  isRequest: boolean,
): GovError | undefined {
  const claimed = bodyClaimedVersion(params);
  const versionHeader = headers['mcp-protocol-version'];
  const methodHeader = headers['mcp-method'];
  const nameHeader = headers['mcp-name'];
  const modern = claimed === MODERN_VERSION || versionHeader?.trim() === MODERN_VERSION;
  if (claimed !== undefined && versionHeader !== undefined && versionHeader.trim() !== claimed) {
    return mismatch(`the body envelope names protocol version ${claimed} but the MCP-Protocol-Version header says ${versionHeader}`);
  }
  if (methodHeader !== undefined && methodHeader.trim() !== method) {
    return mismatch(`the body names method ${method} but the Mcp-Method header says ${methodHeader}`);
  }
  const field = Object.hasOwn(MCP_NAME_SOURCE, method) ? MCP_NAME_SOURCE[method] : undefined;
  const bodyValue = field !== undefined && typeof params?.[field] === 'string' ? (params[field] as string) : undefined;
  if (nameHeader !== undefined) {
    const decoded = decodeNameHeader(nameHeader);
    if (decoded === undefined) return mismatch('the Mcp-Name header carries an invalid Base64 sentinel value');
    if (field === undefined) return mismatch(`method ${method} carries no name but the Mcp-Name header names "${decoded}"`);
    if (decoded !== bodyValue) {
      return mismatch(`the body carries params.${field}=${JSON.stringify(bodyValue ?? null)} but the Mcp-Name header names "${decoded}"`);
    }
  }
  if (modern && isRequest) {
    if (versionHeader === undefined) return mismatch('the body carries a modern per-request envelope but the required MCP-Protocol-Version header is absent');
    if (methodHeader === undefined) return mismatch(`the body names method ${method} but the required Mcp-Method header is absent`);
    if (bodyValue !== undefined && nameHeader === undefined) {
      return mismatch(`the body carries params.${field}="${bodyValue}" but the required Mcp-Name header is absent`);
    }
  }
  return undefined;
}

/**
 * What an upstream needs to route one POSTed message (a stdio source: which child, or the
 * stateless pool): built the same way for a call forwarded now and one approved later.
 */
export function messageRoute(message: { id?: unknown; method?: string; params?: Record<string, unknown> }): NonNullable<UpstreamRequest['message']> {
  const { id, method, params } = message;
  return {
    kind: method === undefined ? 'response' : id === undefined ? 'notification' : 'request',
    id,
    method,
    progressToken: (params?._meta as Record<string, unknown> | undefined)?.progressToken,
    isInitialize: method === 'initialize',
    modern: bodyClaimedVersion(params) === MODERN_VERSION,
  };
}
