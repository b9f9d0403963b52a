import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, fieldName, loadConfigFile, parseConfig } from './config.js';
import { assertIssue, BASE, CONFIG_PATH, configError, parse, tempDir, writeIn } from './config-testkit.js';

const F = CONFIG_PATH;

/** BASE plus extra top-level YAML */
const withBase = (extra: string): string => BASE + extra;

/** one source with the given body lines (indented 4) */
const withSource = (lines: string, rest = 'governance:\n  defaults:\n    action: forward\n'): string =>
  `schema: 1\nsources:\n  - id: upstream\n    kind: mcp\n${lines}${rest}`;

const rules = (body: string, extra = ''): string => `${BASE}  rules:\n${body}${extra}`;

describe('the seed README configs load unchanged', () => {
  it('"1. Create a policy file"', () => {
    const c = parse(`# thoughtgate.yaml — minimal config, forward everything
schema: 1

sources:
  - id: upstream
    kind: mcp
    url: http://localhost:3000

governance:
  defaults:
    action: forward
`);
    assert.equal(c.governance.defaults.action, 'forward');
    assert.deepEqual(c.governance.rules, []);
  });

  it('"3. Add governance rules" (approve with no workflow defined)', () => {
    const c = parse(`schema: 1

sources:
  - id: upstream
    kind: mcp
    url: http://localhost:3000

governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      action: approve
    - match: "drop_*"
      action: approve
    - match: "admin_*"
      action: deny
`);
    assert.deepEqual(c.governance.rules, [
      { match: 'delete_*', action: 'approve' },
      { match: 'drop_*', action: 'approve' },
      { match: 'admin_*', action: 'deny' },
    ]);
    assert.deepEqual(c.approval, {});
    assert.deepEqual(c.warnings, []);
  });

  it('"YAML Configuration" (adapter form, telemetry)', () => {
    const c = parse(`schema: 1

sources:
  - id: upstream
    kind: mcp
    url: http://localhost:3000

governance:
  defaults:
    action: forward
  rules:
    - match: "delete_*"
      action: approve
      approval: slack-ops
    - match: "admin_*"
      action: deny

approval:
  slack-ops:
    adapter: slack
    channel: "#approvals"
    timeout: 5m

telemetry:
  enabled: true
  otlp:
    endpoint: "http://otel-collector:4318"
    protocol: http/protobuf
  sampling:
    strategy: head
    success_sample_rate: 0.10
`);
    assert.deepEqual(c.approval, {
      'slack-ops': { destination: { type: 'slack', channel: '#approvals' }, approvers: [], required_approvals: 1, timeout_ms: 300_000, on_timeout: 'deny', redact_fields: [], approver_tokens: {} },
    });
    assert.deepEqual(c.telemetry, {
      enabled: true,
      otlp: { endpoint: 'http://otel-collector:4318', protocol: 'http/protobuf', headers: {} },
      sampling: { strategy: 'head', success_sample_rate: 0.1 },
      batch: { max_queue_size: 2048, max_export_batch_size: 512, scheduled_delay_ms: 5000, export_timeout_ms: 30000 },
      resource: {},
    });
  });

  it('the README telemetry block with resource attributes', () => {
    const c = parse(withBase(`telemetry:
  enabled: true
  otlp:
    endpoint: "http://otel-collector:4318"
    protocol: http/protobuf
  sampling:
    strategy: head
    success_sample_rate: 0.10
  resource:
    service.name: my-thoughtgate
    deployment.environment: staging
`));
    assert.deepEqual(c.telemetry.resource, { 'service.name': 'my-thoughtgate', 'deployment.environment': 'staging' });
  });
});

