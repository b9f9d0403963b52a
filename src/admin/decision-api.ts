// The decision API, for agents that ask before they act and for CI: the same gates as the
// proxy path, answered as data instead of executed. On the traffic port under a reserved
// prefix that is never forwarded upstream:
//   POST /api/v1/governance/decide   {action}            → {decision, gate, reason, latency_us, snapshot, trace_id}
//   POST /api/v1/governance/batch    {"actions": [...]}  → {"results": [...], snapshot, trace_id}
// A whole batch is judged on one snapshot. Answers reveal the policy (which tools exist, are
// hidden or denied), so a token is required by default: THOUGHTGATE_API_TOKEN, sent as
// `Authorization: Bearer <token>` (scheme in any case). Without one configured every request
// is refused, saying how to configure it — unless THOUGHTGATE_API_OPEN=loopback, which answers
// callers whose TCP peer address is loopback without a token (others still need the token).
import { randomUUID } from 'node:crypto';
import { bearerMatcher } from '../core/secret.js';
import { isLoopbackAddress } from '../transport/peer.js';
import { FORWARD_UNGOVERNED, GATE_LABELS, type Decision } from '../gates/decision.js';
import { canonicalProblem } from '../policy/canonical.js';
import { GOVERNED_METHODS, resourceOf, type ResourceKind } from '../policy/governable.js';
import type { Snapshot } from '../policy/types.js';
import type { HeaderMap } from '../upstream/types.js';

export const API_PREFIX = '/api/v1/governance';

/** One thing an agent may do, in any of the shapes callers use. */
export interface ApiAction {
  method?: string;
  tool?: string;
  name?: string;
  tool_name?: string;
  uri?: string;
  arguments?: unknown;
  params?: { name?: unknown; uri?: unknown; ref?: unknown; arguments?: unknown };
  source?: string;
  principal?: string;
}

export interface ApiQuery {
  method: string;
  resource: string | undefined;
  /** how `resource` is compared (completion/complete on a resource template: 'template') */
  kind?: ResourceKind;
  arguments: unknown;
  sourceId: string;
  principal: string | undefined;
}

export interface ApiResult {
  decision: 'forward' | 'deny' | 'approve';
  gate: string | null;
  reason: string;
  latency_us: number;
  tool?: string;
  rule?: string;
  policy_ids?: string[];
  error_code?: number;
}

export interface DecisionApiDeps {
  snapshot: () => Snapshot;
  /** the proxy's own judge: gates 1–3 (and Cedar), before what gate 4 does with approve */
  judge: (query: ApiQuery, snapshot: Snapshot) => Decision | Promise<Decision>;
  /** THOUGHTGATE_API_TOKEN; undefined = only loopback callers when openToLoopback, else nobody */
  token: string | undefined;
  /** THOUGHTGATE_API_OPEN=loopback: a loopback peer needs no token */
  openToLoopback?: boolean;
  maxBatchSize: number;
  errorCodeOf: (d: Decision) => number | undefined;
}

export interface ApiResponse {
  status: number;
  headers: HeaderMap;
  body: string;
}

const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json' };

const fail = (status: number, error: string, message: string): ApiResponse => ({ status, headers: JSON_HEADERS, body: JSON.stringify({ error, message }) });

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Normalises one action; returns an error message when it names nothing judgeable. */
export function toQuery(a: unknown, defaultSource: string): ApiQuery | string {
  if (a === null || typeof a !== 'object' || Array.isArray(a)) return 'an action must be an object';
  const x = a as ApiAction;
  const named = str(x.tool) ?? str(x.name) ?? str(x.tool_name);
  const method = str(x.method) ?? (named !== undefined ? 'tools/call' : undefined);
  if (method === undefined) return 'an action needs a tool (or name) or a method';
  // The proxy's own table of governed methods (policy/governable.ts), so the two cannot disagree.
  const field = GOVERNED_METHODS.get(method);
  let resource: string | undefined;
  let kind: ResourceKind | undefined;
  if (field === 'name') resource = named ?? str(x.params?.name);
  else if (field === 'uri') {
    resource = str(x.uri) ?? str(x.params?.uri);
    kind = 'uri';
  } else if (field === 'ref') {
    const ref = resourceOf(method, x.params);
    resource = ref?.name;
    kind = ref?.kind;
  } else if (field !== undefined) {
    return `${method} names several resources: ask about each as resources/subscribe with its uri`;
  }
  if (field !== undefined && resource === undefined) {
    return `${method} needs ${field === 'uri' ? 'a uri' : field === 'ref' ? "params.ref (a ref/prompt with a name or a ref/resource with a uri)" : 'a tool name'}`;
  }
  if (resource !== undefined && kind !== undefined && kind !== 'name') {
    // As on the proxy path: a URI is judged in its canonical form only; another spelling is refused.
    const problem = canonicalProblem(method, resource, kind);
    if (problem !== undefined) return problem.message;
  }
  return {
    method,
    resource,
    ...(kind === undefined ? {} : { kind }),
    arguments: x.arguments ?? x.params?.arguments ?? {},
    sourceId: str(x.source) ?? defaultSource,
    principal: str(x.principal),
  };
}

