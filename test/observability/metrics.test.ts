import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { SPINE_CODES } from '../../src/fhir/errors.js';
import { RULE_IDS } from '../../src/rules/catalogue.js';
import {
  CRL_FETCH_LABELS, FIXED_CERTIFICATE_LABELS, IDENTITY_REJECTION_LABELS, OCSP_CACHE_LABELS, OCSP_STATUS_LABELS,
  OPERATION_LABELS, OUTCOME_LABELS, PDS_CACHE_LABELS, PDS_RESULT_LABELS, RELOAD_COMPONENT_LABELS, ROUTE_LABELS,
  STAGE_LABELS, STATUS_CLASS_LABELS, TLS_FAILURE_REASONS, TRUST_REFUSAL_LABELS, TRUST_SOURCE_LABELS,
  UPSTREAM_ERROR_LABELS,
} from '../../src/observability/labels.js';
import { createMetrics, metricsContentType, type GatewayMetrics } from '../../src/observability/metrics.js';
import { buildInfo } from '../../src/observability/build-info.js';
import { labelPairs, samples, valueOf } from './helpers/exposition.js';

const P = 'nems_gateway_';
const ASID = '200000000101';
const DAY = 86_400_000;

/** Calls every method with arbitrary (hostile) values, bypassing the types as a careless caller might. */
function feed(metrics: GatewayMetrics, value: string, n: number): void {
  const loose = metrics as unknown as Record<string, (...args: unknown[]) => unknown>;
  loose['requestCompleted']!(value, value, n, 0.01);
  loose['rejected']!(value, value);
  loose['upstreamCompleted']!(value, 0.01);
  loose['upstreamFailed']!(value, value, 0.01);
  (metrics.pdsObserver.lookup as (...args: unknown[]) => void)(value, value, 0.001);
  metrics.tlsHandshakeFailed(Object.assign(new Error(value), { code: value }), { authorizationError: value });
  loose['identityRejected']!(value);
  loose['setCertificateExpiry']!(value, new Date(0));
  metrics.setUpstreamClientCertificateExpiries(new Map([[value, new Date(0)], [ASID, new Date(0)]]));
  loose['reload']!(value, n % 2 === 0);
  loose['rateLimited']!(value);
  loose['ruleViolation']!(value, n % 2 === 0 ? 'enforce' : 'report');
  loose['trustMaterialRefused']!(value, value);
  loose['crlFetched']!(value);
  loose['ocspChecked']!(value, value);
  loose['configLoaded']!(value);
  loose['rateLimitStoreFallback']!(value);
  loose['rateLimitStoreAvailable']!(value);
}

const ALLOWED_LABEL_VALUES: Record<string, ReadonlySet<string>> = {
  route: new Set([...ROUTE_LABELS, 'other']),
  outcome: new Set([...OUTCOME_LABELS, 'other']),
  status_class: new Set([...STATUS_CLASS_LABELS, 'other']),
  code: new Set([...Object.keys(SPINE_CODES), 'other']),
  stage: new Set([...STAGE_LABELS, 'other']),
  kind: new Set([...UPSTREAM_ERROR_LABELS, 'other']),
  result: new Set([...PDS_RESULT_LABELS, ...CRL_FETCH_LABELS, 'success', 'failure', 'other']),
  cache: new Set([...PDS_CACHE_LABELS, ...OCSP_CACHE_LABELS, 'other']),
  reason: new Set([...TLS_FAILURE_REASONS, ...IDENTITY_REJECTION_LABELS, ...TRUST_REFUSAL_LABELS, 'other']),
  source: new Set([...TRUST_SOURCE_LABELS, 'other']),
  status: new Set([...OCSP_STATUS_LABELS, 'other']),
  certificate: new Set([...FIXED_CERTIFICATE_LABELS, 'upstream_client:default', `upstream_client:${ASID}`]),
  component: new Set([...RELOAD_COMPONENT_LABELS, 'other']),
  operation: new Set([...OPERATION_LABELS, 'other']),
  policy: new Set(['local', 'allow', 'deny', 'other']),
  rule: new Set([...RULE_IDS, 'other']),
  action: new Set(['enforce', 'report']),
  hash: new Set(['other']),
  // Fixed for the process: what the build is (package.json, build-info.json, process.version), never a caller's value.
  version: new Set([buildInfo().version]),
  revision: new Set([buildInfo().revision]),
  node_version: new Set([process.version]),
};

