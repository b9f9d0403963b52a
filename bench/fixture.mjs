// A fast MCP upstream on uWS, so that the proxy (not the upstream) is what a benchmark measures.
// It speaks just enough Streamable HTTP: POST /mcp with initialize, tools/list, tools/call and
// notifications. Tool names pick a mode:
//   (any other name)  small JSON result {content:[{type:'text',text:'ok'}]}
//   big_1mb/big_16mb   a result of about that size, streamed with uWS backpressure
//   sse_tick           text/event-stream: `count` notifications `intervalMs` apart, then the
//                      result; each event carries the wall clock in µs (t_us) taken just before
//                      the write, so a client on this machine can compute relay latency
// A JSON array (a 2025-03-26 batch) is answered with an array: one answer per request, in order;
// the big and SSE modes answer an element with an error there (they need the whole response).
// Usage: node bench/fixture.mjs [--port N]   (prints the URL on stdout; port 0 = pick a free one)
// The proxy's own loader: a native build that loads on this Node, never a package's JS fallback.
import { loadUws } from '../dist/transport/uws.js';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import { wallClockMicros } from './lib/clock.mjs';

const uWS = loadUws();

const TOOLS = [
  { name: 'echo', description: 'Answers ok (the small, fast path)', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
  { name: 'noop', description: 'Answers ok', inputSchema: { type: 'object' } },
  { name: 'big_1mb', description: 'Answers with a ~1 MiB text result', inputSchema: { type: 'object' } },
  { name: 'big_16mb', description: 'Answers with a ~16 MiB text result', inputSchema: { type: 'object' } },
  {
    name: 'sse_tick',
    description: 'Streams `count` timestamped notifications `intervalMs` apart as SSE, then the result',
    inputSchema: { type: 'object', properties: { count: { type: 'integer' }, intervalMs: { type: 'number' } } },
  },
];
const BIG_SIZES = { big_1mb: 1 << 20, big_16mb: 16 << 20 };
const CHUNK = 256 * 1024; // slice size when streaming big bodies
const TOOLS_LIST_RESULT = JSON.stringify({ tools: TOOLS });
const SMALL_RESULT = '{"content":[{"type":"text","text":"ok"}]}';

// Wall clock in µs, shared with the bench's SSE client (lib/clock.mjs).
export { wallClockMicros };

// Filler for big results, built once per size (and shared by every request).
const fillers = new Map();
function filler(size) {
  if (!fillers.has(size)) fillers.set(size, Buffer.alloc(size, 'x'));
  return fillers.get(size);
}

function rpcResult(id, resultJson) {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${resultJson}}`;
}

function rpcError(id, code, message) {
  return JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code, message } });
}

/** Sends a complete JSON body. Always corked: we are called after onData, outside the handler. */
function sendJson(res, status, body, extraHeaders) {
  if (res.aborted) return;
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json');
    if (extraHeaders) for (const [k, v] of extraHeaders) res.writeHeader(k, v);
    res.end(body);
  });
}

function sendEmpty(res, status) {
  if (res.aborted) return;
  res.cork(() => res.writeStatus(status).end());
}

/**
 * Streams `parts` (Buffers, sent back to back) with a content-length, honouring backpressure:
 * tryEnd takes what the socket accepts; the rest is resent from onWritable.
 */
function streamParts(res, parts) {
  const total = parts.reduce((n, b) => n + b.length, 0);
  let part = 0;
  let pos = 0; // position inside parts[part]
  let pending = null; // { chunk, start } not fully accepted by uWS yet

  // Returns false when the socket is full (wait for onWritable), true when done or still writing.
  const pump = () => {
    while (part < parts.length) {
      const buf = parts[part];
      const chunk = buf.subarray(pos, Math.min(buf.length, pos + CHUNK));
      pos += chunk.length;
      if (pos >= buf.length) { part++; pos = 0; }
      const start = res.getWriteOffset();
      const [ok, done] = res.tryEnd(chunk, total);
      if (done) return true;
      if (!ok) { pending = { chunk, start }; return false; }
    }
    return true;
  };

  res.onWritable((offset) => {
    const { chunk, start } = pending;
    const [ok, done] = res.tryEnd(chunk.subarray(offset - start), total);
    if (done) return true;
    if (!ok) return false; // still full; uWS calls us again
    pending = null;
    pump();
    return true;
  });
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', 'application/json');
    pump();
  });
}

function bigResult(res, id, size) {
  const head = Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"text","text":"`);
  const tail = Buffer.from('"}]}}');
  streamParts(res, [head, filler(Math.max(0, size - head.length - tail.length)), tail]);
}

