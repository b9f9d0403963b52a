// A local stand-in for the Slack Web API (the only one in this project): just the methods the
// approval channel uses, answering as Slack does — HTTP 200 with `{ok:false,error}` for API
// errors, 429 with Retry-After when rate limited, form-encoded or JSON request bodies, the
// token checked on every call. Tests read what it was sent (`calls`, `messages`), put
// reactions on messages and make the next call of a method fail.
import http from 'node:http';

const BOT_USER_ID = 'U0FAKEBOT';
const BOT_ID = 'B0FAKEBOT';
const TEAM_ID = 'T0FAKE';
/** Slack sends these as JSON strings inside a form-encoded body. */
const JSON_PARAMS = new Set(['blocks', 'attachments', 'metadata']);

/**
 * @param {{ token: string }} options
 * @returns {Promise<{
 *   url: string,
 *   calls: { method: string, params: Record<string, unknown>, at: number, failed?: string }[],
 *   messages: Map<string, { channel: string, text: string | undefined, blocks: unknown[] | undefined, metadata?: unknown, reactions: { name: string, users: string[] }[] }>,
 *   setReactions(ts: string, reactions: { name: string, users: string[] }[]): void,
 *   failNext(method: string, failure: { status: 429, retryAfter?: number } | { error: string, retryAfter?: number }): void,
 *   botUserId: string,
 *   close(): Promise<void>,
 * }>}
 */
export async function startFakeSlack({ token }) {
  const calls = [];
  const messages = new Map();
  /** method → queued failures, each used by one call */
  const failures = new Map();
  const channelIds = new Map();
  let seq = 0;

  const channelId = (name) => {
    if (/^[CGD][A-Z0-9]+$/.test(name)) return name;
    let id = channelIds.get(name);
    if (id === undefined) channelIds.set(name, (id = 'C' + String(channelIds.size + 1).padStart(8, '0')));
    return id;
  };
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;

  const methods = {
    'auth.test': () => ({ ok: true, url: 'https://fake.slack.test/', team: 'Fake', user: 'thoughtgate', team_id: TEAM_ID, user_id: BOT_USER_ID, bot_id: BOT_ID, is_enterprise_install: false }),
    'chat.postMessage': (p) => {
      if (typeof p.channel !== 'string' || p.channel === '') return { ok: false, error: 'channel_not_found' };
      if (!p.text && !p.blocks) return { ok: false, error: 'no_text' };
      const ts = nextTs();
      const channel = channelId(p.channel);
      messages.set(ts, { channel, text: p.text, blocks: p.blocks, metadata: p.metadata, reactions: [] });
      return { ok: true, channel, ts, message: { type: 'message', user: BOT_USER_ID, bot_id: BOT_ID, text: p.text, blocks: p.blocks, ts } };
    },
    'chat.update': (p) => {
      const m = messages.get(p.ts);
      if (m === undefined || m.channel !== channelId(String(p.channel))) return { ok: false, error: 'message_not_found' };
      if (p.text !== undefined) m.text = p.text;
      if (p.blocks !== undefined) m.blocks = p.blocks;
      return { ok: true, channel: m.channel, ts: p.ts, text: m.text, message: { type: 'message', user: BOT_USER_ID, bot_id: BOT_ID, text: m.text, blocks: m.blocks } };
    },
    'reactions.get': (p) => {
      const m = messages.get(p.timestamp);
      if (m === undefined || m.channel !== channelId(String(p.channel))) return { ok: false, error: 'message_not_found' };
      const reactions = m.reactions.map((r) => ({ name: r.name, users: [...r.users], count: r.users.length }));
      const message = { type: 'message', user: BOT_USER_ID, bot_id: BOT_ID, text: m.text, ts: p.timestamp };
      if (reactions.length > 0) message.reactions = reactions; // Slack omits the key when there are none
      return { ok: true, type: 'message', channel: m.channel, message };
    },
  };

  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = url.pathname.startsWith('/api/') ? url.pathname.slice(5) : '';
    const send = (status, payload, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(payload));
    };
    let params;
    try {
      params = parseParams(req.headers['content-type'] ?? '', body, url.searchParams);
    } catch {
      return send(200, { ok: false, error: 'invalid_json' });
    }
    const call = { method, params, at: Date.now() };
    calls.push(call);

    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : typeof params.token === 'string' ? params.token : undefined;
    if (given === undefined) return send(200, { ok: false, error: 'not_authed' });
    if (given !== token) return send(200, { ok: false, error: 'invalid_auth' });

    const failure = failures.get(method)?.shift();
    if (failure !== undefined) {
      call.failed = failure.status === 429 ? 'http_429' : failure.error;
      const headers = failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : {};
      if (failure.status === 429) return send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(failure.retryAfter ?? 1) });
      return send(200, { ok: false, error: failure.error }, headers);
    }
    const impl = methods[method];
    if (impl === undefined) return send(200, { ok: false, error: 'unknown_method' });
    send(200, impl(params));
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());

  return {
    url: `http://127.0.0.1:${port}/api/`,
    calls,
    messages,
    botUserId: BOT_USER_ID,
    setReactions(ts, reactions) {
      const m = messages.get(ts);
      if (m === undefined) throw new Error(`fake slack: no message ${ts}`);
      m.reactions = reactions.map((r) => ({ name: r.name, users: [...r.users] }));
    },
    failNext(method, failure) {
      let q = failures.get(method);
      if (q === undefined) failures.set(method, (q = []));
      q.push(failure);
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Form-encoded (what @slack/web-api sends), JSON, or query parameters; JSON-valued form fields decoded. */
function parseParams(contentType, body, query) {
  const params = Object.fromEntries(query);
  if (contentType.startsWith('application/json')) {
    if (body !== '') Object.assign(params, JSON.parse(body));
    return params;
  }
  for (const [k, v] of new URLSearchParams(body)) {
    if (JSON_PARAMS.has(k)) {
      try {
        params[k] = JSON.parse(v);
        continue;
      } catch { /* kept as sent */ }
    }
    params[k] = v;
  }
  return params;
}
