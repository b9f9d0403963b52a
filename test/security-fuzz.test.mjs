// Property tests against a running proxy (the built bin/thoughtgate.js) in front of a recording
// upstream that keeps every byte it is sent: generated requests, notifications and batches, on
// every protocol era, with generated spellings of methods (case, whitespace, separators,
// confusables, invisible characters), of tool/prompt names and of resource URIs (case, dot
// segments, percent-encoding, `\u` escapes in the JSON text), written to the socket split at
// arbitrary byte boundaries. The invariant: nothing the upstream would read as a denied or
// hidden name reaches it, no governed method arrives without an id, no method that is not
// exactly an MCP method arrives, and the proxy keeps answering.
// Fixed seeds; FUZZ_RUNS=N for longer local runs (FUZZ_SEED to pick another seed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { startProxy, post, auditUntil } from './helpers.mjs';

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = Number(process.env.FUZZ_SEED ?? 20261208);
const ERAS = ['2025-03-26', '2025-06-18', '2025-11-25', '2026-07-28'];

// ---- what the upstream must never read ----
// Names compare exactly (governance.names: exact), as an SDK server dispatches them.
const deniedName = (n) => n.startsWith('delete_') || n.startsWith('secret_');
// URIs as a server reads them: the WHATWG form, and the RFC 3986 normalisation a decoding server
// adds (host case, unreserved escapes) — written here independently of the proxy's code.
function serverReadings(u) {
  let href;
  try { href = new URL(u).href; } catch { return [u]; }
  const decoded = href.replace(/%([0-9A-Fa-f]{2})/g, (m, h) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(parseInt(h, 16))) ? String.fromCharCode(parseInt(h, 16)) : m));
  let again = decoded;
  try { again = new URL(decoded).href; } catch {}
  let slashes = decoded;
  try { slashes = new URL(decoded.replace(/%2F|%5C/gi, '/')).href; } catch {}
  const readings = [href, decoded, again, again.toLowerCase(), slashes];
  // a server that reads only the path (new URL(u).pathname) ignores the query and fragment
  return [...readings, ...readings.map((r) => r.replace(/[?#].*$/, ''))];
}
const deniedUri = (u) => serverReadings(u).some((r) => r === 'demo://resource/dynamic/text/1' || r.startsWith('file:///etc/') || r.startsWith('demo://hidden/'));
const GOVERNED = ['tools/call', 'prompts/get', 'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'completion/complete', 'subscriptions/listen'];
const MCP_METHODS = new Set([...GOVERNED, 'initialize', 'ping', 'tools/list', 'resources/list', 'prompts/list', 'notifications/initialized', 'notifications/cancelled', 'server/discover']);

/** Every rule the invariant states, for one message the upstream received; a list of what broke. */
function violations(m) {
  const out = [];
  if (m === null || typeof m !== 'object' || typeof m.method !== 'string') return out; // responses pass through
  if (!MCP_METHODS.has(m.method)) out.push(`a method that is not exactly MCP's reached the upstream: ${JSON.stringify(m.method)}`);
  if (!GOVERNED.includes(m.method)) return out;
  if (!('id' in m)) out.push(`governed ${m.method} arrived as a notification`);
  const p = m.params ?? {};
  const names = [p.name, p.ref?.type === 'ref/prompt' ? p.ref.name : undefined].filter((x) => typeof x === 'string');
  const uris = [p.uri, p.ref?.type === 'ref/resource' ? p.ref.uri : undefined, ...(Array.isArray(p.notifications?.resourceSubscriptions) ? p.notifications.resourceSubscriptions : [])].filter((x) => typeof x === 'string');
  for (const n of names) if (deniedName(n)) out.push(`denied/hidden name ${JSON.stringify(n)} reached the upstream (${m.method})`);
  for (const u of uris) if (deniedUri(u)) out.push(`denied/hidden URI ${JSON.stringify(u)} reached the upstream (${m.method})`);
  return out;
}

// ---- the recording upstream: a session id per initialize, so each era keeps its own ----
let upstream, proxy;
const received = [];
let sessions = 0;
async function startUpstream() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push(raw);
      let parsed;
      try { parsed = JSON.parse(raw); } catch { res.writeHead(400).end(); return; }
      const answer = (msg) => {
        if (msg === null || typeof msg !== 'object' || !('id' in msg) || typeof msg.method !== 'string') return null;
        if (msg.method === 'initialize') {
          return { jsonrpc: '2.0', id: msg.id, result: { protocolVersion: msg.params?.protocolVersion, capabilities: { tools: {}, prompts: {}, resources: {} }, serverInfo: { name: 'rec', version: '1' } } };
        }
        return { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: `ran ${msg.method}` }] } };
      };
      const out = Array.isArray(parsed) ? parsed.map(answer).filter(Boolean) : answer(parsed);
      if (out === null || (Array.isArray(out) && out.length === 0)) { res.writeHead(202).end(); return; }
      const headers = { 'content-type': 'application/json' };
      if (!Array.isArray(parsed) && parsed.method === 'initialize') headers['mcp-session-id'] = `fuzz-session-${++sessions}`;
      res.writeHead(200, headers).end(JSON.stringify(out));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => { server.closeAllConnections(); server.close(); } };
}

