// The MCP conformance suite (@modelcontextprotocol/conformance 0.1.13), directly and through the
// proxy, with the runner `npm run conformance` uses (test/support/conformance.mjs): the proxy must
// not lose a scenario or a check that passes directly, and must turn dns-rebinding-protection
// into a pass. Targets: server-everything, a v2 TypeScript SDK server, and the suite's client
// scenarios with the v2 TypeScript SDK client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TARGETS, CLIENT_SCENARIOS, passes, runServerSuite, compare } from './support/conformance.mjs';
import { startProxy, sourceYaml, rule } from './helpers.mjs';
import { startV2Server } from './fixtures/v2-server.mjs';

const tail = (run) => run.text.slice(-600);

test('conformance, server-everything: every check that passes directly passes through the proxy; DNS rebinding is stopped', { timeout: 240_000 }, async () => {
  const r = await TARGETS['server-everything']();
  assert.ok(r.direct.scenarios.size > 10, `the direct run produced results: ${tail(r.direct)}`);
  assert.ok(r.via.scenarios.size > 10, `the proxied run produced results: ${tail(r.via)}`);
  assert.deepEqual(r.lostScenarios, []);
  assert.deepEqual(r.lostChecks, []);
  assert.ok(passes(r.via.scenarios.get('dns-rebinding-protection')), 'dns-rebinding-protection passes through the proxy');
});

test('conformance, v2 SDK server: nothing passing directly fails through the proxy', { timeout: 240_000 }, async () => {
  const r = await TARGETS['v2-sdk-server']();
  // The fixture implements these; if they stop passing directly the comparison below is hollow.
  for (const s of ['tools-call-simple-text', 'resources-read-text', 'prompts-get-with-args', 'tools-call-with-progress']) {
    assert.ok(passes(r.direct.scenarios.get(s)), `${s} passes directly: ${JSON.stringify(r.direct.scenarios.get(s))} ${tail(r.direct)}`);
  }
  assert.deepEqual(r.lostScenarios, []);
  assert.deepEqual(r.lostChecks, []);
  assert.ok(passes(r.via.scenarios.get('dns-rebinding-protection')), 'dns-rebinding-protection passes through the proxy');
});

test('conformance, client scenarios with the v2 SDK client: the same checks pass through the proxy', { timeout: 240_000 }, async () => {
  const r = await TARGETS['v2-sdk-client']();
  for (const s of CLIENT_SCENARIOS) assert.ok(passes(r.direct.scenarios.get(s)), `${s} passes directly: ${JSON.stringify(r.direct.scenarios.get(s))} ${r.direct.text.slice(-1500)}`);
  assert.deepEqual(r.lostScenarios, [], r.via.text.slice(-3000));
  assert.deepEqual(r.lostChecks, []);
});

test('conformance: the comparison catches a scenario the proxy breaks (a deny rule on the tool it calls)', { timeout: 120_000 }, async () => {
  const v2 = await startV2Server();
  const proxy = await startProxy(sourceYaml(`    url: ${v2.url}`, { rules: rule('test_simple_text', 'deny') }));
  try {
    const scenario = 'tools-call-simple-text';
    const direct = await runServerSuite(v2.url, { scenario });
    const via = await runServerSuite(proxy.url, { scenario });
    assert.ok(passes(direct.scenarios.get(scenario)), tail(direct));
    const r = compare(direct, via);
    assert.deepEqual(r.lostScenarios, [scenario]);
    assert.deepEqual(r.lostChecks, [`${scenario}/tools-call-simple-text`]);
  } finally {
    await proxy.stop();
    v2.close();
  }
});
