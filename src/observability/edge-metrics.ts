// Glue between the edge and the metrics: an EdgeObserver that records into GatewayMetrics, and the reader that
// sets the certificate-expiry gauge from the files the configuration and the endpoint registry name.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { CertInfoError, bundleEarliestNotAfter, certificateNotAfter, crlBundleEarliestNextUpdate } from '../edge/cert-info.js';
import type { EdgeObserver, RequestRecord } from '../edge/observer.js';
import type { EndpointRegistry } from '../identity/types.js';
import type { IdentityRejectionReason } from './labels.js';
import type { FixedCertificateLabel, GatewayMetrics } from './metrics.js';

/** The EdgeObserver plus what the edge can additionally report (see the notes on each method). */
export interface GatewayEdgeObserver extends EdgeObserver {
  /**
   * Pass `tlsClientError`'s second argument as `tlsSocket`: with rejectUnauthorized Node reports a refused client
   * certificate as ECONNRESET and keeps the real reason (CERT_HAS_EXPIRED, CERT_REVOKED…) on the socket.
   */
  tlsHandshakeFailed(error: Error, tlsSocket?: { readonly authorizationError?: unknown } | null): void;
  /** A verified certificate that resolved to no registered endpoint. */
  identityRejected(reason: IdentityRejectionReason): void;
  /** A request arrived; call the returned function when its response is finished (requests-in-flight gauge). */
  requestStarted(): () => void;
}

export function edgeObserverFor(metrics: GatewayMetrics): GatewayEdgeObserver {
  // Connection closers are interchangeable (each decrements the same gauge once), so a stack suffices.
  const openConnections: Array<() => void> = [];
  return {
    connectionOpened() {
      openConnections.push(metrics.tlsConnectionOpened());
    },
    connectionClosed() {
      openConnections.pop()?.();
    },
    tlsHandshakeFailed(error, tlsSocket) {
      metrics.tlsHandshakeFailed(error, tlsSocket);
    },
    request(record: RequestRecord) {
      const route = record.route === 'unmatched' ? undefined : record.route;
      metrics.requestCompleted(route, record.outcome, record.status, record.seconds);
      if (record.rejection) metrics.rejected(record.rejection.code, record.rejection.stage);
      if (record.rules?.enforced) metrics.ruleViolation(record.rules.enforced, 'enforce');
      for (const rule of record.rules?.reported ?? []) metrics.ruleViolation(rule, 'report');
      if (record.upstreamFailure) metrics.upstreamFailed(record.upstreamFailure, route, record.upstreamSeconds);
      else if (record.upstreamSeconds !== undefined) metrics.upstreamCompleted(route, record.upstreamSeconds);
    },
    identityRejected: (reason) => metrics.identityRejected(reason),
    requestStarted: () => metrics.requestStarted(),
  };
}

/** Why a file could not be read, without its content or a library message. */
function problemOf(err: unknown): string {
  if (err instanceof CertInfoError) return err.reason;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unreadable';
}

/**
 * Sets the certificate-expiry gauge for the server certificate, the CA bundle (its earliest member), the CRL
 * nextUpdate (earliest across the file) and every upstream client certificate (the default one and each
 * registered ASID's). Call at start-up and after every reload. A file that cannot be read clears its label and
 * logs a warning; it never throws (reload decides whether a file is acceptable, not this).
 */
export function recordCertificateExpiry(
  metrics: GatewayMetrics,
  config: Config,
  registry: Pick<EndpointRegistry, 'endpoints'>,
  logger?: Pick<Logger, 'warn'>,
  /** Which gauges to refresh (default both): after a refused reload, the files on disk are not the ones in force. */
  refresh: { readonly edge?: boolean; readonly upstream?: boolean } = {},
): void {
  const read = (certificate: string, path: string, dateOf: (pem: Buffer) => Date | undefined): Date | undefined => {
    try {
      return dateOf(readFileSync(path));
    } catch (err) {
      logger?.warn({ certificate, path, problem: problemOf(err) }, 'cannot read expiry date for the certificate metric');
      return undefined;
    }
  };
  const fixed = (label: FixedCertificateLabel, path: string | undefined, dateOf: (pem: Buffer) => Date | undefined) =>
    metrics.setCertificateExpiry(label, path ? read(label, path, dateOf) : undefined);

  if (refresh.edge ?? true) {
    fixed('server', config.server.tls.cert, certificateNotAfter);
    fixed('ca', config.server.tls.ca, bundleEarliestNotAfter);
    fixed('crl_next_update', config.server.tls.crl, crlBundleEarliestNextUpdate);
  }
  if (!(refresh.upstream ?? true)) return;

  const upstream = new Map<string, Date>();
  const byPath = new Map<string, Date | undefined>();
  const once = (label: string, path: string) => {
    if (!byPath.has(path)) byPath.set(path, read(label, path, certificateNotAfter));
    return byPath.get(path);
  };
  const defaultCert = config.upstream.tls?.cert;
  if (defaultCert) {
    const notAfter = once('upstream_client:default', defaultCert);
    if (notAfter) upstream.set('default', notAfter);
  }
  for (const endpoint of registry.endpoints()) {
    for (const [asid, registration] of endpoint.asids) {
      const path = registration.upstreamClientCertificate?.cert;
      const notAfter = path ? once(`upstream_client:${asid}`, path) : undefined;
      if (notAfter) upstream.set(asid, notAfter);
    }
  }
  metrics.setUpstreamClientCertificateExpiries(upstream);
}
