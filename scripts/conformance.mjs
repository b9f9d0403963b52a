#!/usr/bin/env node
// `npm run conformance`: the MCP conformance suite against each target directly and through
// thoughtgate (see test/support/conformance.mjs), the table written to docs/conformance.md.
// Exits 1, naming them, when a scenario or check that passes directly fails through the proxy.
//
//   node scripts/conformance.mjs [--out FILE] [--target NAME]...   (targets: server-everything,
//                                                                   v2-sdk-server, v2-sdk-client)
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ROOT } from '../test/helpers.mjs';
import { TARGETS, renderMarkdown, summarize, passes } from '../test/support/conformance.mjs';

const argv = process.argv.slice(2);
let out = join(ROOT, 'docs', 'conformance.md');
const chosen = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--out') out = resolve(argv[++i]);
  else if (argv[i] === '--target') chosen.push(argv[++i]);
  else { console.error(`unknown argument ${argv[i]}\nusage: node scripts/conformance.mjs [--out FILE] [--target ${Object.keys(TARGETS).join('|')}]...`); process.exit(2); }
}
for (const t of chosen) if (!TARGETS[t]) { console.error(`unknown target ${t} (${Object.keys(TARGETS).join(', ')})`); process.exit(2); }
if (!existsSync(join(ROOT, 'dist', 'main.js'))) { console.error('dist/ is missing: run `npm run build` first'); process.exit(2); }

const t0 = Date.now();
const results = [];
for (const name of chosen.length ? chosen : Object.keys(TARGETS)) {
  process.stderr.write(`conformance: ${name} … `);
  const r = await TARGETS[name]();
  results.push(r);
  const n = r.rows.length;
  process.stderr.write(`${r.rows.filter((x) => passes(x.direct)).length}/${n} direct, ${r.rows.filter((x) => passes(x.via)).length}/${n} through thoughtgate\n`);
  if (r.direct.scenarios.size === 0 || r.via.scenarios.size === 0) {
    console.error(`conformance: ${name} produced no results; suite output:\n${(r.direct.scenarios.size ? r.via : r.direct).text.slice(-2000)}`);
    process.exitCode = 1;
  }
}
const durationS = Math.round((Date.now() - t0) / 1000);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, renderMarkdown(results, { durationS }));

const s = summarize(results);
console.log(`conformance ${s.scenarios} scenario runs: ${s.direct} pass directly, ${s.via} through thoughtgate, ${s.lost} lost, ${s.lostChecks} checks lost (${durationS} s) → ${out}`);
const lost = results.flatMap((r) => [...r.lostScenarios.map((x) => `${r.name}: scenario ${x}`), ...r.lostChecks.map((x) => `${r.name}: check ${x}`)]);
if (lost.length) {
  console.error(`passing directly, failing through thoughtgate:\n  ${lost.join('\n  ')}`);
  process.exitCode = 1;
}
