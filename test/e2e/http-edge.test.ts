// The HTTP edge against clients that write raw bytes (issue 13, D2 D18 D3 D5 D6 D9): pipelined requests after a
// rejection, stray bytes after `Connection: close`, HTTP/1.0 pipelining, headers named in Connection, identity
// header spellings, request-line versions and Host. Real TLS, real upstream process that counts what it receives.
import { describe, expect, it } from 'vitest';
import { useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { EXPLICIT_SUBSCRIPTION_XML, VACCINATION_PUBLISH_XML } from '../helpers/bodies.js';
import { rawExchange, rawRequest } from '../helpers/raw-client.js';

const READ_PATH = '/STU3/Subscription/abc';
const CREATE_PATH = '/STU3/Subscription';

const gateway = useTestGateway({ resetUpstreamBeforeEach: true });
const { pki, upstream, app } = gateway;

const validRead = (extra: Record<string, string> = {}) => rawRequest('GET', READ_PATH, { ...nemsHeaders('gp-system', 'read'), ...extra });
const rejectedRead = () => {
  const { fromASID: _dropped, ...headers } = nemsHeaders('gp-system', 'read');
  return rawRequest('GET', READ_PATH, headers);
};
const validCreate = (extra: Record<string, string> = {}) =>
  rawRequest('POST', CREATE_PATH, { ...nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), ...extra }, EXPLICIT_SUBSCRIPTION_XML);

async function inFlightGauge(): Promise<number> {
  const text = (await app.metrics.render()).body;
  const m = /^nems_gateway_requests_in_flight (\d+)/m.exec(text);
  if (!m) throw new Error('nems_gateway_requests_in_flight missing from /metrics');
  return Number(m[1]);
}

/** Both in-flight counters reach zero (event-driven on the counters; bounded). */
async function expectNothingInFlight(): Promise<void> {
  for (let i = 0; i < 100 && (app.gateway.inFlight !== 0 || (await inFlightGauge()) !== 0); i++) await new Promise((r) => setTimeout(r, 20));
  expect(app.gateway.inFlight).toBe(0);
  expect(await inFlightGauge()).toBe(0);
}

describe('one request per rejection (D2, D18)', () => {
  it('answers a rejected request with Connection: close and never executes a request pipelined behind it', async () => {
    const exchange = await rawExchange(pki, gateway.port, [Buffer.concat([rejectedRead(), validRead(), validCreate()])]);
    expect(exchange.responses).toHaveLength(1);
    expect(exchange.responses[0]!.status).toBe(400);
    expect(exchange.responses[0]!.headers.connection).toBe('close');
    expect(exchange.closedByGateway).toBe(true);
    expect((await upstream.stats()).count).toBe(0);
    await expectNothingInFlight();
  });

  it('ignores a request that arrives after the rejection in a later write on the same connection', async () => {
    const exchange = await rawExchange(pki, gateway.port, [rejectedRead(), validRead()], { gapMs: 1 });
    expect(exchange.responses.map((r) => r.status)).toEqual([400]);
    expect((await upstream.stats()).count).toBe(0);
    await expectNothingInFlight();
  });

  it('leaves nothing in flight after many rejected-then-pipelined exchanges', async () => {
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 10 }, () => rawExchange(pki, gateway.port, [Buffer.concat([rejectedRead(), validCreate(), validRead()])])));
    }
    expect((await upstream.stats()).count).toBe(0);
    await expectNothingInFlight();
  });

  it('still answers pipelined valid requests in order on a keep-alive connection', async () => {
    const exchange = await rawExchange(pki, gateway.port, [Buffer.concat([validRead({ 'X-Request-ID': 'one' }), validRead({ 'X-Request-ID': 'two' }), validRead({ 'X-Request-ID': 'three', Connection: 'close' })])]);
    expect(exchange.responses.map((r) => [r.status, r.headers['x-request-id']])).toEqual([[200, 'one'], [200, 'two'], [200, 'three']]);
    expect((await upstream.stats()).received.map((r) => r.headers['x-request-id'])).toEqual(['one', 'two', 'three']);
    await expectNothingInFlight();
  });

  it('stops at the first rejection among pipelined requests: earlier ones answered, later ones never run', async () => {
    const exchange = await rawExchange(pki, gateway.port, [Buffer.concat([validRead({ 'X-Request-ID': 'first' }), rejectedRead(), validRead({ 'X-Request-ID': 'after' })])]);
    expect(exchange.responses.map((r) => r.status)).toEqual([200, 400]);
    expect(exchange.responses[1]!.headers.connection).toBe('close');
    expect((await upstream.stats()).received.map((r) => r.headers['x-request-id'])).toEqual(['first']);
    await expectNothingInFlight();
  });
});

