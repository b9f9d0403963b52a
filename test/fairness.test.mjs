// Fair to every client (issue 14): one client cannot take every stdio session or GET stream,
// what it is refused gets -32009 with retry_after, its shares come back however a session or
// stream ends, and stdio servers are kept within a memory budget by ending idle ones.
// Two clients are two peer addresses: 127.0.0.1 and 127.0.0.2 (both loopback on Linux).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startProxy, sleep, EVERYTHING } from './helpers.mjs';

const yaml = `schema: 1
sources:
  - id: everything
    kind: mcp
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(EVERYTHING)}, "stdio"]
governance:
  defaults:
    action: forward
`;

const A = '127.0.0.1';
const B = '127.0.0.2';
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** One HTTP exchange from a chosen local address; answers parsed from JSON or SSE. */
function request(from, url, { method = 'POST', body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method, localAddress: from, agent: false,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let messages = [];
        if ((res.headers['content-type'] ?? '').includes('text/event-stream')) {
          messages = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
        } else if (text.trim()) messages = [JSON.parse(text)];
        resolve({ status: res.statusCode, headers: res.headers, messages, text });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fair', version: '1' } } };

/** initialize from `from`: the session's headers, or the refusal */
async function init(from, url) {
  const r = await request(from, url, { body: INIT });
  const sid = r.headers['mcp-session-id'];
  if (r.messages[0]?.result === undefined) return { refused: r.messages[0]?.error, status: r.status };
  const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await request(from, url, { body: { jsonrpc: '2.0', method: 'notifications/initialized' }, headers });
  return { sid, headers };
}

const echo = (from, url, headers, message) =>
  request(from, url, { body: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message } } }, headers });

/** A GET stream from `from`, held open until close(); resolves once its head arrived. */
function openStream(from, url, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', localAddress: from, agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200) {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        return;
      }
      res.on('error', () => {});
      resolve({ status: 200, close: () => req.destroy() });
    });
    req.on('error', (e) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
    req.end();
  });
}

async function metric(p, line) {
  const text = await (await fetch(`http://127.0.0.1:${p.adminPort}/metrics`)).text();
  const hit = text.split('\n').find((l) => l.startsWith(line));
  return hit === undefined ? 0 : Number(hit.slice(line.length).trim());
}

/** Polls (bounded) until `pred()` holds; the bound is a hang guard, not a timing assertion. */
async function until(pred, what) {
  for (let i = 0; i < 400; i++) {
    if (await pred()) return;
    await sleep(50);
  }
  assert.fail(`never happened: ${what}`);
}

const pidOf = (p, sid) => {
  const line = p.logText().split('\n').find((l) => l.includes('stdio server started for new session') && l.includes(sid));
  return JSON.parse(line).pid;
};

test('one client past its share of stdio sessions gets -32009 + retry_after; another client still initializes and calls tools; ending sessions gives the share back', async () => {
  const p = await startProxy(yaml, { env: { THOUGHTGATE_MAX_STDIO_SESSIONS_PER_CLIENT: '2', THOUGHTGATE_MAX_STDIO_SESSIONS: '8' } });
  try {
    const a1 = await init(A, p.url);
    const a2 = await init(A, p.url);
    assert.ok(a1.sid && a2.sid, 'at its share, the client is served');
    const over = await init(A, p.url);
    assert.equal(over.refused?.code, -32009);
    assert.ok(over.refused.data.retry_after > 0, 'retry_after tells it when to come back');
    assert.match(over.refused.data.details, /THOUGHTGATE_MAX_STDIO_SESSIONS_PER_CLIENT/);

    const b = await init(B, p.url);
    assert.ok(b.sid, 'another client is not locked out');
    const r = await echo(B, p.url, b.headers, 'from-b');
    assert.equal(r.messages.at(-1).result.content[0].text, 'Echo: from-b');

    // DELETE gives the share back at once.
    assert.equal((await request(A, p.url, { method: 'DELETE', headers: a1.headers })).status, 200);
    const a3 = await init(A, p.url);
    assert.ok(a3.sid, 'a deleted session frees its share');

    // A child that dies gives its session's share back too; its session answers 404.
    process.kill(pidOf(p, a2.sid), 'SIGKILL');
    await until(async () => (await echo(A, p.url, a2.headers, 'gone')).status === 404, 'the dead child\'s session is unknown');
    const gone = await echo(A, p.url, a2.headers, 'gone');
    assert.equal(gone.messages[0].error.code, -32001);
    assert.match(gone.messages[0].error.message, /Session not found/);
    assert.ok((await init(A, p.url)).sid, 'the dead child\'s share is free again');
    assert.equal((await init(A, p.url)).refused?.code, -32009, 'and only that one');

    assert.equal(await metric(p, 'thoughtgate_capacity_refusals_total{reason="stdio_sessions_per_client"}'), 2);
  } finally {
    await p.stop();
  }
});

