// Gate 1: visibility. A tool hidden by `expose`, or any call to a disabled or unknown source,
// is answered as if the tool did not exist (-32015), so its existence stays hidden.
import type { Snapshot } from '../policy/types.js';
import type { Decision, Subject } from './decision.js';

export function visibilityGate(subject: Subject, snapshot: Snapshot): Decision | undefined {
  const source = snapshot.sources.get(subject.sourceId);
  if (source === undefined) {
    return { action: 'deny', gate: 'gate1', error: 'tool_not_exposed', reason: `source '${subject.sourceId}' not found in configuration` };
  }
  if (!source.config.enabled) {
    return { action: 'deny', gate: 'gate1', error: 'tool_not_exposed', reason: `source '${subject.sourceId}' is disabled` };
  }
  if (!source.visible(subject.resource as string)) {
    return { action: 'deny', gate: 'gate1', error: 'tool_not_exposed', reason: `'${subject.resource}' hidden by expose (${source.config.expose.mode})` };
  }
  return undefined;
}

/** Whether a list item named `name` is shown to clients of `sourceId` (list filtering). */
export function isVisible(name: unknown, sourceId: string, snapshot: Snapshot): boolean {
  if (typeof name !== 'string') return false;
  const source = snapshot.sources.get(sourceId);
  return source !== undefined && source.config.enabled && source.visible(name);
}