describe('requests that end their connection (D3)', () => {
  it('answers a valid publish sent with Connection: close and one stray byte with the upstream answer, once', async () => {
    const publish = rawRequest('POST', '/STU3/Events/1/$process-message', {
      ...nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml' }), Connection: 'close',
    }, VACCINATION_PUBLISH_XML);
    const exchange = await rawExchange(pki, gateway.port, [Buffer.concat([publish, Buffer.from('X')])], { client: 'child-health' });
    expect(exchange.responses.map((r) => r.status)).toEqual([201]);
    expect(exchange.closedByGateway).toBe(true);
    const stats = await upstream.stats();
    expect(stats.received.map((r) => [r.url, r.complete])).toEqual([['/STU3/Events/1/$process-message', true]]);
    await expectNothingInFlight();
  });

  it('answers a valid create sent with Connection: close and one stray byte with the upstream answer, not a raw 400', async () => {
    const exchange = await rawExchange(pki, gateway.port, [Buffer.concat([validCreate({ Connection: 'close' }), Buffer.from('X')])]);
    expect(exchange.responses.map((r) => r.status)).toEqual([201]);
    expect(exchange.closedByGateway).toBe(true);
    expect((await upstream.stats()).count).toBe(1);
    await expectNothingInFlight();
  });

  it('answers an HTTP/1.0 request and never executes the request pipelined after it', async () => {
    const first = rawRequest('GET', READ_PATH, { ...nemsHeaders('gp-system', 'read'), 'X-Request-ID': 'http10' }, undefined, 'HTTP/1.0');
    const exchange = await rawExchange(pki, gateway.port, [Buffer.concat([first, validCreate({ 'X-Request-ID': 'smuggled' })])]);
    expect(exchange.responses.map((r) => r.status)).toEqual([200]);
    expect(exchange.responses[0]!.headers['x-request-id']).toBe('http10');
    expect(exchange.closedByGateway).toBe(true);
    expect((await upstream.stats()).received.map((r) => r.headers['x-request-id'])).toEqual(['http10']);
    await expectNothingInFlight();
  });

  it('answers a valid request followed by garbage with its own answer and executes nothing after it', async () => {
    const exchange = await rawExchange(pki, gateway.port, [Buffer.concat([validRead({ 'X-Request-ID': 'real' }), Buffer.from('NOT HTTP AT ALL\r\n\r\n'), validCreate()])]);
    expect(exchange.responses.map((r) => r.status)).toEqual([200]);
    expect(exchange.responses[0]!.headers['x-request-id']).toBe('real');
    expect(exchange.closedByGateway).toBe(true);
    expect((await upstream.stats()).count).toBe(1);
    await expectNothingInFlight();
  });
});

describe('headers named in Connection (D5)', () => {
  it.each(['fromASID', 'toASID', 'InteractionID', 'Authorization', 'Content-Type'])('rejects a create whose Connection names %s (400) and forwards nothing', async (name) => {
    const exchange = await rawExchange(pki, gateway.port, [validCreate({ Connection: `keep-alive, ${name}` })]);
    expect(exchange.responses.map((r) => r.status)).toEqual([400]);
    expect(exchange.responses[0]!.body).toContain('BAD_REQUEST');
    expect(exchange.responses[0]!.body).toContain(name);
    expect((await upstream.stats()).count).toBe(0);
  });

  it('still drops an unchecked header the client names in Connection, and forwards the request', async () => {
    const exchange = await rawExchange(pki, gateway.port, [validRead({ Connection: 'close, X-Hop-Only', 'X-Hop-Only': 'x' })]);
    expect(exchange.responses.map((r) => r.status)).toEqual([200]);
    const forwarded = (await upstream.stats()).received[0]!.headers;
    expect(forwarded['x-hop-only']).toBeUndefined();
    expect(forwarded.authorization).toMatch(/^Bearer /);
  });
});

