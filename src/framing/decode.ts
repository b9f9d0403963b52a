// Turns untrusted bytes into JSON-RPC messages. The proxy forwards the original bytes after
// judging the parsed value, so anything another parser could read differently is rejected
// here: one strict parse (JSON.parse) plus one scan (scan.ts) for what JSON.parse forgives.

import { isUtf8 } from 'node:buffer';
import { GovError } from '../core/errors.js';
import type { JsonRpcId, JsonRpcMessage } from '../core/jsonrpc.js';
import { ScanError, scanJson, type ScanResult } from './scan.js';

/** Why a message was refused; matches ThoughtGate's framing metric labels. */
export type FramingReason =
  | 'message_too_large'
  | 'invalid_utf8'
  | 'malformed_json'
  | 'missing_version'
  | 'unsupported_version'
  | 'unsupported_batch'
  | 'invalid_request'
  | 'duplicate_key';

export interface DecodeLimits {
  maxBodyBytes: number;
  maxDepth: number;
  maxBatchSize: number;
}

export type BatchItem =
  | { ok: true; message: JsonRpcMessage; raw: string }
  | { ok: false; id: JsonRpcId; error: GovError };

export type Decoded = { kind: 'single'; message: JsonRpcMessage } | { kind: 'batch'; items: BatchItem[] };

export interface Parsed {
  /** the input bytes; scan offsets index into these */
  bytes: Buffer;
  value: unknown;
  scan: ScanResult;
}

const reasons = new WeakMap<GovError, FramingReason>();

/** The metric label for an error thrown by this module. */
export const framingReason = (e: GovError): FramingReason => reasons.get(e) ?? 'invalid_request';

export function reject(reason: FramingReason, details: string): GovError {
  const kind = reason === 'invalid_utf8' || reason === 'malformed_json' ? 'parse_error' : 'invalid_request';
  const e = new GovError(kind, { details });
  reasons.set(e, reason);
  return e;
}

const isBlank = (s: string): boolean => /^[ \t\r\n]*$/.test(s);

/** UTF-8 bytes → parsed value and scan. Throws GovError. */
export function parseStrict(buf: Uint8Array, maxDepth: number): Parsed {
  if (!isUtf8(buf)) throw reject('invalid_utf8', 'body is not valid UTF-8');
  // A lenient upstream might strip a BOM that JSON.parse rejects; refuse it outright.
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) throw reject('malformed_json', 'byte order mark is not allowed');
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const text = b.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw reject('malformed_json', isBlank(text) ? 'empty body' : (e as Error).message);
  }
  try {
    return { bytes: b, value, scan: scanJson(b, maxDepth) };
  } catch (e) {
    if (e instanceof ScanError) throw reject(e.problem === 'duplicate_key' ? 'duplicate_key' : 'invalid_request', e.details);
    throw e;
  }
}

/** Decodes an HTTP request body: one message or a batch. Throws GovError for whole-body failures. */
export function decodeBody(buf: Uint8Array, limits: DecodeLimits): Decoded {
  if (buf.length > limits.maxBodyBytes) {
    throw reject('message_too_large', `Request body exceeds maximum size of ${limits.maxBodyBytes} bytes`);
  }
  const { bytes, value, scan } = parseStrict(buf, limits.maxDepth);
  if (!Array.isArray(value)) return { kind: 'single', message: checkMessage(value, bytes, scan.idAt) };
  if (value.length === 0) throw reject('invalid_request', 'Empty batch is not allowed');
  if (value.length > limits.maxBatchSize) {
    throw reject('invalid_request', `Batch size ${value.length} exceeds maximum of ${limits.maxBatchSize}`);
  }
  const items: BatchItem[] = new Array(value.length);
  for (let k = 0; k < value.length; k++) {
    const idAt = scan.elementIdAt[k]!;
    try {
      const message = checkMessage(value[k], bytes, idAt);
      items[k] = { ok: true, message, raw: bytes.toString('utf8', scan.elements[2 * k], scan.elements[2 * k + 1]) };
    } catch (e) {
      if (!(e instanceof GovError)) throw e;
      items[k] = { ok: false, id: readableId(value[k], bytes, idAt), error: e };
    }
  }
  return { kind: 'batch', items };
}

/** Validates an already-parsed message (the raw id token is not available here). Throws GovError. */
export function validateMessage(obj: unknown): JsonRpcMessage {
  return checkMessage(obj, undefined, -1);
}

const hasOwn = Object.hasOwn;

/**
 * JSON-RPC 2.0 shape check. `idAt` is where the id's source token starts in `bytes`
 * (-1 when unknown) so numeric ids can be held to plain integer spelling.
 */
export function checkMessage(v: unknown, bytes: Uint8Array | undefined, idAt: number): JsonRpcMessage {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw reject('invalid_request', 'message must be a JSON object');
  }
  const m = v as Record<string, unknown>;
  if (!hasOwn(m, 'jsonrpc')) throw reject('missing_version', "missing 'jsonrpc' member");
  if (m.jsonrpc !== '2.0') throw reject('unsupported_version', `'jsonrpc' must be "2.0"`);
  const hasId = hasOwn(m, 'id');
  if (hasId && m.id !== null && !idOk(m.id, bytes, idAt)) {
    throw reject('invalid_request', "'id' must be a string or an integer (no fraction or exponent) within ±(2^53-1)");
  }
  const hasResult = hasOwn(m, 'result');
  const hasError = hasOwn(m, 'error');
  if (hasOwn(m, 'method')) {
    if (typeof m.method !== 'string') throw reject('invalid_request', "'method' must be a string");
    if (hasResult || hasError) throw reject('invalid_request', "a request must not carry 'result' or 'error'");
    if (hasOwn(m, 'params')) {
      const p = m.params;
      if (typeof p !== 'object' || p === null || Array.isArray(p)) throw reject('invalid_request', "'params' must be an object");
    }
    if (hasId && m.id === null) throw reject('invalid_request', "a request 'id' must not be null");
    return m as unknown as JsonRpcMessage;
  }
  if (!hasResult && !hasError) throw reject('invalid_request', "message has neither 'method' nor 'result'/'error'");
  if (hasResult && hasError) throw reject('invalid_request', "a response must not carry both 'result' and 'error'");
  if (!hasId) throw reject('invalid_request', "a response must carry an 'id'");
  if (hasResult && m.id === null) throw reject('invalid_request', "'id' may be null only in an error response");
  if (hasError) {
    const e = m.error as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || Array.isArray(e) || !Number.isSafeInteger(e.code) || typeof e.message !== 'string') {
      throw reject('invalid_request', "'error' must be an object with an integer 'code' and a string 'message'");
    }
  }
  return m as unknown as JsonRpcMessage;
}

function idOk(id: unknown, bytes: Uint8Array | undefined, idAt: number): boolean {
  if (typeof id === 'string') return true;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || Object.is(id, -0)) return false;
  if (bytes === undefined || idAt < 0) return true;
  // The token must be a plain integer: the upstream echoes the id as written, so `1.0` or
  // `1e3` would come back spelled differently from the number the proxy matched on.
  for (let i = idAt; ; i++) {
    const c = bytes[i];
    if (c === 0x2e || c === 0x65 || c === 0x45) return false;
    if (c === undefined || !((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b)) return true;
  }
}

/** The id of a rejected message, when it has a usable one; null otherwise. */
export function readableId(v: unknown, bytes: Uint8Array | undefined, idAt: number): JsonRpcId {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !hasOwn(v, 'id')) return null;
  const id = (v as { id: unknown }).id;
  return idOk(id, bytes, idAt) ? (id as JsonRpcId) : null;
}
