// The mTLS edge end to end: real certificates made in this run, a real upstream process that counts what it
// receives, both forwarding engines. Each client certificate gets its expected outcome; nothing rejected reaches
// the upstream; bodies and responses pass byte for byte.
import { connect as tlsConnect } from 'node:tls';
import { Agent } from 'node:https';
import { describe, expect, it } from 'vitest';
import { send, spineCodeOf, startTestApp, testConfig, usePkiAndUpstream, useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { EXPLICIT_SUBSCRIPTION_XML } from '../helpers/bodies.js';

const READ_PATH = '/STU3/Subscription/abc';

const shared = usePkiAndUpstream();
const { pki, upstream } = shared;

describe.each(['undici', 'http-proxy'] as const)('mTLS edge with the %s forwarder', (engine) => {
  const gateway = useTestGateway({ shared, patch: (raw) => { raw.upstream.engine = engine; }, resetUpstreamBeforeEach: true });
  const { app } = gateway;

  it('forwards a correct read from gp-system to the upstream and relays its response unchanged', async () => {
    const res = await send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'X-Request-ID': 'trace-123' } });
    expect(res.status).toBe(200);
    expect(res.text).toBe('<Subscription xmlns="http://hl7.org/fhir"><id value="echo"/></Subscription>');
    expect(res.headers['x-request-id']).toBe('trace-123');
    expect(res.headers['x-upstream-seen-request-id']).toBe('trace-123');
    expect(res.headers['x-upstream-custom']).toBe('kept');
    // Hop-by-hop headers and those named in Connection never cross the gateway.
    expect(res.headers['x-upstream-hop']).toBeUndefined();
    expect(res.headers['keep-alive']).toBeUndefined();
    const stats = await upstream.stats();
    expect(stats.count).toBe(1);
    expect(stats.received[0]!.url).toBe(READ_PATH);
    expect(stats.received[0]!.headers.fromasid).toBe('200000000101');
  });

  it('generates a UUID X-Request-ID when the client sends none and echoes it', async () => {
    const res = await send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(res.headers['x-upstream-seen-request-id']).toBe(res.headers['x-request-id']);
  });

  it('passes a subscription body byte for byte and returns the upstream body byte for byte', async () => {
    const body = Buffer.from(EXPLICIT_SUBSCRIPTION_XML);
    const res = await send(pki, gateway.port, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body,
      headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
    });
    expect(res.status).toBe(201);
    expect(res.body.equals(body)).toBe(true);
    const stats = await upstream.stats();
    expect(stats.count).toBe(1);
    expect(Buffer.from(stats.received[0]!.body, 'base64').equals(body)).toBe(true);
  });

  it('rejects a CA-verified certificate whose FQDN is not registered with 403 ACCESS_DENIED and forwards nothing', async () => {
    const res = await send(pki, gateway.port, { client: 'unregistered', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(res.status).toBe(403);
    expect(spineCodeOf(res.text)).toBe('ACCESS_DENIED');
    expect(res.headers['content-type']).toBe('application/xml+fhir;charset=utf-8');
    expect(res.text).toContain('https://fhir.nhs.uk/STU3/StructureDefinition/Spine-OperationOutcome-1');
    expect(res.text).toContain(`<id value="${res.headers['x-request-id']}"/>`);
    expect((await upstream.stats()).count).toBe(0);
  });

  it.each(['untrusted', 'expired', 'revoked', 'none'] as const)('fails the TLS handshake for the %s client certificate', async (client) => {
    await expect(send(pki, gateway.port, { client, path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).rejects.toThrow();
    expect((await upstream.stats()).count).toBe(0);
  });

  it('refuses TLS 1.1', async () => {
    const attempt = new Promise<void>((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1', port: gateway.port, ca: pki.read('ca.pem'), cert: pki.read('gp-system.pem'), key: pki.read('gp-system-key.pem'),
        servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1',
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    });
    await expect(attempt).rejects.toThrow();
  });

  it('strips inbound identity headers and Connection-named headers, then adds its own', async () => {
    const res = await send(pki, gateway.port, {
      client: 'gp-system', path: READ_PATH,
      headers: {
        ...nemsHeaders('gp-system', 'read'),
        'X-Forwarded-Client-Cert': 'Hash=forged;DNS=child-health.example.nhs.uk',
        Forwarded: 'for=10.0.0.1',
        'X-Forwarded-For': '10.0.0.1',
        Connection: 'keep-alive, x-drop-me',
        'X-Drop-Me': 'secret',
        'X-Client-Header': 'stays',
      },
    });
    expect(res.status).toBe(200);
    const forwarded = (await upstream.stats()).received[0]!.headers;
    expect(forwarded['x-forwarded-client-cert']).toMatch(/^Hash=[0-9a-f]{64};DNS=gp-system\.example\.nhs\.uk$/);
    expect(forwarded.forwarded).toBe('for=127.0.0.1;proto=https');
    expect(forwarded['x-forwarded-for']).toBeUndefined();
    expect(forwarded['x-drop-me']).toBeUndefined();
    expect(forwarded['x-client-header']).toBe('stays');
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a body over the route limit and forwards nothing', async () => {
    const res = await send(pki, gateway.port, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body: Buffer.alloc(300 * 1024, 0x20),
      headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
    });
    expect(res.status).toBe(413);
    expect(spineCodeOf(res.text)).toBe('PAYLOAD_TOO_LARGE');
    expect((await upstream.stats()).count).toBe(0);
  });

  it('answers 413 for request headers over the configured size', async () => {
    const res = await send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'X-Big': 'a'.repeat(20_000) } });
    expect(res.status).toBe(413);
    expect((await upstream.stats()).count).toBe(0);
  });

  it('answers 400 to malformed HTTP', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: gateway.port, ca: pki.read('ca.pem'), cert: pki.read('gp-system.pem'), key: pki.read('gp-system-key.pem'), servername: 'localhost' });
      let data = '';
      socket.on('data', (c: Buffer) => (data += c.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
      socket.once('secureConnect', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toContain('BAD_REQUEST');
  });

  it('applies the same checks and headers to Expect: 100-continue requests', async () => {
    const body = Buffer.from(EXPLICIT_SUBSCRIPTION_XML);
    const ok = await send(pki, gateway.port, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body,
      headers: { ...nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), Expect: '100-continue', 'X-Forwarded-Client-Cert': 'forged' },
    });
    expect(ok.status).toBe(201);
    const stats = await upstream.stats();
    expect(stats.count).toBe(1);
    expect(stats.received[0]!.headers['x-forwarded-client-cert']).toMatch(/^Hash=[0-9a-f]{64};DNS=gp-system\.example\.nhs\.uk$/);
    expect(stats.received[0]!.headers.expect).toBeUndefined();
    expect(Buffer.from(stats.received[0]!.body, 'base64').equals(body)).toBe(true);

    const headers = nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' });
    const bad = await send(pki, gateway.port, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body,
      headers: { ...headers, Authorization: 'Bearer not-a-jwt', Expect: '100-continue' },
    });
    expect(bad.status).toBe(400);
    expect(spineCodeOf(bad.text)).toBe('MISSING_OR_INVALID_HEADER');
    expect((await upstream.stats()).count).toBe(1);
  });

  it('destroys the upstream request when the client goes away (no socket left behind)', async () => {
    const baseline = (await upstream.stats()).openSockets;
    const agent = new Agent({ keepAlive: false });
    const pending = send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-hang': '1' }, agent, timeoutMs: 300 });
    await expect(pending).rejects.toThrow();
    let open = Infinity;
    for (let i = 0; i < 50 && open > baseline; i++) {
      await new Promise((r) => setTimeout(r, 100));
      open = (await upstream.stats()).openSockets;
    }
    expect((await upstream.stats()).count).toBe(1);
    expect(open).toBeLessThanOrEqual(baseline);
  });

  it('answers 504 GATEWAY_TIMEOUT when the upstream does not answer in time', async () => {
    const res = await send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-delay-ms': '4000' } });
    expect(res.status).toBe(504);
    expect(spineCodeOf(res.text)).toBe('GATEWAY_TIMEOUT');
  });
});

