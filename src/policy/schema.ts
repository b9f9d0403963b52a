// The YAML's shape (schema: 1) as zod schemas. Every object is strict: an unknown key is an
// error everywhere, also in `sources`, `expose` and `destination`, where the original ignored
// them, because a misspelt key must never silently switch a rule off. Cross-field rules
// (V-001…V-016, forms, files) live in validate.ts; this file is only about shape.
import { z } from 'zod';
import { parseDuration } from './duration.js';

const action = z.enum(['forward', 'deny', 'approve', 'policy']);

/** a string, or a list of strings; a lone string becomes a one-element list */
const oneOrMany = z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(z.string()).min(1));

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `invalid duration '${text}': expected e.g. 30s, 10m, 1h 30m, 2d or PT10M` });
    return z.NEVER;
  }
  return ms;
});

const expose = z
  .object({
    mode: z.enum(['all', 'allowlist', 'blocklist']),
    tools: z.array(z.string()).optional(),
  })
  .strict();

const source = z
  .object({
    id: z.string(),
    kind: z.string(),
    url: z.string().optional(),
    command: z.string().optional(),
    args: z.array(z.string()).optional(),
    env: z.record(z.string()).optional(),
    /** names of the proxy's own environment variables a stdio server may see (besides PATH, HOME, locale) */
    env_passthrough: z.array(z.string()).optional(),
    prefix: z.string().optional(),
    description: z.string().optional(),
    enabled: z.boolean().optional(),
    expose: expose.optional(),
  })
  .strict();

const rule = z
  .object({
    match: z.string(),
    action,
    approval: z.string().optional(),
    policy_id: z.string().optional(),
    source: oneOrMany.optional(),
    description: z.string().optional(),
  })
  .strict();

const destination = z
  .object({
    type: z.enum(['slack', 'console', 'webhook']),
    channel: z.string().optional(),
    token_env: z.string().optional(),
    mention: z.array(z.string()).optional(),
    url: z.string().optional(),
    secret_env: z.string().optional(),
  })
  .strict();

/** Both forms in one object: code `{destination: {type, channel…}}`, README `{adapter, channel}`. */
const workflow = z
  .object({
    destination: destination.optional(),
    adapter: z.enum(['slack', 'console', 'webhook']).optional(),
    channel: z.string().optional(),
    url: z.string().optional(),
    secret_env: z.string().optional(),
    approvers: z.array(z.string()).optional(),
    required_approvals: z.number().int().min(1).max(10).optional(),
    timeout: duration.optional(),
    on_timeout: z.enum(['deny', 'approve']).optional(),
    blocking_timeout: duration.optional(),
    redact_fields: z.array(z.string()).optional(),
    /** per-approver secrets: a vote made with one counts as that approver, whatever its body says */
    approver_tokens: z.record(z.string()).optional(),
  })
  .strict();

/** Both forms: code `{policies: [...], schema?}`, README `{policy_path: p | [p...]}`. */
const cedar = z
  .object({
    policies: z.array(z.string()).min(1).optional(),
    policy_path: oneOrMany.optional(),
    schema: z.string().optional(),
  })
  .strict();

const count = z.number().int().nonnegative();

const telemetry = z
  .object({
    enabled: z.boolean().default(false),
    otlp: z
      .object({
        endpoint: z.string(),
        protocol: z.string().default('http/protobuf'),
        headers: z.record(z.string()).default({}),
      })
      .strict()
      .optional(),
    sampling: z
      .object({
        strategy: z.string().default('head'),
        success_sample_rate: z.number().default(1.0),
      })
      .strict()
      .default({}),
    batch: z
      .object({
        max_queue_size: count.default(2048),
        max_export_batch_size: count.default(512),
        scheduled_delay_ms: count.default(5000),
        export_timeout_ms: count.default(30000),
      })
      .strict()
      .default({}),
    resource: z.record(z.string()).default({}),
    stdio: z.object({ propagate_upstream: z.boolean().default(false) }).strict().optional(),
  })
  .strict();

export const configSchema = z
  .object({
    schema: z.number().int(),
    sources: z.array(source),
    governance: z
      .object({
        defaults: z.object({ action }).strict(),
        rules: z.array(rule).default([]),
        /** methods outside the era's MCP method set: forwarded (default) or refused */
        unknown_methods: z.enum(['forward', 'deny']).optional(),
        /** how tool and prompt names are compared: exact (MCP names are case-sensitive) or casefold */
        names: z.enum(['exact', 'casefold']).optional(),
      })
      .strict(),
    approval: z.record(workflow).optional(),
    cedar: cedar.optional(),
    telemetry: telemetry.default({}),
    /** where approvals live: a directory (embedded store) or redis://… (shared by replicas) */
    state: z.string().optional(),
    /** the audit trail: how durable a line is before its call goes on, and what a failed trail does */
    audit: z
      .object({
        durability: z.enum(['buffered', 'strict']).optional(),
        on_failure: z.enum(['fail_closed', 'continue']).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type RawConfig = z.output<typeof configSchema>;
export type RawSource = RawConfig['sources'][number];
export type RawWorkflow = NonNullable<RawConfig['approval']>[string];
