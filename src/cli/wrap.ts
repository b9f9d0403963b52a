// `thoughtgate wrap -- <agent>`: find the agent's MCP configs, start the governance service,
// rewrite every server entry to run through `thoughtgate shim` (backup + marker first), run
// the agent with the terminal handed over, and put every file back when it exits — also on
// SIGINT/SIGTERM/SIGHUP and, after a crash or kill -9, at the next `wrap` or `thoughtgate restore`.
// `thoughtgate restore` does just the last part.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { constants as osConstants, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveSettings } from './settings.js';
import { ENV_ACTIVE } from '../wrap/protocol.js';
import { AGENT_TYPES as AGENTS, detectAgent, discoverConfigs, type AgentType, type ConfigTarget } from '../wrap/agents.js';
import { planRewrite, type RewritePlan } from '../wrap/rewrite.js';
import { acquireLock, findStale, restore, writeBackup, type Lock } from '../wrap/backup.js';
import { dryRunDiff } from '../wrap/dry-run.js';
import { withoutOurs } from '../upstream/child-env.js';
import { ensurePrivateDir } from '../core/durable-fs.js';

/**
 * THOUGHTGATE_* settings the agent keeps: the shims it launches read them (limits, log level).
 * Everything else of ours (an admin or API token in the user's shell, the log file wrap set)
 * stays out of the agent: it is governed, and the admin token would let it approve its own calls.
 */
export const AGENT_KEEPS = ['THOUGHTGATE_LOG_LEVEL', 'THOUGHTGATE_MAX_LINE_BYTES', 'THOUGHTGATE_MAX_JSON_DEPTH'] as const;

/** The agent's environment: ours minus our settings and secrets, plus the wrapped marker. */
export function agentEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return { ...withoutOurs(env, AGENT_KEEPS), [ENV_ACTIVE]: '1' };
}


export const WRAP_HELP = `Usage: thoughtgate wrap [options] -- <agent command…>

Runs the agent with every MCP server it launches behind governance, and restores its config
files byte for byte when it exits.

Options:
  --agent-type TYPE          ${AGENTS.join(', ')} (default: from the command)
  --config-path PATH         the agent's MCP config file (default: discovered)
  --profile NAME             production (block) or development (log WOULD_BLOCK, forward)
  --thoughtgate-config PATH  governance config (default ./thoughtgate.yaml)
  --governance-port N        port of the governance service (default 0: ephemeral)
  --no-restore               leave the rewritten config in place at exit
  --dry-run                  print the diff of what would change, write nothing
  --verbose                  debug logging
`;

export const RESTORE_HELP = `Usage: thoughtgate restore [--agent-type TYPE] [--config-path PATH]

Puts back agent configs a wrap left rewritten (it crashed or was killed).
`;

/** What a person reads: on stderr, never in the agent's stdio stream. */
const say = (msg: string): void => void process.stderr.write(`thoughtgate: ${msg}\n`);

function targetsFor(agent: AgentType, configPath: string | undefined): ConfigTarget[] {
  return discoverConfigs(agent, { cwd: process.cwd(), home: homedir(), env: process.env, platform: process.platform, configPath: configPath === undefined ? undefined : resolve(configPath) });
}

/** Puts each file back from its backup, saying so (with `note`); returns how many were restored. */
function restoreEach(paths: string[], note: string): number {
  let restored = 0;
  for (const path of paths) {
    const r = restore(path);
    for (const w of r.warnings) say(`warning: ${w}`);
    if (r.restored) {
      restored++;
      say(`restored ${path}${note}${r.userEdited ? ' (your edits of other settings were kept)' : ''}`);
    }
  }
  return restored;
}

/** A marker left by a wrap that died: put the file back first, and say so. */
function restoreStale(targets: ConfigTarget[]): void {
  restoreEach(targets.map((t) => t.path).filter(findStale), ' (left rewritten by a wrap that did not finish)');
}

export async function restoreCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'agent-type': { type: 'string' }, 'config-path': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write(RESTORE_HELP);
    return 0;
  }
  const agent = (values['agent-type'] ?? 'custom') as AgentType;
  if (!AGENTS.includes(agent)) throw new Error(`--agent-type must be one of ${AGENTS.join(', ')}`);
  const targets = targetsFor(agent, values['config-path']);
  const restored = restoreEach(targets.map((t) => t.path), '');
  if (restored === 0) say(`nothing to restore (${targets.map((t) => t.path).join(', ') || 'no config found'})`);
  return 0;
}

