// The environment a governed stdio server starts with. The server is governed, so it is
// treated as hostile: it gets a short allowlist of the proxy's environment (what a process
// needs to find programs, its home and its locale), what its source's `env:` sets, and what
// the operator passes through by name (`env_passthrough`) — never the proxy's own settings
// and secrets. Every THOUGHTGATE_* variable stays out (a server holding THOUGHTGATE_ADMIN_TOKEN
// could approve its own held calls), and a config that would hand one of our secrets over,
// by name or by value, is refused at startup.

/**
 * Inherited from the proxy's environment when set:
 *  - PATH: `command: npx`, `uvx`, `node` … are found through it.
 *  - HOME, USER, LOGNAME: npm/npx/uv caches and per-user config live under HOME; some
 *    runtimes read USER/LOGNAME instead of asking the password database.
 *  - TMPDIR: where the server's temporary files go (a private TMPDIR stays private).
 *  - TZ, LANG, LANGUAGE, LC_*: time zone and locale, so text and dates are what the operator
 *    expects.
 * Not inherited: SHELL and TERM (a stdio server has pipes, no terminal, and spawns through
 * /bin/sh, not $SHELL), proxy settings (HTTP(S)_PROXY may carry credentials), NODE_OPTIONS
 * and friends (they change how a runtime loads code). Pass any of those by name with
 * `env_passthrough` when a server needs them.
 */
export const INHERITED_NAMES: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR', 'TZ', 'LANG', 'LANGUAGE'];
const INHERITED = new Set(INHERITED_NAMES);
const LOCALE = /^LC_[A-Z_]+$/;

/** Names of ours whose values are credentials (their values must not reach a server under any name). */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|(^|_)KEY($|_)/i;
/** shorter values are not treated as secrets (a port number must not collide with one) */
const MIN_SECRET_CHARS = 8;

import { isOwnVariable } from '../core/own-env.js';

export type Env = Readonly<Record<string, string | undefined>>;

export class ChildEnvError extends Error {}

/** A THOUGHTGATE_* variable (any case: a lookalike of ours is ours too). */
export const isOurs = isOwnVariable;

/** `env` without any THOUGHTGATE_* variable except the names in `keep`. */
export function withoutOurs(env: Env, keep: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in env) {
    const v = env[k];
    if (v === undefined) continue;
    if (isOurs(k) && !keep.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

/** The proxy's secrets a server must not get: variable names (besides THOUGHTGATE_*) and values. */
export interface OurSecrets {
  /** variables the proxy reads credentials from (workflows' token_env / secret_env) */
  names: ReadonlySet<string>;
  /** the credentials themselves (approver tokens, THOUGHTGATE_*TOKEN/SECRET, the token_env values) */
  values: ReadonlySet<string>;
}

/** What the config needs of ours (structural, so this module does not depend on policy/). */
export interface SecretSources {
  approval: Record<string, {
    destination: { type: string; token_env?: string; secret_env?: string };
    approver_tokens?: Record<string, string>;
  }>;
}

/** Collects the proxy's secrets from its environment and its config. */
export function ourSecrets(env: Env, config: SecretSources): OurSecrets {
  const names = new Set<string>();
  const values = new Set<string>();
  const addValue = (v: string | undefined): void => {
    if (v !== undefined && v.length >= MIN_SECRET_CHARS) values.add(v);
  };
  for (const k in env) if (isOurs(k) && SECRET_NAME.test(k)) addValue(env[k]);
  for (const w of Object.values(config.approval)) {
    for (const n of [w.destination.token_env, w.destination.secret_env]) {
      if (n === undefined) continue;
      names.add(n);
      addValue(env[n]);
    }
    for (const t of Object.values(w.approver_tokens ?? {})) addValue(t);
  }
  return { names, values };
}

export interface ChildEnvSpec {
  /** for messages: `sources[<id>]` */
  sourceId: string;
  /** the source's `env:` (already ${VAR}-expanded) */
  env: Readonly<Record<string, string>>;
  /** the source's `env_passthrough:` */
  passthrough: readonly string[];
  secrets: OurSecrets;
}

/**
 * The complete environment of the source's server: inherited allowlist, then passthrough,
 * then `env:` (the most specific wins). Throws ChildEnvError when the config would hand the
 * server a THOUGHTGATE_* variable or one of our secrets; the message names the field.
 */
export function buildChildEnv(spec: ChildEnvSpec, parent: Env): Record<string, string> {
  const at = `sources[${spec.sourceId}]`;
  const secret = (v: string): boolean => spec.secrets.values.has(v);
  const out: Record<string, string> = {};
  for (const k in parent) {
    const v = parent[k];
    if (v === undefined || !(INHERITED.has(k) || LOCALE.test(k))) continue;
    if (secret(v)) continue; // absurd (HOME equal to a token), but then it stays out too
    out[k] = v;
  }
  for (const name of spec.passthrough) {
    if (isOurs(name)) {
      throw new ChildEnvError(`${at}.env_passthrough: '${name}' is ThoughtGate's own setting; THOUGHTGATE_* variables are never passed to a server`);
    }
    if (spec.secrets.names.has(name)) {
      throw new ChildEnvError(`${at}.env_passthrough: '${name}' holds a credential ThoughtGate uses (an approval workflow's token_env/secret_env); it is never passed to a server`);
    }
    const v = parent[name];
    if (v === undefined) continue; // unset: nothing to pass (like a shell's env would)
    if (secret(v)) throw new ChildEnvError(`${at}.env_passthrough: '${name}' has the value of one of ThoughtGate's own credentials; it is never passed to a server`);
    out[name] = v;
  }
  for (const name in spec.env) {
    const v = spec.env[name]!;
    if (isOurs(name)) {
      throw new ChildEnvError(`${at}.env: '${name}': THOUGHTGATE_* variables are ThoughtGate's own and are never set for a server; rename it`);
    }
    if (secret(v)) throw new ChildEnvError(`${at}.env: '${name}' is set to one of ThoughtGate's own credentials (an admin, API, approver, Slack or webhook secret); a governed server must not hold it`);
    out[name] = v;
  }
  return out;
}