describe('normalised shape and defaults', () => {
  it('fills source and telemetry defaults, resolves the path', () => {
    const c = parse(BASE);
    assert.equal(c.schema, 1);
    assert.equal(c.path, F);
    assert.deepEqual(c.sources, [
      { id: 'upstream', kind: 'mcp', url: 'http://localhost:3000', args: [], env: {}, env_passthrough: [], enabled: true, expose: { mode: 'all', tools: [] } },
    ]);
    assert.deepEqual(c.telemetry, {
      enabled: false,
      sampling: { strategy: 'head', success_sample_rate: 1 },
      batch: { max_queue_size: 2048, max_export_batch_size: 512, scheduled_delay_ms: 5000, export_timeout_ms: 30000 },
      resource: {},
    });
    assert.equal(c.cedar, undefined);
    assert.deepEqual(c.warnings, []);
  });

  it('keeps every source field', () => {
    const c = parse(withSource(`    url: https://mcp.example.com/mcp
    prefix: mcp_
    description: "Primary MCP server"
    enabled: false
    expose:
      mode: blocklist
      tools:
        - "admin_*"
        - "*_unsafe"
`));
    assert.deepEqual(c.sources[0], {
      id: 'upstream',
      kind: 'mcp',
      url: 'https://mcp.example.com/mcp',
      args: [],
      env: {},
      env_passthrough: [],
      prefix: 'mcp_',
      description: 'Primary MCP server',
      enabled: false,
      expose: { mode: 'blocklist', tools: ['admin_*', '*_unsafe'] },
    });
  });

  it('accepts a stdio source (command, args, env) instead of url', () => {
    const c = parse(withSource(`    command: /usr/bin/node
    args: ["server.js", "stdio"]
    env:
      LOG_LEVEL: debug
`));
    assert.deepEqual(c.sources[0], {
      id: 'upstream',
      kind: 'mcp',
      command: '/usr/bin/node',
      args: ['server.js', 'stdio'],
      env: { LOG_LEVEL: 'debug' },
      env_passthrough: [],
      enabled: true,
      expose: { mode: 'all', tools: [] },
    });
    const bare = parse(withSource('    command: mcp-server\n'));
    assert.deepEqual([bare.sources[0]!.args, bare.sources[0]!.env], [[], {}]);
  });

  it('normalises rule source to a list and keeps the rest', () => {
    const c = parse(rules(`    - match: "read_*"
      action: forward
      source: upstream
      description: reads
    - match: "x"
      action: policy
      policy_id: financial
      source: [upstream]
`));
    assert.deepEqual(c.governance.rules, [
      { match: 'read_*', action: 'forward', source: ['upstream'], description: 'reads' },
      { match: 'x', action: 'policy', policy_id: 'financial', source: ['upstream'] },
    ]);
  });

  it('code-form workflow with every field', () => {
    const c = parse(withBase(`approval:
  default:
    destination:
      type: slack
      channel: "#ops"
      token_env: OPS_TOKEN
      mention: ["@oncall"]
    timeout: 1h 30m
    on_timeout: approve
    blocking_timeout: PT2M
    redact_fields: [password, auth.token]
`));
    assert.deepEqual(c.approval.default, {
      destination: { type: 'slack', channel: '#ops', token_env: 'OPS_TOKEN', mention: ['@oncall'] },
      approvers: [],
      required_approvals: 1,
      timeout_ms: 5_400_000,
      on_timeout: 'approve',
      blocking_timeout_ms: 120_000,
      redact_fields: ['password', 'auth.token'],
      approver_tokens: {},
    });
  });

  it('the two workflow forms normalise to the same thing', () => {
    const code = parse(withBase('approval:\n  w:\n    destination: {type: slack, channel: "#a"}\n    timeout: 10m\n'));
    const readme = parse(withBase('approval:\n  w:\n    adapter: slack\n    channel: "#a"\n    timeout: 10m\n'));
    assert.deepEqual(readme.approval, code.approval);
    assert.deepEqual(parse(withBase('approval:\n  w: {adapter: slack, channel: "#a"}\n')).approval.w, {
      destination: { type: 'slack', channel: '#a' },
      approvers: [],
      required_approvals: 1,
      timeout_ms: 600_000,
      on_timeout: 'deny',
      redact_fields: [],
      approver_tokens: {},
    });
  });

  it('full telemetry section', () => {
    const c = parse(withBase(`telemetry:
  enabled: true
  otlp:
    endpoint: http://collector:4318
    protocol: grpc
    headers: {x-api-key: secret}
  sampling: {strategy: tail, success_sample_rate: 0}
  batch: {max_queue_size: 100, max_export_batch_size: 100, scheduled_delay_ms: 100, export_timeout_ms: 100}
  stdio: {propagate_upstream: true}
`));
    assert.deepEqual(c.telemetry, {
      enabled: true,
      otlp: { endpoint: 'http://collector:4318', protocol: 'grpc', headers: { 'x-api-key': 'secret' } },
      sampling: { strategy: 'tail', success_sample_rate: 0 },
      batch: { max_queue_size: 100, max_export_batch_size: 100, scheduled_delay_ms: 100, export_timeout_ms: 100 },
      resource: {},
      stdio: { propagate_upstream: true },
    });
  });

  it('accepts every action in lower case', () => {
    for (const a of ['forward', 'deny', 'approve', 'policy']) {
      assert.equal(parse(BASE.replace('action: forward', `action: ${a}`)).governance.defaults.action, a);
    }
  });
});

