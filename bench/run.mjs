#!/usr/bin/env node
// One command for the benchmarks: starts the fixture upstream, our proxy and the civic peer,
// runs the suites, prints markdown tables, writes bench/results/latest.json and judges the
// numbers against bench/targets.json. Progress goes to stderr, the report to stdout.
//
//   node bench/run.mjs                 full run; exit 1 when a target is missed
//   node bench/run.mjs --smoke         every suite, tiny (~40 s); exit 1 only when a suite failed
//                                      to run or left one of its figures without a number
//   --duration S    seconds per load run (default 5; smoke 1)
//   --reps N        interleaved rounds per target (default 3; smoke 1)
//   --only A,B      suites to run: toolscall, latency, wrk, rules, sse, big, batch, startup,
//                   cedar, cedar-proxy
//   --target URL    load-test a running deployment (its MCP endpoint) instead; nothing is started
//                   (the suites that need the local fixture or start processes are skipped)
//   --probe-requests N   requests per target in the latency probe (default 10000; smoke 200)
//   --tool NAME, --args JSON, --header "k: v"   the call sent to --target (default: echo {text:"hi"})
import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { installCleanup, removeScratch, scratchDir } from './lib/procs.mjs';
import { ROOT, startFixtureProcess, startProxy, startCivic, proxyBuilt } from './lib/servers.mjs';
import { openSession } from './lib/mcp.mjs';
import { warmUp } from './lib/load.mjs';
import { histogram } from './lib/probe.mjs';
import { evaluateTargets, targetsTable, mdTable } from './lib/report.mjs';
import { fmt } from './lib/stats.mjs';
import toolscall from './suites/toolscall.mjs';
import latency from './suites/latency.mjs';
import wrk from './suites/wrk.mjs';
import rules from './suites/rules.mjs';
import sse from './suites/sse.mjs';
import big from './suites/big.mjs';
import batch from './suites/batch.mjs';
import startup from './suites/startup.mjs';
import cedar from './suites/cedar.mjs';
import cedarProxy from './suites/cedar-proxy.mjs';

