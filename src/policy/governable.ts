// The single place that knows which MCP methods exist, which are governed and what names them
// (§2.1): the gates judge the resource name, never the method, so one rule covers a tool, a
// resource URI and a prompt alike. List methods are not judged but filtered by `expose`.
import { skeleton } from '../core/confusables.js';

/**
 * Where a governed request names its resource: a params field, `completion/complete`'s `ref`,
 * or (2026-07-28 `subscriptions/listen`) the URIs in `notifications.resourceSubscriptions`.
 */
export type ResourceField = 'name' | 'uri' | 'ref' | 'subscriptions';

/** Requests judged by the gates, and where their resource name is. */
export const GOVERNED_METHODS: ReadonlyMap<string, ResourceField> = new Map<string, ResourceField>([
  ['tools/call', 'name'],
  ['resources/read', 'uri'],
  ['resources/subscribe', 'uri'],
  ['resources/unsubscribe', 'uri'],
  ['prompts/get', 'name'],
  ['completion/complete', 'ref'],
  // SEP-2575 replaced resources/subscribe with this: each URI is judged like resources/subscribe.
  ['subscriptions/listen', 'subscriptions'],
]);

// Protocol revisions as bits, so "is this method part of that era" is one AND.
const E0326 = 1;
const E0618 = 2;
const E1125 = 4;
const E0728 = 8;
const ALL_ERAS = E0326 | E0618 | E1125 | E0728;
const LEGACY = E0326 | E0618 | E1125;

/**
 * Every client→server request and notification of each revision, from the specification's
 * schema (`ClientRequest` / `ClientNotification` of schema/<revision>/schema.ts); 2026-07-28
 * adds the tasks extension's requests (SEP-2663: tasks/get, tasks/update, tasks/cancel).
 * Responses carry no method and are not listed.
 */
export const MCP_CLIENT_METHODS: ReadonlyMap<string, number> = new Map<string, number>([
  ['initialize', LEGACY],
  ['ping', LEGACY],
  ['server/discover', E0728],
  ['completion/complete', ALL_ERAS],
  ['logging/setLevel', LEGACY],
  ['prompts/get', ALL_ERAS],
  ['prompts/list', ALL_ERAS],
  ['resources/list', ALL_ERAS],
  ['resources/templates/list', ALL_ERAS],
  ['resources/read', ALL_ERAS],
  ['resources/subscribe', LEGACY],
  ['resources/unsubscribe', LEGACY],
  ['subscriptions/listen', E0728],
  ['tools/call', ALL_ERAS],
  ['tools/list', ALL_ERAS],
  ['tasks/get', E1125 | E0728],
  ['tasks/result', E1125],
  ['tasks/list', E1125],
  ['tasks/cancel', E1125 | E0728],
  ['tasks/update', E0728],
  ['notifications/initialized', LEGACY],
  ['notifications/cancelled', ALL_ERAS],
  ['notifications/progress', LEGACY],
  ['notifications/roots/list_changed', LEGACY],
  ['notifications/tasks/status', E1125],
]);

const ERA_BITS: ReadonlyMap<string, number> = new Map([['2025-03-26', E0326], ['2025-06-18', E0618], ['2025-11-25', E1125], ['2026-07-28', E0728]]);

/** Skeletons of every MCP method: a method that is not one but has one of these skeletons is a lookalike. */
const METHOD_SKELETONS: ReadonlyMap<string, string> = new Map([...MCP_CLIENT_METHODS.keys()].map((m) => [skeleton(m), m]));

/**
 * What a message's method is, for the session's protocol version (undefined: not known, every
 * revision counts):
 * - `mcp`: a method of that revision (governed ones are then judged by name);
 * - `other_era`: an MCP method, but not of that revision;
 * - `lookalike`: not an MCP method, but one to a person or a lenient server (case, whitespace,
 *   separators, confusable or invisible characters) — always refused;
 * - `unknown`: anything else (extensions, vendor methods): `governance.unknown_methods` decides.
 * One map lookup when the method is exact; the lookalike analysis runs only on a miss.
 */
export function classifyMethod(method: string, version: string | undefined): 'mcp' | 'other_era' | 'lookalike' | 'unknown' {
  const eras = MCP_CLIENT_METHODS.get(method);
  if (eras !== undefined) {
    if (version === undefined) return 'mcp';
    const bit = ERA_BITS.get(version);
    return bit === undefined || (eras & bit) !== 0 ? 'mcp' : 'other_era';
  }
  return lookalikeOf(method) !== undefined ? 'lookalike' : 'unknown';
}

