// Profiles the proxy under the tools/call load: fixture + `thoughtgate serve --cpu-prof` +
// autocannon (50 connections), then prints the functions with the most self time.
// Usage: node bench/profile.mjs [--seconds 5] [--connections 50] [--top 30]
// The .cpuprofile lands in bench/results/ (open it in Chrome DevTools for a flame graph).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startFixture } from './fixture.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' }, top: { type: 'string', default: '30' } } });

const fixture = await startFixture({ port: 0 });
const dir = mkdtempSync(join(tmpdir(), 'tg-prof-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(cfg, `schema: 1\nsources:\n  - id: bench\n    kind: mcp\n    url: ${fixture.url}\ngovernance:\n  defaults:\n    action: forward\n`);
const outDir = join(root, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const port = 20000 + Math.floor(Math.random() * 20000);
const proxy = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, join(root, 'bin', 'thoughtgate.js'), 'serve', '--config', cfg], {
  env: { ...process.env, THOUGHTGATE_OUTBOUND_PORT: String(port), THOUGHTGATE_ADMIN_PORT: String(port + 1), THOUGHTGATE_AUDIT_PATH: join(dir, 'audit.ndjson'), THOUGHTGATE_LOG_LEVEL: 'warn' },
  stdio: 'inherit',
});
for (let i = 0; ; i++) {
  try { if ((await fetch(`http://127.0.0.1:${port + 1}/ready`)).status === 200) break; } catch {}
  if (i > 200) throw new Error('proxy not ready');
  await new Promise((r) => setTimeout(r, 50));
}
const url = `http://127.0.0.1:${port}/mcp`;
const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
const init = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'prof', version: '1' } } }) });
await init.text();
const sid = init.headers.get('mcp-session-id');
if (sid) headers['mcp-session-id'] = sid;
const result = await autocannon({
  url, method: 'POST', headers, connections: Number(values.connections), duration: Number(values.seconds),
  body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } }),
});
console.log(`${Math.round(result.requests.average)} req/s, p50 ${result.latency.p50} ms, errors ${result.errors}, non2xx ${result.non2xx}`);
proxy.kill('SIGINT');
await new Promise((r) => proxy.once('exit', r));
fixture.close();

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
writeFileSync(join(outDir, 'proxy.cpuprofile'), JSON.stringify(profile));
// self time per function = samples whose leaf is that node
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = (profile.endTime - profile.startTime) / profile.samples.length;
for (const id of profile.samples) {
  const n = byId.get(id);
  const f = n.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|src|dist)\//, '$1/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + dt);
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`\nself time, top ${values.top} (of ${(total / 1000).toFixed(0)} ms sampled):`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}
console.log(`\nprofile: ${join(outDir, 'proxy.cpuprofile')}`);
