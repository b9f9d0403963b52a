// One decision = one `statefulIsAuthorized` call against a set prepared once per thread
// (compile.ts explains the rewrite). Shared by the piscina worker and the inline path, so
// both compute the same answer from the same inputs.
import { ArgumentError, toCedarArguments, type CedarJson } from './args.js';
import { ACT_APPROVE, ACT_FORWARD, ACT_MCP_METHOD, ACT_TOOLS_CALL, ACTION_NAME, resourceReads, type Plan } from './compile.js';
import { falsified, specialise, testHolds } from './tool-name.js';
import { CedarLoadError, type CedarInput, type CedarVerdict } from './types.js';
import { cedar } from './wasm.js';

/** What crosses to a worker: CedarInput with `now` resolved and unneeded arguments dropped. */
export type WireInput = CedarInput & { now: number };

export interface Prepared {
  plan: Plan;
  toolSetId: string | undefined;
  methodSetId: string | undefined;
  /** per-tool specialised sets; null when the tool set has no tool-name test (or they are off) */
  tools: ToolSubsets | null;
}

const EVAL_ACTION = { type: 'ThoughtGate::Action', id: 'evaluate' };
const DEFAULT_DENY = 'No policy permits this action (default-deny)';

/**
 * Preparse copies `members` in this thread (thread-local in cedar-wasm), each with Cedar id
 * `c<copy>`; `texts[j]` is the text of `members[j]` (default: as compiled).
 */
function preparse(plan: Plan, name: string, members: readonly number[], texts: readonly string[] = members.map((i) => plan.texts[i]!)): string {
  const id = `thoughtgate:${plan.version}:${name}`;
  const staticPolicies: Record<string, string> = {};
  members.forEach((i, j) => (staticPolicies[`c${i}`] = texts[j]!));
  const r = cedar.preparsePolicySet(id, { staticPolicies });
  if (r.type === 'failure') throw new CedarLoadError(r.errors.map((e) => `internal: prepared set ${name}: ${e.message}`));
  return id;
}

/**
 * Preparse the plan's sets in this thread (thread-local in cedar-wasm, keyed by version).
 * `toolSubsets: false` evaluates every tools/call against the whole tool set (tests compare).
 */
export function prepare(plan: Plan, { toolSubsets = true }: { toolSubsets?: boolean } = {}): Prepared {
  const toolSetId = plan.toolSet.length === 0 ? undefined : preparse(plan, 'tool', plan.toolSet);
  const methodSetId = plan.methodSet.length === 0 ? undefined : preparse(plan, 'method', plan.methodSet);
  const tools = toolSubsets && plan.toolSet.some((i) => plan.copyTests[i]!.length > 0) && toolSetId !== undefined ? new ToolSubsets(plan, toolSetId) : null;
  return { plan, toolSetId, methodSetId, tools };
}

/** What a tools/call of one tool is evaluated against, and the resource attributes that needs. */
interface ToolSubset {
  /** undefined: no copy can apply (default deny without asking Cedar) */
  setId: string | undefined;
  resource: readonly string[];
}

/** distinct tool names remembered (then forgotten all at once: recomputing one is cheap) */
const MAX_TOOLS = 10_000;
/** distinct specialised sets prepared per engine and thread; past this, new ones use the whole tool set */
const MAX_SUBSETS = 256;
/** specialised policy texts remembered per engine and thread (then forgotten all at once) */
const MAX_SPECIALISED = 4096;
/** set ids are unique in the thread: two engines of one plan version must not share them */
let subsetSeq = 0;

/**
 * Cedar's cost grows with every policy in the set it is given (~2–4 µs each here, evaluated or
 * not) and with every attribute of the entities (~7 µs each), so a tools/call is evaluated
 * against its tool's own set (tool-name.ts): each tool-name test replaced by its value for that
 * tool, the copies that leaves certainly false left out, and only the resource attributes the
 * rest still read sent. Sets are shared by every tool they come out the same for.
 */
class ToolSubsets {
  private readonly byTool = new Map<string, ToolSubset>();
  private readonly bySpecialised = new Map<string, ToolSubset>();
  private readonly whole: ToolSubset;
  /** every tool-name test of the tool set, key → node */
  private readonly tests = new Map<string, unknown>();
  /** "copy:values of its tests" → its specialised text and the attributes it reads (null: unprintable) */
  private readonly specialised = new Map<string, { text: string; reads: readonly string[] } | null>();

  constructor(
    private readonly plan: Plan,
    toolSetId: string,
  ) {
    this.whole = { setId: toolSetId, resource: plan.needs.resource };
    for (const i of plan.toolSet) for (const k of plan.copyTests[i]!) if (!this.tests.has(k)) this.tests.set(k, JSON.parse(k) as unknown);
  }

