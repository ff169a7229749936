// `nems-gateway start` (single process or one worker per core) and `nems-gateway check-config` (like nginx -t).
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { availableParallelism } from 'node:os';
import { startApp } from '../app.js';
import { ConfigError, configPathFromEnv, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startAdmin } from '../edge/admin.js';
import { fetchDistributionPointsOnce } from '../edge/crl-distribution-points.js';
import { loadEdgeTls } from '../edge/tls.js';
import { loadRegistryFile } from '../identity/file-registry.js';
import type { Endpoint } from '../identity/types.js';
import { createJwtStage } from '../pipeline/stages/jwt.js';
import { createLogger, stdoutDestination } from '../observability/logger.js';
import { createClusterPrimaryMetrics, createMetrics } from '../observability/metrics.js';
import { LocalPdsStore } from '../pds/local-store.js';
import { openRateLimitStore } from '../pipeline/rate-limit-store.js';
import { readCommandArgs, type CommandSpec, type OptionSpecs } from './args.js';

export const START_COMMAND = {
  name: 'start',
  usage: `usage: nems-gateway start [--config F]

Starts the gateway (the mTLS listener, the admin listener and, by default, the embedded NEMS core) and runs until
SIGTERM or SIGINT; SIGHUP reloads certificates, CRL, registry and local PDS data.

options:
  --config F    the configuration file (default: $NEMS_GATEWAY_CONFIG, else config/gateway.yaml)
  -h, --help    print this help
`,
  options: { config: { type: 'string' } },
} as const satisfies CommandSpec<OptionSpecs>;

export const CHECK_CONFIG_COMMAND = {
  name: 'check-config',
  usage: `usage: nems-gateway check-config [--config F]

Validates the configuration, certificates, CRL, endpoint registry, local PDS data and JWT keys exactly as start-up
would, without listening (like nginx -t). Exit 0 when valid, 1 when not, 2 for a bad command line.

options:
  --config F    the configuration file (default: $NEMS_GATEWAY_CONFIG, else config/gateway.yaml)
  -h, --help    print this help
`,
  options: { config: { type: 'string' } },
} as const satisfies CommandSpec<OptionSpecs>;

function readConfig(config: string | undefined): { config: Config; file: string } {
  return loadConfig(configPathFromEnv(config));
}

/** Validates everything start-up would load, without listening. Exit 0 when valid. */
export async function checkConfigCommand(argv: readonly string[]): Promise<number> {
  const args = readCommandArgs(CHECK_CONFIG_COMMAND, argv);
  if (typeof args === 'number') return args;
  try {
    const { config, file } = readConfig(args.values.config);
    // CRLs from distribution points are fetched as start-up would, then checked with the rest of the trust material.
    await fetchDistributionPointsOnce(config.server.tls);
    loadEdgeTls(config);
    const endpoints = loadRegistryFile(config.registry.path);
    if (config.pds.kind === 'local') await LocalPdsStore.open(config.pds.local.path);
    checkUpstreamCredentials(config, endpoints);
    // Loads and checks the signed-JWT keys (PEM files) exactly as start-up would.
    createJwtStage(config);
    // The shared rate-limit store's password file and CA, read at start-up.
    for (const file of [config.rateLimits.redis?.passwordFile, config.rateLimits.redis?.ca]) if (file) readFileSync(file);
    process.stdout.write(`${file}: configuration OK (${endpoints.length} endpoints, upstream ${config.upstream.kind}, PDS ${config.pds.kind})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `configuration check failed: ${(err as Error).message}`}\n`);
    return 1;
  }
}