describe('upstream unreachable', () => {
  it('answers 502 BAD_GATEWAY as an OperationOutcome', async () => {
    const app = await startTestApp(testConfig(pki, { upstreamUrl: 'http://127.0.0.1:9' }));
    try {
      const res = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
      expect(res.status).toBe(502);
      expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
      expect(res.text).not.toMatch(/ECONNREFUSED|at .*\.js/);
    } finally {
      await app.stop();
    }
  });
});

describe('slow clients', () => {
  it('cuts off a client that does not finish its request headers within server.limits.headersTimeoutMs (408)', async () => {
    const app = await startTestApp(testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => { raw.server.limits = { headersTimeoutMs: 500, requestTimeoutMs: 1000 }; } }));
    try {
      await upstream.reset();
      const started = Date.now();
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: app.gateway.port, ca: pki.read('ca.pem'), cert: pki.read('gp-system.pem'), key: pki.read('gp-system-key.pem'), servername: 'localhost' });
        let data = '';
        socket.on('data', (c: Buffer) => (data += c.toString()));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
        // Half a request line and one header, then nothing more.
        socket.once('secureConnect', () => socket.write('GET /STU3/Subscription/abc HTTP/1.1\r\nHost: localhost\r\n'));
      });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeLessThan(5000);
      expect(reply).toMatch(/^HTTP\/1\.1 408 /);
      expect((await upstream.stats()).count).toBe(0);
    } finally {
      await app.stop();
    }
  });
});
