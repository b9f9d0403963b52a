// One way to check a presented token against a configured secret (admin console, decision API,
// wrap's governance service): compare SHA-256 digests in constant time, so neither the secret's
// content nor its length shows in the timing.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** A test for `secret`; an empty secret matches nothing, a missing presentation never matches. */
export function secretMatcher(secret: string): (presented: string | undefined) => boolean {
  const want = digest(secret);
  return (presented) => secret !== '' && presented !== undefined && timingSafeEqual(digest(presented), want);
}

/**
 * The credential of an `Authorization: Bearer <token>` header, or undefined. The scheme is
 * matched in any case (RFC 9110 §11.1: auth schemes are case-insensitive), so `bearer` and
 * `BEARER` work wherever a token is checked.
 */
export function bearerCredential(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const m = /^bearer[ \t]+(\S.*)$/i.exec(authorization.trim());
  return m === null ? undefined : m[1]!.trim();
}

/** A test of an Authorization header against `secret` as a bearer token (scheme in any case, constant time). */
export function bearerMatcher(secret: string): (authorization: string | undefined) => boolean {
  const matches = secretMatcher(secret);
  return (authorization) => matches(bearerCredential(authorization));
}
