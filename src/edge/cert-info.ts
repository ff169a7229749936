// Expiry dates of the edge's certificates and of the CRL, for the certificate-expiry gauge only. Nothing here
// takes part in a trust decision: OpenSSL verifies chains and CRLs; this merely reads dates for operators.
//
// Errors: every function throws CertInfoError (with a `reason`) for input it cannot read — garbage, a PEM without
// the expected block, a truncated or malformed DER structure — so a reload can count the file as bad.
// crlNextUpdate returns undefined only for a well-formed CRL that has no nextUpdate (optional in RFC 5280).
import { X509Certificate } from 'node:crypto';

export type CertInfoFailure = 'no-certificate' | 'malformed-certificate' | 'no-crl' | 'malformed-crl' | 'too-large';

export class CertInfoError extends Error {
  constructor(readonly reason: CertInfoFailure, message: string) {
    super(message);
    this.name = 'CertInfoError';
  }
}

/** Largest input read (a CA's full CRL can run to tens of megabytes). */
const MAX_INPUT_BYTES = 64 * 1024 * 1024;
/** Most PEM blocks examined in one bundle. */
const MAX_PEM_BLOCKS = 1000;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function checkSize(input: string | Buffer): void {
  if (input.length > MAX_INPUT_BYTES) throw new CertInfoError('too-large', `input exceeds ${MAX_INPUT_BYTES} bytes`);
}

/** The base64 bodies of every `-----BEGIN <label>-----` block, in order. */
function pemBlocks(pem: string, label: string): string[] {
  const pattern = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, 'g');
  const blocks: string[] = [];
  for (const match of pem.matchAll(pattern)) {
    blocks.push(match[1]!.replace(/\s+/g, ''));
    if (blocks.length >= MAX_PEM_BLOCKS) break;
  }
  return blocks;
}

/** OpenSSL prints notAfter as `Mar  5 10:00:00 2035 GMT` (years below 1000 without leading zeros); parsed strictly. */
function parseOpenSslDate(text: string): Date {
  const match = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{1,4}) GMT$/.exec(text);
  const month = match ? MONTHS.indexOf(match[1]!) : -1;
  if (!match || month < 0) throw new CertInfoError('malformed-certificate', 'certificate validity date is not readable');
  const date = new Date(Date.UTC(2000, month, Number(match[2]), Number(match[3]), Number(match[4]), Number(match[5])));
  // Set the year on its own: Date.UTC reads years 0–99 as 1900–1999.
  date.setUTCFullYear(Number(match[6]), month, Number(match[2]));
  return date;
}

function notAfterOf(base64: string): Date {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(Buffer.from(base64, 'base64'));
  } catch {
    throw new CertInfoError('malformed-certificate', 'certificate is not a readable X.509 certificate');
  }
  return parseOpenSslDate(certificate.validTo);
}

function certificateBlocks(pem: string | Buffer): string[] {
  checkSize(pem);
  const blocks = pemBlocks(typeof pem === 'string' ? pem : pem.toString('latin1'), 'CERTIFICATE');
  if (blocks.length === 0) throw new CertInfoError('no-certificate', 'no PEM certificate found');
  return blocks;
}

/** notAfter of the first certificate in a PEM file (the leaf, for a server certificate with its chain). */
export function certificateNotAfter(pem: string | Buffer): Date {
  return notAfterOf(certificateBlocks(pem)[0]!);
}

/** The earliest notAfter of every certificate in a PEM bundle (a CA bundle expires with its first member). */
export function bundleEarliestNotAfter(pem: string | Buffer): Date {
  let earliest: Date | undefined;
  for (const block of certificateBlocks(pem)) {
    const notAfter = notAfterOf(block);
    if (!earliest || notAfter < earliest) earliest = notAfter;
  }
  return earliest!;
}

// --- CRL: Node has no CRL parser, so a minimal DER walker reads just far enough to find nextUpdate. ---

const TAG_INTEGER = 0x02;
const TAG_SEQUENCE = 0x30;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;

