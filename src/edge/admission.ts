// What the edge checks about a TLS connection's client certificate after OpenSSL accepted it, before a request
// on that connection is served: the connection was not revoked since its handshake (issue 13 D4), the client key
// meets the minimum size (D13), and, when configured, an OCSP responder does not say it is revoked (issue 16).
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.js';
import type { Rejection } from '../pipeline/types.js';
import type { LiveConnections } from './live-connections.js';
import type { OcspChecker } from './ocsp.js';
import { readCertificateDer, type ReadCertificate } from './pki.js';
import { peerCertificate, peerLeaf, type PeerKeyFacts } from './peer-identity.js';

/** A refused connection: the rejection to answer with and a short reason for the request log. */
export interface AdmissionRefusal {
  readonly rejection: Rejection;
  readonly reason: 'weak-client-key' | 'ocsp-revoked' | 'ocsp-unknown' | 'ocsp-unavailable';
}

/**
 * 'ignore': serve nothing more on this connection (its certificate was revoked after the handshake; it is being
 * closed). undefined: admitted. Synchronous unless an OCSP answer has to be fetched.
 */
export type ConnectionAdmission = (socket: TLSSocket) => 'ignore' | AdmissionRefusal | undefined | Promise<AdmissionRefusal | undefined>;

type KeyMinimum = Config['server']['tls']['clientKeyMinimum'];

/** Security strength of named curves by their size in bits (OpenSSL names, as node:crypto reports them). */
const CURVE_BITS: Readonly<Record<string, number>> = {
  prime256v1: 256, secp384r1: 384, secp521r1: 521, secp256k1: 256, secp224r1: 224,
  brainpoolP256r1: 256, brainpoolP384r1: 384, brainpoolP512r1: 512,
};

/** Why a client key is below the minimum, or undefined when it is strong enough. */
export function weakKeyProblem(socketKey: PeerKeyFacts, minimum: KeyMinimum): string | undefined {
  const type = socketKey.asymmetricKeyType;
  const details = socketKey.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') {
    const bits = details.modulusLength ?? 0;
    return bits >= minimum.rsaBits ? undefined : `RSA ${bits} bits (minimum ${minimum.rsaBits})`;
  }
  if (type === 'ec') {
    const bits = CURVE_BITS[details.namedCurve ?? ''] ?? 0;
    return bits >= minimum.ecBits ? undefined : `EC ${details.namedCurve ?? 'unknown curve'} (minimum ${minimum.ecBits} bits)`;
  }
  if (type === 'ed25519' || type === 'ed448') return undefined;
  return `${type ?? 'unknown'} keys are not accepted`;
}

const WEAK_KEY: AdmissionRefusal = {
  reason: 'weak-client-key',
  rejection: { rule: 'tls.client-key-size', code: 'ACCESS_DENIED', diagnostics: 'The client certificate key is smaller than this gateway accepts', headers: { connection: 'close' } },
};
const OCSP_REVOKED: AdmissionRefusal = {
  reason: 'ocsp-revoked',
  rejection: { rule: 'tls.certificate-status', code: 'ACCESS_DENIED', diagnostics: 'The client certificate has been revoked', headers: { connection: 'close' } },
};
const OCSP_UNKNOWN: AdmissionRefusal = {
  reason: 'ocsp-unknown',
  rejection: { rule: 'tls.certificate-status', code: 'ACCESS_DENIED', diagnostics: 'The certificate status responder does not know the client certificate', headers: { connection: 'close' } },
};
const OCSP_UNAVAILABLE: AdmissionRefusal = {
  reason: 'ocsp-unavailable',
  rejection: { rule: 'tls.certificate-status', code: 'SERVICE_UNAVAILABLE', diagnostics: 'The status of the client certificate could not be checked', headers: { 'retry-after': '5' } },
};

interface PeerFacts {
  readonly weak?: AdmissionRefusal;
  readonly leaf?: ReadCertificate;
  readonly issuer?: ReadCertificate;
}

export interface AdmissionOptions {
  readonly tls: Config['server']['tls'];
  /** The live connections (known once the edge listens). */
  readonly live: () => LiveConnections | undefined;
  /** CA certificates of the trust material in force (the issuers OCSP requests name). */
  readonly issuers: () => readonly ReadCertificate[];
  readonly ocsp?: OcspChecker;
}

export function createConnectionAdmission(options: AdmissionOptions): ConnectionAdmission {
  const facts = new WeakMap<TLSSocket, PeerFacts>();
  const factsOf = (socket: TLSSocket): PeerFacts => {
    let known = facts.get(socket);
    if (!known) {
      const peerKey = peerLeaf(socket)?.key;
      // No verified certificate: identity resolution answers that connection (ACCESS_DENIED), not this check.
      const weak = peerKey ? weakKeyProblem(peerKey, options.tls.clientKeyMinimum) : undefined;
      let leaf: ReadCertificate | undefined;
      let issuer: ReadCertificate | undefined;
      const peer = peerKey && !weak && options.ocsp ? peerCertificate(socket) : undefined;
      if (peer) {
        try {
          leaf = readCertificateDer(peer.raw);
          issuer = options.issuers().find((ca) => ca.subject === leaf!.issuer && peer.checkIssued(ca.x509) && peer.verify(ca.x509.publicKey));
        } catch {
          leaf = undefined;
        }
      }
      known = { ...(weak ? { weak: WEAK_KEY } : {}), ...(leaf ? { leaf } : {}), ...(issuer ? { issuer } : {}) };
      facts.set(socket, known);
    }
    return known;
  };
  const verdict = (status: string): AdmissionRefusal | undefined => {
    if (status === 'good') return undefined;
    if (status === 'revoked') return OCSP_REVOKED;
    if (options.tls.ocsp.policy === 'soft-fail') return undefined;
    return status === 'unknown' ? OCSP_UNKNOWN : OCSP_UNAVAILABLE;
  };

  return (socket) => {
    if (options.live()?.isRevoked(socket)) return 'ignore';
    const known = factsOf(socket);
    if (known.weak) return known.weak;
    if (!options.ocsp || !socket.authorized) return undefined;
    // An issuer outside the bundle (the client sent an intermediate): no CertID can be formed, so no answer.
    if (!known.leaf || !known.issuer) return verdict('unavailable');
    const answer = options.ocsp.check(known.leaf, known.issuer);
    return answer instanceof Promise ? answer.then((a) => verdict(a.status)) : verdict(answer.status);
  };
}
