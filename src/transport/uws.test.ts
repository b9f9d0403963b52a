// The native uWS builds: every installed binary is the pinned one (the pins are current), a
// changed byte is refused, and the build in use can be named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UWS_PINS } from './uws-pins.js';
import { loadUws, pinProblem, uwsBuild } from './uws.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const installed: [string, string][] = [['node_modules/uws-modern', ''], ['node_modules/uWebSockets.js', 'binaries']];

test('every installed uWS binary matches its pin, and every pin names an installed binary', () => {
  for (const [dir, sub] of installed) {
    const meta = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { name: string; version: string };
    const name = `${meta.name}@${meta.version}`;
    const files = readdirSync(join(root, dir, sub)).filter((f) => f.endsWith('.node')).sort();
    assert.deepEqual(Object.keys(UWS_PINS[name] ?? {}).sort(), files, `${name}: pins and binaries (npm run scripts/pin-uws.mjs after an upgrade)`);
    for (const f of files) assert.equal(pinProblem(name, f, readFileSync(join(root, dir, sub, f))), undefined, `${name} ${f}`);
  }
});

test('one changed byte, another package version or an unknown file is refused', () => {
  const name = Object.keys(UWS_PINS)[0]!;
  const file = Object.keys(UWS_PINS[name]!)[0]!;
  const dir = installed.find(([d]) => readFileSync(join(root, d, 'package.json'), 'utf8').includes(name.slice(0, name.lastIndexOf('@'))))!;
  const bytes = readFileSync(join(root, dir[0], dir[1], file));
  bytes[bytes.length >> 1] ^= 1;
  assert.match(pinProblem(name, file, bytes) ?? '', /not the pinned .*refused/);
  assert.match(pinProblem(name.replace(/@[^@]+$/, '@0.0.0'), file, bytes) ?? '', /no pinned binary/);
  assert.match(pinProblem(name, 'uws_plan9_x64_999.node', bytes) ?? '', /no pinned binary/);
});

test('a native build loads on this Node and says which; the modern one answers 431', () => {
  const uws = loadUws();
  assert.equal(typeof uws.App, 'function');
  const b = uwsBuild()!;
  assert.match(b.name, /^(@btc-vision\/uwebsockets\.js@20\.57\.0|@trufflesuite\/uws-js-unofficial@20\.30\.0-unofficial\.0)$/);
  assert.match(b.binary, new RegExp(`uws_${process.platform}_${process.arch}_${process.versions.modules}\\.node$`));
  assert.equal(b.answers431, b.name.startsWith('@btc-vision/'));
  // where the modern build was passed over, the reason is kept for the start log
  if (!b.answers431) assert.ok(b.skipped.some((why) => why.includes('@btc-vision/uwebsockets.js')), b.skipped.join('; '));
});