/** SSE: `count` notifications carrying t_us, `intervalMs` apart, then the JSON-RPC result. */
function sseTick(res, id, args) {
  const count = Math.max(0, Math.min(100000, Number(args?.count ?? 10)));
  const intervalMs = Math.max(0, Number(args?.intervalMs ?? 10));
  let seq = 0;
  const event = (json) => `event: message\ndata: ${json}\n\n`;

  const next = () => {
    if (res.aborted) return;
    let ok = true;
    res.cork(() => {
      if (seq < count) {
        const data = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: { seq, t_us: wallClockMicros() } } });
        ok = res.write(event(data));
      } else {
        const text = JSON.stringify({ ticks: count, t_us: wallClockMicros() });
        res.end(event(rpcResult(id, JSON.stringify({ content: [{ type: 'text', text }] }))));
      }
    });
    if (seq++ >= count) return;
    // Small writes rarely back up; when they do, wait for the socket before the next tick.
    if (!ok) res.onWritable(() => { schedule(); return true; });
    else schedule();
  };
  const schedule = () => (intervalMs > 0 ? setTimeout(next, intervalMs) : setImmediate(next));

  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', 'text/event-stream').writeHeader('cache-control', 'no-cache');
  });
  next();
}

/** The answer to one batch element: a JSON text, or undefined for notifications and responses. */
function batchAnswer(msg) {
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return rpcError(null, -32600, 'Invalid Request');
  const { id, method, params } = msg;
  if (id === undefined) return undefined;
  switch (method) {
    case 'tools/list': return rpcResult(id, TOOLS_LIST_RESULT);
    case 'ping': return rpcResult(id, '{}');
    case 'tools/call':
      if (BIG_SIZES[params?.name] || params?.name === 'sse_tick') return rpcError(id, -32602, `${params.name} cannot be part of a batch`);
      return rpcResult(id, SMALL_RESULT);
    case 'initialize': return rpcError(id, -32600, 'initialize must not be part of a batch');
    default: return rpcError(id, -32601, 'Method not found');
  }
}

function handleBatch(res, items) {
  if (items.length === 0) return sendJson(res, '400 Bad Request', rpcError(null, -32600, 'Invalid Request'));
  const answers = [];
  for (const item of items) {
    const a = batchAnswer(item);
    if (a !== undefined) answers.push(a);
  }
  if (!answers.length) return sendEmpty(res, '202 Accepted');
  return sendJson(res, '200 OK', `[${answers.join(',')}]`);
}

function handleMessage(res, msg, protocolHeader) {
  if (Array.isArray(msg)) return handleBatch(res, msg);
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return sendJson(res, '400 Bad Request', rpcError(null, -32600, 'Invalid Request'));
  const { id, method, params } = msg;
  if (id === undefined) return sendEmpty(res, '202 Accepted'); // notification or response
  switch (method) {
    case 'initialize': {
      const result = {
        protocolVersion: params?.protocolVersion ?? protocolHeader ?? '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'thoughtgate-bench-fixture', version: '1.0.0' },
      };
      return sendJson(res, '200 OK', rpcResult(id, JSON.stringify(result)), [['mcp-session-id', randomUUID()]]);
    }
    case 'tools/list':
      return sendJson(res, '200 OK', rpcResult(id, TOOLS_LIST_RESULT));
    case 'ping':
      return sendJson(res, '200 OK', rpcResult(id, '{}'));
    case 'tools/call': {
      const name = params?.name;
      if (BIG_SIZES[name]) return bigResult(res, id, BIG_SIZES[name]);
      if (name === 'sse_tick') return sseTick(res, id, params?.arguments);
      return sendJson(res, '200 OK', rpcResult(id, SMALL_RESULT));
    }
    default:
      return sendJson(res, '200 OK', rpcError(id, -32601, 'Method not found'));
  }
}

function onPost(res, req) {
  // Read headers now: req is only valid during this synchronous call.
  const protocolHeader = req.getHeader('mcp-protocol-version') || undefined;
  res.onAborted(() => { res.aborted = true; });
  let chunks = null;
  res.onData((ab, isLast) => {
    // uWS neuters the ArrayBuffer after this callback, so copy it (even the last one).
    const chunk = Buffer.from(ab.slice(0));
    if (!isLast) { (chunks ??= []).push(chunk); return; }
    const body = chunks ? Buffer.concat([...chunks, chunk]) : chunk;
    let msg;
    try { msg = JSON.parse(body.toString('utf8')); } catch {
      return sendJson(res, '400 Bad Request', rpcError(null, -32700, 'Parse error'));
    }
    handleMessage(res, msg, protocolHeader);
  });
}

/** Starts the fixture. port 0 lets the kernel pick a fresh one (uWS uses SO_REUSEPORT: never share). */
export function startFixture({ port = 0, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const app = uWS.App()
      .post('/*', onPost)
      .get('/*', (res) => res.writeStatus('405 Method Not Allowed').writeHeader('allow', 'POST').end())
      .del('/*', (res) => res.writeStatus('200 OK').end())
      .any('/*', (res) => res.writeStatus('404 Not Found').end());
    app.listen(host, port, (listenSocket) => {
      if (!listenSocket) return reject(new Error(`fixture: cannot listen on ${host}:${port}`));
      const actual = uWS.us_socket_local_port(listenSocket);
      resolve({
        port: actual,
        url: `http://${host}:${actual}/mcp`,
        close: () => uWS.us_listen_socket_close(listenSocket),
      });
    });
  });
}

function isMain() {
  try { return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url)); } catch { return false; }
}

if (isMain()) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : Number(process.env.PORT ?? 0);
  const fx = await startFixture({ port });
  process.stdout.write(`${fx.url}\n`);
  const stop = () => { fx.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
