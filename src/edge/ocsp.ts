// OCSP (RFC 6960) checking of client certificates, optional (server.tls.ocsp): after OpenSSL has verified the
// chain and the CRL, the gateway asks the responder (the configured one, else the certificate's Authority
// Information Access URL) about the client certificate, caches the signed answer until its nextUpdate (at most
// maxCacheSeconds), and answers each request from the cache. A response is used only when it is signed by the
// issuing CA or by a responder certificate that CA issued for OCSP signing (RFC 6960 §4.2.2.2), names the
// certificate asked about, and is current. Requests and responses are built and read with @peculiar/asn1-ocsp.
import { X509Certificate, createHash } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  BasicOCSPResponse, CertID, OCSPRequest, OCSPResponse, OCSPResponseStatus, Request, TBSRequest, id_kp_OCSPSigning,
  id_pkix_ocsp_basic,
} from '@peculiar/asn1-ocsp';
import { AlgorithmIdentifier, AuthorityInfoAccessSyntax, id_ad_ocsp, id_pe_authorityInfoAccess } from '@peculiar/asn1-x509';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { BoundedHttpError, boundedHttp } from './bounded-http.js';
import { serialHex, verifySignature, type ReadCertificate } from './pki.js';

type OcspConfig = Config['server']['tls']['ocsp'];

export type OcspStatus = 'good' | 'revoked' | 'unknown' | 'unavailable';

export interface OcspAnswer {
  readonly status: OcspStatus;
  readonly cache: 'hit' | 'miss';
  /** Why the status is unavailable (for logs and /readyz; never sent to a client). */
  readonly problem?: string;
}

export interface OcspChecker {
  /** The status of `leaf` (issued by `issuer`): from the cache when it holds a current answer (synchronously). */
  check(leaf: ReadCertificate, issuer: ReadCertificate): OcspAnswer | Promise<OcspAnswer>;
  /** For /readyz: informational (a responder outage must not take every replica out at once). */
  readiness(): { ok: boolean; reason: string };
}

export interface OcspObserver {
  checked(status: OcspStatus, cache: 'hit' | 'miss'): void;
}

const SHA1 = '1.3.14.3.2.26';
/** Clock difference tolerated between responder and gateway. */
const SKEW_MS = 5 * 60_000;
/** An OCSP answer is a few kilobytes; a responder sending more is refused. */
const MAX_RESPONSE_BYTES = 256 * 1024;

interface CacheEntry {
  readonly status: OcspStatus;
  readonly expiresAt: number;
  readonly problem?: string;
}

export function createOcspChecker(options: { config: OcspConfig; observer?: OcspObserver; logger?: Pick<Logger, 'warn'>; now?: () => number }): OcspChecker {
  const { config } = options;
  const now = options.now ?? Date.now;
  const cache = new Map<string, CacheEntry>();
  const pending = new Map<string, Promise<OcspAnswer>>();
  let lastProblem: { at: number; problem: string } | undefined;
  let answered = 0;

  const remember = (key: string, entry: CacheEntry) => {
    cache.delete(key);
    cache.set(key, entry);
    // Oldest first out: Map iteration follows insertion order.
    while (cache.size > config.maxEntries) cache.delete(cache.keys().next().value!);
  };

  async function ask(key: string, leaf: ReadCertificate, issuer: ReadCertificate): Promise<OcspAnswer> {
    let entry: CacheEntry;
    try {
      const result = await exchange(leaf, issuer, config, now());
      const ttl = Math.min(config.maxCacheSeconds * 1000, Math.max(0, result.validUntil - now()));
      entry = { status: result.status, expiresAt: now() + ttl };
      answered++;
    } catch (err) {
      const problem = err instanceof OcspError || err instanceof BoundedHttpError ? err.message : 'exchange failed';
      lastProblem = { at: now(), problem };
      options.logger?.warn({ problem }, 'OCSP: no usable answer for a client certificate');
      entry = { status: 'unavailable', expiresAt: now() + config.failureCacheSeconds * 1000, problem };
    }
    remember(key, entry);
    options.observer?.checked(entry.status, 'miss');
    return { status: entry.status, cache: 'miss', ...(entry.problem ? { problem: entry.problem } : {}) };
  }

  return {
    check(leaf, issuer) {
      const key = `${leaf.issuer}:${leaf.serial}`;
      const cached = cache.get(key);
      if (cached && cached.expiresAt > now()) {
        options.observer?.checked(cached.status, 'hit');
        return { status: cached.status, cache: 'hit', ...(cached.problem ? { problem: cached.problem } : {}) };
      }
      let inFlight = pending.get(key);
      if (!inFlight) {
        inFlight = ask(key, leaf, issuer).finally(() => pending.delete(key));
        pending.set(key, inFlight);
      }
      return inFlight;
    },
    readiness() {
      const reason = `policy ${config.policy}; ${answered} answer(s) verified${lastProblem ? `; last failure at ${new Date(lastProblem.at).toISOString()}: ${lastProblem.problem}` : ''}`;
      return { ok: true, reason };
    },
  };
}

class OcspError extends Error {}

