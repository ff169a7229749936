// Upstream answers that go wrong, through the gateway, with both forwarding engines (issue 13, D15 D16): a reset
// after part of a response is a 502 while nothing has reached the client, else a clean close the client can
// detect; unsolicited 1xx before the answer are ignored; a garbage status line and oversized headers are 502s.
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { send, spineCodeOf, usePkiAndUpstream, useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { rawRequest } from '../helpers/raw-client.js';

const READ_PATH = '/STU3/Subscription/abc';

const shared = usePkiAndUpstream();
const { pki, upstream } = shared;

/** What the client saw of a response whose body was cut: head, body bytes, and how the connection ended. */
interface CutResponse {
  readonly head: string;
  readonly bodyBytes: number;
  readonly declaredLength: number;
  readonly ending: 'clean-close' | 'reset' | 'still-open';
}

function readCutResponse(port: number, request: Buffer): Promise<CutResponse> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.read('ca.pem'), cert: pki.read('gp-system.pem'), key: pki.read('gp-system-key.pem') });
    const chunks: Buffer[] = [];
    let ending: CutResponse['ending'] = 'clean-close';
    const timer = setTimeout(() => {
      ending = 'still-open';
      socket.destroy();
    }, 5000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') ending = 'reset';
      else if (chunks.length === 0) reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf('\r\n\r\n');
      const head = headEnd === -1 ? all.toString('latin1') : all.subarray(0, headEnd).toString('latin1');
      const declaredLength = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? NaN);
      resolve({ head, bodyBytes: headEnd === -1 ? 0 : all.length - headEnd - 4, declaredLength, ending });
    });
    socket.once('secureConnect', () => socket.write(request));
  });
}

describe.each(['undici', 'http-proxy'] as const)('upstream answers through the %s forwarder', (engine) => {
  const gateway = useTestGateway({ shared, patch: (raw) => { raw.upstream.engine = engine; }, resetUpstreamBeforeEach: true });
  const { app } = gateway;

  const read = (fault: string) => send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-fault': fault } });

  it('answers 502 BAD_GATEWAY when the upstream resets before answering', async () => {
    const res = await read('reset-before');
    expect(res.status).toBe(502);
    expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
  });

  it('answers 502 BAD_GATEWAY when the upstream resets after 1 KB of a response nothing of which reached the client (D15)', async () => {
    const res = await read('reset-during');
    expect(res.status).toBe(502);
    expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
    expect(app.gateway.inFlight).toBe(0);
  });

  it('ends the connection cleanly, short of the declared length, when the upstream resets a response already streaming (D15)', async () => {
    const cut = await readCutResponse(gateway.port, rawRequest('GET', READ_PATH, { ...nemsHeaders('gp-system', 'read'), 'x-test-fault': 'reset-streaming' }));
    expect(cut.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(cut.declaredLength).toBe(400 * 1024);
    expect(cut.bodyBytes).toBeLessThan(cut.declaredLength);
    expect(cut.ending).toBe('clean-close');
  });

  it('ignores an unsolicited 100 Continue before the answer (D16)', async () => {
    const res = await read('interim-100');
    expect(res.status).toBe(200);
    expect(res.text).toBe('<Subscription xmlns="http://hl7.org/fhir"><id value="echo"/></Subscription>');
    expect(res.headers['x-upstream-custom']).toBe('kept');
  });

  it('ignores 100, 102 and 103 interim answers before the answer, and keeps the upstream connection usable (D16)', async () => {
    const res = await read('interim-many');
    expect(res.status).toBe(200);
    expect(res.headers.link).toBeUndefined();
    const again = await send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(again.status).toBe(200);
  });

  it('answers 502 BAD_GATEWAY to a garbage status line', async () => {
    const res = await read('garbage-status');
    expect(res.status).toBe(502);
    expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
  });

  it('answers 502 BAD_GATEWAY to oversized response headers', async () => {
    const res = await read('oversized-headers');
    expect(res.status).toBe(502);
    expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
  });
});
