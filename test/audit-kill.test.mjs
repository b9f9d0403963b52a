// kill -9 under steady load (issue 14, item 7b). Strict durability promises that no answered
// call loses its audit line, whatever kills the process; buffered promises (README, "Loss
// window") only that a crash loses the tail — the last batch — never a line from the middle, and
// that the file stays readable line by line (at most one torn last line), and that SIGTERM
// flushes everything. Each call carries a unique tool name, which its audit line names ("tool").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { startProxy, startRecordingUpstream, sourceYaml, sleep } from './helpers.mjs';

const H = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
const TOTAL = 400;
const CONCURRENCY = 8;

/**
 * Bounded steady load: CONCURRENCY workers send tools/call `load_<n>` until TOTAL are sent or the
 * proxy is gone. `onAnswered(count)` runs after each answer (the test kills the proxy from it).
 * Returns every call's send order and whether (and in what order) its answer was seen.
 */
async function drive(p, tag, onAnswered, endsLoad = () => false) {
  const calls = [];
  let next = 0;
  let answered = 0;
  let seq = 0; // one clock for sends and answers: happens-before without wall time
  let stop = false;
  const worker = async () => {
    while (!stop && next < TOTAL) {
      const n = next++;
      const c = { name: `${tag}_${n}`, sentAt: seq++, answeredAt: undefined };
      calls.push(c);
      try {
        const r = await fetch(p.url, {
          method: 'POST', headers: H, signal: AbortSignal.timeout(20000),
          body: JSON.stringify({ jsonrpc: '2.0', id: n + 1, method: 'tools/call', params: { name: c.name, arguments: { marker: c.name } } }),
        });
        const body = await r.json();
        if (body?.id === n + 1 && body.result?.content?.[0]?.text === `ran ${c.name}`) {
          c.answeredAt = seq++;
          answered++;
          onAnswered(answered);
        } else if (body?.error && endsLoad(body.error)) {
          stop = true; // a clean refusal the test expects (a draining proxy): the load ends
        } else {
          throw new Error(`call ${c.name} got no proper answer while the proxy ran: ${JSON.stringify(body)}`);
        }
      } catch (e) {
        if (/no proper answer/.test(e.message)) throw e;
        stop = true; // the proxy is gone: this call's answer was never seen
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return calls;
}

/** The trail as kill -9 left it: complete lines parsed, and the torn tail (if any) separately. */
function readTrail(path) {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const parts = text.split('\n');
  const torn = parts.pop(); // '' when the file ends with a newline
  const lines = parts.map((l, i) => {
    try { return JSON.parse(l); } catch { throw new Error(`audit line ${i + 1} is not JSON: ${l.slice(0, 200)}`); }
  });
  return { lines, torn };
}

async function killUnderLoad(durability, tag) {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_AUDIT_DURABILITY: durability } });
  let killed = false;
  try {
    const calls = await drive(p, tag, (n) => {
      if (n === Math.floor(TOTAL / 2) && !killed) {
        killed = true;
        p.proc.kill('SIGKILL');
      }
    });
    const exit = await p.exited;
    assert.equal(exit.signal, 'SIGKILL', 'the proxy died of the kill, mid-load');
    const answered = calls.filter((c) => c.answeredAt !== undefined);
    assert.ok(answered.length >= TOTAL / 2, `${answered.length} calls answered before the kill`);
    return { calls, answered, trail: readTrail(p.auditPath) };
  } finally {
    if (!killed) await p.stop();
    up.close();
  }
}

test('strict: kill -9 mid-load loses no answered call\'s audit line', async () => {
  const { calls, answered, trail } = await killUnderLoad('strict', 'strict');
  assert.ok(trail.torn === '' || answered.every((c) => !trail.torn.includes(`"${c.name}"`)), 'an answered call\'s line is torn');
  const onDisk = new Set(trail.lines.filter((l) => l.method === 'tools/call').map((l) => l.tool));
  const missing = answered.filter((c) => !onDisk.has(c.name)).map((c) => c.name);
  assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered calls have no audit line after kill -9`);
  for (const l of trail.lines.filter((x) => x.method === 'tools/call')) {
    assert.equal(l.decision, 'forward', JSON.stringify(l));
    assert.ok(typeof l.correlation_id === 'string' && l.correlation_id.length > 0, 'each line names its correlation id');
  }
  // the trail holds no call that was never sent (lines come from real decisions only)
  const sent = new Set(calls.map((c) => c.name));
  for (const name of onDisk) assert.ok(sent.has(name), `audit line for a call never sent: ${name}`);
});

test('buffered: kill -9 mid-load leaves a readable trail (at most one torn last line) whose loss is only the tail', async () => {
  const { answered, trail } = await killUnderLoad('buffered', 'buffered');
  // readTrail already failed the test if any complete line is not JSON; the torn remainder, if
  // any, is one partial line without a newline, which a line reader drops.
  assert.ok(!trail.torn.includes('\n'));
  const onDisk = new Set(trail.lines.filter((l) => l.method === 'tools/call').map((l) => l.tool));
  // Lines are written in decision order, so what a crash loses is a suffix: if call m's line is on
  // disk, every call answered before m was even sent (so decided before m) is on disk too.
  const holes = [];
  for (const m of answered) {
    if (!onDisk.has(m.name)) continue;
    for (const x of answered) if (x.answeredAt < m.sentAt && !onDisk.has(x.name)) holes.push(`${x.name} lost but the later ${m.name} kept`);
  }
  assert.deepEqual(holes.slice(0, 5), [], 'buffered mode lost a line from the middle of the trail, not the last batch');
  const lost = answered.filter((c) => !onDisk.has(c.name)).length;
  assert.ok(lost < answered.length, `the trail kept some of the ${answered.length} answered calls (lost ${lost})`);
});

test('buffered: SIGTERM mid-load flushes every answered call\'s line', async () => {
  const up = await startRecordingUpstream();
  const p = await startProxy(sourceYaml(`    url: ${up.url}`), { env: { THOUGHTGATE_AUDIT_DURABILITY: 'buffered' } });
  let stopping;
  try {
    // while it drains, new calls are refused (-32013 "shutting down"): that ends the load
    const calls = await drive(p, 'term', (n) => { if (n === 150 && !stopping) stopping = p.stop(); },
      (err) => err.code === -32013 && err.data?.details === 'shutting down');
    const exit = await stopping;
    assert.notEqual(exit.signal, 'SIGKILL', 'the drain finished without the test having to kill it');
    const trail = readTrail(p.auditPath);
    assert.equal(trail.torn, '', 'a drained trail ends with a complete line');
    const onDisk = new Set(trail.lines.map((l) => l.tool));
    const missing = calls.filter((c) => c.answeredAt !== undefined && !onDisk.has(c.name)).map((c) => c.name);
    assert.deepEqual(missing, []);
  } finally {
    if (!stopping) await p.stop();
    up.close();
    await sleep(0);
  }
});
