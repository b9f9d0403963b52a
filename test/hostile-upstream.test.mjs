// A hostile upstream, scripted per request by fast-check (issue 14, item 7a). A node:http
// server answers each MCP request the way the generated script says: JSON or SSE (or either
// under the wrong content-type, or an HTML page, or nothing), answers with the right id, a wrong
// one, an id never asked or the same id in another type, duplicate answers, tools/list results
// that name tools the config hides (also as \u escapes), nesting past the depth limit, events
// over THOUGHTGATE_MAX_SSE_EVENT_BYTES, invalid UTF-8, CRLF or LF, split at arbitrary bytes with
// pauses, truncated, or the connection reset mid-body. The client is raw HTTP against the built
// proxy (bin/thoughtgate.js serve). After every run:
//  - the proxy is alive (/health 200) and answered within a bounded client timeout (a hang fails);
//  - no byte the client got (nor anything it would decode from them) names a hidden tool;
//  - the request got exactly one answer: one JSON-RPC response carrying its id (a result, the
//    upstream's error or the proxy's clean error), as a well-formed JSON body or a well-formed
//    SSE stream ending on a complete event, and no response for any other id (a client would
//    dispatch that to another of its requests). The one exception the design states
//    (relay.ts: "mid-stream the status is gone, the only honest signal left is to cut the
//    stream") is a JSON body the proxy had begun to stream when the upstream broke: a cut
//    connection, never a wrong answer.
// Fixed seed; FUZZ_RUNS=N for longer runs, FUZZ_SEED to pick another seed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fc from 'fast-check';
import { startProxy, post } from './helpers.mjs';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const SEED = Number(process.env.FUZZ_SEED ?? 20261214);
const LIMIT = 4096; // THOUGHTGATE_MAX_SSE_EVENT_BYTES for this proxy
const HIDDEN = 'secret_';
const LIST_METHODS = new Set(['tools/list', 'resources/list', 'prompts/list']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- what the upstream says: a script, rendered against the request it answers ----
let script = null; // the current run's script; the upstream answers every non-initialize request with it
let upstreamError = null;
const sessions = { n: 0 };

function resultBody(kind, method) {
  switch (kind) {
    case 'ok':
      return method === 'tools/list' ? { tools: [{ name: 'echo', inputSchema: { type: 'object' } }] } : { content: [{ type: 'text', text: 'fine' }] };
    case 'hidden':
      return { tools: [{ name: 'secret_dump', inputSchema: { type: 'object' } }, { name: 'echo', inputSchema: { type: 'object' } }], nextCursor: 'c1' };
    case 'deep': {
      let v = 'bottom';
      for (let i = 0; i < 200; i++) v = [v];
      return { tools: [{ name: 'secret_deep', inputSchema: { type: 'object', default: v } }] };
    }
    case 'big':
      return { content: [{ type: 'text', text: 'b'.repeat(LIMIT * 2) }] };
    default:
      throw new Error(kind);
  }
}

/** one JSON-RPC message as bytes */
function renderMessage(m, reqId, method) {
  if (m.k === 'notification') return Buffer.from(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } }));
  if (m.k === 'server-request') return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 'srv-1', method: 'ping' }));
  if (m.k === 'garbage') return Buffer.from('this is not json');
  const id = { same: reqId, wrong: typeof reqId === 'number' ? reqId + 1000 : `${reqId}-x`, never: 987654, retyped: typeof reqId === 'number' ? String(reqId) : 424242, none: undefined }[m.id];
  const msg = { jsonrpc: '2.0', ...(id === undefined ? {} : { id }) };
  // A list in the answer to the request itself is hidden-name material only for a list request:
  // a tools/call result is no tool list to any client (and is relayed unparsed by design).
  const body = id === reqId && !LIST_METHODS.has(method) && (m.body === 'hidden' || m.body === 'deep') ? 'ok' : m.body;
  if (body === 'error') msg.error = { code: -32603, message: 'upstream says no' };
  else msg.result = resultBody(body === 'badutf8' ? 'ok' : body, method);
  let text = JSON.stringify(msg);
  if (m.escaped) text = text.replaceAll('"secret_', '"\\u0073ecret_');
  if (body !== 'badutf8') return Buffer.from(text);
  const at = text.indexOf('fine') >= 0 ? text.indexOf('fine') : text.indexOf('echo');
  return Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(text.slice(at))]);
}

