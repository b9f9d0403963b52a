#!/usr/bin/env node
// A tiny stdio MCP server for the shim's tests, steered by environment variables:
//   MINI_RECORD=path      append every line received (raw) to path: proof of what reached the server
//   MINI_PID_FILE=path    write our pid there at start
//   MINI_GARBAGE=1        at start, write a line that is not JSON, an invalid request with an id
//                         ("srv-bad") and an array, before behaving
//   MINI_ECHO=1           answer every received line with a notification {method:"echo", params:{line}}
//   MINI_STDERR=text      write text to stderr at start
//   MINI_IGNORE_TERM=1    ignore SIGTERM (so only SIGKILL ends us)
//   MINI_EXIT_CODE=n      exit code when stdin closes (default 0)
// MCP: initialize, ping, tools/list (echo, exit, slow), tools/call echo|exit; a request with method
// "exit" exits at once with params.code.
import { appendFileSync, writeFileSync } from 'node:fs';

const env = process.env;
const out = (m) => process.stdout.write(JSON.stringify(m) + '\n');
if (env.MINI_PID_FILE) writeFileSync(env.MINI_PID_FILE, String(process.pid));
if (env.MINI_STDERR) process.stderr.write(env.MINI_STDERR + '\n');
if (env.MINI_IGNORE_TERM) { process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); }
if (env.MINI_GARBAGE) {
  process.stdout.write('this is not json {\n');
  process.stdout.write('{"jsonrpc":"2.0","id":"srv-bad","method":42}\n');
  process.stdout.write('[{"jsonrpc":"2.0","method":"notifications/message","params":{}}]\n');
}

const TOOLS = [
  { name: 'echo', description: 'echoes', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
  { name: 'exit', description: 'exits', inputSchema: { type: 'object', properties: { code: { type: 'number' } } } },
  { name: 'secret', description: 'hidden by governance', inputSchema: { type: 'object' } },
];

function handle(line) {
  if (env.MINI_RECORD) appendFileSync(env.MINI_RECORD, line + '\n');
  if (env.MINI_ECHO) out({ jsonrpc: '2.0', method: 'echo', params: { line } });
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m === null || typeof m !== 'object' || Array.isArray(m) || m.method === undefined || m.id === undefined) return;
  const reply = (result) => out({ jsonrpc: '2.0', id: m.id, result });
  switch (m.method) {
    case 'initialize':
      return reply({ protocolVersion: m.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'mini', version: '1.0.0' } });
    case 'ping':
      return reply({});
    case 'tools/list':
      return reply({ tools: TOOLS });
    case 'tools/call': {
      const args = m.params?.arguments ?? {};
      if (m.params?.name === 'exit') process.exit(Number(args.code ?? 0));
      return reply({ content: [{ type: 'text', text: `echo: ${args.text ?? ''}` }] });
    }
    case 'exit':
      process.exit(Number(m.params?.code ?? 0));
    default:
      if (!env.MINI_ECHO) out({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `Method not found: ${m.method}` } });
  }
}

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\n')) !== -1) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (line.trim()) handle(line);
  }
});
process.stdin.on('end', () => {
  if (env.MINI_IGNORE_TERM) return; // stay until killed
  process.exit(Number(env.MINI_EXIT_CODE ?? 0));
});
