// Assembles one gateway process from a validated Config: registry, PDS, upstream, stages, mTLS edge, admin
// listener, hot reload and graceful drain. main.ts (CLI) and the end-to-end tests both start it through here.
import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { startAdmin, type ReadinessCheck, type RunningAdmin } from './edge/admin.js';
import { watchFileChanges, type WatchedFile } from './edge/file-watch.js';
import { startGateway, type RunningGateway } from './edge/gateway.js';
import { createConnectionAdmission } from './edge/admission.js';
import { createCrlDistributionPoints } from './edge/crl-distribution-points.js';
import { trackLiveConnections, type LiveConnections } from './edge/live-connections.js';
import { createOcspChecker } from './edge/ocsp.js';
import { loadEdgeTls, type EdgeTlsMaterial } from './edge/tls.js';
import { TrustMaterialError, describeTrustMaterial, revokedByIssuer } from './edge/trust-material.js';
import { openEndpointRegistry } from './identity/open-registry.js';
import { createMetrics, type GatewayMetrics } from './observability/metrics.js';
import { openPdsLookup } from './pds/index.js';
import type { PdsLookup } from './pds/types.js';
import { tcpReachable } from './upstream/reachability.js';
import { RequestLifecycle } from './pipeline/request-lifecycle.js';
import { createStages } from './pipeline/stages/index.js';
import { createUpstream, type UpstreamHandle } from './upstream/index.js';
import { edgeObserverFor, recordCertificateExpiry } from './observability/edge-metrics.js';
import { configFingerprint } from './config/fingerprint.js';
import { openRateLimitStore } from './pipeline/rate-limit-store.js';

export interface AppOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Share one metrics registry (cluster workers, tests); a fresh one otherwise. */
  readonly metrics?: GatewayMetrics;
  readonly now?: () => number;
  /** Install SIGHUP/SIGTERM handlers (the CLI does; tests don't). */
  readonly signals?: boolean;
  /** Serve the admin listener from this process (false in cluster workers: the primary serves it). */
  readonly admin?: boolean;
}

export type ReloadComponent = 'tls' | 'registry' | 'pds';

export interface RunningApp {
  readonly gateway: RunningGateway;
  readonly admin?: RunningAdmin;
  readonly metrics: GatewayMetrics;
  readonly upstream: UpstreamHandle;
  /** Reloads certificates, CRL, registry and local PDS data; a bad file keeps the old one and is reported. */
  reload(components?: readonly ReloadComponent[]): Promise<{ ok: boolean; failures: string[] }>;
  /** Graceful drain: readiness fails first, in-flight requests finish, then everything closes. */
  stop(): Promise<void>;
}

