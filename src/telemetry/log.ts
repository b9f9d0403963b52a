// The process logger: JSON lines on stderr, so stdout stays free for the stdio protocol
// (shim) and for an audit trail sent to '-'. Credentials never reach the log.

import pino from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';

export type LogLevel = Level | 'silent';
const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Field names whose values are secrets wherever they appear (headers, params, configs). */
export const SECRET_KEYS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-auth-token',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'bot_token',
  'api_key',
  'apiKey',
  'password',
  'secret',
  'client_secret',
];

// fast-redact has no recursive wildcard, so cover the depths our log objects use
// (top level, `headers.x`, `req.headers.x`).
const key = (k: string): string => (/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `["${k}"]`);
export const REDACT_PATHS = SECRET_KEYS.flatMap((k) => {
  const s = key(k);
  return [s.startsWith('.') ? s.slice(1) : s, `*${s}`, `*.*${s}`];
});

/** THOUGHTGATE_LOG_LEVEL, raised to debug by --verbose; unknown values fall back to info. */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv): LogLevel {
  if (argv.includes('--verbose')) return 'debug';
  const v = env.THOUGHTGATE_LOG_LEVEL?.trim().toLowerCase();
  return v !== undefined && LEVELS.includes(v) ? (v as LogLevel) : 'info';
}

export function createLogger(opts: { level?: LogLevel; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? levelFromEnv(),
      base: { pid: process.pid, service: 'thoughtgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    },
    opts.destination ?? defaultDestination(),
  );
}

/** stderr, or THOUGHTGATE_LOG_FILE (wrap sets it: the agent owns the terminal). */
function defaultDestination(): DestinationStream {
  const file = process.env.THOUGHTGATE_LOG_FILE;
  if (file !== undefined && file !== '') return pino.destination({ dest: file, mkdir: true, sync: false, minLength: 0 });
  return pino.destination({ dest: 2, sync: false, minLength: 0 });
}

export const logger: Logger = createLogger();

export function setLogLevel(level: LogLevel): void {
  logger.level = level;
}
