// Expiry dates of the edge's certificates and of the CRL, for the certificate-expiry gauge. Certificates are read
// with node:crypto, CRLs with the project's one CRL reader (pki.ts); whether material is acceptable is decided by
// trust-material.ts, and every handshake by OpenSSL.
//
// Errors: every function throws CertInfoError (with a `reason`) for input it cannot read — garbage, a PEM without
// the expected block, a truncated or malformed DER structure — so a reload can count the file as bad.
// crlNextUpdate returns undefined only for a well-formed CRL that has no nextUpdate (optional in RFC 5280).
import { X509Certificate } from 'node:crypto';
import { MAX_PKI_INPUT_BYTES, PkiReadError, parseCrls, pemBlocks, type ParsedCrl, type PkiReadFailure } from './pki.js';

export type CertInfoFailure = PkiReadFailure;

export class CertInfoError extends Error {
  constructor(readonly reason: CertInfoFailure, message: string) {
    super(message);
    this.name = 'CertInfoError';
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Re-throws the reader's errors as CertInfoError (the expiry gauge's contract). */
function asCertInfo<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof PkiReadError) throw new CertInfoError(err.reason, err.message);
    throw err;
  }
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

function notAfterOf(der: Buffer): Date {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(der);
  } catch {
    throw new CertInfoError('malformed-certificate', 'certificate is not a readable X.509 certificate');
  }
  return parseOpenSslDate(certificate.validTo);
}

function certificateBlocks(pem: string | Buffer): Buffer[] {
  if (pem.length > MAX_PKI_INPUT_BYTES) throw new CertInfoError('too-large', `input exceeds ${MAX_PKI_INPUT_BYTES} bytes`);
  const blocks = asCertInfo(() => pemBlocks(typeof pem === 'string' ? pem : pem.toString('latin1'), 'CERTIFICATE'));
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

/**
 * nextUpdate of a CRL given as DER bytes or PEM (the first `X509 CRL` block). Undefined when the CRL has no
 * nextUpdate; throws CertInfoError for anything that is not a well-formed CRL. Signatures are not checked.
 */
export function crlNextUpdate(pemOrDer: Buffer | string): Date | undefined {
  return asCertInfo(() => parseCrls(pemOrDer))[0]!.nextUpdate;
}

/** The earliest nextUpdate across every CRL in a PEM file (CRLs without one are ignored). */
export function crlBundleEarliestNextUpdate(pemOrDer: Buffer | string): Date | undefined {
  let earliest: Date | undefined;
  for (const crl of asCertInfo<ParsedCrl[]>(() => parseCrls(pemOrDer))) {
    if (crl.nextUpdate && (!earliest || crl.nextUpdate < earliest)) earliest = crl.nextUpdate;
  }
  return earliest;
}