const sessionHeaders = {};
before(async () => {
  upstream = await startUpstream();
  proxy = await startProxy(`schema: 1
sources:
  - id: upstream
    kind: mcp
    url: ${upstream.url}
    expose:
      mode: blocklist
      tools: ["secret_*", "file:///etc/*", "demo://hidden/*"]
governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      action: deny
    - match: "demo://resource/dynamic/text/1"
      action: deny
`);
  for (const era of ERAS.slice(0, 3)) {
    const init = await post(proxy.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: era, capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } });
    const sid = init.headers.get('mcp-session-id');
    assert.ok(sid, `initialize on ${era} gave a session`);
    sessionHeaders[era] = { 'mcp-session-id': sid, ...(era === '2025-03-26' ? {} : { 'mcp-protocol-version': era }) };
  }
});
after(async () => {
  await proxy?.stop();
  upstream?.close();
});

// ---- generators ----
const CONFUSABLE = { a: ['\u0430', '\u03b1'], c: ['\u0441', '\u217d'], e: ['\u0435'], i: ['\u0456', '\u0131'], l: ['\u04cf', '\u217c', '|'], o: ['\u043e', '\u03bf', '\u0585'], p: ['\u0440', '\u03c1'], r: ['\u0433'], s: ['\u0455'], t: ['\u0442'], u: ['\u03c5', '\u057d'], m: ['\u217f'], g: ['\u0261'], b: ['\u042c'], n: ['\u0578'] };
const INVISIBLE = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u034f'];
const SEPARATORS = ['.', '_', '-', '\\', ' ', '//', '\u2215', '\uff0f', ':'];

/** One mutation of a string's spelling: the kinds of respelling a lenient reader forgives. */
const respell = (s) => fc.oneof(
  fc.constant(s),
  fc.nat(s.length - 1).map((i) => s.slice(0, i) + s[i].toUpperCase() + s.slice(i + 1)),
  fc.constant(s.toUpperCase()),
  fc.tuple(fc.constantFrom(' ', '\t', '\n', '\u00a0', '\u3000'), fc.boolean()).map(([w, front]) => (front ? w + s : s + w)),
  fc.tuple(fc.nat(s.length), fc.constantFrom(...INVISIBLE)).map(([i, z]) => s.slice(0, i) + z + s.slice(i)),
  fc.nat(s.length - 1).chain((i) => (CONFUSABLE[s[i]] ? fc.constantFrom(...CONFUSABLE[s[i]]).map((c) => s.slice(0, i) + c + s.slice(i + 1)) : fc.constant(s))),
  fc.constant([...s].map((ch) => (ch >= '!' && ch <= '~' ? String.fromCharCode(ch.charCodeAt(0) + 0xfee0) : ch)).join('')),
);
/** A governed method and a spelling of it (itself, or a respelling a lenient reader would forgive). */
const methodArb = fc.constantFrom(...GOVERNED).chain((m) => fc.tuple(fc.constant(m), fc.oneof(
  { weight: 2, arbitrary: fc.constant(m) },
  { weight: 3, arbitrary: respell(m) },
  { weight: 2, arbitrary: fc.constantFrom(...SEPARATORS).map((sep) => m.replace('/', sep)) },
)));
const nameArb = fc.oneof(fc.constantFrom('delete_user', 'secret_dump', 'secret_prompt', 'echo', 'get_time').chain(respell), fc.constantFrom('delete_user', 'secret_prompt'));
const uriArb = fc.constantFrom('demo://resource/dynamic/text/1', 'file:///etc/passwd', 'demo://hidden/x', 'demo://resource/dynamic/text/2').chain((u) => fc.constantFrom(
  u,
  u.replace(/^[a-z]+/, (x) => x.toUpperCase()),
  u.replace(/:\/\/([^/]*)/, (x, h) => `://${h.toUpperCase()}`),
  u.replace(/\/([^/]+)$/, '/x/../$1'),
  u.replace(/\/([^/]+)$/, '/./$1'),
  u.replace(/\/([^/]+)$/, '/x/%2e%2E/$1'),
  u.replace(/t/, '%74'),
  u.replace(/e/, '%65'),
  u.replace('file:///', 'file://localhost/'),
  u.replace('file:///', 'file:/'),
  u.replace(/\/([^/]+)$/, '\\$1'),
  ` ${u}\t`,
  u.replace(/\/([^/]+)$/, '%2F$1'),
  u.replace(/\/([^/]+)$/, '/x%2F..%2f$1'),
  `${u}?x=1`,
  `${u}#frag`,
));

