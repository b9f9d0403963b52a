// `thoughtgate validate`'s lint for globs a name variant would slip past: a server reads a name
// or URI in its own way (folds case, canonicalises URIs), and a glob written for one spelling
// does not stop another. Warnings only; a handful per config at most, each saying what to do.
import { looksLikeUri } from './canonical.js';
import { suspiciousCharacters } from '../core/confusables.js';
import { literalPrefixLength } from './glob.js';
import { uriGlob } from './snapshot.js';
import type { Config } from './types.js';

interface NamedGlob {
  glob: string;
  /** how the config names it: `rule 'x'` / `source 'id' expose 'x'` */
  where: string;
  /** a deny, an approval or a hiding: a spelling that escapes it reaches the server */
  restrictive: boolean;
}

function globsOf(config: Config): NamedGlob[] {
  const out: NamedGlob[] = [];
  for (const r of config.governance.rules) out.push({ glob: r.match, where: `rule '${r.match}'`, restrictive: r.action !== 'forward' });
  for (const s of config.sources) {
    for (const g of s.expose.tools) out.push({ glob: g, where: `source '${s.id}' expose '${g}'`, restrictive: s.expose.mode === 'blocklist' });
  }
  return out;
}

/** A spelling of the glob's literal start with the case of its first letter swapped, if it has a letter. */
function caseVariant(glob: string): string | undefined {
  const i = glob.search(/[A-Za-z]/);
  if (i < 0 || i >= literalPrefixLength(glob)) return undefined;
  const c = glob[i]!;
  const swapped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
  return (glob.slice(0, i) + swapped + glob.slice(i + 1)).replace(/[*?[].*$/, 'x');
}

/** Whether text (after a glob's first wildcard) holds something a canonical URI never does. */
function uncanonicalAfterWildcard(rest: string): boolean {
  if (/\/\.\.?(\/|$)/.test(rest) || rest.includes('\\')) return true;
  for (const m of rest.matchAll(/%([0-9A-Fa-f]{2})/g)) {
    const hex = m[1]!;
    const c = String.fromCharCode(parseInt(hex, 16));
    // lower-case hex, or an escaped unreserved character (canonical URIs carry it decoded)
    if (hex !== hex.toUpperCase() || /[A-Za-z0-9\-._~]/.test(c)) return true;
  }
  return false;
}

export function lintNameGlobs(config: Config): string[] {
  const warnings: string[] = [];
  const names = config.governance.names ?? 'exact';
  const globs = globsOf(config);
  const caseSensitive: string[] = [];
  let example: string | undefined;
  for (const g of globs) {
    const odd = suspiciousCharacters(g.glob);
    if (odd.length > 0) {
      warnings.push(`${g.where} contains non-ASCII or invisible characters (${odd.slice(0, 4).join(', ')}): a name spelled with the ASCII characters they look like does not match it${g.restrictive ? ' and is not stopped by it' : ''}`);
    }
    if (looksLikeUri(g.glob)) {
      const canonical = uriGlob(g.glob);
      if (canonical !== g.glob) warnings.push(`${g.where} is matched as '${canonical}' (resource URIs are compared in their canonical form)`);
      const rest = g.glob.slice(literalPrefixLength(g.glob));
      if (g.restrictive && uncanonicalAfterWildcard(rest)) {
        warnings.push(`${g.where}: the part after its first wildcard is compared as written, but URIs arrive canonical (lower-case scheme and host, no dot segments, unreserved characters decoded, escapes in upper case): write that part in canonical form`);
      }
      continue;
    }
    if (names === 'exact' && g.restrictive) {
      const v = caseVariant(g.glob);
      if (v !== undefined) {
        caseSensitive.push(`'${g.glob}'`);
        example ??= v;
      }
    }
  }
  if (caseSensitive.length > 0) {
    const listed = caseSensitive.length > 4 ? `${caseSensitive.slice(0, 4).join(', ')} and ${caseSensitive.length - 4} more` : caseSensitive.join(', ');
    warnings.push(`governance.names is exact: ${listed} stop only names spelled in that case; a server that folds case would run '${example}' unchecked. Set governance.names: casefold if any of your servers folds case`);
  }
  return warnings;
}