function renderBody(s, reqId, method) {
  if (s.shape === 'html') return Buffer.from('<html><body>502 Bad Gateway</body></html>');
  if (s.shape === 'empty') return Buffer.alloc(0);
  if (s.shape === 'json') {
    const parts = s.messages.filter((m) => m.k !== 'comment').map((m) => renderMessage(m, reqId, method));
    let body = parts.length === 1 ? parts[0] : Buffer.concat([Buffer.from('['), ...parts.flatMap((p, i) => (i ? [Buffer.from(','), p] : [p])), Buffer.from(']')]);
    if (s.truncateAt !== undefined) body = body.subarray(0, s.truncateAt % Math.max(1, body.length));
    return body;
  }
  // sse
  const nl = s.crlf ? '\r\n' : '\n';
  const events = s.messages.map((m, i) => {
    if (m.k === 'comment') return Buffer.from(`: keep-alive${nl}${nl}`);
    if (m.k === 'garbage' && i % 2) return Buffer.from(`retry: 10${nl}${nl}`);
    return Buffer.concat([Buffer.from(`${s.ids ? `id: ev-${i}${nl}` : ''}event: message${nl}data: `), renderMessage(m, reqId, method), Buffer.from(`${nl}${nl}`)]);
  });
  let body = Buffer.concat(events);
  if (s.truncateAt !== undefined) body = body.subarray(0, s.truncateAt % Math.max(1, body.length));
  return body;
}

async function answerScripted(req, res, reqId, method) {
  const s = script;
  const body = renderBody(s, reqId, method);
  const type = s.type === 'right' ? (s.shape === 'sse' ? 'text/event-stream' : s.shape === 'html' ? 'text/html' : 'application/json') : s.type;
  const headers = type === 'none' ? {} : { 'content-type': type };
  if (s.length === 'exact') headers['content-length'] = body.length;
  else if (s.length === 'long') headers['content-length'] = body.length + 17; // a body that stops short
  res.writeHead(s.status, headers);
  if (s.status === 204 || s.status === 304) { res.end(); return; }
  const cuts = [...new Set(s.cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (let i = 0; i < cuts.length; i++) {
    res.write(body.subarray(prev, cuts[i]));
    prev = cuts[i];
    if (s.pauses[i]) await sleep(s.pauses[i]);
    if (res.destroyed) return;
  }
  if (s.ending === 'reset') {
    res.write(body.subarray(prev, prev + ((body.length - prev) >> 1)));
    await sleep(1);
    res.socket?.resetAndDestroy();
    return;
  }
  if (s.ending === 'fin' || s.length === 'long') {
    // the body's framing is never completed (no last chunk / fewer bytes than announced)
    res.write(body.subarray(prev));
    await sleep(1);
    res.socket?.end();
    return;
  }
  res.end(body.subarray(prev));
}

let upstream, proxy;
async function startHostileUpstream() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST') { res.writeHead(405).end(); return; }
      let msg;
      try { msg = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { res.writeHead(400).end(); return; }
      if (msg.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `hostile-${++sessions.n}` });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: msg.params.protocolVersion, capabilities: { tools: {}, resources: {}, prompts: {} }, serverInfo: { name: 'hostile', version: '1' } } }));
        return;
      }
      if (!('id' in msg)) { res.writeHead(202).end(); return; }
      if (!script) { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'calm' }] } })); return; }
      answerScripted(req, res, msg.id, msg.method).catch((e) => { upstreamError = e; res.destroy(); });
    });
  });
  server.on('clientError', () => {});
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => { server.closeAllConnections(); server.close(); } };
}

