// `${NAME}` / `${NAME:-default}` expansion over the raw YAML text, as the original does, with
// one deliberate difference: text inside YAML comments is left alone, so a commented-out
// `${UNSET}` no longer fails the load.
//
// Comment detection is a small scanner, not a YAML parser: a `#` starts a comment when it is
// at the start of a line or follows a space or tab, and is not inside a quoted scalar. A
// quoted scalar opens at a `'` or `"` that starts a line or follows whitespace, `[`, `{` or
// `,`; it may span lines (`\"` escapes in "…", `''` in '…'). Known limit: a `#` after a space
// inside a block scalar (`|`, `>`) is treated as a comment, so `${…}` after it stays literal.

export type Env = Readonly<Record<string, string | undefined>>;

export interface MissingVariable {
  name: string;
  /** 1-based position of the `$` in the original text */
  line: number;
  column: number;
}

export class EnvExpandError extends Error {
  readonly missing: readonly MissingVariable[];

  constructor(missing: MissingVariable[]) {
    const first = missing[0]!;
    super(`${missingMessage(first.name)} at line ${first.line}, column ${first.column}`);
    this.name = 'EnvExpandError';
    this.missing = missing;
  }
}

/** The original's wording for an unset variable without a default. */
export const missingMessage = (name: string): string =>
  `environment variable '${name}' not set (required for field 'configuration')`;

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/y;

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';
const opensQuote = (prev: string | undefined): boolean =>
  prev === undefined || prev === '\n' || prev === '\r' || isBlank(prev) || prev === '[' || prev === '{' || prev === ',';

/** Expand every reference outside comments; throws EnvExpandError listing every unset one. */
export function expandEnv(text: string, env: Env = process.env): string {
  let out = '';
  let copied = 0; // text[copied..i) is still to be copied verbatim
  let quote: '' | "'" | '"' = '';
  let comment = false;
  const missing: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') {
      comment = false;
      continue;
    }
    if (comment) continue;
    const prev = i > 0 ? text[i - 1] : undefined;
    if (quote === '"') {
      if (c === '\\') i++;
      else if (c === '"') quote = '';
    } else if (quote === "'") {
      if (c === "'") {
        if (text[i + 1] === "'") i++;
        else quote = '';
      }
    } else if (c === '#' && (prev === undefined || prev === '\n' || isBlank(prev))) {
      comment = true;
      continue;
    } else if ((c === '"' || c === "'") && opensQuote(prev)) {
      quote = c;
      continue;
    }
    if (c !== '$') continue;
    REFERENCE.lastIndex = i;
    const ref = REFERENCE.exec(text);
    if (ref === null) continue;
    const name = ref[1]!;
    const own = Object.hasOwn(env, name) ? env[name] : undefined; // not `constructor` & co.
    const value = typeof own === 'string' ? own : ref[2];
    if (value === undefined) missing.push(i); // keep going to report every one
    out += text.slice(copied, i) + (value ?? ref[0]);
    copied = i + ref[0].length;
    i = copied - 1;
  }
  if (missing.length > 0) {
    throw new EnvExpandError(
      missing.map((at) => {
        REFERENCE.lastIndex = at;
        return { name: REFERENCE.exec(text)![1]!, ...positionOf(text, at) };
      }),
    );
  }
  return out + text.slice(copied);
}

function positionOf(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let k = text.indexOf('\n'); k >= 0 && k < offset; k = text.indexOf('\n', k + 1)) {
    line++;
    lineStart = k + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