/** The responder for a certificate: the configured one, else its AIA id-ad-ocsp URI (RFC 5280 §4.2.2.1). */
export function responderUrlOf(leaf: ReadCertificate, configured: string | undefined): string | undefined {
  if (configured) return configured;
  const extension = leaf.parsed.tbsCertificate.extensions?.find((e) => e.extnID === id_pe_authorityInfoAccess);
  if (!extension) return undefined;
  try {
    const access = AsnConvert.parse(extension.extnValue, AuthorityInfoAccessSyntax);
    const uri = access.find((a) => a.accessMethod === id_ad_ocsp && a.accessLocation.uniformResourceIdentifier)?.accessLocation.uniformResourceIdentifier;
    return uri && /^https?:\/\//i.test(uri) ? uri : undefined;
  } catch {
    return undefined;
  }
}

/** CertID with SHA-1 (RFC 5019 §2.1.1, what responders are required to understand). */
export function certIdOf(leaf: ReadCertificate, issuer: ReadCertificate): CertID {
  const sha1 = (data: Buffer) => new OctetString(createHash('sha1').update(data).digest());
  return new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: SHA1, parameters: null }),
    issuerNameHash: sha1(issuer.subjectDer),
    issuerKeyHash: sha1(issuer.publicKeyBits),
    serialNumber: leaf.parsed.tbsCertificate.serialNumber,
  });
}

function sameCertId(a: CertID, b: CertID): boolean {
  const bytes = (o: OctetString) => Buffer.from(o.buffer);
  return a.hashAlgorithm.algorithm === b.hashAlgorithm.algorithm
    && bytes(a.issuerNameHash).equals(bytes(b.issuerNameHash))
    && bytes(a.issuerKeyHash).equals(bytes(b.issuerKeyHash))
    && serialHex(a.serialNumber) === serialHex(b.serialNumber);
}

/** One OCSP exchange: the verified status of `leaf` and until when it may be reused. Throws OcspError otherwise. */
async function exchange(leaf: ReadCertificate, issuer: ReadCertificate, config: OcspConfig, at: number): Promise<{ status: Exclude<OcspStatus, 'unavailable'>; validUntil: number }> {
  const url = responderUrlOf(leaf, config.responderUrl);
  if (!url) throw new OcspError('the client certificate names no OCSP responder and none is configured');
  const certId = certIdOf(leaf, issuer);
  const request = new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: certId })] }) });
  const response = await boundedHttp(url, {
    method: 'POST',
    headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
    body: Buffer.from(AsnConvert.serialize(request)),
    timeoutMs: config.timeoutMs,
    maxBytes: MAX_RESPONSE_BYTES,
  });
  if (response.status !== 200) throw new OcspError(`responder answered HTTP ${response.status}`);

  let basic: BasicOCSPResponse;
  try {
    const outer = AsnConvert.parse(response.body, OCSPResponse);
    if (outer.responseStatus !== OCSPResponseStatus.successful) throw new OcspError(`responder status ${OCSPResponseStatus[outer.responseStatus] ?? outer.responseStatus}`);
    if (!outer.responseBytes || outer.responseBytes.responseType !== id_pkix_ocsp_basic) throw new OcspError('not a basic OCSP response');
    basic = AsnConvert.parse(outer.responseBytes.response, BasicOCSPResponse);
  } catch (err) {
    if (err instanceof OcspError) throw err;
    throw new OcspError('the answer is not a readable OCSP response');
  }
  if (!basic.tbsResponseDataRaw) throw new OcspError('the answer is not a readable OCSP response');
  const signed = Buffer.from(basic.tbsResponseDataRaw);
  const signature = Buffer.from(basic.signature);
  if (!verifySignature(basic.signatureAlgorithm, signed, signature, issuer.x509.publicKey)) {
    const delegate = (basic.certs ?? []).map((c) => new X509Certificate(Buffer.from(AsnConvert.serialize(c)))).find((candidate) =>
      candidate.checkIssued(issuer.x509)
      && candidate.verify(issuer.x509.publicKey)
      && (candidate.keyUsage ?? []).includes(id_kp_OCSPSigning)
      && Date.parse(candidate.validFrom) <= at && at <= Date.parse(candidate.validTo)
      && verifySignature(basic.signatureAlgorithm, signed, signature, candidate.publicKey));
    if (!delegate) throw new OcspError('the answer is not signed by the issuing CA or a responder it authorised');
  }
  const single = basic.tbsResponseData.responses.find((r) => sameCertId(r.certID, certId));
  if (!single) throw new OcspError('the answer does not name the certificate asked about');
  const thisUpdate = single.thisUpdate.getTime();
  const nextUpdate = single.nextUpdate?.getTime();
  if (thisUpdate > at + SKEW_MS) throw new OcspError('the answer is dated in the future');
  if (nextUpdate !== undefined && at > nextUpdate + SKEW_MS) throw new OcspError('the answer is out of date');
  // Without nextUpdate "newer information is always available" (RFC 6960 §4.2.2.1): only a fresh answer counts.
  if (nextUpdate === undefined && at - thisUpdate > SKEW_MS) throw new OcspError('the answer is out of date');
  const status = single.certStatus.revoked ? 'revoked' : single.certStatus.good !== undefined ? 'good' : 'unknown';
  return { status, validUntil: nextUpdate ?? thisUpdate + SKEW_MS };
}