describe('cedar section: both forms, paths relative to the config file', () => {
  const setup = (): { dir: string; path: string } => {
    const dir = tempDir();
    mkdirSync(join(dir, 'policies'));
    writeIn(dir, 'policies/a.cedar', 'permit(principal, action, resource);');
    writeIn(dir, 'policies/b.cedar', 'forbid(principal, action, resource);');
    writeIn(dir, 'schema.cedarschema', '');
    return { dir, path: join(dir, 'thoughtgate.yaml') };
  };

  it('code form: policies list and schema', () => {
    const { dir, path } = setup();
    const c = parse(withBase(`cedar:\n  policies:\n    - policies/a.cedar\n    - ${join(dir, 'policies/b.cedar')}\n  schema: schema.cedarschema\n`), {}, path);
    assert.deepEqual(c.cedar, {
      policies: [join(dir, 'policies/a.cedar'), join(dir, 'policies/b.cedar')],
      schema: join(dir, 'schema.cedarschema'),
    });
  });

  it('README form: policy_path as a string or a list', () => {
    const { dir, path } = setup();
    assert.deepEqual(parse(withBase('cedar:\n  policy_path: ./policies/a.cedar\n'), {}, path).cedar, { policies: [join(dir, 'policies/a.cedar')] });
    assert.deepEqual(parse(withBase('cedar:\n  policy_path: [policies/a.cedar, policies/b.cedar]\n'), {}, path).cedar, {
      policies: [join(dir, 'policies/a.cedar'), join(dir, 'policies/b.cedar')],
    });
  });

  it('V-013: a missing policy or schema file', () => {
    const { dir, path } = setup();
    assertIssue(withBase('cedar:\n  policies:\n    - policies/a.cedar\n    - policies/missing.cedar\n'), {
      line: 12,
      column: 7,
      field: 'cedar.policies[1]',
      message: `policy file not found: ${join(dir, 'policies/missing.cedar')}`,
    }, {}, path);
    assertIssue(withBase('cedar:\n  policy_path: nope.cedar\n'), {
      line: 10,
      field: 'cedar.policy_path',
      message: `policy file not found: ${join(dir, 'nope.cedar')}`,
    }, {}, path);
    assertIssue(withBase('cedar:\n  policies: [policies/a.cedar]\n  schema: missing.cedarschema\n'), {
      line: 11,
      field: 'cedar.schema',
      message: `policy file not found: ${join(dir, 'missing.cedarschema')}`,
    }, {}, path);
    assertIssue(withBase('cedar:\n  policies: [policies]\n'), { message: `policy file is not a regular file: ${join(dir, 'policies')}` }, {}, path);
  });

  it('exactly one of policies / policy_path', () => {
    const { path } = setup();
    assertIssue(withBase('cedar:\n  policies: [policies/a.cedar]\n  policy_path: policies/b.cedar\n'), { line: 11, field: 'cedar.policy_path' }, {}, path);
    assertIssue(withBase('cedar:\n  schema: schema.cedarschema\n'), { line: 10, field: 'cedar.policies' }, {}, path);
    assertIssue(withBase('cedar:\n  policies: []\n'), { line: 10, field: 'cedar.policies', message: 'must have at least 1 item(s)' }, {}, path);
  });
});

