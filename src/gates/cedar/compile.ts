// Policy files (+ optional schema) → a Plan: plain, structured-cloneable data that the main
// thread and every worker prepare once (`preparsePolicySet`) and evaluate per request.
//
// One decision asks up to three Cedar questions: is Action::"Forward" permitted, is
// Action::"Approve", is the code-model action (ThoughtGate::Action::"tools/call" or
// "mcp/method")? cedar-wasm's cost is dominated by per-call entity parsing (~7 µs per
// attribute) and a per-policy overhead (~3 µs), so three calls would triple it. Instead the
// set is compiled once so ONE call answers all three:
//   - every policy becomes a `permit` with `action` unconstrained, tagged with the actions its
//     original scope admits (bits below) and its original effect. Cedar then reports every
//     satisfied policy (an all-permit set has no overriding forbid) and every error;
//   - for action A: allowed ⇔ some satisfied original-permit admits A and no satisfied
//     original-forbid admits A. That is exactly Cedar's answer for the request with action A;
//   - a policy whose conditions read `action` gets one copy per admitted action, with `action`
//     replaced by that action's literal, so its conditions see the right value;
//   - tool requests and other methods get separate prepared sets, so a policy scoped to
//     tools/call only is not evaluated for resources/read (and vice versa).
// The action's namespace is ignored in scopes: `Action::"Forward"` and
// `ThoughtGate::Action::"Forward"` (the original's embedded schema spelling) are one action;
// the same for "Approve", "tools/call", "mcp/method". Schema action groups (`memberOf`) are
// honoured in `action in …` scopes.
//
// The same pass records which request attributes the policies can read (`Needs`): requests
// carry only those (fewer attributes, faster parsing) and the decision cache keys on exactly
// those.
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { cedar, type DetailedError, type PolicyJson } from './wasm.js';
import { CedarLoadError } from './types.js';
import { collectTests } from './tool-name.js';

export const ACT_FORWARD = 1;
export const ACT_APPROVE = 2;
export const ACT_TOOLS_CALL = 4;
export const ACT_MCP_METHOD = 8;
export const TOOL_MASK = ACT_FORWARD | ACT_APPROVE | ACT_TOOLS_CALL;
export const METHOD_MASK = ACT_FORWARD | ACT_APPROVE | ACT_MCP_METHOD;

const ACTION_BITS: ReadonlyMap<string, number> = new Map([
  ['Forward', ACT_FORWARD],
  ['Approve', ACT_APPROVE],
  ['tools/call', ACT_TOOLS_CALL],
  ['mcp/method', ACT_MCP_METHOD],
]);
/** the literal substituted for `action` in a copy for that action */
const ACTION_UID: Record<number, { type: string; id: string }> = {
  [ACT_FORWARD]: { type: 'Action', id: 'Forward' },
  [ACT_APPROVE]: { type: 'Action', id: 'Approve' },
  [ACT_TOOLS_CALL]: { type: 'ThoughtGate::Action', id: 'tools/call' },
  [ACT_MCP_METHOD]: { type: 'ThoughtGate::Action', id: 'mcp/method' },
};
export const ACTION_NAME: Record<number, string> = { 1: 'Forward', 2: 'Approve', 4: 'tools/call', 8: 'mcp/method' };

export interface SourceText {
  /** path or name, used in messages */
  file: string;
  text: string;
}

export interface PlanPolicy {
  /** `@id("…")` or policyN (N counts across all files, in order) */
  id: string;
  file: string;
  line: number;
  column: number;
  effect: 'permit' | 'forbid';
  /** "id (file.cedar:12)" for reasons */
  label: string;
}

export interface PlanCopy {
  /** index into Plan.policies */
  policy: number;
  /** the original effect */
  forbid: boolean;
  /** ACT_* bits this copy answers for */
  actions: number;
}

