// A small local implementation of the shim ↔ governance-service contract (src/wrap/protocol.ts)
// for the shim's tests; the real service is `thoughtgate wrap`'s. Judges tools/call by tool
// name from a table, holds with a decision the test makes, filters lists by hiding names,
// records the event reports.
import http from 'node:http';
import { GovError, errorResponse } from '../../dist/core/errors.js';

const API = '/shim/v1';

/**
 * @param {{ token?: string, tools?: Record<string, 'forward'|'deny'|'hold'>, hidden?: string[] }} opts
 */
export async function startFakeGovernance(opts = {}) {
  const token = opts.token ?? 'test-governance-token';
  const state = {
    token,
    /** tool name → action (default forward) */
    tools: { ...(opts.tools ?? {}) },
    /** names removed from list results */
    hidden: new Set(opts.hidden ?? []),
    /** judge/filter/wait answer 503 while true */
    down: false,
    judged: [],
    filtered: [],
    events: [],
    unauthorized: 0,
    /** approvalId → {message, answer?, waiters} */
    holds: new Map(),
    holdListeners: [],
  };
  let nextApproval = 0;

  function answerFor(message, decision) {
    const name = message.params?.name;
    if (decision === 'approve') return { action: 'forward' };
    return { action: 'respond', response: JSON.parse(errorResponse(message.id, new GovError('approval_rejected', { tool: name }), 'fake-corr')) };
  }

  function judge(message) {
    state.judged.push(message);
    const name = message.method === 'tools/call' ? message.params?.name : undefined;
    const action = (name !== undefined && state.tools[name]) || 'forward';
    if (action === 'deny') {
      return { action: 'respond', response: JSON.parse(errorResponse(message.id, new GovError('governance_rule_denied', { tool: name }), 'fake-corr')) };
    }
    if (action === 'hold') {
      const approvalId = `ap-${++nextApproval}`;
      state.holds.set(approvalId, { message, answer: undefined, waiters: [] });
      for (const l of state.holdListeners.splice(0)) l(approvalId);
      return { action: 'hold', approvalId, consoleUrl: `http://127.0.0.1/console/${approvalId}` };
    }
    return { action: 'forward' };
  }

  function filter(body) {
    state.filtered.push(body);
    const key = { 'tools/list': 'tools', 'prompts/list': 'prompts', 'resources/list': 'resources', 'resources/templates/list': 'resourceTemplates' }[body.method];
    const items = body.message?.result?.[key];
    if (!Array.isArray(items)) return {};
    const kept = items.filter((it) => !state.hidden.has(it.name ?? it.uri ?? it.uriTemplate));
    if (kept.length === items.length) return {};
    return { message: { ...body.message, result: { ...body.message.result, [key]: kept } } };
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const send = (status, obj) => {
        const text = JSON.stringify(obj);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/healthz') return send(200, { status: 'ok' });
      if (req.headers.authorization !== `Bearer ${token}`) {
        state.unauthorized++;
        return send(401, { error: 'unauthorized' });
      }
      let body;
      try { body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined; } catch { return send(400, { error: 'bad json' }); }
      if (req.method === 'POST' && url.pathname === `${API}/events`) {
        state.events.push(body);
        return send(200, {});
      }
      if (state.down) return send(503, { error: 'down' });
      if (req.method === 'POST' && url.pathname === `${API}/judge`) return send(200, judge(body.message));
      if (req.method === 'POST' && url.pathname === `${API}/filter`) return send(200, filter(body));
      const m = /^\/shim\/v1\/wait\/(.+)$/.exec(url.pathname);
      if (req.method === 'GET' && m) {
        const hold = state.holds.get(decodeURIComponent(m[1]));
        if (!hold) return send(404, { error: 'unknown approval' });
        if (hold.answer) return send(200, { done: true, answer: hold.answer });
        const ms = Math.min(Number(url.searchParams.get('timeoutMs') ?? 30000), 30000);
        const timer = setTimeout(() => done({ done: false }), ms);
        const done = (v) => {
          clearTimeout(timer);
          hold.waiters = hold.waiters.filter((w) => w !== done);
          if (!res.writableEnded) send(200, v);
        };
        hold.waiters.push(done);
        res.on('close', () => { clearTimeout(timer); hold.waiters = hold.waiters.filter((w) => w !== done); });
        return;
      }
      send(404, { error: 'not found' });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;

  return {
    url,
    token,
    state,
    /** resolves with the next approvalId created (or the oldest undecided one) */
    nextHold() {
      for (const [id, h] of state.holds) if (!h.answer && !h.seen) { h.seen = true; return Promise.resolve(id); }
      return new Promise((r) => state.holdListeners.push((id) => { state.holds.get(id).seen = true; r(id); }));
    },
    /** a person decides: 'approve' forwards the call, 'reject' answers -32007 */
    decide(approvalId, decision) {
      const hold = state.holds.get(approvalId);
      hold.answer = answerFor(hold.message, decision);
      for (const w of [...hold.waiters]) w({ done: true, answer: hold.answer });
    },
    /** summed counts from the event reports (of one server, when given) */
    totals(serverId) {
      const messages = {};
      const framing = {};
      for (const r of state.events) {
        if (serverId !== undefined && r.serverId !== serverId) continue;
        for (const m of r.messages) messages[`${m.direction} ${m.method}`] = (messages[`${m.direction} ${m.method}`] ?? 0) + m.count;
        for (const f of r.framing) framing[`${f.direction} ${f.errorType}`] = (framing[`${f.direction} ${f.errorType}`] ?? 0) + f.count;
      }
      return { messages, framing };
    },
    close() {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
