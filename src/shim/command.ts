// `thoughtgate shim …` as a command: flags and environment → runShim with this process's stdio.
import pino from 'pino';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { createLogger, levelFromEnv } from '../telemetry/log.js';
import { ENV_GOVERNANCE_TOKEN, ENV_GOVERNANCE_URL, ENV_SERVER_ID } from '../wrap/protocol.js';
import { runShim, type Profile } from './shim.js';

export const SHIM_USAGE = `usage: thoughtgate shim --server-id ID --governance URL [--profile production|development] -- <server command…>

Runs one stdio MCP server behind the governance service that \`thoughtgate wrap\` starts.
  --server-id ID       the server's id in the agent's config (default: $${ENV_SERVER_ID})
  --governance URL     the governance service (default: $${ENV_GOVERNANCE_URL})
  --profile P          production (default): refuse when governance is unavailable
                       development: log WOULD_BLOCK and forward
  --verbose            debug logging (on stderr)
The per-run secret is read from $${ENV_GOVERNANCE_TOKEN}.
`;

export interface ShimArgs {
  serverId: string;
  governanceUrl: string;
  profile: Profile;
  command: string[];
  verbose: boolean;
}

export class ShimUsageError extends Error {}

/** Parses `--server-id ID --governance URL [--profile P] -- <command…>`. Throws ShimUsageError. */
export function parseShimArgs(args: readonly string[], env: NodeJS.ProcessEnv): ShimArgs | 'help' {
  const flags = new Map<string, string>();
  let verbose = false;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (a === '-h' || a === '--help') return 'help';
    if (a === '--verbose') {
      verbose = true;
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq === -1 ? a : a.slice(0, eq);
    if (!['--server-id', '--governance', '--governance-endpoint', '--profile'].includes(name)) {
      throw new ShimUsageError(a.startsWith('-') ? `unknown option '${a}'` : `unexpected '${a}' (the server command goes after --)`);
    }
    let value: string | undefined;
    if (eq !== -1) value = a.slice(eq + 1);
    else value = args[++i];
    if (value === undefined || value === '') throw new ShimUsageError(`${name} needs a value`);
    flags.set(name === '--governance-endpoint' ? '--governance' : name, value);
  }
  const command = args.slice(i);
  const serverId = flags.get('--server-id') ?? env[ENV_SERVER_ID];
  const governanceUrl = flags.get('--governance') ?? env[ENV_GOVERNANCE_URL];
  const profile = flags.get('--profile') ?? 'production';
  if (!serverId) throw new ShimUsageError(`--server-id is required (or $${ENV_SERVER_ID})`);
  if (!governanceUrl) throw new ShimUsageError(`--governance is required (or $${ENV_GOVERNANCE_URL})`);
  try {
    const u = new URL(governanceUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new ShimUsageError(`--governance must be an http(s) URL (got '${governanceUrl}')`);
  }
  if (profile !== 'production' && profile !== 'development') throw new ShimUsageError(`--profile must be production or development (got '${profile}')`);
  if (command.length === 0) throw new ShimUsageError('no server command (put it after --)');
  return { serverId, governanceUrl, profile, command, verbose };
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ShimUsageError(`${name} must be an integer in [${min}, ${max}] (got '${raw}')`);
  return n;
}

/** `thoughtgate shim …` with this process's stdio; resolves with the exit code. */
export async function shimCommand(args: string[]): Promise<number> {
  const env = process.env;
  let parsed: ShimArgs | 'help';
  let maxLineBytes: number;
  let maxDepth: number;
  try {
    parsed = parseShimArgs(args, env);
    maxLineBytes = intFromEnv(env, 'THOUGHTGATE_MAX_LINE_BYTES', DEFAULT_LIMITS.maxLineBytes, 64, 1 << 30);
    maxDepth = intFromEnv(env, 'THOUGHTGATE_MAX_JSON_DEPTH', DEFAULT_LIMITS.maxDepth, 2, 10_000);
  } catch (e) {
    if (!(e instanceof ShimUsageError)) throw e;
    process.stderr.write(`thoughtgate shim: ${e.message}\n\n${SHIM_USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(SHIM_USAGE);
    return 0;
  }
  // Synchronous: the last lines before exit must not be lost, and stdout stays the agent's.
  const level = parsed.verbose ? 'debug' : levelFromEnv(env, []);
  const logger = createLogger({ level, destination: pino.destination({ dest: 2, sync: true }) })
    .child({ component: 'shim', server_id: parsed.serverId });
  const code = await runShim({
    serverId: parsed.serverId,
    governanceUrl: parsed.governanceUrl,
    profile: parsed.profile,
    command: parsed.command,
    token: env[ENV_GOVERNANCE_TOKEN] || undefined,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env,
    maxLineBytes,
    maxDepth,
    handleSignals: true,
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
  });
  // Nothing more is read: let the process end even though the agent keeps our stdin open.
  process.stdin.destroy();
  // Anything else still holding the event loop (it should be nothing) must not keep us alive.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}
