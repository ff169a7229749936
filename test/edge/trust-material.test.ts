// The rules that decide whether client-trust material is handed to OpenSSL (src/edge/trust-material.ts) and the
// one CRL reader under them (src/edge/pki.ts), on CRLs made by the openssl command line (ECDSA and RSASSA-PSS
// signatures) and by the example generator (RSA PKCS#1 v1.5).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { weakKeyProblem } from '../../src/edge/admission.js';
import { parseCrls, readCertificateBundle } from '../../src/edge/pki.js';
import { TrustMaterialError, checkDistributionPointCrl, describeTrustMaterial, validateTrustMaterial, type CrlSource } from '../../src/edge/trust-material.js';
import { createOpsPki, type OpsPki } from '../helpers/ops-files.js';
import { findExternalTool } from '../observability/helpers/external-tool.js';
import { createTestPki, type TestPki } from '../observability/helpers/openssl-pki.js';

const openssl = findExternalTool('openssl', 'apt-get install openssl');
const DAY_MS = 86_400_000;

const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof TrustMaterialError) return err.reason;
    throw err;
  }
  return 'accepted';
};

describe.skipIf(openssl.skip)('trust material made by the openssl command line', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = createTestPki(openssl.require());
  });
  afterAll(() => pki?.remove());

  it('accepts an ECDSA (P-256) CA with its CRL and reads the revoked serial the way openssl prints it', () => {
    const material = validateTrustMaterial({ caPem: pki.caPem, crlSources: [{ origin: 'server.tls.crl', input: pki.crlPem }], revocation: 'crl', graceSeconds: 0, now: new Date() });
    const serial = pki.openssl(['x509', '-in', pki.file('revoked.pem'), '-noout', '-serial']).trim().replace(/^serial=/, '').toLowerCase().replace(/^0+/, '');
    expect(material.crls).toHaveLength(1);
    expect([...material.crls[0]!.crl.revoked]).toEqual([serial]);
    expect(material.crlPem).toBe(`${pki.crlPem.trim()}\n`);
    // The DER form reads the same.
    expect(parseCrls(pki.crlDer)[0]!.revoked).toEqual(material.crls[0]!.crl.revoked);
  });

  it('refuses the CRL against a bundle of the other CA, and the other CA\'s bundle plus this CRL leaves a CA uncovered', () => {
    const crlSources: CrlSource[] = [{ origin: 'server.tls.crl', input: pki.crlPem }];
    expect(refusal(() => validateTrustMaterial({ caPem: pki.otherCaPem, crlSources, revocation: 'crl', graceSeconds: 0, now: new Date() }))).toBe('crl-unknown-issuer');
    expect(refusal(() => validateTrustMaterial({ caPem: `${pki.caPem}${pki.otherCaPem}`, crlSources, revocation: 'crl', graceSeconds: 0, now: new Date() }))).toBe('ca-without-crl');
  });

  it('verifies an RSASSA-PSS signature (SHA-256, salt 32) and refuses it once a byte of the CRL changes', () => {
    pki.openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'pss-ca.key', '-out', 'pss-ca.pem', '-days', '30', '-subj', '/CN=PSS CA']);
    pki.openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'pss-ca.key', '-cert', 'pss-ca.pem', '-gencrl', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-out', 'pss-crl.pem']);
    const caPem = pki.openssl(['x509', '-in', pki.file('pss-ca.pem')]);
    const crlPem = pki.openssl(['crl', '-in', pki.file('pss-crl.pem')]);
    expect(pki.openssl(['crl', '-in', pki.file('pss-crl.pem'), '-noout', '-text'])).toContain('rsassaPss');
    const now = new Date();
    expect(validateTrustMaterial({ caPem, crlSources: [{ origin: 'pss', input: crlPem }], revocation: 'crl', graceSeconds: 0, now }).crls).toHaveLength(1);
    const der = Buffer.from(parseCrls(crlPem)[0]!.der);
    der[der.length - 10] ^= 1;
    expect(refusal(() => validateTrustMaterial({ caPem, crlSources: [{ origin: 'pss', input: der }], revocation: 'crl', graceSeconds: 0, now }))).toBe('crl-signature');
  });

  it('refuses a CRL signed by a CA whose keyUsage does not allow cRLSign (RFC 5280 §4.2.1.3)', () => {
    pki.openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'nocrl-ca.key', '-out', 'nocrl-ca.pem', '-days', '30',
      '-subj', '/CN=No CRL Signing CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
    pki.openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'nocrl-ca.key', '-cert', 'nocrl-ca.pem', '-gencrl', '-out', 'nocrl-crl.pem']);
    const caPem = pki.openssl(['x509', '-in', pki.file('nocrl-ca.pem')]);
    const crlPem = pki.openssl(['crl', '-in', pki.file('nocrl-crl.pem')]);
    expect(refusal(() => validateTrustMaterial({ caPem, crlSources: [{ origin: 'x', input: crlPem }], revocation: 'crl', graceSeconds: 0, now: new Date() }))).toBe('crl-signature');
  });
});