// ---- the client: raw HTTP, every byte kept, bounded ----
const CLIENT_TIMEOUT_MS = 20000;
function rawRequest(body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(proxy.url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks), cut: false }); });
      res.on('error', () => { clearTimeout(timer); resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks), cut: true }); });
      res.on('aborted', () => {});
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`the proxy did not finish its answer within ${CLIENT_TIMEOUT_MS} ms (a hang)`)); }, CLIENT_TIMEOUT_MS);
    req.on('error', (e) => { clearTimeout(timer); reject(new Error(`request failed before any answer: ${e.message}`)); });
    req.end(JSON.stringify(body));
  });
}

/** SSE per the spec's parsing rules: events (data joined), and whether the stream ended on a complete event */
function parseSseStrict(text) {
  const lines = text.split(/\r\n|\r|\n/);
  const complete = text.length === 0 || /(\r\n|\r|\n)(\r\n|\r|\n)$/.test(text) || /^(:[^\r\n]*(\r\n|\r|\n))+$/.test(text);
  const events = [];
  let data = null;
  for (const line of lines) {
    if (line === '') { if (data !== null) events.push(data.join('\n')); data = null; continue; }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') (data ??= []).push(value);
  }
  return { events, complete };
}

/** every invariant for one answer; returns the list of what broke */
function check(ans, reqId) {
  const problems = [];
  const text = ans.raw.toString('utf8');
  const type = String(ans.headers['content-type'] ?? '');
  if (Buffer.compare(Buffer.from(text, 'utf8'), ans.raw) !== 0) problems.push('the client got bytes that are not valid UTF-8');
  let messages = [];
  if (ans.cut) {
    // allowed only where the design says so: a JSON body already being streamed
    if (!type.startsWith('application/json')) problems.push(`the connection was cut (content-type ${type || 'none'}, ${ans.raw.length} bytes)`);
  } else if (type.startsWith('text/event-stream')) {
    const { events, complete } = parseSseStrict(text);
    if (!complete) problems.push(`the SSE stream ended mid-event: ${JSON.stringify(text.slice(-80))}`);
    for (const e of events) {
      if (e === '') continue; // a priming event (an id, no message: SEP-1699)
      try { messages.push(JSON.parse(e)); } catch { problems.push(`an SSE event is not JSON: ${e.slice(0, 80)}`); }
    }
  } else if (type.startsWith('application/json')) {
    try {
      const j = JSON.parse(text);
      messages = Array.isArray(j) ? j : [j];
      if (Array.isArray(j)) problems.push('a single request was answered with a JSON array');
    } catch { problems.push(`the JSON body is not JSON: ${text.slice(0, 120)}`); }
  } else {
    problems.push(`the answer is neither JSON nor SSE: HTTP ${ans.status} ${type || 'no content-type'} ${text.slice(0, 80)}`);
  }
  if (!ans.cut) {
    const responses = messages.filter((m) => m && typeof m === 'object' && !('method' in m));
    // an error with id null or none answers the request whose id the server could not read (JSON-RPC 2.0 §5)
    const forMe = (m) => m.id === reqId || ((m.id === null || !('id' in m)) && 'error' in m);
    const mine = responses.filter((m) => forMe(m) && (('result' in m) !== ('error' in m)));
    const others = responses.filter((m) => !forMe(m));
    // A stream that gave event ids may end before its answer (SEP-1699): the client resumes it
    // with GET + Last-Event-ID and is answered there, so no answer here is not a lost request.
    const resumable = type.startsWith('text/event-stream') && /(^|[\r\n])id: ?[^\r\n]+/.test(text);
    if (mine.length === 0 && resumable && !problems.length) return problems;
    if (mine.length !== 1) problems.push(`${mine.length} answers for id ${JSON.stringify(reqId)} (want exactly 1): ${text.slice(0, 200)}`);
    if (others.length) problems.push(`responses for ids never asked on this request: ${others.map((m) => JSON.stringify(m.id)).join(', ')}`);
  }
  const decoded = JSON.stringify(messages);
  if (text.includes(HIDDEN) || decoded.includes(HIDDEN) || text.includes('\\u0073ecret_')) problems.push(`a hidden tool name reached the client: ${text.slice(Math.max(0, text.search(/secret_|\\u0073ecret_/) - 60), text.search(/secret_|\\u0073ecret_/) + 40)}`);
  return problems;
}

