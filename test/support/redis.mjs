// A real, throwaway redis-server for tests: a free port, no persistence, its own temp dir.
// Without redis-server on PATH, developers get null (the caller skips, saying why); CI must
// run the real thing, so there it is an error.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const running = new Set();
// A test that crashes must not leave servers behind.
process.on('exit', () => { for (const p of running) try { p.kill('SIGKILL'); } catch {} });

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket: true when the server answers +PONG. */
function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.on('data', (d) => { text += d; if (text.includes('\r\n')) done(text.startsWith('+PONG')); });
    sock.once('connect', () => sock.write('PING\r\n'));
  });
}

/** @returns {Promise<{ url: string, port: number, stop: () => Promise<void> } | null>} */
export async function startRedis() {
  if (!onPath('redis-server')) {
    if (process.env.CI === 'true') throw new Error('redis-server is not on PATH; CI must run the Redis store tests (scripts/install-test-deps.sh installs it)');
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tg-redis-'));
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  let exitedEarly = false;
  void exited.then(() => { exitedEarly = true; running.delete(proc); });

  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  while (!(await ping(port))) {
    if (exitedEarly || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not answer PING${exitedEarly ? ' (it exited)' : ' within 15 s'}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}
