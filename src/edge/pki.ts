// The project's one reader of X.509 CRLs, and of the certificate fields revocation needs (issuer, serial, subject,
// key). Parsing is @peculiar/asn1-x509's (RFC 5280 schemas); signatures are checked with node:crypto. What is
// read here decides whether trust material is fit to hand to OpenSSL (trust-material.ts): OpenSSL (node:tls)
// still makes every handshake decision with it. node-forge is never used here.
import { X509Certificate, constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { RsaSaPssParams } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  Certificate, CertificateList, KeyUsage, KeyUsageFlags, id_ce_cRLNumber, id_ce_keyUsage, type AlgorithmIdentifier,
  type Name, type Time,
} from '@peculiar/asn1-x509';

/** Why input could not be read as a certificate or CRL; each maps to a refusal reason and a metric label. */
export type PkiReadFailure = 'no-certificate' | 'malformed-certificate' | 'no-crl' | 'malformed-crl' | 'too-large';

export class PkiReadError extends Error {
  constructor(readonly reason: PkiReadFailure, message: string) {
    super(message);
    this.name = 'PkiReadError';
  }
}

/** Largest input read (a CA's full CRL can run to tens of megabytes). */
export const MAX_PKI_INPUT_BYTES = 64 * 1024 * 1024;
/**
 * Most PEM blocks one file may hold; a file with more is refused ('too-large'), never read in part. A real CA
 * bundle holds a handful (a whole public root store ~150), a CRL file one CRL per CA; each block costs one parse
 * (~115 µs a certificate with OpenSSL 3, ~100 µs a small CRL), so the cap also bounds a read to ~30 ms.
 */
export const MAX_PEM_BLOCKS = 256;

function checkSize(input: string | Uint8Array): void {
  if (input.length > MAX_PKI_INPUT_BYTES) throw new PkiReadError('too-large', `input exceeds ${MAX_PKI_INPUT_BYTES} bytes`);
}

/** The DER bodies of every `-----BEGIN <label>-----` block, in order. */
export function pemBlocks(pem: string, label: string): Buffer[] {
  const pattern = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, 'g');
  const blocks: Buffer[] = [];
  for (const match of pem.matchAll(pattern)) {
    if (blocks.length === MAX_PEM_BLOCKS) throw new PkiReadError('too-large', `more than ${MAX_PEM_BLOCKS} ${label} blocks`);
    blocks.push(Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64'));
  }
  return blocks;
}

/** PEM text of one DER block. */
export function toPem(der: Uint8Array, label: string): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Serial numbers are compared as hex without sign-padding zero bytes, lower case (how both sides spell one). */
export function serialHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let i = 0;
  while (i < view.length - 1 && view[i] === 0) i++;
  return Buffer.from(view.subarray(i)).toString('hex');
}

/** A Name as DER hex: the key that matches a CRL or a certificate's issuer to a CA's subject. */
function nameKey(name: Name): string {
  return Buffer.from(AsnConvert.serialize(name)).toString('hex');
}

const NAME_LABELS: Readonly<Record<string, string>> = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.7': 'L' };

/** A Name for messages to operators: `CN=…, O=…` (attributes other than these few by OID). */
export function nameText(name: Name): string {
  const parts: string[] = [];
  for (const rdn of name) for (const attribute of rdn) parts.push(`${NAME_LABELS[attribute.type] ?? attribute.type}=${attribute.value.toString()}`);
  return parts.reverse().join(', ').slice(0, 200);
}

function timeOf(time: Time): Date {
  return time.getTime();
}

// --- CRLs ---

export interface ParsedCrl {
  readonly der: Buffer;
  /** Issuer Name (DER hex). */
  readonly issuer: string;
  /** Issuer Name for messages. */
  readonly issuerText: string;
  readonly thisUpdate: Date;
  /** Optional in the ASN.1, required by RFC 5280 §5.1.2.5 of conforming issuers; trust-material.ts insists on it. */
  readonly nextUpdate?: Date;
  /** The cRLNumber extension, when present (monotonic per issuer, RFC 5280 §5.2.3). */
  readonly crlNumber?: bigint;
  /** Revoked serials (serialHex). */
  readonly revoked: ReadonlySet<string>;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signature: Buffer;
}

