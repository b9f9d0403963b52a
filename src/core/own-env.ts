// The proxy's own environment namespace. THOUGHTGATE_* variables are our settings and secrets:
// never handed to a governed server, in any letter case (a lookalike of ours is ours too).
const OURS = /^thoughtgate_/i;

export function isOwnVariable(name: string): boolean {
  return OURS.test(name);
}
