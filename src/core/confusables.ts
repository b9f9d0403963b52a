// The one table of lookalike characters, and the "skeleton" of a string, for telling lookalikes
// apart from the real thing (UTS #39 in spirit): NFKC, case folded, default-ignorable and
// zero-width characters and combining marks removed, common confusables of the ASCII letters
// mapped to them. Used where a spelling that a person (or a lenient server) reads as a governed
// name must be caught: method names, the `thoughtgate validate` lint, and approvers' identities
// (core/identity.ts). Never on the hot path: only after an exact lookup missed.

const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
const MARKS = /[\p{Mn}\p{Me}]/gu;

/**
 * Letters from other scripts (and Latin variants NFKC leaves alone) that render like an ASCII
 * letter or digit. A subset of Unicode's confusables.txt: the ones that map to a single ASCII
 * character, for the scripts an attacker reaches for first (Cyrillic, Greek, Armenian, Cherokee,
 * IPA / Latin extensions).
 */
const CONFUSABLE_GROUPS: Readonly<Record<string, string>> = {
  a: 'аɑαⲁ⍺',
  b: 'ЬƄᏏᑲвβ',
  c: 'сϲⅽᴄⲥ',
  d: 'ԁᏧⅾ',
  e: 'еҽℯ℮ᥱε',
  f: 'ſẝꞙ',
  g: 'ɡցᶃƍԍ',
  h: 'һհᏂн',
  i: 'іıɩι¡ⅰℹ',
  j: 'јϳȷ',
  k: 'κкᴋ',
  l: 'ӀӏⅼℓǀƖ׀|',
  m: 'ⅿｍм',
  n: 'ոռпη',
  o: 'оοօᴏσ०੦૦௦౦೦൦๐໐ဝ',
  p: 'рρϱⲣ',
  q: 'ԛգզ',
  r: 'гᴦⲅꭇ',
  s: 'ѕꜱƽ',
  t: 'тτᴛ',
  u: 'υսʋᴜμ',
  v: 'νѵᴠⅴ',
  w: 'ԝɯѡᴡω',
  x: 'хχⅹ᙮',
  y: 'уүγʏ',
  z: 'ᴢꮓζ',
  // separators that read as ASCII ones (names keep them; method skeletons drop all separators)
  '-': '\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u02d7\u2043',
  '.': '\u2024\u00b7\u2027',
  '0': 'Oo',
};

const CONFUSABLES: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [ascii, chars] of Object.entries(CONFUSABLE_GROUPS)) {
    if (ascii === '0') continue; // digits are not folded into letters: `tools0call` is no lookalike
    // Looked up after case folding: register the folded form (and the form as written).
    for (const ch of chars) {
      m.set(ch.codePointAt(0)!, ascii);
      // never an ASCII character itself: folding `ſ` gives `s`, which must stay `s`
      const folded = foldName(ch).codePointAt(0)!;
      if (folded >= 0x80) m.set(folded, ascii);
    }
  }
  return m;
})();


/** Case-folded NFKC without default-ignorable characters: what a case-folding server compares. */
export function foldName(s: string): string {
  // toUpperCase first so that ſ, ß and the like meet their ASCII forms (ſ→S→s, ß→SS→ss).
  return s.normalize('NFKC').replace(IGNORABLE, '').toUpperCase().toLowerCase();
}

/**
 * The skeleton: foldName, combining marks removed (after NFD), confusables mapped to ASCII, then
 * everything but ASCII letters and digits dropped — so separators (`/ . _ - \`, whitespace, any
 * punctuation) do not tell two spellings apart.
 */
export function skeleton(s: string): string {
  const folded = foldName(s).normalize('NFD').replace(MARKS, '');
  let out = '';
  for (const ch of folded) {
    const cp = ch.codePointAt(0)!;
    if ((cp >= 0x61 && cp <= 0x7a) || (cp >= 0x30 && cp <= 0x39)) out += ch;
    else {
      const mapped = CONFUSABLES.get(cp);
      if (mapped !== undefined && mapped !== '-' && mapped !== '.') out += mapped;
    }
  }
  return out;
}

/** `s` (already folded) with each lookalike character replaced by the ASCII one it imitates; the rest kept. */
export function foldConfusables(s: string): string {
  let out = '';
  for (const ch of s) out += CONFUSABLES.get(ch.codePointAt(0)!) ?? ch;
  return out;
}

/** Characters a person would not see or would read as another (for the validate lint). */
export function suspiciousCharacters(s: string): string[] {
  const found: string[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80 && cp >= 0x20 && cp !== 0x7f) continue;
    found.push(`U+${cp.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  return found;
}
