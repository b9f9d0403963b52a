import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePodLabels, resolveIdentity, resolvePrincipal, tokenClaims } from './principal.js';
import { CedarEngine } from './engine.js';
import { call } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'tg-principal-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const missing = join(dir, 'does-not-exist');
const jwt = (claims: object): string => `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

describe('resolvePrincipal', () => {
  it('pod labels: app label, roles label, every label kept', () => {
    const labels = file('labels', 'app="my-agent"\npod-template-hash="5d8f"\nthoughtgate.io/roles="admin, deployer,"\nteam="a \\"quoted\\" name"\n');
    const ns = file('ns', 'agents\n');
    const token = file('token', jwt({ 'kubernetes.io': { namespace: 'agents', serviceaccount: { name: 'agent-sa', uid: 'u' } }, sub: 'system:serviceaccount:agents:agent-sa' }));
    const r = resolveIdentity({}, { podLabelsFile: labels, namespaceFile: ns, tokenFile: token });
    assert.equal(r.source, 'labels');
    assert.deepEqual({ ...r.principal }, {
      id: 'my-agent',
      namespace: 'agents',
      serviceAccount: 'agent-sa',
      roles: ['admin', 'deployer'],
      labels: { app: 'my-agent', 'pod-template-hash': '5d8f', 'thoughtgate.io/roles': 'admin, deployer,', team: 'a "quoted" name' },
    });
    assert.ok(Object.isFrozen(r.principal) && Object.isFrozen(r.principal.roles));
  });

  it('pod labels: app.kubernetes.io/name; the file path from THOUGHTGATE_POD_LABELS_FILE', () => {
    const labels = file('labels2', 'app.kubernetes.io/name="billing-agent"\n');
    const p = resolvePrincipal({ THOUGHTGATE_POD_LABELS_FILE: labels, HOSTNAME: 'pod-123' }, { namespaceFile: missing, tokenFile: missing });
    assert.equal(p.id, 'billing-agent');
    assert.equal(p.namespace, 'default');
    assert.equal(p.serviceAccount, 'default');
    assert.deepEqual(p.roles, []);
  });

  it("Kubernetes without an app label: HOSTNAME, namespace file, legacy token claim (the original's)", () => {
    const ns = file('ns2', 'payments');
    const token = file('token2', jwt({ 'kubernetes.io/serviceaccount/namespace': 'payments', 'kubernetes.io/serviceaccount/service-account.name': 'legacy-sa' }));
    const labels = file('labels3', 'tier="backend"\nthoughtgate.io/roles="reader"\n');
    const r = resolveIdentity({ HOSTNAME: 'agent-7f9c-abcde' }, { podLabelsFile: labels, namespaceFile: ns, tokenFile: token });
    assert.equal(r.source, 'kubernetes');
    assert.deepEqual({ ...r.principal }, { id: 'agent-7f9c-abcde', namespace: 'payments', serviceAccount: 'legacy-sa', roles: ['reader'], labels: { tier: 'backend', 'thoughtgate.io/roles': 'reader' } });
  });

  it('Kubernetes: bound token (nested claim), and no token → "default"', () => {
    const ns = file('ns3', 'ops');
    const bound = file('token3', jwt({ 'kubernetes.io': { namespace: 'ops', serviceaccount: { name: 'bound-sa' } } }));
    assert.equal(resolvePrincipal({ HOSTNAME: 'h' }, { podLabelsFile: missing, namespaceFile: ns, tokenFile: bound }).serviceAccount, 'bound-sa');
    assert.equal(resolvePrincipal({ HOSTNAME: 'h' }, { podLabelsFile: missing, namespaceFile: ns, tokenFile: missing }).serviceAccount, 'default');
    assert.equal(resolvePrincipal({ HOSTNAME: 'h' }, { podLabelsFile: missing, namespaceFile: ns, tokenFile: file('garbage', 'not-a-jwt') }).serviceAccount, 'default');
  });

  it('local default: THOUGHTGATE_PRINCIPAL, else USER, else "local"', () => {
    const none = { podLabelsFile: missing, namespaceFile: missing, tokenFile: missing };
    const a = resolveIdentity({ THOUGHTGATE_PRINCIPAL: 'ci-bot', USER: 'alice', HOSTNAME: 'laptop' }, none);
    assert.equal(a.source, 'default');
    assert.deepEqual({ ...a.principal }, { id: 'ci-bot', namespace: 'local', serviceAccount: 'local', roles: [], labels: {} });
    assert.equal(resolvePrincipal({ USER: 'alice' }, none).id, 'alice');
    assert.equal(resolvePrincipal({}, none).id, 'local');
    assert.equal(resolvePrincipal({ THOUGHTGATE_PRINCIPAL: '  ' }, none).id, 'local');
  });

  it('an injected reader (no files at all)', () => {
    const files: Record<string, string> = { '/l': 'app="x"' };
    assert.equal(resolvePrincipal({}, { podLabelsFile: '/l', namespaceFile: '/n', tokenFile: '/t', readFile: (p) => files[p] }).id, 'x');
  });

  it('the resolved principal drives `principal in ThoughtGate::Role::"admin"`', () => {
    const labels = file('labels4', 'app="ops"\nthoughtgate.io/roles="admin"\n');
    const p = resolvePrincipal({}, { podLabelsFile: labels, namespaceFile: missing, tokenFile: missing });
    const e = CedarEngine.fromText('permit(principal in ThoughtGate::Role::"admin", action == Action::"Forward", resource) when { principal.labels.app == "ops" };');
    assert.equal(e.decideInline(call('x', { principal: p })).outcome, 'forward');
    assert.equal(e.decideInline(call('x', { principal: { ...p, roles: [] } })).outcome, 'deny');
  });
});

describe('parsers', () => {
  it('parsePodLabels: downward-API format with Go escapes', () => {
    assert.deepEqual(parsePodLabels('a="1"\n\n b = "x=y" \nc="\\u00e9\\n\\\\"\nbad\nd=unquoted\n'), { a: '1', b: 'x=y', c: 'é\n\\', d: 'unquoted' });
  });

  it('tokenClaims: legacy, bound, sub', () => {
    assert.deepEqual(tokenClaims(jwt({ sub: 'system:serviceaccount:ns1:sa1' })), { serviceAccount: 'sa1', namespace: 'ns1' });
    assert.deepEqual(tokenClaims('x'), {});
    assert.deepEqual(tokenClaims('a.!!!.c'), {});
  });
});