describe('gateway-owned identity headers in any spelling (D6)', () => {
  const spoofed: Array<[string, string]> = [
    ['X_Forwarded_Client_Cert', 'Hash=forged'],
    ['x-forwarded_client-cert', 'Hash=forged'],
    ['X-SSL-Client-Verify', 'SUCCESS'],
    ['X-SSL-Client-S-DN', 'CN=child-health.example.nhs.uk'],
    ['X-Client-DN', 'CN=child-health.example.nhs.uk'],
    ['X-Client-Verify', 'SUCCESS'],
    ['True-Client-IP', '10.9.9.9'],
    ['CF-Connecting-IP', '10.9.9.9'],
    ['X-Client-IP', '10.9.9.9'],
    ['X-Cluster-Client-IP', '10.9.9.9'],
    ['X-ARR-ClientCert', 'MIIB'],
    ['SSL_CLIENT_CERT', 'MIIB'],
    ['X-Envoy-External-Address', '10.9.9.9'],
    ['Client-Cert', ':MIIB:'],
    ['X_Real_IP', '10.9.9.9'],
  ];

  it('drops every spelling and variant before forwarding', async () => {
    const exchange = await rawExchange(pki, gateway.port, [validRead(Object.fromEntries(spoofed))], { stopAfterResponses: 1 });
    expect(exchange.responses.map((r) => r.status)).toEqual([200]);
    const received = (await upstream.stats()).received[0]!;
    const names = received.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const [name] of spoofed) {
      const normalised = name.toLowerCase().replace(/_/g, '-');
      expect(names.filter((n) => n.replace(/_/g, '-') === normalised && n !== 'x-forwarded-client-cert')).toEqual([]);
    }
    expect(received.headers['x-forwarded-client-cert']).toMatch(/^Hash=[0-9a-f]{64};DNS=gp-system\.example\.nhs\.uk$/);
    expect(received.rawHeaders.filter((v) => v.includes('forged') || v.includes('10.9.9.9') || v.includes('MIIB') || v === 'SUCCESS')).toEqual([]);
  });
});

describe('request line and Host (D9)', () => {
  it.each(['HTTP/2.0', 'HTTP/1.2', 'HTTP/3.0'])('refuses a %s request line and forwards nothing', async (version) => {
    const exchange = await rawExchange(pki, gateway.port, [rawRequest('GET', READ_PATH, nemsHeaders('gp-system', 'read'), undefined, version)]);
    expect(exchange.responses).toHaveLength(1);
    expect(exchange.responses[0]!.status).toBeGreaterThanOrEqual(400);
    expect(exchange.closedByGateway).toBe(true);
    expect((await upstream.stats()).count).toBe(0);
  });

  it('refuses two Host headers (400) and forwards nothing', async () => {
    const headers: Array<[string, string]> = [['Host', 'localhost'], ['Host', 'evil.example'], ...Object.entries(nemsHeaders('gp-system', 'read'))];
    const exchange = await rawExchange(pki, gateway.port, [rawRequest('GET', READ_PATH, headers)]);
    expect(exchange.responses.map((r) => r.status)).toEqual([400]);
    expect((await upstream.stats()).count).toBe(0);
  });

  it('refuses an HTTP/1.1 request without Host (400) with an OperationOutcome', async () => {
    const head = `GET ${READ_PATH} HTTP/1.1\r\n${Object.entries(nemsHeaders('gp-system', 'read')).map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
    const exchange = await rawExchange(pki, gateway.port, [head]);
    expect(exchange.responses.map((r) => r.status)).toEqual([400]);
    expect(exchange.responses[0]!.body).toContain('BAD_REQUEST');
    expect((await upstream.stats()).count).toBe(0);
  });

  it('accepts HTTP/1.0 with one Host and HTTP/1.1 with one Host', async () => {
    const ten = await rawExchange(pki, gateway.port, [rawRequest('GET', READ_PATH, nemsHeaders('gp-system', 'read'), undefined, 'HTTP/1.0')]);
    expect(ten.responses.map((r) => r.status)).toEqual([200]);
    const eleven = await rawExchange(pki, gateway.port, [validRead({ Connection: 'close' })]);
    expect(eleven.responses.map((r) => r.status)).toEqual([200]);
  });
});
