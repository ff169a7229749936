// Maps a failed TLS handshake to one of a fixed set of reasons for the handshake-failure metric. The error's
// message is only pattern-matched, never copied into a label.
import type { TlsFailureReason } from './labels.js';

/**
 * X.509 verification codes (Node `authorizationError`, OpenSSL `X509_V_ERR_*` names) and Node/OpenSSL error
 * codes, each mapped to a reason. Unlisted codes fall through to the reason patterns, then to 'other'.
 */
const CODE_REASONS: Readonly<Record<string, TlsFailureReason>> = {
  // No client certificate.
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no_certificate',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'no_certificate',
  // Chain does not lead to a trusted CA. Node also reports UNABLE_TO_GET_ISSUER_CERT when rejectUnauthorized is
  // false and the client sent no certificate: check for an empty peer certificate first in that mode.
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  CERT_UNTRUSTED: 'unknown_ca',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'unknown_ca',
  // Expired certificate, or a stale CRL (which makes every client fail: see the crl_next_update gauge).
  CERT_HAS_EXPIRED: 'expired',
  CRL_HAS_EXPIRED: 'expired',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'expired',
  // Revoked by the CRL.
  CERT_REVOKED: 'revoked',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: 'revoked',
  // Version, cipher or framing the edge will not speak (including plain HTTP sent to the TLS port).
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'protocol',
  ERR_SSL_WRONG_VERSION_NUMBER: 'protocol',
  ERR_SSL_VERSION_TOO_LOW: 'protocol',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'protocol',
  ERR_SSL_NO_SHARED_CIPHER: 'protocol',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'protocol',
  ERR_SSL_HTTP_REQUEST: 'protocol',
  ERR_SSL_HTTPS_PROXY_REQUEST: 'protocol',
  ERR_SSL_INAPPROPRIATE_FALLBACK: 'protocol',
  ERR_SSL_TLSV1_ALERT_INAPPROPRIATE_FALLBACK: 'protocol',
  ERR_SSL_PACKET_LENGTH_TOO_LONG: 'protocol',
  ERR_SSL_RECORD_LENGTH_MISMATCH: 'protocol',
  ERR_SSL_UNEXPECTED_MESSAGE: 'protocol',
  ERR_SSL_UNKNOWN_PROTOCOL: 'protocol',
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 'protocol',
  // Handshake took too long.
  ERR_TLS_HANDSHAKE_TIMEOUT: 'timeout',
  ETIMEDOUT: 'timeout',
};

/** OpenSSL reason strings and TLS alert numbers, for errors whose code is missing or generic. */
const TEXT_REASONS: readonly (readonly [RegExp, TlsFailureReason])[] = [
  [/peer did not return a certificate|certificate required|SSL alert number 116\b/i, 'no_certificate'],
  [/unknown ca|SSL alert number 48\b|unable to get (local )?issuer certificate|self[- ]signed certificate/i, 'unknown_ca'],
  [/certificate (has )?expired|crl has expired|SSL alert number 45\b/i, 'expired'],
  [/certificate revoked|SSL alert number 44\b/i, 'revoked'],
  [/unsupported protocol|wrong version number|protocol version|no shared cipher|http request|SSL alert number (40|70|86)\b/i, 'protocol'],
  [/handshake timeout|timed out/i, 'timeout'],
];

/** Reads a string property without trusting the shape of the thrown value. */
function stringProperty(value: unknown, key: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const property = (value as Record<string, unknown>)[key];
  return typeof property === 'string' ? property : undefined;
}

function classifyOne(value: unknown): TlsFailureReason | undefined {
  const code = typeof value === 'string' ? value : stringProperty(value, 'code');
  if (code !== undefined && Object.prototype.hasOwnProperty.call(CODE_REASONS, code)) return CODE_REASONS[code];
  // Only the first 512 characters are examined: messages are short, and this bounds the regex work.
  const texts = [stringProperty(value, 'reason'), typeof value === 'string' ? value : stringProperty(value, 'message')];
  for (const text of texts) {
    if (!text) continue;
    const bounded = text.slice(0, 512);
    for (const [pattern, reason] of TEXT_REASONS) if (pattern.test(bounded)) return reason;
  }
  return undefined;
}

/**
 * Classifies a TLS handshake failure. `err` is the `tlsClientError` error (or a client-side connect error);
 * `tlsSocket` is the socket Node passes as the event's second argument. With `rejectUnauthorized: true` Node
 * destroys a socket whose client certificate fails verification and reports only ECONNRESET, but it has
 * already stored the verification code (CERT_HAS_EXPIRED, CERT_REVOKED, …) on `tlsSocket.authorizationError`,
 * which therefore wins over `err`. Anything unrecognised is 'other'.
 */
export function classifyTlsError(err: unknown, tlsSocket?: { readonly authorizationError?: unknown } | null): TlsFailureReason {
  const authorizationError = tlsSocket?.authorizationError;
  if (authorizationError !== undefined && authorizationError !== null) {
    const reason = classifyOne(authorizationError);
    if (reason) return reason;
  }
  return classifyOne(err) ?? 'other';
}
