// Builds a complete policy snapshot: the validated config with its globs (policy/) and, when
// the config has a `cedar:` section, the prepared Cedar engine (gates/cedar). Used by serve
// (start and every reload), `check` and `validate`, so all of them judge the same thing.
import { loadSnapshot } from './policy/snapshot.js';
import type { Snapshot } from './policy/types.js';
import type { ConfigContext } from './policy/validate.js';

export interface CedarSettings {
  /** piscina workers; 0 evaluates on the calling thread */
  workers: number;
  /** bounded queue; when full a call gets -32009 */
  queue: number;
  /** µs a worker spins for the next task before parking (default 50; 0 parks at once) */
  spinMicros?: number;
}

export async function loadFullSnapshot(path: string, cedar: CedarSettings, ctx: ConfigContext = {}): Promise<Snapshot> {
  const base = loadSnapshot(path, process.env, ctx);
  const c = base.config.cedar;
  if (c === undefined) return base;
  // Loaded only when configured: the Wasm engine costs startup time and memory.
  const { CedarEngine } = await import('./gates/cedar/engine.js');
  const engine = await CedarEngine.create({
    policyFiles: c.policies,
    ...(c.schema !== undefined ? { schemaFile: c.schema } : {}),
    poolSize: cedar.workers,
    maxQueue: cedar.queue,
    ...(cedar.spinMicros !== undefined ? { spinMicros: cedar.spinMicros } : {}),
  });
  return Object.freeze({ ...base, cedar: engine });
}
