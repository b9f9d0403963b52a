// Static checks of the shipped deployment files: every YAML document under deploy/ parses,
// the sidecar is probed on the admin port, runs hardened, and the Dockerfile is non-root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const deployDir = join(root, 'deploy');

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** Every YAML document under deploy/, with the file it came from. */
function documents() {
  const files = walk(deployDir).filter((f) => /\.ya?ml$/.test(f));
  assert.ok(files.length >= 2, 'deploy/ holds YAML manifests');
  return files.flatMap((file) => {
    const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
    return docs.map((d, i) => {
      assert.deepEqual(d.errors, [], `${relative(root, file)} document ${i}: ${d.errors.join('; ')}`);
      assert.deepEqual(d.warnings, [], `${relative(root, file)} document ${i}`);
      return { file: relative(root, file), doc: d.toJS() };
    });
  });
}

/** Pod specs in Pods and in workload templates (Deployment, StatefulSet, DaemonSet, Job). */
function podSpecs(docs) {
  return docs.flatMap(({ file, doc }) => {
    if (!doc || typeof doc !== 'object') return [];
    if (doc.kind === 'Pod') return [{ file, spec: doc.spec }];
    const tmpl = doc.spec?.template?.spec ?? doc.spec?.jobTemplate?.spec?.template?.spec;
    return tmpl ? [{ file, spec: tmpl }] : [];
  });
}

const sidecars = () => {
  const found = podSpecs(documents()).flatMap(({ file, spec }) =>
    (spec.containers ?? []).filter((c) => c.name === 'thoughtgate').map((c) => ({ file, spec, c })),
  );
  assert.ok(found.length >= 1, 'a thoughtgate container is defined');
  return found;
};

test('every YAML document under deploy/ parses and names its kind', () => {
  for (const { file, doc } of documents()) {
    assert.equal(typeof doc.apiVersion, 'string', `${file}: apiVersion`);
    assert.equal(typeof doc.kind, 'string', `${file}: kind`);
    assert.equal(typeof doc.metadata?.name, 'string', `${file}: metadata.name`);
  }
});

test('probes hit the admin port: liveness /health, readiness /ready', () => {
  for (const { file, c } of sidecars()) {
    assert.equal(c.livenessProbe?.httpGet?.port, 7469, `${file} liveness port`);
    assert.equal(c.livenessProbe.httpGet.path, '/health', `${file} liveness path`);
    assert.equal(c.readinessProbe?.httpGet?.port, 7469, `${file} readiness port`);
    assert.equal(c.readinessProbe.httpGet.path, '/ready', `${file} readiness path`);
    if (c.startupProbe) {
      assert.equal(c.startupProbe.httpGet?.port, 7469);
      assert.equal(c.startupProbe.httpGet.path, '/health');
    }
    // the admin server must not be loopback-only, or the kubelet's probes fail
    const bind = (c.env ?? []).find((e) => e.name === 'THOUGHTGATE_ADMIN_BIND');
    assert.ok(!bind || bind.value === '0.0.0.0' || bind.value === '::', `${file}: admin bind ${bind?.value}`);
  }
});

test('the sidecar exposes 7467 (proxy), 7468 (inbound decisions) and 7469 (admin), and keeps approvals on its volume', () => {
  for (const { file, c } of sidecars()) {
    const ports = (c.ports ?? []).map((p) => p.containerPort).sort();
    assert.deepEqual(ports, [7467, 7468, 7469], file);
    // the root filesystem is read-only: the approval journal must live on the mounted volume
    const stateDir = (c.env ?? []).find((e) => e.name === 'THOUGHTGATE_STATE_DIR')?.value;
    assert.ok(stateDir, `${file} sets THOUGHTGATE_STATE_DIR`);
    assert.ok((c.volumeMounts ?? []).some((m) => !m.readOnly && stateDir.startsWith(m.mountPath)), `${file}: ${stateDir} is on a writable volume`);
  }
});

test('the sidecar is hardened: non-root, read-only root, no privilege escalation, no capabilities', () => {
  for (const { file, spec, c } of sidecars()) {
    const sc = c.securityContext ?? {};
    const pod = spec.securityContext ?? {};
    assert.equal(sc.runAsNonRoot ?? pod.runAsNonRoot, true, `${file} runAsNonRoot`);
    const uid = sc.runAsUser ?? pod.runAsUser;
    assert.ok(uid === undefined || uid > 0, `${file} runAsUser ${uid}`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${file} readOnlyRootFilesystem`);
    assert.equal(sc.allowPrivilegeEscalation, false, `${file} allowPrivilegeEscalation`);
    assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${file} capabilities`);
    assert.notEqual(sc.privileged, true);
    // The limit must hold a burst of held calls under the manifest's approval byte budget
    // (measured: ~123 MiB RSS peak with 16 MiB; ~249 MiB with the 64 MiB default).
    const mib = (q) => Number(/^(\d+)Mi$/.exec(q ?? '')?.[1] ?? NaN);
    const budget = Number(c.env?.find((e) => e.name === 'THOUGHTGATE_MAX_PENDING_APPROVAL_BYTES')?.value ?? 64 * 1024 * 1024);
    assert.ok(mib(c.resources?.limits?.memory) >= 200 + 2 * budget / 1048576, `${file} memory limit ${c.resources?.limits?.memory} for an approval budget of ${budget} bytes`);
  }
});