  lookup(tool: string): ToolSubset {
    let subset = this.byTool.get(tool);
    if (subset === undefined) {
      subset = this.compute(tool);
      if (this.byTool.size >= MAX_TOOLS) this.byTool.clear();
      this.byTool.set(tool, subset);
    }
    return subset;
  }

  private compute(tool: string): ToolSubset {
    const plan = this.plan;
    const chars = Array.from(tool);
    const known = new Map<string, boolean | undefined>();
    const values = (key: string): boolean | undefined => {
      if (known.has(key)) return known.get(key);
      const test = this.tests.get(key);
      const v = test === undefined ? undefined : testHolds(test, chars);
      known.set(key, v);
      return v;
    };
    const members: number[] = [];
    const texts: string[] = [];
    const ids: string[] = [];
    const reads = new Set<string>();
    for (const i of plan.toolSet) {
      const copy = plan.copyJson[i]!;
      if (falsified(copy.conditions, values)) continue;
      // A copy specialised to the same test values is the same text: made once, not per tool name.
      let id = `${i}:`;
      for (const k of plan.copyTests[i]!) {
        const v = values(k);
        id += v === undefined ? '?' : v ? '1' : '0';
      }
      let made = this.specialised.get(id);
      if (made === undefined) {
        const conditions = specialise(copy.conditions, values);
        const t = cedar.policyToText({ ...copy, conditions });
        made = t.type === 'failure' ? null : { text: t.text, reads: resourceReads(conditions) };
        if (this.specialised.size >= MAX_SPECIALISED) this.specialised.clear();
        this.specialised.set(id, made);
      }
      if (made === null) return this.whole; // a text Cedar will not print: evaluate as written
      members.push(i);
      texts.push(made.text);
      ids.push(id);
      for (const a of made.reads) reads.add(a);
    }
    const key = ids.join(' ');
    let subset = this.bySpecialised.get(key);
    if (subset !== undefined) return subset;
    if (this.bySpecialised.size >= MAX_SUBSETS) return this.whole;
    let setId: string | undefined;
    try {
      setId = members.length === 0 ? undefined : preparse(plan, `tool:${++subsetSeq}`, members, texts);
    } catch {
      return this.whole; // a specialised text Cedar will not take: evaluate as written
    }
    subset = { setId, resource: plan.needs.resource.filter((a) => reads.has(a)) };
    this.bySpecialised.set(key, subset);
    return subset;
  }
}

function deny(reason: string, policyIds: string[] = [], errors: string[] = []): CedarVerdict {
  return { outcome: 'deny', policyIds, reason, errors };
}

function failed(errors: string[], policyIds: string[] = []): CedarVerdict {
  return deny(`Policy evaluation errors: ${errors.join('; ')}`, policyIds, errors);
}

/** The resource entity id: the tool for tools/call, the method otherwise (the original's model). */
function resourceUid(input: WireInput): { type: string; id: string } {
  return input.method === 'tools/call'
    ? { type: 'ThoughtGate::ToolCall', id: input.resource ?? '' }
    : { type: 'ThoughtGate::McpMethod', id: input.method };
}