describe('validation messages (V-*)', () => {
  it('empty or whitespace-only file', () => {
    for (const text of ['', '  \n\t\n']) {
      const e = configError(text);
      assert.equal(e.message, `${F}:1:1: configuration file is empty`);
    }
  });

  it('schema version', () => {
    assertIssue(BASE.replace('schema: 1', 'schema: 2'), { line: 1, column: 9, field: 'schema', message: 'unsupported schema version 2, expected 1' });
    assertIssue(BASE.replace('schema: 1\n', ''), { field: 'schema', message: 'missing required field' });
  });

  it('V-010 no sources', () => {
    assertIssue('schema: 1\nsources: []\ngovernance:\n  defaults:\n    action: forward\n', {
      line: 2,
      field: 'sources',
      message: 'no sources defined in configuration',
    });
  });

  const twoSources = (a: string, b: string): string =>
    `schema: 1\nsources:\n  - id: ${a}\n    kind: mcp\n    url: http://a\n    prefix: p_\n  - id: ${b}\n    kind: mcp\n    url: http://b\n    prefix: p_\ngovernance:\n  defaults:\n    action: forward\n`;

  it('V-011 more than one source (original message)', () => {
    assertIssue(twoSources('one', 'two'), { line: 3, field: 'sources', message: 'v0.2 supports only a single source, found 2' });
  });

  it('V-001 duplicate id and V-003 duplicate prefix are reported too', () => {
    const e = assertIssue(twoSources('same', 'same'), { line: 7, column: 9, field: 'sources[1].id', message: "duplicate source ID: 'same'" });
    assert.ok(e.issues.some((i) => i.line === 10 && i.field === 'sources[1].prefix' && i.message === "duplicate prefix: 'p_'"));
  });

  it('V-002 reserved prefix, V-016 id format', () => {
    const src = (id: string): string => BASE.replace('id: upstream', `id: ${id}`);
    assertIssue(src('_internal'), { line: 3, column: 9, field: 'sources[0].id', message: "source ID '_internal' uses reserved prefix '_'" });
    assertIssue(src('"bad id!"'), { line: 3, message: "source ID 'bad id!' is invalid: source ID must contain only [a-zA-Z0-9._-]" });
    assertIssue(src('" up"'), { line: 3, message: "source ID ' up' is invalid: source ID must not have leading or trailing whitespace" });
    assertIssue(src('""'), { line: 3, message: "source ID '' is invalid: source ID must not be empty" });
    assert.equal(parse(src('my-server.v2_x')).sources[0]!.id, 'my-server.v2_x');
  });

  it('V-008 invalid URL (must be http or https)', () => {
    for (const url of ['not-a-url', 'ftp://host/x', 'http://']) {
      assertIssue(BASE.replace('http://localhost:3000', url), { line: 5, column: 10, field: 'sources[0].url', message: `invalid URL '${url}': invalid URL format` });
    }
  });

  it('exactly one of url / command', () => {
    assertIssue(withSource('    url: http://a\n    command: node\n'), { line: 6, field: 'sources[0].command', message: "'url' and 'command' are mutually exclusive: give one" });
    assertIssue(withSource(''), { line: 3, field: 'sources[0].url' });
    assertIssue(withSource('    url: http://a\n    args: [x]\n'), { line: 6, field: 'sources[0].args' });
    assertIssue(withSource('    command: "  "\n'), { line: 5, field: 'sources[0].command', message: 'command must not be empty' });
  });

  it('kind must be mcp', () => {
    assertIssue(BASE.replace('kind: mcp', 'kind: a2a'), { line: 4, field: 'sources[0].kind', message: "unsupported source kind 'a2a', expected 'mcp'" });
  });

  it('expose: list modes need tools; bad globs are V-014', () => {
    assertIssue(withSource('    url: http://a\n    expose:\n      mode: allowlist\n'), { line: 7, field: 'sources[0].expose.tools' });
    assertIssue(withSource('    url: http://a\n    expose:\n      mode: all\n      tools: [x]\n'), { line: 8, field: 'sources[0].expose.tools' });
    assertIssue(withSource('    url: http://a\n    expose:\n      mode: blocklist\n      tools:\n        - ok_*\n        - "[bad"\n'), {
      line: 10,
      column: 11,
      field: 'sources[0].expose.tools[1]',
      message: "invalid glob pattern '[bad': invalid expose pattern for source 'upstream': Pattern syntax error near position 0: invalid range pattern",
    });
    assertIssue(withSource('    url: http://a\n    expose:\n      mode: everything\n'), { line: 7, field: 'sources[0].expose.mode' });
  });

  it('V-005 policy without policy_id', () => {
    assertIssue(rules('    - match: "transfer_*"\n      action: policy\n'), {
      line: 10,
      field: 'governance.rules[0].policy_id',
      message: "missing policy_id for action: policy in rule 'transfer_*'",
    });
  });

  it('V-004 policy_id on a non-policy rule is a warning naming file:line', () => {
    const c = parse(rules('    - match: "test_*"\n      action: forward\n      policy_id: some_policy\n'));
    assert.deepEqual(c.warnings, [
      `${F}:12:18: field 'governance.rules[0].policy_id': policy_id 'some_policy' has no effect in rule 'test_*': its action is 'forward', not 'policy' (V-004)`,
    ]);
  });

  it('V-006 undefined workflow', () => {
    assertIssue(rules('    - match: "delete_*"\n      action: approve\n      approval: nonexistent\n'), {
      line: 12,
      column: 17,
      field: 'governance.rules[0].approval',
      message: "undefined workflow 'nonexistent' in rule 'delete_*'",
    });
    // `default` is not special
    assertIssue(rules('    - match: "d"\n      action: approve\n      approval: default\n'), { message: "undefined workflow 'default' in rule 'd'" });
    // checked for policy rules too (the fallback workflow)
    assertIssue(rules('    - match: "t"\n      action: policy\n      policy_id: p\n      approval: nope\n'), { message: "undefined workflow 'nope' in rule 't'" });
  });

  it('V-006b approve without approval when several workflows exist', () => {
    const two = 'approval:\n  a: {adapter: slack, channel: "#a"}\n  b: {adapter: slack, channel: "#b"}\n';
    assertIssue(rules('    - match: "delete_*"\n      action: approve\n', two), {
      line: 10,
      field: 'governance.rules[0].approval',
      message: "rule 'delete_*' has action: approve but no 'approval' field and 2 workflows are defined (implicit selection requires exactly 1)",
    });
    // one workflow: implied; none: the approval defaults apply
    parse(rules('    - match: "delete_*"\n      action: approve\n', 'approval:\n  a: {adapter: slack, channel: "#a"}\n'));
    parse(rules('    - match: "delete_*"\n      action: approve\n'));
  });

  it('V-009 invalid rule glob', () => {
    assertIssue(rules('    - match: "a**"\n      action: deny\n'), {
      line: 10,
      column: 14,
      field: 'governance.rules[0].match',
      message: "invalid glob pattern 'a**': Pattern syntax error near position 0: recursive wildcards must form a single path component",
    });
    assertIssue(rules('    - match: "[invalid"\n      action: deny\n'), { message: "invalid glob pattern '[invalid': Pattern syntax error near position 0: invalid range pattern" });
  });

  it('V-007 rule references an unknown source (string and list forms)', () => {
    assertIssue(rules('    - match: "x"\n      action: deny\n      source: other\n'), {
      line: 12,
      column: 15,
      field: 'governance.rules[0].source',
      message: "rule 'x' references undefined source 'other'",
    });
    assertIssue(rules('    - match: "x"\n      action: deny\n      source:\n        - upstream\n        - other\n'), {
      line: 14,
      column: 11,
      field: 'governance.rules[0].source[1]',
      message: "rule 'x' references undefined source 'other'",
    });
  });

  it('V-015 workflow timeouts below 5s', () => {
    assertIssue(withBase('approval:\n  w:\n    adapter: slack\n    channel: "#a"\n    timeout: 4s\n'), {
      line: 13,
      field: 'approval.w.timeout',
      message: "workflow 'w' has timeout of 4s, minimum is 5s",
    });
    assertIssue(withBase('approval:\n  w:\n    destination: {type: slack, channel: "#a"}\n    blocking_timeout: 4999ms\n'), {
      line: 12,
      field: 'approval.w.blocking_timeout',
      message: "workflow 'w' has blocking_timeout of 4s, minimum is 5s",
    });
    assert.equal(parse(withBase('approval:\n  w: {adapter: slack, channel: "#a", timeout: 5s}\n')).approval.w!.timeout_ms, 5000);
  });

  it('durations that are neither humantime nor ISO-8601', () => {
    assertIssue(withBase('approval:\n  w: {adapter: slack, channel: "#a", timeout: soon}\n'), {
      line: 10,
      field: 'approval.w.timeout',
      message: "invalid duration 'soon': expected e.g. 30s, 10m, 1h 30m, 2d or PT10M",
    });
    assertIssue(withBase('approval:\n  w: {adapter: slack, channel: "#a", timeout: 300}\n'), { field: 'approval.w.timeout', message: 'expected a string, got a number' });
  });

  it('workflow forms: exactly one of destination / adapter, channel where it belongs', () => {
    assertIssue(withBase('approval:\n  w:\n    timeout: 10m\n'), { line: 11, field: 'approval.w.destination' });
    assertIssue(withBase('approval:\n  w:\n    adapter: slack\n'), { line: 11, field: 'approval.w.channel' });
    assertIssue(withBase('approval:\n  w:\n    adapter: slack\n    channel: x\n    destination: {type: slack, channel: x}\n'), { line: 11, field: 'approval.w.adapter' });
    assertIssue(withBase('approval:\n  w:\n    destination: {type: slack, channel: x}\n    channel: y\n'), { line: 12, field: 'approval.w.channel' });
    assertIssue(withBase('approval:\n  w:\n    adapter: teams\n    channel: x\n'), {
      line: 11,
      field: 'approval.w.adapter',
      message: "invalid value 'teams', expected one of: slack, console, webhook",
    });
    assertIssue(withBase('approval:\n  w:\n    destination: {type: approval_service, channel: x}\n'), { field: 'approval.w.destination.type' });
  });

  it('console and webhook workflows, approvers and required_approvals', () => {
    const c = parse(withBase('approval:\n  c:\n    adapter: console\n    approvers: [alice, bob]\n    required_approvals: 2\n  h:\n    destination: {type: webhook, url: "https://hooks.example/approve", secret_env: HOOK_SECRET}\n'));
    assert.deepEqual(c.approval.c!.destination, { type: 'console' });
    assert.deepEqual(c.approval.c!.approvers, ['alice', 'bob']);
    assert.equal(c.approval.c!.required_approvals, 2);
    assert.deepEqual(c.approval.h!.destination, { type: 'webhook', url: 'https://hooks.example/approve', secret_env: 'HOOK_SECRET' });
    assertIssue(withBase('approval:\n  h:\n    adapter: webhook\n'), { field: 'approval.h.url', message: "missing required field (a webhook workflow needs 'url')" });
    assertIssue(withBase('approval:\n  h:\n    adapter: webhook\n    url: ftp://x\n'), { field: 'approval.h.url' });
    assertIssue(withBase('approval:\n  c:\n    adapter: console\n    approvers: [alice]\n    required_approvals: 2\n'), { field: 'approval.c.required_approvals', message: "workflow 'c' needs 2 approvals but lists only 1 approvers" });
    assertIssue(withBase('approval:\n  c:\n    adapter: console\n    required_approvals: 0\n'), { field: 'approval.c.required_approvals' });
  });

  it('V-TEL-001..008', () => {
    const tel = (body: string): string => withBase(`telemetry:\n${body}`);
    assertIssue(tel('  sampling:\n    success_sample_rate: 1.5\n'), {
      line: 11,
      field: 'telemetry.sampling.success_sample_rate',
      message: 'invalid sample rate 1.5: must be between 0.0 and 1.0',
    });
    assertIssue(tel('  sampling:\n    success_sample_rate: -0.1\n'), { message: 'invalid sample rate -0.1: must be between 0.0 and 1.0' });
    assertIssue(tel('  otlp:\n    endpoint: "not a url"\n'), { line: 11, field: 'telemetry.otlp.endpoint', message: "invalid OTLP endpoint 'not a url': invalid URL format" });
    assertIssue(tel('  otlp:\n    endpoint: http://c:4318\n    protocol: thrift\n'), {
      line: 12,
      field: 'telemetry.otlp.protocol',
      message: `unknown OTLP protocol 'thrift': must be "http/protobuf" or "grpc"`,
    });
    assertIssue(tel('  sampling:\n    strategy: random\n'), { line: 11, message: `unknown sampling strategy 'random': must be "head" or "tail"` });
    assertIssue(tel('  batch:\n    max_queue_size: 0\n'), { line: 11, field: 'telemetry.batch.max_queue_size', message: 'invalid max_queue_size 0: must be > 0' });
    assertIssue(tel('  batch:\n    scheduled_delay_ms: 50\n'), { line: 11, message: 'invalid scheduled_delay_ms 50: must be >= 100' });
    assertIssue(tel('  batch:\n    max_export_batch_size: 4096\n'), {
      line: 11,
      field: 'telemetry.batch.max_export_batch_size',
      message: 'invalid max_export_batch_size 4096: must be > 0 and <= max_queue_size (2048)',
    });
    assertIssue(tel('  batch:\n    max_export_batch_size: 0\n'), { message: 'invalid max_export_batch_size 0: must be > 0 and <= max_queue_size (2048)' });
    assertIssue(tel('  batch:\n    export_timeout_ms: 99\n'), { line: 11, message: 'invalid export_timeout_ms 99: must be >= 100' });
    for (const rate of ['0.0', '0.5', '1.0']) parse(tel(`  sampling:\n    success_sample_rate: ${rate}\n`));
  });
});