/** Which request attributes some policy can read. */
export interface Needs {
  /** resource attributes: name, tool_name, method, server, uri, arguments */
  resource: string[];
  /** principal attributes: name, namespace, service_account, roles, labels */
  principal: string[];
  /** build the principal entity (for `principal in Role`, or attribute reads) */
  principalEntity: boolean;
  /** add ThoughtGate::Role entities (only when some policy reads `.name` off an entity literal) */
  roleEntities: boolean;
  /** top-level context attributes: policy_id, source_id, time */
  context: string[];
  /** members of context.time: hour, day_of_week, timestamp */
  time: string[];
  arguments: boolean;
  /** false when a policy reads context.time.timestamp (or the whole time/context) */
  cacheable: boolean;
}

export interface Plan {
  version: string;
  policies: PlanPolicy[];
  /** copy i has Cedar id `c<i>` */
  copies: PlanCopy[];
  /** policy text of copy i */
  texts: string[];
  /** copy indices in the prepared set for tools/call requests */
  toolSet: number[];
  /** copy indices in the prepared set for every other method */
  methodSet: number[];
  /** per copy: the policy it was emitted as (evaluate.ts specialises its conditions per tool) */
  copyJson: PolicyJson[];
  /** per copy: the keys of the tool-name tests in its conditions (tool-name.ts); [] outside the tool set */
  copyTests: string[][];
  needs: Needs;
  warnings: string[];
}

const RESOURCE_ATTRS = ['name', 'tool_name', 'method', 'server', 'uri', 'arguments'];
const PRINCIPAL_ATTRS = ['name', 'namespace', 'service_account', 'roles', 'labels'];
const CONTEXT_ATTRS = ['policy_id', 'source_id', 'time'];
const TIME_ATTRS = ['hour', 'day_of_week', 'timestamp'];

/** Content hash (12 hex, like the snapshot's) over the policy texts then the schema text. */
export function cedarVersion(policies: readonly SourceText[], schema?: SourceText): string {
  const h = createHash('sha256');
  const part = (s: string): void => {
    h.update(`${Buffer.byteLength(s)}:`);
    h.update(s);
  };
  for (const p of policies) part(p.text);
  if (schema !== undefined) {
    h.update('schema');
    part(schema.text);
  }
  return h.digest('hex').slice(0, 12);
}

// ---------------------------------------------------------------------------------------------
// locations

function lineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: offset - last };
}

function describe(e: DetailedError): string {
  let s = e.message;
  const label = e.sourceLocations?.find((l) => l.label)?.label;
  if (label) s += ` (${label})`;
  if (e.help) s += `; ${e.help}`;
  return s;
}

function located(file: string, text: string, offset: number | undefined, e: DetailedError): string {
  if (offset === undefined) return `${file}: ${describe(e)}`;
  const { line, column } = lineCol(text, offset);
  return `${file}:${line}:${column}: ${describe(e)}`;
}

// ---------------------------------------------------------------------------------------------
// splitting files into policies

interface RawPolicy {
  file: string;
  text: string;
  offset: number;
  json: PolicyJson;
  fileText: string;
}