interface Tlv {
  readonly tag: number;
  /** Offset of the first content byte. */
  readonly start: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

function malformed(what: string): never {
  throw new CertInfoError('malformed-crl', `CRL is malformed: ${what}`);
}

/** Reads one DER tag-length-value at `offset`, which must end by `limit`. Definite lengths only (DER). */
function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) malformed('truncated element');
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) malformed('multi-byte tag');
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    // 0x80 is BER's indefinite length (not DER); more than 4 octets cannot describe a length we would accept.
    if (octets === 0 || octets > 4) malformed('unsupported length encoding');
    if (start + octets > limit) malformed('truncated length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[start + i]!;
    start += octets;
  }
  const end = start + length;
  if (end > limit) malformed('element longer than its container');
  return { tag, start, end };
}

/** UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`, the only forms RFC 5280 allows. */
function readTime(der: Buffer, tlv: Tlv): Date {
  const text = der.toString('latin1', tlv.start, tlv.end);
  const match = tlv.tag === TAG_UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) malformed('time is not in RFC 5280 form');
  let year = Number(match[1]);
  if (tlv.tag === TAG_UTC_TIME) year += year >= 50 ? 1900 : 2000;
  const [month, day, hour, minute, second] = match.slice(2).map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC reads years 0–99 as 1900–1999; GeneralizedTime means the year as written.
  date.setUTCFullYear(year, month - 1, day);
  // Rejects month 13, 31 February and the like, which Date.UTC would roll over silently.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) malformed('time out of range');
  return date;
}

function crlDerBlocks(input: Buffer | string): Buffer[] {
  checkSize(input);
  if (Buffer.isBuffer(input) && input.length > 0 && input[0] === TAG_SEQUENCE) return [input];
  const text = typeof input === 'string' ? input : input.toString('latin1');
  const blocks = pemBlocks(text, 'X509 CRL');
  if (blocks.length === 0) throw new CertInfoError('no-crl', 'no PEM or DER CRL found');
  return blocks.map((block) => Buffer.from(block, 'base64'));
}

/** nextUpdate of one DER CertificateList; undefined when the CRL has none. */
function nextUpdateOfDer(der: Buffer): Date | undefined {
  // CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm, signatureValue }
  const certificateList = readTlv(der, 0, der.length);
  if (certificateList.tag !== TAG_SEQUENCE) malformed('not a SEQUENCE');
  const tbs = readTlv(der, certificateList.start, certificateList.end);
  if (tbs.tag !== TAG_SEQUENCE) malformed('tbsCertList is not a SEQUENCE');
  // TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature AlgorithmIdentifier, issuer Name,
  //                            thisUpdate Time, nextUpdate Time OPTIONAL, ... }
  let element = readTlv(der, tbs.start, tbs.end);
  if (element.tag === TAG_INTEGER) element = readTlv(der, element.end, tbs.end);
  if (element.tag !== TAG_SEQUENCE) malformed('signature algorithm is not a SEQUENCE');
  const issuer = readTlv(der, element.end, tbs.end);
  if (issuer.tag !== TAG_SEQUENCE) malformed('issuer is not a SEQUENCE');
  const thisUpdate = readTlv(der, issuer.end, tbs.end);
  if (thisUpdate.tag !== TAG_UTC_TIME && thisUpdate.tag !== TAG_GENERALIZED_TIME) malformed('thisUpdate is not a Time');
  readTime(der, thisUpdate);
  if (thisUpdate.end >= tbs.end) return undefined;
  const next = readTlv(der, thisUpdate.end, tbs.end);
  if (next.tag !== TAG_UTC_TIME && next.tag !== TAG_GENERALIZED_TIME) return undefined;
  return readTime(der, next);
}

/**
 * nextUpdate of a CRL given as DER bytes or PEM (the first `X509 CRL` block). Undefined when the CRL has no
 * nextUpdate; throws CertInfoError for anything that is not a well-formed CRL header. Signatures are not checked.
 */
export function crlNextUpdate(pemOrDer: Buffer | string): Date | undefined {
  return nextUpdateOfDer(crlDerBlocks(pemOrDer)[0]!);
}

/** The earliest nextUpdate across every CRL in a PEM file (CRLs without one are ignored). */
export function crlBundleEarliestNextUpdate(pemOrDer: Buffer | string): Date | undefined {
  let earliest: Date | undefined;
  for (const der of crlDerBlocks(pemOrDer)) {
    const next = nextUpdateOfDer(der);
    if (next && (!earliest || next < earliest)) earliest = next;
  }
  return earliest;
}
