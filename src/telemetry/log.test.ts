import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createLogger, levelFromEnv, logger, setLogLevel } from './log.js';

function capture() {
  const out: Array<Record<string, unknown>> = [];
  const destination = { write: (s: string) => void out.push(JSON.parse(s) as Record<string, unknown>) };
  return { out, destination };
}

test('credentials are redacted at the depths we log them', () => {
  const { out, destination } = capture();
  const log = createLogger({ level: 'info', destination });
  log.info(
    {
      authorization: 'Bearer a',
      headers: { authorization: 'Bearer b', cookie: 'c', 'x-api-key': 'k', 'x-auth-token': 't', accept: '*/*' },
      req: { headers: { 'proxy-authorization': 'p', 'set-cookie': 's' } },
      slack: { bot_token: 'xoxb', channel: '#approvals' },
      params: { password: 'pw', name: 'ok' },
    },
    'request',
  );
  const o = out[0]!;
  const h = o.headers as Record<string, string>;
  assert.equal(o.authorization, '[REDACTED]');
  assert.deepEqual(h, { authorization: '[REDACTED]', cookie: '[REDACTED]', 'x-api-key': '[REDACTED]', 'x-auth-token': '[REDACTED]', accept: '*/*' });
  assert.deepEqual((o.req as { headers: unknown }).headers, { 'proxy-authorization': '[REDACTED]', 'set-cookie': '[REDACTED]' });
  assert.deepEqual(o.slack, { bot_token: '[REDACTED]', channel: '#approvals' });
  assert.deepEqual(o.params, { password: '[REDACTED]', name: 'ok' });
  assert.equal(o.level, 'info');
  assert.equal(o.msg, 'request');
  assert.match(String(o.time), /^\d{4}-\d\d-\d\dT/);
});

test('level comes from THOUGHTGATE_LOG_LEVEL, --verbose raises it to debug', () => {
  assert.equal(levelFromEnv({}, []), 'info');
  assert.equal(levelFromEnv({ THOUGHTGATE_LOG_LEVEL: 'WARN' }, []), 'warn');
  assert.equal(levelFromEnv({ THOUGHTGATE_LOG_LEVEL: 'loud' }, []), 'info');
  assert.equal(levelFromEnv({ THOUGHTGATE_LOG_LEVEL: 'error' }, ['node', 'tg', 'serve', '--verbose']), 'debug');
});

test('levels filter and setLogLevel changes the process logger', () => {
  const { out, destination } = capture();
  const log = createLogger({ level: 'warn', destination });
  log.info('dropped');
  log.warn('kept');
  assert.deepEqual(out.map((o) => o.msg), ['kept']);
  const before = logger.level;
  setLogLevel('debug');
  assert.equal(logger.level, 'debug');
  setLogLevel(before as 'info');
});

test('the process logger writes to stderr, never stdout', () => {
  const stream = (logger as unknown as Record<symbol, { fd: number }>)[pino.symbols.streamSym];
  assert.equal(stream.fd, 2);
});
