// Issue 13 D13: the edge's TLS policy as a documented default. A scan found TLS 1.2 offering suites without
// forward secrecy and CBC suites, and RSA-1024 client certificates accepted. Now TLS 1.2 offers only ECDHE with
// AEAD ciphers (TLS 1.3 as OpenSSL has it), and a client key below RSA 2048 / EC P-256 gets 403 ACCESS_DENIED.
import { execFileSync } from 'node:child_process';
import { getCiphers, connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { EDGE_TLS12_CIPHERS } from '../../src/config/schema.js';
import { send, spineCodeOf, startTestApp, testConfig, type ClientName, useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { metricSum } from '../helpers/ops-admin.js';
import { createOpsPki } from '../helpers/ops-files.js';
import { findExternalTool } from '../observability/helpers/external-tool.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const GP_FQDN = 'gp-system.example.nhs.uk';
const openssl = findExternalTool('openssl', 'apt-get install openssl');

const { pki, upstream, app } = useTestGateway({
  makePki: () => {
    const pki = createOpsPki();
    pki.issueClient('gp-rsa1024', GP_FQDN, { keyBits: 1024 });
    pki.issueClient('gp-rsa3072', GP_FQDN, { keyBits: 3072 });
    return pki;
  },
});

/** One TLS handshake with the gp-system certificate; resolves with the negotiated cipher, or the failure. */
function tryHandshake(port: number, options: ConnectionOptions): Promise<{ ok: boolean; cipher?: string; protocol?: string | null }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1', port, servername: 'localhost', ca: pki.read('ca.pem'),
      cert: pki.read('gp-system.pem'), key: pki.read('gp-system-key.pem'), ...options,
    });
    const done = (result: { ok: boolean; cipher?: string; protocol?: string | null }) => {
      socket.destroy();
      resolve(result);
    };
    socket.once('secureConnect', () => done({ ok: true, cipher: socket.getCipher().name, protocol: socket.getProtocol() }));
    socket.once('error', () => done({ ok: false }));
    socket.setTimeout(5000, () => done({ ok: false }));
  });
}

describe('TLS versions and cipher suites (D13)', () => {
  it('TLS 1.2 accepts exactly the ECDHE + AEAD suites of the documented default, and nothing else OpenSSL knows', async () => {
    const accepted: string[] = [];
    // Every TLS 1.2 suite this OpenSSL knows, one per handshake, as a scanner would try them.
    for (const name of getCiphers().filter((c) => !c.startsWith('tls_')).map((c) => c.toUpperCase())) {
      const result = await tryHandshake(app.gateway.port, { maxVersion: 'TLSv1.2', ciphers: name });
      if (result.ok) accepted.push(result.cipher!);
    }
    // The server key is RSA, so the ECDSA suites of the list cannot be negotiated here.
    expect(accepted.sort()).toEqual(['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']);
    for (const suite of accepted) expect(EDGE_TLS12_CIPHERS.split(':')).toContain(suite);
  });

  it.each([
    ['static RSA with CBC (no forward secrecy)', 'AES128-SHA'],
    ['static RSA with GCM (no forward secrecy)', 'AES256-GCM-SHA384'],
    ['ECDHE with CBC', 'ECDHE-RSA-AES128-SHA256'],
    ['DHE with GCM (finite-field DH is not offered)', 'DHE-RSA-AES128-GCM-SHA256'],
  ])('refuses a TLS 1.2 client offering only %s', async (_what, ciphers) => {
    expect(await tryHandshake(app.gateway.port, { maxVersion: 'TLSv1.2', ciphers })).toEqual({ ok: false });
  });

  it('negotiates TLS 1.3 by default and refuses TLS 1.1', async () => {
    expect(await tryHandshake(app.gateway.port, {})).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
    expect(await tryHandshake(app.gateway.port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).toEqual({ ok: false });
  });
});

describe('client key sizes (D13)', () => {
  it('answers an RSA-1024 client certificate with 403 ACCESS_DENIED and closes the connection; RSA 2048 and 3072 pass', async () => {
    const weak = await send(pki, app.gateway.port, { client: 'gp-rsa1024' as ClientName, path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(weak.status).toBe(403);
    expect(spineCodeOf(weak.text)).toBe('ACCESS_DENIED');
    expect(weak.text).toContain('The client certificate key is smaller than this gateway accepts');
    expect(weak.headers.connection).toBe('close');
    for (const client of ['gp-system', 'gp-rsa3072'] as unknown as ClientName[]) {
      expect((await send(pki, app.gateway.port, { client, path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);
    }
    const text = (await app.metrics.render()).body;
    expect(metricSum(text, 'nems_gateway_rejections_total', { code: 'ACCESS_DENIED', stage: 'edge' })).toBeGreaterThanOrEqual(1);
    expect((await upstream.stats()).received.filter((r) => r.headers['x-forwarded-client-cert']?.includes('rsa1024'))).toEqual([]);
  });

  it('takes its minimum from server.tls.clientKeyMinimum (rsaBits 3072 refuses the 2048-bit example clients)', async () => {
    const strict = await startTestApp(testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => { raw.server.tls.clientKeyMinimum = { rsaBits: 3072 }; } }));
    try {
      const refused = await send(pki, strict.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
      expect([refused.status, spineCodeOf(refused.text)]).toEqual([403, 'ACCESS_DENIED']);
      const passed = await send(pki, strict.gateway.port, { client: 'gp-rsa3072' as ClientName, path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
      expect(passed.status).toBe(200);
    } finally {
      await strict.stop();
    }
  });

  describe.skipIf(openssl.skip)('elliptic-curve client keys (certificates issued with the openssl CLI by the example CA)', () => {
    beforeAll(() => {
      const run = (args: string[]) => execFileSync(openssl.require(), args, { cwd: pki.dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
      for (const [name, curve] of [['gp-p256', 'prime256v1'], ['gp-p384', 'secp384r1'], ['gp-p224', 'secp224r1']] as const) {
        run(['req', '-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/C=GB/CN=${GP_FQDN}`]);
        const ext = `${name}.ext`;
        execFileSync('sh', ['-c', `printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\nsubjectAltName=DNS:${GP_FQDN}\\n' > ${ext}`], { cwd: pki.dir });
        run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-set_serial', String(0x7000 + name.length + curve.length), '-days', '30', '-extfile', ext, '-out', `${name}.pem`]);
      }
    });

    it('passes P-256 and P-384 client keys and never serves a P-224 one', async () => {
      for (const client of ['gp-p256', 'gp-p384'] as unknown as ClientName[]) {
        expect((await send(pki, app.gateway.port, { client, path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);
      }
      // P-224 cannot sign a TLS 1.3 handshake, so OpenSSL may refuse it first; if it gets through, the answer is 403.
      const weak = await send(pki, app.gateway.port, { client: 'gp-p224' as ClientName, path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })
        .then((r) => `${r.status} ${spineCodeOf(r.text)}`, () => 'handshake refused');
      expect(['403 ACCESS_DENIED', 'handshake refused']).toContain(weak);
    });
  });
});
