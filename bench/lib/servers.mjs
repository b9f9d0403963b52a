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

/**
 * Writes a `thoughtgate serve` config forwarding to `upstreamUrl` and returns its path.
 * `rules` become governance.rules (each `{ match, action }`); `blocklist` an expose blocklist;
 * `defaultAction` governance.defaults.action; `cedarPolicies` (absolute paths) a `cedar:` section.
 */
export function writeProxyConfig(upstreamUrl, { name = 'proxy', rules = [], blocklist = [], defaultAction = 'forward', cedarPolicies = [] } = {}) {
  const cfg = join(scratchDir(), `${name}.yaml`);
  const q = (s) => JSON.stringify(s);
  const source = blocklist.length
    ? [`  - id: bench`, `    kind: mcp`, `    url: ${q(upstreamUrl)}`, `    expose:`, `      mode: blocklist`, `      tools: [${blocklist.map(q).join(', ')}]`]
    : [`  - { id: bench, kind: mcp, url: ${q(upstreamUrl)} }`];
  writeFileSync(cfg, [
    'schema: 1',
    'sources:',
    ...source,
    'governance:',
    `  defaults: { action: ${defaultAction} }`,
    ...(rules.length ? ['  rules:', ...rules.map((r) => `    - { match: ${q(r.match)}, action: ${r.action} }`)] : []),
    ...(cedarPolicies.length ? ['cedar:', `  policies: [${cedarPolicies.map(q).join(', ')}]`] : []),
    '',
  ].join('\n'));
  return cfg;
}

/** Spawns `thoughtgate serve --config cfg` on fresh ports (not waiting for it); `extraEnv` e.g. THOUGHTGATE_CEDAR_*. */
export async function spawnProxy(cfg, name = 'proxy', ports, extraEnv = {}) {
  const [port, adminPort] = ports ?? [await freePort(), await freePort()];
  const env = {
    ...process.env,
    ...extraEnv,
    THOUGHTGATE_OUTBOUND_PORT: String(port),
    THOUGHTGATE_ADMIN_PORT: String(adminPort),
    THOUGHTGATE_AUDIT_PATH: join(scratchDir(), `${name}-audit.ndjson`),
  };
  delete env.MODE; // the default mode is what we measure
  const { child, logTail } = spawnLogged(name, process.execPath, [join(ROOT, 'bin', 'thoughtgate.js'), 'serve', '--config', cfg], { env, cwd: scratchDir() });
  return { port, adminPort, child, logTail };
}

/**
 * `thoughtgate serve` forwarding to the fixture (config as writeProxyConfig; `env` added to the
 * proxy's environment); ready when admin /ready is 200. `metricsUrl` is its admin /metrics.
 */
export async function startProxy(upstreamUrl, { name = 'proxy', rules, blocklist, defaultAction, cedarPolicies, env } = {}) {
  const cfg = writeProxyConfig(upstreamUrl, { name, rules, blocklist, defaultAction, cedarPolicies });
  const { port, adminPort, child, logTail } = await spawnProxy(cfg, name, undefined, env);
  await waitFor(name, async () => (await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200, { child, logTail });
  return { name, url: `http://127.0.0.1:${port}/mcp`, metricsUrl: `http://127.0.0.1:${adminPort}/metrics`, child, logTail, stop: () => stopChild(child) };
}

/** The civic peer's CLI. Its cli.js only runs when argv[1] equals its real path (node_modules may hold symlinks). */
export function civicCli() {
  // (Its exports only name the ESM entry dist/index.js; cli.js sits next to it.)
  const entry = fileURLToPath(import.meta.resolve('@civic/passthrough-mcp-server'));
  return realpathSync(join(dirname(entry), 'cli.js'));
}

/** Spawns civic on `port` relaying to `upstreamUrl` (not waiting for it). It appends /mcp itself. */
export function spawnCivic(upstreamUrl, port, name = 'civic') {
  const env = { ...process.env, PORT: String(port), TARGET_SERVER_URL: upstreamUrl.replace(/\/mcp$/, ''), LOG_LEVEL: 'error' };
  return spawnLogged(name, process.execPath, [civicCli()], { env, cwd: scratchDir() });
}

/** @civic/passthrough-mcp-server, the TypeScript peer. */
export async function startCivic(upstreamUrl) {
  const port = await freePort();
  const { child, logTail } = spawnCivic(upstreamUrl, port);
  await waitFor('civic', () => portOpen(port), { child, logTail });
  return { name: 'civic', url: `http://127.0.0.1:${port}/mcp`, child, logTail, stop: () => stopChild(child) };
}
