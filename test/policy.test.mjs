// Gate 3 (Cedar) end to end: seed 004's example as written, argument policies, fail-closed
// errors, reload under load on one snapshot, and the API agreeing with the proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy, startRecordingUpstream, post, sleep, tempDir } from './helpers.mjs';

const SEED = `// Allow tools/list without restrictions
permit(
    principal,
    action == Action::"Forward",
    resource
) when {
    resource.method == "tools/list"
};

// Require approval for destructive operations
permit(
    principal,
    action == Action::"Approve",
    resource
) when {
    resource.tool_name like "delete_*"
};

// Deny access to admin tools
forbid(
    principal,
    action,
    resource
) when {
    resource.tool_name like "admin_*"
};
`;
const ARGS = `@id("small-transfers")
permit(principal, action == Action::"Forward", resource) when {
  resource.tool_name == "transfer" && resource.arguments has amount && resource.arguments.amount <= 100
};
@id("echo-ok")
permit(principal, action == Action::"Forward", resource) when { resource.tool_name == "echo" };
@id("broken-read")
permit(principal, action == Action::"Forward", resource) when { resource.tool_name == "fragile" && resource.arguments.missing == 1 };
`;

const config = (up, files, extraRules = '') => `schema: 1
sources:
  - id: upstream
    kind: mcp
    url: ${up.url}
governance:
  defaults:
    action: policy
  rules:
${extraRules || '    []'}
cedar:
  policies:
${files.map((f) => `    - ${f}`).join('\n')}
`;
const H = { 'mcp-protocol-version': '2025-06-18' };
const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const api = async (p, actions) => (await (await fetch(`http://127.0.0.1:${p.port}/api/v1/governance/batch`, { method: 'POST', body: JSON.stringify({ actions }) })).json());

async function proxyWith(up, policies, opts = {}) {
  const dir = tempDir('cedar');
  const files = Object.entries(policies).map(([name, text]) => { const f = join(dir, name); writeFileSync(f, text); return f; });
  // the decision API needs a token by default; these tests call it from loopback
  const p = await startProxy(config(up, files, opts.rules), { ...opts, env: { THOUGHTGATE_API_OPEN: 'loopback', ...opts.env } });
  return { p, files };
}

test("seed 004's Cedar example, loaded as written: forward, approve, deny, default deny", async () => {
  const up = await startRecordingUpstream();
  const { p } = await proxyWith(up, { 'seed.cedar': SEED });
  try {
    const r = await api(p, [{ method: 'tools/list' }, { tool: 'delete_user' }, { tool: 'admin_reset' }, { tool: 'get_weather' }]);
    assert.deepEqual(r.results.map((x) => x.decision), ['forward', 'approve', 'deny', 'deny']);
    assert.deepEqual(r.results[2].policy_ids, ['policy2']);
    const admin = await post(p.url, call(1, 'admin_reset'), H);
    assert.equal(admin.messages[0].error.code, -32003);
    assert.equal(admin.messages[0].error.data.gate, 'policy');
    assert.match(admin.messages[0].error.data.details, /policy2/);
    const weather = await post(p.url, call(2, 'get_weather'), H);
    assert.equal(weather.messages[0].error.code, -32003);
    assert.match(weather.messages[0].error.data.details, /No policy permits/);
    const del = await post(p.url, { ...call(3, 'delete_user'), params: { name: 'delete_user', arguments: {}, task: {} } }, H);
    assert.equal(del.messages[0].result.task.status, 'working', 'Cedar approve: held for a human (as a task here)');
    assert.equal(up.bodies.length, 0, 'nothing denied or held reached the upstream');
    const m = await (await fetch(`http://127.0.0.1:${p.adminPort}/metrics`)).text();
    assert.match(m, /^thoughtgate_cedar_policies_loaded 3$/m);
    assert.match(m, /^thoughtgate_cedar_evaluations_total\{decision="deny",policy_id="policy2"\} [1-9]/m);
    assert.match(m, /^thoughtgate_cedar_evaluation_duration_ms_count\{decision="deny"\} [1-9]/m);
  } finally {
    await p.stop();
    up.close();
  }
});

