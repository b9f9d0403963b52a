// The one import of cedar-wasm (its Node build: synchronous, loads the .wasm at import).
//
// V8 11.3 (Node 20) aborts the whole process ("Fatal error … unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when an optimised JS function that inlined a
// JS→Wasm call is lazily deoptimised while the Wasm call is on the stack. Reproduced here
// with evaluate() → statefulIsAuthorized under a benchmark's phase changes; gone with
// --no-turbo-inline-js-wasm-calls. The flag is process-wide (workers included) and affects
// code optimised after it is set, so it is set here, before anything calls into Cedar; the
// CLI should also pass it at startup (it protects undici's llhttp Wasm calls too).
import { setFlagsFromString } from 'node:v8';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { DetailedError, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';

setFlagsFromString('--no-turbo-inline-js-wasm-calls');

export { cedar };
export type { DetailedError, PolicyJson };