export async function startApp(options: AppOptions): Promise<RunningApp> {
  const { config, logger } = options;
  applyRuntimeTuning(config.runtime);
  const metrics = options.metrics ?? createMetrics();
  metrics.configLoaded(configFingerprint(config));
  // A start-up failure closes whatever was already opened, so the process can exit with its error.
  const opened: Array<() => Promise<unknown>> = [];
  const undo = async (err: unknown): Promise<never> => {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw err;
  };
  const registry = await openEndpointRegistry(config, { logger, metricsRegistry: metrics.registry });
  opened.push(async () => registry.close?.());
  const pds = await openPdsLookup(config, { observer: metrics.pdsObserver, logger });
  opened.push(() => pds.lookup.close());
  // The embedded core (better-sqlite3) is loaded only when it is the upstream: a gateway in front of Spine never pays its memory.
  let listeningPort = config.server.port;
  const embedded = async () =>
    (await import('./nems-core/embedded-upstream-factory.js')).createEmbeddedUpstream(config, logger, pds.local, () => listeningPort);
  const upstream = await createUpstream(config, logger, embedded).catch(undo);
  opened.push(() => upstream.close());
  const rateLimitStore = await openRateLimitStore(config, logger, metrics).catch(undo);
  if (rateLimitStore) opened.push(() => rateLimitStore.close());
  const stages = createStages(config, {
    ...(rateLimitStore ? { rateLimitStore } : {}),
    pds: pds.lookup,
    ...(options.now ? { now: options.now } : {}),
    onRateLimited: (operation) => metrics.rateLimited(operation),
  });
  // Client-trust material: CRLs from distribution points are fetched before it is validated (fail closed: the
  // gateway does not start without a current CRL for every CA, unless server.tls.revocation is none).
  const tlsConfig = config.server.tls;
  let listening = false;
  const distributionPoints = tlsConfig.revocation === 'crl' && tlsConfig.crlDistributionPoints.urls.length > 0
    ? createCrlDistributionPoints({
        tls: tlsConfig,
        logger,
        observer: { fetched: (result) => metrics.crlFetched(result), refused: (reason) => metrics.trustMaterialRefused('distribution-point', reason) },
        onUpdated: () => {
          if (listening) void reload(['tls']);
        },
      })
    : undefined;
  await distributionPoints?.fetchAll();
  let tlsInForce: EdgeTlsMaterial = await Promise.resolve().then(() => loadEdgeTls(config)).catch(undo);
  const ocsp = tlsConfig.revocation === 'crl' && tlsConfig.ocsp.enabled
    ? createOcspChecker({ config: tlsConfig.ocsp, logger, observer: { checked: (status, cache) => metrics.ocspChecked(status, cache) } })
    : undefined;
  let live: LiveConnections | undefined;
  const admit = createConnectionAdmission({ tls: tlsConfig, live: () => live, issuers: () => tlsInForce.trust.cas, ...(ocsp ? { ocsp } : {}) });
  const lifecycle = new RequestLifecycle({ config, registry, stages, ...(options.now ? { now: options.now } : {}) });
  const gateway = await startGateway({
    config,
    lifecycle,
    upstream: upstream.upstream,
    logger,
    observer: edgeObserverFor(metrics),
    tls: tlsInForce,
    admit,
  }).catch(undo);
  opened.push(() => gateway.drain(0));
  listeningPort = gateway.port;
  const recordExpiry = (refresh?: { edge: boolean; upstream: boolean }) => {
    recordCertificateExpiry(metrics, config, registry, logger, refresh);
    // The CRLs in force (file and distribution points), not whatever the CRL file now holds.
    if (refresh?.edge ?? true) metrics.setCertificateExpiry('crl_next_update', tlsInForce.trust.earliestNextUpdate);
  };
  recordExpiry();
  logger.info({ host: gateway.host, port: gateway.port, upstream: upstream.upstream.kind }, 'NEMS gateway listening (mTLS)');

  live = trackLiveConnections(gateway.server);
  listening = true;
  distributionPoints?.start();
  let stopping = false;
  /** Components whose latest reload was refused (the previous version is still in force). */
  const refused = new Set<ReloadComponent>();
  const checks: ReadinessCheck[] = [
    { name: 'listening', check: async () => ({ ok: gateway.server.listening && !stopping, reason: stopping ? 'draining' : gateway.server.listening ? `port ${gateway.port}` : 'not listening' }) },
    {
      name: 'config',
      // A refused reload leaves a valid configuration in force: still ready, but the reason says so.
      check: async () => ({
        ok: true,
        reason: refused.size ? `valid; latest reload refused for ${[...refused].join(', ')} (previous version in force)` : 'valid',
      }),
    },
    {
      name: 'revocation',
      // Not ready once a CRL in force is stale (OpenSSL then refuses that CA's clients); the fetchers are reported.
      check: async () => {
        const material = describeTrustMaterial(tlsInForce.trust, new Date());
        const parts = [material.reason];
        if (distributionPoints) parts.push(`distribution points: ${distributionPoints.readiness().reason}`);
        if (ocsp) parts.push(`OCSP: ${ocsp.readiness().reason}`);
        return { ok: material.current, reason: parts.join('; ') };
      },
    },
    { name: 'upstream', check: () => upstream.upstream.ready() },
    ...(registry.ready ? [{ name: 'registry', check: () => registry.ready!() }] : []),
    ...(config.pds.kind === 'fhir' && config.pds.fhir ? [{ name: 'pds', check: () => remotePdsReady(pds.lookup, config.pds.fhir!) }] : []),
    ...(rateLimitStore ? [{ name: 'rate-limit-store', check: async () => rateLimitStore.status() }] : []),
  ];
  const admin = options.admin === false || !config.admin.enabled
    ? undefined
    : await startAdmin({ host: config.admin.host, port: config.admin.port, checks, metrics: () => metrics.render() }).catch(undo);
  if (admin) logger.info({ host: config.admin.host, port: admin.port }, 'admin listener (/metrics, /healthz, /readyz)');

  async function reloadNow(components: readonly ReloadComponent[]): Promise<{ ok: boolean; failures: string[] }> {
    const failures: string[] = [];
    const attempt = async (component: ReloadComponent, fn: () => void | Promise<void>): Promise<boolean> => {
      try {
        await fn();
        refused.delete(component);
        metrics.reload(component, true);
        logger.info({ component }, 'reloaded');
        return true;
      } catch (err) {
        refused.add(component);
        metrics.reload(component, false);
        failures.push(`${component}: ${(err as Error).message}`);
        logger.error({ component, problem: (err as Error).message }, 'reload refused; keeping the configuration in force');
        return false;
      }
    };
    let tlsOk = false;
    let registryOk = false;
    if (components.includes('tls')) {
      tlsOk = await attempt('tls', () => {
        let next: EdgeTlsMaterial;
        try {
          next = loadEdgeTls(config);
        } catch (err) {
          if (err instanceof TrustMaterialError) metrics.trustMaterialRefused('reload', err.reason);
          throw err;
        }
        gateway.reloadTls(next);
        tlsInForce = next;
      });
      if (tlsOk) closeRevokedConnections();
    }
    if (components.includes('registry')) registryOk = await attempt('registry', () => registry.reload());
    // The PDS cache notices the store's new generation and drops what it held.
    if (components.includes('pds') && pds.local) await attempt('pds', () => pds.local!.reload());
    if (tlsOk || registryOk) recordExpiry({ edge: tlsOk, upstream: registryOk });
    logger.info({ components, ok: failures.length === 0 }, 'reload finished');
    return { ok: failures.length === 0, failures };
  }

  function closeRevokedConnections(): void {
    const closed = live?.closeRevoked(revokedByIssuer(tlsInForce.trust.crls)) ?? 0;
    if (closed) logger.warn({ connections: closed }, 'closing live connections whose client certificate the new CRL revokes');
  }

  // Reloads run one at a time (SIGHUP and a file change can coincide).
  let reloading: Promise<unknown> = Promise.resolve();
  function reload(components: readonly ReloadComponent[] = ['tls', 'registry', 'pds']): Promise<{ ok: boolean; failures: string[] }> {
    if (stopping) return Promise.resolve({ ok: false, failures: ['draining: reload ignored'] });
    const run = reloading.then(() => reloadNow(components));
    reloading = run.catch(() => undefined);
    return run;
  }

  let unwatch = () => {};
  if (config.lifecycle.watchFiles) {
    const tls = config.server.tls;
    const files: WatchedFile<ReloadComponent>[] = [
      { path: tls.cert, component: 'tls' }, { path: tls.key, component: 'tls' }, { path: tls.ca, component: 'tls' },
      ...(tls.crl ? [{ path: tls.crl, component: 'tls' as const }] : []),
      { path: config.registry.path, component: 'registry' },
      ...(config.pds.kind === 'local' ? [{ path: config.pds.local.path, component: 'pds' as const }] : []),
    ];
    unwatch = watchFileChanges(files, (changed) => {
      logger.info({ components: changed }, 'configuration files changed');
      void reload(changed);
    }, { onWatchError: (dir) => logger.warn({ dir }, 'cannot watch folder for changes; SIGHUP still reloads') });
  }

  let stopped: Promise<void> | undefined;
  async function drainAndClose(): Promise<void> {
    stopping = true;
    logger.info({ deadlineMs: config.lifecycle.drainDeadlineMs, inFlight: gateway.inFlight }, 'draining');
    unwatch();
    distributionPoints?.stop();
    await reloading;
    // Readiness fails first: give load balancers time to notice before the listener closes.
    if (config.lifecycle.readinessGraceMs > 0) await new Promise((r) => setTimeout(r, config.lifecycle.readinessGraceMs));
    // At the deadline every socket goes, even one that never finished its handshake (the HTTP server ignores those).
    const force = setTimeout(() => {
      const destroyed = live?.destroyAll() ?? 0;
      if (destroyed) logger.warn({ connections: destroyed }, 'drain deadline passed; closing the connections left');
    }, config.lifecycle.drainDeadlineMs + 100);
    await gateway.drain(config.lifecycle.drainDeadlineMs);
    clearTimeout(force);
    await upstream.close();
    await registry.close?.();
    await pds.lookup.close();
    await rateLimitStore?.close();
    await admin?.close();
    logger.info('stopped');
  }
  /** Idempotent: a second signal waits for the drain already under way. */
  const stop = (): Promise<void> => (stopped ??= drainAndClose());

  if (options.signals) {
    process.on('SIGHUP', () => void reload());
    const onTerm = () => {
      void stop().then(() => process.exit(0), (err: unknown) => {
        logger.error({ problem: (err as Error).message }, 'drain failed');
        process.exit(1);
      });
    };
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onTerm);
  }

  return { gateway, ...(admin ? { admin } : {}), metrics, upstream, reload, stop };
}

/**
 * A remote PDS is ready when its client saw no recent failure and its host accepts a connection now: the client
 * alone only knows about calls already made, so a PDS that went away before any lookup would look ready.
 */
async function remotePdsReady(lookup: PdsLookup, fhir: NonNullable<Config['pds']['fhir']>): Promise<{ ok: boolean; reason: string }> {
  const passive = await lookup.ready();
  if (!passive.ok) return passive;
  const probe = await tcpReachable(new URL(fhir.baseUrl), Math.min(fhir.timeoutMs, 2000));
  return { ok: probe.ok, reason: `${passive.reason}; ${probe.reason}` };
}

/**
 * Process-wide V8 tuning from config.runtime. --heap-growing-percent is read by V8 whenever it sets the next
 * full-GC limit, so setting it after start-up takes effect at the next collection (test/observability/runtime-tuning.test.ts).
 */
export function applyRuntimeTuning(runtime: Config['runtime']): void {
  setFlagsFromString(`--heap-growing-percent=${runtime.heapGrowingPercent}`);
}