describe('unknown keys are errors everywhere, at the key\'s line', () => {
  const cases: [string, string, number, string][] = [
    ['top level', withBase('polices: {}\n'), 9, 'polices'],
    ['source', withSource('    url: http://a\n    exopse: {mode: all}\n'), 6, 'sources[0].exopse'],
    ['expose', withSource('    url: http://a\n    expose:\n      mode: blocklist\n      tool: ["x"]\n'), 8, 'sources[0].expose.tool'],
    ['governance', BASE + '  rule: []\n', 9, 'governance.rule'],
    ['defaults', BASE + '    approval: x\n', 9, 'governance.defaults.approval'],
    ['rule', rules('    - match: "x"\n      action: deny\n      sources: [upstream]\n'), 12, 'governance.rules[0].sources'],
    ['workflow', withBase('approval:\n  w:\n    adapter: slack\n    channel: x\n    approver_group: [alice]\n'), 13, 'approval.w.approver_group'],
    ['destination', withBase('approval:\n  w:\n    destination:\n      type: slack\n      channel: x\n      mentions: ["@a"]\n'), 14, 'approval.w.destination.mentions'],
    ['cedar', withBase('cedar:\n  policy_paths: x\n'), 10, 'cedar.policy_paths'],
    ['telemetry', withBase('telemetry:\n  enable: true\n'), 10, 'telemetry.enable'],
    ['otlp', withBase('telemetry:\n  otlp:\n    endpoint: http://c\n    header: {}\n'), 12, 'telemetry.otlp.header'],
    ['batch', withBase('telemetry:\n  batch:\n    max_queue: 1\n'), 11, 'telemetry.batch.max_queue'],
  ];
  for (const [where, text, line, field] of cases) {
    it(where, () => {
      const key = field.split('.').pop()!;
      const e = assertIssue(text, { line, field, message: `unknown field '${key}'` });
      assert.equal(e.line, line);
      assert.match(e.message, new RegExp(`^${F.replace(/[.]/g, '\\.')}:${line}:\\d+: field '${field.replace(/[.[\]]/g, '\\$&')}': unknown field '${key}'$`, 'm'));
    });
  }

  it('even a misspelt key in an otherwise valid rule stops the load (never a silent no-op)', () => {
    const e = configError(rules('    - match: "admin_*"\n      acton: deny\n'));
    assert.deepEqual(
      e.issues.map((i) => [i.line, i.field, i.message]),
      [
        [10, 'governance.rules[0].action', 'missing required field'],
        [11, 'governance.rules[0].acton', "unknown field 'acton'"],
      ],
    );
  });
});

