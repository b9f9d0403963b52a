// Runs the whole suite with the Node that runs this script: unit tests compiled beside their
// modules (dist/**/*.test.js) and end-to-end tests (test/*.test.mjs). Files are listed here
// because Node 20 takes folders and Node 22+ takes globs, and the suite runs on both.
// Extra arguments go to `node --test` (e.g. --test-name-pattern=...).
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
function walk(dir, keep, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, keep, out);
    else if (keep(e.name)) out.push(relative(root, p));
  }
  return out;
}
const files = [
  ...walk(join(root, 'dist'), (n) => n.endsWith('.test.js')),
  ...readdirSync(join(root, 'test')).filter((n) => n.endsWith('.test.mjs')).map((n) => join('test', n)),
].sort();
if (files.length === 0) {
  console.error('run-tests: no test files (is dist/ built? npm run build)');
  process.exit(1);
}
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=180000', ...process.argv.slice(2), ...files], { cwd: root, stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