test('config is mounted read-only from the ConfigMap, pod labels via the downward API, state is writable', () => {
  for (const { file, spec, c } of sidecars()) {
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    const mounts = c.volumeMounts ?? [];
    const cfg = mounts.find((m) => m.mountPath === '/etc/thoughtgate');
    assert.ok(cfg, `${file}: /etc/thoughtgate mounted`);
    assert.equal(cfg.readOnly, true, `${file}: config mount read-only`);
    assert.equal(volumes.get(cfg.name)?.configMap?.name, 'thoughtgate-config');
    assert.equal((c.env ?? []).find((e) => e.name === 'THOUGHTGATE_CONFIG')?.value, '/etc/thoughtgate/config.yaml');

    const info = mounts.find((m) => m.mountPath === '/etc/podinfo');
    assert.ok(info, `${file}: /etc/podinfo mounted`);
    const items = volumes.get(info.name)?.downwardAPI?.items ?? [];
    assert.ok(items.some((i) => i.path === 'labels' && i.fieldRef?.fieldPath === 'metadata.labels'), `${file}: /etc/podinfo/labels`);

    // a read-only root needs a writable volume where the audit trail goes
    const audit = (c.env ?? []).find((e) => e.name === 'THOUGHTGATE_AUDIT_PATH')?.value;
    assert.ok(audit === '-' || mounts.some((m) => audit?.startsWith(`${m.mountPath}/`) && !m.readOnly), `${file}: audit path ${audit} writable`);
  }
});

function configMapConfig() {
  const cm = documents().find(({ doc }) => doc.kind === 'ConfigMap' && doc.metadata.name === 'thoughtgate-config');
  assert.ok(cm, 'a thoughtgate-config ConfigMap');
  const text = cm.doc.data['config.yaml'];
  assert.equal(typeof text, 'string');
  return text;
}

test('the ConfigMap holds a schema 1 config: one upstream source, forward default, a deny rule, a blocklist', () => {
  const cfg = YAML.parse(configMapConfig());
  assert.equal(cfg.schema, 1);
  assert.equal(cfg.sources[0].id, 'upstream');
  assert.equal(cfg.sources[0].url, 'http://127.0.0.1:3000/mcp');
  assert.equal(cfg.sources[0].expose.mode, 'blocklist');
  assert.ok(cfg.sources[0].expose.tools.length > 0);
  assert.equal(cfg.governance.defaults.action, 'forward');
  assert.ok(cfg.governance.rules.some((r) => r.action === 'deny'));
});

test('the ConfigMap config passes the project config loader', async (t) => {
  const loader = join(root, 'dist/policy/config.js');
  if (!existsSync(loader)) return t.skip('dist/policy/config.js not built');
  const mod = await import(loader);
  if (typeof mod.parseConfig !== 'function') return t.skip('config loader has no parseConfig');
  const config = mod.parseConfig(configMapConfig(), '/etc/thoughtgate/config.yaml', {});
  assert.equal(config.sources[0].id, 'upstream');
  assert.equal(config.governance.defaults.action, 'forward');
});

/** Dockerfile instructions, with line continuations joined and comments dropped. */
function dockerfile() {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s*(.*)$/.exec(l);
      return { op: m[1].toUpperCase(), args: m[2] };
    });
}

