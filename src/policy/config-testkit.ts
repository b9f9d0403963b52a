// Helpers shared by the policy tests (not used at run time).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig, type ConfigIssue } from './config.js';
import type { Config } from './types.js';

export const BASE = `schema: 1
sources:
  - id: upstream
    kind: mcp
    url: http://localhost:3000
governance:
  defaults:
    action: forward
`;

/** A fresh directory; the config "file" lives there so relative Cedar paths resolve into it. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tg-policy-'));
  if (made.length === 0) process.once('exit', () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  made.push(dir);
  return dir;
}
const made: string[] = [];

export function writeIn(dir: string, name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

export const CONFIG_PATH = join(tmpdir(), 'tg-policy-fixture', 'thoughtgate.yaml');

export function parse(text: string, env: Record<string, string> = {}, path = CONFIG_PATH): Config {
  return parseConfig(text, path, env);
}

export function configError(text: string, env: Record<string, string> = {}, path = CONFIG_PATH): ConfigError {
  try {
    parseConfig(text, path, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

/** Assert that loading `text` fails with an issue that has all the given properties. */
export function assertIssue(text: string, want: Partial<ConfigIssue>, env: Record<string, string> = {}, path = CONFIG_PATH): ConfigError {
  const e = configError(text, env, path);
  const hit = e.issues.find((i) => Object.entries(want).every(([k, v]) => i[k as keyof ConfigIssue] === v));
  assert.ok(hit, `no issue like ${JSON.stringify(want)} in:\n${e.message}`);
  return e;
}