test('GET streams: past a client\'s or a session\'s share → 429 + Retry-After (-32009); another client still opens one; closing gives the share back', async () => {
  const p = await startProxy(yaml, { env: { THOUGHTGATE_MAX_STREAMS_PER_CLIENT: '1', THOUGHTGATE_MAX_STREAMS_PER_SESSION: '1' } });
  try {
    const a1 = await init(A, p.url);
    const a2 = await init(A, p.url);
    const b = await init(B, p.url);
    const s1 = await openStream(A, p.url, a1.headers);
    assert.equal(s1.status, 200);

    const sameSession = await openStream(B, p.url, a1.headers);
    assert.equal(sameSession.status, 429, 'a second stream on one session');
    assert.match(JSON.parse(sameSession.body).error.data.details, /THOUGHTGATE_MAX_STREAMS_PER_SESSION/);

    const refused = await openStream(A, p.url, a2.headers);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '5');
    const err = JSON.parse(refused.body).error;
    assert.equal(err.code, -32009);
    assert.equal(err.data.retry_after, 5);
    assert.match(err.data.details, /THOUGHTGATE_MAX_STREAMS_PER_CLIENT/);

    const sb = await openStream(B, p.url, b.headers);
    assert.equal(sb.status, 200, 'another client opens its own stream');
    const r = await echo(A, p.url, a2.headers, 'still-served');
    assert.equal(r.messages.at(-1).result.content[0].text, 'Echo: still-served', 'calls are not limited by the stream share');

    s1.close();
    let again;
    await until(async () => {
      again = await openStream(A, p.url, a2.headers);
      return again.status === 200;
    }, 'the closed stream\'s share comes back');
    again.close();
    sb.close();
    assert.ok(await metric(p, 'thoughtgate_capacity_refusals_total{reason="streams_per_client"}') >= 1);
    assert.ok(await metric(p, 'thoughtgate_capacity_refusals_total{reason="streams_per_session"}') >= 1);
  } finally {
    await p.stop();
  }
});

test('over the memory budget: idle servers are ended (their sessions answer 404), a new session is refused while nothing is idle, and admitted once something is', async () => {
  // 1 MiB: any server is over it, so every sweep ends whatever is idle.
  const p = await startProxy(yaml, { env: { THOUGHTGATE_STDIO_MEMORY_BUDGET_MB: '1', THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS: '100', THOUGHTGATE_MAX_STDIO_SESSIONS_PER_CLIENT: '1' } });
  try {
    const a = await init(A, p.url);
    const pidA = pidOf(p, a.sid);
    await until(() => !alive(pidA), 'the idle server over the budget is ended');
    const r = await echo(A, p.url, a.headers, 'late');
    assert.equal(r.status, 404);
    assert.equal(r.messages[0].error.code, -32001);
    assert.match(p.logText(), /over their memory budget; ending an idle one/);
    assert.ok(await metric(p, 'thoughtgate_stdio_reaped_total{reason="memory_budget"}') >= 1);

    // A server with a GET stream open is not idle: it stays, and holds the budget. (The sweep may
    // end the session between initialize and the GET; then it is simply opened again.)
    let b;
    let stream;
    await until(async () => {
      b = await init(A, p.url); // the reaped session's share came back: the client's share is 1
      if (b.sid === undefined) return false;
      stream = await openStream(A, p.url, b.headers);
      return stream.status === 200;
    }, 'a session with an open stream');
    const pidB = pidOf(p, b.sid);
    await until(async () => (await metric(p, 'thoughtgate_stdio_memory_bytes')) > 1024 * 1024, 'the busy server is sampled');
    const refused = await init(B, p.url);
    assert.equal(refused.refused?.code, -32009, 'nothing idle to end: refused');
    assert.ok(refused.refused.data.retry_after >= 1);
    assert.match(refused.refused.data.details, /memory budget/);
    assert.ok(alive(pidB), 'a server with a stream open is never ended for memory');
    assert.ok(await metric(p, 'thoughtgate_capacity_refusals_total{reason="stdio_memory"}') >= 1);

    stream.close();
    await until(() => !alive(pidB), 'once idle, it is ended');
    let c;
    await until(async () => (c = await init(B, p.url)).sid !== undefined, 'room again');
    assert.ok(c.sid);
  } finally {
    await p.stop();
  }
});

test('under pressure (past 75% of the session cap) an idle server goes after the shorter idle time', async () => {
  const p = await startProxy(yaml, { env: { THOUGHTGATE_MAX_STDIO_SESSIONS: '2', THOUGHTGATE_STDIO_IDLE_UNDER_PRESSURE_SECS: '1', THOUGHTGATE_STDIO_SWEEP_INTERVAL_MS: '100' } });
  try {
    const a = await init(A, p.url);
    const b = await init(B, p.url);
    const pids = [pidOf(p, a.sid), pidOf(p, b.sid)];
    // Two of two sessions is pressure; once one is ended, one of two is not, so at least one goes.
    await until(() => pids.some((pid) => !alive(pid)), 'an idle server ended long before the 600 s idle timeout');
    assert.match(p.logText(), /stdio session idle under pressure; ending its server/);
    assert.ok(await metric(p, 'thoughtgate_stdio_reaped_total{reason="idle_under_pressure"}') >= 1);
    assert.equal(await metric(p, 'thoughtgate_stdio_reaped_total{reason="idle"}'), 0);
    const [gone, goneFrom] = alive(pids[0]) ? [b, B] : [a, A];
    const r = await echo(goneFrom, p.url, gone.headers, 'x');
    assert.equal(r.status, 404);
    assert.equal(r.messages[0].error.code, -32001);
    assert.ok((await init(goneFrom, p.url)).sid, 'its slot is free again');
  } finally {
    await p.stop();
  }
});
