import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { AsidRegistration, Endpoint } from '../../src/identity/types.js';
import { edgeObserverFor, recordCertificateExpiry } from '../../src/observability/edge-metrics.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { findExternalTool } from './helpers/external-tool.js';
import { samples, valueOf } from './helpers/exposition.js';
import { createTestPki, type TestPki } from './helpers/openssl-pki.js';

const P = 'nems_gateway_';
const openssl = findExternalTool('openssl', 'apt-get install openssl');

describe('edgeObserverFor: edge events into gateway metrics', () => {
  it('records a forwarded request with its upstream time, and a rejection with its Spine code and stage', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const observer = edgeObserverFor(metrics);
    observer.request({ route: 'create', outcome: 'forwarded', status: 201, seconds: 0.01, upstreamSeconds: 0.008 });
    observer.request({ route: 'unmatched', outcome: 'rejected', status: 404, seconds: 0.0001, rejection: { code: 'NO_RECORD_FOUND', stage: 'route' } });
    observer.request({ route: 'publish', outcome: 'upstream_error', status: 504, seconds: 30, upstreamSeconds: 30, upstreamFailure: 'timeout' });
    const r = metrics.registry;
    expect(await valueOf(r, `${P}requests_total`, { route: 'create', outcome: 'forwarded', status_class: '2xx' })).toBe(1);
    expect(await valueOf(r, `${P}requests_total`, { route: 'unmatched', outcome: 'rejected', status_class: '4xx' })).toBe(1);
    expect(await valueOf(r, `${P}rejections_total`, { code: 'NO_RECORD_FOUND', stage: 'route' })).toBe(1);
    expect(await valueOf(r, `${P}upstream_errors_total`, { kind: 'timeout', route: 'publish' })).toBe(1);
    expect(await valueOf(r, `${P}upstream_duration_seconds`, { route: 'create' }, `${P}upstream_duration_seconds_count`)).toBe(1);
  });

  it('keeps the open-connection gauge balanced and classifies handshake failures using the socket', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const observer = edgeObserverFor(metrics);
    observer.connectionOpened();
    observer.connectionOpened();
    observer.connectionClosed();
    observer.connectionClosed();
    observer.connectionClosed(); // an unmatched close never drives the gauge negative
    expect(await valueOf(metrics.registry, `${P}tls_connections_active`)).toBe(0);
    observer.tlsHandshakeFailed(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), { authorizationError: 'CERT_HAS_EXPIRED' });
    expect(await valueOf(metrics.registry, `${P}tls_handshake_failures_total`, { reason: 'expired' })).toBe(1);
  });
});

describe.skipIf(openssl.skip)('recordCertificateExpiry: the expiry gauge from configured and registered files', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = createTestPki(openssl.require());
  });
  afterAll(() => pki?.remove());

  function configWith(files: { crl?: string; upstreamCert?: string }): Config {
    return configSchema.parse({
      server: { tls: { cert: pki.file('server.pem'), key: pki.file('server.key'), ca: pki.file('ca.pem'), ...(files.crl ? { crl: files.crl } : {}) } },
      registry: { path: 'unused' },
      upstream: { kind: 'http', url: 'https://nems.example.nhs.uk', ...(files.upstreamCert ? { tls: { cert: files.upstreamCert, key: pki.file('good.key') } } : {}) },
    });
  }

  const registration = (asid: string, cert?: string): AsidRegistration => ({
    asid, odsCodes: [], interactions: [], subscriptionTypes: [], mailboxes: [],
    ...(cert ? { upstreamClientCertificate: { cert, key: 'unused' } } : {}),
  });

  it('sets server, CA, CRL nextUpdate, default and per-ASID upstream client certificate expiry', async () => {
    const now = Date.now();
    const metrics = createMetrics({ collectDefault: false, now: () => now });
    const endpoint: Endpoint = {
      fqdn: 'gp.example.nhs.uk', fingerprints: [],
      asids: new Map([['200000000101', registration('200000000101', pki.file('expired.pem'))], ['200000000102', registration('200000000102')]]),
    };
    recordCertificateExpiry(metrics, configWith({ crl: pki.file('crl.pem'), upstreamCert: pki.file('good.pem') }), { endpoints: () => [endpoint] });
    const name = `${P}certificate_expiry_remaining_seconds`;
    const byLabel = new Map((await samples(metrics.registry, name)).map((s) => [s.labels['certificate'], s.value]));
    expect([...byLabel.keys()].sort()).toEqual(['ca', 'crl_next_update', 'server', 'upstream_client:200000000101', 'upstream_client:default']);
    expect(byLabel.get('server')).toBeGreaterThan(9 * 86_400);
    expect(byLabel.get('server')).toBeLessThanOrEqual(10 * 86_400);
    expect(byLabel.get('crl_next_update')).toBeGreaterThan(29 * 86_400);
    expect(byLabel.get('upstream_client:200000000101')).toBeLessThan(0);
  });

  it('clears the label and warns (without throwing) when a file is missing or is not a certificate', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const warnings: Array<Record<string, unknown>> = [];
    recordCertificateExpiry(metrics, configWith({ crl: pki.file('crl.pem') }), { endpoints: () => [] });
    recordCertificateExpiry(
      metrics,
      configWith({ crl: pki.file('server.key'), upstreamCert: pki.file('does-not-exist.pem') }),
      { endpoints: () => [] },
      { warn: (obj: unknown) => void warnings.push(obj as Record<string, unknown>) } as never,
    );
    const labels = (await samples(metrics.registry, `${P}certificate_expiry_remaining_seconds`)).map((s) => s.labels['certificate']).sort();
    expect(labels).toEqual(['ca', 'server']);
    expect(warnings.map((w) => [w['certificate'], w['problem']])).toEqual([['crl_next_update', 'no-crl'], ['upstream_client:default', 'ENOENT']]);
  });
});
