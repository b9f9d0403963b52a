// One runner for the MCP conformance suite (@modelcontextprotocol/conformance 0.1.13), shared by
// `npm run conformance` (scripts/conformance.mjs, which writes docs/conformance.md) and
// test/conformance.test.mjs (which fails CI when the proxy loses a scenario or check).
//
// Targets, each run directly and through a forward-all `thoughtgate serve`:
//   - server scenarios against server-everything (Streamable HTTP)
//   - server scenarios against a v2 TypeScript SDK server (test/fixtures/v2-server.mjs)
//   - client scenarios (the suite's mock servers) with the v2 TypeScript SDK client
//     (test/fixtures/conformance-client.mjs; `--via-proxy` puts thoughtgate in between)
// Results come from the suite's own checks.json files (one folder per scenario under -o).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, startEverythingHttp, startProxy } from '../helpers.mjs';
import { startV2Server } from '../fixtures/v2-server.mjs';

const require = createRequire(import.meta.url);
const PKG = dirname(require.resolve('@modelcontextprotocol/conformance/package.json'));
export const CONFORMANCE = join(PKG, 'dist', 'index.js');
export const CONFORMANCE_VERSION = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')).version;
export const CLIENT = join(ROOT, 'test', 'fixtures', 'conformance-client.mjs');
/**
 * The suite's client scenarios that need no OAuth client (the `auth/*` ones test an OAuth
 * implementation in the client; thoughtgate is not an authorization server and forwards
 * `Authorization` as it is).
 */
export const CLIENT_SCENARIOS = ['initialize', 'tools_call', 'elicitation-sep1034-client-defaults', 'sse-retry'];
/**
 * Checks that measure time (the suite's own tolerances: sse-retry's reconnect must come within
 * 700 ms of a 500 ms `retry:`): shown in the table, but on a loaded machine they can miss either
 * way, so a miss through the proxy is not counted as a loss.
 */
export const TIMED_CHECKS = new Set(['sse-retry/client-sse-retry-timing']);

const forwardAll = (url) => `schema: 1
sources:
  - id: upstream
    kind: mcp
    url: ${url}
governance:
  defaults:
    action: forward
`;

