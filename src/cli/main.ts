// `thoughtgate` command line: parses flags, prints help, runs a subcommand.
import { parseArgs } from 'node:util';
import { ENV_HELP, SettingsError, resolveSettings } from './settings.js';

const TOP_HELP = `thoughtgate — governance proxy for AI agents' MCP tool calls

Usage:
  thoughtgate serve [--config FILE] [--profile production|development] [--bind ADDR]
  thoughtgate check [--config FILE] [--json] CASES
  thoughtgate validate [--config FILE]
  thoughtgate approvals list [--json] | approve ID | reject ID [--reason R]  [--admin URL]
  thoughtgate wrap [--agent-type T] [--config-path P] [--profile P] [--dry-run] -- <agent…>
  thoughtgate restore [--agent-type T] [--config-path P]
  thoughtgate shim --server-id ID --governance URL -- <server command…>
  thoughtgate --help | --version

Commands:
  serve     run the HTTP sidecar: every MCP call to the traffic port (7467) is forwarded,
            hidden, denied or held for a person's approval by the YAML config, and
            recorded in the audit trail; /health, /ready, /metrics and the approvals
            console (/approvals) are on the admin port (7469)

  check     replay a file of calls (YAML list or NDJSON: tool or method, arguments,
            principal, optional expect: forward|deny|approve) against the config and its
            policies; prints decision, gate and matching rule or policy per call; exits 1
            when an expectation fails — for testing policies in CI
  validate  load the config and its policies as serve would; exit 1 with the error's
            file, line and field when they are invalid
  approvals list, approve or reject calls held for a human, and revoke standing
            approvals, on a running sidecar (its admin port; THOUGHTGATE_ADMIN_TOKEN)
  wrap      run a desktop agent (Claude Code, Cursor, VS Code, …) with every MCP server it
            launches governed; its config files are restored byte for byte at exit
  restore   put back agent configs left rewritten by a wrap that crashed or was killed
  shim      (written into agent configs by wrap) governs one stdio MCP server

Run 'thoughtgate serve --help' for its flags and environment variables.
`;

async function check(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals.length !== 1) {
    process.stdout.write('Usage: thoughtgate check [--config FILE] [--json] CASES\n\nCASES: YAML list or NDJSON of {tool|method, arguments, principal, source, expect}\n');
    return values.help ? 0 : 2;
  }
  const { readCases, runCheck, formatTable } = await import('./check.js');
  const { loadFullSnapshot } = await import('../load-snapshot.js');
  // Cedar on this thread: a CLI run needs no worker pool.
  const snapshot = await loadFullSnapshot(values.config ?? process.env['THOUGHTGATE_CONFIG'] ?? './thoughtgate.yaml', { workers: 0, queue: 1 });
  const rows = await runCheck(snapshot, readCases(positionals[0]!));
  await snapshot.cedar?.close();
  process.stdout.write(values.json ? JSON.stringify(rows, null, 2) + '\n' : formatTable(rows));
  const failed = rows.filter((r) => !r.ok).length;
  if (!values.json) process.stdout.write(`\n${rows.length} calls, ${failed} not as expected (snapshot ${snapshot.version})\n`);
  return failed > 0 ? 1 : 0;
}

async function validate(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write('Usage: thoughtgate validate [--config FILE]\n');
    return 0;
  }
  const { validateConfig } = await import('./check.js');
  process.stdout.write(await validateConfig(values.config ?? process.env['THOUGHTGATE_CONFIG'] ?? './thoughtgate.yaml'));
  return 0;
}

function serveHelp(): string {
  const width = Math.max(...ENV_HELP.map(([n]) => n.length));
  return `Usage: thoughtgate serve [options]

Options:
  --config FILE        ThoughtGate YAML (schema: 1); else $THOUGHTGATE_CONFIG, else ./thoughtgate.yaml
  --profile NAME       production (enforce: denials block) or development (audit: judge, log
                       WOULD_BLOCK and forward); overrides MODE
  --bind ADDR          traffic bind address (default 0.0.0.0); the admin and inbound ports
                       follow it unless THOUGHTGATE_ADMIN_BIND / _INBOUND_BIND are set
  --verbose            debug logging
  -h, --help           this help

Environment:
${ENV_HELP.map(([n, d]) => `  ${n.padEnd(width)}  ${d}`).join('\n')}

Signals: SIGTERM/SIGINT drain in-flight requests, flush the audit trail and exit.
`;
}

async function serve(args: string[]): Promise<number | undefined> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      profile: { type: 'string' },
      bind: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(serveHelp());
    return 0;
  }
  if (values.verbose) process.env['THOUGHTGATE_LOG_LEVEL'] = 'debug';
  const settings = resolveSettings({ config: values.config, profile: values.profile, bind: values.bind });
  // Imported here so `--help` and flag errors never load the native server.
  const { startSidecar } = await import('../main.js');
  const sidecar = await startSidecar(settings);
  const stop = (signal: string) => {
    sidecar.shutdown(signal).then(() => process.exit(0), (err) => {
      process.stderr.write(`thoughtgate: shutdown failed: ${err}\n`);
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return undefined; // keep running
}

export async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(TOP_HELP);
        return command === undefined ? 1 : 0;
      case '-V':
      case '--version': {
        const { VERSION } = await import('../main.js');
        process.stdout.write(`thoughtgate ${VERSION}\n`);
        return 0;
      }
      case 'serve':
        return await serve(rest);
      case 'check':
        return await check(rest);
      case 'validate':
        return await validate(rest);
      case 'wrap': {
        const { wrapCommand } = await import('./wrap.js');
        return await wrapCommand(rest);
      }
      case 'restore': {
        const { restoreCommand } = await import('./wrap.js');
        return await restoreCommand(rest);
      }
      case 'shim': {
        const { shimCommand } = await import('../shim/command.js');
        return await shimCommand(rest);
      }
      case 'approvals': {
        const { approvalsCommand } = await import('./approvals.js');
        return await approvalsCommand(rest);
      }
      default:
        process.stderr.write(`thoughtgate: unknown command '${command}'\n\n${TOP_HELP}`);
        return 2;
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    if (err instanceof SettingsError || e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`thoughtgate: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`thoughtgate: ${e.message ?? err}\n`);
    return 1;
  }
}
