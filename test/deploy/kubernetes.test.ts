// The Kubernetes manifests (issue 14 point 2), validated offline: `kubectl kustomize` renders the base and both
// overlays (with test certificates in the git-ignored secrets folders of a copy), every object is checked against
// the Kubernetes API schema (kubernetes-models), and the rendered objects against what the gateway needs: the
// configuration in the ConfigMap validates with the gateway's own schema and every file it names is mounted, probes
// and ports match the configuration, the pod runs as the image's user on a read-only root, and the drain fits in
// the termination grace period.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as coreV1 from 'kubernetes-models/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { loadRegistryFile } from '../../src/identity/file-registry.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { createPki, type Pki } from '../helpers/e2e.js';
import { findExternalTool } from '../observability/helpers/external-tool.js';

const kubectl = findExternalTool('kubectl', 'the node machine image ships kubectl; else apt-get install kubernetes-client');
const K8S = join(PROJECT_ROOT, 'deploy', 'k8s');
const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const MOUNT = '/etc/nems-gateway';

// Each kind the manifests use, with its schema; any other kind fails the test.
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': coreV1.Namespace, 'v1/ServiceAccount': coreV1.ServiceAccount, 'v1/ConfigMap': coreV1.ConfigMap,
  'v1/Secret': coreV1.Secret, 'v1/Service': coreV1.Service, 'apps/v1/Deployment': appsV1.Deployment,
  'apps/v1/StatefulSet': appsV1.StatefulSet, 'policy/v1/PodDisruptionBudget': policyV1.PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': networkingV1.NetworkPolicy,
};

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

let work: string;
let pki: Pki;
const rendered: Record<'base' | 'demo' | 'spine', K8sObject[]> = { base: [], demo: [], spine: [] };

function kustomize(dir: string): K8sObject[] {
  const result = spawnSync(kubectl.require(), ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} exited ${result.status}: ${result.stderr}`);
  const objects = parseAllDocuments(result.stdout).map((doc) => doc.toJS() as K8sObject).filter(Boolean);
  // kustomize wraps long base64 values in block scalars; the API server's decoder (Go's encoding/json) skips the
  // line breaks, the schema's `byte` format does not: unwrap them as the server would.
  for (const secret of objects.filter((o) => o.kind === 'Secret')) {
    for (const key of Object.keys(secret['data'] ?? {})) secret['data'][key] = String(secret['data'][key]).replace(/[\r\n]/g, '');
  }
  return objects;
}

const find = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && (o.metadata.name === name || o.metadata.name.startsWith(`${name}-`)));
  if (!found) throw new Error(`no ${kind} ${name} in ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
};
const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** The files an operator provides, here from the test PKI (real PEM, generated in this run, never in git). */
function fillSecrets(root: string): void {
  const copy = (overlay: string, target: string, source: string) => writeFileSync(join(root, 'overlays', overlay, 'secrets', target), pki.read(source));
  for (const overlay of ['demo', 'spine']) {
    for (const file of ['server.pem', 'server-key.pem', 'ca.pem', 'crl.pem']) copy(overlay, file, file);
  }
  copy('spine', 'spine-client.pem', 'gp-system.pem');
  copy('spine', 'spine-client-key.pem', 'gp-system-key.pem');
  copy('spine', 'spine-ca.pem', 'ca.pem');
  copy('spine', 'pds-private-key.pem', 'child-health-key.pem');
  writeFileSync(join(root, 'overlays', 'spine', 'secrets', 'redis-password'), 'test-password\n');
}

/** gateway.yaml from the rendered ConfigMap, validated by the gateway's own schema as mounted at /etc/nems-gateway. */
function gatewayConfig(objects: K8sObject[]): { config: Config; raw: any; configMap: K8sObject } {
  const configMap = find(objects, 'ConfigMap', 'nems-gateway-config');
  const text = configMap['data']['gateway.yaml'] as string;
  const raw = parseAllDocuments(text)[0]!.toJS();
  return { config: parseConfig(raw, `${MOUNT}/gateway.yaml`), raw, configMap };
}

/** Every file the projected config volume puts under /etc/nems-gateway, and the secret/configMap each comes from. */
function mountedFiles(objects: K8sObject[], deployment: K8sObject): Set<string> {
  const volume = (deployment['spec'].template.spec.volumes as any[]).find((v) => v.name === 'config');
  const files = new Set<string>();
  for (const source of volume.projected.sources as any[]) {
    if (source.configMap) {
      const configMap = find(objects, 'ConfigMap', source.configMap.name);
      expect(configMap.metadata.name, 'the volume names the generated ConfigMap').toBe(source.configMap.name);
      for (const key of Object.keys(configMap['data'])) files.add(posix.join(MOUNT, key));
    }
    if (source.secret) {
      const secret = find(objects, 'Secret', source.secret.name);
      expect(secret.metadata.name, 'the volume names the generated Secret').toBe(source.secret.name);
      for (const item of source.secret.items as Array<{ key: string; path: string }>) {
        expect(Object.keys(secret['data'] ?? {}), `Secret ${secret.metadata.name}`).toContain(item.key);
        files.add(posix.join(MOUNT, item.path));
      }
    }
  }
  return files;
}