function parseCrlDer(der: Buffer): ParsedCrl {
  let list: CertificateList;
  try {
    list = AsnConvert.parse(der, CertificateList);
  } catch {
    throw new PkiReadError('malformed-crl', 'CRL is not a readable X.509 CRL');
  }
  const tbs = list.tbsCertList;
  if (!list.tbsCertListRaw) throw new PkiReadError('malformed-crl', 'CRL is not a readable X.509 CRL');
  // DER only (RFC 5280): the parsed CRL must encode back to the very bytes read. This refuses BER forms and dates
  // a lenient decoder would roll over (month 13, 31 February, fractional seconds), which OpenSSL reads otherwise.
  let canonical: ArrayBuffer;
  try {
    canonical = AsnConvert.serialize(tbs);
  } catch {
    throw new PkiReadError('malformed-crl', 'CRL is not a readable X.509 CRL');
  }
  if (Buffer.compare(Buffer.from(canonical), Buffer.from(list.tbsCertListRaw)) !== 0) {
    throw new PkiReadError('malformed-crl', 'CRL is not DER-encoded (or holds an impossible date)');
  }
  // RFC 5280 §5.1.2.1: a CRL with extensions (entry or list) says it is v2.
  const hasExtensions = tbs.crlExtensions !== undefined || (tbs.revokedCertificates ?? []).some((e) => e.crlEntryExtensions !== undefined);
  if (hasExtensions && tbs.version === undefined) throw new PkiReadError('malformed-crl', 'CRL has extensions but is not v2');
  let thisUpdate: Date;
  let nextUpdate: Date | undefined;
  try {
    thisUpdate = timeOf(tbs.thisUpdate);
    nextUpdate = tbs.nextUpdate ? timeOf(tbs.nextUpdate) : undefined;
  } catch {
    throw new PkiReadError('malformed-crl', 'CRL dates are not readable');
  }
  // RFC 5280 §5.1.2.4: whole seconds only (the DER round trip keeps a fraction the decoder accepted), and nothing
  // before 1950 (UTCTime's first year; no conforming CRL is older).
  for (const date of nextUpdate ? [thisUpdate, nextUpdate] : [thisUpdate]) {
    if (Number.isNaN(date.getTime()) || date.getUTCMilliseconds() !== 0 || date.getUTCFullYear() < 1950) {
      throw new PkiReadError('malformed-crl', 'CRL dates are not in RFC 5280 form');
    }
  }
  const number = tbs.crlExtensions?.find((e) => e.extnID === id_ce_cRLNumber);
  let crlNumber: bigint | undefined;
  if (number) {
    // CRLNumber ::= INTEGER; the extension value is its DER (tag 02, short length for any sane number).
    const value = Buffer.from(number.extnValue.buffer);
    if (value[0] !== 0x02 || value[1]! > 20 || value.length !== value[1]! + 2) throw new PkiReadError('malformed-crl', 'CRL number is not readable');
    crlNumber = BigInt(`0x${serialHex(value.subarray(2)) || '0'}`);
  }
  const revoked = new Set<string>();
  for (const entry of tbs.revokedCertificates ?? []) revoked.add(serialHex(entry.userCertificate));
  return {
    der,
    issuer: nameKey(tbs.issuer),
    issuerText: nameText(tbs.issuer),
    thisUpdate,
    ...(nextUpdate ? { nextUpdate } : {}),
    ...(crlNumber !== undefined ? { crlNumber } : {}),
    revoked,
    tbs: Buffer.from(list.tbsCertListRaw),
    signatureAlgorithm: list.signatureAlgorithm,
    signature: Buffer.from(list.signature),
  };
}

/**
 * Every CRL in `input`: DER bytes (one CRL) or PEM (every `X509 CRL` block). Throws PkiReadError for input with no
 * CRL or with any block that is not a well-formed CRL. Signatures are not checked here (verifyCrlSignature).
 */
export function parseCrls(input: Buffer | string): ParsedCrl[] {
  checkSize(input);
  if (Buffer.isBuffer(input) && input.length > 0 && input[0] === 0x30) return [parseCrlDer(input)];
  const text = typeof input === 'string' ? input : input.toString('latin1');
  const blocks = pemBlocks(text, 'X509 CRL');
  if (blocks.length === 0) throw new PkiReadError('no-crl', 'no PEM or DER CRL found');
  return blocks.map(parseCrlDer);
}

// --- Certificates ---

export interface ReadCertificate {
  readonly x509: X509Certificate;
  readonly der: Buffer;
  /** Subject and issuer Names (DER hex), for matching CRLs and issuers. */
  readonly subject: string;
  /** Subject Name for messages. */
  readonly subjectText: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuer: string;
  /** The subject Name's DER (OCSP hashes it). */
  readonly subjectDer: Buffer;
  readonly serial: string;
  /** The subjectPublicKey BIT STRING's contents (OCSP hashes it). */
  readonly publicKeyBits: Buffer;
  /** keyUsage, when the certificate has the extension. */
  readonly keyUsage?: number;
  readonly parsed: Certificate;
}

