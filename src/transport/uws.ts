// Loads uWebSockets.js's native binary directly. The package we install falls back to a slow
// pure-Node implementation with only a warning when its binary does not match this Node;
// a proxy silently running on the fallback is a performance bug, so we fail loudly instead.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UwsTypes from 'uWebSockets.js';

const require = createRequire(import.meta.url);

export type Uws = typeof UwsTypes;

let loaded: Uws | undefined;

export function loadUws(): Uws {
  if (loaded !== undefined) return loaded;
  const pkgDir = dirname(require.resolve('uWebSockets.js/package.json'));
  const binary = join(pkgDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    loaded = require(binary) as Uws;
  } catch (err) {
    throw new Error(
      `uWebSockets.js native binary did not load (${binary}): ${(err as Error).message}. ` +
        `This build needs Node ${process.versions.node.split('.')[0]} on ${process.platform}-${process.arch} with a matching binary; ` +
        'reinstall with `npm install` on a supported Node (20.x, linux x64/arm64, macOS).',
    );
  }
  silenceMark(loaded);
  return loaded;
}

/**
 * uWS writes a `uWebSockets: 20` header on every response (HttpResponse::writeMark) unless the
 * loop's `noMark` flag is set; a proxy must not add an implementation header the upstream never
 * sent. uWebSockets.js sets that flag through its undocumented `_cfg`, whose key is compared
 * by character sum (656: 'silent' plus one). Loop-wide: every app of this process. The `Date`
 * header that writeMark also writes cannot be turned off in this build; relayed answers carry
 * uWS's Date instead of the upstream's (response/relay.ts drops the upstream's, so there is one).
 */
function silenceMark(uws: Uws): void {
  // A build without _cfg would still serve correctly; the header tests would name the leak.
  const cfg = (uws as unknown as { _cfg?: (key: string) => void })._cfg;
  if (typeof cfg === 'function') cfg('silent');
}
