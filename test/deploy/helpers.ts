// Shared by the deploy tests: promtool, a registry with a sample of every gateway metric, and metric-name
// extraction from exposition text and PromQL.
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createClusterMetricsAggregator, type ClusterPrimaryLike } from '../../src/observability/cluster-metrics.js';
import { createMetrics, type GatewayMetrics } from '../../src/observability/metrics.js';
import { findExternalTool } from '../observability/helpers/external-tool.js';

export const promtool = findExternalTool('promtool', 'apt-get install --no-install-recommends prometheus');

export interface PromtoolRun {
  readonly status: number | null;
  readonly output: string;
}

export function runPromtool(args: readonly string[], input?: string, cwd?: string): PromtoolRun {
  const result = spawnSync(promtool.require(), args, {
    ...(input !== undefined ? { input } : {}), ...(cwd ? { cwd } : {}), encoding: 'utf8', timeout: 30_000,
  });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

/** Gateway metrics with at least one sample recorded in every gateway metric. */
export function metricsWithEverySample(): GatewayMetrics {
  const metrics = createMetrics({ now: () => Date.UTC(2030, 0, 1) });
  metrics.requestCompleted('create', 'forwarded', 201, 0.003);
  metrics.requestCompleted(undefined, 'rejected', 404, 0.0001);
  metrics.rejected('INVALID_NHS_NUMBER', 'nhs-numbers');
  metrics.upstreamCompleted('create', 0.002);
  metrics.upstreamFailed('timeout', 'publish', 30);
  metrics.pdsObserver.lookup('traced', 'miss', 0.05);
  metrics.tlsHandshakeFailed({ code: 'CERT_HAS_EXPIRED' });
  metrics.identityRejected('unregistered-fqdn');
  metrics.tlsConnectionOpened();
  metrics.requestStarted();
  metrics.setCertificateExpiry('server', new Date(Date.UTC(2030, 6, 1)));
  metrics.setCertificateExpiry('ca', new Date(Date.UTC(2035, 0, 1)));
  metrics.setCertificateExpiry('crl_next_update', new Date(Date.UTC(2030, 0, 8)));
  metrics.setUpstreamClientCertificateExpiries(new Map([['default', new Date(Date.UTC(2031, 0, 1))], ['200000000101', new Date(Date.UTC(2030, 3, 1))]]));
  metrics.reload('registry', true);
  metrics.reload('certificate', false);
  metrics.rateLimited('publish');
  metrics.ruleViolation('headers.to-asid', 'report');
  metrics.trustMaterialRefused('reload', 'crl-expired');
  metrics.crlFetched('updated');
  metrics.ocspChecked('good', 'miss');
  metrics.configLoaded('0123456789abcdef');
  metrics.rateLimitStoreFallback('local');
  return metrics;
}

/** The exposition the primary serves in cluster mode (no workers: just the primary registry, aggregated). */
export async function aggregatedExposition(metrics: GatewayMetrics): Promise<string> {
  const noWorkers = Object.assign(new EventEmitter(), { workers: {} }) as unknown as ClusterPrimaryLike;
  const aggregator = createClusterMetricsAggregator({ cluster: noWorkers, primaryRegistry: metrics.registry });
  try {
    return await aggregator.metrics();
  } finally {
    aggregator.close();
  }
}

/** Metric family names declared (# TYPE) and sample names present in an exposition. */
export function expositionNames(text: string): { readonly families: Set<string>; readonly samples: Set<string> } {
  const families = new Set<string>();
  const samples = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) families.add(type[1]!);
    else if (line && !line.startsWith('#')) samples.add(/^[^{ ]+/.exec(line)![0]);
  }
  return { families, samples };
}

/** Every gateway, process_ or nodejs_ metric name a PromQL expression mentions. */
export function metricsInExpression(expr: string): string[] {
  return [...expr.matchAll(/\b(?:nems_gateway|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);
}