/** A message (request or notification) in the generated spelling, with the params its method takes. */
const messageArb = fc.record({ method: methodArb, name: nameArb, uri: uriArb, isRequest: fc.boolean(), id: fc.nat(1_000_000), refUri: fc.boolean() }).map((g) => {
  const [governed, spelled] = g.method;
  let params;
  if (governed === 'completion/complete') {
    params = g.refUri ? { ref: { type: 'ref/resource', uri: g.uri.replace(/[^/\\]*$/, '{id}') }, argument: { name: 'id', value: '' } } : { ref: { type: 'ref/prompt', name: g.name }, argument: { name: 'a', value: '' } };
  } else if (governed.startsWith('resources/')) params = { uri: g.uri };
  else if (governed === 'subscriptions/listen') params = { notifications: { resourceSubscriptions: [g.uri] } };
  else params = { name: g.name, arguments: { marker: 'm' } };
  return { jsonrpc: '2.0', ...(g.isRequest ? { id: g.id } : {}), method: spelled, params };
});

/** JSON text with the characters of some strings written as `\u` escapes (the parser decodes them). */
function escapedJson(value, flags) {
  if (flags.length === 0) return JSON.stringify(value);
  let k = 0;
  return JSON.stringify(value).replace(/"((?:[^"\\]|\\.)*)"/g, (whole) => {
    if (!flags[k++ % flags.length]) return whole;
    const text = JSON.parse(whole);
    let i = 0;
    let out = '';
    for (let u = 0; u < text.length; u++) {
      const escape = flags[(k + i++) % flags.length];
      out += escape ? '\\u' + text.charCodeAt(u).toString(16).padStart(4, '0') : JSON.stringify(text[u]).slice(1, -1);
    }
    return `"${out}"`;
  });
}
const escapeFlagsArb = fc.oneof(fc.constant([]), fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }));

// ---- sending: raw HTTP/1.1, the bytes split where the generator says ----
function rawPost(headers, body, cuts) {
  return new Promise((resolve, reject) => {
    const bytes = Buffer.from(body, 'utf8');
    const head = Buffer.from(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n`
      + `Content-Length: ${bytes.length}\r\nConnection: close\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1');
    const all = Buffer.concat([head, bytes]);
    const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
    const sock = net.connect(proxy.port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no answer from the proxy within 10 s')); }, 10000);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('utf8')); });
    sock.on('connect', async () => {
      let prev = 0;
      for (const p of points) {
        sock.write(all.subarray(prev, p));
        prev = p;
        await new Promise((r) => setImmediate(r));
      }
      sock.write(all.subarray(prev));
    });
  });
}

/** Headers a 2026-07-28 request carries (SEP-2243); values a header cannot hold go as Base64 sentinels. */
function modernHeaders(m) {
  const h = { 'mcp-protocol-version': '2026-07-28' };
  const printable = (s) => /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(s);
  if (printable(m.method)) h['mcp-method'] = m.method;
  const name = m.params?.name ?? m.params?.uri;
  if (typeof name === 'string') h['mcp-name'] = printable(name) ? name : `=?base64?${Buffer.from(name, 'utf8').toString('base64')}?=`;
  return h;
}
const withMeta = (m) => ({ ...m, params: { ...m.params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'fuzz', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} } } });

