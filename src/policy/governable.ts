// The single place that knows which MCP methods are governed and what names them (§2.1):
// the gates judge the resource name, never the method, so one rule covers a tool, a
// resource URI and a prompt alike. List methods are not judged but filtered by `expose`.

/** Requests judged by the gates, and the params field holding their resource name. */
export const GOVERNED_METHODS: ReadonlyMap<string, 'name' | 'uri'> = new Map([
  ['tools/call', 'name'],
  ['resources/read', 'uri'],
  ['resources/subscribe', 'uri'],
  ['prompts/get', 'name'],
]);

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

/** The params field naming a governed request's resource (`name` or `uri`), for error messages. */
export const resourceFieldOf = (method: string): 'name' | 'uri' | undefined => GOVERNED_METHODS.get(method);

/**
 * The resource name a governed request is judged by; undefined for an ungoverned method or
 * when the field is missing or not a string (the caller answers -32602 for the latter).
 */
export function resourceNameOf(method: string, params: unknown): string | undefined {
  const field = GOVERNED_METHODS.get(method);
  if (field === undefined || params === null || typeof params !== 'object') return undefined;
  const value = (params as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : undefined;
}

/** The name of one list item as `expose` sees it, or undefined when it has none. */
export function listItemName(key: ListKey, item: unknown): string | undefined {
  if (item === null || typeof item !== 'object') return undefined;
  const value = (item as Record<string, unknown>)[LIST_ITEM_NAME[key]];
  return typeof value === 'string' ? value : undefined;
}
