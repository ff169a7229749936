// Metrics, /healthz and /readyz end to end (issue 6 points 1 and 3): a real gateway on loopback, real TLS with
// the example certificates, a real upstream process; /metrics scraped over HTTP from the admin port and checked
// with `promtool check metrics`.
import { EXAMPLE_CRL_DAYS } from '../../certs-example/generate.js';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { send, spineCodeOf, startTestApp, testConfig, usePkiAndUpstream } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { EXPLICIT_SUBSCRIPTION_XML } from '../helpers/bodies.js';
import { copyConfigFiles, type ConfigFiles } from '../helpers/ops-files.js';
import { adminGet, closedPort, handshake, metricLabels, metricSum, parseSamples, promtool, promtoolCheckMetrics } from '../helpers/ops-admin.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';

const { pki, upstream } = usePkiAndUpstream();

describe('metrics scraped from the admin port after real traffic', () => {
  let app: RunningApp;
  let adminPort: number;
  let scrape: string;
  let files: ConfigFiles;

  beforeAll(async () => {
    // Upstream client certificates: a default one, and gp-system's ASID presenting its own (registry entry).
    files = copyConfigFiles();
    const registry = readFileSync(files.registry, 'utf8').replace(
      '      - asid: "200000000101"\n',
      `      - asid: "200000000101"\n        upstreamClientCertificate: { cert: ${pki.file('gp-system.pem')}, key: ${pki.file('gp-system-key.pem')} }\n`,
    );
    writeFileSync(files.registry, registry);
    app = await startTestApp(testConfig(pki, {
      upstreamUrl: upstream.url,
      patch: (raw) => {
        raw.registry.path = files.registry;
        raw.upstream.tls = { cert: pki.file('child-health.pem'), key: pki.file('child-health-key.pem') };
      },
    }));
    adminPort = app.admin!.port;
    const port = app.gateway.port;
    // Two forwarded reads, one forwarded create (PDS lookup of its NHS number), three rejections, four failed handshakes.
    for (let i = 0; i < 2; i++) {
      expect((await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);
    }
    // Two creates for the same NHS number: a PDS cache miss, then a hit.
    for (let i = 0; i < 2; i++) {
      const created = await send(pki, port, {
        client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body: EXPLICIT_SUBSCRIPTION_XML,
        headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
      });
      expect(created.status).toBe(201);
    }
    const noFromAsid = { ...nemsHeaders('gp-system', 'read') } as Record<string, string>;
    delete noFromAsid.fromASID;
    const missingHeader = await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: noFromAsid });
    expect(missingHeader.status).toBe(400);
    const unregistered = await send(pki, port, { client: 'unregistered', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(spineCodeOf(unregistered.text)).toBe('ACCESS_DENIED');
    const unknownPath = await send(pki, port, { client: 'gp-system', path: '/STU3/Patient/1', headers: nemsHeaders('gp-system', 'read') });
    expect(unknownPath.status).toBe(404);
    for (const client of ['expired', 'revoked', 'untrusted', 'none'] as const) {
      expect((await handshake(pki, port, client)).ok, client).toBe(false);
    }
    scrape = (await adminGet(adminPort, '/metrics')).text;
  });
  afterAll(async () => {
    await app?.stop();
    files?.cleanup();
  });

  it('serves the text exposition format on /metrics', async () => {
    const res = await adminGet(adminPort, '/metrics');
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toContain('# TYPE nems_gateway_requests_total counter');
  });

  it.skipIf(promtool.skip)('passes promtool check metrics', () => {
    const run = promtoolCheckMetrics(scrape);
    expect(run.output).toBe('');
    expect(run.status).toBe(0);
  });

  it('counts requests by route, outcome and status class', () => {
    expect(metricSum(scrape, 'nems_gateway_requests_total', { route: 'read', outcome: 'forwarded', status_class: '2xx' })).toBe(2);
    expect(metricSum(scrape, 'nems_gateway_requests_total', { route: 'create', outcome: 'forwarded', status_class: '2xx' })).toBe(2);
    expect(metricSum(scrape, 'nems_gateway_requests_total', { outcome: 'rejected', status_class: '4xx' })).toBe(3);
    expect(metricSum(scrape, 'nems_gateway_requests_total')).toBe(7);
    expect(metricSum(scrape, 'nems_gateway_request_duration_seconds_count', { route: 'read', outcome: 'forwarded' })).toBe(2);
    expect(metricSum(scrape, 'nems_gateway_upstream_duration_seconds_count', { route: 'read' })).toBe(2);
  });

  it('counts rejections by Spine code and stage', () => {
    expect(metricSum(scrape, 'nems_gateway_rejections_total', { code: 'MISSING_OR_INVALID_HEADER', stage: 'headers' })).toBe(1);
    expect(metricSum(scrape, 'nems_gateway_rejections_total', { code: 'ACCESS_DENIED', stage: 'edge' })).toBe(1);
    expect(metricSum(scrape, 'nems_gateway_rejections_total', { stage: 'route' })).toBe(1);
    expect(metricSum(scrape, 'nems_gateway_identity_rejections_total', { reason: 'unregistered-fqdn' })).toBe(1);
  });

  it('counts failed TLS handshakes by reason: expired, revoked, unknown_ca, no_certificate', () => {
    for (const reason of ['expired', 'revoked', 'unknown_ca', 'no_certificate']) {
      expect(metricSum(scrape, 'nems_gateway_tls_handshake_failures_total', { reason }), reason).toBe(1);
    }
    expect(metricSum(scrape, 'nems_gateway_tls_handshake_failures_total', { reason: 'other' })).toBe(0);
  });

  it('exports seconds left on the server certificate, the CA and the CRL nextUpdate', () => {
    const byCertificate = new Map(
      metricLabels(scrape, 'nems_gateway_certificate_expiry_remaining_seconds').map((l) => [l.certificate, l]),
    );
    expect([...byCertificate.keys()].sort()).toEqual(['ca', 'crl_next_update', 'server', 'upstream_client:200000000101', 'upstream_client:default']);
    const server = metricSum(scrape, 'nems_gateway_certificate_expiry_remaining_seconds', { certificate: 'server' });
    const crl = metricSum(scrape, 'nems_gateway_certificate_expiry_remaining_seconds', { certificate: 'crl_next_update' });
    // The example PKI: server valid 825 days, CRL nextUpdate in EXAMPLE_CRL_DAYS (365).
    expect(server / 86400).toBeGreaterThan(820);
    expect(crl / 86400).toBeGreaterThan(EXAMPLE_CRL_DAYS - 1);
    expect(crl / 86400).toBeLessThanOrEqual(EXAMPLE_CRL_DAYS);
  });

  it('counts PDS lookups by result and cache disposition', () => {
    expect(metricSum(scrape, 'nems_gateway_pds_lookups_total', { result: 'traced', cache: 'miss' })).toBe(1);
    expect(metricSum(scrape, 'nems_gateway_pds_lookups_total', { result: 'traced', cache: 'hit' })).toBe(1);
    expect(metricSum(scrape, 'nems_gateway_pds_lookup_duration_seconds_count')).toBe(2);
  });

  it('reports TLS connections (total and active) and nothing in flight once answered', () => {
    expect(metricSum(scrape, 'nems_gateway_tls_connections_total')).toBe(7);
    expect(metricSum(scrape, 'nems_gateway_requests_in_flight')).toBe(0);
    expect(scrape).toContain('nems_gateway_tls_connections_active');
  });

  it('no label value carries an NHS number, a JWT or another unbounded value', () => {
    const values = parseSamples(scrape).flatMap((s) => Object.values(s.labels));
    expect(values.length).toBeGreaterThan(0);
    for (const value of values) {
      expect(value).not.toMatch(/(?<!\d)\d{10}(?!\d)/); // an NHS number (ASIDs are 12 digits)
      expect(value).not.toContain('eyJ'); // a JWT
      expect(value).not.toContain('.nhs.uk'); // an FQDN
      expect(value.length).toBeLessThanOrEqual(40);
    }
  });
});

describe('TLS handshake timeout', () => {
  it('closes a connection that never sends a ClientHello at handshakeTimeoutMs and counts it as timeout', async () => {
    const app = await startTestApp(testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => { raw.server.limits.handshakeTimeoutMs = 300; } }));
    try {
      const silent = netConnect({ host: '127.0.0.1', port: app.gateway.port });
      silent.on('error', () => {});
      const opened = Date.now();
      await once(silent, 'close');
      expect(Date.now() - opened).toBeLessThan(2000);
      expect(metricSum((await adminGet(app.admin!.port, '/metrics')).text, 'nems_gateway_tls_handshake_failures_total', { reason: 'timeout' })).toBe(1);
    } finally {
      await app.stop();
    }
  });
});

