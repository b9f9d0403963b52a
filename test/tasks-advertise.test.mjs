// Issue 15, item 2: the proxy advertises only what exists. `capabilities.tasks` is added only
// when some rule can hold a call to the source; tasks/list shows the upstream's own tasks
// (passed through when no task of ours can exist, merged with ours otherwise).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startRecordingUpstream, startEverythingHttp, post, rawSession, sourceYaml, rule } from './helpers.mjs';

const stops = [];
after(() => stops.forEach((s) => s()));

test('no rule can hold a call: initialize gains no tasks capability and tasks/list goes to the upstream', async () => {
  const u = await startRecordingUpstream();
  stops.push(() => u.close());
  const p = await startProxy(sourceYaml(`    url: ${u.url}`, { rules: rule('admin_*', 'deny') }));
  try {
    const s = await rawSession(p.url, '2025-11-25');
    assert.equal(s.result.capabilities.tasks, undefined, JSON.stringify(s.result.capabilities));
    const r = await post(p.url, { jsonrpc: '2.0', id: 5, method: 'tasks/list', params: {} }, s.headers);
    assert.ok(u.bodies.some((b) => b.raw.includes('"tasks/list"')), 'the upstream was asked');
    assert.ok(r.messages.find((m) => m.id === 5), 'answered');
  } finally {
    await p.stop();
  }
});

for (const [what, rules, defaults] of [
  ['an approve rule', rule('delete_*', 'approve'), 'forward'],
  ['default approve', '', 'approve'],
]) {
  test(`${what}: initialize advertises tasks (merged with the upstream's capabilities)`, async () => {
    const u = await startRecordingUpstream();
    stops.push(() => u.close());
    const p = await startProxy(sourceYaml(`    url: ${u.url}`, { rules, defaults }));
    try {
      const s = await rawSession(p.url, '2025-11-25');
      assert.deepEqual(s.result.capabilities.tasks?.requests?.tools?.call, {}, JSON.stringify(s.result.capabilities));
      assert.deepEqual(s.result.capabilities.tools, {}, 'the upstream\'s own capabilities stay');
    } finally {
      await p.stop();
    }
  });
}

test('server-everything: its own task is listed through the proxy next to ours; with no hold rule its tasks/list passes through; a foreign cursor is refused', async () => {
  const ev = await startEverythingHttp();
  stops.push(ev.stop);
  const call = (id, name, args, task) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(task ? { task: { ttl: 60000 } } : {}) } });
  for (const hold of [true, false]) {
    const p = await startProxy(sourceYaml(`    url: ${ev.url}`, { rules: hold ? rule('echo', 'approve') : rule('nothing_*', 'deny') }));
    try {
      const s = await rawSession(p.url, '2025-11-25');
      assert.ok(s.result.capabilities.tasks, 'server-everything has tasks itself, so they are advertised either way');
      const theirs = await post(p.url, call(2, 'simulate-research-query', { topic: 'gateways' }, true), s.headers);
      const theirId = theirs.messages.find((m) => m.id === 2)?.result?.task?.taskId;
      assert.ok(theirId, theirs.text.slice(0, 300));
      let ourId;
      if (hold) {
        const ours = await post(p.url, call(3, 'echo', { message: 'hi' }, true), s.headers);
        ourId = ours.messages.find((m) => m.id === 3)?.result?.task?.taskId;
        assert.match(ourId ?? '', /^tg_/, ours.text.slice(0, 300));
      }
      const list = await post(p.url, { jsonrpc: '2.0', id: 4, method: 'tasks/list', params: {} }, s.headers);
      const ids = (list.messages.find((m) => m.id === 4)?.result?.tasks ?? []).map((t) => t.taskId);
      assert.ok(ids.includes(theirId), `the upstream's task is listed: ${list.text.slice(0, 300)}`);
      if (hold) assert.ok(ids.includes(ourId), 'and ours');
      if (hold) {
        const bad = await post(p.url, { jsonrpc: '2.0', id: 6, method: 'tasks/list', params: { cursor: 'not-ours' } }, s.headers);
        assert.equal(bad.messages.find((m) => m.id === 6)?.error?.code, -32602);
      }
      // the upstream's task is still the upstream's: tasks/get goes there
      const got = await post(p.url, { jsonrpc: '2.0', id: 7, method: 'tasks/get', params: { taskId: theirId } }, s.headers);
      assert.equal(got.messages.find((m) => m.id === 7)?.result?.taskId, theirId, got.text.slice(0, 300));
    } finally {
      await p.stop();
    }
  }
});
