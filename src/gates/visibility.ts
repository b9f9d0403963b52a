// Gate 1: visibility. A tool hidden by `expose`, or any call to a disabled or unknown source,
// is answered as if the tool did not exist (-32015), so its existence stays hidden.
import type { ResourceKind } from '../policy/governable.js';
import { sourceShows } from '../policy/snapshot.js';
import type { Snapshot } from '../policy/types.js';
import type { Decision, Subject } from './decision.js';
import { matchKey } from './match-key.js';

/** `key` is the resource as compared (see match-key.ts); by default the name as given. */
export function visibilityGate(subject: Subject, snapshot: Snapshot, key = subject.resource as string, kind: ResourceKind = 'name'): Decision | undefined {
  const source = snapshot.sources.get(subject.sourceId);
  if (source === undefined) {
    return { action: 'deny', gate: 'gate1', error: 'tool_not_exposed', reason: `source '${subject.sourceId}' not found in configuration` };
  }
  if (!source.config.enabled) {
    return { action: 'deny', gate: 'gate1', error: 'tool_not_exposed', reason: `source '${subject.sourceId}' is disabled` };
  }
  if (!sourceShows(source, key, kind)) {
    return { action: 'deny', gate: 'gate1', error: 'tool_not_exposed', reason: `'${subject.resource}' hidden by expose (${source.config.expose.mode})` };
  }
  return undefined;
}

/** Whether a list item named `name` (compared as `kind`) is shown to clients of `sourceId` (list filtering). */
export function isVisible(name: unknown, sourceId: string, snapshot: Snapshot, kind: ResourceKind = 'name'): boolean {
  if (typeof name !== 'string') return false;
  const source = snapshot.sources.get(sourceId);
  return source !== undefined && source.config.enabled && sourceShows(source, matchKey(name, kind, snapshot), kind);
}