function assertUpstreamClean(from) {
  const problems = [];
  for (const raw of received.slice(from)) {
    let parsed;
    try { parsed = JSON.parse(raw); } catch { problems.push(`the upstream got bytes that are not JSON: ${raw.slice(0, 80)}`); continue; }
    for (const m of Array.isArray(parsed) ? parsed : [parsed]) problems.push(...violations(m));
  }
  assert.deepEqual(problems, []);
}

async function assertAlive() {
  const from = received.length;
  const r = await post(proxy.url, { jsonrpc: '2.0', id: 'alive', method: 'tools/call', params: { name: 'echo', arguments: { marker: 'alive' } } }, sessionHeaders['2025-06-18']);
  assert.ok(r.messages[0]?.result, `the proxy answers a control call: ${r.status} ${r.text.slice(0, 200)}`);
  assert.ok(received.slice(from).some((raw) => raw.includes('alive')), 'the control call reached the upstream');
}

const cutsArb = fc.array(fc.nat(4000), { maxLength: 6 });
const opts = (offset) => ({ seed: SEED + offset, numRuns: RUNS, endOnFailure: true });

test('the invariant checker itself flags what it must (a check that cannot fail proves nothing)', () => {
  assert.notDeepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_user' } }), []);
  assert.notDeepEqual(violations({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'echo' } }), []);
  assert.notDeepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'Tools/call', params: { name: 'echo' } }), []);
  assert.notDeepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'DEMO://resource/dynamic/x/../text/1' } }), []);
  assert.notDeepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file://localhost/etc/%70asswd' } }), []);
  assert.notDeepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'secret_prompt' } } }), []);
  assert.notDeepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'demo://resource/dynamic/text/1?x' } }), []);
  assert.notDeepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'subscriptions/listen', params: { notifications: { resourceSubscriptions: ['file:///etc/passwd'] } } }), []);
  assert.deepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'demo://resource/dynamic/text/2' } }), []);
  assert.deepEqual(violations({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'Delete_user' } }), []);
});

test('single requests and notifications on each era, split at arbitrary bytes: nothing denied or hidden reaches the upstream', async () => {
  await fc.assert(fc.asyncProperty(fc.constantFrom(...ERAS), messageArb, cutsArb, escapeFlagsArb, async (era, m, cuts, flags) => {
    const from = received.length;
    const msg = era === '2026-07-28' ? withMeta(m) : m;
    const headers = era === '2026-07-28' ? modernHeaders(msg) : sessionHeaders[era];
    const body = escapedJson(msg, flags);
    const answer = await rawPost(headers, body, cuts);
    assert.match(answer, /^HTTP\/1\.1 \d{3}/, 'the proxy answered with a status line');
    assertUpstreamClean(from);
  }), opts(1));
  await assertAlive();
});

test('batches on a 2025-03-26 session: every element judged, refused ones never forwarded', async () => {
  const element = fc.oneof(
    { weight: 5, arbitrary: messageArb },
    { weight: 1, arbitrary: fc.constant({ jsonrpc: '2.0', id: 'resp-1', result: {} }) },
    { weight: 1, arbitrary: fc.constant({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99 } }) },
  );
  await fc.assert(fc.asyncProperty(fc.array(element, { minLength: 1, maxLength: 5 }), cutsArb, escapeFlagsArb, async (batch, cuts, flags) => {
    // ids unique within the batch, as a client sends them
    const items = batch.map((m, i) => ('id' in m && m.method !== undefined ? { ...m, id: `b${i}` } : m));
    const from = received.length;
    const answer = await rawPost(sessionHeaders['2025-03-26'], escapedJson(items, flags), cuts);
    assert.match(answer, /^HTTP\/1\.1 \d{3}/);
    assertUpstreamClean(from);
  }), opts(2));
  await assertAlive();
});

