// An immutable policy snapshot: every glob compiled once, rules in order, and a content
// version. A reload builds a new snapshot and swaps it whole, so a request (or a batch) is
// judged against one consistent policy.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readConfigFile } from './config.js';
import type { ConfigContext } from './validate.js';
import type { Env } from './env-expand.js';
import { canonicalPrefix, canonicalUri, looksLikeUri } from './canonical.js';
import { foldName } from '../core/confusables.js';
import { compileGlob, literalPrefixLength } from './glob.js';
import type { ResourceKind } from './governable.js';
import type { CompiledRule, CompiledSource, Config, ExposeConfig, Matcher, Snapshot } from './types.js';

const always: Matcher = () => true;

/** How names are compared: `exact` (MCP names are case-sensitive) or `casefold` (for servers that fold case). */
export type NameMode = 'exact' | 'casefold';

/** The glob as tool and prompt names are matched against it (folded like the names under casefold). */
export function nameGlob(glob: string, names: NameMode): string {
  return names === 'casefold' ? foldName(glob) : glob;
}

/**
 * The glob as canonical resource URIs are matched against it: a glob that looks like a URI has
 * its literal start (up to the first wildcard) canonicalised like the URIs it is matched with.
 * What follows a wildcard cannot be canonicalised safely and is kept (`validate` warns about it).
 */
export function uriGlob(glob: string): string {
  if (!looksLikeUri(glob)) return glob;
  const n = literalPrefixLength(glob);
  if (n === glob.length) return canonicalUri(glob) ?? glob;
  return canonicalPrefix(glob.slice(0, n)) + glob.slice(n);
}

function anyOf(globs: readonly string[], spell: (g: string) => string): Matcher {
  const ms = globs.map((g) => compileGlob(spell(g)));
  if (ms.length === 1) return ms[0]!;
  return (s) => {
    for (let i = 0; i < ms.length; i++) if (ms[i]!(s)) return true;
    return false;
  };
}

const asIs = (g: string): string => g;

/** Gate 1's test for one source; only about `expose` (the gate checks `enabled` itself). */
export function visibilityMatcher(expose: ExposeConfig, spell: (glob: string) => string = asIs): Matcher {
  if (expose.mode === 'all') return always;
  if (expose.mode === 'allowlist') return expose.tools.length === 0 ? () => false : anyOf(expose.tools, spell);
  if (expose.tools.length === 0) return always;
  const hidden = anyOf(expose.tools, spell);
  return (s) => !hidden(s);
}

// The matcher for canonical URIs, kept beside each compiled rule and source (the shared
// `matches` / `visible` are the ones for names). Absent when the globs read the same either way.
const uriMatchers = new WeakMap<object, Matcher>();

const differs = (globs: readonly string[], names: NameMode): boolean => globs.some((g) => uriGlob(g) !== nameGlob(g, names));

/** Whether a rule's glob matches `key` (a folded name, or a canonical URI / template). */
export function ruleMatches(rule: CompiledRule, key: string, kind: ResourceKind): boolean {
  return (kind === 'name' ? rule.matches : uriMatchers.get(rule) ?? rule.matches)(key);
}

/** Whether a source's `expose` shows `key` (a folded name, or a canonical URI / template). */
export function sourceShows(source: CompiledSource, key: string, kind: ResourceKind): boolean {
  return (kind === 'name' ? source.visible : uriMatchers.get(source) ?? source.visible)(key);
}

/**
 * First 12 hex of sha256 over the config text and then each Cedar policy and schema file,
 * each length-prefixed so that moving bytes between parts changes the version.
 */
export function snapshotVersion(config: Config, sourceText: string): string {
  const h = createHash('sha256');
  const part = (data: string | Buffer): void => {
    h.update(`${Buffer.byteLength(data)}:`);
    h.update(data);
  };
  part(sourceText);
  const cedar = config.cedar;
  if (cedar !== undefined) {
    for (const p of cedar.policies) part(readFileSync(p));
    if (cedar.schema !== undefined) part(readFileSync(cedar.schema));
  }
  return h.digest('hex').slice(0, 12);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** Build the snapshot for a validated config; `sourceText` is the text it was parsed from. */
export function buildSnapshot(config: Config, sourceText: string): Snapshot {
  const names: NameMode = config.governance.names ?? 'exact';
  const spellName = (g: string): string => nameGlob(g, names);
  const sources = new Map<string, CompiledSource>();
  for (const s of config.sources) {
    const compiled = Object.freeze({ config: s, visible: visibilityMatcher(s.expose, spellName) });
    if (differs(s.expose.tools, names)) uriMatchers.set(compiled, visibilityMatcher(s.expose, uriGlob));
    sources.set(s.id, compiled);
  }
  const rules: CompiledRule[] = config.governance.rules.map((r) => {
    const compiled = Object.freeze({
      config: r,
      matches: compileGlob(spellName(r.match)),
      sources: r.source === undefined ? undefined : new Set(r.source),
    });
    if (differs([r.match], names)) uriMatchers.set(compiled, compileGlob(uriGlob(r.match)));
    return compiled;
  });
  return Object.freeze({
    config: deepFreeze(config),
    version: snapshotVersion(config, sourceText),
    sources,
    rules: Object.freeze(rules),
    defaultAction: config.governance.defaults.action,
  });
}

/** Load, validate and compile a config file in one step (throws ConfigError). */
export function loadSnapshot(path: string, env: Env = process.env, ctx: ConfigContext = {}): Snapshot {
  const { config, text } = readConfigFile(path, env, ctx);
  return buildSnapshot(config, text);
}
