#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm run build`, run by `npm install`).
// Node 20's V8 can abort the process when it deoptimises a function that inlined a call into
// Wasm (Cedar's engine, undici's llhttp); this flag must be set before any such code is
// optimised, so it comes first and the CLI is imported after it.
import { setFlagsFromString } from 'node:v8';
setFlagsFromString('--no-turbo-inline-js-wasm-calls');
const { main } = await import('../dist/cli/main.js');
main(process.argv.slice(2)).then((code) => { if (typeof code === 'number') process.exitCode = code; }, (err) => {
  process.stderr.write(`thoughtgate: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
