// wrk (C, epoll) does not saturate itself the way autocannon does, so its ratios are the honest
// ones. Optional: Debian's `apt-get install -y wrk`; suites skip with a note when it is absent.
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './servers.mjs';
import { track } from './procs.mjs';
import { nextVaryBase } from './mcp.mjs';

let found;
export function wrkPath() {
  if (found === undefined) {
    const r = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' });
    found = r.status === 0 ? r.stdout.trim() : null;
  }
  return found;
}

/**
 * Runs wrk with one thread (the box has two cores; the proxy and fixture need the rest).
 * A target with `varyMark` gets a fresh value in its place per request (one thread: one counter).
 */
export function runWrk({ url, headers, body, uniqueIds, varyMark }, { connections, durationS, threads = 1 }) {
  if (varyMark && threads !== 1) throw new Error('runWrk: varyMark needs threads = 1 (one counter)');
  const env = {
    ...process.env,
    WRK_BODY: body,
    WRK_HEADERS: Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n'),
    WRK_UNIQUE_IDS: uniqueIds ? '1' : '0',
    WRK_VARY_MARK: varyMark ? String(varyMark) : '',
    WRK_VARY_START: varyMark ? String(nextVaryBase()) : '',
  };
  const args = [`-t${threads}`, `-c${connections}`, `-d${Math.max(1, Math.round(durationS))}s`, '--timeout', '10s', '-s', join(ROOT, 'bench', 'wrk-post.lua'), url];
  return new Promise((resolve, reject) => {
    track(execFile(wrkPath(), args, { env, timeout: (durationS + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk failed: ${err.message} ${stderr}`));
      const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
      if (!line) return reject(new Error(`wrk printed no result: ${stdout.slice(-500)}`));
      const j = JSON.parse(line.slice(9));
      const out = {
        rps: j.requests / (j.duration_us / 1e6),
        p50Ms: j.p50_us / 1000,
        p99Ms: j.p99_us / 1000,
        maxMs: j.max_us / 1000,
        requests: j.requests,
        durationS: j.duration_us / 1e6,
        errors: j.connect + j.read + j.write + j.timeout,
        non2xx: j.status, // wrk counts status > 399
      };
      if (j.status > 0) out.error = `${j.status} answers with status >= 400`;
      else if (!(out.rps > 0)) out.error = 'no answers';
      resolve(out);
    }));
  });
}