describe('/healthz and /readyz', () => {
  it('answers /healthz 200 and /readyz 200 with a reason for each check', async () => {
    const app = await startTestApp(testConfig(pki, { upstreamUrl: upstream.url }));
    try {
      const health = await adminGet(app.admin!.port, '/healthz');
      expect(health.status).toBe(200);
      const ready = await adminGet(app.admin!.port, '/readyz');
      expect(ready.status).toBe(200);
      const report = JSON.parse(ready.text) as { ready: boolean; checks: Record<string, { ok: boolean; reason: string }> };
      expect(report.ready).toBe(true);
      expect(Object.keys(report.checks).sort()).toEqual(['config', 'listening', 'revocation', 'upstream']);
      for (const check of Object.values(report.checks)) {
        expect(check.ok).toBe(true);
        expect(check.reason.length).toBeGreaterThan(0);
      }
      expect(report.checks.upstream!.reason).toContain('reachable');
    } finally {
      await app.stop();
    }
  });

  it('answers /readyz 503 naming the upstream when it is unreachable, while /healthz stays 200', async () => {
    const app = await startTestApp(testConfig(pki, { upstreamUrl: `http://127.0.0.1:${await closedPort()}` }));
    try {
      expect((await adminGet(app.admin!.port, '/healthz')).status).toBe(200);
      const ready = await adminGet(app.admin!.port, '/readyz');
      expect(ready.status).toBe(503);
      const report = JSON.parse(ready.text) as { ready: boolean; checks: Record<string, { ok: boolean; reason: string }> };
      expect(report.ready).toBe(false);
      expect(report.checks.upstream).toMatchObject({ ok: false });
      expect(report.checks.upstream!.reason).toMatch(/unreachable \(ECONNREFUSED\)/);
      expect(report.checks.listening!.ok).toBe(true);
      // A request meanwhile is answered 502 BAD_GATEWAY and counted as an upstream error.
      const res = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
      expect(res.status).toBe(502);
      expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
      const text = (await adminGet(app.admin!.port, '/metrics')).text;
      expect(metricSum(text, 'nems_gateway_upstream_errors_total', { kind: 'unreachable', route: 'read' })).toBe(1);
      expect(metricSum(text, 'nems_gateway_requests_total', { route: 'read', outcome: 'upstream_error', status_class: '5xx' })).toBe(1);
    } finally {
      await app.stop();
    }
  });

  it('with a remote PDS: /readyz 200 while its host accepts connections, 503 naming PDS when it does not', async () => {
    const remotePds = (baseUrl: string) => testConfig(pki, {
      upstreamUrl: upstream.url,
      patch: (raw) => {
        raw.pds = { kind: 'fhir', fhir: { baseUrl, timeoutMs: 1000, auth: { kind: 'none' } } };
      },
    });
    const up = await startTestApp(remotePds(`${upstream.url}/personal-demographics/FHIR/R4`));
    try {
      const ready = await adminGet(up.admin!.port, '/readyz');
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.text).checks.pds).toEqual({ ok: true, reason: `PDS FHIR API: no call made yet; 127.0.0.1:${upstream.port} reachable` });
    } finally {
      await up.stop();
    }
    const down = await startTestApp(remotePds(`http://127.0.0.1:${await closedPort()}/FHIR/R4`));
    try {
      const ready = await adminGet(down.admin!.port, '/readyz');
      expect(ready.status).toBe(503);
      const report = JSON.parse(ready.text);
      expect(report.checks.pds.ok).toBe(false);
      expect(report.checks.pds.reason).toMatch(/unreachable \(ECONNREFUSED\)/);
      expect(report.checks.upstream.ok).toBe(true);
      expect((await adminGet(down.admin!.port, '/healthz')).status).toBe(200);
    } finally {
      await down.stop();
    }
  });

  it('answers /readyz 503 "draining" as soon as a drain starts, while an in-flight request still completes with 200', async () => {
    const app = await startTestApp(testConfig(pki, { upstreamUrl: upstream.url }));
    const inFlight = send(pki, app.gateway.port, {
      client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-delay-ms': '600' },
    });
    for (let i = 0; i < 100 && app.gateway.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(app.gateway.inFlight).toBe(1);
    const stopped = app.stop();
    const ready = await adminGet(app.admin!.port, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text).checks.listening).toEqual({ ok: false, reason: 'draining' });
    expect((await inFlight).status).toBe(200);
    await stopped;
  });
});
