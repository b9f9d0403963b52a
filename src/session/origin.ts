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