/** The MCP method `method` imitates, when it is not one itself but reads as one. */
export function lookalikeOf(method: string): string | undefined {
  if (MCP_CLIENT_METHODS.has(method)) return undefined;
  return METHOD_SKELETONS.get(skeleton(method));
}

export type ListKey = 'tools' | 'resources' | 'prompts' | 'resourceTemplates';

/** List methods whose results are filtered, and the result member holding the items. */
export const LIST_METHODS: Readonly<Record<string, ListKey>> = Object.freeze({
  'tools/list': 'tools',
  'resources/list': 'resources',
  'prompts/list': 'prompts',
  'resources/templates/list': 'resourceTemplates',
});

/** The field of each list item that `expose` globs are matched against. */
export const LIST_ITEM_NAME: Readonly<Record<ListKey, 'name' | 'uri' | 'uriTemplate'>> = Object.freeze({
  tools: 'name',
  prompts: 'name',
  resources: 'uri',
  resourceTemplates: 'uriTemplate',
});

export const isGoverned = (method: string): boolean => GOVERNED_METHODS.has(method);

/** How a resource name is compared: a tool or prompt name, a resource URI, or a URI template. */
export type ResourceKind = 'name' | 'uri' | 'template';

/** What a governed request is judged by. */
export interface ResourceRef {
  name: string;
  kind: ResourceKind;
}

/**
 * The resource a governed request is judged by and how to compare it; undefined for an
 * ungoverned method or when the field is missing or malformed (the caller answers -32602).
 * `completion/complete` is judged by the prompt (`ref/prompt` → `ref.name`) or resource
 * template (`ref/resource` → `ref.uri`) its `ref` names, as prompts/get and resources/read are.
 */
export function resourceOf(method: string, params: unknown): ResourceRef | undefined {
  const field = GOVERNED_METHODS.get(method);
  if (field === undefined || field === 'subscriptions' || params === null || typeof params !== 'object') return undefined;
  if (field === 'ref') {
    const ref = (params as Record<string, unknown>)['ref'];
    if (ref === null || typeof ref !== 'object') return undefined;
    const r = ref as Record<string, unknown>;
    if (r['type'] === 'ref/prompt' && typeof r['name'] === 'string') return { name: r['name'], kind: 'name' };
    if (r['type'] === 'ref/resource' && typeof r['uri'] === 'string') return { name: r['uri'], kind: 'template' };
    return undefined;
  }
  const value = (params as Record<string, unknown>)[field];
  return typeof value === 'string' ? { name: value, kind: field === 'uri' ? 'uri' : 'name' } : undefined;
}

/**
 * The resource URIs a `subscriptions/listen` asks updates for (each judged like
 * resources/subscribe); undefined when it asks for none. Not an array of strings: invalid.
 */
export function subscribedUris(params: unknown): unknown[] | undefined {
  if (params === null || typeof params !== 'object') return undefined;
  const n = (params as Record<string, unknown>)['notifications'];
  if (n === null || typeof n !== 'object') return undefined;
  const uris = (n as Record<string, unknown>)['resourceSubscriptions'];
  return uris === undefined ? undefined : Array.isArray(uris) ? uris : [uris];
}

/** The resource name a governed request is judged by (see resourceOf). */
export function resourceNameOf(method: string, params: unknown): string | undefined {
  return resourceOf(method, params)?.name;
}

/** How the resource of a governed method is compared, when the method alone says (not for completion/complete). */
export function resourceKindOf(method: string): ResourceKind {
  return GOVERNED_METHODS.get(method) === 'uri' ? 'uri' : 'name';
}

/** The name of one list item as `expose` sees it, or undefined when it has none. */
export function listItemName(key: ListKey, item: unknown): string | undefined {
  if (item === null || typeof item !== 'object') return undefined;
  const value = (item as Record<string, unknown>)[LIST_ITEM_NAME[key]];
  return typeof value === 'string' ? value : undefined;
}

/** How the names of a list's items are compared. */
export const LIST_ITEM_KIND: Readonly<Record<ListKey, ResourceKind>> = Object.freeze({
  tools: 'name',
  prompts: 'name',
  resources: 'uri',
  resourceTemplates: 'template',
});
