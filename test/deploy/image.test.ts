// The container image (issue 14 point 1), built and run as an operator would, without a Docker daemon: the build
// context from deploy/image/build.mjs, the Dockerfile built by buildah (storage driver vfs, chroot isolation: no
// daemon, no privileges beyond root in this container), the image run by podman as its own non-root user with a
// read-only root filesystem and the configuration mounted read-only. It checks the image's contents, check-config,
// /readyz, one mTLS request through the gateway in the container, and a SIGTERM drain (readiness fails first, the
// request in flight finishes, exit 0). Everything lives in a private image store removed afterwards.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { createPki, send, startCountingUpstream, type CountingUpstream, type Pki } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { adminGet, closedPort, eventually } from '../helpers/ops-admin.js';
import { findExternalTool } from '../observability/helpers/external-tool.js';

const buildah = findExternalTool('buildah', 'apt-get install buildah');
const podman = findExternalTool('podman', 'apt-get install podman');
// podman's default OCI runtime (crun) refuses hosts with hybrid cgroups, as this CI's is; runc runs there.
const runc = findExternalTool('runc', 'apt-get install runc');
const skip = buildah.skip || podman.skip || runc.skip;

const TAG = `localhost/nems-gateway:test-${process.pid}`;
const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const GRACE_MS = 2000;

let work: string;
let pki: Pki;
let upstream: CountingUpstream;
let configDir: string;
let ports: { server: number; admin: number };
const timings: Record<string, number> = {};

/** Private storage for both tools: nothing is shared with the machine's own images, all removed afterwards. */
const storage = () => ['--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs'];
const podmanArgs = (...args: string[]) => [
  ...storage(), '--runtime', runc.require(), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--tmpdir', join(work, 'libpod'), ...args,
];

function sh(command: string, args: readonly string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  return result;
}

function ok(command: string, args: readonly string[], timeoutMs?: number): string {
  const result = sh(command, args, timeoutMs);
  if (result.status !== 0) throw new Error(`${command} ${args.slice(-6).join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`.slice(0, 8000));
  return result.stdout;
}

/**
 * podman run as the image's user (no --user), read-only root with no tmpfs added (as Kubernetes'
 * readOnlyRootFilesystem), host network (the gateway binds loopback ports the
 * test picked), the configuration read-only at /etc/nems-gateway. The ulimits are below this host's hard limits:
 * podman's defaults are above them, and raising a limit needs CAP_SYS_RESOURCE, which this container lacks.
 */
const runArgs = (...rest: string[]) => podmanArgs(
  'run', '--network', 'host', '--read-only', '--read-only-tmpfs=false', '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096',
  '-v', `${configDir}:/etc/nems-gateway:ro`, ...rest,
);

/** The operator's /etc/nems-gateway: gateway.yaml, registry, PDS data, tls/ (readable by the image's user, as a Secret volume is). */
function writeConfigDir(): string {
  const dir = join(work, 'etc-nems-gateway');
  mkdirSync(join(dir, 'tls'), { recursive: true });
  for (const file of ['server.pem', 'server-key.pem', 'ca.pem', 'crl.pem']) {
    copyFileSync(pki.file(file), join(dir, 'tls', file));
    chmodSync(join(dir, 'tls', file), 0o644);
  }
  copyFileSync(join(PROJECT_ROOT, 'config', 'endpoints.yaml'), join(dir, 'endpoints.yaml'));
  copyFileSync(join(PROJECT_ROOT, 'config', 'pds-local.yaml'), join(dir, 'pds-local.yaml'));
  const config = {
    server: {
      host: '127.0.0.1', port: ports.server,
      tls: { cert: 'tls/server.pem', key: 'tls/server-key.pem', ca: 'tls/ca.pem', crl: 'tls/crl.pem' },
    },
    admin: { host: '127.0.0.1', port: ports.admin },
    registry: { path: 'endpoints.yaml' },
    upstream: { kind: 'http', url: upstream.url, timeoutMs: 10_000 },
    pds: { kind: 'local', local: { path: 'pds-local.yaml' } },
    logging: { level: 'info', bufferBytes: 0 },
    lifecycle: { readinessGraceMs: GRACE_MS, drainDeadlineMs: 8000 },
  };
  writeFileSync(join(dir, 'gateway.yaml'), JSON.stringify(config, null, 2));
  for (const file of ['gateway.yaml', 'endpoints.yaml', 'pds-local.yaml']) chmodSync(join(dir, file), 0o644);
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'tls'), 0o755);
  return dir;
}

/** `node -e` inside the image, as its user, on a read-only root: what the script prints. */
const inImage = (script: string) => ok('podman', runArgs('--rm', '--entrypoint', '/usr/local/bin/node', TAG, '-e', script)).trim();

