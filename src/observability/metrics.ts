// The gateway's Prometheus metrics (prom-client), behind typed methods so no caller touches a raw metric or
// picks a label value: every label is mapped through an allow-list in labels.ts ('other' when not listed).
import { Counter, Gauge, Registry } from 'prom-client';
import type { PdsObserver, PdsResult } from '../pds/types.js';
import type { NemsOperation } from '../nems/operations.js';
import type { UpstreamFailureKind } from '../upstream/types.js';
import {
  CRL_FETCH_LABELS, FIXED_CERTIFICATE_LABELS, IDENTITY_REJECTION_LABELS, OCSP_CACHE_LABELS, OCSP_STATUS_LABELS,
  OPERATION_LABELS, OUTCOME_LABELS, PDS_CACHE_LABELS, RULE_LABELS, PDS_RESULT_LABELS, RELOAD_COMPONENT_LABELS, ROUTE_LABELS,
  STAGE_LABELS, TRUST_REFUSAL_LABELS, TRUST_SOURCE_LABELS, UPSTREAM_ERROR_LABELS,
  allowListed, spineCodeLabel, statusClassLabel, upstreamClientCertificateLabel,
  type FixedCertificateLabel, type IdentityRejectionReason, type OutcomeLabel, type ReloadComponent,
  type StageLabel, type TlsFailureReason,
} from './labels.js';
import { classifyTlsError } from './tls-failure.js';
import { attachClusterMetricsWorker } from './cluster-metrics.js';
import { registerDefaultMetrics } from './default-metrics.js';
import { BoundCounterFamily, BoundHistogramFamily, type BoundCounter, type BoundHistogram } from './bound-metrics.js';
import { buildInfo } from './build-info.js';

export { classifyTlsError } from './tls-failure.js';
export type {
  FixedCertificateLabel, IdentityRejectionReason, OutcomeLabel, ReloadComponent, RouteLabel, StageLabel,
  TlsFailureReason,
} from './labels.js';
export {
  createClusterMetricsAggregator, attachClusterMetricsWorker,
  type ClusterMetricsAggregator, type ClusterMetricsAggregatorOptions,
} from './cluster-metrics.js';
export { createClusterPrimaryMetrics, type ClusterPrimaryMetrics } from './cluster-primary.js';

/** Content-Type of the text exposition format served on the admin port's /metrics. */
export const metricsContentType: string = Registry.PROMETHEUS_CONTENT_TYPE;

export const DEFAULT_METRIC_PREFIX = 'nems_gateway_';

/** Names callers use for reload components, mapped to the label values. */
export type ReloadComponentAlias = 'tls' | 'pds';
const RELOAD_ALIASES: Readonly<Record<ReloadComponentAlias, ReloadComponent>> = { tls: 'certificate', pds: 'pds-data' };

/** Upper bound on `upstream_client:<asid>` series, whatever the registry holds. */
const MAX_UPSTREAM_CLIENT_CERTIFICATES = 1000;

/** Request-path latencies: sub-millisecond for rejections, seconds for slow upstreams. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** PDS: cache hits take microseconds, remote PDS calls tens to thousands of milliseconds. */
const PDS_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface CreateMetricsOptions {
  /** Prefix of every gateway metric (not of the standard process_/nodejs_ ones). Default `nems_gateway_`. */
  readonly prefix?: string;
  /** Registry to register in; a new one by default (never prom-client's global registry). */
  readonly registry?: Registry;
  /** Register prom-client's default process and Node.js metrics. Default true. */
  readonly collectDefault?: boolean;
  /** Clock for the certificate expiry gauge (ms since the epoch); injectable for tests. */
  readonly now?: () => number;
  /** In a `node:cluster` worker: answer the primary's metrics requests from this registry (no-op elsewhere). */
  readonly clusterWorker?: boolean;
}

/** A scrape body and the Content-Type to serve it with. */
export interface MetricsExposition {
  readonly contentType: string;
  readonly body: string;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** This process's metrics in the text exposition format. */
  render(): Promise<MetricsExposition>;

