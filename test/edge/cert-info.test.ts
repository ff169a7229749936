import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CertInfoError, bundleEarliestNotAfter, certificateNotAfter, crlBundleEarliestNextUpdate, crlNextUpdate,
} from '../../src/edge/cert-info.js';
import { MAX_PEM_BLOCKS, readCertificateBundle } from '../../src/edge/pki.js';
import { findExternalTool } from '../observability/helpers/external-tool.js';
import { createTestPki, type TestPki } from '../observability/helpers/openssl-pki.js';

const openssl = findExternalTool('openssl', 'apt-get install openssl');

/** Parses openssl's `notAfter=Mar  5 10:00:00 2035 GMT` style output. */
function opensslDate(output: string): Date {
  return new Date(output.trim().replace(/^\w+=/, ''));
}

// --- A tiny DER encoder for hand-made CRLs (no valid signature needed: reading dates checks none). ---
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const utc = (text: string) => tlv(0x17, Buffer.from(text, 'latin1'));
const generalized = (text: string) => tlv(0x18, Buffer.from(text, 'latin1'));
const sha256WithEcdsa = seq(tlv(0x06, Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])));
const issuerName = seq(tlv(0x31, seq(tlv(0x06, Buffer.from([0x55, 0x04, 0x03])), tlv(0x0c, Buffer.from('Test CA')))));
const signature = tlv(0x03, Buffer.from([0x00, 0x01, 0x02]));
function crl(...tbsParts: Buffer[]): Buffer {
  return seq(seq(...tbsParts), sha256WithEcdsa, signature);
}
/** A certificate with the given notAfter Time, as PEM (unsigned: the readers never check a signature). */
function certificatePem(notAfter: Buffer): string {
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const version = tlv(0xa0, tlv(0x02, Buffer.from([2])));
  const tbs = seq(version, tlv(0x02, Buffer.from([1])), sha256WithEcdsa, issuerName, seq(utc('240101000000Z'), notAfter), issuerName, spki);
  return `-----BEGIN CERTIFICATE-----\n${seq(tbs, sha256WithEcdsa, signature).toString('base64')}\n-----END CERTIFICATE-----\n`;
}

describe.skipIf(openssl.skip)('certificate and CRL dates read for the expiry gauge (openssl-made PKI)', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = createTestPki(openssl.require());
  });
  afterAll(() => pki?.remove());

  it('reads notAfter of a server certificate exactly as openssl prints it', () => {
    const expected = opensslDate(pki.openssl(['x509', '-in', pki.file('server.pem'), '-noout', '-enddate']));
    expect(certificateNotAfter(pki.server.cert).toISOString()).toBe(expected.toISOString());
    expect(certificateNotAfter(Buffer.from(pki.server.cert)).toISOString()).toBe(expected.toISOString());
  });

  it('takes the first certificate of a bundle for certificateNotAfter and the earliest for bundleEarliestNotAfter', () => {
    const bundle = `${pki.clients.good.cert}\n${pki.clients.expired.cert}\n${pki.caPem}`;
    const good = opensslDate(pki.openssl(['x509', '-in', pki.file('good.pem'), '-noout', '-enddate']));
    expect(certificateNotAfter(bundle).getTime()).toBe(good.getTime());
    expect(bundleEarliestNotAfter(bundle).toISOString()).toBe('2020-02-01T00:00:00.000Z');
    expect(bundleEarliestNotAfter(pki.caPem).getTime()).toBeGreaterThan(Date.now());
  });

  it('reads nextUpdate of an openssl CRL from PEM text, PEM bytes and DER bytes', () => {
    const expected = opensslDate(pki.openssl(['crl', '-in', pki.file('crl.pem'), '-noout', '-nextupdate']));
    expect(crlNextUpdate(pki.crlPem)?.toISOString()).toBe(expected.toISOString());
    expect(crlNextUpdate(Buffer.from(pki.crlPem))?.toISOString()).toBe(expected.toISOString());
    expect(crlNextUpdate(pki.crlDer)?.toISOString()).toBe(expected.toISOString());
  });

  it('reads a GeneralizedTime nextUpdate (dates from 2050 on) from an openssl CRL', () => {
    pki.openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-gencrl', '-crldays', '12000', '-out', 'crl-long.pem']);
    const pem = pki.openssl(['crl', '-in', pki.file('crl-long.pem')]);
    const expected = opensslDate(pki.openssl(['crl', '-in', pki.file('crl-long.pem'), '-noout', '-nextupdate']));
    expect(expected.getUTCFullYear()).toBeGreaterThanOrEqual(2050);
    expect(crlNextUpdate(pem)?.toISOString()).toBe(expected.toISOString());
    // Two CRLs in one file: the earliest nextUpdate is the one that matters.
    expect(crlBundleEarliestNextUpdate(`${pem}${pki.crlPem}`)?.toISOString()).toBe(crlNextUpdate(pki.crlPem)?.toISOString());
  });

  it('throws CertInfoError(malformed-crl) for every truncation of a real DER CRL', () => {
    for (let length = 1; length < pki.crlDer.length; length++) {
      const attempt = () => crlNextUpdate(pki.crlDer.subarray(0, length));
      expect(attempt, `length ${length}`).toThrow(CertInfoError);
    }
  });
});