test('a policy reading resource.arguments decides on argument values, with no schema; an evaluation error denies', async () => {
  const up = await startRecordingUpstream();
  const { p } = await proxyWith(up, { 'args.cedar': ARGS });
  try {
    assert.ok((await post(p.url, call(1, 'transfer', { amount: 50 }), H)).messages[0].result);
    assert.equal((await post(p.url, call(2, 'transfer', { amount: 500 }), H)).messages[0].error.code, -32003);
    assert.equal((await post(p.url, call(3, 'transfer', {}), H)).messages[0].error.code, -32003);
    const fragile = await post(p.url, call(4, 'fragile', { other: 1 }), H);
    assert.equal(fragile.messages[0].error.code, -32003);
    assert.match(fragile.messages[0].error.data.details, /evaluation error|error/i);
    assert.equal(up.bodies.filter((b) => b.raw.includes('transfer')).length, 1, 'only the allowed transfer was forwarded');
  } finally {
    await p.stop();
    up.close();
  }
});

test('a malformed policy refuses to start, naming file and line; at reload it keeps the old snapshot', async () => {
  const up = await startRecordingUpstream();
  const bad = join(tempDir('cedar'), 'bad.cedar');
  writeFileSync(bad, 'permit(principal, action, resource);\nforbid(principal, action, resource) when { resource.x == };\n');
  const refused = await startProxy(config(up, [bad]), { expectFailure: true });
  const { code } = await refused.exited;
  assert.equal(code, 1);
  assert.ok(refused.logText().includes(`${bad}:2:`), refused.logText().slice(-400));

  const { p, files } = await proxyWith(up, { 'ok.cedar': ARGS });
  try {
    assert.ok((await post(p.url, call(1, 'echo'), H)).messages[0].result);
    writeFileSync(files[0], 'permit(principal, action, resource) when { resource.tool_name == };\n');
    p.proc.kill('SIGHUP');
    for (let i = 0; i < 200 && !/reload failed/.test(p.logText()); i++) await sleep(50);
    assert.match(p.logText(), /reload failed; the previous snapshot keeps serving/);
    assert.match(p.logText(), /ok\.cedar:1:/);
    assert.ok((await post(p.url, call(2, 'echo'), H)).messages[0].result, 'old policies still decide');
    assert.equal((await fetch(`http://127.0.0.1:${p.adminPort}/ready`)).status, 200);
  } finally {
    await p.stop();
    up.close();
  }
});

test('reload under load: the policy flips allow → deny; every answer matches exactly one snapshot, none lost', async () => {
  const up = await startRecordingUpstream();
  const allow = 'permit(principal, action == Action::"Forward", resource) when { resource.tool_name == "echo" };\n';
  const deny = 'forbid(principal, action, resource) when { resource.tool_name == "echo" };\n';
  const { p, files } = await proxyWith(up, { 'flip.cedar': allow });
  try {
    let sent = 0;
    const outcomes = [];
    // Load goes on until the new snapshot has answered (bounded), whatever the reload takes.
    let denied = false;
    const client = async (k) => {
      for (let i = 0; i < 60 || (!denied && i < 5000); i++) {
        const id = k * 10000 + i;
        sent++;
        const r = await post(p.url, call(id, 'echo', { n: i }), H);
        const m = r.messages[0];
        const o = m.result ? 'allow' : m.error?.code === -32003 ? 'deny' : `other:${r.status}:${r.text.slice(0, 80)}`;
        if (o === 'deny') denied = true;
        outcomes.push(o);
        if (k === 0 && i === 20) { writeFileSync(files[0], deny); p.proc.kill('SIGHUP'); }
      }
    };
    await Promise.all([client(0), client(1), client(2), client(3)]);
    assert.equal(outcomes.length, sent, 'every call was answered');
    assert.deepEqual(outcomes.filter((o) => o.startsWith('other')), [], 'no call failed');
    assert.ok(outcomes.includes('allow') && outcomes.includes('deny'), 'the flip happened under load');
    // the audit trail: within one snapshot version, echo always got the same decision
    let lines = [];
    for (let i = 0; i < 100 && lines.length < sent; i++) { lines = p.audit().filter((l) => l.tool === 'echo'); await sleep(50); }
    assert.equal(lines.length, sent);
    const byVersion = new Map();
    for (const l of lines) {
      const prev = byVersion.get(l.snapshot);
      assert.ok(prev === undefined || prev === l.decision, `snapshot ${l.snapshot} gave ${prev} and ${l.decision}`);
      byVersion.set(l.snapshot, l.decision);
    }
    assert.equal(byVersion.size, 2);
    // after the reload the cached 'allow' is never served again
    assert.equal((await post(p.url, call(9999, 'echo', { n: 1 }), H)).messages[0].error.code, -32003);
  } finally {
    await p.stop();
    up.close();
  }
});