  /**
   * One finished client request. `route` is the matched operation (undefined: unmatched path);
   * `seconds` runs from arrival to the response being written.
   */
  requestCompleted(route: NemsOperation | undefined, outcome: OutcomeLabel, status: number, seconds: number): void;
  /** A rejection: the Spine code answered and the stage (or 'edge') that made it. */
  rejected(code: string, stage: StageLabel): void;
  /** An upstream exchange that produced a response (any status). */
  upstreamCompleted(route: NemsOperation | undefined, seconds: number): void;
  /** An upstream exchange that produced no response (UpstreamError.kind). */
  upstreamFailed(kind: UpstreamFailureKind, route: NemsOperation | undefined, seconds?: number): void;
  /** Hooks for the PDS module (lookups by result and cache, and their duration). */
  readonly pdsObserver: PdsObserver;
  /** Counts a failed handshake under its classified reason and returns the reason (see classifyTlsError). */
  tlsHandshakeFailed(err: unknown, tlsSocket?: { readonly authorizationError?: unknown } | null): TlsFailureReason;
  /** A verified client certificate that did not resolve to a registered endpoint. */
  identityRejected(reason: IdentityRejectionReason): void;
  /** A TLS connection completed its handshake; call the returned function (idempotent) when it closes. */
  tlsConnectionOpened(): () => void;
  /** A request entered the gateway; call the returned function (idempotent) when its response is finished. */
  requestStarted(): () => void;
  /** Sets (or, with undefined, removes) the expiry of a fixed certificate label; the gauge shows seconds left. */
  setCertificateExpiry(certificate: FixedCertificateLabel, notAfter: Date | undefined): void;
  /**
   * Replaces every `upstream_client:*` expiry. Keys are registered ASIDs (12 digits) or 'default'; other keys are
   * ignored, so the label set stays bounded by the endpoint registry.
   */
  setUpstreamClientCertificateExpiries(notAfterByAsid: ReadonlyMap<string, Date>): void;
  /** A reload attempt of one component ('tls' counts as 'certificate', 'pds' as 'pds-data'). */
  reload(component: ReloadComponent | ReloadComponentAlias, ok: boolean): void;
  /** A catalogued rule fired: enforced (the request was refused) or reported (rules/catalogue.ts; others count as 'other'). */
  ruleViolation(rule: string, action: 'enforce' | 'report'): void;
  /** A request answered 429 by the rate-limit stage (a NemsOperation; anything else is counted as 'other'). */
  rateLimited(operation: NemsOperation | string): void;
  /** Client-trust material (CA bundle, CRL) refused on a reload or from a distribution point, by reason. */
  trustMaterialRefused(source: 'reload' | 'distribution-point', reason: string): void;
  /** One fetch of a CRL distribution point: updated, unchanged, failed or refused. */
  crlFetched(result: string): void;
  /** One OCSP status used for a client certificate, by status and whether it came from the cache. */
  ocspChecked(status: string, cache: 'hit' | 'miss'): void;
  /** The fingerprint (16 hex digits, config/fingerprint.ts) of the configuration in force. */
  configLoaded(hash: string): void;
  /** Whether the shared rate-limit store (Redis) answers; 1 also when the store is the in-process one. */
  rateLimitStoreAvailable(available: boolean): void;
  /** A rate-limit decision made without the shared store, under the `rateLimits.onStoreError` policy. */
  rateLimitStoreFallback(policy: 'local' | 'allow' | 'deny'): void;
}

