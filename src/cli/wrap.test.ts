import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentEnv } from './wrap.js';

test('the agent gets the wrapped marker and the shims\' limits, none of our secrets or other settings', () => {
  const env = agentEnv({
    PATH: '/bin',
    HOME: '/home/u',
    ANTHROPIC_API_KEY: 'the-users-own',
    THOUGHTGATE_ADMIN_TOKEN: 'admin',
    THOUGHTGATE_API_TOKEN: 'api',
    THOUGHTGATE_SLACK_BOT_TOKEN: 'xoxb',
    THOUGHTGATE_LOG_FILE: '/home/u/.local/state/thoughtgate/wrap.log',
    THOUGHTGATE_LOG_LEVEL: 'debug',
    THOUGHTGATE_MAX_LINE_BYTES: '4096',
    THOUGHTGATE_MAX_JSON_DEPTH: '32',
    THOUGHTGATE_ACTIVE: '0',
  });
  assert.deepEqual(env, {
    PATH: '/bin',
    HOME: '/home/u',
    ANTHROPIC_API_KEY: 'the-users-own', // the user's own environment is the agent's business
    THOUGHTGATE_LOG_LEVEL: 'debug',
    THOUGHTGATE_MAX_LINE_BYTES: '4096',
    THOUGHTGATE_MAX_JSON_DEPTH: '32',
    THOUGHTGATE_ACTIVE: '1',
  });
});
