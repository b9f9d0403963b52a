// Gate 3 (Cedar). See engine.ts for the decide() contract and compile.ts for the model.
export { CedarEngine, DEFAULT_CACHE_SIZE, type CedarEngineOptions, type CedarTextOptions } from './engine.js';
export { resolvePrincipal, resolveIdentity, parsePodLabels, tokenClaims, type PrincipalPaths, type PrincipalSource } from './principal.js';
export { CedarLoadError, type CedarDecision, type CedarInput, type CedarOutcome, type Principal } from './types.js';
export type { PlanPolicy as CedarPolicyInfo, SourceText as CedarSource } from './compile.js';
