// Decides whether the client-trust material (CA bundle and CRLs) is fit to hand to OpenSSL, so revocation can
// never switch itself off (issue 13 D1, D7). OpenSSL (node:tls) still verifies every client chain and CRL at the
// handshake; this refuses, at start-up and on every reload, material with which it would silently verify nothing
// (an empty CRL file disables revocation) or refuse everybody (a CRL of another CA, an expired CRL, a CA bundle
// without a usable certificate). RFC 5280 §5 (CRL profile) and RFC 5280 §6.3 (CRL validation) are the rules read here.
import { TRUST_REFUSAL_REASONS, type TrustRefusalReason } from '../observability/labels.js';
import { PkiReadError, maySignCrls, parseCrls, readCertificateBundle, toPem, verifyCrlSignature, type ParsedCrl, type ReadCertificate } from './pki.js';

export { TRUST_REFUSAL_REASONS, type TrustRefusalReason };

export class TrustMaterialError extends Error {
  constructor(readonly reason: TrustRefusalReason, message: string) {
    super(message);
    this.name = 'TrustMaterialError';
  }
}

/** A CRL file or a distribution point's answer; `origin` names it in messages (`server.tls.crl`, a URL). */
export interface CrlSource {
  readonly origin: string;
  readonly input: Buffer | string;
}

export interface CrlInForce {
  readonly crl: ParsedCrl;
  readonly origin: string;
  /** The CA that signed it (subject, for messages). */
  readonly ca: string;
  /** nextUpdate plus the grace: from then on this CRL is stale. */
  readonly staleAt: Date;
}

export interface TrustMaterial {
  readonly revocation: 'crl' | 'none';
  /** CA certificates of the bundle that can verify a client today (a CA, within its validity). */
  readonly cas: readonly ReadCertificate[];
  /** The newest valid CRL of each CA, as handed to OpenSSL. */
  readonly crls: readonly CrlInForce[];
  /** PEM of `crls` (undefined when revocation is none). */
  readonly crlPem?: string;
  /** Earliest nextUpdate among the CRLs in force. */
  readonly earliestNextUpdate?: Date;
  /** When the first CRL in force becomes stale (its nextUpdate plus the grace). */
  readonly staleAt?: Date;
}

export interface TrustMaterialInput {
  readonly caPem: string | Buffer;
  readonly crlSources: readonly CrlSource[];
  readonly revocation: 'crl' | 'none';
  /** Seconds past nextUpdate a CRL is still accepted (server.tls.crlGraceSeconds). */
  readonly graceSeconds: number;
  readonly now: Date;
}

/** A CRL issued this far in the future is still accepted (clocks of CA and gateway differ slightly). */
const THIS_UPDATE_SKEW_MS = 5 * 60_000;

/**
 * Validates the CA bundle and the CRLs and returns what OpenSSL should get. Throws TrustMaterialError naming the
 * key or origin and the problem. Of several CRLs by one CA the newest (cRLNumber, else thisUpdate) is used.
 */
export function validateTrustMaterial(input: TrustMaterialInput): TrustMaterial {
  const now = input.now.getTime();
  const { bundle, cas } = readCaBundle(input.caPem, now);
  if (input.revocation === 'none') return { revocation: 'none', cas, crls: [] };
  if (input.crlSources.length === 0) {
    throw new TrustMaterialError('crl-required', 'server.tls.crl: required unless server.tls.revocation is none (revocation would be off)');
  }

  const newest = new Map<string, CrlInForce>();
  for (const source of input.crlSources) {
    for (const crl of readCrls(source)) {
      const signer = signerOf(crl, bundle, source.origin);
      const held = newest.get(crl.issuer);
      if (!held || isNewer(crl, held.crl)) {
        const staleAt = new Date((crl.nextUpdate?.getTime() ?? 0) + input.graceSeconds * 1000);
        newest.set(crl.issuer, { crl, origin: source.origin, ca: signer.subjectText, staleAt });
      }
    }
  }
  const crls = [...newest.values()];
  for (const { crl, origin } of crls) checkCurrent(crl, origin, input.graceSeconds, now);
  // Node sets OpenSSL's CRL_CHECK_ALL: a CA without a CRL would refuse each of its clients (UNABLE_TO_GET_CRL).
  for (const ca of cas) {
    if (!newest.has(ca.subject)) {
      throw new TrustMaterialError('ca-without-crl', `server.tls.crl: no CRL of the CA ${ca.subjectText} (every client it issued would be refused)`);
    }
  }
  const earliest = crls.reduce<CrlInForce | undefined>((a, b) => (!a || b.crl.nextUpdate! < a.crl.nextUpdate! ? b : a), undefined);
  return {
    revocation: 'crl',
    cas,
    crls,
    crlPem: crls.map(({ crl }) => toPem(crl.der, 'X509 CRL')).join(''),
    ...(earliest ? { earliestNextUpdate: earliest.crl.nextUpdate!, staleAt: earliest.staleAt } : {}),
  };
}

/**
 * Checks one CRL fetched from a distribution point before it is cached: exactly one CRL, signed by a CA of the
 * bundle, current, and not older than the copy it would replace (a replayed old CRL could un-revoke).
 */
