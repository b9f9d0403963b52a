// Cross-field validation (the original's V-001…V-016 and V-TEL-001…008, with its messages)
// and normalisation of both YAML forms into the Config shape. Findings carry the YAML path
// they are about; config.ts turns paths into file:line:column.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { isOwnVariable } from '../core/own-env.js';
import { globError } from './glob.js';
import type { RawConfig, RawSource, RawWorkflow } from './schema.js';
import type { AuditConfig, CedarConfig, Config, Destination, RuleConfig, SourceConfig, TelemetryConfig, WorkflowConfig } from './types.js';

export type YamlPath = readonly (string | number)[];

export interface Finding {
  path: YamlPath;
  message: string;
  /** point at the key rather than its value (unknown keys) */
  atKey?: boolean;
}

/** One source for now, as in the original (V-011); multi-upstream routing comes later. */
export const MAX_SOURCES = 1;

const MIN_WORKFLOW_TIMEOUT_MS = 5000;
const DEFAULT_WORKFLOW_TIMEOUT_MS = 600_000;

type Body = Omit<Config, 'path' | 'warnings'>;

export interface Validated {
  /** undefined when there are errors */
  config: Body | undefined;
  errors: Finding[];
  warnings: Finding[];
}

/** Drop keys whose value is undefined, so normalised objects compare and print cleanly. */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

const isHttpUrl = (u: string): boolean => {
  try {
    const p = new URL(u).protocol;
    return p === 'http:' || p === 'https:';
  } catch {
    return false;
  }
};

const isUrl = (u: string): boolean => {
  try {
    new URL(u);
    return true;
  } catch {
    return false;
  }
};

function sourceIdError(id: string): string | undefined {
  if (id.startsWith('_')) return `source ID '${id}' uses reserved prefix '_'`;
  const invalid = (reason: string): string => `source ID '${id}' is invalid: ${reason}`;
  if (id === '') return invalid('source ID must not be empty');
  if (id.trim() !== id) return invalid('source ID must not have leading or trailing whitespace');
  if (!/^[A-Za-z0-9._-]+$/.test(id)) return invalid('source ID must contain only [a-zA-Z0-9._-]');
  return undefined;
}

/** `raw` is the zod output; `js` the plain YAML value, to tell `x` from `[x]` for paths. */
/**
 * How the config will be used. `wrapServers`: the agent's server ids under `thoughtgate wrap`,
 * each governed as a source of its own: sources may then be several (or none) and rules may
 * name these ids in `source:` without defining them.
 */
export interface ConfigContext {
  wrapServers?: readonly string[];
}

