// The piscina worker: prepares the engine's plan once (workerData) and evaluates per task.
// A task of `null` is a warm-up ping (answers the plan's version); 'spin-stats' answers how the
// worker's waits between tasks ended (spin-wait.ts).
import { workerData } from 'piscina';
import type { Plan } from './compile.js';
import { prepare, safeEvaluate, type WireInput } from './evaluate.js';
import { installSpinWait, spinStats } from './spin-wait.js';
import type { CedarVerdict } from './types.js';

const data = workerData as { plan: Plan; spinMicros: number };
const prepared = prepare(data.plan);
installSpinWait(data.spinMicros);

export default function run(task: WireInput | null | 'spin-stats'): CedarVerdict | string | typeof spinStats {
  if (task === null) return prepared.plan.version;
  if (task === 'spin-stats') return { ...spinStats };
  return safeEvaluate(prepared, task);
}
