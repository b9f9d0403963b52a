import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BASE, parse, tempDir, writeIn } from './config-testkit.js';
import { buildSnapshot, loadSnapshot, snapshotVersion, visibilityMatcher } from './snapshot.js';

const withExpose = (mode: string, tools: string[]): string =>
  BASE.replace('    url: http://localhost:3000\n', `    url: http://localhost:3000\n    expose:\n      mode: ${mode}\n      tools: ${JSON.stringify(tools)}\n`);

describe('buildSnapshot', () => {
  it('compiles expose into a visibility matcher', () => {
    const visible = (mode: string, tools: string[], name: string): boolean => {
      const text = mode === 'all' ? BASE : withExpose(mode, tools);
      return buildSnapshot(parse(text), text).sources.get('upstream')!.visible(name);
    };
    assert.equal(visible('all', [], 'anything'), true);
    assert.equal(visible('allowlist', ['read_*', 'list_*'], 'read_file'), true);
    assert.equal(visible('allowlist', ['read_*', 'list_*'], 'list_dir'), true);
    assert.equal(visible('allowlist', ['read_*', 'list_*'], 'write_file'), false);
    assert.equal(visible('allowlist', [], 'x'), false);
    assert.equal(visible('blocklist', ['admin_*', '*_unsafe'], 'admin_reset'), false);
    assert.equal(visible('blocklist', ['admin_*', '*_unsafe'], 'run_unsafe'), false);
    assert.equal(visible('blocklist', ['admin_*', '*_unsafe'], 'echo'), true);
    assert.equal(visible('blocklist', [], 'x'), true);
  });

  it('keeps `visible` about expose only: a disabled source is the gate\'s business', () => {
    const text = BASE.replace('    url: http://localhost:3000\n', '    url: http://localhost:3000\n    enabled: false\n');
    const s = buildSnapshot(parse(text), text).sources.get('upstream')!;
    assert.equal(s.config.enabled, false);
    assert.equal(s.visible('echo'), true);
  });

  it('compiles rules in order with their source sets', () => {
    const text = `${BASE}  rules:
    - match: "delete_*"
      action: deny
      source: upstream
    - match: "*"
      action: approve
`;
    const snap = buildSnapshot(parse(text), text);
    assert.equal(snap.rules.length, 2);
    assert.equal(snap.rules[0]!.matches('delete_user'), true);
    assert.equal(snap.rules[0]!.matches('get_user'), false);
    assert.deepEqual([...snap.rules[0]!.sources!], ['upstream']);
    assert.equal(snap.rules[1]!.sources, undefined);
    assert.equal(snap.rules[1]!.config.action, 'approve');
    assert.equal(snap.defaultAction, 'forward');
  });

  it('is frozen all the way down', () => {
    const snap = buildSnapshot(parse(BASE), BASE);
    assert.ok(Object.isFrozen(snap));
    assert.ok(Object.isFrozen(snap.rules));
    assert.ok(Object.isFrozen(snap.config));
    assert.ok(Object.isFrozen(snap.config.sources[0]!.expose.tools));
    assert.ok(Object.isFrozen(snap.sources.get('upstream')));
    assert.throws(() => {
      (snap.config.governance.defaults as { action: string }).action = 'deny';
    }, TypeError);
  });

  it('version: 12 hex chars of sha256, stable for the same text, new for new text', () => {
    const a = buildSnapshot(parse(BASE), BASE).version;
    assert.match(a, /^[0-9a-f]{12}$/);
    assert.equal(buildSnapshot(parse(BASE), BASE).version, a);
    const other = `${BASE}  rules: []\n`;
    assert.notEqual(buildSnapshot(parse(other), other).version, a);
  });

  it('version covers the Cedar policy files', () => {
    const dir = tempDir();
    const policy = writeIn(dir, 'p.cedar', 'permit(principal, action, resource);');
    const text = `${BASE}cedar:\n  policies: [p.cedar]\n`;
    const path = join(dir, 'thoughtgate.yaml');
    const v1 = buildSnapshot(parse(text, {}, path), text).version;
    assert.equal(buildSnapshot(parse(text, {}, path), text).version, v1);
    writeFileSync(policy, 'forbid(principal, action, resource);');
    assert.notEqual(buildSnapshot(parse(text, {}, path), text).version, v1);
    assert.equal(snapshotVersion(parse(text, {}, path), text), buildSnapshot(parse(text, {}, path), text).version);
  });

  it('loadSnapshot hashes the expanded text, so a changed variable is a new version', () => {
    const dir = tempDir();
    const p = writeIn(dir, 'thoughtgate.yaml', BASE.replace('http://localhost:3000', '${URL}'));
    const a = loadSnapshot(p, { URL: 'http://a:1' });
    const b = loadSnapshot(p, { URL: 'http://b:1' });
    assert.equal(a.config.sources[0]!.url, 'http://a:1');
    assert.notEqual(a.version, b.version);
    assert.equal(loadSnapshot(p, { URL: 'http://a:1' }).version, a.version);
  });

  it('visibilityMatcher on its own', () => {
    assert.equal(visibilityMatcher({ mode: 'allowlist', tools: ['a', 'b*'] })('bc'), true);
    assert.equal(visibilityMatcher({ mode: 'blocklist', tools: ['a'] })('a'), false);
  });
});