test('Dockerfile: multi-stage on node:24-trixie-slim (Node 24 LTS, glibc >= 2.38 for uWS 20.57, pinned binaries for it), exposes 7467 and 7469, runs as a non-root user', () => {
  const ins = dockerfile();
  const froms = ins.filter((i) => i.op === 'FROM');
  assert.ok(froms.length >= 2, 'multi-stage');
  const arg = ins.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
  for (const f of froms) {
    const image = f.args.split(/\s+/)[0].replace('${NODE_IMAGE}', arg?.args.split('=')[1] ?? '');
    assert.equal(image, 'node:24-trixie-slim', f.args);
  }
  assert.ok(ins.some((i) => i.op === 'ENV' && /THOUGHTGATE_UWS_BUILD=modern\b/.test(i.args)), 'the image insists on the 431-capable uWS build');
  const pins = readFileSync(join(root, 'src/transport/uws-pins.ts'), 'utf8');
  for (const arch of ['x64', 'arm64']) assert.match(pins, new RegExp(`'uws_linux_${arch}_137\\.node': '[0-9a-f]{64}'`), `a pinned Node 24 binary for linux ${arch}`);
  const exposed = ins.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
  assert.ok(exposed.includes('7467') && exposed.includes('7469'), `EXPOSE ${exposed}`);

  // the last USER of the final stage decides who runs the entrypoint
  const lastFrom = ins.lastIndexOf(froms.at(-1));
  const users = ins.slice(lastFrom).filter((i) => i.op === 'USER');
  assert.ok(users.length > 0, 'final stage sets USER');
  const user = users.at(-1).args.split(':')[0];
  assert.ok(!['root', '0', ''].includes(user), `USER ${user}`);
  assert.match(user, /^\d+$/, 'numeric uid, so runAsNonRoot can verify it');

  const entry = ins.filter((i) => i.op === 'ENTRYPOINT').at(-1);
  const argv = JSON.parse(entry.args);
  assert.ok(argv.includes('node') && argv.some((a) => a.endsWith('bin/thoughtgate.js')) && argv.at(-1) === 'serve', entry.args);
  const health = ins.find((i) => i.op === 'HEALTHCHECK');
  assert.ok(health && health.args.includes('/health'), 'HEALTHCHECK on /health');
  const env = ins.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
  assert.match(env, /THOUGHTGATE_CONFIG=\/etc\/thoughtgate\/config\.yaml/);
  assert.match(env, /THOUGHTGATE_AUDIT_PATH=(\/var\/lib\/thoughtgate\/|-)/);
  assert.ok(ins.some((i) => i.op === 'RUN' && /npm ci\b/.test(i.args)), 'npm ci');
  assert.ok(ins.some((i) => i.op === 'RUN' && /npm prune --omit=dev/.test(i.args)), 'npm prune --omit=dev');
});

test('.dockerignore keeps local artefacts out of the build context', () => {
  const lines = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', 'dist', '.git']) assert.ok(lines.includes(p), p);
});

test('systemd unit: runs serve unprivileged with a state directory for the audit trail', () => {
  const unit = readFileSync(join(deployDir, 'systemd/thoughtgate.service'), 'utf8');
  const kv = new Map();
  let section = '';
  for (const raw of unit.split('\n')) {
    const l = raw.trim();
    if (!l || l.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(l);
    if (s) {
      section = s[1];
      continue;
    }
    const eq = l.indexOf('=');
    assert.ok(eq > 0, `bad unit line: ${l}`);
    const key = `${section}.${l.slice(0, eq)}`;
    kv.set(key, [...(kv.get(key) ?? []), l.slice(eq + 1)]);
  }
  assert.ok(['Unit', 'Service', 'Install'].every((s) => [...kv.keys()].some((k) => k.startsWith(`${s}.`))));
  assert.match(kv.get('Service.ExecStart')[0], /thoughtgate\.js serve$/);
  assert.ok(kv.get('Service.DynamicUser')?.[0] === 'yes' || kv.has('Service.User'), 'unprivileged user');
  assert.equal(kv.get('Service.NoNewPrivileges')?.[0], 'yes');
  assert.equal(kv.get('Service.StateDirectory')?.[0], 'thoughtgate');
  assert.ok(kv.get('Service.Environment').some((e) => e === 'THOUGHTGATE_AUDIT_PATH=/var/lib/thoughtgate/audit.ndjson'));
  assert.equal(kv.get('Install.WantedBy')?.[0], 'multi-user.target');
});

test('only the sidecar mounts its state volume: servers and the agent never see the admin token or journal', () => {
  for (const { file, spec, c } of sidecars()) {
    const stateMount = (c.volumeMounts ?? []).find((m) => m.mountPath === '/var/lib/thoughtgate');
    assert.ok(stateMount, `${file}: the sidecar mounts /var/lib/thoughtgate`);
    for (const other of [...(spec.containers ?? []), ...(spec.initContainers ?? [])].filter((x) => x !== c)) {
      assert.ok(!(other.volumeMounts ?? []).some((m) => m.name === stateMount.name), `${file}: container ${other.name} mounts the state volume`);
    }
    // the traffic bind stays 0.0.0.0 (the agent reaches 7467), the admin bind is explicit for the probes
    const env = new Map((c.env ?? []).map((e) => [e.name, e.value]));
    assert.ok(!env.has('THOUGHTGATE_BIND') || env.get('THOUGHTGATE_BIND') === '0.0.0.0');
    assert.equal(env.get('THOUGHTGATE_ADMIN_BIND'), '0.0.0.0', `${file}: admin bind explicit, so a --bind never takes the probes away`);
  }
});

test('state directories are private: systemd StateDirectoryMode=0700, the image chmods its volume 0700', () => {
  const unit = readFileSync(join(deployDir, 'systemd', 'thoughtgate.service'), 'utf8');
  assert.match(unit, /^StateDirectoryMode=0700$/m);
  assert.match(unit, /^UMask=0077$/m);
  assert.ok(dockerfile().some((i) => i.op === 'RUN' && /chmod 0700 \/var\/lib\/thoughtgate\b/.test(i.args)), 'Dockerfile chmods /var/lib/thoughtgate 0700');
});
