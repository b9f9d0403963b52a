// The Python MCP SDK for the end-to-end tests: a venv with `mcp==2.3.0`, created once and cached
// (node_modules/.cache/thoughtgate-py/mcp-<version>-py<X.Y>, or $THOUGHTGATE_PY_CACHE/…), built in
// a temporary folder and renamed into place when complete so a run that is cut off leaves nothing
// half-made. Needs python3 (≥ 3.10, what mcp requires) with the venv module;
// scripts/install-test-deps.sh installs python3-venv where Debian lacks it. Without them the
// tests skip, saying why; a failing `pip install` fails them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, freePort, sleep } from '../helpers.mjs';

export const MCP_PY_VERSION = '2.3.0';
export const PY_FIXTURES = join(ROOT, 'test', 'fixtures', 'python');

const running = new Set();
process.on('exit', () => { for (const p of running) try { p.kill('SIGKILL'); } catch {} });

function probePython() {
  const v = spawnSync('python3', ['-c', 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8', timeout: 30_000 });
  if (v.error) return { skip: `python3 is not installed (${v.error.code}); install python3 and python3-venv to run the Python SDK tests` };
  if (v.status !== 0) return { skip: `python3 cannot make venvs (${(v.stderr || '').trim().split('\n').at(-1)}); install python3-venv` };
  const version = v.stdout.trim();
  const [maj, min] = version.split('.').map(Number);
  if (maj < 3 || (maj === 3 && min < 10)) return { skip: `python3 is ${version}; mcp ${MCP_PY_VERSION} needs ≥ 3.10` };
  return { version };
}

function run(cmd, args, timeoutMs) {
  return new Promise((resolve) => {
    const out = [];
    const stdout = [];
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
    p.stdout.on('data', (d) => { out.push(d); stdout.push(d); });
    p.stderr.on('data', (d) => out.push(d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => out.push(Buffer.from(String(e))));
    p.on('close', (code) => { clearTimeout(t); resolve({ code, text: Buffer.concat(out).toString('utf8'), stdout: Buffer.concat(stdout).toString('utf8') }); });
  });
}

let cached;
/**
 * Resolves { python } (the venv's interpreter, mcp importable) or { skip } (why the tests cannot
 * run here). Throws when python3 is there but the venv cannot be built (pip failed).
 */
export function pythonMcp() {
  cached ??= (async () => {
    const probe = probePython();
    if (probe.skip) return { skip: probe.skip };
    const base = process.env.THOUGHTGATE_PY_CACHE || join(ROOT, 'node_modules', '.cache', 'thoughtgate-py');
    const dir = join(base, `mcp-${MCP_PY_VERSION}-py${probe.version}`);
    const python = join(dir, 'bin', 'python');
    const usable = () => existsSync(join(dir, '.complete')) && spawnSync(python, ['-c', 'import mcp.client, mcp.server.mcpserver'], { timeout: 60_000 }).status === 0;
    if (usable()) return { python };
    mkdirSync(base, { recursive: true });
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    try {
      const venv = await run('python3', ['-m', 'venv', tmp], 120_000);
      if (venv.code !== 0) return { skip: `python3 -m venv failed (install python3-venv): ${venv.text.slice(-400)}` };
      // --retries 1: where one configured index is unreachable and the wheels come from another
      // (a mirror, find-links), pip's default of 5 retries with backoff cost ~4 minutes here; 1 costs seconds.
      const pip = await run(join(tmp, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--retries', '1', `mcp==${MCP_PY_VERSION}`], 600_000);
      if (pip.code !== 0) throw new Error(`pip install mcp==${MCP_PY_VERSION} failed (exit ${pip.code}):\n${pip.text.slice(-2000)}`);
      writeFileSync(join(tmp, '.complete'), `mcp==${MCP_PY_VERSION}\n`);
      rmSync(dir, { recursive: true, force: true });
      try { renameSync(tmp, dir); } catch (e) { if (!usable()) throw e; } // another run got there first
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    if (!usable()) throw new Error(`the venv at ${dir} does not import mcp`);
    return { python };
  })();
  return cached;
}

/** The Python fixture server over Streamable HTTP on a fresh 127.0.0.1 port; resolves { url, stop }. */
export async function startPythonHttpServer(python, { env = {} } = {}) {
  const port = await freePort();
  const log = [];
  const proc = spawn(python, [join(PY_FIXTURES, 'server.py'), 'http', String(port)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  proc.stdout.on('data', (d) => log.push(d));
  proc.stderr.on('data', (d) => log.push(d));
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`python server exited ${proc.exitCode}: ${Buffer.concat(log).toString().slice(-1500)}`);
    try { await fetch(url, { signal: AbortSignal.timeout(1000) }); break; } catch {}
    if (i > 300) { proc.kill('SIGKILL'); throw new Error(`python server did not start: ${Buffer.concat(log).toString().slice(-1500)}`); }
    await sleep(100);
  }
  return {
    url, log: () => Buffer.concat(log).toString(),
    stop: () => new Promise((r) => { if (proc.exitCode !== null) return r(); proc.once('exit', r); proc.kill('SIGKILL'); }),
  };
}

/** Runs the Python fixture client (`client.py URL MODE [--no-extras] CALL…`); resolves its JSON, or throws with its output. */
export async function runPythonClient(python, url, mode, calls = [], { extras = true, timeoutMs = 60_000 } = {}) {
  const r = await run(python, [join(PY_FIXTURES, 'client.py'), url, mode, ...(extras ? [] : ['--no-extras']), ...calls], timeoutMs);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0) throw new Error(`python client (${mode}) exited ${r.code}:\n${r.text.slice(-3000)}`);
  try { return JSON.parse(last); } catch { throw new Error(`python client printed no JSON:\n${r.text.slice(-3000)}`); }
}
