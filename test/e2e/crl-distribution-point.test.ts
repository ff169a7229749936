// Issue 16 point 3: revocation that maintains itself. The gateway fetches its CA's CRL from a distribution point
// served over HTTP by this test, keeps the last good copy in a cache folder, refreshes it on a schedule, refuses
// what it cannot trust (garbage, another CA's CRL, an older CRL), and fails closed once the copy in force is past
// its nextUpdate. Done when a certificate revoked in the newly served CRL is refused without anyone copying files.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { Agent } from 'node:https';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { parseCrls } from '../../src/edge/pki.js';
import { send, startCountingUpstream, startTestApp, testConfig, type CountingUpstream } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { adminGet, eventually, handshake, metricSum } from '../helpers/ops-admin.js';
import { createOpsPki, type OpsPki } from '../helpers/ops-files.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';

/** A CRL distribution point: serves whatever `serve` holds at /ca.crl (DER), counting requests. */
interface DistributionPoint {
  readonly url: string;
  serve: { kind: 'crl'; der: Buffer } | { kind: 'status'; status: number } | { kind: 'bytes'; body: Buffer };
  requests: number;
  close(): Promise<void>;
}

async function startDistributionPoint(): Promise<DistributionPoint> {
  const point = { serve: { kind: 'status', status: 404 }, requests: 0 } as DistributionPoint & { server: Server };
  const server = createServer((req, res) => {
    point.requests++;
    const serve = point.serve;
    if (req.url !== '/ca.crl' || serve.kind === 'status') {
      res.writeHead(serve.kind === 'status' ? serve.status : 404).end();
      return;
    }
    const body = serve.kind === 'crl' ? serve.der : serve.body;
    res.writeHead(200, { 'content-type': 'application/pkix-crl', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(point, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ca.crl`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  });
}

const derOf = (pem: string) => parseCrls(pem)[0]!.der;

let pki: OpsPki;
let upstream: CountingUpstream;
let point: DistributionPoint;
let cacheDir: string;
let crlNumber = 10;
/** A new CRL of the example CA, revoking the named certificates, with a higher CRL number each time. */
const crl = (revoked: string[], validity: { nextUpdate?: Date } = {}) => derOf(pki.crlRevoking(revoked, ++crlNumber, validity));

beforeAll(async () => {
  pki = createOpsPki();
  upstream = await startCountingUpstream();
  point = await startDistributionPoint();
  cacheDir = mkdtempSync(join(tmpdir(), 'nems-crl-cache-'));
});
afterAll(async () => {
  await point?.close();
  await upstream?.stop();
  pki?.cleanup();
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
});

/** The test gateway with no CRL file: its CRL comes only from the distribution point. */
function dpConfig(patch: (raw: Record<string, any>) => void = () => {}): Config {
  return testConfig(pki, {
    upstreamUrl: upstream.url,
    patch: (raw) => {
      delete raw.server.tls.crl;
      raw.server.tls.crlDistributionPoints = { urls: [point.url], cacheDir, refreshIntervalSeconds: 1, retrySeconds: 1, refreshMarginSeconds: 0, timeoutMs: 2000 };
      patch(raw);
    },
  });
}

const refusals = async (app: RunningApp, reason: string) =>
  metricSum((await app.metrics.render()).body, 'nems_gateway_trust_material_refusals_total', { source: 'distribution-point', reason });
const fetches = async (app: RunningApp, result: string) => metricSum((await app.metrics.render()).body, 'nems_gateway_crl_fetches_total', { result });
const gpRead = (port: number, agent?: Agent) => send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read'), ...(agent ? { agent } : {}) });

describe('a gateway whose CRL comes from a distribution point over HTTP', () => {
  let app: RunningApp;
  let port: number;

  beforeAll(async () => {
    point.serve = { kind: 'crl', der: crl(['revoked']) };
    app = await startTestApp(dpConfig());
    port = app.gateway.port;
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('starts with the fetched CRL in force, cached on disk, and shows it in /readyz and the metrics', async () => {
    expect((await handshake(pki, port, 'revoked')).ok).toBe(false);
    expect((await gpRead(port)).status).toBe(200);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.crl'))).toHaveLength(1);
    expect(await fetches(app, 'updated')).toBeGreaterThanOrEqual(1);
    const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
    expect(ready.checks.revocation.ok).toBe(true);
    expect(ready.checks.revocation.reason).toMatch(new RegExp(`1 CRL\\(s\\) in force for 1 CA\\(s\\).*distribution points: ${point.url.replace(/[.]/g, '\\.')}: copy current until`));
  });

  it('refuses a certificate revoked in the newly served CRL without anyone copying files, and closes its live connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let socket: TLSSocket | undefined;
    agent.on('free', (s: TLSSocket) => {
      socket = s;
    });
    expect((await gpRead(port, agent)).status).toBe(200);
    const closed = once(socket!, 'close');

    point.serve = { kind: 'crl', der: crl(['revoked', 'gp-system']) };
    await eventually(async () => !(await handshake(pki, port, 'gp-system')).ok, 'gp-system to be refused after the distribution point served the new CRL', 10_000, 100);
    expect(await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 3000))])).toBe('closed');
    agent.destroy();
    await expect(gpRead(port)).rejects.toThrow();
    expect((await handshake(pki, port, 'child-health')).ok).toBe(true);
    expect(metricSum((await app.metrics.render()).body, 'nems_gateway_reloads_total', { component: 'certificate', result: 'success' })).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ['garbage', () => ({ kind: 'bytes' as const, body: Buffer.from('this is not a CRL') }), 'crl-unreadable'],
    ['the CRL of another CA', () => ({ kind: 'crl' as const, der: derOf(pki.crlRevoking([], 99, { issuer: 'untrusted-ca' })) }), 'crl-unknown-issuer'],
    ['an older CRL that does not revoke gp-system (a replay)', () => ({ kind: 'crl' as const, der: derOf(pki.crlRevoking(['revoked'], 1)) }), 'crl-older'],
    ['an expired CRL', () => ({ kind: 'crl' as const, der: derOf(pki.crlRevoking(['revoked'], 500, { thisUpdate: new Date(Date.now() - 86_400_000 * 3), nextUpdate: new Date(Date.now() - 86_400_000) })) }), 'crl-expired'],
  ])('refuses %s and keeps the last good copy', async (_what, serve, reason) => {
    const before = await refusals(app, reason);
    point.serve = serve();
    await eventually(async () => (await refusals(app, reason)) > before, `a ${reason} refusal`, 10_000, 100);
    expect((await handshake(pki, port, 'gp-system')).ok).toBe(false);
    expect((await handshake(pki, port, 'child-health')).ok).toBe(true);
    const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
    expect(ready.checks.revocation.ok).toBe(true);
    expect(ready.checks.revocation.reason).toContain('last fetch refused');
  });

  it('keeps the last good copy while the distribution point is down, and says so in /readyz', async () => {
    const before = await fetches(app, 'failed');
    point.serve = { kind: 'status', status: 503 };
    await eventually(async () => (await fetches(app, 'failed')) > before, 'a failed fetch', 10_000, 100);
    expect((await handshake(pki, port, 'gp-system')).ok).toBe(false);
    expect((await handshake(pki, port, 'child-health')).ok).toBe(true);
    const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
    expect(ready.checks.revocation).toMatchObject({ ok: true });
    expect(ready.checks.revocation.reason).toContain('last fetch HTTP 503');
  });
});

describe('after a restart', () => {
  it('starts from the cached copy while the distribution point is down (revocation still in force)', async () => {
    point.serve = { kind: 'status', status: 503 };
    const app = await startTestApp(dpConfig());
    try {
      expect((await handshake(pki, app.gateway.port, 'gp-system')).ok).toBe(false);
      expect((await handshake(pki, app.gateway.port, 'child-health')).ok).toBe(true);
    } finally {
      await app.stop();
    }
  });

  it('refuses to start with neither a reachable distribution point nor a cached copy', async () => {
    const emptyCache = mkdtempSync(join(tmpdir(), 'nems-crl-cache-'));
    try {
      point.serve = { kind: 'status', status: 503 };
      await expect(startTestApp(dpConfig((raw) => { raw.server.tls.crlDistributionPoints.cacheDir = emptyCache; })))
        .rejects.toThrow(/server\.tls\.crlDistributionPoints: no CRL could be fetched from .* and none is cached/);
    } finally {
      rmSync(emptyCache, { recursive: true, force: true });
    }
  });

  it('fails closed once the copy in force passes its nextUpdate while the distribution point is down', async () => {
    const shortCache = mkdtempSync(join(tmpdir(), 'nems-crl-cache-'));
    point.serve = { kind: 'crl', der: crl(['revoked'], { nextUpdate: new Date(Date.now() + 4000) }) };
    const app = await startTestApp(dpConfig((raw) => { raw.server.tls.crlDistributionPoints.cacheDir = shortCache; }));
    try {
      expect((await handshake(pki, app.gateway.port, 'child-health')).ok).toBe(true);
      point.serve = { kind: 'status', status: 503 };
      await eventually(async () => (await adminGet(app.admin!.port, '/readyz')).status === 503, 'readiness to fail past nextUpdate', 15_000, 100);
      const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
      expect(ready.checks.revocation.reason).toMatch(/^stale: the CRL of .* passed its nextUpdate/);
      expect(ready.checks.revocation.reason).toMatch(/\(stale\); last fetch HTTP 503/);
      expect((await handshake(pki, app.gateway.port, 'child-health')).ok).toBe(false);

      // The distribution point comes back with a current CRL: the gateway recovers by itself.
      point.serve = { kind: 'crl', der: crl(['revoked']) };
      await eventually(async () => (await adminGet(app.admin!.port, '/readyz')).status === 200, 'readiness to recover', 15_000, 100);
      expect((await handshake(pki, app.gateway.port, 'child-health')).ok).toBe(true);
    } finally {
      await app.stop();
      rmSync(shortCache, { recursive: true, force: true });
    }
  });
});