export function checkDistributionPointCrl(input: {
  readonly origin: string;
  readonly body: Buffer;
  readonly caPem: string | Buffer;
  readonly previous?: ParsedCrl;
  readonly graceSeconds: number;
  readonly now: Date;
}): ParsedCrl {
  const now = input.now.getTime();
  const { bundle } = readCaBundle(input.caPem, now);
  const crls = readCrls({ origin: input.origin, input: input.body });
  if (crls.length !== 1) throw new TrustMaterialError('crl-unreadable', `${input.origin}: serves ${crls.length} CRLs; a distribution point serves one`);
  const crl = crls[0]!;
  signerOf(crl, bundle, input.origin);
  checkCurrent(crl, input.origin, input.graceSeconds, now);
  if (input.previous && input.previous.issuer === crl.issuer && isNewer(input.previous, crl)) {
    throw new TrustMaterialError('crl-older', `${input.origin}: serves a CRL older than the copy in force (thisUpdate ${crl.thisUpdate.toISOString()})`);
  }
  return crl;
}

function readCaBundle(caPem: string | Buffer, now: number): { bundle: ReadCertificate[]; cas: ReadCertificate[] } {
  let bundle: ReadCertificate[];
  try {
    bundle = readCertificateBundle(caPem);
  } catch (err) {
    if (err instanceof PkiReadError) throw new TrustMaterialError('ca-unreadable', `server.tls.ca: ${err.message}`);
    throw err;
  }
  const cas = bundle.filter((c) => c.x509.ca && c.notBefore.getTime() <= now && now <= c.notAfter.getTime());
  if (cas.length === 0) {
    throw new TrustMaterialError('ca-unusable', 'server.tls.ca: no certificate in the bundle is a CA certificate within its validity period');
  }
  return { bundle, cas };
}

function readCrls(source: CrlSource): ParsedCrl[] {
  try {
    return parseCrls(source.input);
  } catch (err) {
    if (err instanceof PkiReadError) throw new TrustMaterialError('crl-unreadable', `${source.origin}: ${err.message}`);
    throw err;
  }
}

function signerOf(crl: ParsedCrl, bundle: readonly ReadCertificate[], origin: string): ReadCertificate {
  const candidates = bundle.filter((c) => c.subject === crl.issuer);
  if (candidates.length === 0) {
    throw new TrustMaterialError('crl-unknown-issuer', `${origin}: CRL issued by ${crl.issuerText}, which is not a CA of server.tls.ca`);
  }
  const signer = candidates.find((c) => maySignCrls(c) && verifyCrlSignature(crl, c));
  if (!signer) throw new TrustMaterialError('crl-signature', `${origin}: the CRL of ${crl.issuerText} does not carry a valid signature by that CA`);
  return signer;
}

function checkCurrent(crl: ParsedCrl, origin: string, graceSeconds: number, now: number): void {
  if (crl.thisUpdate.getTime() > now + THIS_UPDATE_SKEW_MS) {
    throw new TrustMaterialError('crl-not-yet-valid', `${origin}: the CRL of ${crl.issuerText} is not valid before ${crl.thisUpdate.toISOString()}`);
  }
  if (!crl.nextUpdate) {
    throw new TrustMaterialError('crl-no-next-update', `${origin}: the CRL of ${crl.issuerText} has no nextUpdate, so it can never be known to be stale`);
  }
  if (now > crl.nextUpdate.getTime() + graceSeconds * 1000) {
    throw new TrustMaterialError('crl-expired', `${origin}: the CRL of ${crl.issuerText} expired (nextUpdate ${crl.nextUpdate.toISOString()}${graceSeconds ? `, grace ${graceSeconds} s` : ''})`);
  }
}

/** True when `a` supersedes `b` (same issuer): a higher cRLNumber, else a later thisUpdate. */
export function isNewer(a: ParsedCrl, b: ParsedCrl): boolean {
  if (a.crlNumber !== undefined && b.crlNumber !== undefined && a.crlNumber !== b.crlNumber) return a.crlNumber > b.crlNumber;
  return a.thisUpdate.getTime() > b.thisUpdate.getTime();
}

/** Serials a set of CRLs revokes, by issuer (for closing live connections after a new CRL is in force). */
export function revokedByIssuer(crls: readonly CrlInForce[]): ReadonlyMap<string, ReadonlySet<string>> {
  return new Map(crls.map(({ crl }) => [crl.issuer, crl.revoked]));
}

/** One line for /readyz and logs: what is in force and until when; `current` is false once a CRL is stale. */
export function describeTrustMaterial(material: TrustMaterial, now: Date): { current: boolean; reason: string } {
  if (material.revocation === 'none') return { current: true, reason: `revocation off (server.tls.revocation: none); ${material.cas.length} CA(s)` };
  const at = now.getTime();
  const stale = material.crls.find((c) => at > c.staleAt.getTime());
  if (stale) {
    return {
      current: false,
      reason: `stale: the CRL of ${stale.crl.issuerText} (${stale.origin}) passed its nextUpdate ${stale.crl.nextUpdate!.toISOString()}; OpenSSL refuses that CA's clients until a current CRL is loaded`,
    };
  }
  const inGrace = material.crls.find((c) => at > c.crl.nextUpdate!.getTime());
  const grace = inGrace
    ? `; the CRL of ${inGrace.crl.issuerText} is past its nextUpdate (within the grace until ${inGrace.staleAt.toISOString()}): OpenSSL already refuses that CA's clients`
    : '';
  return {
    current: true,
    reason: `${material.crls.length} CRL(s) in force for ${material.cas.length} CA(s), earliest nextUpdate ${material.earliestNextUpdate?.toISOString()}${grace}`,
  };
}