function toResult(d: Decision, micros: number, resource: string | undefined, errorCode: number | undefined): ApiResult {
  const r: ApiResult = {
    decision: d.action === 'policy' ? 'deny' : d.action,
    gate: d === FORWARD_UNGOVERNED ? null : GATE_LABELS[d.gate],
    reason: d.reason,
    latency_us: Math.round(micros * 10) / 10,
  };
  if (resource !== undefined) r.tool = resource;
  if (d.rule !== undefined) r.rule = d.rule;
  if (d.policyIds !== undefined) r.policy_ids = d.policyIds;
  if (r.decision === 'deny' && errorCode !== undefined) r.error_code = errorCode;
  return r;
}

/** the matcher for the last token asked about (one per process in practice); the scheme in any case */
let tokenCheck: { token: string; matches: (authorization: string | undefined) => boolean } | undefined;

/** The caller whose request this is (the traffic port's Exchange): read only when needed. */
export interface ApiPeer {
  readonly remoteAddress: string;
}

const NOT_CONFIGURED = 'the decision API needs a token: set THOUGHTGATE_API_TOKEN on the proxy and send Authorization: Bearer <token> ' +
  '(or set THOUGHTGATE_API_OPEN=loopback to answer callers on this host without one)';

/** undefined when the caller may ask; otherwise the refusal. */
function refusal(headers: HeaderMap, deps: DecisionApiDeps, peer: ApiPeer | undefined): ApiResponse | undefined {
  if (deps.openToLoopback === true && peer !== undefined && isLoopbackAddress(peer.remoteAddress)) return undefined;
  const token = deps.token;
  if (token === undefined) return { ...fail(403, 'api_token_not_configured', NOT_CONFIGURED) };
  if (tokenCheck?.token !== token) tokenCheck = { token, matches: bearerMatcher(token) };
  if (tokenCheck.matches(headers['authorization'])) return undefined;
  return { ...fail(401, 'unauthorized', 'a valid Bearer token is required (Authorization: Bearer <THOUGHTGATE_API_TOKEN>)'), headers: { ...JSON_HEADERS, 'www-authenticate': 'Bearer' } };
}

/**
 * Handles one API request (method, path, headers, body already read). `peer` is asked for its
 * address only under THOUGHTGATE_API_OPEN=loopback, before anything is awaited.
 */
export async function handleDecisionApi(method: string, path: string, headers: HeaderMap, body: Buffer | null, deps: DecisionApiDeps, peer?: ApiPeer): Promise<ApiResponse> {
  const route = path.split('?')[0];
  if (route !== `${API_PREFIX}/decide` && route !== `${API_PREFIX}/batch`) return fail(404, 'not_found', `no such endpoint: ${route}`);
  if (method !== 'POST') return { ...fail(405, 'method_not_allowed', 'use POST'), headers: { ...JSON_HEADERS, allow: 'POST' } };
  const refused = refusal(headers, deps, peer);
  if (refused !== undefined) return refused;
  let input: unknown;
  try {
    input = JSON.parse((body ?? Buffer.alloc(0)).toString('utf8'));
  } catch (e) {
    return fail(400, 'invalid_json', (e as Error).message);
  }
  const snapshot = deps.snapshot(); // one snapshot for the whole request, even if a reload lands meanwhile
  const traceId = randomUUID();
  const defaultSource = snapshot.config.sources[0]!.id;
  const one = async (action: unknown): Promise<ApiResult | { error: string }> => {
    const q = toQuery(action, defaultSource);
    if (typeof q === 'string') return { error: q };
    const t0 = performance.now();
    const d = await deps.judge(q, snapshot);
    return toResult(d, (performance.now() - t0) * 1000, q.resource, deps.errorCodeOf(d));
  };
  if (route === `${API_PREFIX}/decide`) {
    const action = input !== null && typeof input === 'object' && 'action' in input ? (input as { action: unknown }).action : input;
    const r = await one(action);
    if ('error' in r) return fail(400, 'invalid_action', r.error);
    return { status: 200, headers: JSON_HEADERS, body: JSON.stringify({ ...r, snapshot: snapshot.version, trace_id: traceId }) };
  }
  const actions = input !== null && typeof input === 'object' ? (input as { actions?: unknown }).actions : undefined;
  if (!Array.isArray(actions) || actions.length === 0) return fail(400, 'invalid_batch', 'expected {"actions": [ ... ]} with at least one action');
  if (actions.length > deps.maxBatchSize) return fail(413, 'batch_too_large', `${actions.length} actions exceed the maximum of ${deps.maxBatchSize}`);
  const results = await Promise.all(actions.map(one));
  return { status: 200, headers: JSON_HEADERS, body: JSON.stringify({ results, snapshot: snapshot.version, trace_id: traceId }) };
}
