// `thoughtgate approvals list [--json] | approve ID | reject ID [--reason R] | revoke GRANT_ID`:
// talks to a running sidecar's admin port (the same API the console uses). The token comes
// from THOUGHTGATE_ADMIN_TOKEN, else from the file a sidecar that generated its own wrote in
// its state directory. The token decides who votes: an approver's own token (approver_tokens)
// votes as that approver; the admin token as `operator`. Arguments are shown as the sidecar
// sends them: with the workflow's redact_fields masked.
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveSettings } from './settings.js';

export const APPROVALS_HELP = `Usage:
  thoughtgate approvals list [--json] [--all]
  thoughtgate approvals approve ID [--scope once|session|hours] [--hours N] [--reason TEXT]
  thoughtgate approvals reject ID [--reason TEXT]
  thoughtgate approvals grants [--json]
  thoughtgate approvals revoke GRANT_ID

Options:
  --admin URL      the sidecar's admin address (default http://127.0.0.1:7469)
  --by NAME        a note of who you are (logged; the token decides who votes)
  --json           machine-readable output: list prints
                   [{id, tool, principal, created_at, state, expires_at, workflow, arguments}]

The token is $THOUGHTGATE_ADMIN_TOKEN, else the admin-token file in $THOUGHTGATE_STATE_DIR.
Votes count as the token's owner: set THOUGHTGATE_ADMIN_TOKEN to your own approver token
(approval.<workflow>.approver_tokens) to vote as yourself; the admin token votes as 'operator'.
`;

interface View { id: string; tool: string; principal: string; created_at: string; state: string; expires_at: string; workflow?: string; arguments: unknown; votes?: unknown[]; required_approvals?: number; decided_by?: string; reason?: string }

function token(): string | undefined {
  const env = process.env['THOUGHTGATE_ADMIN_TOKEN'];
  if (env) return env;
  try {
    const dir = resolveSettings({}).approvals.stateDir;
    return readFileSync(join(dir, 'admin-token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const t = token();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (t !== undefined) headers['authorization'] = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    throw new Error(`cannot reach the sidecar's admin port at ${base}: ${(e as Error).cause ? String((e as Error & { cause: Error }).cause.message) : (e as Error).message}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = { message: text.slice(0, 200) };
  }
  if (res.status === 401) throw new Error(`unauthorized: set THOUGHTGATE_ADMIN_TOKEN to the sidecar's admin token${t === undefined ? ' (none found)' : ''}`);
  return { status: res.status, json };
}

function fail(r: { status: number; json: unknown }): never {
  const j = r.json as { error?: string; message?: string } | undefined;
  throw new Error(`${j?.message ?? j?.error ?? `HTTP ${r.status}`}`);
}

export async function approvalsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      admin: { type: 'string' },
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      reason: { type: 'string' },
      scope: { type: 'string' },
      hours: { type: 'string' },
      by: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, id] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(APPROVALS_HELP);
    return values.help ? 0 : 2;
  }
  const base = values.admin ?? process.env['THOUGHTGATE_ADMIN_URL'] ?? 'http://127.0.0.1:7469';
  const by = values.by ?? `${safeUser()}@${hostname()}`;
  switch (sub) {
    case 'list': {
      const r = await call(base, 'GET', `/api/approvals?state=${values.all ? 'all' : 'pending'}`);
      if (r.status !== 200 || !Array.isArray(r.json)) fail(r);
      const views = r.json as View[];
      if (values.json) {
        // arguments as the API sent them: masked where the workflow's redact_fields say
        process.stdout.write(JSON.stringify(views.map((v) => ({ id: v.id, tool: v.tool, principal: v.principal, created_at: v.created_at, state: v.state, expires_at: v.expires_at, workflow: v.workflow, arguments: v.arguments ?? {} })), null, 2) + '\n');
      } else if (views.length === 0) {
        process.stdout.write('no approvals pending\n');
      } else {
        for (const v of views) {
          process.stdout.write(`${v.id}  ${v.state.padEnd(9)} ${v.tool}  by ${v.principal}  since ${v.created_at}  expires ${v.expires_at}\n    ${JSON.stringify(v.arguments)}\n`);
        }
      }
      return 0;
    }
    case 'approve':
    case 'reject': {
      if (id === undefined) throw new Error(`approvals ${sub} needs an approval id (see 'thoughtgate approvals list')`);
      const body: Record<string, unknown> = { by, via: 'cli' };
      if (values.reason !== undefined) body['reason'] = values.reason;
      if (sub === 'approve' && values.scope !== undefined) {
        body['scope'] = values.scope;
        if (values.hours !== undefined) body['hours'] = Number(values.hours);
      }
      const r = await call(base, 'POST', `/api/approvals/${encodeURIComponent(id)}/${sub}`, body);
      if (r.status !== 200) fail(r);
      const v = (r.json as { approval?: View }).approval;
      process.stdout.write(`${id}: ${v?.state ?? (sub === 'approve' ? 'approved' : 'rejected')}\n`);
      return 0;
    }
    case 'grants': {
      const r = await call(base, 'GET', '/api/grants');
      if (r.status !== 200 || !Array.isArray(r.json)) fail(r);
      process.stdout.write(values.json ? JSON.stringify(r.json, null, 2) + '\n' : (r.json as { id: string; tool: string; expires_at: string; granted_by: string }[]).map((g) => `${g.id}  ${g.tool}  by ${g.granted_by}  until ${g.expires_at}\n`).join('') || 'no standing approvals\n');
      return 0;
    }
    case 'revoke': {
      if (id === undefined) throw new Error('approvals revoke needs a grant id (see thoughtgate approvals grants)');
      const r = await call(base, 'DELETE', `/api/grants/${encodeURIComponent(id)}`);
      if (r.status !== 200) fail(r);
      process.stdout.write(`${id}: revoked\n`);
      return 0;
    }
    default:
      process.stderr.write(`thoughtgate approvals: unknown subcommand '${sub}'\n\n${APPROVALS_HELP}`);
      return 2;
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}