// ---- generators ----
const messageArb = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('answer'), id: fc.constantFrom('same', 'same', 'same', 'wrong', 'never', 'retyped', 'none'), body: fc.constantFrom('ok', 'ok', 'hidden', 'hidden', 'error', 'deep', 'big', 'badutf8'), escaped: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant({ k: 'notification' }) },
  { weight: 1, arbitrary: fc.constant({ k: 'server-request' }) },
  { weight: 1, arbitrary: fc.constant({ k: 'comment' }) },
  { weight: 1, arbitrary: fc.constant({ k: 'garbage' }) },
);
const scriptArb = fc.record({
  shape: fc.constantFrom('json', 'json', 'sse', 'sse', 'sse', 'html', 'empty'),
  messages: fc.array(messageArb, { minLength: 1, maxLength: 4 }),
  type: fc.constantFrom('right', 'right', 'right', 'right', 'text/plain', 'application/json', 'text/event-stream', 'application/json; charset=utf-8', 'none'),
  status: fc.constantFrom(200, 200, 200, 200, 200, 202, 204, 400, 404, 500),
  length: fc.constantFrom('chunked', 'chunked', 'exact', 'long'),
  cuts: fc.array(fc.nat(LIMIT * 3), { maxLength: 6 }),
  pauses: fc.array(fc.nat(15), { maxLength: 6 }),
  ending: fc.constantFrom('end', 'end', 'end', 'reset', 'fin'),
  truncateAt: fc.option(fc.nat(LIMIT * 3), { nil: undefined, freq: 6 }),
  crlf: fc.boolean(),
  ids: fc.boolean(),
});
const requestArb = fc.record({
  method: fc.constantFrom('tools/list', 'tools/list', 'tools/call', 'resources/list', 'prompts/list', 'resources/read'),
  id: fc.oneof(fc.nat(1_000_000), fc.string({ minLength: 1, maxLength: 8 }).map((s) => `r-${s}`)),
  era: fc.constantFrom('2025-11-25', '2025-03-26'),
});
const paramsFor = (method) => (method === 'tools/call' ? { name: 'echo', arguments: { marker: 'm' } } : method === 'resources/read' ? { uri: 'demo://resource/1' } : {});

const sessionHeaders = {};
before(async () => {
  upstream = await startHostileUpstream();
  proxy = await startProxy(`schema: 1
sources:
  - id: upstream
    kind: mcp
    url: ${upstream.url}
    expose:
      mode: blocklist
      tools: ["secret_*"]
governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      action: deny
`, { env: { THOUGHTGATE_MAX_SSE_EVENT_BYTES: String(LIMIT), THOUGHTGATE_REQUEST_TIMEOUT_SECS: '5', THOUGHTGATE_STREAM_READ_TIMEOUT_SECS: '5' } });
  for (const era of ['2025-11-25', '2025-03-26']) {
    const init = await post(proxy.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: era, capabilities: {}, clientInfo: { name: 'hostile-fuzz', version: '1' } } });
    const sid = init.headers.get('mcp-session-id');
    assert.ok(sid, `initialize on ${era}: ${init.text}`);
    sessionHeaders[era] = { 'mcp-session-id': sid, ...(era === '2025-03-26' ? {} : { 'mcp-protocol-version': era }) };
    assert.equal((await post(proxy.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionHeaders[era])).status, 202);
  }
});
after(async () => {
  await proxy?.stop();
  upstream?.close();
});

async function health() {
  assert.equal(proxy.proc.exitCode, null, `the proxy exited: ${proxy.logText().slice(-800)}`);
  const r = await fetch(`http://127.0.0.1:${proxy.adminPort}/health`, { signal: AbortSignal.timeout(10000) });
  assert.equal(r.status, 200, 'the proxy is alive');
}

