// Nesting depth of JSON text from an untrusted peer (the upstream), measured before anything
// recursive touches it: JSON.parse copes with any depth, but JSON.stringify, structured clone
// and every recursive walk overflow the JS stack on an answer nested 100,000 levels deep, and a
// RangeError there would take the process down. One pass, no allocation; strings are skipped
// with indexOf, so brackets inside them do not count.

const QUOTE = 0x22, BSLASH = 0x5c;
const LBRACE = 0x7b, RBRACE = 0x7d, LBRACK = 0x5b, RBRACK = 0x5d;

/** true when `text` opens more than `maxDepth` containers at once (a top-level `{}` is depth 1) */
export function jsonDepthOver(text: string, maxDepth: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // to the closing quote: one not preceded by an odd run of backslashes
      for (;;) {
        const q = text.indexOf('"', i + 1);
        if (q === -1) return false; // unterminated: JSON.parse will refuse it
        let bs = 0;
        while (text.charCodeAt(q - 1 - bs) === BSLASH) bs++;
        i = q;
        if ((bs & 1) === 0) break;
      }
    } else if (c === LBRACE || c === LBRACK) {
      if (++depth > maxDepth) return true;
    } else if (c === RBRACE || c === RBRACK) {
      depth--;
    }
  }
  return false;
}