/** Paths the configuration reads at start-up (absolute after parseConfig). */
function configuredFiles(config: Config): string[] {
  const files = [config.server.tls.cert, config.server.tls.key, config.server.tls.ca, config.server.tls.crl, config.registry.path];
  if (config.pds.kind === 'local') files.push(config.pds.local.path);
  if (config.pds.fhir?.auth.kind === 'application-restricted') files.push(config.pds.fhir.auth.privateKeyPath);
  if (config.upstream.tls) files.push(config.upstream.tls.cert, config.upstream.tls.key, config.upstream.tls.ca);
  if (config.rateLimits.redis) files.push(config.rateLimits.redis.passwordFile, config.rateLimits.redis.ca);
  return files.filter((f): f is string => f !== undefined);
}

describe.skipIf(kubectl.skip)('Kubernetes manifests (kustomize base, demo and Spine overlays)', () => {
  beforeAll(() => {
    pki = createPki();
    work = mkdtempSync(join(tmpdir(), 'nems-k8s-'));
    cpSync(K8S, join(work, 'k8s'), { recursive: true });
    fillSecrets(join(work, 'k8s'));
    rendered.base = kustomize(join(work, 'k8s', 'base'));
    rendered.demo = kustomize(join(work, 'k8s', 'overlays', 'demo'));
    rendered.spine = kustomize(join(work, 'k8s', 'overlays', 'spine'));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    pki?.cleanup();
  });

  it.each(['base', 'demo', 'spine'] as const)('%s: every object is valid against the Kubernetes API schema', (name) => {
    expect(rendered[name].length).toBeGreaterThan(4);
    for (const object of rendered[name]) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(Model, `${object.apiVersion} ${object.kind} has a schema here`).toBeDefined();
      expect(() => new Model!(object).validate(), `${object.kind}/${object.metadata.name}`).not.toThrow();
    }
  });

  it('demo: two gateways in front of one reference core StatefulSet with its volume, on one Redis, all in nems-demo', () => {
    const objects = rendered.demo;
    expect(objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`).sort()).toEqual([
      'ConfigMap/nems-gateway-config', 'Deployment/nems-gateway', 'Deployment/nems-redis', 'Namespace/nems-demo',
      'NetworkPolicy/nems-core', 'NetworkPolicy/nems-gateway', 'NetworkPolicy/nems-redis', 'PodDisruptionBudget/nems-gateway',
      'Secret/nems-gateway-tls', 'Service/nems-core', 'Service/nems-gateway', 'Service/nems-redis', 'ServiceAccount/nems-gateway',
      'StatefulSet/nems-core',
    ]);
    for (const object of objects.filter((o) => o.kind !== 'Namespace')) expect(object.metadata.namespace, `${object.kind}/${object.metadata.name}`).toBe('nems-demo');
    const core = find(objects, 'StatefulSet', 'nems-core');
    expect(core['spec'].replicas).toBe(1);
    expect(core['spec'].volumeClaimTemplates[0].metadata.name).toBe('data');
    const coreContainer = core['spec'].template.spec.containers[0];
    expect(coreContainer.args.slice(0, 1)).toEqual(['core']);
    expect(coreContainer.volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/nems-gateway' });
    const { config } = gatewayConfig(objects);
    // The gateways reach the core through its Service, and share Redis through the Redis Service.
    const upstream = new URL(config.upstream.url!);
    const coreService = find(objects, 'Service', 'nems-core');
    expect(config.upstream.kind).toBe('http');
    expect(upstream.hostname).toBe(coreService.metadata.name);
    expect(Number(upstream.port)).toBe(coreService['spec'].ports[0].port);
    expect(coreContainer.args).toContain(String(coreService['spec'].ports[0].port));
    expect(config.rateLimits).toMatchObject({ enabled: true, store: 'redis', onStoreError: 'local' });
    expect(new URL(config.rateLimits.redis!.url).hostname).toBe(find(objects, 'Service', 'nems-redis').metadata.name);
    // The example registry and PDS data ship in the image (build.mjs copies config/ to /app/config).
    expect(config.registry.path).toBe('/app/config/endpoints.yaml');
    expect(existsSync(join(PROJECT_ROOT, 'config', 'endpoints.yaml'))).toBe(true);
    expect(find(objects, 'Deployment', 'nems-gateway')['spec'].template.spec.containers[0].image).toBe(`localhost/nems-gateway:${VERSION}`);
  });

  it('spine: three gateways in front of Spine over mTLS, PDS FHIR API, Redis with a password; the registry loads', () => {
    const objects = rendered.spine;
    const deployment = find(objects, 'Deployment', 'nems-gateway');
    expect(deployment['spec'].replicas).toBe(3);
    expect(deployment['spec'].template.spec.containers[0].image).toBe(`registry.example.nhs.uk/nems-gateway:${VERSION}`);
    expect(find(objects, 'Service', 'nems-gateway')['spec']).toMatchObject({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' });
    const { config, configMap } = gatewayConfig(objects);
    expect(config.upstream).toMatchObject({ kind: 'http', url: 'https://msg.int.spine2.ncrs.nhs.uk' });
    expect(config.pds.kind).toBe('fhir');
    expect(config.rateLimits.redis?.url).toMatch(/^rediss:\/\//);
    const registry = join(work, 'spine-endpoints.yaml');
    writeFileSync(registry, configMap['data']['endpoints.yaml']);
    expect(loadRegistryFile(registry)).toEqual([]);
  });

  it.each(['demo', 'spine'] as const)('%s: every file gateway.yaml names is mounted from the ConfigMap or a Secret (or ships in the image)', (name) => {
    const objects = rendered[name];
    const { config } = gatewayConfig(objects);
    const mounted = mountedFiles(objects, find(objects, 'Deployment', 'nems-gateway'));
    for (const file of configuredFiles(config)) {
      if (file.startsWith('/app/config/')) expect(existsSync(join(PROJECT_ROOT, 'config', file.slice('/app/config/'.length))), file).toBe(true);
      else expect([...mounted], file).toContain(file);
    }
  });

  it.each(['demo', 'spine'] as const)('%s: the gateway pod runs as the image\'s non-root user on a read-only root, probes the admin port, drains within its grace period', (name) => {
    const objects = rendered[name];
    const deployment = find(objects, 'Deployment', 'nems-gateway');
    const pod = deployment['spec'].template.spec;
    const container = pod.containers[0];
    const { config } = gatewayConfig(objects);
    const dockerUser = /^USER\s+(\d+):(\d+)/m.exec(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'))!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: Number(dockerUser[1]), runAsGroup: Number(dockerUser[2]), fsGroup: Number(dockerUser[2]) });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits.memory).toEqual(expect.any(String));
    expect(pod.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    expect(deployment['spec'].strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });

    const port = (portName: string) => (container.ports as Array<{ name: string; containerPort: number }>).find((p) => p.name === portName)?.containerPort;
    expect(port('mtls')).toBe(config.server.port);
    expect(port('admin')).toBe(config.admin.port);
    expect(config.server.host).toBe('0.0.0.0');
    expect(container.env).toContainEqual({ name: 'NEMS_GATEWAY_ADMIN_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
    expect(container.env).toContainEqual({ name: 'NEMS_GATEWAY_CONFIG', value: `${MOUNT}/gateway.yaml` });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.volumeMounts).toEqual([{ name: 'config', mountPath: MOUNT, readOnly: true }]);

    // SIGTERM: readiness grace, then the drain deadline, both inside the pod's termination grace period; the
    // grace is at least two readiness periods so the endpoint is removed while the pod still serves.
    const { readinessGraceMs, drainDeadlineMs, workers } = config.lifecycle;
    expect(readinessGraceMs + drainDeadlineMs).toBeLessThan(pod.terminationGracePeriodSeconds * 1000);
    expect(readinessGraceMs).toBeGreaterThanOrEqual(container.readinessProbe.periodSeconds * 1000);
    expect(workers).toBe(1);

    const podLabels = deployment['spec'].template.metadata.labels as Record<string, string>;
    expect(matches(find(objects, 'PodDisruptionBudget', 'nems-gateway')['spec'].selector.matchLabels, podLabels)).toBe(true);
    expect(matches(find(objects, 'NetworkPolicy', 'nems-gateway')['spec'].podSelector.matchLabels, podLabels)).toBe(true);
    const service = find(objects, 'Service', 'nems-gateway');
    expect(matches(service['spec'].selector, podLabels)).toBe(true);
    expect(service['spec'].ports.map((p: { targetPort: string }) => p.targetPort).sort()).toEqual(['admin', 'mtls']);
  });

  it('keeps no key material in the repository: Secrets are generated from git-ignored files', () => {
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
    const files = walk(K8S);
    for (const file of files) expect(readFileSync(file, 'utf8'), file).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----|^kind: Secret/m);
    const ignored = spawnSync('git', ['-C', PROJECT_ROOT, 'check-ignore', '-q', join(K8S, 'overlays', 'spine', 'secrets', 'server-key.pem')]);
    expect(ignored.status, 'secrets/ files are git-ignored').toBe(0);
    const readme = spawnSync('git', ['-C', PROJECT_ROOT, 'check-ignore', '-q', join(K8S, 'overlays', 'demo', 'secrets', 'README.md')]);
    expect(readme.status, 'the README saying which files to provide is kept').toBe(1);
  });
});
