// Who the proxy acts for, resolved once at startup (the caller may call again to refresh).
//
//   1. Pod labels (the README's promise, which the original never implemented): the downward-API
//      file (THOUGHTGATE_POD_LABELS_FILE, default /etc/podinfo/labels; lines `key="value"`).
//      id = label `app`, else `app.kubernetes.io/name`; roles = label `thoughtgate.io/roles`,
//      comma-separated; every label becomes `principal.labels`.
//   2. Kubernetes, the original's behaviour: id = $HOSTNAME (the pod name), namespace from the
//      service-account namespace file, service account from the token's JWT claims (decoded,
//      not verified: the legacy `kubernetes.io/serviceaccount/service-account.name`, the bound
//      token's nested `kubernetes.io.serviceaccount.name`, or `sub`
//      system:serviceaccount:<ns>:<name>), else "default".
//   3. Local default: THOUGHTGATE_PRINCIPAL, else $USER, else "local"; namespace and service
//      account "local".
// Labels found in (1) without an app label are kept, with their roles, for (2) or (3).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Principal } from './types.js';

export const DEFAULT_POD_LABELS_FILE = '/etc/podinfo/labels';
export const DEFAULT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const ROLES_LABEL = 'thoughtgate.io/roles';

export interface PrincipalPaths {
  /** default: env THOUGHTGATE_POD_LABELS_FILE, else /etc/podinfo/labels */
  podLabelsFile?: string;
  namespaceFile?: string;
  tokenFile?: string;
  /** file reader; undefined = unreadable (default: readFileSync, errors → undefined) */
  readFile?: (path: string) => string | undefined;
}

export type PrincipalSource = 'labels' | 'kubernetes' | 'default';

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Go's strconv.Quote, undone (the downward API writes values that way). */
function unquote(v: string): string {
  if (v.length < 2 || v[0] !== '"' || v[v.length - 1] !== '"') return v;
  const s = v.slice(1, -1);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const e = s[++i]!;
    const hex = (n: number): void => {
      const h = s.slice(i + 1, i + 1 + n);
      if (/^[0-9a-fA-F]+$/.test(h) && h.length === n) {
        out += String.fromCodePoint(parseInt(h, 16));
        i += n;
      } else out += e;
    };
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'a': out += '\x07'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      default: out += e; // \" \\ and anything else: the character itself
    }
  }
  return out;
}

/** Parse the downward-API labels file: one `key="value"` per line. */
export function parsePodLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out[line.slice(0, eq).trim()] = unquote(line.slice(eq + 1).trim());
  }
  return out;
}

/** The service account (and namespace) named in a service-account JWT, unverified. */
export function tokenClaims(token: string): { serviceAccount?: string; namespace?: string } {
  const part = token.trim().split('.')[1];
  if (part === undefined) return {};
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
  if (claims === null || typeof claims !== 'object') return {};
  const out: { serviceAccount?: string; namespace?: string } = {};
  const legacy = claims['kubernetes.io/serviceaccount/service-account.name'];
  const legacyNs = claims['kubernetes.io/serviceaccount/namespace'];
  const k8s = claims['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
  const sub = typeof claims['sub'] === 'string' ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(claims['sub']) : null;
  const sa = typeof legacy === 'string' ? legacy : typeof k8s?.serviceaccount?.name === 'string' ? k8s.serviceaccount.name : sub?.[2];
  const ns = typeof legacyNs === 'string' ? legacyNs : typeof k8s?.namespace === 'string' ? k8s.namespace : sub?.[1];
  if (sa !== undefined && sa !== '') out.serviceAccount = sa;
  if (ns !== undefined && ns !== '') out.namespace = ns;
  return out;
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s.trim() === '' ? undefined : s.trim());

function freeze(p: Principal): Principal {
  Object.freeze(p.roles);
  Object.freeze(p.labels);
  return Object.freeze(p);
}

/** Resolve the principal and say where it came from (for the startup log line). */
export function resolveIdentity(
  env: Record<string, string | undefined> = process.env,
  paths: PrincipalPaths = {},
): { principal: Principal; source: PrincipalSource } {
  const read = paths.readFile ?? readOrUndefined;
  const labelsText = read(paths.podLabelsFile ?? nonEmpty(env['THOUGHTGATE_POD_LABELS_FILE']) ?? DEFAULT_POD_LABELS_FILE);
  const labels = labelsText === undefined ? {} : parsePodLabels(labelsText);
  const roles = (labels[ROLES_LABEL] ?? '').split(',').map((r) => r.trim()).filter((r) => r !== '');
  const nsText = nonEmpty(read(paths.namespaceFile ?? DEFAULT_NAMESPACE_FILE));
  const tokenText = nonEmpty(read(paths.tokenFile ?? DEFAULT_TOKEN_FILE));
  const claims = tokenText === undefined ? {} : tokenClaims(tokenText);

  const app = nonEmpty(labels['app']) ?? nonEmpty(labels['app.kubernetes.io/name']);
  if (app !== undefined) {
    return {
      source: 'labels',
      principal: freeze({
        id: app,
        namespace: nsText ?? claims.namespace ?? 'default',
        serviceAccount: claims.serviceAccount ?? 'default',
        roles,
        labels,
      }),
    };
  }
  if (nsText !== undefined) {
    return {
      source: 'kubernetes',
      principal: freeze({
        id: nonEmpty(env['HOSTNAME']) ?? hostname(),
        namespace: nsText,
        serviceAccount: claims.serviceAccount ?? 'default',
        roles,
        labels,
      }),
    };
  }
  return {
    source: 'default',
    principal: freeze({
      id: nonEmpty(env['THOUGHTGATE_PRINCIPAL']) ?? nonEmpty(env['USER']) ?? 'local',
      namespace: 'local',
      serviceAccount: 'local',
      roles,
      labels,
    }),
  };
}

/** The principal for gate 3 (see resolveIdentity). Frozen: the engine memoises it by identity. */
export function resolvePrincipal(env: Record<string, string | undefined> = process.env, paths: PrincipalPaths = {}): Principal {
  return resolveIdentity(env, paths).principal;
}