describe('certificate dates: input that is not a certificate', () => {
  it('throws CertInfoError(no-certificate) for text without a PEM certificate', () => {
    for (const input of ['', 'garbage', '-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----']) {
      try {
        certificateNotAfter(input);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(CertInfoError);
        expect((err as CertInfoError).reason).toBe('no-certificate');
      }
    }
  });

  it('reads a notAfter in a year below 1000, which OpenSSL prints without leading zeros (found by fuzzing)', () => {
    const certificate = certificatePem(generalized('09991231235959Z'));
    expect(certificateNotAfter(certificate).toISOString()).toBe('0999-12-31T23:59:59.000Z');
    expect(bundleEarliestNotAfter(certificatePem(generalized('00500101000000Z'))).toISOString()).toBe('0050-01-01T00:00:00.000Z');
  });

  it('throws CertInfoError(malformed-certificate) for a PEM block that does not hold a certificate', () => {
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from('not a certificate').toString('base64')}\n-----END CERTIFICATE-----\n`;
    expect(() => bundleEarliestNotAfter(pem)).toThrow(expect.objectContaining({ reason: 'malformed-certificate' }));
  });
});

describe('CRL nextUpdate: the bounded DER reader', () => {
  it('reads a v1 CRL (no version field) with a UTCTime nextUpdate', () => {
    const der = crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), utc('250201120000Z'));
    expect(crlNextUpdate(der)?.toISOString()).toBe('2025-02-01T12:00:00.000Z');
  });

  it('reads a v2 CRL with GeneralizedTime and maps UTCTime years 50–99 to the 1900s (RFC 5280)', () => {
    const v2 = tlv(0x02, Buffer.from([0x01]));
    expect(crlNextUpdate(crl(v2, sha256WithEcdsa, issuerName, utc('990101000000Z'), generalized('20510315080910Z')))?.toISOString())
      .toBe('2051-03-15T08:09:10.000Z');
    expect(crlNextUpdate(crl(v2, sha256WithEcdsa, issuerName, utc('490101000000Z'), utc('500101000000Z')))?.toISOString())
      .toBe('1950-01-01T00:00:00.000Z');
  });

  it('refuses a CRL date before 1950, never reading a GeneralizedTime year below 100 as the 1900s (found by fuzzing)', () => {
    expect(() => crlNextUpdate(crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), generalized('00991231235959Z'))))
      .toThrow(expect.objectContaining({ reason: 'malformed-crl' }));
    expect(crlNextUpdate(crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), generalized('20991231235959Z')))?.toISOString())
      .toBe('2099-12-31T23:59:59.000Z');
  });

  it('returns undefined for a well-formed CRL without nextUpdate and without revoked entries', () => {
    expect(crlNextUpdate(crl(sha256WithEcdsa, issuerName, utc('250101000000Z')))).toBeUndefined();
  });

  it('refuses a CRL without nextUpdate that lists revoked entries (RFC 5280 §5.1.2.5 requires nextUpdate; the schema reader cannot place them)', () => {
    const revoked = seq(seq(tlv(0x02, Buffer.from([0x10])), utc('250101000000Z')));
    expect(() => crlNextUpdate(crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), revoked))).toThrow(expect.objectContaining({ reason: 'malformed-crl' }));
  });

  it('wraps a DER CRL in PEM and reads it the same way', () => {
    const der = crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), utc('250201000000Z'));
    const pem = `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END X509 CRL-----\n`;
    expect(crlNextUpdate(pem)?.toISOString()).toBe('2025-02-01T00:00:00.000Z');
  });

  it.each([
    ['an impossible date (month 13)', crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), utc('251301000000Z'))],
    ['31 February', crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), utc('250231000000Z'))],
    ['a time with fractional seconds', crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), generalized('20250201000000.5Z'))],
    ['a time without Z', crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), utc('2502010000000'))],
    ['a missing issuer', crl(sha256WithEcdsa, utc('250101000000Z'))],
    ['thisUpdate that is not a Time', crl(sha256WithEcdsa, issuerName, tlv(0x02, Buffer.from([1])))],
    ['an indefinite (BER) length', Buffer.from([0x30, 0x80, 0x30, 0x00, 0x00, 0x00])],
    ['a length longer than the input', Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30, 0x00])],
    ['an empty SEQUENCE', Buffer.from([0x30, 0x00])],
    ['a multi-byte tag', Buffer.from([0x30, 0x03, 0x1f, 0x81, 0x00])],
  ])('throws CertInfoError(malformed-crl) for %s', (_what, der) => {
    expect(() => crlNextUpdate(der)).toThrow(expect.objectContaining({ name: 'CertInfoError', reason: 'malformed-crl' }));
  });

  it(`reads a file of MAX_PEM_BLOCKS (${MAX_PEM_BLOCKS}) blocks and refuses one with more as too-large, never reading part of it`, () => {
    const crlPem = `-----BEGIN X509 CRL-----\n${crl(sha256WithEcdsa, issuerName, utc('250101000000Z'), utc('250201000000Z')).toString('base64')}\n-----END X509 CRL-----\n`;
    expect(crlBundleEarliestNextUpdate(crlPem.repeat(MAX_PEM_BLOCKS))?.toISOString()).toBe('2025-02-01T00:00:00.000Z');
    expect(() => crlBundleEarliestNextUpdate(crlPem.repeat(MAX_PEM_BLOCKS + 1))).toThrow(expect.objectContaining({ name: 'CertInfoError', reason: 'too-large' }));
    const certificate = certificatePem(utc('300101000000Z'));
    expect(bundleEarliestNotAfter(certificate.repeat(MAX_PEM_BLOCKS)).toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(() => bundleEarliestNotAfter(certificate.repeat(MAX_PEM_BLOCKS + 1))).toThrow(expect.objectContaining({ name: 'CertInfoError', reason: 'too-large' }));
    expect(() => readCertificateBundle(certificate.repeat(MAX_PEM_BLOCKS + 1))).toThrow(expect.objectContaining({ name: 'PkiReadError', reason: 'too-large' }));
  });

  it('throws CertInfoError(no-crl) for text or bytes that hold no CRL', () => {
    for (const input of ['', 'garbage', Buffer.from('garbage'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----']) {
      expect(() => crlNextUpdate(input)).toThrow(expect.objectContaining({ reason: 'no-crl' }));
    }
  });

  it('never throws anything but CertInfoError, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, startWithSequence) => {
        const input = Buffer.from(bytes);
        if (startWithSequence && input.length > 0) input[0] = 0x30;
        try {
          const result = crlNextUpdate(input);
          return result === undefined || result instanceof Date;
        } catch (err) {
          return err instanceof CertInfoError;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
