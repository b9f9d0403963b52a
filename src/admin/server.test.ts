import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { adminAddressFromEnv, readyResponse, startAdminServer } from './server.js';
import type { AdminLifecycle, ReadyState } from './server.js';

const fakeMetrics = (render: () => Promise<string> = async () => '# HELP x y\n# TYPE x gauge\nx 1\n') => ({
  render,
  contentType: 'text/plain; version=0.0.4; charset=utf-8',
});

async function withServer(
  opts: { ready?: () => ReadyState; lifecycle?: () => AdminLifecycle; render?: () => Promise<string> },
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const s = await startAdminServer({
    port: 0,
    host: '127.0.0.1',
    version: '9.9.9',
    metrics: fakeMetrics(opts.render),
    readiness: opts.ready ?? (() => ({ ready: true, checks: { config_loaded: true } })),
    ...(opts.lifecycle ? { lifecycle: opts.lifecycle } : {}),
  });
  try {
    assert.ok(s.port > 0);
    await fn(`http://127.0.0.1:${s.port}`);
  } finally {
    await s.close();
  }
}

test('/health reports healthy with version and uptime, 503 once stopped', async () => {
  let state: AdminLifecycle = 'ready';
  await withServer({ lifecycle: () => state }, async (base) => {
    const r = await fetch(`${base}/health`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^application\/json/);
    const body = (await r.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['status', 'version', 'uptime_seconds']);
    assert.equal(body.status, 'healthy');
    assert.equal(body.version, '9.9.9');
    assert.equal(typeof body.uptime_seconds, 'number');
    state = 'shutting_down';
    assert.equal((await fetch(`${base}/health`)).status, 200, 'still alive while draining');
    state = 'stopped';
    const s = await fetch(`${base}/health`);
    assert.equal(s.status, 503);
    assert.deepEqual(await s.json(), { status: 'unhealthy', reason: 'service_stopped' });
  });
});

test('/ready: 200 with checks when ready, 503 with reason otherwise', async () => {
  let st: ReadyState = { ready: true, checks: { config_loaded: true, upstream_reachable: true, approval_store_initialized: true } };
  await withServer({ ready: () => st }, async (base) => {
    let r = await fetch(`${base}/ready`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ready', checks: st.checks });

    st = { ready: false, checks: { config_loaded: true, upstream_reachable: false, approval_store_initialized: true } };
    r = await fetch(`${base}/ready`);
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), { status: 'not_ready', checks: st.checks, reason: 'upstream_reachable' });

    st = { ready: false, reason: 'shutting_down', checks: { config_loaded: true } };
    r = await fetch(`${base}/ready?verbose=1`);
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { reason: string }).reason, 'shutting_down');
  });
});

test('readyResponse falls back to the first failing check, then not_ready', () => {
  assert.equal(readyResponse({ ready: false, checks: { a: true, b: false, c: false } }).body.reason, 'b');
  assert.equal(readyResponse({ ready: false, checks: { a: true } }).body.reason, 'not_ready');
  assert.equal(readyResponse({ ready: false, reason: 'lifecycle_state: starting', checks: {} }).body.reason, 'lifecycle_state: starting');
});

test('/metrics serves the exposition with the Prometheus text content type', async () => {
  await withServer({}, async (base) => {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(await r.text(), '# HELP x y\n# TYPE x gauge\nx 1\n');
  });
});

test('a failing render answers 500 JSON and the server keeps serving', async () => {
  await withServer({ render: async () => Promise.reject(new Error('boom')) }, async (base) => {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 500);
    assert.deepEqual(await r.json(), { status: 'error', error: 'boom' });
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });
});

test('unknown paths 404, other methods 405, HEAD has headers and no body', async () => {
  await withServer({}, async (base) => {
    const nf = await fetch(`${base}/nope`);
    assert.equal(nf.status, 404);
    assert.match(nf.headers.get('content-type')!, /^application\/json/);
    assert.equal(((await nf.json()) as { status: string }).status, 'not_found');
    const post = await fetch(`${base}/health`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.arrayBuffer();
    const head = await fetch(`${base}/health`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 0);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });
});

test('close() does not wait for idle keep-alive connections', async () => {
  const s = await startAdminServer({ port: 0, host: '127.0.0.1', version: 'x', metrics: fakeMetrics(), readiness: () => ({ ready: true, checks: {} }) });
  const agent = new http.Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    http.get({ port: s.port, host: '127.0.0.1', path: '/health', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  const t0 = Date.now();
  await s.close();
  assert.ok(Date.now() - t0 < 1000);
  agent.destroy();
});

test('a taken port rejects', async () => {
  const a = await startAdminServer({ port: 0, host: '127.0.0.1', version: 'x', metrics: fakeMetrics(), readiness: () => ({ ready: true, checks: {} }) });
  try {
    await assert.rejects(
      startAdminServer({ port: a.port, host: '127.0.0.1', version: 'x', metrics: fakeMetrics(), readiness: () => ({ ready: true, checks: {} }) }),
      /EADDRINUSE/,
    );
  } finally {
    await a.close();
  }
});

test('address defaults: 0.0.0.0:7469, overridable by env, bad port rejected', () => {
  assert.deepEqual(adminAddressFromEnv({}), { port: 7469, host: '0.0.0.0' });
  assert.deepEqual(adminAddressFromEnv({ THOUGHTGATE_ADMIN_PORT: '0', THOUGHTGATE_ADMIN_BIND: '127.0.0.1' }), { port: 0, host: '127.0.0.1' });
  assert.throws(() => adminAddressFromEnv({ THOUGHTGATE_ADMIN_PORT: 'http' }), /THOUGHTGATE_ADMIN_PORT/);
  assert.throws(() => adminAddressFromEnv({ THOUGHTGATE_ADMIN_PORT: '70000' }), /THOUGHTGATE_ADMIN_PORT/);
});
