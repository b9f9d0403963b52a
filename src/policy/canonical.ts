// One canonical spelling of a resource URI, so that the gates judge the name a server reads.
// Servers parse URIs with the WHATWG URL parser (`new URL(u).href`): scheme and special hosts
// lower-cased, default port dropped, dot segments (also `%2e`) removed, `\` read as `/` in
// special schemes, `file://localhost/` read as `file:///`. On top of that we apply the RFC 3986
// §6.2.2 normalisations a decoding server also makes: percent-encoded unreserved characters
// decoded, the remaining escapes in upper-case hex, opaque (non-special) hosts lower-cased. The
// result is a fixed point of both, so every spelling a server could read as one resource maps
// to one string here.

const PERCENT = /%([0-9A-Fa-f]{2})/g;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

function unreservedOrUpper(match: string, hex: string): string {
  const c = parseInt(hex, 16);
  // ALPHA / DIGIT / "-" / "." / "_" / "~"
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e) {
    return String.fromCharCode(c);
  }
  return match === `%${hex.toUpperCase()}` ? match : `%${hex.toUpperCase()}`;
}

/**
 * The canonical form of an absolute URI, or undefined when the WHATWG parser rejects it (a
 * relative reference, a bad host): such a string names nothing a WHATWG server would read.
 */
export function canonicalUri(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  // WHATWG keeps the case of an opaque (non-special) host; RFC 3986 hosts are case-insensitive.
  const host = url.host;
  if (host !== '' && host !== host.toLowerCase()) url.host = host.toLowerCase();
  const href = url.href;
  return href.indexOf('%') < 0 ? href : href.replace(PERCENT, unreservedOrUpper);
}

/** Whether a string starts with a URI scheme (so globs and names that look like URIs are treated as URIs). */
export const looksLikeUri = (s: string): boolean => SCHEME.test(s);

/** What the WHATWG parser drops before reading: C0 controls and spaces at either end, tabs and newlines anywhere. */
function stripAsWhatwg(s: string): string {
  return s.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
}

// A private-use character, percent-encoded by the WHATWG parser everywhere it can stand: marks
// where the literal part of a glob or a URI template ends, so canonicalisation can leave the
// rest (wildcards, `{expressions}`) untouched.
const MARK = '\uE000';
const MARK_ENCODED = '%EE%80%80';

/**
 * Canonicalises the literal prefix `prefix` of a pattern whose remainder is not a literal (a
 * glob's wildcards, a template's `{…}`): the prefix is canonicalised as the start of a URI.
 * Returns the prefix unchanged when it does not look like, or cannot be parsed as, one.
 */
export function canonicalPrefix(raw: string): string {
  const prefix = stripAsWhatwg(raw);
  if (!looksLikeUri(prefix)) return raw;
  const marked = canonicalUri(prefix + MARK);
  if (marked !== undefined && marked.endsWith(MARK_ENCODED) && marked.indexOf(MARK_ENCODED) === marked.length - MARK_ENCODED.length) {
    return marked.slice(0, -MARK_ENCODED.length);
  }
  // The mark cannot stand where the prefix ends (inside a special host: `HTTP://Example.CO`):
  // the prefix is a scheme and part of an authority, both case-insensitive.
  const authority = prefix.indexOf('//');
  if (authority >= 0 && prefix.indexOf('/', authority + 2) < 0 && prefix.indexOf('\\', authority + 2) < 0) return prefix.toLowerCase();
  return prefix;
}

/** The canonical form of a URI template (RFC 6570): its literal start canonicalised, expressions kept. */
export function canonicalTemplate(raw: string): string {
  const template = stripAsWhatwg(raw);
  const brace = template.indexOf('{');
  if (brace < 0) return canonicalUri(template) ?? template;
  return canonicalPrefix(template.slice(0, brace)) + template.slice(brace);
}

/**
 * Why a URI (kind 'uri') or URI template (kind 'template') named by `method` cannot be judged
 * as sent, or undefined when it is in canonical form. One canonical name is judged and
 * forwarded: a spelling that is not that form is refused rather than rewritten (the proxy path
 * and the decision API alike). `canonical` is the form to send, when there is one.
 */
export function canonicalProblem(method: string, resource: string, kind: 'uri' | 'template'): { message: string; reason: string; canonical?: string } | undefined {
  const canonical = kind === 'uri' ? canonicalUri(resource) : canonicalTemplate(resource);
  if (canonical === undefined) return { message: `'${resource}' in ${method} is not an absolute URI`, reason: `not an absolute URI: ${JSON.stringify(resource)}` };
  if (canonical === resource) return undefined;
  return { message: `resource URI '${resource}' is not in canonical form; send '${canonical}'`, reason: `non-canonical URI ${JSON.stringify(resource)} (canonical: ${canonical})`, canonical };
}