const SUITES = [toolscall, latency, wrk, rules, sse, big, batch, startup, cedar, cedarProxy];
const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      duration: { type: 'string' },
      reps: { type: 'string' },
      only: { type: 'string' },
      target: { type: 'string' },
      tool: { type: 'string', default: 'echo' },
      args: { type: 'string', default: '{"text":"hi"}' },
      header: { type: 'string', multiple: true, default: [] },
      'probe-requests': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    // The help is this file's header comment.
    const lines = readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1);
    const header = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
    process.stdout.write(header.map((l) => l.slice(3)).join('\n') + '\n');
    process.exit(0);
  }
  const num = (v, dflt) => (v === undefined ? dflt : Number(v));
  const opts = {
    smoke: values.smoke,
    durationS: num(values.duration, values.smoke ? 1 : 5),
    reps: num(values.reps, values.smoke ? 1 : 3),
    probeRequests: num(values['probe-requests'], values.smoke ? 200 : 10000),
    target: values.target,
    tool: values.tool,
    args: JSON.parse(values.args),
    headers: Object.fromEntries(values.header.map((h) => { const i = h.indexOf(':'); return [h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()]; })),
  };
  for (const k of ['durationS', 'reps', 'probeRequests']) if (!(opts[k] > 0)) throw new Error(`bad --${k}: ${opts[k]}`);
  const names = values.only ? values.only.split(',').map((s) => s.trim()) : SUITES.map((s) => s.name);
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown suite ${unknown.join(', ')} (known: ${SUITES.map((s) => s.name).join(', ')})`);
  opts.suites = SUITES.filter((s) => names.includes(s.name));
  return opts;
}

/**
 * Starts what the suites talk to and opens an MCP session on each. Returns the ready targets
 * plus the ones that could not be measured: `skipped` (by design, e.g. proxy not built yet)
 * or `failed` (it should have worked).
 */
async function setUpTargets(opts) {
  const ready = [];
  const skipped = {};
  const failed = {};
  const session = { tool: opts.tool, args: opts.args, extraHeaders: opts.headers };

  if (opts.target) {
    // Unknown servers may match answers by id (as SDK-based ones do): give each request its own.
    ready.push({ name: 'target', url: opts.target, uniqueIds: true, ...(await openSession(opts.target, session)) });
    return { ready, skipped, failed };
  }

  const fixture = await startFixtureProcess();
  log(`fixture at ${fixture.url}`);
  // Every target gets a fresh JSON-RPC id per request: MCP forbids reusing a request id within
  // a session, so that is the only valid workload (civic's SDK loses answers to equal ids in
  // flight; a proxy that tracks requests by id could not be measured on anything else). It costs
  // the generators per request (autocannon rebuilds each request), equally for every target.
  const starters = [
    ['direct', async () => fixture, true],
    ['proxy', async () => (proxyBuilt() ? startProxy(fixture.url) : null), true],
    ['civic', () => startCivic(fixture.url), true],
  ];
  for (const [name, start, uniqueIds] of starters) {
    try {
      const server = await start();
      if (!server) { skipped[name] = 'proxy not built (dist/cli/main.js missing): run npm run build'; continue; }
      const s = await openSession(server.url, session);
      // The fixture answers "ok" to echo: anything else means the call did not reach it intact.
      if (opts.tool === 'echo' && s.sample.result?.content?.[0]?.text !== 'ok') throw new Error(`unexpected answer: ${JSON.stringify(s.sample).slice(0, 300)}`);
      ready.push({ name, url: server.url, uniqueIds, ...s, server });
      log(`${name} ready at ${server.url}`);
    } catch (e) {
      failed[name] = e.message;
      log(`${name} failed to start: ${e.message}`);
    }
  }
  return { ready, skipped, failed };
}

/** Collects every `error` string inside a suite result (a target that failed mid-run). */
function errorsIn(value, path = '', out = []) {
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'error' && typeof v === 'string') out.push(`${path || '.'}: ${v}`);
      else errorsIn(v, path ? `${path}.${k}` : k, out);
    }
  }
  return out;
}

async function runSuites(opts, targets) {
  const results = {};
  for (const suite of opts.suites) {
    const why = suite.skipReason?.(opts);
    if (why) { results[suite.name] = { status: 'skipped', reason: why }; log(`${suite.name}: skipped, ${why}`); continue; }
    const started = Date.now();
    try {
      const result = await suite.run({ targets, opts, log });
      const errors = errorsIn(result);
      // A suite that ran must have produced its figures: a missing one is a failure, not a blank cell.
      const numbers = errors.length ? undefined : suite.numbers?.(result);
      for (const [what, v] of Object.entries(numbers ?? {})) if (!Number.isFinite(v)) errors.push(`no number for ${what}`);
      results[suite.name] = { status: errors.length ? 'failed' : 'ok', errors, numbers, result, seconds: (Date.now() - started) / 1000 };
    } catch (e) {
      results[suite.name] = { status: 'failed', errors: [e.stack ?? e.message] };
      log(`${suite.name} failed: ${e.stack ?? e.message}`);
    }
  }
  return results;
}

function histogramTable(latencyResult) {
  const sorted = latencyResult?.targets?.target?.sortedSamples;
  if (!sorted?.length) return '';
  const rows = histogram(sorted).map((b) => [
    `${fmt(b.from)}–${Number.isFinite(b.to) ? fmt(b.to) : '∞'} µs`, fmt(b.count), `${fmt(b.share * 100, 1)}%`, '█'.repeat(Math.max(1, Math.round(b.share * 40))),
  ]);
  return mdTable(['latency', 'requests', 'share', ''], rows);
}

function report(opts, setup, results, verdicts) {
  const out = [];
  const where = opts.target ? `target ${opts.target}` : 'fixture (direct), thoughtgate (proxy), civic passthrough (civic)';
  out.push(`# thoughtgate bench${opts.smoke ? ' (smoke)' : ''}`, '',
    `${new Date().toISOString()} · node ${process.version} · ${os.cpus().length} CPUs · load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} · ` +
    `${opts.durationS} s per run · ${opts.reps} interleaved round(s) · ${where}`, '');
  for (const [name, why] of Object.entries(setup.skipped)) out.push(`> ${name} skipped: ${why}`);
  for (const [name, why] of Object.entries(setup.failed)) out.push(`> ${name} FAILED to start: ${why.slice(0, 400)}`);
  if (Object.keys(setup.skipped).length || Object.keys(setup.failed).length) out.push('');
  for (const suite of opts.suites) {
    const r = results[suite.name];
    out.push(`## ${suite.title}`, '');
    if (r.status === 'skipped') out.push(`skipped: ${r.reason}`);
    else if (!r.result) out.push(`FAILED: ${r.errors.join('; ').slice(0, 600)}`);
    else {
      out.push(suite.table(r.result));
      if (r.status === 'failed') out.push('', `FAILED: ${r.errors.join('; ').slice(0, 600)}`);
    }
    if (suite.name === 'latency' && opts.target && r.result) out.push('', histogramTable(r.result));
    out.push('');
  }
  if (verdicts) {
    out.push('## Targets (bench/targets.json)', '', verdicts.length ? targetsTable(verdicts) : 'no target measured by the selected suites', '');
    out.push('Throughput targets are judged on autocannon (issue 5), which spends ~4× wrk\'s CPU per request and so saturates first: its ratios read higher. '
      + 'wrk\'s ratios are shown as context. Every target is sent a fresh JSON-RPC id per request (MCP forbids reusing one in a session).', '');
  }
  return out.join('\n');
}

