// TLS material for the mTLS edge. OpenSSL (node:tls) verifies every client chain and CRL at the handshake; before
// any material reaches it, trust-material.ts checks that the CA bundle is usable and that every CA has a current
// CRL signed by it (from server.tls.crl and/or the distribution points' cached copies), so revocation cannot be
// silently off, foreign or stale. The TLS policy (versions, ciphers) is the schema's documented default.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Config } from '../config/schema.js';
import { cachedDistributionPointCrls } from './crl-distribution-points.js';
import { TrustMaterialError, validateTrustMaterial, type CrlSource, type TrustMaterial } from './trust-material.js';

export interface EdgeTlsMaterial {
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
  readonly pem: { readonly cert: string; readonly ca: string; readonly crl?: string };
  /** The CA bundle and CRLs in this material, as validated. */
  readonly trust: TrustMaterial;
}

/**
 * Reads the server certificate, key, CA bundle and CRLs, validates the trust material and builds a secure
 * context. Throws on any bad file (TrustMaterialError for refused trust material), naming the key.
 */
export function loadEdgeTls(config: Config, now: Date = new Date()): EdgeTlsMaterial {
  const tls = config.server.tls;
  const read = (key: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`server.tls.${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const cert = read('cert', tls.cert);
  const key = read('key', tls.key);
  const ca = read('ca', tls.ca);
  const crlSources: CrlSource[] = [];
  if (tls.revocation === 'crl') {
    if (tls.crl) {
      try {
        crlSources.push({ origin: 'server.tls.crl', input: readFileSync(tls.crl) });
      } catch (err) {
        throw new Error(`server.tls.crl: cannot read ${tls.crl} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    const fetched = cachedDistributionPointCrls(tls.crlDistributionPoints);
    if (crlSources.length === 0 && fetched.length === 0 && tls.crlDistributionPoints.urls.length > 0) {
      throw new TrustMaterialError('crl-required', `server.tls.crlDistributionPoints: no CRL could be fetched from ${tls.crlDistributionPoints.urls.join(', ')} and none is cached in ${tls.crlDistributionPoints.cacheDir}`);
    }
    crlSources.push(...fetched);
  }
  const trust = validateTrustMaterial({ caPem: ca, crlSources, revocation: tls.revocation, graceSeconds: tls.crlGraceSeconds, now });
  const options: SecureContextOptions = {
    cert,
    key,
    ca,
    ...(trust.crlPem ? { crl: trust.crlPem } : {}),
    minVersion: tls.minVersion,
    ciphers: tls.ciphers,
    honorCipherOrder: true,
  };
  let context: SecureContext;
  try {
    context = createSecureContext(options);
  } catch (err) {
    // OpenSSL's message names the problem (bad PEM, key mismatch); it goes to the operator, never to a client.
    throw new Error(`server.tls: ${(err as Error).message}`);
  }
  return { options, context, pem: { cert, ca, ...(trust.crlPem ? { crl: trust.crlPem } : {}) }, trust };
}
