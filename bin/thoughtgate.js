#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm run build`, run by `npm install`).
import { main } from '../dist/cli/main.js';
main(process.argv.slice(2)).then((code) => { if (typeof code === 'number') process.exitCode = code; }, (err) => {
  process.stderr.write(`thoughtgate: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
