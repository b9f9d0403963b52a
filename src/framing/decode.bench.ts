// Micro-benchmark: decodeBody against plain JSON.parse on hot-path bodies.
// Run: npx tsc -p . && node dist/framing/decode.bench.js
// Each task loops INNER times so timer overhead does not swamp sub-microsecond work.

import { Bench } from 'tinybench';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { decodeBody } from './decode.js';
import { decodeLine } from './ndjson.js';

const INNER = 1000;
const innerFor = (bytes: number): number => Math.max(1, Math.min(INNER, Math.floor(200_000 / bytes)));

const call = JSON.stringify({
  jsonrpc: '2.0',
  id: 42,
  method: 'tools/call',
  params: { name: 'search_files', arguments: { path: '/home/user/project', pattern: '*.ts', limit: 50 } },
});
const bodies: Record<string, string> = {
  [`tools/call ${Buffer.byteLength(call)}B`]: call,
  'tools/list 60B': JSON.stringify({ jsonrpc: '2.0', id: 'req-7', method: 'tools/list', params: {} }),
  'tools/call 300B escaped': JSON.stringify({
    jsonrpc: '2.0',
    id: 1001,
    method: 'tools/call',
    params: {
      name: 'write_file',
      arguments: { path: 'C:\\Users\\dev\\notes.txt', content: 'line one\nline "two"\n\tindented — ünïcödé ✓\n', mode: 'overwrite' },
      _meta: { progressToken: 'tok-1' },
    },
  }),
  // large bodies: source code (an escape per line) and the worst case, dense escapes
  'tools/call 64KB code': JSON.stringify({
    jsonrpc: '2.0',
    id: 9,
    method: 'tools/call',
    params: { name: 'write_file', arguments: { path: 'a.ts', content: '    const value = computeSomething(input, 42);\n'.repeat(1400) } },
  }),
  'tools/call 64KB dense escapes': JSON.stringify({
    jsonrpc: '2.0',
    id: 9,
    method: 'tools/call',
    params: { name: 'write_file', arguments: { path: 'a.md', content: 'Lorem ipsum dolor sit amet, "quoted"\n'.repeat(1700) } },
  }),
};

let sink: unknown;
const results: { body: string; task: string; ns: number }[] = [];

for (const [name, text] of Object.entries(bodies)) {
  const buf = Buffer.from(text);
  const inner = innerFor(buf.length);
  const bench = new Bench({ name, time: 500, warmupTime: 200 });
  bench
    .add('JSON.parse(string)', () => {
      for (let i = 0; i < inner; i++) sink = JSON.parse(text);
    })
    .add('JSON.parse(buf.toString())', () => {
      for (let i = 0; i < inner; i++) sink = JSON.parse(buf.toString('utf8'));
    })
    .add('decodeBody(buf)', () => {
      for (let i = 0; i < inner; i++) sink = decodeBody(buf, DEFAULT_LIMITS);
    })
    .add('decodeLine(buf)', () => {
      for (let i = 0; i < inner; i++) sink = decodeLine(buf, { allowBatch: false, maxDepth: DEFAULT_LIMITS.maxDepth });
    });
  await bench.run();
  for (const t of bench.tasks) {
    // the median resists the noise of a shared machine better than the mean
    const p50 = t.result?.latency?.p50;
    if (p50 !== undefined) results.push({ body: name, task: t.name, ns: (p50 * 1e6) / inner });
  }
}

for (const name of Object.keys(bodies)) {
  const rows = results.filter((r) => r.body === name);
  const base = rows.find((r) => r.task === 'JSON.parse(string)')!.ns;
  console.log(`\n${name}`);
  for (const r of rows) console.log(`  ${r.task.padEnd(28)} ${r.ns.toFixed(0).padStart(8)} ns/op   ${(r.ns / base).toFixed(2)}x`);
}
void sink;
