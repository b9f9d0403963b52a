// The one request every load suite sends: a small tools/call inside a real MCP session.
// Sessions are opened per target (initialize + notifications/initialized) because civic
// rejects calls without a session it created.
export const PROTOCOL_VERSION = '2025-06-18';

const BASE_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': PROTOCOL_VERSION,
};

/** The JSON-RPC body of the measured call (same bytes for every target and tool). */
export function toolsCallBody(tool = 'echo', args = { text: 'hi' }) {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args } });
}

/**
 * Splits a body made by toolsCallBody around its id, so a generator can send a fresh id per
 * request: pre + id + post. (MCP forbids reusing an id in a session, and SDK-based proxies such
 * as civic match answers by id, losing some when equal ids are in flight together.)
 */
export function idTemplate(body) {
  const at = body.indexOf('"id":1,');
  if (at < 0) throw new Error('idTemplate: body has no "id":1');
  return [body.slice(0, at + 5), body.slice(at + 6)];
}

/**
 * A number in a request body that the load generators and the probe replace by a fresh value
 * per request (a target's `varyMark`): the cedar-proxy suite's "cold" call carries
 * `arguments.amount: VARY_MARK`, so every call has distinct arguments and misses the proxy's
 * Cedar decision cache. Values are 10 digits wide (same bytes as the mark, so a content-length
 * computed once stays right) and unique within the runner: each request stream takes its own
 * block of VARY_BLOCK values from nextVaryBase().
 */
export const VARY_MARK = 9999999999;
export const VARY_BLOCK = 100_000_000;
let varyNext = 1_000_000_000;
export function nextVaryBase() {
  const base = varyNext;
  varyNext += VARY_BLOCK;
  if (varyNext >= VARY_MARK) throw new Error('nextVaryBase: out of 10-digit blocks');
  return base;
}

/** Splits `body` around the (one) VARY_MARK: pre + value + post. */
export function varyTemplate(body, mark = String(VARY_MARK)) {
  const at = body.indexOf(mark);
  if (at < 0 || body.indexOf(mark, at + 1) >= 0) throw new Error(`varyTemplate: body must hold ${mark} once`);
  return [body.slice(0, at), body.slice(at + mark.length)];
}

/** Reads a JSON-RPC message from a JSON or single-message SSE body. */
function parseRpc(contentType, text) {
  if (contentType?.includes('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
    return JSON.parse(data.at(-1));
  }
  return JSON.parse(text);
}

async function post(url, headers, body) {
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  return { res, text };
}

/**
 * Opens a session on `url` and checks one tools/call answers. Returns the headers to send with
 * the measured request (session id included) and the body. `extraHeaders` carry e.g. auth.
 */
export async function openSession(url, { tool, args, extraHeaders = {}, protocolVersion = PROTOCOL_VERSION } = {}) {
  let headers = { ...BASE_HEADERS, ...extraHeaders };
  // A 2025-03-26 client sends no MCP-Protocol-Version header (the header came with 2025-06-18).
  if (protocolVersion !== PROTOCOL_VERSION) delete headers['mcp-protocol-version'];
  const init = await post(url, headers, {
    jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'thoughtgate-bench', version: '1' } },
  });
  if (init.res.status !== 200) throw new Error(`initialize on ${url}: HTTP ${init.res.status} ${init.text.slice(0, 300)}`);
  const sessionId = init.res.headers.get('mcp-session-id');
  if (sessionId) headers = { ...headers, 'mcp-session-id': sessionId };
  const note = await post(url, headers, { jsonrpc: '2.0', method: 'notifications/initialized' });
  if (note.res.status >= 300) throw new Error(`notifications/initialized on ${url}: HTTP ${note.res.status}`);

  const body = toolsCallBody(tool, args);
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`tools/call on ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
  const msg = parseRpc(res.headers.get('content-type'), text);
  if (!msg.result && !msg.error) throw new Error(`tools/call on ${url}: no JSON-RPC answer: ${text.slice(0, 300)}`);
  return { headers, body, sessionId, sample: msg };
}
