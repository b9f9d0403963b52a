// Loading a ThoughtGate YAML config: read → reject empty → env expansion → YAML parse →
// shape (zod) → cross-field checks → normalised Config. Every problem is reported, all at
// once, as `FILE:LINE:COL: field 'a.b[0].c': message`, so an operator fixes a file in one go.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { ZodIssue } from 'zod';
import { EnvExpandError, expandEnv, missingMessage, type Env } from './env-expand.js';
import { configSchema } from './schema.js';
import type { Config } from './types.js';
import { validate, type ConfigContext, type Finding, type YamlPath } from './validate.js';

export interface ConfigIssue {
  /** 1-based; 0 when the problem has no position (the file could not be read) */
  line: number;
  column: number;
  /** dotted YAML path, e.g. `governance.rules[0].match`; absent for file-level problems */
  field?: string;
  message: string;
}

export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly field: string | undefined;
  /** every problem found, in file order; the fields above describe the first */
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.column - b.column);
    super(sorted.map((i) => formatIssue(file, i)).join('\n'));
    this.name = 'ConfigError';
    const first = sorted[0]!;
    this.file = file;
    this.line = first.line;
    this.column = first.column;
    this.field = first.field;
    this.issues = sorted;
  }
}

export function formatIssue(file: string, i: ConfigIssue): string {
  const where = i.line > 0 ? `${file}:${i.line}:${i.column}` : file;
  return i.field === undefined ? `${where}: ${i.message}` : `${where}: field '${i.field}': ${i.message}`;
}

/** `governance.rules[0].match` */
export function fieldName(path: YamlPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

/** Read, expand, parse and validate; throws ConfigError. */
export function loadConfigFile(path: string, env: Env = process.env, ctx: ConfigContext = {}): Config {
  return readConfigFile(path, env, ctx).config;
}

/** As loadConfigFile, also returning the expanded text (what a snapshot's version hashes). */
export function readConfigFile(path: string, env: Env = process.env, ctx: ConfigContext = {}): { config: Config; text: string } {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'configuration file not found' : `cannot read configuration file: ${(e as Error).message}`;
    throw new ConfigError(path, [{ line: 0, column: 0, message: why }]);
  }
  return parseConfigText(raw, path, env, ctx);
}

/** Parse config text that came from `path` (used for messages and relative Cedar paths). */
export function parseConfig(text: string, path: string, env: Env = process.env): Config {
  return parseConfigText(text, path, env).config;
}

function parseConfigText(text: string, path: string, env: Env, ctx: ConfigContext = {}): { config: Config; text: string } {
  if (text.trim() === '') throw new ConfigError(path, [{ line: 1, column: 1, message: 'configuration file is empty' }]);

  let expanded: string;
  try {
    expanded = expandEnv(text, env);
  } catch (e) {
    if (!(e instanceof EnvExpandError)) throw e;
    throw new ConfigError(path, e.missing.map((m) => ({ line: m.line, column: m.column, message: missingMessage(m.name) })));
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(expanded, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number): { line: number; column: number } => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(path, doc.errors.map((e) => ({ ...at(e.pos[0]), message: `YAML parse error: ${e.message}` })));
  }

  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError(path, [{ line: 1, column: 1, message: `YAML parse error: ${(e as Error).message}` }]);
  }

  const locate = (f: Finding): ConfigIssue => {
    const issue: ConfigIssue = { ...at(offsetOf(doc, f.path, f.atKey === true)), message: f.message };
    if (f.path.length > 0) issue.field = fieldName(f.path);
    return issue;
  };

  const shaped = configSchema.safeParse(js);
  if (!shaped.success) throw new ConfigError(path, shaped.error.issues.flatMap(fromZod).map(locate));

  const abs = resolve(path);
  const checked = validate(shaped.data, js, dirname(abs), ctx);
  if (checked.config === undefined) throw new ConfigError(path, checked.errors.map(locate));

  const warnings = [
    ...doc.warnings.map((w) => formatIssue(path, { ...at(w.pos[0]), message: `YAML warning: ${w.message}` })),
    ...checked.warnings.map((w) => formatIssue(path, locate(w))),
  ];
  return { config: { ...checked.config, path: abs, warnings }, text: expanded };
}

const KIND_NAMES: Readonly<Record<string, string>> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  float: 'a fractional number',
  boolean: 'true or false',
  null: 'nothing (null)',
};
const kind = (k: string): string => KIND_NAMES[k] ?? k;

function fromZod(issue: ZodIssue): Finding[] {
  const path = issue.path;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown field '${k}'`, atKey: true }));
    case 'invalid_type':
      if (issue.received === 'undefined') return [{ path, message: 'missing required field' }];
      return [{ path, message: `expected ${kind(issue.expected)}, got ${kind(issue.received)}` }];
    case 'invalid_enum_value':
      return [{ path, message: `invalid value '${String(issue.received)}', expected one of: ${issue.options.join(', ')}` }];
    case 'too_small':
      if (issue.type === 'array') return [{ path, message: `must have at least ${String(issue.minimum)} item(s)` }];
      return [{ path, message: `must be >= ${String(issue.minimum)}` }];
    default:
      return [{ path, message: issue.message }];
  }
}

/**
 * Source offset for a YAML path: the value's node, the key's node when `atKey`, or the
 * deepest node that exists when the path runs out (a missing key is reported on its parent).
 */
function offsetOf(doc: Document, path: YamlPath, atKey: boolean): number {
  let node: unknown = doc.contents;
  let best = rangeStart(node) ?? 0;
  for (let k = 0; k < path.length; k++) {
    const seg = path[k]!;
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (pair === undefined) break;
      const keyStart = rangeStart(pair.key);
      if (atKey && k === path.length - 1) return keyStart ?? best;
      node = pair.value;
      // an empty value (`key:`) has a zero-width node after the colon: name the key instead
      best = (isEmptyScalar(node) ? keyStart : rangeStart(node)) ?? keyStart ?? best;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      const start = rangeStart(node);
      if (start === undefined) break;
      best = start;
    } else {
      break;
    }
  }
  return best;
}

const isEmptyScalar = (node: unknown): boolean =>
  isScalar(node) && node.value === null && node.range !== undefined && node.range !== null && node.range[0] === node.range[1];

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}
