// `thoughtgate check` and `thoughtgate validate`: test a config (and its policies) before it
// ships. check replays a file of calls through the same gates as the proxy and the decision
// API and compares each decision with the expected one.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { toQuery, type ApiQuery } from '../admin/decision-api.js';
import { FORWARD_UNGOVERNED, GATE_LABELS, type Decision } from '../gates/decision.js';
import { judge } from '../gates/judge.js';
import { resolvePrincipal } from '../gates/cedar/principal.js';
import type { Principal } from '../core/policy-engine.js';
import { loadFullSnapshot } from '../load-snapshot.js';
import { lintNameGlobs } from '../policy/name-lint.js';
import type { Snapshot } from '../policy/types.js';

/** The identity a check case runs as: the one this machine resolves, or the case's own id. */
function principalOf(id: string | undefined): Principal {
  const p = resolvePrincipal(process.env);
  return id === undefined ? p : { ...p, id };
}


export interface CheckCase {
  action: unknown;
  expect: string | undefined;
  /** where in the cases file, for messages */
  where: string;
}

/** Reads cases from YAML (a list, or {cases: [...]}) or NDJSON (one JSON object a line). */
export function readCases(path: string): CheckCase[] {
  const text = readFileSync(path, 'utf8');
  let items: unknown[];
  let where: (i: number) => string;
  if (path.endsWith('.ndjson') || path.endsWith('.jsonl')) {
    const lines = text.split('\n');
    items = [];
    const lineOf: number[] = [];
    lines.forEach((l, i) => {
      if (l.trim() === '') return;
      try {
        items.push(JSON.parse(l));
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not JSON: ${(e as Error).message}`);
      }
      lineOf.push(i + 1);
    });
    where = (i) => `${path}:${lineOf[i]}`;
  } else {
    const doc: unknown = parseYaml(text);
    const list = Array.isArray(doc) ? doc : (doc as { cases?: unknown } | null)?.cases;
    if (!Array.isArray(list)) throw new Error(`${path}: expected a list of cases (or {cases: [...]})`);
    items = list;
    where = (i) => `${path} case ${i + 1}`;
  }
  return items.map((item, i) => {
    const o = (item ?? {}) as Record<string, unknown>;
    const expect = typeof o['expect'] === 'string' ? o['expect'].toLowerCase() : undefined;
    if (expect !== undefined && !['forward', 'deny', 'approve'].includes(expect)) throw new Error(`${where(i)}: expect must be forward, deny or approve (got '${o['expect']}')`);
    return { action: o, expect, where: where(i) };
  });
}

export interface CheckRow {
  where: string;
  call: string;
  decision: string;
  gate: string;
  matched: string;
  expect: string;
  ok: boolean;
}

export async function runCheck(
  snapshot: Snapshot,
  cases: CheckCase[],
  decide: (q: ApiQuery, s: Snapshot) => Decision | Promise<Decision> = (q, s) =>
    judge({ method: q.method, resource: q.resource, kind: q.kind, sourceId: q.sourceId, arguments: q.arguments, principal: principalOf(q.principal) }, s),
): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  const source = snapshot.config.sources[0]!.id;
  for (const c of cases) {
    const q = toQuery(c.action, source);
    if (typeof q === 'string') throw new Error(`${c.where}: ${q}`);
    const d = await decide(q, snapshot);
    const decision = d.action === 'policy' ? 'deny' : d.action;
    rows.push({
      where: c.where,
      call: q.resource === undefined ? q.method : q.method === 'tools/call' ? q.resource : `${q.method} ${q.resource}`,
      decision,
      gate: d === FORWARD_UNGOVERNED ? '-' : GATE_LABELS[d.gate],
      matched: d.policyIds?.length ? d.policyIds.join(',') : d.gate === 'gate3' ? '(no permit)' : d.rule ?? (d.reason.startsWith('no rule matched') ? '(default)' : '-'),
      expect: c.expect ?? '',
      ok: c.expect === undefined || c.expect === decision,
    });
  }
  return rows;
}

export function formatTable(rows: CheckRow[]): string {
  const head = ['#', 'call', 'decision', 'gate', 'rule / policy', 'expected', ''];
  const body = rows.map((r, i) => [String(i + 1), r.call, r.decision, r.gate, r.matched, r.expect, r.expect === '' ? '' : r.ok ? 'ok' : 'FAIL']);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c]!.length)));
  const line = (cells: string[]) => cells.map((x, c) => x.padEnd(widths[c]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n') + '\n';
}

/** `thoughtgate validate`: loads config and policies exactly as `serve` would. */
export async function validateConfig(path: string): Promise<string> {
  const s = await loadFullSnapshot(path, { workers: 0, queue: 1 });
  await s.cedar?.close();
  const c = s.config;
  const lines = [`${path}: valid (snapshot ${s.version})`, `  sources: ${c.sources.map((x) => `${x.id} (${x.url ?? `command: ${x.command}`})`).join(', ')}`, `  rules: ${c.governance.rules.length}, default: ${c.governance.defaults.action}`];
  if (c.cedar) lines.push(`  cedar: ${s.cedar?.policyCount ?? 0} policies from ${c.cedar.policies.join(', ')}${c.cedar.schema ? `, validated against ${c.cedar.schema}` : ''}`);
  for (const w of c.warnings) lines.push(`  warning: ${w}`);
  for (const w of lintNameGlobs(c)) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}
