// Assembles one gateway process from a validated Config: registry, PDS, upstream, stages, mTLS edge, admin
// listener, hot reload and graceful drain. main.ts (CLI) and the end-to-end tests both start it through here.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { startAdmin, type ReadinessCheck, type RunningAdmin } from './edge/admin.js';
import { watchFileChanges, type WatchedFile } from './edge/file-watch.js';
import { startGateway, type RunningGateway } from './edge/gateway.js';
import { trackLiveConnections } from './edge/live-connections.js';
import { FileEndpointRegistry } from './identity/file-registry.js';
import { createMetrics, type GatewayMetrics } from './observability/metrics.js';
import { openPdsLookup } from './pds/index.js';
import type { PdsLookup } from './pds/types.js';
import { tcpReachable } from './upstream/reachability.js';
import { Pipeline } from './pipeline/pipeline.js';
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
  const registry = new FileEndpointRegistry(config.registry.path);
  // A start-up failure closes whatever was already opened, so the process can exit with its error.
  const opened: Array<() => Promise<unknown>> = [];
  const undo = async (err: unknown): Promise<never> => {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw err;
  };
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
  const gateway = await startGateway({
    config,
    registry,
    pipeline: new Pipeline(stages),
    upstream: upstream.upstream,
    logger,
    observer: edgeObserverFor(metrics),
    ...(options.now ? { now: options.now } : {}),
  }).catch(undo);
  opened.push(() => gateway.drain(0));
  listeningPort = gateway.port;
  recordCertificateExpiry(metrics, config, registry, logger);
  logger.info({ host: gateway.host, port: gateway.port, upstream: upstream.upstream.kind }, 'NEMS gateway listening (mTLS)');

  const live = trackLiveConnections(gateway.server);
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
    { name: 'upstream', check: () => upstream.upstream.ready() },
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
      tlsOk = await attempt('tls', () => gateway.reloadTls());
      if (tlsOk && config.server.tls.crl) closeRevokedConnections(config.server.tls.crl);
    }
    if (components.includes('registry')) registryOk = await attempt('registry', () => registry.reload());
    // The PDS cache notices the store's new generation and drops what it held.
    if (components.includes('pds') && pds.local) await attempt('pds', () => pds.local!.reload());
    if (tlsOk || registryOk) recordCertificateExpiry(metrics, config, registry, logger, { edge: tlsOk, upstream: registryOk });
    logger.info({ components, ok: failures.length === 0 }, 'reload finished');
    return { ok: failures.length === 0, failures };
  }

  function closeRevokedConnections(crlPath: string): void {
    try {
      const closed = live.closeRevoked(readFileSync(crlPath, 'utf8'));
      if (closed) logger.warn({ connections: closed }, 'closing live connections whose client certificate the new CRL revokes');
    } catch (err) {
      logger.warn({ problem: (err as NodeJS.ErrnoException).code ?? 'unreadable' }, 'cannot re-check live connections against the new CRL');
    }
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
    await reloading;
    // Readiness fails first: give load balancers time to notice before the listener closes.
    if (config.lifecycle.readinessGraceMs > 0) await new Promise((r) => setTimeout(r, config.lifecycle.readinessGraceMs));
    // At the deadline every socket goes, even one that never finished its handshake (the HTTP server ignores those).
    const force = setTimeout(() => {
      const destroyed = live.destroyAll();
      if (destroyed) logger.warn({ connections: destroyed }, 'drain deadline passed; closing the connections left');
    }, config.lifecycle.drainDeadlineMs + 100);
    await gateway.drain(config.lifecycle.drainDeadlineMs);
    clearTimeout(force);
    await upstream.close();
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