/** Creates the gateway metrics in `opts.registry` (or a new registry). */
export function createMetrics(opts: CreateMetricsOptions = {}): GatewayMetrics {
  const prefix = opts.prefix ?? DEFAULT_METRIC_PREFIX;
  if (!/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) throw new TypeError('metrics prefix is not a valid metric name prefix');
  const registry = opts.registry ?? new Registry();
  const now = opts.now ?? Date.now;
  const registers = [registry];

  if (opts.collectDefault ?? true) registerDefaultMetrics(registry);

  const requestLabels = ['route', 'outcome', 'status_class'] as const;
  // The per-request families are bound once per label set (bound-metrics.ts): no label hashing per request.
  const requestsTotal = new BoundCounterFamily({
    name: `${prefix}requests_total`,
    help: 'Client requests answered, by NEMS route, outcome and HTTP status class.',
    labelNames: requestLabels, registers,
  });
  const requestDuration = new BoundHistogramFamily({
    name: `${prefix}request_duration_seconds`,
    help: 'Time from a request arriving to its response being written, by NEMS route, outcome and status class.',
    labelNames: requestLabels, buckets: REQUEST_BUCKETS, registers,
  });
  const rejections = new Counter({
    name: `${prefix}rejections_total`,
    help: 'Requests rejected by the gateway, by Spine error code and the stage that rejected them.',
    labelNames: ['code', 'stage'] as const, registers,
  });
  const upstreamDuration = new BoundHistogramFamily({
    name: `${prefix}upstream_duration_seconds`,
    help: 'Time from dispatching a request upstream to its response being relayed, by NEMS route.',
    labelNames: ['route'] as const, buckets: REQUEST_BUCKETS, registers,
  });
  const upstreamErrors = new Counter({
    name: `${prefix}upstream_errors_total`,
    help: 'Upstream exchanges that produced no response, by failure kind.',
    labelNames: ['kind', 'route'] as const, registers,
  });
  const pdsLookups = new BoundCounterFamily({
    name: `${prefix}pds_lookups_total`,
    help: 'PDS NHS number lookups, by result and cache disposition.',
    labelNames: ['result', 'cache'] as const, registers,
  });
  const pdsDuration = new BoundHistogramFamily({
    name: `${prefix}pds_lookup_duration_seconds`,
    help: 'Time taken by PDS NHS number lookups, by cache disposition.',
    labelNames: ['cache'] as const, buckets: PDS_BUCKETS, registers,
  });
  const tlsFailures = new Counter({
    name: `${prefix}tls_handshake_failures_total`,
    help: 'TLS handshakes on the mTLS port that failed, by reason.',
    labelNames: ['reason'] as const, registers,
  });
  const tlsConnections = new Counter({
    name: `${prefix}tls_connections_total`,
    help: 'TLS connections on the mTLS port that completed the handshake.',
    registers,
  });
  const identityRejections = new Counter({
    name: `${prefix}identity_rejections_total`,
    help: 'Verified client certificates that did not resolve to a registered endpoint, by reason.',
    labelNames: ['reason'] as const, registers,
  });
  const tlsConnectionsActive = new Gauge({
    name: `${prefix}tls_connections_active`,
    help: 'Open TLS connections on the mTLS port.',
    registers, aggregator: 'sum',
  });
  let inFlight = 0;
  new Gauge({
    name: `${prefix}requests_in_flight`,
    help: 'Requests received and not yet answered.',
    registers, aggregator: 'sum',
    collect() {
      this.set(inFlight);
    },
  });

  // Expiry is kept as a notAfter instant and turned into seconds left at scrape time.
  const fixedExpiries = new Map<string, number>();
  let upstreamClientExpiries = new Map<string, number>();
  new Gauge({
    name: `${prefix}certificate_expiry_remaining_seconds`,
    help: 'Seconds until a certificate expires (negative once expired); crl_next_update is the CRL nextUpdate.',
    labelNames: ['certificate'] as const, registers,
    // Across cluster workers the soonest expiry is the one that matters.
    aggregator: 'min',
    collect() {
      this.reset();
      const at = now();
      for (const [label, notAfter] of fixedExpiries) this.set({ certificate: label }, (notAfter - at) / 1000);
      for (const [label, notAfter] of upstreamClientExpiries) this.set({ certificate: label }, (notAfter - at) / 1000);
    },
  });

  // Workers reload together, so the count of reloads is the most any one process did, not their sum.
  const reloads = new Counter({
    name: `${prefix}reloads_total`,
    help: 'Reload attempts (SIGHUP or file change), by component and result.',
    labelNames: ['component', 'result'] as const, registers, aggregator: 'max',
  });
  const reloadLastFailed = new Gauge({
    name: `${prefix}reload_last_failed`,
    help: '1 when the latest reload attempt of a component failed and the previous version is still in use, else 0.',
    labelNames: ['component'] as const, registers, aggregator: 'max',
  });
  const ruleViolations = new Counter({
    name: `${prefix}rule_violations_total`,
    help: 'Catalogued rules that fired, by rule id and the action taken (enforce: refused; report: forwarded and logged).',
    labelNames: ['rule', 'action'] as const, registers,
  });
  const rateLimitedTotal = new Counter({
    name: `${prefix}rate_limited_total`,
    help: 'Requests answered 429 by the per-ASID rate limit, by NEMS operation.',
    labelNames: ['operation'] as const, registers,
  });

  // Workers reload together (max, like reloads_total); each worker fetches and checks on its own (sum).
  const trustRefusals = new Counter({
    name: `${prefix}trust_material_refusals_total`,
    help: 'Client-trust material (CA bundle, CRL) refused on a reload or from a CRL distribution point, by source and reason.',
    labelNames: ['source', 'reason'] as const, registers, aggregator: 'max',
  });
  const crlFetches = new Counter({
    name: `${prefix}crl_fetches_total`,
    help: 'Fetches of CRL distribution points, by result (updated, unchanged, failed, refused).',
    labelNames: ['result'] as const, registers,
  });
  const ocspChecks = new Counter({
    name: `${prefix}ocsp_checks_total`,
    help: 'OCSP statuses used for client certificates, by status and cache disposition.',
    labelNames: ['status', 'cache'] as const, registers,
  });
  // Info gauges (value 1, the labels carry the information): the same in every worker, so merged with max.
  const build = buildInfo();
  new Gauge({
    name: `${prefix}build_info`,
    help: 'Always 1; labels name the running build: package version, source revision, Node.js version.',
    labelNames: ['version', 'revision', 'node_version'] as const, registers, aggregator: 'max',
  }).set({ version: build.version, revision: build.revision, node_version: build.nodeVersion }, 1);
  const configInfo = new Gauge({
    name: `${prefix}config_info`,
    help: 'Always 1; hash fingerprints the effective configuration, so replicas running different settings stand out.',
    labelNames: ['hash'] as const, registers, aggregator: 'max',
  });
  const rateLimitStoreUp = new Gauge({
    name: `${prefix}rate_limit_store_available`,
    help: '1 when the rate-limit store answers (always 1 for the in-process store), 0 while decisions fall back.',
    registers, aggregator: 'min',
  });
  rateLimitStoreUp.set(1);
  const rateLimitFallbacks = new Counter({
    name: `${prefix}rate_limit_store_fallbacks_total`,
    help: 'Rate-limit decisions made without the shared store (unreachable or slow), by rateLimits.onStoreError policy.',
    labelNames: ['policy'] as const, registers,
  });

  const routeLabel = (route: NemsOperation | undefined) => (route === undefined ? 'unmatched' : allowListed(ROUTE_LABELS, route));
  const finite = (seconds: number | undefined): seconds is number => typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0;

  /** Returns a function that runs `close` at most once. */
  const once = (close: () => void) => {
    let open = true;
    return () => {
      if (open) {
        open = false;
        close();
      }
    };
  };

  /** Bound series by label key, so a request costs one string key and a map lookup per family. */
  const requestSeries = new Map<string, { readonly total: BoundCounter; readonly duration: BoundHistogram }>();
  const upstreamSeries = new Map<string, BoundHistogram>();
  const pdsSeries = new Map<string, { readonly total: BoundCounter; readonly duration: BoundHistogram }>();

  const pdsObserver: PdsObserver = {
    lookup(result: PdsResult | 'unavailable', cache: 'hit' | 'miss' | 'coalesced', seconds: number) {
      const key = `${result}|${cache}`;
      let series = pdsSeries.get(key);
      if (!series) {
        const cacheLabel = allowListed(PDS_CACHE_LABELS, cache);
        series = {
          total: pdsLookups.bind({ result: allowListed(PDS_RESULT_LABELS, result), cache: cacheLabel }),
          duration: pdsDuration.bind({ cache: cacheLabel }),
        };
        // Keys come from two bounded vocabularies; anything else maps to 'other' and is not kept.
        if (pdsSeries.size < 64) pdsSeries.set(key, series);
      }
      series.total.value++;
      if (finite(seconds)) series.duration.observe(seconds);
    },
  };
  const upstreamDurationFor = (route: NemsOperation | undefined): BoundHistogram => {
    const key = route ?? 'unmatched';
    let series = upstreamSeries.get(key);
    if (!series) {
      series = upstreamDuration.bind({ route: routeLabel(route) });
      if (upstreamSeries.size < 16) upstreamSeries.set(key, series);
    }
    return series;
  };

  if (opts.clusterWorker) attachClusterMetricsWorker(registry);

  return {
    registry,
    contentType: metricsContentType,
    render: async () => ({ contentType: metricsContentType, body: await registry.metrics() }),

    requestCompleted(route, outcome, status, seconds) {
      const statusClass = statusClassLabel(status);
      const key = `${route}|${outcome}|${statusClass}`;
      let series = requestSeries.get(key);
      if (!series) {
        const labels = { route: routeLabel(route), outcome: allowListed(OUTCOME_LABELS, outcome), status_class: statusClass };
        series = { total: requestsTotal.bind(labels), duration: requestDuration.bind(labels) };
        if (requestSeries.size < 256) requestSeries.set(key, series);
      }
      series.total.value++;
      if (finite(seconds)) series.duration.observe(seconds);
    },
    rejected(code, stage) {
      rejections.inc({ code: spineCodeLabel(code), stage: allowListed(STAGE_LABELS, stage) });
    },
    upstreamCompleted(route, seconds) {
      if (finite(seconds)) upstreamDurationFor(route).observe(seconds);
    },
    upstreamFailed(kind, route, seconds) {
      upstreamErrors.inc({ kind: allowListed(UPSTREAM_ERROR_LABELS, kind), route: routeLabel(route) });
      if (finite(seconds)) upstreamDurationFor(route).observe(seconds);
    },
    pdsObserver,
    tlsHandshakeFailed(err, tlsSocket) {
      const reason = classifyTlsError(err, tlsSocket);
      tlsFailures.inc({ reason });
      return reason;
    },
    identityRejected(reason) {
      identityRejections.inc({ reason: allowListed(IDENTITY_REJECTION_LABELS, reason) });
    },
    tlsConnectionOpened() {
      tlsConnections.inc();
      tlsConnectionsActive.inc();
      return once(() => tlsConnectionsActive.dec());
    },
    requestStarted() {
      inFlight++;
      return once(() => {
        inFlight--;
      });
    },
    setCertificateExpiry(certificate, notAfter) {
      const label = allowListed(FIXED_CERTIFICATE_LABELS, certificate);
      if (label === 'other') return;
      const at = notAfter?.getTime();
      if (at === undefined || !Number.isFinite(at)) fixedExpiries.delete(label);
      else fixedExpiries.set(label, at);
    },
    setUpstreamClientCertificateExpiries(notAfterByAsid) {
      const next = new Map<string, number>();
      for (const [asid, notAfter] of notAfterByAsid) {
        if (next.size >= MAX_UPSTREAM_CLIENT_CERTIFICATES) break;
        const label = asid === 'default' ? 'upstream_client:default' : upstreamClientCertificateLabel(asid);
        const at = notAfter.getTime();
        if (label && Number.isFinite(at)) next.set(label, at);
      }
      upstreamClientExpiries = next;
    },
    reload(component, ok) {
      const named = Object.prototype.hasOwnProperty.call(RELOAD_ALIASES, component) ? RELOAD_ALIASES[component as ReloadComponentAlias] : component;
      const label = allowListed(RELOAD_COMPONENT_LABELS, named);
      reloads.inc({ component: label, result: ok ? 'success' : 'failure' });
      reloadLastFailed.set({ component: label }, ok ? 0 : 1);
    },
    ruleViolation(rule, action) {
      ruleViolations.inc({ rule: allowListed(RULE_LABELS, rule), action });
    },
    rateLimited(operation) {
      rateLimitedTotal.inc({ operation: allowListed(OPERATION_LABELS, operation) });
    },
    trustMaterialRefused(source, reason) {
      trustRefusals.inc({ source: allowListed(TRUST_SOURCE_LABELS, source), reason: allowListed(TRUST_REFUSAL_LABELS, reason) });
    },
    crlFetched(result) {
      crlFetches.inc({ result: allowListed(CRL_FETCH_LABELS, result) });
    },
    ocspChecked(status, cache) {
      ocspChecks.inc({ status: allowListed(OCSP_STATUS_LABELS, status), cache: allowListed(OCSP_CACHE_LABELS, cache) });
    },
    configLoaded(hash) {
      configInfo.reset();
      configInfo.set({ hash: /^[0-9a-f]{16}$/.test(hash) ? hash : 'other' }, 1);
    },
    rateLimitStoreAvailable(available) {
      rateLimitStoreUp.set(available ? 1 : 0);
    },
    rateLimitStoreFallback(policy) {
      rateLimitFallbacks.inc({ policy: allowListed(['local', 'allow', 'deny'] as const, policy) });
    },
  };
}