test('the allowed spellings still get through (the fuzz is not passing by refusing everything)', async () => {
  const from = received.length;
  const read = await post(proxy.url, { jsonrpc: '2.0', id: 7, method: 'resources/read', params: { uri: 'demo://resource/dynamic/text/2' } }, sessionHeaders['2025-11-25']);
  assert.ok(read.messages[0]?.result, read.text);
  const tool = await post(proxy.url, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'get_time', arguments: {} } }, sessionHeaders['2025-03-26']);
  assert.ok(tool.messages[0]?.result, tool.text);
  const notification = await post(proxy.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }, sessionHeaders['2025-06-18']);
  assert.equal(notification.status, 202);
  assert.ok(received.slice(from).some((r) => r.includes('notifications/cancelled')), 'an ordinary notification is forwarded');
  const denied = await post(proxy.url, { jsonrpc: '2.0', id: 9, method: 'resources/read', params: { uri: 'DEMO://resource/dynamic/text/1' } }, sessionHeaders['2025-11-25']);
  assert.equal(denied.messages[0]?.error?.code, -32602, 'a non-canonical spelling is refused, naming the canonical form');
  assert.match(denied.messages[0].error.message, /demo:\/\/resource\/dynamic\/text\/1/);
  const lookalike = await post(proxy.url, { jsonrpc: '2.0', id: 10, method: 'tools.call', params: { name: 'echo' } }, sessionHeaders['2025-06-18']);
  assert.equal(lookalike.messages[0]?.error?.code, -32601);
  assert.equal(lookalike.messages[0].error.data.error_type, 'method_lookalike');
  const governedNotification = await post(proxy.url, { jsonrpc: '2.0', method: 'tools/call', params: { name: 'echo' } }, sessionHeaders['2025-06-18']);
  assert.equal(governedNotification.status, 400);
  assertUpstreamClean(from);
});

test('governance.unknown_methods: deny and governance.names: casefold on a running proxy', async () => {
  const p = await startProxy(`schema: 1
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
  unknown_methods: deny
  names: casefold
  rules:
    - match: "delete_*"
      action: deny
`);
  try {
    const init = await post(p.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } });
    const h = { 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-06-18' };
    const from = received.length;
    assert.equal((await post(p.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, h)).status, 202);
    const vendor = await post(p.url, { jsonrpc: '2.0', id: 2, method: 'vendor/thing', params: {} }, h);
    assert.equal(vendor.messages[0]?.error?.code, -32601);
    assert.equal(vendor.messages[0].error.data.error_type, 'method_not_found');
    const otherEra = await post(p.url, { jsonrpc: '2.0', id: 3, method: 'server/discover', params: {} }, h);
    assert.equal(otherEra.messages[0]?.error?.code, -32601, 'server/discover is not a 2025-06-18 method');
    assert.equal((await post(p.url, { jsonrpc: '2.0', method: 'vendor/notice' }, h)).status, 400);
    for (const name of ['Delete_User', 'DELETE_USER', 'ｄｅｌｅｔｅ_user']) {
      const r = await post(p.url, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name, arguments: {} } }, h);
      assert.equal(r.messages[0]?.error?.code, -32014, name);
    }
    const hidden = await post(p.url, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'Secret_Dump', arguments: {} } }, h);
    assert.equal(hidden.messages[0]?.error?.code, -32015);
    const ok = await post(p.url, { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'Echo', arguments: {} } }, h);
    assert.ok(ok.messages[0]?.result, ok.text);
    const sent = received.slice(from).join('\n');
    assert.ok(sent.includes('notifications/initialized') && sent.includes('Echo'), 'MCP methods and allowed names still reach the upstream');
    for (const never of ['vendor/', 'server/discover', 'Delete_User', 'DELETE_USER', 'Secret_Dump', 'ｄｅｌｅｔｅ']) assert.equal(sent.includes(never), false, never);
    // the 2026-07-28 revision's own methods are MCP methods there
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'fuzz', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    const discover = await post(p.url, { jsonrpc: '2.0', id: 7, method: 'server/discover', params: { _meta: meta } }, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' });
    assert.ok(discover.messages[0]?.result, discover.text);
  } finally {
    await p.stop();
  }
});

