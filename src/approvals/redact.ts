// Arguments come from the agent and may carry what no approver should read (an IBAN, a
// password): every surface that shows a held request (console, CLI, admin API and its event
// stream, Slack, webhook payloads) shows them through `maskArguments` with the workflow's
// `redact_fields`. A masked value keeps its key, so the approver still sees the call's shape.
import type { ApprovalRecord, Grant } from './types.js';

export const REDACTED = '[REDACTED]';
/** Deeper than any request the framing accepts (limits.maxDepth is 64). */
const MAX_MASK_DEPTH = 64;

/** Keys whose values are secrets wherever they appear in the arguments. */
const SECRET_KEY = /password|passwd|secret|token|api[_-]?key|authorization|credential|private[_-]?key/i;

/** Values that look like credentials, masked wherever they appear inside a string. */
const SECRET_VALUE = new RegExp([
  String.raw`\bxox[abeoprs]-[A-Za-z0-9-]{6,}`, // Slack tokens
  String.raw`\bsk-[A-Za-z0-9_-]{16,}`, // OpenAI / Anthropic style API keys
  String.raw`\bgh[pousr]_[A-Za-z0-9]{20,}`, // GitHub tokens
  String.raw`\bgithub_pat_[A-Za-z0-9_]{20,}`,
  String.raw`\bAKIA[0-9A-Z]{16}\b`, // AWS access key ids
  String.raw`\bBearer\s+[A-Za-z0-9._~+/-]+=*`, // HTTP bearer credentials
  String.raw`\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`, // JWTs (base64url JSON header)
].join('|'), 'gi');

// --- masking ----------------------------------------------------------------------------

/**
 * A copy of `value` with secrets replaced by `[REDACTED]`: values under secret-looking keys
 * (any depth), values under a `redactFields` path, and credential-shaped substrings of strings.
 * A path matches where it ends, at any depth (`token` and `auth.token` both match
 * `{a: {auth: {token}}}`); array indexes are not part of a path. Masking too much is the safe
 * way to be wrong here: the approver still sees the shape of the call.
 */
export function maskArguments(value: unknown, redactFields: readonly string[] = []): unknown {
  const paths = redactFields.map((p) => p.split('.').filter((s) => s !== '')).filter((p) => p.length > 0);
  return mask(value, paths, [], 0);
}

function mask(value: unknown, paths: string[][], keyPath: string[], depth: number): unknown {
  if (typeof value === 'string') return maskSecretValues(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_MASK_DEPTH) return '[…]';
  if (Array.isArray(value)) return value.map((v) => mask(v, paths, keyPath, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    keyPath.push(key);
    const masked = SECRET_KEY.test(key) || matchesPath(keyPath, paths) ? REDACTED : mask(v, paths, keyPath, depth + 1);
    // Assigning `__proto__` would set the prototype instead of adding the key.
    if (key === '__proto__') Object.defineProperty(out, key, { value: masked, enumerable: true, writable: true, configurable: true });
    else out[key] = masked;
    keyPath.pop();
  }
  return out;
}

function matchesPath(keyPath: readonly string[], paths: readonly string[][]): boolean {
  outer: for (const p of paths) {
    if (p.length > keyPath.length) continue;
    const offset = keyPath.length - p.length;
    for (let i = 0; i < p.length; i++) if (p[i] !== keyPath[offset + i]) continue outer;
    return true;
  }
  return false;
}

/** Replaces credential-shaped substrings; the rest of the string stays readable. */
export function maskSecretValues(s: string): string {
  SECRET_VALUE.lastIndex = 0;
  return SECRET_VALUE.test(s) ? s.replace(SECRET_VALUE, REDACTED) : s;
}

/** The record's arguments as any surface may show them: its own redact_fields plus `extra` (the workflow's now). */
export function maskedArguments(rec: Pick<ApprovalRecord, 'arguments' | 'redactFields'>, extra: readonly string[] = []): unknown {
  return maskArguments(rec.arguments ?? {}, [...(rec.redactFields ?? []), ...extra]);
}

/** A grant's canonical arguments key, masked the same way (it is the arguments, as JSON). */
export function maskedArgumentsKey(g: Pick<Grant, 'argumentsKey' | 'redactFields'>, extra: readonly string[] = []): string | undefined {
  if (g.argumentsKey === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(g.argumentsKey);
  } catch {
    return REDACTED; // not ours to show if it cannot be masked
  }
  return JSON.stringify(maskArguments(parsed, [...(g.redactFields ?? []), ...extra]));
}
