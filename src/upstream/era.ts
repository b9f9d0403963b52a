// Translating one stateless 2026-07-28 exchange for a server that speaks only the 2025
// revisions, and telling which one a server speaks. A connection to a stdio server stays in one
// era for its life: the Python SDK and the v2 TypeScript SDK's serveStdio fix a connection's era
// at its first message and refuse the other era's messages after it, so a 2026-07-28 request may
// reach a 2025 connection only in the 2025 shape (this module), never as it is.
import { MODERN_VERSION } from '../core/jsonrpc.js';

export type Era = 'modern' | 'legacy';

export const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';
/** what our own requests to a child say about us */
export const PROXY_INFO = { name: 'thoughtgate', version: '0.1.0' } as const;
/** the 2025 revision our own handshakes with a 2025-only server ask for */
export const LEGACY_VERSION = '2025-11-25';
/** list results we relay are never shared between callers: the gates filter them */
export const UNCACHED = { ttlMs: 0, cacheScope: 'private' } as const;

/**
 * The per-request envelope of 2026-07-28 (`_meta` keys the v2 SDK lifts out of every inbound
 * message before handlers run: RESERVED_ENVELOPE_META_KEYS in @modelcontextprotocol/core 2.4).
 * A 2025 connection carries these once, in `initialize`, or not at all.
 */
const ENVELOPE_META_KEYS = [
  'io.modelcontextprotocol/protocolVersion',
  'io.modelcontextprotocol/clientInfo',
  'io.modelcontextprotocol/clientCapabilities',
  'io.modelcontextprotocol/logLevel',
];
/** params members 2026-07-28 reserves on client requests for multi-round-trip retries (basic/patterns/mrtr) */
const RETRY_PARAMS_KEYS = ['inputResponses', 'requestState'];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A `server/discover` request of our own: the probe that asks a child which era it speaks. */
export function discoverRequest(id: string): string {
  return JSON.stringify({
    jsonrpc: '2.0', id, method: 'server/discover',
    params: { _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN_VERSION, 'io.modelcontextprotocol/clientInfo': PROXY_INFO, 'io.modelcontextprotocol/clientCapabilities': {} } },
  });
}

/**
 * Which era a server's answer to our `server/discover` says it speaks: modern only when it lists
 * 2026-07-28 among its supported versions. An error (method not found from a 2025 server, an
 * era refusal) or any other answer is legacy.
 */
export function eraFromDiscover(answer: unknown): Era {
  const result = isObject(answer) ? answer['result'] : undefined;
  const versions = isObject(result) ? result['supportedVersions'] : undefined;
  return Array.isArray(versions) && versions.includes(MODERN_VERSION) ? 'modern' : 'legacy';
}

/**
 * A 2026-07-28 message in the 2025 shape: the envelope's `_meta` keys and a request's retry
 * fields removed (other `_meta`, such as a progress token or trace context, stays), `id` set to
 * `id` when given. Changes `message` in place and returns it.
 */
export function toLegacyMessage(message: Record<string, unknown>, id?: string): Record<string, unknown> {
  if (id !== undefined) message['id'] = id;
  const params = message['params'];
  if (!isObject(params)) return message;
  const meta = params['_meta'];
  if (isObject(meta)) {
    for (const k of ENVELOPE_META_KEYS) delete meta[k];
    if (Object.keys(meta).length === 0) delete params['_meta'];
  }
  if (message['id'] !== undefined) for (const k of RETRY_PARAMS_KEYS) delete params[k];
  if (Object.keys(params).length === 0) delete message['params'];
  return message;
}

/** A 2026-07-28 message's per-request envelope (the `_meta` keys above), to repeat it on a message of ours; undefined when it has none. */
export function envelopeOf(message: Record<string, unknown>): Record<string, unknown> | undefined {
  const meta = isObject(message['params']) ? message['params']['_meta'] : undefined;
  if (!isObject(meta)) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of ENVELOPE_META_KEYS) if (k in meta) out[k] = meta[k];
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Our notice to a server that a request it knows by our id is cancelled (its 2026-07-28 client
 * closed the request, which is cancellation in that era); in `envelope` on a 2026 connection.
 */
export function cancelledNotice(requestId: string, envelope?: Record<string, unknown>): string {
  const params: Record<string, unknown> = { requestId, reason: 'the client closed its request' };
  if (envelope !== undefined) params['_meta'] = envelope;
  return JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params });
}

/**
 * A 2025 answer in the 2026-07-28 shape: `resultType`, the server's identity in `_meta`, and
 * for list results the cache hints (never shared). Errors pass as they are. In place.
 */
export function toModernAnswer(answer: Record<string, unknown>, serverInfo: unknown, isList: boolean): Record<string, unknown> {
  const result = answer['result'];
  if (!isObject(result)) return answer;
  result['resultType'] ??= 'complete';
  if (isList) Object.assign(result, UNCACHED);
  result['_meta'] = { ...(isObject(result['_meta']) ? result['_meta'] : {}), [SERVER_INFO_META]: serverInfo };
  return answer;
}

/** A `server/discover` result for a server that speaks only 2025: what its `initialize` answered. */
export function discoverFromInitialize(init: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {
    supportedVersions: [MODERN_VERSION],
    capabilities: isObject(init['capabilities']) ? init['capabilities'] : {},
    resultType: 'complete',
    ...UNCACHED,
    _meta: { [SERVER_INFO_META]: init['serverInfo'] },
  };
  if (typeof init['instructions'] === 'string') result['instructions'] = init['instructions'];
  return result;
}
