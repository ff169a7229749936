// Per-ASID rate limits end to end (issue 6 point 6): a token bucket per (ASID, operation), answered with
// 429 TOO_MANY_REQUESTS and the Spine Security Proxy's X-Rate-Limit-* headers, counted in metrics, nothing
// forwarded. The gateway's clock is injected so the boundaries are exact.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { createPki, send, spineCodeOf, startCountingUpstream, startTestApp, testConfig, type CountingUpstream, type Pki } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { EXPLICIT_SUBSCRIPTION_XML } from '../helpers/bodies.js';
import { adminGet, metricSum } from '../helpers/ops-admin.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const GP_SYSTEM_ASID = '200000000101';

let pki: Pki;
let upstream: CountingUpstream;
let app: RunningApp;
let clock = Date.now();

beforeAll(async () => {
  pki = createPki();
  upstream = await startCountingUpstream();
  app = await startTestApp(
    testConfig(pki, {
      upstreamUrl: upstream.url,
      patch: (raw) => {
        raw.rateLimits = {
          enabled: true,
          default: { ratePerSecond: 100, burst: 100 },
          perAsid: {
            // gp-system: 3 reads in a burst, then one every 2 s.
            [GP_SYSTEM_ASID]: { read: { ratePerSecond: 0.5, burst: 3 } },
            // A per-endpoint rule (keyed by FQDN) for child-health, whose ASID has none of its own.
            'child-health.example.nhs.uk': { default: { ratePerSecond: 1, burst: 2 } },
          },
        };
      },
    }),
    { now: () => clock },
  );
});
afterAll(async () => {
  await app?.stop();
  await upstream?.stop();
  pki?.cleanup();
});
beforeEach(async () => {
  await upstream.reset();
});

const read = (client: 'gp-system' | 'child-health' = 'gp-system') =>
  send(pki, app.gateway.port, { client, path: READ_PATH, headers: nemsHeaders(client, 'read', { now: clock }) });

describe('per-ASID token bucket', () => {
  it('passes the burst of 3 reads, answers the 4th 429 TOO_MANY_REQUESTS with X-Rate-Limit-* and Retry-After, forwards nothing for it', async () => {
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(200);
    expect((await upstream.stats()).count).toBe(3);

    const limited = await read();
    expect(limited.status).toBe(429);
    expect(spineCodeOf(limited.text)).toBe('TOO_MANY_REQUESTS');
    expect(limited.headers['x-rate-limit-limit']).toBe('3');
    expect(limited.headers['x-rate-limit-remaining']).toBe('0');
    // One token every 2 s, none left: the next one is 2 s away.
    expect(limited.headers['x-rate-limit-reset']).toBe('2');
    expect(limited.headers['retry-after']).toBe('2');
    expect((await upstream.stats()).count).toBe(3);
  });

  it('refills at the configured rate: 1.9 s later still 429, at 2 s exactly one more passes', async () => {
    clock += 1900;
    const early = await read();
    expect(early.status).toBe(429);
    expect(early.headers['x-rate-limit-reset']).toBe('1');
    clock += 100;
    expect((await read()).status).toBe(200);
    expect((await read()).status).toBe(429);
    expect((await upstream.stats()).count).toBe(1);
  });

  it('keeps a separate bucket per operation: gp-system can still create while its reads are limited', async () => {
    const created = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body: EXPLICIT_SUBSCRIPTION_XML,
      headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml', now: clock }),
    });
    expect(created.status).toBe(201);
    expect((await read()).status).toBe(429);
  });

  it('applies a per-endpoint (FQDN) rule to an ASID without its own: child-health gets 2, then 429 with X-Rate-Limit-Limit 2', async () => {
    expect((await read('child-health')).status).toBe(200);
    expect((await read('child-health')).status).toBe(200);
    const limited = await read('child-health');
    expect(limited.status).toBe(429);
    expect(limited.headers['x-rate-limit-limit']).toBe('2');
    expect(limited.headers['x-rate-limit-reset']).toBe('1');
    expect((await upstream.stats()).count).toBe(2);
  });

  it('counts every 429 in metrics: rate_limited_total by operation, rejections by code and stage, requests by outcome', async () => {
    const text = (await adminGet(app.admin!.port, '/metrics')).text;
    // 1 (burst) + 2 (refill) + 1 (create test) gp-system reads, 1 child-health read.
    expect(metricSum(text, 'nems_gateway_rate_limited_total', { operation: 'read' })).toBe(5);
    expect(metricSum(text, 'nems_gateway_rejections_total', { code: 'TOO_MANY_REQUESTS', stage: 'rate-limit' })).toBe(5);
    expect(metricSum(text, 'nems_gateway_requests_total', { route: 'read', outcome: 'rejected', status_class: '4xx' })).toBe(5);
    expect(metricSum(text, 'nems_gateway_requests_total', { route: 'read', outcome: 'forwarded' })).toBe(6);
  });
});
