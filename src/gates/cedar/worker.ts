// The piscina worker: prepares the engine's plan once (workerData) and evaluates per task.
// A task of `null` is a warm-up ping (answers the plan's version).
import { workerData } from 'piscina';
import type { Plan } from './compile.js';
import { prepare, safeEvaluate, type WireInput } from './evaluate.js';
import type { CedarVerdict } from './types.js';

const prepared = prepare((workerData as { plan: Plan }).plan);

export default function run(task: WireInput | null): CedarVerdict | string {
  if (task === null) return prepared.plan.version;
  return safeEvaluate(prepared, task);
}