function writeResults(payload) {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'latest.json');
  // Raw latency samples stay in memory (histograms); the file keeps the summaries.
  writeFileSync(file, JSON.stringify(payload, (k, v) => (k === 'sortedSamples' || k === 'server' || k === 'sample' ? undefined : v), 2) + '\n');
  return file;
}

async function main() {
  const opts = options();
  installCleanup();
  const setup = await setUpTargets(opts);
  if (!setup.ready.length) throw new Error('no target could be started');

  // One short warm-up per target so JIT and connection pools are not part of the first suite.
  for (const t of setup.ready) {
    await warmUp(t, { connections: 10, requests: opts.smoke ? 500 : 3000 }).catch((e) => log(`${t.name} warm-up: ${e.message}`));
  }
  const results = await runSuites(opts, setup.ready);

  const targets = JSON.parse(readFileSync(join(ROOT, 'bench', 'targets.json'), 'utf8'));
  const verdicts = opts.target ? null : evaluateTargets(targets, results);
  process.stdout.write(report(opts, setup, results, verdicts) + '\n');

  const suiteFailed = Object.values(results).some((r) => r.status === 'failed') || Object.keys(setup.failed).length > 0;
  const missed = verdicts?.some((v) => !v.met && !v.context) ?? false;
  const file = writeResults({
    when: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    loadavg: os.loadavg(),
    options: { ...opts, suites: opts.suites.map((s) => s.name) },
    targets: setup.ready.map((t) => ({ name: t.name, url: t.url })),
    skipped: setup.skipped,
    failedToStart: setup.failed,
    suites: results,
    verdicts,
    suiteFailed,
    missed,
  });
  log(`wrote ${file}`);

  for (const t of setup.ready) await t.server?.stop?.();
  // Logs of a failed run stay for a post-mortem; otherwise the audit file would pile up in /tmp.
  if (suiteFailed) { log(`logs kept in ${scratchDir()}`); return 1; }
  removeScratch();
  // Smoke and --target only check that the harness ran; a full run also answers to the targets.
  if (!opts.smoke && missed) return 1;
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  log(`error: ${e.stack ?? e.message}`);
  if (readdirSync(scratchDir()).some((f) => f.endsWith('.log'))) log(`logs kept in ${scratchDir()}`);
  else removeScratch();
  process.exit(1);
});