/** Every client certificate the gateway would present upstream (its own and each ASID's) must load with its key. */
function checkUpstreamCredentials(config: Config, endpoints: readonly Endpoint[]): void {
  const check = (where: string, files: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined }) => {
    const read = (key: string, path: string | undefined) => {
      if (!path) return undefined;
      try {
        return readFileSync(path);
      } catch (err) {
        throw new Error(`${where}.${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    };
    const cert = read('cert', files.cert);
    const key = read('key', files.key);
    const ca = read('ca', files.ca);
    try {
      createSecureContext({ ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(ca ? { ca } : {}) });
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
  };
  if (config.upstream.tls) check('upstream.tls', config.upstream.tls);
  for (const endpoint of endpoints) {
    for (const asid of endpoint.asids.values()) {
      if (asid.upstreamClientCertificate) check(`registry ${endpoint.fqdn} ASID ${asid.asid} upstreamClientCertificate`, asid.upstreamClientCertificate);
    }
  }
}

/** Returns -1 (keep running) once listening; start-up failures exit non-zero with the reason. */
export async function startCommand(argv: readonly string[]): Promise<number> {
  const args = readCommandArgs(START_COMMAND, argv);
  if (typeof args === 'number') return args;
  let loaded: { config: Config; file: string };
  try {
    loaded = readConfig(args.values.config);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  const { config } = loaded;
  const logger = createLogger(config.logging.level, stdoutDestination(config.logging));
  const workers = config.lifecycle.workers === 0 ? availableParallelism() : config.lifecycle.workers;
  if (workers > 1 && cluster.isPrimary) return startPrimary(config, workers, logger);
  try {
    await startApp({
      config,
      logger: cluster.isWorker ? logger.child({ worker: cluster.worker?.id }) : logger,
      signals: true,
      admin: !cluster.isWorker,
      ...(cluster.isWorker ? { metrics: createMetrics({ clusterWorker: true }) } : {}),
    });
    if (cluster.isWorker) process.send?.({ type: 'nems-gateway:listening' });
    return -1;
  } catch (err) {
    logger.fatal({ problem: (err as Error).message }, 'start-up failed');
    // startApp closes what it opened; should any handle still linger, exit anyway.
    setTimeout(() => process.exit(1), 500).unref();
    return 1;
  }
}

/**
 * Worker-per-core mode: workers share the mTLS port (node:cluster hands connections round-robin); the primary
 * serves the aggregated admin endpoints, forwards SIGHUP, and on SIGTERM/SIGINT drains every worker and exits 0
 * only when each of them did. Rate-limit buckets are per worker (see the rate-limit stage).
 */
async function startPrimary(config: Config, workers: number, logger: ReturnType<typeof createLogger>): Promise<number> {
  const metrics = createClusterPrimaryMetrics();
  let stopping = false;
  let failedExits = 0;
  const online = new Set<number>();
  const everListened = new Set<number>();
  if (config.rateLimits.enabled && config.rateLimits.store === 'memory') {
    logger.warn({ workers }, 'rate limits are enforced per worker: a client spread over several connections can reach up to workers × the configured rate');
  }
  const fork = () => {
    const worker = cluster.fork();
    worker.on('message', (msg: unknown) => {
      if ((msg as { type?: string })?.type !== 'nems-gateway:listening') return;
      online.add(worker.id);
      everListened.add(worker.id);
      if (online.size === workers) logger.info({ workers }, 'all workers listening');
    });
    worker.on('exit', (code, signal) => {
      online.delete(worker.id);
      if (stopping) {
        if (code !== 0) failedExits++;
        logger.info({ worker: worker.id, code, signal }, 'worker stopped');
        return;
      }
      if (!everListened.has(worker.id)) {
        // A worker that cannot even start (bad file, port in use) would fail the same way forever.
        logger.fatal({ worker: worker.id, code, signal }, 'worker failed to start; stopping');
        shutdown(1);
        return;
      }
      logger.error({ worker: worker.id, code, signal }, 'worker exited; starting a replacement');
      setTimeout(() => {
        if (!stopping) fork();
      }, 500);
    });
  };
  for (let i = 0; i < workers; i++) fork();
  // The workers share Redis; the primary's own connection to it answers /readyz for the host.
  const sharedStore = config.admin.enabled ? await openRateLimitStore(config, logger, { rateLimitStoreAvailable() {}, rateLimitStoreFallback() {} }) : undefined;
  const admin = config.admin.enabled
    ? await startAdmin({
        host: config.admin.host,
        port: config.admin.port,
        metrics: () => metrics.render(),
        checks: [
          { name: 'workers', check: async () => ({ ok: !stopping && online.size > 0, reason: stopping ? 'draining' : `${online.size}/${workers} workers listening` }) },
          ...(sharedStore ? [{ name: 'rate-limit-store', check: async () => sharedStore.status() }] : []),
        ],
      })
    : undefined;
  logger.info({ workers, adminPort: admin?.port }, 'NEMS gateway primary started');
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });

  function shutdown(exitCode: number): void {
    if (stopping) return;
    stopping = true;
    logger.info({ workers: online.size, deadlineMs: config.lifecycle.drainDeadlineMs }, 'draining workers');
    const live = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead());
    let remaining = live.length;
    const done = () => {
      metrics.close();
      void sharedStore?.close();
      const code = exitCode || (failedExits > 0 ? 1 : 0);
      void (admin?.close() ?? Promise.resolve()).then(() => {
        logger.info({ code }, 'stopped');
        process.exit(code);
      });
    };
    if (remaining === 0) done();
    for (const w of live) {
      w!.once('exit', () => {
        if (--remaining === 0) done();
      });
      w!.process.kill('SIGTERM');
    }
    setTimeout(() => {
      logger.error('workers did not stop within the drain deadline');
      process.exit(1);
    }, config.lifecycle.drainDeadlineMs + 5000).unref();
  }
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  return -1;
}
