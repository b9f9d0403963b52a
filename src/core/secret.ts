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