async function runOne(s, r) {
  script = s;
  upstreamError = null;
  try {
    const ans = await rawRequest({ jsonrpc: '2.0', id: r.id, method: r.method, params: paramsFor(r.method) }, sessionHeaders[r.era]);
    const problems = check(ans, r.id);
    if (problems.length && process.env.FUZZ_DEBUG) console.error('PROBLEMS', JSON.stringify(problems), JSON.stringify(s), JSON.stringify(r), ans.status, ans.headers['content-type'], JSON.stringify(ans.raw.toString('utf8').slice(0, 400)));
    if (!process.env.FUZZ_COLLECT) assert.deepEqual(problems, [], `HTTP ${ans.status} ${ans.headers['content-type']}: ${ans.raw.toString('utf8').slice(0, 300)}`);
  } finally {
    script = null;
  }
  await health();
  assert.equal(upstreamError, null, `the test's upstream itself failed: ${upstreamError}`);
}

test('the checker flags what it must (a check that cannot fail proves nothing)', () => {
  const ans = (type, text, cut = false) => ({ status: 200, headers: { 'content-type': type }, raw: Buffer.from(text), cut });
  assert.deepEqual(check(ans('application/json', '{"jsonrpc":"2.0","id":5,"result":{}}'), 5), []);
  assert.deepEqual(check(ans('text/event-stream', 'event: message\ndata: {"jsonrpc":"2.0","id":5,"result":{}}\n\n'), 5), []);
  assert.notDeepEqual(check(ans('application/json', '{"jsonrpc":"2.0","id":6,"result":{}}'), 5), []);
  assert.notDeepEqual(check(ans('application/json', '{"jsonrpc":"2.0","id":"5","result":{}}'), 5), []);
  assert.notDeepEqual(check(ans('application/json', '{"jsonrpc":"2.0","id":null,"result":{}}'), 5), []);
  assert.deepEqual(check(ans('application/json', '{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}'), 5), []);
  assert.notDeepEqual(check(ans('text/event-stream', 'data: {"jsonrpc":"2.0","id":5,"result":{}}\n\ndata: {"jsonrpc":"2.0","id":5,"result":{}}\n\n'), 5), []);
  assert.notDeepEqual(check(ans('text/event-stream', 'data: {"jsonrpc":"2.0","id":5,"result":{}}'), 5), []);
  assert.notDeepEqual(check(ans('text/event-stream', 'data: {"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"\\u0073ecret_x"}]}}\n\n'), 5), []);
  assert.notDeepEqual(check(ans('text/html', '<html>'), 5), []);
  assert.deepEqual(check(ans('text/event-stream', 'id: e1\nretry: 500\ndata: \n\n'), 5), [], 'resumable: answered on the GET stream');
  assert.notDeepEqual(check(ans('text/event-stream', 'retry: 500\ndata: \n\n'), 5), [], 'not resumable: no answer is a lost request');
  assert.notDeepEqual(check(ans('text/event-stream', 'data: {"jsonrpc":"2.0","id":5', true), 5), []);
  assert.notDeepEqual(check({ status: 200, headers: { 'content-type': 'application/json' }, raw: Buffer.from([0x7b, 0xff, 0x7d]), cut: false }, 5), []);
});

test('a hostile upstream, scripted by fast-check: the proxy lives, hides what it hides, and answers each request exactly once', async () => {
  await fc.assert(fc.asyncProperty(scriptArb, requestArb, runOne), { seed: SEED, numRuns: RUNS, endOnFailure: process.env.FUZZ_SHRINK !== "1", errorWithCause: true });
});

test('the proxy still serves an honest upstream afterwards, and filters its tools/list', async () => {
  script = { shape: 'json', messages: [{ k: 'answer', id: 'same', body: 'hidden', escaped: false }], type: 'right', status: 200, length: 'exact', cuts: [], pauses: [], ending: 'end', crlf: false };
  const ans = await rawRequest({ jsonrpc: '2.0', id: 77, method: 'tools/list', params: {} }, sessionHeaders['2025-11-25']);
  script = null;
  assert.deepEqual(check(ans, 77), []);
  assert.deepEqual(JSON.parse(ans.raw.toString('utf8')).result.tools.map((t) => t.name), ['echo']);
  await health();
});
