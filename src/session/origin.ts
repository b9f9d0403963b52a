// DNS-rebinding protection. Real upstream servers accept any Origin, so the proxy is where a
// browser page on a foreign origin is stopped: a request whose Origin is present and not
// allowed gets 403 before anything is read or forwarded.

export type OriginPolicy = (origin: string) => boolean;

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLocalOrigin(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && LOCAL_HOSTS.has(url.hostname);
}

/**
 * `allowed`: origins from THOUGHTGATE_ALLOWED_ORIGINS (exact `scheme://host[:port]`, or `*` for any).
 * Localhost origins are always allowed: a local agent UI is the common case, and a DNS-rebinding
 * page can never present a localhost Origin.
 */
export function originPolicy(allowed: readonly string[]): OriginPolicy {
  if (allowed.includes('*')) return () => true;
  const exact = new Set(allowed.map((o) => o.replace(/\/+$/, '').toLowerCase()));
  return (origin) => exact.has(origin.toLowerCase()) || isLocalOrigin(origin);
}

// CORS. A browser page (the Inspector's web UI, an agent UI on localhost) asks before it sends
// an MCP request cross-origin: OPTIONS with Access-Control-Request-Method/-Headers. The same
// policy that guards requests decides: an allowed Origin's preflight is answered here (204),
// a foreign one gets 403 and no allow headers (pipeline.ts), and a preflight never reaches the
// upstream (real servers allow any origin, which is what this proxy exists to stop).

/** Methods of the Streamable HTTP transport. */
export const CORS_METHODS = 'GET, POST, DELETE, OPTIONS';

/** Request headers MCP clients send (both eras, SEP-2243, resumption, bearer tokens). */
const MCP_REQUEST_HEADERS = [
  'Content-Type', 'Accept', 'Authorization', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Mcp-Method', 'Mcp-Name', 'Last-Event-ID',
];

/** Response headers a page may read: the session id it must send back, and the version. */
const EXPOSED_HEADERS = 'Mcp-Session-Id, MCP-Protocol-Version';

/** How long a browser may cache a preflight answer (Chromium caps this at 2 hours). */
const PREFLIGHT_MAX_AGE_SECONDS = '7200';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Headers for the answer to a preflight from an allowed origin. Allowed request headers: the MCP
 * set plus whatever else the page asked for (its Origin is allowed, so its headers are too;
 * `Mcp-Param-*` names, `traceparent` and custom auth headers are not a fixed list). Names that
 * are not HTTP tokens are left out.
 */
export function preflightHeaders(origin: string, requested: string | undefined): Record<string, string> {
  const allow = [...MCP_REQUEST_HEADERS];
  const seen = new Set(allow.map((h) => h.toLowerCase()));
  if (requested !== undefined) {
    for (const part of requested.split(',')) {
      const name = part.trim();
      if (name === '' || !TOKEN.test(name) || seen.has(name.toLowerCase())) continue;
      seen.add(name.toLowerCase());
      allow.push(name);
    }
  }
  return {
    ...corsHeaders(origin),
    'access-control-allow-methods': CORS_METHODS,
    'access-control-allow-headers': allow.join(', '),
    'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
  };
}

/**
 * Headers that let a page on an allowed `origin` read an answer, added to answers that carry no
 * CORS headers of their own (transport/http-server.ts); an upstream's own are relayed unchanged.
 * The Origin is echoed (not `*`) and `Vary: Origin` keeps caches from serving it to another.
 */
export function corsHeaders(origin: string): Record<string, string> {
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED_HEADERS, vary: 'Origin' };
}
