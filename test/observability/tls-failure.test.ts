import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createServer, type ConnectionOptions, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { classifyTlsError } from '../../src/observability/tls-failure.js';
import type { TlsFailureReason } from '../../src/observability/labels.js';
import { findExternalTool } from './helpers/external-tool.js';
import { createTestPki, type TestPki } from './helpers/openssl-pki.js';

const openssl = findExternalTool('openssl', 'apt-get install openssl');

describe('classifyTlsError: OpenSSL and Node error codes and alerts', () => {
  it.each<[string, unknown, TlsFailureReason]>([
    ['no client certificate (server side)', { code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' }, 'no_certificate'],
    ['TLS 1.3 certificate_required alert (client side)', new Error('tlsv13 alert certificate required: SSL alert number 116'), 'no_certificate'],
    ['unknown CA alert code', { code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' }, 'unknown_ca'],
    ['unknown CA alert number 48', new Error('error:0A000418:SSL routines::tlsv1 alert unknown ca:SSL alert number 48'), 'unknown_ca'],
    ['untrusted chain verification code', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown_ca'],
    ['self-signed client certificate', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'unknown_ca'],
    ['expired certificate verification code', { code: 'CERT_HAS_EXPIRED' }, 'expired'],
    ['certificate expired alert number 45', new Error('sslv3 alert certificate expired:SSL alert number 45'), 'expired'],
    ['stale CRL', 'CRL_HAS_EXPIRED', 'expired'],
    ['revoked certificate verification code', { code: 'CERT_REVOKED' }, 'revoked'],
    ['certificate revoked alert number 44', new Error('sslv3 alert certificate revoked:SSL alert number 44'), 'revoked'],
    ['unsupported protocol version', { code: 'ERR_SSL_UNSUPPORTED_PROTOCOL', reason: 'unsupported protocol' }, 'protocol'],
    ['wrong version number', { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }, 'protocol'],
    ['protocol version alert', new Error('tlsv1 alert protocol version:SSL alert number 70'), 'protocol'],
    ['plain HTTP on the TLS port', { code: 'ERR_SSL_HTTP_REQUEST' }, 'protocol'],
    ['no shared cipher', { reason: 'no shared cipher' }, 'protocol'],
    ['handshake timeout', { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }, 'timeout'],
    ['client hung up', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'other'],
    ['not an error at all', 42, 'other'],
    ['null', null, 'other'],
    ['an unknown code', { code: 'ERR_SOMETHING_NEW' }, 'other'],
  ])('%s → %s', (_what, err, reason) => {
    expect(classifyTlsError(err)).toBe(reason);
  });

  it('prefers the socket authorizationError over the ECONNRESET Node reports after rejecting a client certificate', () => {
    const hangUp = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifyTlsError(hangUp, { authorizationError: 'CERT_HAS_EXPIRED' })).toBe('expired');
    expect(classifyTlsError(hangUp, { authorizationError: Object.assign(new Error('x'), { code: 'CERT_REVOKED' }) })).toBe('revoked');
    expect(classifyTlsError({ code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' }, { authorizationError: null })).toBe('no_certificate');
    expect(classifyTlsError({ code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }, { authorizationError: 'SOMETHING_NEW' })).toBe('timeout');
  });
});

describe.skipIf(openssl.skip)('classifyTlsError on real handshakes against an mTLS server (127.0.0.1, ephemeral port)', () => {
  let pki: TestPki;
  let server: Server;
  let port: number;
  const outcomes: Array<TlsFailureReason | 'ok'> = [];
  let notify: (() => void) | undefined;

  beforeAll(async () => {
    pki = createTestPki(openssl.require());
    server = createServer({
      key: pki.server.key, cert: pki.server.cert, ca: pki.caPem, crl: pki.crlPem,
      requestCert: true, rejectUnauthorized: true, handshakeTimeout: 300,
    });
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      outcomes.push(classifyTlsError(err, socket));
      notify?.();
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      outcomes.push('ok');
      notify?.();
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    pki?.remove();
  });

  /** Runs one client attempt and returns what the server classified it as. */
  async function serverOutcome(start: () => { destroy(): void; on(event: 'error', l: () => void): unknown }): Promise<TlsFailureReason | 'ok'> {
    outcomes.length = 0;
    const seen = new Promise<void>((resolve) => {
      notify = resolve;
    });
    const client = start();
    client.on('error', () => {});
    const timer = setTimeout(() => notify?.(), 3000);
    await seen;
    clearTimeout(timer);
    client.destroy();
    return outcomes[0] ?? 'other';
  }

  const tlsClient = (opts: ConnectionOptions) => () =>
    tlsConnect({ host: '127.0.0.1', port, ca: pki.caPem, servername: 'localhost', ...opts });

  it('a registered client certificate completes the handshake', async () => {
    expect(await serverOutcome(tlsClient({ cert: pki.clients.good.cert, key: pki.clients.good.key }))).toBe('ok');
  });

  it('no client certificate → no_certificate', async () => {
    expect(await serverOutcome(tlsClient({}))).toBe('no_certificate');
  });

  it.each(['TLSv1.2', 'TLSv1.3'] as const)('over %s: untrusted CA → unknown_ca, expired → expired, revoked → revoked', async (version) => {
    const attempt = (name: 'untrusted' | 'expired' | 'revoked') =>
      serverOutcome(tlsClient({ cert: pki.clients[name].cert, key: pki.clients[name].key, maxVersion: version }));
    expect(await attempt('untrusted')).toBe('unknown_ca');
    expect(await attempt('expired')).toBe('expired');
    expect(await attempt('revoked')).toBe('revoked');
  });

  it('plain HTTP sent to the TLS port → protocol', async () => {
    const start = () => {
      const socket = netConnect(port, '127.0.0.1', () => socket.write('GET /STU3/Subscription/1 HTTP/1.1\r\nHost: x\r\n\r\n'));
      return socket;
    };
    expect(await serverOutcome(start)).toBe('protocol');
  });

  it('a client that never starts the handshake → timeout', async () => {
    expect(await serverOutcome(() => netConnect(port, '127.0.0.1'))).toBe('timeout');
  });
});
