// Starts the things a benchmark talks to: the fixture upstream, our proxy and the civic peer.
// Each returns { name, url, stop } with `url` the MCP endpoint to POST to.
import { existsSync, realpathSync, writeFileSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnLogged, stopChild, freePort, waitFor, portOpen, scratchDir } from './procs.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The fixture in its own process, so it never shares an event loop with the load generator. */
export async function startFixtureProcess() {
  const { child, logPath, logTail } = spawnLogged('fixture', process.execPath, [join(ROOT, 'bench', 'fixture.mjs'), '--port', '0']);
  const url = await waitFor('fixture', () => readFileSync(logPath, 'utf8').match(/^http:\/\/\S+/m)?.[0], { child, logTail, timeoutMs: 10000 });
  return { name: 'direct', url, child, logTail, stop: () => stopChild(child) };
}

/** Our proxy is runnable once the CLI is compiled. */
export function proxyBuilt() {
  return existsSync(join(ROOT, 'dist', 'cli', 'main.js'));
}

/** `thoughtgate serve` forwarding everything to the fixture; ready when admin /ready is 200. */
export async function startProxy(upstreamUrl) {
  const cfg = join(scratchDir(), 'thoughtgate.yaml');
  writeFileSync(cfg, [
    'schema: 1',
    'sources:',
    `  - { id: bench, kind: mcp, url: "${upstreamUrl}" }`,
    'governance:',
    '  defaults: { action: forward }',
    '',
  ].join('\n'));
  const [port, adminPort] = [await freePort(), await freePort()];
  const env = {
    ...process.env,
    THOUGHTGATE_OUTBOUND_PORT: String(port),
    THOUGHTGATE_ADMIN_PORT: String(adminPort),
    THOUGHTGATE_AUDIT_PATH: join(scratchDir(), 'audit.ndjson'),
  };
  delete env.MODE; // the default mode is what we measure
  const { child, logTail } = spawnLogged('proxy', process.execPath, [join(ROOT, 'bin', 'thoughtgate.js'), 'serve', '--config', cfg], { env, cwd: scratchDir() });
  await waitFor('proxy', async () => (await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200, { child, logTail });
  return { name: 'proxy', url: `http://127.0.0.1:${port}/mcp`, child, logTail, stop: () => stopChild(child) };
}

/** @civic/passthrough-mcp-server, the TypeScript peer. It appends /mcp to TARGET_SERVER_URL. */
export async function startCivic(upstreamUrl) {
  // Its cli.js only runs when argv[1] equals its real path (node_modules may hold symlinks).
  // (Its exports only name the ESM entry dist/index.js; cli.js sits next to it.)
  const entry = fileURLToPath(import.meta.resolve('@civic/passthrough-mcp-server'));
  const cli = realpathSync(join(dirname(entry), 'cli.js'));
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), TARGET_SERVER_URL: upstreamUrl.replace(/\/mcp$/, ''), LOG_LEVEL: 'error' };
  const { child, logTail } = spawnLogged('civic', process.execPath, [cli], { env, cwd: scratchDir() });
  await waitFor('civic', () => portOpen(port), { child, logTail });
  return { name: 'civic', url: `http://127.0.0.1:${port}/mcp`, child, logTail, stop: () => stopChild(child) };
}
