import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dryRunDiff } from './dry-run.js';
import { planRewrite } from './rewrite.js';

const OPTS = {
  shimCommand: '/usr/bin/node',
  shimArgsPrefix: ['/opt/tg/bin/thoughtgate.js', 'shim'],
  governanceUrl: 'http://127.0.0.1:0',
  token: 'secret-token-value',
  profile: 'production' as const,
};
const CONFIG = `{
  "globalShortcut": "Ctrl+Alt+Space",
  "theme": "dark",
  "mcpServers": {
    "everything": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-everything"]
    }
  },
  "a": 1,
  "b": 2,
  "c": 3,
  "d": 4,
  "e": 5
}
`;

describe('dryRunDiff', () => {
  it('plans and diffs without writing anything: bytes, mtime and directory unchanged, no backup or marker', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-dry-'));
    const file = join(dir, 'claude_desktop_config.json');
    writeFileSync(file, CONFIG);
    const before = { bytes: readFileSync(file), mtime: statSync(file).mtimeMs, entries: readdirSync(dir) };
    const text = readFileSync(file, 'utf8');
    const diff = dryRunDiff(file, text, planRewrite(text, { path: file, agent: 'custom', format: 'mcpServers' }, OPTS).text);
    assert.ok(diff.length > 0);
    assert.ok(readFileSync(file).equals(before.bytes));
    assert.equal(statSync(file).mtimeMs, before.mtime);
    assert.deepEqual(readdirSync(dir), before.entries);
    assert.ok(!existsSync(`${file}.thoughtgate-backup`) && !existsSync(`${file}.thoughtgate-marker`));
  });

  it('is a unified diff labelled with the path, with 3 lines of context, showing the shim command', () => {
    const after = planRewrite(CONFIG, { path: '/cfg/c.json', agent: 'custom', format: 'mcpServers' }, OPTS).text;
    const diff = dryRunDiff('/cfg/c.json', CONFIG, after);
    const lines = diff.split('\n');
    assert.match(lines[0]!, /^--- \/cfg\/c\.json\b/);
    assert.match(lines[1]!, /^\+\+\+ \/cfg\/c\.json\b/);
    assert.match(lines[2]!, /^@@ -\d+,\d+ \+\d+,\d+ @@$/);
    assert.ok(lines.includes('-      "command": "npx",'));
    assert.ok(lines.includes('+      "command": "/usr/bin/node",'));
    assert.ok(lines.includes('+        "shim",'));
    // 3 lines of context: the unrelated keys far below the change are not in the diff
    assert.ok(lines.includes('   "a": 1,'));
    assert.ok(!diff.includes('"e": 5'));
    assert.ok(!diff.includes('globalShortcut'));
  });

  it('can hide the token', () => {
    const after = planRewrite(CONFIG, { path: '/cfg/c.json', agent: 'custom', format: 'mcpServers' }, OPTS).text;
    const diff = dryRunDiff('/cfg/c.json', CONFIG, after, { redact: [OPTS.token] });
    assert.ok(!diff.includes(OPTS.token));
    assert.ok(diff.includes('"THOUGHTGATE_GOVERNANCE_TOKEN": "<redacted>"'));
  });

  it('is empty when nothing would change', () => {
    assert.equal(dryRunDiff('/cfg/c.json', CONFIG, CONFIG), '');
  });
});