describe('error reporting', () => {
  it('reports every problem, one per line, in file order, with file, line, column and field', () => {
    const text = `schema: 1
sources:
  - id: upstream
    kind: mcp
    urll: http://localhost:3000
governance:
  defaults:
    action: Forward
  rules:
    - match: x
      action: deny
      extra: 1
`;
    const e = configError(text);
    assert.ok(e instanceof ConfigError);
    assert.equal(e.file, F);
    assert.equal(e.line, 5);
    assert.equal(e.column, 5);
    assert.equal(e.field, 'sources[0].urll');
    assert.deepEqual(e.message.split('\n'), [
      `${F}:5:5: field 'sources[0].urll': unknown field 'urll'`,
      `${F}:8:13: field 'governance.defaults.action': invalid value 'Forward', expected one of: forward, deny, approve, policy`,
      `${F}:12:7: field 'governance.rules[0].extra': unknown field 'extra'`,
    ]);
  });

  it('reports every cross-field problem at once', () => {
    const e = configError(rules('    - match: "a**"\n      action: policy\n    - match: y\n      action: approve\n      approval: w\n'));
    assert.deepEqual(e.issues.map((i) => i.field), ['governance.rules[0].policy_id', 'governance.rules[0].match', 'governance.rules[1].approval']);
  });

  it('wrong types name what was expected', () => {
    assertIssue(withSource('    url: http://a\n    enabled: yes\n'), { line: 6, field: 'sources[0].enabled', message: 'expected true or false, got a string' });
    assertIssue(BASE.replace('schema: 1', 'schema: "1"'), { field: 'schema', message: 'expected a number, got a string' });
    assertIssue(BASE + '  rules: {}\n', { line: 9, field: 'governance.rules', message: 'expected a list, got a mapping' });
    assertIssue(withBase('approval:\n'), { line: 9, field: 'approval', message: 'expected a mapping, got nothing (null)' });
    assertIssue('- a\n- b\n', { line: 1, column: 1, message: 'expected a mapping, got a list' });
  });

  it('YAML syntax errors name the line', () => {
    const e = configError('schema: 1\nsources: [\n  - id: upstream\n    kind: mcp\ngovernance: {defaults: {action: forward\n');
    assert.ok(e.issues.length >= 1);
    assert.ok(e.issues.every((i) => i.message.startsWith('YAML parse error: ') && i.line >= 1));
    assert.ok(e.message.startsWith(`${F}:`));
  });

  it('duplicate keys are errors', () => {
    assertIssue(BASE.replace('    kind: mcp\n', '    kind: mcp\n    kind: mcp\n'), { line: 5, column: 5, message: 'YAML parse error: Map keys must be unique' });
  });

  it('an unset variable fails with its line; a commented one does not', () => {
    const text = BASE.replace('http://localhost:3000', '${UPSTREAM_URL}');
    const e = configError(text);
    assert.deepEqual(e.issues, [{ line: 5, column: 10, message: "environment variable 'UPSTREAM_URL' not set (required for field 'configuration')" }]);
    assert.equal(e.message, `${F}:5:10: environment variable 'UPSTREAM_URL' not set (required for field 'configuration')`);
    assert.equal(parse(text, { UPSTREAM_URL: 'http://mcp:3000' }).sources[0]!.url, 'http://mcp:3000');
    assert.equal(parse(`# url: \${OLD_URL}\n${BASE}`).sources[0]!.url, 'http://localhost:3000');
    assert.equal(parse(BASE.replace('http://localhost:3000', '${U:-http://fallback:1}  # was ${OLD}')).sources[0]!.url, 'http://fallback:1');
  });

  it('fieldName formats paths', () => {
    assert.equal(fieldName(['governance', 'rules', 0, 'match']), 'governance.rules[0].match');
    assert.equal(fieldName(['sources', 1]), 'sources[1]');
    assert.equal(fieldName([]), '');
  });
});