describe.skipIf(skip)('container image (buildah build, podman run)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nems-image-'));
    chmodSync(work, 0o755);
    pki = createPki();
    upstream = await startCountingUpstream();
    ports = { server: await closedPort(), admin: await closedPort() };
    configDir = writeConfigDir();

    let started = performance.now();
    // The context: Node 22 (npm registry, integrity-checked), production node_modules, better-sqlite3 for that Node.
    const context = ok(process.execPath, [join(PROJECT_ROOT, 'deploy', 'image', 'build.mjs'), 'context', '--out', join(work, 'context')], 480_000).trim();
    timings.contextSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const epoch = ok('git', ['-C', PROJECT_ROOT, 'log', '-1', '--format=%ct']).trim() || '0';
    ok(buildah.require(), [...storage(), 'bud', '--isolation', 'chroot', '--timestamp', epoch, '-t', TAG, context], 300_000);
    timings.buildSeconds = (performance.now() - started) / 1000;
  }, 600_000);

  afterAll(async () => {
    if (work) {
      sh('podman', podmanArgs('rm', '-f', '--all'));
      sh(buildah.path ?? 'buildah', [...storage(), 'rmi', '--all', '--force']);
      // Measured figures for the report (CI log): context and build time, image size.
      console.info(`image test: ${JSON.stringify(timings)}`);
      rmSync(work, { recursive: true, force: true });
    }
    await upstream?.stop();
    pki?.cleanup();
  });

  it('is a non-root image of Node 22 and the production files only: no dev tools, no node-forge, nothing writable', () => {
    const [config] = JSON.parse(ok('podman', podmanArgs('image', 'inspect', TAG))) as Array<{ Config: { User: string; Entrypoint: string[]; Cmd: string[] }; Size: number }>;
    expect(config!.Config.User).toBe('10001:10001');
    expect(config!.Config.Entrypoint).toEqual(['/usr/local/bin/node', '/app/dist/src/main.js']);
    expect(config!.Config.Cmd).toEqual(['start']);
    timings.imageMegabytes = Math.round(config!.Size / 1e6);
    const facts = JSON.parse(inImage(`
      const fs = require('fs');
      const writable = (p) => { try { fs.writeFileSync(p, 'x'); return true; } catch { return false; } };
      console.log(JSON.stringify({
        uid: process.getuid(), gid: process.getgid(), node: process.versions.node,
        modules: ['node-forge', 'typescript', 'vitest', 'autocannon', 'pino-pretty', 'better-sqlite3', 'ioredis']
          .filter((m) => fs.existsSync('/app/node_modules/' + m)),
        writable: ['/app/x', '/etc/x', '/x', '/tmp/x'].filter(writable),
      }));`)) as { uid: number; gid: number; node: string; modules: string[]; writable: string[] };
    expect(facts.uid).toBe(10001);
    expect(facts.gid).toBe(10001);
    expect(Number(facts.node.split('.')[0])).toBeGreaterThanOrEqual(22);
    expect(facts.modules).toEqual(['better-sqlite3', 'ioredis']);
    expect(facts.writable).toEqual([]);
    expect(ok('podman', runArgs('--rm', TAG, '--version')).trim()).toMatch(/^nems-gateway \d+\.\d+\.\d+ \(revision [0-9a-f]{40}, node v22\./);
  });

  it('check-config validates the mounted configuration, certificates and registry (exit 0)', () => {
    const result = sh('podman', runArgs('--rm', TAG, 'check-config'));
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/\/etc\/nems-gateway\/gateway\.yaml: configuration OK \(2 endpoints, upstream http, PDS local\)/);
  });

  it('serves /readyz and an mTLS request, then drains on SIGTERM: readiness fails first, the request in flight finishes, exit 0', async () => {
    const name = `nems-gateway-test-${process.pid}`;
    ok('podman', runArgs('-d', '--name', name, TAG));
    const logs = () => sh('podman', podmanArgs('logs', name)).stdout;
    try {
      await eventually(async () => (await adminGet(ports.admin, '/readyz').catch(() => ({ status: 0 }))).status === 200, 'the container\'s /readyz', 30_000, 200)
        .catch((err: Error) => { throw new Error(`${err.message}\n${logs()}`); });
      expect((await adminGet(ports.admin, '/healthz')).status).toBe(200);

      const read = await send(pki, ports.server, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
      expect(read.status).toBe(200);
      expect((await upstream.stats()).received.at(-1)?.headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);

      // A slow request in flight when SIGTERM arrives.
      await upstream.reset();
      const slow = send(pki, ports.server, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-delay-ms': '3000' }, timeoutMs: 20_000 });
      await eventually(async () => (await upstream.stats()).count === 1, 'the slow request to reach the upstream', 10_000);
      ok('podman', podmanArgs('kill', '--signal', 'TERM', name));
      await eventually(async () => (await adminGet(ports.admin, '/readyz').catch(() => ({ status: 0, text: '' }))).status === 503, '/readyz to fail while draining', GRACE_MS);
      expect((await slow).status).toBe(200);
      const exit = ok('podman', podmanArgs('wait', name), 30_000).trim();
      expect(exit).toBe('0');
      expect(logs()).toMatch(/"msg":"stopped"/);
    } finally {
      sh('podman', podmanArgs('rm', '-f', name));
    }
  });
});
