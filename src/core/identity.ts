// One person, one name. Approval votes, allow-lists and requesters are compared by a key that
// folds away what makes two spellings of one name look different to a program but not to a
// person: compatibility forms (NFKC: fullwidth letters, ligatures), case, invisible characters
// (zero-width spaces, joiners, soft hyphens, variation selectors), and letters of other
// scripts that look like Latin ones (Cyrillic `а`, Greek `ο`). Folding too much is the safe
// way to be wrong: two people whose names collide must use different names, but one person can
// never count twice or approve their own call under a respelling.

import { foldConfusables } from './confusables.js';

/** Channels a vote arrives through: part of how it came, not of who cast it. */
export const VOTE_CHANNELS: ReadonlySet<string> = new Set(['cli', 'api', 'console', 'slack']);

// Default-ignorable code points (ZWSP, ZWJ, soft hyphen, BOM, variation selectors, tag
// characters…), other format characters, and C0/C1 controls: invisible in any rendering.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}]/gu;


/**
 * The comparison key of a name: NFKC, invisible characters removed, case folded, lookalikes
 * mapped to their Latin skeleton, surrounding whitespace trimmed. Idempotent.
 */
export function identityKey(name: string): string {
  let s = name.normalize('NFKC').replace(INVISIBLE, '');
  // Full case folding as far as JavaScript offers it: upper then lower maps ß → ss, ς → σ, ﬁ → fi.
  s = s.toUpperCase().toLowerCase();
  // Combining marks (an `é` spelled e + U+0301, a dotted Cyrillic `о`) would keep lookalikes apart: drop them.
  s = s.normalize('NFD').replace(/\p{M}/gu, '');
  s = foldConfusables(s);
  return s.normalize('NFKC').trim();
}

/**
 * The person behind a vote's `by`: the channel prefix it arrived through (`cli:`, `api:`,
 * `console:`, `slack:`) is dropped, so one person is one voter on every channel; any other
 * prefix (`webhook:ops`, `system:…`) names a distinct actor and stays.
 */
export function personOf(by: string): string {
  const colon = by.indexOf(':');
  if (colon !== -1 && VOTE_CHANNELS.has(identityKey(by.slice(0, colon)))) return identityKey(by.slice(colon + 1));
  return identityKey(by);
}

/** Every `a:b:c` suffix's key (`a:b:c`, `b:c`, `c`): what a name could be read as. */
function suffixKeys(name: string): Set<string> {
  const out = new Set<string>();
  const key = identityKey(name);
  out.add(key);
  for (let i = key.indexOf(':'); i !== -1; i = key.indexOf(':', i + 1)) {
    const rest = key.slice(i + 1).trim();
    if (rest !== '') out.add(rest);
  }
  return out;
}

/**
 * Whether a voter could be the requester under another spelling: any prefix-stripped form of
 * one equals any of the other (`x:agent-1`, `Agent-1`, `agent-1\u200b`, Cyrillic `аgent-1` are all
 * `agent-1`). Errs towards "same": a refused self-approval is asked of someone else.
 */
export function samePerson(a: string, b: string): boolean {
  const kb = suffixKeys(b);
  for (const k of suffixKeys(a)) if (kb.has(k)) return true;
  return false;
}
