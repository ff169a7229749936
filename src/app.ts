// Assembles one gateway process from a validated Config: registry, PDS, upstream, stages, mTLS edge, admin
// listener, hot reload and graceful drain. main.ts (CLI) and the end-to-end tests both start it through here.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { startAdmin, type ReadinessCheck, type RunningAdmin } from './edge/admin.js';
import { startGateway, type RunningGateway } from './edge/gateway.js';
import { FileEndpointRegistry } from './identity/file-registry.js';
import { createMetrics, type GatewayMetrics } from './observability/metrics.js';
import { openPdsLookup } from './pds/index.js';
import { Pipeline } from './pipeline/pipeline.js';
import { createStages } from './pipeline/stages/index.js';
import { createEmbeddedUpstream } from './nems-core/embedded-upstream-factory.js';
import { createUpstream, type UpstreamHandle } from './upstream/index.js';
import { edgeObserverFor, recordCertificateExpiry } from './observability/edge-metrics.js';

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
  const metrics = options.metrics ?? createMetrics();
  const registry = new FileEndpointRegistry(config.registry.path);
  const pds = await openPdsLookup(config, { observer: metrics.pdsObserver, logger });
  const upstream = await createUpstream(config, logger, () => createEmbeddedUpstream(config, logger, pds.local));
  const stages = createStages(config, {
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
  });
  recordCertificateExpiry(metrics, config, registry, logger);
  logger.info({ host: gateway.host, port: gateway.port, upstream: upstream.upstream.kind }, 'NEMS gateway listening (mTLS)');

  let stopping = false;
  const checks: ReadinessCheck[] = [
    { name: 'listening', check: async () => ({ ok: gateway.server.listening && !stopping, reason: stopping ? 'draining' : gateway.server.listening ? `port ${gateway.port}` : 'not listening' }) },
    { name: 'config', check: async () => ({ ok: true, reason: 'validated at start-up' }) },
    { name: 'upstream', check: () => upstream.upstream.ready() },
    ...(config.pds.kind === 'fhir' ? [{ name: 'pds', check: () => pds.lookup.ready() }] : []),
  ];
  const admin = options.admin === false || !config.admin.enabled
    ? undefined
    : await startAdmin({ host: config.admin.host, port: config.admin.port, checks, metrics: () => metrics.render() });
  if (admin) logger.info({ host: config.admin.host, port: admin.port }, 'admin listener (/metrics, /healthz, /readyz)');

  async function reload(components: readonly ReloadComponent[] = ['tls', 'registry', 'pds']): Promise<{ ok: boolean; failures: string[] }> {
    const failures: string[] = [];
    const attempt = async (component: ReloadComponent, fn: () => void | Promise<void>) => {
      try {
        await fn();
        metrics.reload(component, true);
        logger.info({ component }, 'reloaded');
      } catch (err) {
        metrics.reload(component, false);
        failures.push(`${component}: ${(err as Error).message}`);
        logger.error({ component, problem: (err as Error).message }, 'reload refused; keeping the configuration in force');
      }
    };
    if (components.includes('tls')) await attempt('tls', () => gateway.reloadTls());
    if (components.includes('registry')) await attempt('registry', () => registry.reload());
    // The PDS cache notices the store's new generation and drops what it held.
    if (components.includes('pds') && pds.local) await attempt('pds', () => pds.local!.reload());
    recordCertificateExpiry(metrics, config, registry, logger);
    return { ok: failures.length === 0, failures };
  }

  const watchers: FSWatcher[] = [];
  if (config.lifecycle.watchFiles) {
    const files: [string, ReloadComponent][] = [
      [config.server.tls.cert, 'tls'], [config.server.tls.key, 'tls'], [config.server.tls.ca, 'tls'],
      ...(config.server.tls.crl ? [[config.server.tls.crl, 'tls'] as [string, ReloadComponent]] : []),
      [config.registry.path, 'registry'],
      ...(config.pds.kind === 'local' ? [[config.pds.local.path, 'pds'] as [string, ReloadComponent]] : []),
    ];
    const pending = new Map<ReloadComponent, NodeJS.Timeout>();
    const byDir = new Map<string, Map<string, ReloadComponent>>();
    for (const [file, component] of files) {
      const names = byDir.get(dirname(file)) ?? new Map<string, ReloadComponent>();
      names.set(basename(file), component);
      byDir.set(dirname(file), names);
    }
    // Folders, not files, are watched: certificate tooling and editors replace files by rename.
    for (const [dir, names] of byDir) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => {
          const component = filename ? names.get(filename.toString()) : undefined;
          if (!component) return;
          // Debounced: files are often written in several steps.
          clearTimeout(pending.get(component));
          pending.set(component, setTimeout(() => void reload([component]), 250));
        });
        watcher.on('error', () => watcher.close());
        watchers.push(watcher);
      } catch {
        logger.warn({ dir }, 'cannot watch folder for changes; SIGHUP still reloads');
      }
    }
  }

  async function stop(): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info({ deadlineMs: config.lifecycle.drainDeadlineMs, inFlight: gateway.inFlight }, 'draining');
    for (const w of watchers) w.close();
    await gateway.drain(config.lifecycle.drainDeadlineMs);
    await upstream.close();
    await pds.lookup.close();
    await admin?.close();
    logger.info('stopped');
  }

  if (options.signals) {
    process.on('SIGHUP', () => void reload());
    const onTerm = () => {
      void stop().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onTerm);
  }

  return { gateway, ...(admin ? { admin } : {}), metrics, upstream, reload, stop };
}
