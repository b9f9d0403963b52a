// An immutable policy snapshot: every glob compiled once, rules in order, and a content
// version. A reload builds a new snapshot and swaps it whole, so a request (or a batch) is
// judged against one consistent policy.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readConfigFile } from './config.js';
import type { ConfigContext } from './validate.js';
import type { Env } from './env-expand.js';
import { compileGlob } from './glob.js';
import type { CompiledRule, CompiledSource, Config, ExposeConfig, Matcher, Snapshot } from './types.js';

const always: Matcher = () => true;

function anyOf(globs: readonly string[]): Matcher {
  const ms = globs.map(compileGlob);
  if (ms.length === 1) return ms[0]!;
  return (s) => {
    for (let i = 0; i < ms.length; i++) if (ms[i]!(s)) return true;
    return false;
  };
}

/** Gate 1's test for one source; only about `expose` (the gate checks `enabled` itself). */
export function visibilityMatcher(expose: ExposeConfig): Matcher {
  if (expose.mode === 'all') return always;
  if (expose.mode === 'allowlist') return expose.tools.length === 0 ? () => false : anyOf(expose.tools);
  if (expose.tools.length === 0) return always;
  const hidden = anyOf(expose.tools);
  return (s) => !hidden(s);
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
  const sources = new Map<string, CompiledSource>();
  for (const s of config.sources) sources.set(s.id, Object.freeze({ config: s, visible: visibilityMatcher(s.expose) }));
  const rules: CompiledRule[] = config.governance.rules.map((r) =>
    Object.freeze({
      config: r,
      matches: compileGlob(r.match),
      sources: r.source === undefined ? undefined : new Set(r.source),
    }),
  );
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