describe('choosing, dating and describing the CRLs in force (example PKI)', () => {
  let pki: OpsPki;
  beforeAll(() => {
    pki = createOpsPki();
  });
  afterAll(() => pki?.cleanup());
  const caPem = () => pki.read('ca.pem');

  it('keeps the newest CRL of a CA (by cRLNumber) when several are given, whatever their order', () => {
    const older = pki.crlRevoking(['revoked', 'gp-system'], 5);
    const newer = pki.crlRevoking(['revoked'], 6);
    for (const order of [[older, newer], [newer, older]]) {
      const material = validateTrustMaterial({
        caPem: caPem(), crlSources: order.map((input, i) => ({ origin: `file ${i}`, input })), revocation: 'crl', graceSeconds: 0, now: new Date(),
      });
      expect(material.crls.map((c) => c.crl.crlNumber)).toEqual([6n]);
      expect(material.crlPem).toBe(newer);
    }
  });

  it('accepts a CRL past its nextUpdate only within the grace, and says so', () => {
    const lapsed = pki.crlRevoking(['revoked'], 7, { thisUpdate: new Date(Date.now() - DAY_MS), nextUpdate: new Date(Date.now() - 10_000) });
    const input = (graceSeconds: number) => ({ caPem: caPem(), crlSources: [{ origin: 'server.tls.crl', input: lapsed }], revocation: 'crl' as const, graceSeconds, now: new Date() });
    expect(refusal(() => validateTrustMaterial(input(0)))).toBe('crl-expired');
    const material = validateTrustMaterial(input(60));
    const described = describeTrustMaterial(material, new Date());
    expect(described.current).toBe(true);
    expect(described.reason).toMatch(/is past its nextUpdate \(within the grace until .*\): OpenSSL already refuses that CA's clients$/);
    expect(describeTrustMaterial(material, new Date(Date.now() + 61_000)).current).toBe(false);
  });

  it('refuses an expired CA certificate as the only CA of the bundle', () => {
    const expiredOnly = readCertificateBundle(caPem())[0]!;
    const afterExpiry = new Date(expiredOnly.notAfter.getTime() + 1000);
    expect(refusal(() => validateTrustMaterial({ caPem: caPem(), crlSources: [], revocation: 'none', graceSeconds: 0, now: afterExpiry }))).toBe('ca-unusable');
  });

  it('checks a distribution point answer: one CRL, signed, current, not older than the copy in force', () => {
    const now = new Date();
    const previous = parseCrls(pki.crlRevoking(['revoked', 'gp-system'], 20))[0]!;
    const check = (body: string | Buffer) => refusal(() => checkDistributionPointCrl({ origin: 'http://dp', body: Buffer.from(body), caPem: caPem(), previous, graceSeconds: 0, now }));
    expect(check(parseCrls(pki.crlRevoking(['revoked'], 21))[0]!.der)).toBe('accepted');
    expect(check(pki.crlRevoking(['revoked'], 19))).toBe('crl-older');
    expect(check(`${pki.crlRevoking(['revoked'], 22)}${pki.crlRevoking(['revoked'], 23)}`)).toBe('crl-unreadable');
    expect(check(pki.crlRevoking([], 24, { issuer: 'untrusted-ca' }))).toBe('crl-unknown-issuer');
    expect(check('<html>not found</html>')).toBe('crl-unreadable');
  });
});

describe('client key minimum (server.tls.clientKeyMinimum)', () => {
  const minimum = { rsaBits: 2048, ecBits: 256 };
  const publicKey = (type: string, options: Record<string, unknown>): KeyObject =>
    (generateKeyPairSync as unknown as (t: string, o: Record<string, unknown>) => { publicKey: KeyObject })(type, options).publicKey;

  it.each([
    ['RSA 1024', () => publicKey('rsa', { modulusLength: 1024 }), 'RSA 1024 bits (minimum 2048)'],
    ['RSA 2048', () => publicKey('rsa', { modulusLength: 2048 }), undefined],
    ['EC P-224', () => publicKey('ec', { namedCurve: 'secp224r1' }), 'EC secp224r1 (minimum 256 bits)'],
    ['EC P-256', () => publicKey('ec', { namedCurve: 'prime256v1' }), undefined],
    ['EC P-384', () => publicKey('ec', { namedCurve: 'secp384r1' }), undefined],
    ['Ed25519', () => publicKey('ed25519', {}), undefined],
    ['DSA 2048', () => publicKey('dsa', { modulusLength: 2048, divisorLength: 256 }), 'dsa keys are not accepted'],
  ])('%s', (_what, key, problem) => {
    expect(weakKeyProblem(key(), minimum)).toBe(problem);
  });

  it('follows the configured minimum', () => {
    expect(weakKeyProblem(publicKey('rsa', { modulusLength: 2048 }), { rsaBits: 3072, ecBits: 256 })).toBe('RSA 2048 bits (minimum 3072)');
    expect(weakKeyProblem(publicKey('ec', { namedCurve: 'prime256v1' }), { rsaBits: 2048, ecBits: 384 })).toBe('EC prime256v1 (minimum 384 bits)');
  });
});