function spawnSuite(args, timeoutMs) {
  return new Promise((resolve) => {
    const chunks = [];
    const p = spawn(process.execPath, [CONFORMANCE, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d) => chunks.push(d));
    p.stderr.on('data', (d) => chunks.push(d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, text: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

/** Reads every `<dir>/checks.json` under `out` into a Run ({ scenarios, checks }). */
function collect(out, nameOf, run) {
  for (const d of existsSync(out) ? readdirSync(out) : []) {
    const f = join(out, d, 'checks.json');
    if (!existsSync(f)) continue;
    const scenario = nameOf(d.replace(/-\d{4}-\d\d-\d\dT[\d-]+Z$/, ''));
    const counts = { passed: 0, failed: 0, warnings: 0 };
    for (const c of JSON.parse(readFileSync(f, 'utf8'))) {
      if (c.status === 'SUCCESS') { counts.passed++; run.checks.add(`${scenario}/${c.id}`); }
      else if (c.status === 'FAILURE') { counts.failed++; run.failing.add(`${scenario}/${c.id}`); }
      else if (c.status === 'WARNING') counts.warnings++;
    }
    run.scenarios.set(scenario, counts);
  }
  return run;
}

/** `conformance server --url URL` (the active suite, or one `scenario`). */
export async function runServerSuite(url, { scenario, timeoutMs = 90_000 } = {}) {
  const out = mkdtempSync(join(tmpdir(), 'tg-conf-'));
  try {
    const { text } = await spawnSuite(['server', '--url', url, ...(scenario ? ['--scenario', scenario] : []), '-o', out], timeoutMs);
    return { ...collect(out, (d) => d.replace(/^server-/, ''), { scenarios: new Map(), checks: new Set(), failing: new Set() }), text };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** `conformance client --command "node conformance-client.mjs [--via-proxy]" --scenario S` for each scenario. */
export async function runClientScenarios({ viaProxy = false, scenarios = CLIENT_SCENARIOS, timeoutMs = 60_000 } = {}) {
  const run = { scenarios: new Map(), checks: new Set(), failing: new Set(), text: '' };
  const command = `"${process.execPath}" "${CLIENT}"${viaProxy ? ' --via-proxy' : ''}`;
  for (const scenario of scenarios) {
    const out = mkdtempSync(join(tmpdir(), 'tg-conf-client-'));
    try {
      const { text } = await spawnSuite(['client', '--command', command, '--scenario', scenario, '--timeout', '45000', '-o', out], timeoutMs);
      run.text += `\n=== ${scenario}\n${text}`;
      collect(out, () => scenario, run);
      if (!run.scenarios.has(scenario)) run.scenarios.set(scenario, { passed: 0, failed: 1, warnings: 0, note: 'no results' });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  return run;
}

/** A scenario passes when it has a passing check and no failing one (warnings are shown, not failures). */
export const passes = (c) => !!c && c.failed === 0 && c.passed > 0;

/** Direct vs through: every scenario's row, and what passes directly but not through the proxy. */
export function compare(direct, via) {
  const names = [...new Set([...direct.scenarios.keys(), ...via.scenarios.keys()])];
  const rows = names.map((scenario) => ({ scenario, direct: direct.scenarios.get(scenario), via: via.scenarios.get(scenario) }));
  // A scenario whose only failures through the proxy are timed checks is not lost (TIMED_CHECKS).
  const untimedFailure = (scenario) => !via.scenarios.has(scenario) || [...via.failing].some((c) => c.startsWith(`${scenario}/`) && !TIMED_CHECKS.has(c));
  const lostScenarios = rows.filter((r) => passes(r.direct) && !passes(r.via) && untimedFailure(r.scenario)).map((r) => r.scenario);
  const lostChecks = [...direct.checks].filter((c) => !via.checks.has(c) && !TIMED_CHECKS.has(c));
  const gainedScenarios = rows.filter((r) => !passes(r.direct) && passes(r.via)).map((r) => r.scenario);
  return { rows, lostScenarios, lostChecks, gainedScenarios };
}

/** Starts a target, runs it directly and through a forward-all proxy, stops everything. */
async function serverTarget(name, description, start) {
  const upstream = await start();
  let proxy;
  try {
    proxy = await startProxy(forwardAll(upstream.url));
    const direct = await runServerSuite(upstream.url);
    const via = await runServerSuite(proxy.url);
    return { name, kind: 'server', description, direct, via, ...compare(direct, via) };
  } finally {
    await proxy?.stop();
    await upstream.stop();
  }
}

export const TARGETS = {
  'server-everything': () => serverTarget('server-everything',
    'server scenarios against `@modelcontextprotocol/server-everything` (`streamableHttp`)',
    async () => { const se = await startEverythingHttp(); return { url: se.url, stop: async () => se.stop() }; }),
  'v2-sdk-server': () => serverTarget('v2-sdk-server',
    'server scenarios against a v2 TypeScript SDK server (`@modelcontextprotocol/server`, test/fixtures/v2-server.mjs)',
    async () => { const s = await startV2Server(); return { url: s.url, stop: async () => s.close() }; }),
  'v2-sdk-client': async () => {
    const direct = await runClientScenarios({ viaProxy: false });
    const via = await runClientScenarios({ viaProxy: true });
    return {
      name: 'v2-sdk-client', kind: 'client',
      description: 'client scenarios (the suite\'s mock servers) with the v2 TypeScript SDK client (`@modelcontextprotocol/client`, test/fixtures/conformance-client.mjs)',
      direct, via, ...compare(direct, via),
    };
  },
};

const cell = (c) => (!c ? '—' : `${passes(c) ? '✅' : c.failed ? '❌' : '➖'} ${c.passed} passed / ${c.failed} failed${c.warnings ? ` / ${c.warnings} warnings` : ''}`);

/** Totals over all targets: scenarios passing directly, through, and lost. */
export function summarize(results) {
  let scenarios = 0, direct = 0, via = 0, lost = 0, gained = 0, lostChecks = 0;
  for (const r of results) {
    scenarios += r.rows.length;
    direct += r.rows.filter((x) => passes(x.direct)).length;
    via += r.rows.filter((x) => passes(x.via)).length;
    lost += r.lostScenarios.length;
    gained += r.gainedScenarios.length;
    lostChecks += r.lostChecks.length;
  }
  return { scenarios, direct, via, lost, gained, lostChecks };
}

export function renderMarkdown(results, { date = new Date().toISOString().slice(0, 10), durationS } = {}) {
  const s = summarize(results);
  const lines = [
    '# MCP conformance: directly and through thoughtgate',
    '',
    `Generated by \`npm run conformance\` (scripts/conformance.mjs) on ${date} with`,
    `[@modelcontextprotocol/conformance](https://www.npmjs.com/package/@modelcontextprotocol/conformance) ${CONFORMANCE_VERSION}`,
    `on Node ${process.version}${durationS ? ` in ${durationS} s` : ''}. Each target runs the suite twice: once against the peer`,
    'itself (**direct**) and once through `thoughtgate serve` with a forward-all config in front of it',
    '(**through thoughtgate**). Counts are the suite\'s own checks per scenario; ✅ the scenario passes',
    '(no failing check), ❌ it has failing checks. A scenario that fails directly is the peer\'s own gap',
    '(a tool or feature it does not implement) and is expected to fail through the proxy too.',
    '',
    'Reproduce: `npm install && npm run build && npm run conformance` (exits non-zero, naming them,',
    'when a scenario or check that passes directly fails through thoughtgate; `npm test` runs the same',
    'comparison in test/conformance.test.mjs).',
    '',
    `**Summary:** ${s.scenarios} scenario runs over ${results.length} targets; ${s.direct} pass directly, ${s.via} pass through thoughtgate;`,
    `${s.lost} scenario${s.lost === 1 ? '' : 's'} and ${s.lostChecks} check${s.lostChecks === 1 ? '' : 's'} passing directly fail through thoughtgate;`,
    `${s.gained} fail${s.gained === 1 ? 's' : ''} directly and pass through it${s.gained ? ` (${results.flatMap((r) => r.gainedScenarios.map((x) => `${r.name}: ${x}`)).join(', ')})` : ''}.`,
    '',
  ];
  for (const r of results) {
    const d = r.rows.filter((x) => passes(x.direct)).length;
    const v = r.rows.filter((x) => passes(x.via)).length;
    lines.push(`## ${r.name}`, '', `${r.description}: ${d}/${r.rows.length} scenarios pass directly, ${v}/${r.rows.length} through thoughtgate.`, '');
    lines.push('| scenario | direct | through thoughtgate |', '|---|---|---|');
    for (const x of r.rows) lines.push(`| ${x.scenario} | ${cell(x.direct)} | ${cell(x.via)} |`);
    lines.push('');
    if (r.lostScenarios.length || r.lostChecks.length) {
      lines.push(`**Lost through thoughtgate:** ${[...r.lostScenarios, ...r.lostChecks].join(', ')}`, '');
    }
  }
  lines.push(`Timing checks (${[...TIMED_CHECKS].join(', ')}) are shown but not counted as lost when they miss through`,
    'thoughtgate: they measure the suite\'s own time tolerances, which a loaded machine can miss either way.', '');
  if (results.some((r) => r.name === 'v2-sdk-client')) {
    lines.push('Client scenarios not run: the `auth/*` ones, which test an OAuth client implementation against',
      'the suite\'s authorization server (thoughtgate forwards `Authorization` unchanged and is not part of that flow).', '');
  }
  return lines.join('\n');
}