test('a batch of 100 API actions is judged on one snapshot while Cedar reloads land', async () => {
  const up = await startRecordingUpstream();
  const texts = ['permit(principal, action == Action::"Forward", resource);\n', 'forbid(principal, action, resource);\n'];
  const { p, files } = await proxyWith(up, { 'flip.cedar': texts[0] });
  try {
    let flips = 0;
    const flipper = setInterval(() => { writeFileSync(files[0], texts[++flips % 2]); p.proc.kill('SIGHUP'); }, 20);
    const bySnapshot = new Map();
    try {
      for (let k = 0; k < 20; k++) {
        const r = await api(p, Array.from({ length: 100 }, (_, i) => ({ tool: `tool_${i}`, arguments: { i } })));
        const kinds = new Set(r.results.map((x) => x.decision));
        assert.equal(kinds.size, 1, `batch ${k} mixed ${[...kinds]}`);
        const d = [...kinds][0];
        assert.ok(!bySnapshot.has(r.snapshot) || bySnapshot.get(r.snapshot) === d);
        bySnapshot.set(r.snapshot, d);
      }
    } finally {
      clearInterval(flipper);
    }
  } finally {
    await p.stop();
    up.close();
  }
});

test('the decision API and the proxy agree on a Cedar corpus', async () => {
  const up = await startRecordingUpstream();
  const { p } = await proxyWith(up, { 'seed.cedar': SEED, 'args.cedar': ARGS }, { rules: '    - match: "get_*"\n      action: forward' });
  try {
    const corpus = [['echo', {}], ['transfer', { amount: 1 }], ['transfer', { amount: 101 }], ['admin_x', {}], ['delete_x', {}], ['get_time', {}], ['nothing', {}], ['fragile', {}], ['transfer', { amount: 1.5 }]];
    const r = await api(p, corpus.map(([tool, args]) => ({ tool, arguments: args })));
    for (let i = 0; i < corpus.length; i++) {
      // As a task, so a call that needs approval answers at once instead of being held.
      const asTask = call(i, corpus[i][0], corpus[i][1]);
      asTask.params.task = {};
      const res = (await post(p.url, asTask, H)).messages[0];
      const a = r.results[i];
      if (a.decision === 'forward') assert.ok(res.result && !res.result.task, `${corpus[i][0]}: API forward, proxy ${JSON.stringify(res)}`);
      else if (a.decision === 'deny') assert.equal(res.error?.code, a.error_code, corpus[i][0]);
      else assert.equal(res.result?.task?.status, 'working', `${corpus[i][0]}: approve is held as a task`);
    }
  } finally {
    await p.stop();
    up.close();
  }
});

test('development profile: a Cedar deny is logged WOULD_BLOCK and forwarded', async () => {
  const up = await startRecordingUpstream();
  const { p } = await proxyWith(up, { 'seed.cedar': SEED }, { args: ['--profile', 'development'] });
  try {
    assert.ok((await post(p.url, call(1, 'admin_reset'), H)).messages[0].result);
    assert.match(p.logText(), /WOULD_BLOCK/);
  } finally {
    await p.stop();
    up.close();
  }
});