function splitFile(src: SourceText, problems: string[]): RawPolicy[] {
  const parts = cedar.policySetTextToParts(src.text);
  if (parts.type === 'failure') {
    for (const e of parts.errors) problems.push(located(src.file, src.text, e.sourceLocations?.[0]?.start, e));
    return [];
  }
  if (parts.policy_templates.length > 0) {
    for (const t of parts.policy_templates) {
      const at = src.text.indexOf(t);
      problems.push(located(src.file, src.text, at < 0 ? undefined : at, {
        message: 'policy templates (?principal / ?resource slots) are not supported',
        help: null, code: null, url: null, severity: null,
      }));
    }
    return [];
  }
  const parsed = cedar.checkParsePolicySet({ staticPolicies: src.text });
  if (parsed.type === 'failure') {
    for (const e of parsed.errors) problems.push(located(src.file, src.text, e.sourceLocations?.[0]?.start, e));
    return [];
  }
  // parts are sorted by Cedar's id as a string (policy0, policy1, policy10, policy2, …)
  const n = parts.policies.length;
  const order = Array.from({ length: n }, (_, i) => String(i)).sort();
  const byIndex: string[] = new Array<string>(n);
  for (let k = 0; k < n; k++) byIndex[Number(order[k])] = parts.policies[k]!;
  const out: RawPolicy[] = [];
  let cursor = 0;
  for (const text of byIndex) {
    let at = src.text.indexOf(text, cursor);
    if (at < 0) at = src.text.indexOf(text);
    if (at >= 0) cursor = at + text.length;
    const j = cedar.policyToJson(text);
    if (j.type === 'failure') {
      for (const e of j.errors) problems.push(located(src.file, src.text, at < 0 ? undefined : at, e));
      continue;
    }
    out.push({ file: src.file, text, offset: Math.max(at, 0), json: j.json, fileText: src.text });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// what the policies read

interface Scan {
  resource: Set<string>;
  principal: Set<string>;
  principalVar: boolean;
  context: Set<string>;
  contextBare: boolean;
  time: Set<string>;
  timeBare: boolean;
  /** attributes read off anything that is not a variable (entity literals, records, …) */
  other: Set<string>;
  actionVar: boolean;
}

type Node = Record<string, unknown>;

const emptyScan = (): Scan => ({
  resource: new Set(), principal: new Set(), principalVar: false, context: new Set(), contextBare: false,
  time: new Set(), timeBare: false, other: new Set(), actionVar: false,
});

function bare(name: unknown, s: Scan): void {
  if (name === 'principal') s.principalVar = true;
  else if (name === 'context') s.contextBare = true;
  else if (name === 'action') s.actionVar = true;
  // a bare `resource` is compared by uid only (==, in, is): no attribute is read
}

function chain(e: Node, s: Scan): void {
  const attrs: string[] = [];
  let cur: unknown = e;
  for (;;) {
    if (cur === null || typeof cur !== 'object') break;
    const n = cur as Node;
    const dot = n['.'] as { left: unknown; attr: string } | undefined;
    const has = n['has'] as { left: unknown; attr: string | string[] } | undefined;
    if (dot !== undefined) {
      attrs.unshift(dot.attr);
      cur = dot.left;
    } else if (has !== undefined) {
      attrs.unshift(...(Array.isArray(has.attr) ? has.attr : [has.attr]));
      cur = has.left;
    } else break;
  }
  const base = cur as Node | null;
  const v = base !== null && typeof base === 'object' ? base['Var'] : undefined;
  const first = attrs[0];
  if (v === undefined || first === undefined) {
    for (const a of attrs) s.other.add(a);
    walk(base, s);
    return;
  }
  if (v === 'resource') s.resource.add(first);
  else if (v === 'principal') {
    s.principal.add(first);
    s.principalVar = true;
  } else if (v === 'context') {
    s.context.add(first);
    if (first === 'time') {
      if (attrs.length === 1) s.timeBare = true;
      else s.time.add(attrs[1]!);
    }
  } else if (v === 'action') s.actionVar = true;
}

function walk(e: unknown, s: Scan): void {
  if (e === null || typeof e !== 'object') return;
  if (Array.isArray(e)) {
    for (const x of e) walk(x, s);
    return;
  }
  const n = e as Node;
  const k = Object.keys(n)[0];
  if (k === undefined) return;
  const v = n[k] as Node;
  switch (k) {
    case 'Value':
    case 'Slot':
      return;
    case 'Var':
      bare(v, s);
      return;
    case '.':
    case 'has':
      chain(n, s);
      return;
    case 'Record':
      for (const x of Object.values(v)) walk(x, s);
      return;
    case 'Set':
      walk(v, s);
      return;
    case 'like':
      walk(v['left'], s);
      return;
    case 'is':
      walk(v['left'], s);
      if (v['in'] !== undefined) walk(v['in'], s);
      return;
    case 'if-then-else':
      walk(v['if'], s);
      walk(v['then'], s);
      walk(v['else'], s);
      return;
    default:
      if (Array.isArray(v)) walk(v, s); // extension function call: args
      else if (v !== null && typeof v === 'object') {
        if ('arg' in v) walk(v['arg'], s);
        if ('left' in v) walk(v['left'], s);
        if ('right' in v) walk(v['right'], s);
      }
  }
}

/** Replace every `action` variable with the literal `uid` (Value nodes are data: left alone). */
function substAction(e: unknown, uid: { type: string; id: string }): unknown {
  if (e === null || typeof e !== 'object') return e;
  if (Array.isArray(e)) return e.map((x) => substAction(x, uid));
  const n = e as Node;
  const k = Object.keys(n)[0];
  if (k === 'Var' && n[k] === 'action') return { Value: { __entity: { ...uid } } };
  if (k === 'Value') return n;
  const out: Node = {};
  for (const [key, val] of Object.entries(n)) out[key] = substAction(val, uid);
  return out;
}

// ---------------------------------------------------------------------------------------------
// scopes

type Uid = { type: string; id: string };

function uidOf(x: unknown): Uid | undefined {
  if (x === null || typeof x !== 'object') return undefined;
  const o = x as Record<string, unknown>;
  const inner = (o['__entity'] ?? o) as Record<string, unknown>;
  if (typeof inner['type'] === 'string' && typeof inner['id'] === 'string') return { type: inner['type'], id: inner['id'] };
  return undefined;
}

const uidKey = (u: Uid): string => `${u.type}::${JSON.stringify(u.id)}`;

/** The ACT_* bit of an action uid, namespace ignored (Action or ThoughtGate::Action). */
function bitOf(u: Uid): number {
  if (u.type !== 'Action' && u.type !== 'ThoughtGate::Action') return 0;
  return ACTION_BITS.get(u.id) ?? 0;
}

/** For each ACT_* bit: the uid keys of the action groups it belongs to (from the schema). */
type Ancestors = Map<number, Set<string>>;

function schemaAncestors(schemaJson: unknown): Ancestors {
  const parents = new Map<string, string[]>();
  if (schemaJson !== null && typeof schemaJson === 'object') {
    for (const [ns, def] of Object.entries(schemaJson as Record<string, { actions?: Record<string, { memberOf?: { id: string; type?: string }[] }> }>)) {
      const actionType = ns === '' ? 'Action' : `${ns}::Action`;
      for (const [name, a] of Object.entries(def?.actions ?? {})) {
        const ps = (a?.memberOf ?? []).map((m) => {
          const t = m.type === undefined ? actionType : m.type.includes('::') ? m.type : ns === '' ? m.type : `${ns}::${m.type}`;
          return uidKey({ type: t, id: m.id });
        });
        parents.set(uidKey({ type: actionType, id: name }), ps);
      }
    }
  }
  const out: Ancestors = new Map();
  for (const [id, bit] of ACTION_BITS) {
    const seen = new Set<string>();
    const stack = [uidKey({ type: 'Action', id }), uidKey({ type: 'ThoughtGate::Action', id })].flatMap((k) => parents.get(k) ?? []);
    while (stack.length > 0) {
      const k = stack.pop()!;
      if (seen.has(k)) continue;
      seen.add(k);
      stack.push(...(parents.get(k) ?? []));
    }
    out.set(bit, seen);
  }
  return out;
}

function admitted(action: PolicyJson['action'], anc: Ancestors): number {
  if (action.op === 'All') return TOOL_MASK | METHOD_MASK;
  const targets: unknown[] = action.op === '=='
    ? ['entity' in action ? action.entity : undefined]
    : 'entities' in action ? action.entities : [action.entity];
  let bits = 0;
  for (const t of targets) {
    const u = uidOf(t);
    if (u === undefined) continue;
    bits |= bitOf(u);
    if (action.op === 'in') {
      const k = uidKey(u);
      for (const [bit, groups] of anc) if (groups.has(k)) bits |= bit;
    }
  }
  return bits;
}

// ---------------------------------------------------------------------------------------------
// schema

interface LoadedSchema {
  /** what cedar-wasm takes: Cedar schema text, or the parsed JSON schema */
  schema: string | Record<string, unknown>;
  json: unknown;
}

function loadSchema(src: SourceText, problems: string[]): LoadedSchema | undefined {
  const isJson = src.file.endsWith('.json') || src.text.trimStart().startsWith('{');
  let schema: string | Record<string, unknown> = src.text;
  if (isJson) {
    try {
      schema = JSON.parse(src.text) as Record<string, unknown>;
    } catch (e) {
      const m = /position (\d+)/.exec(String(e));
      const off = m ? Number(m[1]) : undefined;
      problems.push(located(src.file, src.text, off, { message: `invalid JSON schema: ${(e as Error).message}`, help: null, code: null, url: null, severity: null }));
      return undefined;
    }
  }
  const parsed = cedar.checkParseSchema(schema as never);
  if (parsed.type === 'failure') {
    for (const e of parsed.errors) problems.push(located(src.file, src.text, isJson ? undefined : e.sourceLocations?.[0]?.start, e));
    return undefined;
  }
  const j = cedar.schemaToJson(schema as never);
  return { schema, json: j.type === 'success' ? j.json : isJson ? schema : {} };
}

// ---------------------------------------------------------------------------------------------

const setOf = (xs: Iterable<string>, allowed: readonly string[]): string[] => {
  const s = new Set(xs);
  return allowed.filter((a) => s.has(a));
};

/** The resource attributes `conditions` can read (what a request must carry for them). */
export function resourceReads(conditions: PolicyJson['conditions']): string[] {
  const s = emptyScan();
  for (const c of conditions) walk(c.body, s);
  return setOf([...s.resource, ...s.other], RESOURCE_ATTRS);
}

/** Parse, (validate), analyse and rewrite. Throws CedarLoadError naming file:line:column. */
export function compile(sources: readonly SourceText[], schemaSrc?: SourceText): Plan {
  const problems: string[] = [];
  const raws = sources.flatMap((s) => splitFile(s, problems));
  if (problems.length > 0) throw new CedarLoadError(problems);

  // ids: @id annotation, else Cedar's policyN numbering over the concatenation
  const policies: PlanPolicy[] = [];
  const seen = new Map<string, PlanPolicy>();
  raws.forEach((r, i) => {
    const { line, column } = lineCol(r.fileText, r.offset);
    const ann = r.json.annotations?.['id'];
    const id = typeof ann === 'string' && ann !== '' ? ann : `policy${i}`;
    const p: PlanPolicy = { id, file: r.file, line, column, effect: r.json.effect, label: `${id} (${basename(r.file)}:${line})` };
    const dup = seen.get(id);
    if (dup !== undefined) problems.push(`${r.file}:${line}:${column}: duplicate policy id '${id}' (also ${dup.file}:${dup.line}:${dup.column})`);
    seen.set(id, p);
    policies.push(p);
  });
  if (problems.length > 0) throw new CedarLoadError(problems);

  let anc: Ancestors = new Map();
  const warnings: string[] = [];
  if (schemaSrc !== undefined) {
    const loaded = loadSchema(schemaSrc, problems);
    if (loaded === undefined) throw new CedarLoadError(problems);
    anc = schemaAncestors(loaded.json);
    const staticPolicies: Record<string, string> = {};
    policies.forEach((p, i) => (staticPolicies[p.id] = raws[i]!.text));
    const v = cedar.validate({ schema: loaded.schema as never, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
    if (v.type === 'failure') {
      for (const e of v.errors) problems.push(`${schemaSrc.file}: ${describe(e)}`);
    } else {
      const at = (id: string): number => policies.findIndex((p) => p.id === id);
      for (const ve of v.validationErrors) {
        const i = at(ve.policyId);
        const r = raws[i];
        const off = r === undefined ? undefined : r.offset + (ve.error.sourceLocations?.[0]?.start ?? 0);
        problems.push(r === undefined ? `${schemaSrc.file}: ${describe(ve.error)}` : located(r.file, r.fileText, off, ve.error));
      }
      for (const w of v.validationWarnings) warnings.push(`${w.policyId}: ${describe(w.error)}`);
      for (const w of v.otherWarnings) warnings.push(describe(w));
    }
    if (problems.length > 0) throw new CedarLoadError(problems);
  }

  const scan = emptyScan();
  const copies: PlanCopy[] = [];
  const texts: string[] = [];
  const copyJson: PolicyJson[] = [];
  raws.forEach((r, i) => {
    const j = r.json;
    const own: Scan = { ...scan, actionVar: false };
    for (const c of j.conditions) walk(c.body, own);
    scan.principalVar ||= own.principalVar;
    scan.contextBare ||= own.contextBare;
    scan.timeBare ||= own.timeBare;
    const pc = j.principal;
    if (pc.op === 'in' || (pc.op === 'is' && pc.in !== undefined)) scan.principalVar = true;
    const bits = admitted(j.action, anc);
    if (bits === 0) {
      warnings.push(`${policies[i]!.label}: its action scope matches none of Forward, Approve, tools/call, mcp/method; it never applies`);
      return;
    }
    const emit = (actions: number, conditions: PolicyJson['conditions']): void => {
      const copy: PolicyJson = { effect: 'permit', principal: j.principal, action: { op: 'All' }, resource: j.resource, conditions };
      const t = cedar.policyToText(copy);
      if (t.type === 'failure') {
        problems.push(`${r.file}:${policies[i]!.line}:${policies[i]!.column}: internal: cannot rewrite policy: ${t.errors.map(describe).join('; ')}`);
        return;
      }
      copies.push({ policy: i, forbid: j.effect === 'forbid', actions });
      texts.push(t.text);
      copyJson.push(copy);
    };
    if (!own.actionVar) emit(bits, j.conditions);
    else {
      for (const bit of [ACT_FORWARD, ACT_APPROVE, ACT_TOOLS_CALL, ACT_MCP_METHOD]) {
        if ((bits & bit) === 0) continue;
        emit(bit, j.conditions.map((c) => ({ kind: c.kind, body: substAction(c.body, ACTION_UID[bit]!) })) as PolicyJson['conditions']);
      }
    }
  });
  if (problems.length > 0) throw new CedarLoadError(problems);

  const other = [...scan.other];
  const resource = setOf([...scan.resource, ...other], RESOURCE_ATTRS);
  const principal = setOf([...scan.principal, ...other], PRINCIPAL_ATTRS);
  const context = scan.contextBare ? [...CONTEXT_ATTRS] : setOf(scan.context, CONTEXT_ATTRS);
  const wholeTime = scan.contextBare || scan.timeBare;
  const time = wholeTime ? [...TIME_ATTRS] : context.includes('time') ? setOf(scan.time, TIME_ATTRS) : [];
  const needs: Needs = {
    resource,
    principal,
    principalEntity: scan.principalVar || principal.length > 0,
    roleEntities: scan.other.has('name'),
    context,
    time,
    arguments: resource.includes('arguments'),
    cacheable: !time.includes('timestamp'),
  };

  const toolSet: number[] = [];
  const methodSet: number[] = [];
  copies.forEach((c, i) => {
    if (c.actions & TOOL_MASK) toolSet.push(i);
    if (c.actions & METHOD_MASK) methodSet.push(i);
  });
  const copyTests: string[][] = copies.map(() => []);
  for (const i of toolSet) {
    const tests = new Map<string, unknown>();
    collectTests(copyJson[i]!.conditions, tests);
    copyTests[i] = [...tests.keys()];
  }
  return {
    version: cedarVersion(sources, schemaSrc),
    policies,
    copies,
    texts,
    toolSet,
    methodSet,
    copyJson,
    copyTests,
    needs,
    warnings,
  };
}
