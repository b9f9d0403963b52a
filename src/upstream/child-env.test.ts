import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildChildEnv, ChildEnvError, isOurs, ourSecrets, withoutOurs, type OurSecrets } from './child-env.js';

const NONE: OurSecrets = { names: new Set(), values: new Set() };

/** A proxy environment as the issue found it: our secrets next to ordinary variables. */
const PROXY_ENV = {
  PATH: '/usr/local/bin:/usr/bin',
  HOME: '/home/tg',
  USER: 'tg',
  LOGNAME: 'tg',
  TMPDIR: '/tmp/tg',
  TZ: 'Europe/Berlin',
  LANG: 'de_DE.UTF-8',
  LC_ALL: 'de_DE.UTF-8',
  LC_TIME: 'C',
  SHELL: '/bin/bash',
  TERM: 'xterm',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-value-1',
  HTTPS_PROXY: 'http://user:pw@proxy:3128',
  NODE_OPTIONS: '--require /tmp/evil.js',
  GITHUB_TOKEN: 'ghp-operator-token',
  THOUGHTGATE_ADMIN_TOKEN: 'admin-token-value-123',
  THOUGHTGATE_SLACK_BOT_TOKEN: 'xoxb-slack-token-value',
  THOUGHTGATE_WEBHOOK_SECRET: 'webhook-secret-value',
  THOUGHTGATE_OUTBOUND_PORT: '7467',
  MY_SLACK: 'xoxb-other-workflow-token',
};

const config = {
  approval: {
    ops: { destination: { type: 'slack', token_env: 'MY_SLACK' }, approver_tokens: { alice: 'alice-token-0123456789' } },
    hook: { destination: { type: 'webhook', secret_env: 'HOOK_SECRET' } },
    plain: { destination: { type: 'console' } },
  },
};

test('a server gets the allowlist, its env: and its passthrough; nothing else of the proxy', () => {
  const env = buildChildEnv(
    { sourceId: 'fs', env: { TG_CHECK: 'x', LANG: 'C.UTF-8' }, passthrough: ['GITHUB_TOKEN', 'UNSET_ONE'], secrets: ourSecrets(PROXY_ENV, config) },
    PROXY_ENV,
  );
  assert.deepEqual(env, {
    PATH: '/usr/local/bin:/usr/bin',
    HOME: '/home/tg',
    USER: 'tg',
    LOGNAME: 'tg',
    TMPDIR: '/tmp/tg',
    TZ: 'Europe/Berlin',
    LANG: 'C.UTF-8', // env: wins over the inherited value
    LC_ALL: 'de_DE.UTF-8',
    LC_TIME: 'C',
    GITHUB_TOKEN: 'ghp-operator-token', // passed through by name
    TG_CHECK: 'x',
  });
});

test('no THOUGHTGATE_* variable, whatever the proxy environment holds', () => {
  const env = buildChildEnv({ sourceId: 's', env: {}, passthrough: [], secrets: NONE }, { ...PROXY_ENV, thoughtgate_lower: 'x', ThoughtGate_Mixed: 'y' });
  assert.deepEqual(Object.keys(env).filter((k) => /^thoughtgate_/i.test(k)), []);
  for (const v of Object.values(env)) assert.ok(!v.includes('admin-token-value') && !v.includes('xoxb-'), v);
});

test('passing a THOUGHTGATE_* variable through is refused at startup, in any case', () => {
  for (const name of ['THOUGHTGATE_ADMIN_TOKEN', 'THOUGHTGATE_OUTBOUND_PORT', 'thoughtgate_admin_token']) {
    assert.throws(
      () => buildChildEnv({ sourceId: 'fs', env: {}, passthrough: [name], secrets: NONE }, PROXY_ENV),
      (e: Error) => e instanceof ChildEnvError && e.message.includes(`sources[fs].env_passthrough: '${name}'`),
    );
  }
});

test('passing a workflow credential through is refused, by its name and by its value under another name', () => {
  const secrets = ourSecrets({ ...PROXY_ENV, HOOK_SECRET: 'hook-secret-value' }, config);
  assert.throws(() => buildChildEnv({ sourceId: 's', env: {}, passthrough: ['MY_SLACK'], secrets }, PROXY_ENV), /MY_SLACK.*token_env\/secret_env/);
  assert.throws(() => buildChildEnv({ sourceId: 's', env: {}, passthrough: ['HOOK_SECRET'], secrets }, PROXY_ENV), /HOOK_SECRET/);
  // the admin token copied into an innocent-looking variable
  const parent = { ...PROXY_ENV, INNOCENT: 'admin-token-value-123' };
  assert.throws(() => buildChildEnv({ sourceId: 's', env: {}, passthrough: ['INNOCENT'], secrets }, parent), /INNOCENT.*own credentials/);
});

test('env: may not set THOUGHTGATE_* nor hand over one of our credentials', () => {
  const secrets = ourSecrets(PROXY_ENV, config);
  assert.throws(() => buildChildEnv({ sourceId: 's', env: { THOUGHTGATE_X: '1' }, passthrough: [], secrets }, PROXY_ENV), /sources\[s\]\.env: 'THOUGHTGATE_X'/);
  // e.g. `env: { TOKEN: ${THOUGHTGATE_ADMIN_TOKEN} }` after expansion, or an approver's token
  assert.throws(() => buildChildEnv({ sourceId: 's', env: { TOKEN: 'admin-token-value-123' }, passthrough: [], secrets }, PROXY_ENV), /'TOKEN'/);
  assert.throws(() => buildChildEnv({ sourceId: 's', env: { T: 'alice-token-0123456789' }, passthrough: [], secrets }, PROXY_ENV), /'T'/);
  assert.throws(() => buildChildEnv({ sourceId: 's', env: { T: 'xoxb-other-workflow-token' }, passthrough: [], secrets }, PROXY_ENV), /'T'/);
});

test('ourSecrets: credentials only, short values and non-secret settings are not secrets', () => {
  const s = ourSecrets(PROXY_ENV, config);
  assert.ok(s.values.has('admin-token-value-123'));
  assert.ok(s.values.has('webhook-secret-value'));
  assert.ok(s.values.has('xoxb-other-workflow-token'));
  assert.ok(s.values.has('alice-token-0123456789'));
  assert.ok(!s.values.has('7467'), 'a port is not a secret');
  assert.deepEqual([...s.names].sort(), ['HOOK_SECRET', 'MY_SLACK']);
  // so a server may well be given PORT=7467
  assert.equal(buildChildEnv({ sourceId: 's', env: { PORT: '7467' }, passthrough: [], secrets: s }, PROXY_ENV)['PORT'], '7467');
});

test('withoutOurs drops every THOUGHTGATE_* except the kept names; isOurs ignores case', () => {
  assert.deepEqual(withoutOurs({ A: '1', THOUGHTGATE_ADMIN_TOKEN: 't', THOUGHTGATE_LOG_LEVEL: 'debug', thoughtgate_x: 'y', U: undefined }, ['THOUGHTGATE_LOG_LEVEL']), {
    A: '1',
    THOUGHTGATE_LOG_LEVEL: 'debug',
  });
  assert.equal(isOurs('ThoughtGate_Anything'), true);
  assert.equal(isOurs('MY_THOUGHTGATE_X'), false);
});
