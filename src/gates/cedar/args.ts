// JSON tool arguments → a Cedar value (the entity-attribute JSON format), and the canonical
// JSON text the decision cache keys on.
//
// Conversion (the original's, except where marked):
//   null / absent            → omitted (a top-level null or absent → the empty record)
//   boolean, string          → Bool, String
//   integer, |n| < 2^63      → Long (JSON.parse already rounded anything past 2^53)
//   integer beyond i64       → String of the number (the original: u64 > i64::MAX → String)
//   fractional number        → String, e.g. "1.5"  [differs: the original forbids the call.
//                              A string cannot be mistaken for a number: `> 100` on it is a
//                              type error, so the decision fails closed only if a policy
//                              compares it, and `== "1.5"` or `like` still work]
//   array → Set, object → Record; nesting deeper than 64 → error (fail closed)
//   a key named __entity, __extn or __expr → error (fail closed): Cedar's JSON reads those as
//   entity / extension escapes, so a caller could otherwise smuggle an entity reference in.

export const MAX_ARG_DEPTH = 64;

export class ArgumentError extends Error {}

export type CedarJson = boolean | number | string | CedarJson[] | { [k: string]: CedarJson };

const I64_BOUND = 2 ** 63;
const RESERVED = new Set(['__entity', '__extn', '__expr']);

function num(n: number): number | string {
  if (Number.isInteger(n) && n < I64_BOUND && n > -I64_BOUND) return n === 0 ? 0 : n; // -0 → 0
  return String(n);
}

function conv(v: unknown, depth: number): CedarJson | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return num(v);
    case 'object': {
      if (v === null) return undefined;
      if (depth >= MAX_ARG_DEPTH) throw new ArgumentError(`arguments nest deeper than ${MAX_ARG_DEPTH} levels`);
      if (Array.isArray(v)) {
        const out: CedarJson[] = [];
        for (const e of v) {
          const c = conv(e, depth + 1);
          if (c !== undefined) out.push(c);
        }
        return out;
      }
      const out: { [k: string]: CedarJson } = {};
      for (const k of Object.keys(v)) {
        if (RESERVED.has(k)) throw new ArgumentError(`argument key '${k}' is reserved by Cedar's JSON format`);
        const c = conv((v as Record<string, unknown>)[k], depth + 1);
        if (c === undefined) continue;
        // An argument named "__proto__" (JSON.parse makes it an own key) must stay a key, not
        // become this record's prototype.
        if (k === '__proto__') Object.defineProperty(out, k, { value: c, enumerable: true, writable: true, configurable: true });
        else out[k] = c;
      }
      return out;
    }
    default:
      // undefined, function, bigint, symbol: not JSON; treat as absent
      return undefined;
  }
}

/** `params.arguments` → the record for `resource.arguments`. Throws ArgumentError. */
export function toCedarArguments(args: unknown): { [k: string]: CedarJson } {
  if (args === undefined || args === null) return {};
  if (typeof args !== 'object' || Array.isArray(args)) throw new ArgumentError('arguments must be a JSON object');
  return conv(args, 0) as { [k: string]: CedarJson };
}

/**
 * Canonical JSON (object keys sorted) of the arguments, or undefined when they nest deeper
 * than the limit (such a call is not cached; evaluation denies it). Two argument values with
 * the same canonical text convert to the same Cedar value.
 */
export function canonicalArguments(args: unknown): string | undefined {
  if (args === undefined || args === null) return '{}';
  try {
    return canon(args, 0);
  } catch {
    return undefined;
  }
}

function canon(v: unknown, depth: number): string {
  if (v === null || typeof v !== 'object') {
    const s = JSON.stringify(v);
    return s === undefined ? 'null' : s;
  }
  if (depth >= MAX_ARG_DEPTH) throw new ArgumentError("too deep");
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ',') + canon(v[i], depth + 1);
    return s + ']';
  }
  const keys = Object.keys(v).sort();
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    s += (i === 0 ? '' : ',') + JSON.stringify(k) + ':' + canon((v as Record<string, unknown>)[k], depth + 1);
  }
  return s + '}';
}
