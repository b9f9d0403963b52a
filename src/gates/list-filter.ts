// Gate 1 applied to answers: items the client may not see vanish from list results
// (tools/list, resources/list, resources/templates/list, prompts/list), on every page,
// wherever the answer arrives (JSON body, SSE event, batch element).
import type { Snapshot } from '../policy/types.js';
import { LIST_ITEM_KIND, LIST_ITEM_NAME, type ListKey } from '../policy/governable.js';
import { isVisible } from './visibility.js';

const LIST_KEYS = Object.entries(LIST_ITEM_NAME) as ReadonlyArray<readonly [ListKey, string]>;

/**
 * Removes hidden items from a JSON-RPC response's list result, in place.
 * Returns true when the message changed (the caller must then re-serialise it).
 */
export function filterListResponse(message: unknown, snapshot: Snapshot, sourceId: string): boolean {
  if (message === null || typeof message !== 'object') return false;
  const result = (message as { result?: unknown }).result;
  if (result === null || typeof result !== 'object') return false;
  let changed = false;
  for (let k = 0; k < LIST_KEYS.length; k++) {
    const [key, field] = LIST_KEYS[k]!;
    const items = (result as Record<string, unknown>)[key];
    if (!Array.isArray(items)) continue;
    // Compared as the gates compare a call: canonical URIs, names folded under casefold.
    const kind = LIST_ITEM_KIND[key];
    const kept = items.filter((item) => item !== null && typeof item === 'object' && isVisible((item as Record<string, unknown>)[field], sourceId, snapshot, kind));
    if (kept.length !== items.length) {
      (result as Record<string, unknown>)[key] = kept;
      changed = true;
    }
  }
  return changed;
}