export function evaluate(p: Prepared, input: WireInput): CedarVerdict {
  const { plan } = p;
  const needs = plan.needs;
  const isTool = input.method === 'tools/call';
  let setId = isTool ? p.toolSetId : p.methodSetId;
  let resourceReads: readonly string[] = needs.resource;
  if (isTool && p.tools !== null) {
    const subset = p.tools.lookup(input.resource ?? '');
    setId = subset.setId;
    resourceReads = subset.resource;
  }
  if (setId === undefined) return deny(DEFAULT_DENY);

  const entities: { uid: { type: string; id: string }; attrs: Record<string, CedarJson>; parents: { type: string; id: string }[] }[] = [];
  const resource = resourceUid(input);
  if (resourceReads.length > 0) {
    const attrs: Record<string, CedarJson> = {};
    const named = input.resource ?? '';
    for (const a of resourceReads) {
      switch (a) {
        case 'name':
        case 'tool_name':
          attrs[a] = named;
          break;
        case 'method':
          attrs[a] = input.method;
          break;
        case 'server':
          attrs[a] = input.sourceId;
          break;
        case 'uri':
          attrs[a] = input.method.startsWith('resources/') ? named : '';
          break;
        case 'arguments':
          try {
            attrs[a] = toCedarArguments(input.arguments);
          } catch (e) {
            if (e instanceof ArgumentError) return failed([`arguments: ${e.message}`]);
            throw e;
          }
          break;
      }
    }
    entities.push({ uid: resource, attrs, parents: [] });
  }
  const pr = input.principal;
  const principal = { type: 'ThoughtGate::App', id: pr.id };
  if (needs.principalEntity) {
    const attrs: Record<string, CedarJson> = {};
    for (const a of needs.principal) {
      switch (a) {
        case 'name':
          attrs[a] = pr.id;
          break;
        case 'namespace':
          attrs[a] = pr.namespace;
          break;
        case 'service_account':
          attrs[a] = pr.serviceAccount;
          break;
        case 'roles':
          attrs[a] = [...pr.roles];
          break;
        case 'labels':
          attrs[a] = { ...pr.labels };
          break;
      }
    }
    entities.push({ uid: principal, attrs, parents: pr.roles.map((r) => ({ type: 'ThoughtGate::Role', id: r })) });
    if (needs.roleEntities) for (const r of pr.roles) entities.push({ uid: { type: 'ThoughtGate::Role', id: r }, attrs: { name: r }, parents: [] });
  }
  const context: Record<string, CedarJson> = {};
  for (const a of needs.context) {
    if (a === 'policy_id') context[a] = input.policyId;
    else if (a === 'source_id') context[a] = input.sourceId;
    else if (a === 'time') {
      const t: Record<string, CedarJson> = {};
      for (const m of needs.time) {
        if (m === 'hour') t[m] = Math.floor(input.now / 3_600_000) % 24;
        else if (m === 'day_of_week') t[m] = (Math.floor(input.now / 86_400_000) + 4) % 7; // 1970-01-01 was a Thursday
        else if (m === 'timestamp') t[m] = Math.floor(input.now / 1000);
      }
      context[a] = t;
    }
  }

  const answer = cedar.statefulIsAuthorized({
    principal,
    action: EVAL_ACTION,
    resource,
    context,
    preparsedPolicySetId: setId,
    entities: entities as never,
  });
  if (answer.type === 'failure') return failed(answer.errors.map((e) => e.message));

  const diag = answer.response.diagnostics;
  if (diag.errors.length > 0) {
    const ids: string[] = [];
    const msgs: string[] = [];
    const sorted = [...diag.errors].sort((a, b) => Number(a.policyId.slice(1)) - Number(b.policyId.slice(1)));
    for (const e of sorted) {
      const copy = plan.copies[Number(e.policyId.slice(1))];
      const pol = copy === undefined ? undefined : plan.policies[copy.policy];
      if (pol !== undefined && !ids.includes(pol.id)) ids.push(pol.id);
      msgs.push(`${pol?.label ?? e.policyId}: ${e.error.message}`);
    }
    return failed(msgs, ids);
  }

  // per action: satisfied permits / forbids that admit it
  const code = isTool ? ACT_TOOLS_CALL : ACT_MCP_METHOD;
  let permitF: number[] | undefined;
  let permitA: number[] | undefined;
  let permitC: number[] | undefined;
  let forbidBits = 0;
  let forbids: number[] | undefined;
  for (const key of diag.reason) {
    const copy = plan.copies[Number(key.slice(1))];
    if (copy === undefined) continue;
    if (copy.forbid) {
      forbidBits |= copy.actions;
      (forbids ??= []).includes(copy.policy) || forbids.push(copy.policy);
    } else {
      if (copy.actions & ACT_FORWARD) (permitF ??= []).push(copy.policy);
      if (copy.actions & ACT_APPROVE) (permitA ??= []).push(copy.policy);
      if (copy.actions & code) (permitC ??= []).push(copy.policy);
    }
  }
  // Cedar reports policies in hash order, which differs between threads: sort by file order
  const order = (xs: number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);
  const ids = (xs: number[]): string[] => order(xs).map((i) => plan.policies[i]!.id);
  const labels = (xs: number[]): string => order(xs).map((i) => plan.policies[i]!.label).join(', ');
  if (permitF !== undefined && (forbidBits & ACT_FORWARD) === 0) {
    return { outcome: 'forward', policyIds: ids(permitF), reason: `Permitted by policy: ${labels(permitF)} (action Forward)`, errors: [] };
  }
  if (permitA !== undefined && (forbidBits & ACT_APPROVE) === 0) {
    return { outcome: 'approve', policyIds: ids(permitA), reason: `Approval required by policy: ${labels(permitA)} (action Approve)`, errors: [] };
  }
  if (permitC !== undefined && (forbidBits & code) === 0) {
    return { outcome: 'approve', policyIds: ids(permitC), reason: `Approval required by policy: ${labels(permitC)} (action ${ACTION_NAME[code]})`, errors: [] };
  }
  // deny. Every copy in this request's set admits one of its three actions, so every
  // satisfied forbid here forbade one of them.
  if (forbids !== undefined) return deny(`Forbidden by policy: ${labels(forbids)}`, ids(forbids));
  return deny(DEFAULT_DENY);
}

/** evaluate(), with any exception (a bug, a Wasm trap) turned into a deny: fail closed. */
export function safeEvaluate(p: Prepared, input: WireInput): CedarVerdict {
  try {
    return evaluate(p, input);
  } catch (e) {
    return failed([`Cedar evaluation failed: ${e instanceof Error ? e.message : String(e)}`]);
  }
}
