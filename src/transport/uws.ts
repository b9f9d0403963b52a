// Loads uWebSockets.js's native binary directly, never a package's pure-Node fallback (a proxy
// silently running on it is a performance bug), and only a binary whose sha256 is pinned in
// uws-pins.ts (a tampered or re-published package is refused, not run).
//
// Two builds, tried in order:
//   - uws-modern = @btc-vision/uwebsockets.js 20.57.0 (a mirror of upstream v20.57.0): binaries
//     for Node 20/22/24/25 (ABI 115/127/137/141), answers 431 to too many request headers; built
//     against glibc 2.38 (Debian 13, Ubuntu 24.04, node:24-trixie-slim and later);
//   - uWebSockets.js = @trufflesuite/uws-js-unofficial 20.30.0: Node ≤ 20 only, loads on older
//     glibc (Debian 12), but drops a request with more than 48 headers without an answer.
// Which one runs is logged at start (uwsBuild()) and shown on /health.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UwsTypes from 'uWebSockets.js';
import { UWS_PINS } from './uws-pins.js';

const require = createRequire(import.meta.url);

export type Uws = typeof UwsTypes;

export interface UwsBuild {
  /** package@version */
  name: string;
  binary: string;
  /** answers 431 to too many request headers (the legacy build closes the connection) */
  answers431: boolean;
  /** why a build tried before this one did not load */
  skipped: string[];
}

interface Candidate {
  pkg: string;
  /** folder of the .node files inside the package */
  sub: string;
  answers431: boolean;
}

const CANDIDATES: readonly Candidate[] = [
  { pkg: 'uws-modern', sub: '', answers431: true },
  { pkg: 'uWebSockets.js', sub: 'binaries', answers431: false },
];

let loaded: Uws | undefined;
let build: UwsBuild | undefined;

/** The build in use (undefined before loadUws()). */
export function uwsBuild(): UwsBuild | undefined {
  return build;
}

/** `auto`: the first build that loads; `modern` or `legacy`: that one or fail (tests, operators pinning behaviour). */
export type UwsChoice = 'auto' | 'modern' | 'legacy';

export function loadUws(only: UwsChoice = 'auto'): Uws {
  if (loaded !== undefined) return loaded;
  const file = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const skipped: string[] = [];
  for (const c of CANDIDATES) {
    if (only === 'legacy' && c.pkg !== 'uWebSockets.js') continue;
    if (only === 'modern' && c.pkg !== 'uws-modern') continue;
    const attempt = tryLoad(c, file);
    if (typeof attempt === 'string') {
      skipped.push(attempt);
      continue;
    }
    loaded = attempt.uws;
    build = { name: attempt.name, binary: attempt.binary, answers431: c.answers431, skipped };
    silenceMark(loaded);
    return loaded;
  }
  throw new Error(
    `no uWebSockets.js native binary loads on Node ${process.versions.node} (${process.platform}-${process.arch}, ABI ${process.versions.modules}):\n  - ` +
      skipped.join('\n  - ') +
      '\nReinstall with `npm install` on Node 20, 22 or 24 on linux x64/arm64 or macOS; Node 22+ needs glibc 2.38 or newer (e.g. Debian 13, Ubuntu 24.04).',
  );
}

/** The module, or why it cannot be used. */
function tryLoad(c: Candidate, file: string): { uws: Uws; name: string; binary: string } | string {
  let dir: string;
  let name: string;
  try {
    ({ dir, name } = packageRoot(require.resolve(c.pkg)));
  } catch (e) {
    return `${c.pkg}: not installed (${(e as Error).message.split('\n')[0]})`;
  }
  const binary = join(dir, c.sub, file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(binary);
  } catch (e) {
    return `${name}: ${file} missing (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  const refused = pinProblem(name, file, bytes);
  if (refused !== undefined) return refused;
  try {
    return { uws: require(binary) as Uws, name, binary };
  } catch (e) {
    return `${name}: ${file} did not load: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** Why these bytes are not the pinned binary `file` of package `name` (undefined: they are). */
export function pinProblem(name: string, file: string, bytes: Buffer): string | undefined {
  const pinned = UWS_PINS[name]?.[file];
  if (pinned === undefined) return `${name}: no pinned binary ${file} (none for this Node and platform, or an unpinned version)`;
  const actual = createHash('sha256').update(bytes).digest('hex');
  return actual === pinned ? undefined : `${name}: ${file} has sha256 ${actual}, not the pinned ${pinned}: refused`;
}

/** The package's folder and name@version, found upward from its main entry (package.json may not be exported). */
function packageRoot(entry: string): { dir: string; name: string } {
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    try {
      const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (typeof meta.name === 'string' && typeof meta.version === 'string') return { dir, name: `${meta.name}@${meta.version}` };
    } catch {
      /* not the root yet */
    }
    if (dirname(dir) === dir) throw new Error(`no package.json above ${entry}`);
  }
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