describe('gateway metrics: names, help and units', () => {
  it('registers every gateway metric under nems_gateway_ with HELP text, in its own registry', async () => {
    const metrics = createMetrics();
    const { body: text } = await metrics.render();
    const names = metrics.registry.getMetricsAsArray().map((m) => m.name);
    const own = names.filter((n) => n.startsWith(P));
    expect(own.sort()).toEqual([
      'build_info', 'config_info', 'rate_limit_store_available', 'rate_limit_store_fallbacks_total',
      'certificate_expiry_remaining_seconds', 'identity_rejections_total', 'pds_lookup_duration_seconds', 'pds_lookups_total',
      'rate_limited_total', 'rejections_total', 'rule_violations_total', 'reload_last_failed', 'reloads_total', 'request_duration_seconds',
      'requests_in_flight', 'requests_total', 'tls_connections_active', 'tls_connections_total',
      'tls_handshake_failures_total', 'upstream_duration_seconds', 'upstream_errors_total',
      'trust_material_refusals_total', 'crl_fetches_total', 'ocsp_checks_total',
    ].map((n) => P + n).sort());
    for (const name of names) expect(text, name).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
    expect(metricsContentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('includes the default process metrics but not the _total gauges promtool rejects', () => {
    const names = createMetrics().registry.getMetricsAsArray().map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']));
    expect(names).not.toContain('nodejs_active_handles_total');
    expect(createMetrics({ collectDefault: false }).registry.getMetricsAsArray().every((m) => m.name.startsWith(P))).toBe(true);
  });

  it('honours a custom prefix and a caller-supplied registry', () => {
    const registry = new Registry();
    createMetrics({ registry, prefix: 'test_gw_', collectDefault: false });
    expect(registry.getSingleMetric('test_gw_requests_total')).toBeDefined();
    expect(() => createMetrics({ prefix: 'bad prefix' })).toThrow(TypeError);
  });
});

describe('gateway metrics: recording', () => {
  it('counts and times a request by route, outcome and status class; an unmatched path is route="unmatched"', async () => {
    const m = createMetrics({ collectDefault: false });
    m.requestCompleted('publish', 'forwarded', 200, 0.004);
    m.requestCompleted(undefined, 'rejected', 404, 0.0002);
    m.requestCompleted('read', 'upstream_error', 504, 30);
    const r = m.registry;
    expect(await valueOf(r, `${P}requests_total`, { route: 'publish', outcome: 'forwarded', status_class: '2xx' })).toBe(1);
    expect(await valueOf(r, `${P}requests_total`, { route: 'unmatched', outcome: 'rejected', status_class: '4xx' })).toBe(1);
    expect(await valueOf(r, `${P}request_duration_seconds`, { route: 'read', outcome: 'upstream_error', status_class: '5xx' }, `${P}request_duration_seconds_sum`)).toBe(30);
    expect(await valueOf(r, `${P}request_duration_seconds`, { route: 'publish', outcome: 'forwarded', status_class: '2xx', le: '0.005' }, `${P}request_duration_seconds_bucket`)).toBe(1);
  });

  it('counts a rejection by Spine code and stage, and an unknown code as "other"', async () => {
    const m = createMetrics({ collectDefault: false });
    m.rejected('TOO_MANY_REQUESTS', 'rate-limit');
    m.rejected('BAD_GATEWAY', 'edge');
    m.rejected('9434765919', 'nhs-numbers');
    expect(await valueOf(m.registry, `${P}rejections_total`, { code: 'TOO_MANY_REQUESTS', stage: 'rate-limit' })).toBe(1);
    expect(await valueOf(m.registry, `${P}rejections_total`, { code: 'BAD_GATEWAY', stage: 'edge' })).toBe(1);
    expect(await valueOf(m.registry, `${P}rejections_total`, { code: 'other', stage: 'nhs-numbers' })).toBe(1);
  });

  it('times upstream exchanges and counts upstream failures by kind', async () => {
    const m = createMetrics({ collectDefault: false });
    m.upstreamCompleted('create', 0.02);
    m.upstreamFailed('timeout', 'create', 30);
    m.upstreamFailed('unreachable', 'publish');
    expect(await valueOf(m.registry, `${P}upstream_duration_seconds`, { route: 'create' }, `${P}upstream_duration_seconds_count`)).toBe(2);
    expect(await valueOf(m.registry, `${P}upstream_errors_total`, { kind: 'timeout', route: 'create' })).toBe(1);
    expect(await valueOf(m.registry, `${P}upstream_errors_total`, { kind: 'unreachable', route: 'publish' })).toBe(1);
  });

  it('implements PdsObserver: lookups by result and cache, duration by cache', async () => {
    const m = createMetrics({ collectDefault: false });
    m.pdsObserver.lookup('traced', 'miss', 0.12);
    m.pdsObserver.lookup('traced', 'hit', 0.00001);
    m.pdsObserver.lookup('unavailable', 'coalesced', 3);
    expect(await valueOf(m.registry, `${P}pds_lookups_total`, { result: 'traced', cache: 'hit' })).toBe(1);
    expect(await valueOf(m.registry, `${P}pds_lookups_total`, { result: 'unavailable', cache: 'coalesced' })).toBe(1);
    expect(await valueOf(m.registry, `${P}pds_lookup_duration_seconds`, { cache: 'miss' }, `${P}pds_lookup_duration_seconds_sum`)).toBeCloseTo(0.12);
  });

  it('ignores non-finite or negative durations instead of throwing on the request path', async () => {
    const m = createMetrics({ collectDefault: false });
    expect(() => m.requestCompleted('read', 'forwarded', 200, Number.NaN)).not.toThrow();
    expect(() => m.upstreamCompleted('read', -1)).not.toThrow();
    expect(() => m.pdsObserver.lookup('traced', 'miss', Number.POSITIVE_INFINITY)).not.toThrow();
    expect(await valueOf(m.registry, `${P}requests_total`, { route: 'read', outcome: 'forwarded', status_class: '2xx' })).toBe(1);
    expect(await samples(m.registry, `${P}upstream_duration_seconds`)).toEqual([]);
  });

  it('counts TLS handshake failures by classified reason and returns the reason', async () => {
    const m = createMetrics({ collectDefault: false });
    expect(m.tlsHandshakeFailed(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), { authorizationError: 'CERT_REVOKED' })).toBe('revoked');
    expect(m.tlsHandshakeFailed({ code: 'ERR_TLS_HANDSHAKE_TIMEOUT' })).toBe('timeout');
    expect(await valueOf(m.registry, `${P}tls_handshake_failures_total`, { reason: 'revoked' })).toBe(1);
    expect(await valueOf(m.registry, `${P}tls_handshake_failures_total`, { reason: 'timeout' })).toBe(1);
  });

  it('tracks open TLS connections and requests in flight; closing twice decrements once', async () => {
    const m = createMetrics({ collectDefault: false });
    const closeA = m.tlsConnectionOpened();
    const closeB = m.tlsConnectionOpened();
    const finish = m.requestStarted();
    expect(await valueOf(m.registry, `${P}tls_connections_active`)).toBe(2);
    expect(await valueOf(m.registry, `${P}requests_in_flight`)).toBe(1);
    closeA();
    closeA();
    finish();
    finish();
    expect(await valueOf(m.registry, `${P}tls_connections_active`)).toBe(1);
    expect(await valueOf(m.registry, `${P}tls_connections_total`)).toBe(2);
    expect(await valueOf(m.registry, `${P}requests_in_flight`)).toBe(0);
    closeB();
  });

  it('reports seconds left to each certificate at scrape time, negative once expired, removable', async () => {
    let now = Date.UTC(2030, 0, 1);
    const m = createMetrics({ collectDefault: false, now: () => now });
    m.setCertificateExpiry('server', new Date(now + 30 * DAY));
    m.setCertificateExpiry('crl_next_update', new Date(now + DAY));
    const name = `${P}certificate_expiry_remaining_seconds`;
    expect(await valueOf(m.registry, name, { certificate: 'server' })).toBe(30 * 86_400);
    now += 2 * DAY;
    expect(await valueOf(m.registry, name, { certificate: 'crl_next_update' })).toBe(-86_400);
    m.setCertificateExpiry('crl_next_update', undefined);
    expect(await valueOf(m.registry, name, { certificate: 'crl_next_update' })).toBeUndefined();
  });

  it('labels upstream client certificates only by registered-ASID shape or "default", replacing the whole set', async () => {
    const m = createMetrics({ collectDefault: false, now: () => 0 });
    m.setUpstreamClientCertificateExpiries(new Map([
      [ASID, new Date(1000)], ['default', new Date(2000)], ['evil.example.com', new Date(3000)], ['9434765919', new Date(4000)],
    ]));
    const name = `${P}certificate_expiry_remaining_seconds`;
    expect((await samples(m.registry, name)).map((s) => s.labels['certificate']).sort()).toEqual(['upstream_client:200000000101', 'upstream_client:default']);
    m.setUpstreamClientCertificateExpiries(new Map([['default', new Date(5000)]]));
    expect((await samples(m.registry, name)).map((s) => [s.labels['certificate'], s.value])).toEqual([['upstream_client:default', 5]]);
  });

  it('counts reloads by component and result and flags the latest failure until a success', async () => {
    const m = createMetrics({ collectDefault: false });
    m.reload('registry', false);
    expect(await valueOf(m.registry, `${P}reload_last_failed`, { component: 'registry' })).toBe(1);
    m.reload('registry', true);
    m.reload('certificate', true);
    expect(await valueOf(m.registry, `${P}reload_last_failed`, { component: 'registry' })).toBe(0);
    expect(await valueOf(m.registry, `${P}reloads_total`, { component: 'registry', result: 'failure' })).toBe(1);
    expect(await valueOf(m.registry, `${P}reloads_total`, { component: 'certificate', result: 'success' })).toBe(1);
  });

  it('accepts the reload component names tls and pds, counted as certificate and pds-data', async () => {
    const m = createMetrics({ collectDefault: false });
    m.reload('tls', true);
    m.reload('pds', false);
    expect(await valueOf(m.registry, `${P}reloads_total`, { component: 'certificate', result: 'success' })).toBe(1);
    expect(await valueOf(m.registry, `${P}reload_last_failed`, { component: 'pds-data' })).toBe(1);
  });

  it('renders the exposition with its Content-Type', async () => {
    const m = createMetrics({ collectDefault: false });
    m.rateLimited('read');
    const { contentType, body } = await m.render();
    expect(contentType).toBe(metricsContentType);
    expect(body).toContain(`${P}rate_limited_total{operation="read"} 1`);
  });

  it('counts refused trust material, CRL distribution point fetches and OCSP statuses', async () => {
    const m = createMetrics({ collectDefault: false });
    m.trustMaterialRefused('reload', 'crl-expired');
    m.trustMaterialRefused('distribution-point', 'crl-older');
    m.crlFetched('unchanged');
    m.ocspChecked('revoked', 'hit');
    expect(await valueOf(m.registry, `${P}trust_material_refusals_total`, { source: 'reload', reason: 'crl-expired' })).toBe(1);
    expect(await valueOf(m.registry, `${P}trust_material_refusals_total`, { source: 'distribution-point', reason: 'crl-older' })).toBe(1);
    expect(await valueOf(m.registry, `${P}crl_fetches_total`, { result: 'unchanged' })).toBe(1);
    expect(await valueOf(m.registry, `${P}ocsp_checks_total`, { status: 'revoked', cache: 'hit' })).toBe(1);
  });

  it('counts rate-limited requests and identity rejections', async () => {
    const m = createMetrics({ collectDefault: false });
    m.rateLimited('publish');
    m.identityRejected('unregistered-fqdn');
    expect(await valueOf(m.registry, `${P}rate_limited_total`, { operation: 'publish' })).toBe(1);
    expect(await valueOf(m.registry, `${P}identity_rejections_total`, { reason: 'unregistered-fqdn' })).toBe(1);
  });
});

describe('gateway metrics: no unbounded label values', () => {
  it('maps NHS numbers, JWTs, FQDNs and arbitrary strings to allow-listed values in every label', async () => {
    const m = createMetrics({ collectDefault: false });
    const hostile = [
      '9434765919', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'attacker.example.com', 'upstream_client:9434765919',
      '__proto__', 'constructor', 'A'.repeat(10_000), 'route="x"', '',
    ];
    hostile.forEach((value, i) => feed(m, value, i * 97));
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), fc.integer(), (value, n) => {
        feed(m, value, n);
      }),
      { numRuns: 300 },
    );
    const pairs = labelPairs((await m.render()).body);
    expect(pairs.length).toBeGreaterThan(20);
    for (const [label, value] of pairs) {
      if (label === 'le') continue;
      expect(ALLOWED_LABEL_VALUES[label], `label ${label}`).toBeDefined();
      expect(ALLOWED_LABEL_VALUES[label]!.has(value), `${label}="${value.slice(0, 40)}"`).toBe(true);
    }
  });
});
