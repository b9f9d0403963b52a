// Shared by the end-to-end tests: start the built `thoughtgate serve` with a config, start real
// peers (server-everything over HTTP, a recording upstream), raw MCP over fetch.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import net from 'node:net';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = join(ROOT, 'bin', 'thoughtgate.js');
const require = createRequire(import.meta.url);
export const EVERYTHING = join(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port nobody listens on right now (uWS uses SO_REUSEPORT, so never reuse one). */
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const running = new Set();
process.on('exit', () => { for (const p of running) try { p.kill('SIGKILL'); } catch {} });

/** Starts the sidecar on fresh ports; resolves once /ready is 200. */
export async function startProxy(yaml, { env = {}, args = [], expectFailure = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tg-test-'));
  const cfg = join(dir, 'thoughtgate.yaml');
  writeFileSync(cfg, yaml);
  const port = await freePort();
  const adminPort = await freePort();
  const auditPath = join(dir, 'audit.ndjson');
  const log = [];
  const proc = spawn(process.execPath, [BIN, 'serve', '--config', cfg, ...args], {
    cwd: dir,
    env: {
      ...process.env, THOUGHTGATE_OUTBOUND_PORT: String(port), THOUGHTGATE_ADMIN_PORT: String(adminPort),
      THOUGHTGATE_AUDIT_PATH: auditPath, THOUGHTGATE_BIND: '127.0.0.1', THOUGHTGATE_ADMIN_BIND: '127.0.0.1',
      THOUGHTGATE_STATE_DIR: join(dir, 'state'), THOUGHTGATE_ADMIN_TOKEN: 'test-admin-token', ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  proc.stdout.on('data', (d) => log.push(d.toString()));
  proc.stderr.on('data', (d) => log.push(d.toString()));
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const p = {
    port, adminPort, proc, dir, cfg, auditPath, log, exited,
    url: `http://127.0.0.1:${port}/mcp`,
    logText: () => log.join(''),
    audit: () => (existsSync(auditPath) ? readFileSync(auditPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
  if (expectFailure) return p;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`proxy exited ${proc.exitCode}: ${p.logText().slice(-1500)}`);
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/ready`);
      if (r.status === 200) break;
    } catch {}
    if (i > 300) { proc.kill('SIGKILL'); throw new Error(`proxy not ready: ${p.logText().slice(-1500)}`); }
    await sleep(50);
  }
  return p;
}

/** server-everything over Streamable HTTP on a fresh port. */
export async function startEverythingHttp() {
  const port = await freePort();
  const proc = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
  running.add(proc);
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; ; i++) {
    try { await fetch(url, { signal: AbortSignal.timeout(1000) }); break; } catch {}
    if (i > 150) throw new Error('server-everything did not start');
    await sleep(100);
  }
  return { port, url, stop: () => proc.kill('SIGKILL') };
}

export const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

export function parseSse(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    if (data) out.push(JSON.parse(data));
  }
  return out;
}

/** POST raw bytes or a message; returns {status, headers, messages, text}. */
export async function post(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let messages = [];
  if ((r.headers.get('content-type') || '').includes('text/event-stream')) messages = parseSse(text);
  else if (text.trim()) { try { const j = JSON.parse(text); messages = Array.isArray(j) ? j : [j]; } catch {} }
  return { status: r.status, headers: r.headers, messages, text };
}

/**
 * A recording MCP upstream (node:http): answers initialize, tools/list and any request with a
 * plain JSON result; 202 for notifications; keeps every raw body. `behave(req, raw, res)` may
 * take over a request (return true) to simulate slow, failing or garbage upstreams.
 */
export async function startRecordingUpstream({ tools = ['echo', 'get_time', 'delete_user', 'admin_reset', 'secret_dump'], version, behave } = {}) {
  const bodies = [];
  const answer = (msg) => {
    if (msg === null || typeof msg !== 'object' || !('id' in msg) || !('method' in msg)) return null;
    let result = { content: [{ type: 'text', text: `ran ${msg.params?.name ?? msg.method}` }] };
    if (msg.method === 'initialize') {
      result = { protocolVersion: version ?? msg.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'recording-upstream', version: '1.0.0' } };
    } else if (msg.method === 'tools/list') {
      result = { tools: tools.map((name) => ({ name, description: name, inputSchema: { type: 'object' } })) };
    }
    return { jsonrpc: '2.0', id: msg.id, result };
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      bodies.push({ method: req.method, url: req.url, headers: req.headers, raw: raw.toString('utf8') });
      if (behave && behave(req, raw, res)) return;
      if (req.method !== 'POST') { res.writeHead(405).end(); return; }
      let parsed;
      try { parsed = JSON.parse(raw.toString('utf8')); } catch { res.writeHead(400).end(); return; }
      const out = Array.isArray(parsed) ? parsed.map(answer).filter(Boolean) : answer(parsed);
      if (out === null || (Array.isArray(out) && out.length === 0)) { res.writeHead(202).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'sess-rec-1' });
      res.end(JSON.stringify(out));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port, url: `http://127.0.0.1:${port}/mcp`, bodies,
    received: (text) => bodies.some((b) => b.raw.includes(text)),
    close: () => { server.closeAllConnections(); server.close(); },
  };
}

/** `expose:` lines for sourceYaml: a blocklist of globs */
export const blocklist = (...globs) => `    expose:\n      mode: blocklist\n      tools: [${globs.map((g) => JSON.stringify(g)).join(', ')}]`;
/** one `rules:` entry for sourceYaml */
export const rule = (glob, action) => `    - match: "${glob}"\n      action: ${action}`;

export const sourceYaml = (sourceLines, { rules = '', expose = '', defaults = 'forward' } = {}) => `schema: 1
sources:
  - id: upstream
    kind: mcp
${sourceLines}
${expose}
governance:
  defaults:
    action: ${defaults}
  rules:
${rules || '    []'}
`;

/** initialize + notifications/initialized over raw fetch; returns the headers for the session. */
export async function rawSession(url, version = '2025-06-18', extraHeaders = {}) {
  const init = await post(url, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'tg-raw', version: '1.0.0' } },
  }, extraHeaders);
  if (!init.messages[0]?.result) throw new Error(`initialize failed: ${init.status} ${init.text.slice(0, 300)}`);
  const sid = init.headers.get('mcp-session-id');
  const headers = { ...extraHeaders, ...(version !== '2025-03-26' ? { 'mcp-protocol-version': version } : {}), ...(sid ? { 'mcp-session-id': sid } : {}) };
  await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers);
  return { headers, sid, result: init.messages[0].result };
}

/** The audit trail is written in batches: wait (bounded) until `pred(lines)` holds, then return the lines. */
export async function auditUntil(p, pred, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const lines = p.audit();
    if (pred(lines) || Date.now() > deadline) return lines;
    await sleep(25);
  }
}

/** A fresh temporary folder for a test's files (policies, configs). */
export const tempDir = (tag = 'files') => mkdtempSync(join(tmpdir(), `tg-test-${tag}-`));