describe('loadConfigFile', () => {
  it('reads a file and resolves its absolute path', () => {
    const dir = tempDir();
    const p = writeIn(dir, 'thoughtgate.yaml', BASE);
    const c = loadConfigFile(p, {});
    assert.equal(c.path, p);
    assert.equal(c.sources[0]!.id, 'upstream');
  });

  it('a missing file is a ConfigError', () => {
    const p = join(tempDir(), 'nope.yaml');
    assert.throws(() => loadConfigFile(p, {}), (e: unknown) => e instanceof ConfigError && e.message === `${p}: configuration file not found` && e.line === 0);
  });

  it('parseConfig and loadConfigFile agree', () => {
    const dir = tempDir();
    const p = writeIn(dir, 'c.yaml', BASE);
    assert.deepEqual(loadConfigFile(p, {}), parseConfig(BASE, p, {}));
  });
});

describe('issue 13: nothing of ours for a governed server, one token per approver', () => {
  it('refuses THOUGHTGATE_* in a stdio source\'s env: and env_passthrough (any case)', () => {
    assertIssue(withSource('    command: srv\n    env:\n      THOUGHTGATE_ADMIN_TOKEN: x\n'), {
      field: 'sources[0].env.THOUGHTGATE_ADMIN_TOKEN',
      message: "'THOUGHTGATE_ADMIN_TOKEN' is ThoughtGate's own setting: THOUGHTGATE_* variables are never set for a server; rename it",
    });
    assertIssue(withSource('    command: srv\n    env_passthrough: [HOME_X, thoughtgate_api_token]\n'), {
      field: 'sources[0].env_passthrough[1]',
      message: "'thoughtgate_api_token' is ThoughtGate's own setting: THOUGHTGATE_* variables are never passed to a server",
    });
    assert.deepEqual(parse(withSource('    command: srv\n    env_passthrough: [OPERATOR_X]\n')).sources[0]!.env_passthrough, ['OPERATOR_X']);
  });

  it('env_passthrough needs a command: source', () => {
    assertIssue(withSource('    url: http://localhost:3000\n    env_passthrough: [A]\n'), { field: 'sources[0].env_passthrough' });
  });

  it('approver_tokens: at least 16 characters, and no token shared by two approvers', () => {
    const wf = (tokens: string): string => withBase(`approval:\n  ops:\n    adapter: console\n    approvers: [alice, bob]\n    approver_tokens:\n${tokens}`);
    assertIssue(wf('      alice: short\n'), { field: 'approval.ops.approver_tokens.alice', message: "approver 'alice' has a token of 5 characters; at least 16 are needed" });
    assertIssue(wf('      alice: same-token-0123456789\n      bob: same-token-0123456789\n'), {
      field: 'approval.ops.approver_tokens.bob',
      message: "approvers 'alice' and 'bob' share one token: each approver needs their own",
    });
    const ok = parse(wf('      alice: alice-token-0123456789\n      bob: bob-token-0123456789ab\n'));
    assert.deepEqual(ok.approval.ops!.approver_tokens, { alice: 'alice-token-0123456789', bob: 'bob-token-0123456789ab' });
  });

  it('governance.unknown_methods and governance.names default to forward and exact', () => {
    const c = parse(BASE);
    assert.equal(c.governance.unknown_methods, 'forward');
    assert.equal(c.governance.names, 'exact');
    const d = parse(BASE.replace('    action: forward\n', '    action: forward\n  unknown_methods: deny\n  names: casefold\n'));
    assert.deepEqual([d.governance.unknown_methods, d.governance.names], ['deny', 'casefold']);
    configError(BASE.replace('    action: forward\n', '    action: forward\n  names: fold\n'));
  });
});
