// Tells clients that calls needing approval can run as tasks (SEP-1686), in the spec's shape:
// when some rule can hold a call to the source, `initialize` results gain `capabilities.tasks` {list, cancel, requests.tools.call} (merged
// with the upstream's own), and in `tools/list` results each tool whose rule is approve gets `execution.taskSupport: "optional"`, so a task-aware client can ask for a task
// instead of waiting on an open request. Changes the message in place; true when it did.
import type { Snapshot } from '../policy/types.js';
import { mayHold, rulesGate } from '../gates/rules.js';

export function advertiseTasks(message: unknown, snapshot: Snapshot, sourceId: string, isInitialize: boolean): boolean {
  if (message === null || typeof message !== 'object') return false;
  const result = (message as { result?: unknown }).result;
  if (result === null || typeof result !== 'object') return false;
  const r = result as Record<string, unknown>;
  if (isInitialize) {
    // No rule can hold a call to this source: no task of ours can exist, so none is advertised.
    if (!mayHold(snapshot, sourceId)) return false;
    const caps = r['capabilities'];
    if (caps === null || typeof caps !== 'object') return false;
    const c = caps as Record<string, unknown>;
    const tasks = (c['tasks'] !== null && typeof c['tasks'] === 'object' ? c['tasks'] : {}) as Record<string, unknown>;
    const requests = (tasks['requests'] !== null && typeof tasks['requests'] === 'object' ? tasks['requests'] : {}) as Record<string, unknown>;
    const tools = (requests['tools'] !== null && typeof requests['tools'] === 'object' ? requests['tools'] : {}) as Record<string, unknown>;
    c['tasks'] = { ...tasks, list: tasks['list'] ?? {}, cancel: tasks['cancel'] ?? {}, requests: { ...requests, tools: { ...tools, call: tools['call'] ?? {} } } };
    return true;
  }
  const list = r['tools'];
  if (!Array.isArray(list)) return false;
  let changed = false;
  for (const tool of list) {
    if (tool === null || typeof tool !== 'object') continue;
    const name = (tool as { name?: unknown }).name;
    if (typeof name !== 'string') continue;
    const d = rulesGate({ method: 'tools/call', resource: name, sourceId }, snapshot);
    if (d.action !== 'approve') continue; // policy may forward: a task the upstream never made would confuse the client
    const t = tool as Record<string, unknown>;
    const execution = (t['execution'] !== null && typeof t['execution'] === 'object' ? t['execution'] : {}) as Record<string, unknown>;
    if (execution['taskSupport'] === 'required' || execution['taskSupport'] === 'optional') continue;
    t['execution'] = { ...execution, taskSupport: 'optional' };
    changed = true;
  }
  return changed;
}
