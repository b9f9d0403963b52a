// The MCP conformance suite (@modelcontextprotocol/conformance 0.1.13) against server-everything
// directly and through the proxy: the proxy must not lose a check that passes directly, and
// must turn dns-rebinding-protection into a pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startEverythingHttp, startProxy } from './helpers.mjs';

const require = createRequire(import.meta.url);
const CONFORMANCE = join(dirname(require.resolve('@modelcontextprotocol/conformance/package.json')), 'dist', 'index.js');

function run(url) {
  const out = mkdtempSync(join(tmpdir(), 'tg-conf-'));
  return new Promise((resolve) => {
    const chunks = [];
    const p = spawn(process.execPath, [CONFORMANCE, 'server', '--url', url, '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d) => chunks.push(d));
    p.stderr.on('data', (d) => chunks.push(d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('exit', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const scenarios = new Map();
      for (const m of text.matchAll(/^\s*[✓✗]\s+([\w.-]+):\s+(\d+) passed, (\d+) failed/gmu)) scenarios.set(m[1], { passed: +m[2], failed: +m[3] });
      const checks = new Set();
      for (const d of existsSync(out) ? readdirSync(out) : []) {
        const f = join(out, d, 'checks.json');
        if (!existsSync(f)) continue;
        const scenario = d.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
        for (const c of JSON.parse(readFileSync(f, 'utf8'))) if (c.status === 'SUCCESS') checks.add(`${scenario}/${c.id}`);
      }
      const passing = new Set([...scenarios].filter(([, v]) => v.failed === 0 && v.passed > 0).map(([k]) => k));
      resolve({ scenarios, passing, checks, text });
    });
  });
}

test('conformance: every check that passes directly passes through the proxy; DNS rebinding is stopped', { timeout: 240_000 }, async () => {
  const se = await startEverythingHttp();
  const proxy = await startProxy(`schema: 1
sources:
  - id: everything
    kind: mcp
    url: ${se.url}
governance:
  defaults:
    action: forward
`);
  try {
    const direct = await run(se.url);
    assert.ok(direct.scenarios.size > 10, `the direct run produced a summary: ${direct.text.slice(-300)}`);
    const via = await run(proxy.url);
    assert.ok(via.scenarios.size > 10, `the proxied run produced a summary: ${via.text.slice(-300)}`);
    const lostScenarios = [...direct.passing].filter((s) => !via.passing.has(s));
    const lostChecks = [...direct.checks].filter((c) => !via.checks.has(c));
    assert.deepEqual(lostScenarios, []);
    assert.deepEqual(lostChecks, []);
    assert.ok(via.passing.has('dns-rebinding-protection'), 'dns-rebinding-protection passes through the proxy');
  } finally {
    await proxy.stop();
    se.stop();
  }
});