export async function wrapCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      'agent-type': { type: 'string' },
      'config-path': { type: 'string' },
      profile: { type: 'string' },
      'thoughtgate-config': { type: 'string' },
      'governance-port': { type: 'string' },
      'no-restore': { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(WRAP_HELP);
    return 0;
  }
  if (positionals.length === 0) {
    process.stderr.write(WRAP_HELP);
    return 2;
  }
  if (process.env[ENV_ACTIVE] === '1') throw new Error('already running inside thoughtgate wrap; wrapping again would govern every call twice');
  if (values.verbose) process.env['THOUGHTGATE_LOG_LEVEL'] = 'debug';
  const profile = (values.profile ?? 'production') as 'production' | 'development';
  if (profile !== 'production' && profile !== 'development') throw new Error(`--profile must be production or development (got '${values.profile}')`);
  const agent = (values['agent-type'] as AgentType | undefined) ?? detectAgent(positionals[0]!);
  if (agent === undefined) throw new Error(`cannot tell which agent '${positionals[0]}' is; pass --agent-type (${AGENTS.join(', ')})`);
  if (!AGENTS.includes(agent)) throw new Error(`--agent-type must be one of ${AGENTS.join(', ')}`);
  const targets = targetsFor(agent, values['config-path']);
  if (targets.length === 0) throw new Error(`no MCP config found for ${agent}; pass --config-path`);
  const tgConfig = resolve(values['thoughtgate-config'] ?? 'thoughtgate.yaml');
  if (!existsSync(tgConfig)) throw new Error(`governance config ${tgConfig} not found (refusing to run the agent ungoverned); pass --thoughtgate-config`);

  const bin = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'thoughtgate.js');
  const token = randomBytes(24).toString('base64url');
  const shim = { shimCommand: process.execPath, shimArgsPrefix: [bin, 'shim'], token, profile };
  // Locks first (not for a dry run: a lock file is a write): a second wrap of the same agent
  // stops here with a clear message instead of finding our rewritten file.
  const locks: Lock[] = [];
  const releaseLocks = (): void => {
    for (const l of locks.splice(0)) l.release();
  };
  let bytes: Buffer[];
  let draft: RewritePlan[];
  try {
    if (!values['dry-run']) {
      for (const t of targets) locks.push(acquireLock(t.path));
      restoreStale(targets);
    }
    // The raw bytes are what a restore gives back; the text is what we edit.
    bytes = targets.map((t) => readFileSync(t.path));
    // Plan once to learn the server ids (a parse error stops here, before anything is written).
    draft = targets.map((t, i) => planRewrite(bytes[i]!.toString('utf8'), t, { ...shim, governanceUrl: 'http://127.0.0.1:0' }));
  } catch (e) {
    releaseLocks();
    throw e;
  }
  const texts = bytes.map((b) => b.toString('utf8'));
  const serverIds = [...new Set(draft.flatMap((p) => p.servers.filter((x) => x.kind !== 'skipped').map((x) => x.id)))];
  if (serverIds.length === 0) {
    releaseLocks();
    throw new Error(`no MCP servers to govern in ${targets.map((t) => t.path).join(', ')}`);
  }

  const settings = resolveSettings({ config: tgConfig, profile }, { ...process.env, THOUGHTGATE_OUTBOUND_PORT: values['governance-port'] ?? '0', THOUGHTGATE_ADMIN_PORT: '0', THOUGHTGATE_AUDIT_PATH: process.env['THOUGHTGATE_AUDIT_PATH'] ?? join(homedir(), '.local', 'state', 'thoughtgate', 'wrap-audit.ndjson') });
  if (values['dry-run']) {
    // Validate the governance config as a real run would, then show the change; write nothing.
    const { loadFullSnapshot } = await import('../load-snapshot.js');
    const snap = await loadFullSnapshot(tgConfig, { workers: 0, queue: 1 }, { wrapServers: serverIds });
    await snap.cedar?.close();
    for (let i = 0; i < targets.length; i++) process.stdout.write(dryRunDiff(targets[i]!.path, texts[i]!, draft[i]!.text, { redact: [token] }));
    say(`dry run: ${serverIds.length} server(s) would be governed (${serverIds.join(', ')}); nothing was written`);
    return 0;
  }

  // The agent owns the terminal: the service's log goes to a file (the path is said once below).
  // Our default directory for it and the audit trail is this user's alone (0700, tightened if
  // an earlier run or a mkdir left it open): both record what the agent asked for.
  const ourDir = join(homedir(), '.local', 'state', 'thoughtgate');
  if (!process.env['THOUGHTGATE_LOG_FILE'] || !process.env['THOUGHTGATE_AUDIT_PATH']) {
    try {
      ensurePrivateDir(ourDir);
    } catch (e) {
      releaseLocks();
      throw e;
    }
  }
  const logFile = process.env['THOUGHTGATE_LOG_FILE'] || join(ourDir, 'wrap.log');
  process.env['THOUGHTGATE_LOG_FILE'] = logFile;
  const { startGovernanceService } = await import('../wrap/governance.js');
  let gov: Awaited<ReturnType<typeof startGovernanceService>>;
  try {
    gov = await startGovernanceService({ configPath: tgConfig, settings, token, port: Number(values['governance-port'] ?? 0), serverIds });
  } catch (e) {
    releaseLocks();
    throw e;
  }
  const written: ConfigTarget[] = [];
  const backups: string[] = [];
  const putBack = (): void => {
    if (!values['no-restore']) {
      for (const t of written.splice(0)) {
        try {
          const r = restore(t.path);
          for (const w of r.warnings) say(`warning: ${w}`);
          if (r.userEdited) say(`restored ${t.path}; your edits of other settings were kept`);
        } catch (e) {
          say(`could not restore ${t.path}: ${(e as Error).message}; run 'thoughtgate restore --config-path ${t.path}'`);
        }
      }
    }
    releaseLocks();
  };
  let plans: RewritePlan[];
  try {
    plans = targets.map((t, i) => planRewrite(texts[i]!, t, { ...shim, governanceUrl: gov.url }));
    for (let i = 0; i < targets.length; i++) {
      backups.push(writeBackup(targets[i]!.path, bytes[i]!, plans[i]!.text).backupPath);
      written.push(targets[i]!);
    }
  } catch (e) {
    putBack();
    await gov.close();
    throw e;
  }
  for (let i = 0; i < targets.length; i++) {
    const governed = plans[i]!.servers.filter((x) => x.kind !== 'skipped');
    const skipped = plans[i]!.servers.filter((x) => x.kind === 'skipped');
    say(`rewrote ${targets[i]!.path} (backup: ${backups[i]}): governing ${governed.map((x) => `${x.id} [${x.kind}]`).join(', ') || 'nothing'}${skipped.length ? `; not governed: ${skipped.map((x) => `${x.id} (${x.why})`).join(', ')}` : ''}`);
  }
  say(`profile ${profile}; approvals console ${gov.consoleUrl}; log ${logFile}`);

  // A crash of ours must not leave the agent's config rewritten.
  const onFatal = (err: unknown): void => {
    say(`fatal: ${(err as Error)?.stack ?? String(err)}`);
    putBack();
    process.exit(1);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  const child = spawn(positionals[0]!, positionals.slice(1), { stdio: 'inherit', env: agentEnv(process.env) });
  const forward = (sig: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  const handlers: [NodeJS.Signals, () => void][] = [['SIGINT', forward('SIGINT')], ['SIGTERM', forward('SIGTERM')], ['SIGHUP', forward('SIGHUP')]];
  for (const [sig, h] of handlers) process.on(sig, h);
  const code = await new Promise<number>((resolveExit) => {
    child.once('error', (e) => {
      say(`cannot start ${positionals[0]}: ${e.message}`);
      resolveExit(127);
    });
    child.once('exit', (c, sig) => resolveExit(c ?? 128 + signalNumber(sig)));
  });
  for (const [sig, h] of handlers) process.off(sig, h);
  putBack();
  await gov.close().catch(() => {});
  return code;
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return (sig === null ? undefined : osConstants.signals[sig]) ?? 1;
}
