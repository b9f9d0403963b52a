// The one spelling of a resource name the gates compare: what the server will read it as.
import { canonicalTemplate, canonicalUri } from '../policy/canonical.js';
import { foldName } from '../core/confusables.js';
import type { ResourceKind } from '../policy/governable.js';
import type { Snapshot } from '../policy/types.js';

/**
 * A URI → its canonical form (as given when it cannot be parsed: no WHATWG server reads it as
 * anything else); a template → its literal start canonicalised; a tool or prompt name → itself,
 * or case-folded under `governance.names: casefold`.
 */
export function matchKey(name: string, kind: ResourceKind, snapshot: Snapshot): string {
  if (kind === 'name') return snapshot.config.governance.names === 'casefold' ? foldName(name) : name;
  if (kind === 'uri') return canonicalUri(name) ?? name;
  return canonicalTemplate(name);
}