export function readCertificateDer(der: Buffer): ReadCertificate {
  let parsed: Certificate;
  let x509: X509Certificate;
  try {
    parsed = AsnConvert.parse(der, Certificate);
    x509 = new X509Certificate(der);
  } catch {
    throw new PkiReadError('malformed-certificate', 'certificate is not a readable X.509 certificate');
  }
  const tbs = parsed.tbsCertificate;
  const usage = tbs.extensions?.find((e) => e.extnID === id_ce_keyUsage);
  let keyUsage: number | undefined;
  if (usage) {
    try {
      keyUsage = AsnConvert.parse(usage.extnValue, KeyUsage).toNumber();
    } catch {
      throw new PkiReadError('malformed-certificate', 'certificate keyUsage is not readable');
    }
  }
  const subjectDer = Buffer.from(AsnConvert.serialize(tbs.subject));
  return {
    x509,
    der,
    subject: subjectDer.toString('hex'),
    subjectText: nameText(tbs.subject),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    issuer: nameKey(tbs.issuer),
    subjectDer,
    serial: serialHex(tbs.serialNumber),
    publicKeyBits: Buffer.from(tbs.subjectPublicKeyInfo.subjectPublicKey),
    ...(keyUsage !== undefined ? { keyUsage } : {}),
    parsed,
  };
}

/** Every certificate of a PEM bundle; throws when there is none or any block is not a certificate. */
export function readCertificateBundle(pem: string | Buffer): ReadCertificate[] {
  checkSize(pem);
  const blocks = pemBlocks(typeof pem === 'string' ? pem : pem.toString('latin1'), 'CERTIFICATE');
  if (blocks.length === 0) throw new PkiReadError('no-certificate', 'no PEM certificate found');
  return blocks.map(readCertificateDer);
}

/** Issuer Name (DER hex) and serial of a DER certificate (a live connection's peer). */
export function issuerAndSerial(der: Uint8Array): { issuer: string; serial: string } {
  const read = readCertificateDer(Buffer.from(der));
  return { issuer: read.issuer, serial: read.serial };
}

/** True when the certificate may sign CRLs: no keyUsage extension, or one with cRLSign (RFC 5280 §4.2.1.3). */
export function maySignCrls(certificate: ReadCertificate): boolean {
  return certificate.keyUsage === undefined || (certificate.keyUsage & KeyUsageFlags.cRLSign) !== 0;
}

// --- Signatures ---

const RSA_PKCS1: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.5': 'sha1',
};
const ECDSA: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};
const EDDSA = new Set(['1.3.101.112', '1.3.101.113']);
const RSASSA_PSS = '1.2.840.113549.1.1.10';
const HASH_OIDS: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** RSASSA-PSS parameters (RFC 4055): hash and salt length; the MGF is MGF1 with the same hash (as OpenSSL signs). */
function pssParameters(parameters: ArrayBuffer | null | undefined): { hash: string; saltLength: number } | undefined {
  if (!parameters) return undefined;
  try {
    const params = AsnConvert.parse(parameters, RsaSaPssParams);
    const hash = HASH_OIDS[params.hashAlgorithm.algorithm];
    return hash ? { hash, saltLength: params.saltLength } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks `signature` over `data` with `key` for the X.509 signature algorithm `algorithm` (RSA PKCS#1 v1.5,
 * RSASSA-PSS, ECDSA with SHA-2, Ed25519/Ed448). An algorithm not listed verifies nothing (false).
 */
export function verifySignature(algorithm: AlgorithmIdentifier, data: Buffer, signature: Buffer, key: KeyObject): boolean {
  const oid = algorithm.algorithm;
  try {
    if (RSA_PKCS1[oid]) return key.asymmetricKeyType === 'rsa' && cryptoVerify(RSA_PKCS1[oid], data, key, signature);
    if (ECDSA[oid]) return key.asymmetricKeyType === 'ec' && cryptoVerify(ECDSA[oid], data, { key, dsaEncoding: 'der' }, signature);
    if (EDDSA.has(oid)) return (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') && cryptoVerify(null, data, key, signature);
    if (oid === RSASSA_PSS) {
      const pss = pssParameters(algorithm.parameters);
      if (!pss) return false;
      return cryptoVerify(pss.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength }, signature);
    }
  } catch {
    return false;
  }
  return false;
}

/** True when `crl` names `issuer` as its issuer and carries a valid signature by its key. */
export function verifyCrlSignature(crl: ParsedCrl, issuer: ReadCertificate): boolean {
  if (crl.issuer !== issuer.subject) return false;
  return verifySignature(crl.signatureAlgorithm, crl.tbs, crl.signature, issuer.x509.publicKey);
}
