// Resident memory of a spawned server, read from Linux /proc: the stdio memory budget is a sum of
// these. A server is often a launcher (npx, sh, uvx) whose real work runs in a child, so a
// process's descendants count with it. Cheap: two small procfs reads per process, no spawn.
import { existsSync, readFileSync } from 'node:fs';

/** a runaway fork tree is not walked further than this */
const MAX_PROCESSES = 64;

/** false where there is no /proc (macOS, some sandboxes): the budget cannot be measured there */
export function procAvailable(): boolean {
  return existsSync('/proc/self/status');
}

/** VmRSS of one process in bytes; undefined when it is gone, a zombie, or unreadable. */
export function vmRssBytes(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const i = text.indexOf('VmRSS:');
  if (i === -1) return undefined; // a zombie has no memory line
  const kb = parseInt(text.slice(i + 6), 10); // "VmRSS:\t  4120 kB"
  return Number.isFinite(kb) ? kb * 1024 : undefined;
}

/**
 * VmRSS of `pid` and its descendants together; undefined when `pid` itself cannot be read.
 * Children are those of each process's main thread (task/<pid>/children), which is where
 * launchers fork from; shared pages count once per process, so this errs high, never low.
 */
export function residentBytes(pid: number): number | undefined {
  const own = vmRssBytes(pid);
  if (own === undefined) return undefined;
  let total = own;
  const stack = childrenOf(pid);
  for (let seen = 1; stack.length > 0 && seen < MAX_PROCESSES; seen++) {
    const p = stack.pop()!;
    total += vmRssBytes(p) ?? 0;
    for (const c of childrenOf(p)) stack.push(c);
  }
  return total;
}

function childrenOf(pid: number): number[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1');
  } catch {
    return []; // no such file (older kernels) or the process is gone: itself only
  }
  const out: number[] = [];
  for (const part of text.split(' ')) {
    const n = Number(part);
    if (part !== '' && Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}
