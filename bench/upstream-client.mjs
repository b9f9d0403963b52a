// Upstream client bench: undici (HttpUpstream) against the lean HTTP/1.1 client (LeanHttpUpstream)
// on the proxy's hot path shape: small tools/call POSTs, a fixed number in flight, a trivial sink.
// The uWS fixture runs in a child process so that client and server do not share a JS thread
// (on a 2-core box that is the proxy's real situation: its upstream is another process).
//
// Usage: npm run build && node bench/upstream-client.mjs [--seconds 10] [--rounds 2]
//          [--inflight 50] [--connections 64] [--warmup 1]
// Rounds alternate the order (undici, lean | lean, undici) so drift does not favour one client.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist', 'upstream');
const { HttpUpstream } = await import(join(dist, 'http.js'));
const { LeanHttpUpstream } = await import(join(dist, 'h1', 'client.js'));

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const SECONDS = arg('seconds', 10);
const ROUNDS = arg('rounds', 2);
const INFLIGHT = arg('inflight', 50);
const CONNECTIONS = arg('connections', 64);
const WARMUP = arg('warmup', 1);

async function startFixtureChild() {
  const child = spawn(process.execPath, [join(here, 'fixture.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  process.on('exit', () => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8');
  for await (const chunk of child.stdout) {
    out += chunk;
    const nl = out.indexOf('\n');
    if (nl >= 0) return { child, url: out.slice(0, nl).trim() };
  }
  throw new Error('fixture exited before printing its URL');
}

const BODY = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } }));
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

/** Closed loop: `inflight` workers, each sending its next request when the last one ended. */
function drive(upstream, seconds) {
  return new Promise((resolve, reject) => {
    let done = 0;
    let errors = 0;
    let bytes = 0;
    let latencySum = 0;
    let stopping = false;
    let active = 0;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const deadline = start + seconds * 1000;
    const req = { method: 'POST', path: '/mcp', headers: HEADERS, body: BODY, correlationId: 'bench' };
    const fire = () => {
      active++;
      const t0 = performance.now();
      const sink = {
        onHead() {},
        onData(chunk) { bytes += chunk.length; return true; },
        onEnd() { finish(true, t0); },
        onError(err) { if (errors++ < 3) console.error('error:', err.kind, err.details); finish(false, t0); },
      };
      upstream.send(req, sink);
    };
    const finish = (ok, t0) => {
      active--;
      const now = performance.now();
      if (ok) { done++; latencySum += now - t0; }
      if (now < deadline && !stopping) {
        if (errors > 1000) { stopping = true; reject(new Error('too many errors')); return; }
        fire();
      } else if (active === 0) {
        const elapsed = (performance.now() - start) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const cpuUs = (cpu.user + cpu.system) / Math.max(1, done);
        resolve({ rps: done / elapsed, errors, meanMs: latencySum / Math.max(1, done), bytes, cpuUs, userUs: cpu.user / Math.max(1, done) });
      }
    };
    for (let i = 0; i < INFLIGHT; i++) fire();
  });
}

const CLIENTS = {
  undici: (url) => new HttpUpstream({ url, requestTimeoutMs: 30_000, streamReadTimeoutMs: 30_000, connections: CONNECTIONS }),
  lean: (url) => new LeanHttpUpstream({ url, requestTimeoutMs: 30_000, streamReadTimeoutMs: 30_000, connections: CONNECTIONS }),
};

const { child, url } = await startFixtureChild();
console.log(`fixture ${url} (child pid ${child.pid}); ${SECONDS}s per run, ${ROUNDS} rounds, ${INFLIGHT} in flight, ${CONNECTIONS} sockets, node ${process.version}`);
const results = { undici: [], lean: [] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['undici', 'lean'] : ['lean', 'undici'];
    for (const name of order) {
      const upstream = CLIENTS[name](url);
      if (WARMUP > 0) await drive(upstream, WARMUP);
      const r = await drive(upstream, SECONDS);
      await upstream.close();
      results[name].push(r);
      console.log(`round ${round + 1} ${name.padEnd(6)} ${Math.round(r.rps).toString().padStart(7)} req/s  mean ${r.meanMs.toFixed(3)} ms  client CPU ${r.cpuUs.toFixed(1)} µs/req (user ${r.userUs.toFixed(1)})  errors ${r.errors}`);
    }
  }
} finally {
  child.kill('SIGTERM');
  await once(child, 'exit').catch(() => {});
}
const mean = (xs) => xs.reduce((a, r) => a + r.rps, 0) / xs.length;
const u = mean(results.undici);
const l = mean(results.lean);
const perRound = results.lean.map((r, i) => (r.rps / results.undici[i].rps).toFixed(2)).join(', ');
const cpu = (xs) => xs.reduce((a, r) => a + r.cpuUs, 0) / xs.length;
console.log(`\nundici ${Math.round(u)} req/s, lean ${Math.round(l)} req/s: lean/undici = ${(l / u).toFixed(2)}x (per round: ${perRound})`);
console.log(`client CPU per request: undici ${cpu(results.undici).toFixed(1)} µs, lean ${cpu(results.lean).toFixed(1)} µs: undici/lean = ${(cpu(results.undici) / cpu(results.lean)).toFixed(2)}x`);
