// Where the CPU goes: tools/call at 50 connections (autocannon, in this process) direct to the
// fixture and through the proxy, interleaved, with each process's CPU time per request (user /
// system, from /proc/<pid>/stat) beside the rate. On a 2-core box the three processes share the
// cores, so a proxy's throughput is bounded by the CPU all three spend per proxied request.
// Usage: node bench/cpu.mjs [--seconds 5] [--reps 2] [--same-ids] [--floor]
//   --same-ids  one constant request (not valid MCP: ids repeat) — the generator's cheapest load
//   --floor     also measure bench/floor-proxy.mjs (uWS + lean client, no governance)
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { ROOT, startFixtureProcess, startProxy } from './lib/servers.mjs';
import { installCleanup, freePort, track } from './lib/procs.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, reps: { type: 'string', default: '2' }, 'same-ids': { type: 'boolean', default: false }, floor: { type: 'boolean', default: false } } });
installCleanup();
const seconds = Number(values.seconds);
const TICKS = 100; // USER_HZ
const cpuOf = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(f[11]) / TICKS, sys: Number(f[12]) / TICKS };
};

const fixture = await startFixtureProcess();
const targets = [{ name: 'direct', url: fixture.url, pid: null }];
const proxy = await startProxy(fixture.url);
targets.push({ name: 'thoughtgate', url: proxy.url, pid: proxy.child.pid });
let floor;
if (values.floor) {
  const port = await freePort();
  const child = track(spawn(process.execPath, [join(ROOT, 'bench', 'floor-proxy.mjs'), fixture.url, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  await new Promise((resolve) => child.stdout.once('data', resolve));
  floor = child;
  targets.push({ name: 'floor', url: `http://127.0.0.1:${port}/mcp`, pid: child.pid });
}

async function session(url) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'cpu', version: '1' } } }) });
  await r.text();
  const sid = r.headers.get('mcp-session-id');
  if (sid) headers['mcp-session-id'] = sid;
  return headers;
}
const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } });
const [pre, post] = body.split('"id":2');
let nextId = 1000;
const requests = values['same-ids'] ? undefined : [{ setupRequest: (req) => { req.body = `${pre}"id":${nextId++}${post}`; return req; } }];
const load = (url, headers, duration) => new Promise((resolve, reject) => autocannon({ url, method: 'POST', headers, body, requests, connections: 50, duration }, (e, r) => (e ? reject(e) : resolve(r))));

console.log(`| round | target | req/s | ${['fixture', 'proxy', 'generator'].map((p) => `${p} CPU % (user / sys µs per request)`).join(' | ')} |`);
console.log('| --- | --- | --- | --- | --- | --- |');
for (let round = 1; round <= Number(values.reps); round++) {
  for (const t of targets) {
    const headers = await session(t.url);
    await load(t.url, headers, 1); // warm-up
    const pids = { fixture: fixture.child.pid, proxy: t.pid, generator: process.pid };
    const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid ? cpuOf(pid) : null]));
    const t0 = process.hrtime.bigint();
    const r = await load(t.url, headers, seconds);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const n = r.requests.total;
    const cells = Object.entries(pids).map(([k, pid]) => {
      if (!pid) return '–';
      const a = cpuOf(pid);
      const user = a.user - before[k].user;
      const sys = a.sys - before[k].sys;
      return `${Math.round(((user + sys) / wall) * 100)}% (${((user / n) * 1e6).toFixed(1)} / ${((sys / n) * 1e6).toFixed(1)})`;
    });
    console.log(`| ${round} | ${t.name} | ${Math.round(n / wall).toLocaleString('en-US')} | ${cells.join(' | ')} |`);
  }
}
floor?.kill();
await proxy.stop();
await fixture.stop();
process.exit(0);