export function validate(raw: RawConfig, js: unknown, dir: string, ctx: ConfigContext = {}): Validated {
  const errors: Finding[] = [];
  const warnings: Finding[] = [];
  const err = (path: YamlPath, message: string): void => void errors.push({ path, message });
  const warn = (path: YamlPath, message: string): void => void warnings.push({ path, message });
  const isList = (path: YamlPath): boolean => Array.isArray(valueAt(js, path));

  if (raw.schema !== 1) err(['schema'], `unsupported schema version ${raw.schema}, expected 1`);

  // sources
  const wrap = ctx.wrapServers !== undefined;
  if (raw.sources.length === 0 && !wrap) err(['sources'], 'no sources defined in configuration');
  else if (raw.sources.length > MAX_SOURCES && !wrap) err(['sources'], `v0.2 supports only a single source, found ${raw.sources.length}`);
  const ids = new Set<string>();
  const prefixes = new Set<string>();
  raw.sources.forEach((s, i) => checkSource(s, ['sources', i], ids, prefixes, err));
  for (const id of ctx.wrapServers ?? []) ids.add(id);

  // approval workflows
  const workflows = raw.approval ?? {};
  const workflowNames = Object.keys(workflows);
  for (const name of workflowNames) checkWorkflow(name, workflows[name]!, ['approval', name], err, warn);

  // rules
  raw.governance.rules.forEach((r, i) => {
    const at = ['governance', 'rules', i];
    if (r.action === 'policy' && r.policy_id === undefined) {
      err([...at, 'policy_id'], `missing policy_id for action: policy in rule '${r.match}'`);
    }
    if (r.policy_id !== undefined && r.action !== 'policy') {
      warn([...at, 'policy_id'], `policy_id '${r.policy_id}' has no effect in rule '${r.match}': its action is '${r.action}', not 'policy' (V-004)`);
    }
    if (r.approval !== undefined) {
      // unlike the original, checked for every action: a misspelt fallback workflow is a bug too
      if (!Object.hasOwn(workflows, r.approval)) err([...at, 'approval'], `undefined workflow '${r.approval}' in rule '${r.match}'`);
      else if (r.action === 'forward' || r.action === 'deny') {
        warn([...at, 'approval'], `approval '${r.approval}' has no effect in rule '${r.match}': its action is '${r.action}'`);
      }
    } else if (r.action === 'approve' && workflowNames.length > 1) {
      // With no workflows the approval defaults apply (the README's own examples rely on
      // that); with exactly one it is implied; with several the choice would be a guess.
      err([...at, 'approval'], `rule '${r.match}' has action: approve but no 'approval' field and ${workflowNames.length} workflows are defined (implicit selection requires exactly 1)`);
    }
    const bad = globError(r.match);
    if (bad !== undefined) err([...at, 'match'], bad.message);
    const list = isList([...at, 'source']);
    r.source?.forEach((id, j) => {
      if (ids.has(id)) return;
      const where = list ? [...at, 'source', j] : [...at, 'source'];
      // Under wrap one governance config serves whatever servers this agent has today.
      if (wrap) warn(where, `rule '${r.match}' names source '${id}', which is neither in sources nor a server of this agent: it applies to nothing now`);
      else err(where, `rule '${r.match}' references undefined source '${id}'`);
    });
  });

  const cedar = checkCedar(raw, js, dir, err);
  checkTelemetry(raw.telemetry, err);

  if (errors.length > 0) return { config: undefined, errors, warnings };
  return {
    config: {
      schema: 1,
      sources: raw.sources.map(normaliseSource),
      governance: {
        defaults: { action: raw.governance.defaults.action },
        rules: raw.governance.rules.map((r) =>
          clean<RuleConfig>({ match: r.match, action: r.action, approval: r.approval, policy_id: r.policy_id, source: r.source, description: r.description }),
        ),
        unknown_methods: raw.governance.unknown_methods ?? 'forward',
        names: raw.governance.names ?? 'exact',
      },
      approval: Object.fromEntries(workflowNames.map((n) => [n, normaliseWorkflow(workflows[n]!)])),
      ...(cedar === undefined ? {} : { cedar }),
      telemetry: normaliseTelemetry(raw.telemetry),
      ...(raw.state === undefined ? {} : { state: raw.state }),
      ...(raw.audit === undefined ? {} : { audit: clean<AuditConfig>({ durability: raw.audit.durability, on_failure: raw.audit.on_failure }) }),
    },
    errors,
    warnings,
  };
}

type Err = (path: YamlPath, message: string) => void;

function checkSource(s: RawSource, at: YamlPath, ids: Set<string>, prefixes: Set<string>, err: Err): void {
  if (s.kind !== 'mcp') err([...at, 'kind'], `unsupported source kind '${s.kind}', expected 'mcp'`);
  const idError = sourceIdError(s.id);
  if (idError !== undefined) err([...at, 'id'], idError);
  if (ids.has(s.id)) err([...at, 'id'], `duplicate source ID: '${s.id}'`);
  ids.add(s.id);
  if (s.prefix !== undefined) {
    if (prefixes.has(s.prefix)) err([...at, 'prefix'], `duplicate prefix: '${s.prefix}'`);
    prefixes.add(s.prefix);
  }
  if (s.url !== undefined && s.command !== undefined) {
    err([...at, 'command'], "'url' and 'command' are mutually exclusive: give one");
  } else if (s.url === undefined && s.command === undefined) {
    err([...at, 'url'], "missing required field: give 'url' (HTTP upstream) or 'command' (stdio upstream)");
  }
  if (s.url !== undefined && !isHttpUrl(s.url)) err([...at, 'url'], `invalid URL '${s.url}': invalid URL format`);
  if (s.command !== undefined && s.command.trim() === '') err([...at, 'command'], 'command must not be empty');
  if (s.command === undefined) {
    if (s.args !== undefined) err([...at, 'args'], "'args' is only valid with 'command'");
    if (s.env !== undefined) err([...at, 'env'], "'env' is only valid with 'command'");
    if (s.env_passthrough !== undefined) err([...at, 'env_passthrough'], "'env_passthrough' is only valid with 'command'");
  }
  // Our settings and secrets never reach a governed server (upstream/child-env.ts refuses them at start too).
  for (const name of Object.keys(s.env ?? {})) {
    if (isOwnVariable(name)) err([...at, 'env', name], `'${name}' is ThoughtGate's own setting: THOUGHTGATE_* variables are never set for a server; rename it`);
  }
  for (const [j, name] of (s.env_passthrough ?? []).entries()) {
    if (isOwnVariable(name)) err([...at, 'env_passthrough', j], `'${name}' is ThoughtGate's own setting: THOUGHTGATE_* variables are never passed to a server`);
  }
  const ex = s.expose;
  if (ex === undefined) return;
  if (ex.mode === 'all') {
    if (ex.tools !== undefined) err([...at, 'expose', 'tools'], "'tools' has no effect with mode 'all': use allowlist or blocklist");
  } else if (ex.tools === undefined) {
    err([...at, 'expose', 'tools'], `missing required field: mode '${ex.mode}' needs a list of tool globs`);
  }
  ex.tools?.forEach((g, j) => {
    const bad = globError(g);
    if (bad !== undefined) {
      err([...at, 'expose', 'tools', j], `invalid glob pattern '${g}': invalid expose pattern for source '${s.id}': ${bad.reason}`);
    }
  });
}

