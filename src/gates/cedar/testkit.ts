// Shared by the cedar tests and the bench (not imported by production code).
import { fileURLToPath } from 'node:url';
import type { CedarInput, Principal } from './types.js';

/** /work/main/test/fixtures/cedar/<name>, from dist/gates/cedar/ or src/gates/cedar/ */
export const fixture = (name: string): string => fileURLToPath(new URL(`../../../test/fixtures/cedar/${name}`, import.meta.url));

export const AGENT: Principal = Object.freeze({
  id: 'my-agent',
  namespace: 'agents',
  serviceAccount: 'agent-sa',
  roles: Object.freeze([]) as unknown as string[],
  labels: Object.freeze({ app: 'my-agent' }) as Record<string, string>,
});

export const ADMIN: Principal = Object.freeze({
  id: 'ops-bot',
  namespace: 'ops',
  serviceAccount: 'ops-sa',
  roles: Object.freeze(['admin']) as unknown as string[],
  labels: Object.freeze({}) as Record<string, string>,
});

/** 2024-01-15 was a Monday. */
export const MONDAY_10_UTC = Date.UTC(2024, 0, 15, 10, 30);

export function call(resource: string | undefined, over: Partial<CedarInput> = {}): CedarInput {
  return {
    method: 'tools/call',
    resource,
    arguments: {},
    sourceId: 'upstream',
    policyId: 'default',
    principal: AGENT,
    now: MONDAY_10_UTC,
    ...over,
  };
}