test('2026-07-28 subscriptions/listen: each resource URI it subscribes to is judged like resources/subscribe', async () => {
  const listen = (id, uris) => post(proxy.url, withMeta({ jsonrpc: '2.0', id, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true, resourceSubscriptions: uris } } }),
    { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' });
  const from = received.length;
  assert.equal((await listen(1, ['demo://resource/dynamic/text/2', 'file:///etc/passwd'])).messages[0]?.error?.code, -32015);
  assert.equal((await listen(2, ['demo://resource/dynamic/text/1'])).messages[0]?.error?.code, -32014);
  assert.equal((await listen(3, ['FILE:///tmp/../etc/passwd'])).messages[0]?.error?.code, -32602);
  assertUpstreamClean(from);
  assert.equal(received.slice(from).some((r) => r.includes('subscriptions/listen')), false, 'no refused subscription reached the upstream');
  const ok = await listen(4, ['demo://resource/dynamic/text/2']);
  assert.ok(ok.messages[0]?.result, ok.text);
  assert.ok(received.slice(from).some((r) => r.includes('subscriptions/listen')), 'an allowed subscription is forwarded');
});

test('the stdio path: wrap\'s governance service forwards no generated message the upstream must not read', async () => {
  const { startGovernanceService } = await import('../dist/wrap/governance.js');
  const { resolveSettings } = await import('../dist/cli/settings.js');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'tg-fuzz-wrap-'));
  const cfg = join(dir, 'thoughtgate.yaml');
  writeFileSync(cfg, `schema: 1
sources:
  - id: fs
    kind: mcp
    command: unused
    expose:
      mode: blocklist
      tools: ["secret_*", "file:///etc/*", "demo://hidden/*"]
governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      action: deny
    - match: "demo://resource/dynamic/text/1"
      action: deny
`);
  const token = 'fuzz-per-run-secret';
  const settings = resolveSettings({ config: cfg }, { THOUGHTGATE_ADMIN_TOKEN: 'admin-t', THOUGHTGATE_AUDIT_PATH: join(dir, 'audit.ndjson'), THOUGHTGATE_OUTBOUND_PORT: '0', THOUGHTGATE_ADMIN_PORT: '0', HOME: dir });
  const gov = await startGovernanceService({ configPath: cfg, settings, token, port: 0, serverIds: ['fs'] });
  try {
    await fc.assert(fc.asyncProperty(messageArb, async (m) => {
      const r = await fetch(`${gov.url}/shim/v1/judge`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ serverId: 'fs', message: m }) });
      const answer = await r.json();
      if (violations(m).length > 0) assert.notEqual(answer.action, 'forward', `forwarded: ${JSON.stringify(m)}`);
    }), opts(3));
    const allowed = await fetch(`${gov.url}/shim/v1/judge`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ serverId: 'fs', message: { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'demo://resource/dynamic/text/2' } } }) });
    assert.deepEqual(await allowed.json(), { action: 'forward' });
  } finally {
    await gov.close();
  }
});

test('refusals before the gates are in the audit trail', async () => {
  await post(proxy.url, { jsonrpc: '2.0', id: 'audit-1', method: 'Tools/call', params: { name: 'delete_user' } }, sessionHeaders['2025-06-18']);
  await post(proxy.url, { jsonrpc: '2.0', method: 'tools/call', params: { name: 'echo' } }, sessionHeaders['2025-06-18']);
  await post(proxy.url, { jsonrpc: '2.0', id: 'audit-2', method: 'resources/read', params: { uri: 'FILE:///etc/passwd' } }, sessionHeaders['2025-06-18']);
  const lines = await auditUntil(proxy, (ls) => ls.filter((l) => l.decision === 'deny' && l.gate === 'governance').length >= 3);
  const reasons = lines.filter((l) => l.decision === 'deny').map((l) => l.reason);
  assert.ok(reasons.some((r) => r.includes('lookalike of tools/call')), reasons.join('\n'));
  assert.ok(reasons.some((r) => r.includes('tools/call sent as a notification')), reasons.join('\n'));
  assert.ok(reasons.some((r) => r.includes('non-canonical URI')), reasons.join('\n'));
});