/** shortest per-approver token accepted: anything shorter is guessable */
export const MIN_APPROVER_TOKEN_CHARS = 16;

function checkWorkflow(name: string, w: RawWorkflow, at: YamlPath, err: Err, warn: Err): void {
  if (w.destination !== undefined && w.adapter !== undefined) {
    err([...at, 'adapter'], "give either 'destination' or the short form 'adapter' + 'channel', not both");
  } else if (w.destination === undefined && w.adapter === undefined) {
    err([...at, 'destination'], "missing required field (or the short form 'adapter: slack' with 'channel')");
  }
  if (w.destination !== undefined) {
    for (const f of ['channel', 'url', 'secret_env'] as const) if (w[f] !== undefined) err([...at, f], `'${f}' belongs inside 'destination'`);
  }
  const type = w.destination?.type ?? w.adapter;
  const where = w.destination !== undefined ? [...at, 'destination'] : at;
  const channel = w.destination?.channel ?? w.channel;
  const url = w.destination?.url ?? w.url;
  if (type === 'slack' && channel === undefined) err([...where, 'channel'], "missing required field (a slack workflow needs 'channel')");
  if (type === 'webhook') {
    if (url === undefined) err([...where, 'url'], "missing required field (a webhook workflow needs 'url')");
    else if (!/^https?:\/\//.test(url)) err([...where, 'url'], `webhook url must be http:// or https:// (got '${url}')`);
  }
  if (w.required_approvals !== undefined && w.approvers !== undefined && w.approvers.length > 0 && w.approvers.length < w.required_approvals) {
    err([...at, 'required_approvals'], `workflow '${name}' needs ${w.required_approvals} approvals but lists only ${w.approvers.length} approvers`);
  }
  const seen = new Map<string, string>();
  for (const [who, token] of Object.entries(w.approver_tokens ?? {})) {
    const where = [...at, 'approver_tokens', who];
    if (who.trim() === '') err(where, 'an approver name must not be empty');
    if (token.length < MIN_APPROVER_TOKEN_CHARS) err(where, `approver '${who}' has a token of ${token.length} characters; at least ${MIN_APPROVER_TOKEN_CHARS} are needed`);
    const twin = seen.get(token);
    if (twin !== undefined) err(where, `approvers '${twin}' and '${who}' share one token: each approver needs their own`);
    seen.set(token, who);
    if (w.approvers !== undefined && w.approvers.length > 0 && !w.approvers.includes(who)) {
      warn(where, `'${who}' has a token but is not in approvers of workflow '${name}': their votes will be refused`);
    }
  }
  for (const field of ['timeout', 'blocking_timeout'] as const) {
    const ms = w[field];
    if (ms !== undefined && ms < MIN_WORKFLOW_TIMEOUT_MS) {
      err([...at, field], `workflow '${name}' has ${field} of ${Math.floor(ms / 1000)}s, minimum is 5s`);
    }
  }
}

function checkCedar(raw: RawConfig, js: unknown, dir: string, err: Err): CedarConfig | undefined {
  const c = raw.cedar;
  if (c === undefined) return undefined;
  if (c.policies !== undefined && c.policy_path !== undefined) {
    err(['cedar', 'policy_path'], "give either 'policies' or 'policy_path', not both");
  } else if (c.policies === undefined && c.policy_path === undefined) {
    err(['cedar', 'policies'], "missing required field (or the short form 'policy_path')");
  }
  const key = c.policies !== undefined ? 'policies' : 'policy_path';
  const scalar = typeof valueAt(js, ['cedar', key]) === 'string';
  const checkFile = (given: string, path: YamlPath): string => {
    const abs = resolve(dir, given);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (st === undefined) err(path, `policy file not found: ${abs}`);
    else if (!st.isFile()) err(path, `policy file is not a regular file: ${abs}`);
    return abs;
  };
  const policies = (c.policies ?? c.policy_path ?? []).map((p, j) => checkFile(p, scalar ? ['cedar', key] : ['cedar', key, j]));
  const schema = c.schema === undefined ? undefined : checkFile(c.schema, ['cedar', 'schema']);
  return clean<CedarConfig>({ policies, schema });
}

function checkTelemetry(t: RawConfig['telemetry'], err: Err): void {
  const at = ['telemetry'];
  const rate = t.sampling.success_sample_rate;
  if (!(rate >= 0 && rate <= 1)) err([...at, 'sampling', 'success_sample_rate'], `invalid sample rate ${rate}: must be between 0.0 and 1.0`);
  const strategy = t.sampling.strategy;
  if (strategy !== 'head' && strategy !== 'tail') {
    err([...at, 'sampling', 'strategy'], `unknown sampling strategy '${strategy}': must be "head" or "tail"`);
  }
  if (t.otlp !== undefined) {
    if (!isUrl(t.otlp.endpoint)) err([...at, 'otlp', 'endpoint'], `invalid OTLP endpoint '${t.otlp.endpoint}': invalid URL format`);
    const p = t.otlp.protocol;
    if (p !== 'http/protobuf' && p !== 'grpc') err([...at, 'otlp', 'protocol'], `unknown OTLP protocol '${p}': must be "http/protobuf" or "grpc"`);
  }
  const b = t.batch;
  const bat = [...at, 'batch'];
  if (b.max_queue_size === 0) err([...bat, 'max_queue_size'], `invalid max_queue_size ${b.max_queue_size}: must be > 0`);
  if (b.scheduled_delay_ms < 100) err([...bat, 'scheduled_delay_ms'], `invalid scheduled_delay_ms ${b.scheduled_delay_ms}: must be >= 100`);
  if (b.max_export_batch_size === 0 || b.max_export_batch_size > b.max_queue_size) {
    err([...bat, 'max_export_batch_size'], `invalid max_export_batch_size ${b.max_export_batch_size}: must be > 0 and <= max_queue_size (${b.max_queue_size})`);
  }
  if (b.export_timeout_ms < 100) err([...bat, 'export_timeout_ms'], `invalid export_timeout_ms ${b.export_timeout_ms}: must be >= 100`);
}

function normaliseSource(s: RawSource): SourceConfig {
  return clean<SourceConfig>({
    id: s.id,
    kind: 'mcp',
    url: s.url,
    command: s.command,
    args: s.args ?? [],
    env: s.env ?? {},
    env_passthrough: s.env_passthrough ?? [],
    prefix: s.prefix,
    description: s.description,
    enabled: s.enabled ?? true,
    expose: s.expose === undefined ? { mode: 'all', tools: [] } : { mode: s.expose.mode, tools: s.expose.tools ?? [] },
  });
}

function normaliseWorkflow(w: RawWorkflow): WorkflowConfig {
  const d = w.destination ?? { type: w.adapter!, channel: w.channel, url: w.url, secret_env: w.secret_env };
  const destination: Destination =
    d.type === 'slack' ? clean({ type: 'slack', channel: d.channel!, token_env: d.token_env, mention: d.mention })
      : d.type === 'webhook' ? clean({ type: 'webhook', url: d.url!, secret_env: d.secret_env })
        : { type: 'console' };
  return clean<WorkflowConfig>({
    destination,
    approvers: w.approvers ?? [],
    required_approvals: w.required_approvals ?? 1,
    timeout_ms: w.timeout ?? DEFAULT_WORKFLOW_TIMEOUT_MS,
    on_timeout: w.on_timeout ?? 'deny',
    blocking_timeout_ms: w.blocking_timeout,
    redact_fields: w.redact_fields ?? [],
    approver_tokens: w.approver_tokens ?? {},
  });
}

function normaliseTelemetry(t: RawConfig['telemetry']): TelemetryConfig {
  return clean<TelemetryConfig>({
    enabled: t.enabled,
    otlp:
      t.otlp === undefined
        ? undefined
        : { endpoint: t.otlp.endpoint, protocol: t.otlp.protocol as 'http/protobuf' | 'grpc', headers: t.otlp.headers },
    sampling: { strategy: t.sampling.strategy as 'head' | 'tail', success_sample_rate: t.sampling.success_sample_rate },
    batch: { ...t.batch },
    resource: t.resource,
    stdio: t.stdio === undefined ? undefined : { propagate_upstream: t.stdio.propagate_upstream },
  });
}

/** The plain value at `path` in a parsed YAML value, or undefined. */
export function valueAt(js: unknown, path: YamlPath): unknown {
  let v = js;
  for (const seg of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, seg)) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}
