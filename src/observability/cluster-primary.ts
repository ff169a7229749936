// The cluster primary's metrics: its own process metrics plus every worker's registry, aggregated, ready for the
// admin port. Process metrics are summed, so CPU seconds and resident memory cover the whole process tree.
import { Registry } from 'prom-client';
import { createClusterMetricsAggregator, type ClusterPrimaryLike } from './cluster-metrics.js';
import { registerDefaultMetrics } from './default-metrics.js';
import type { MetricsExposition } from './metrics.js';

export interface ClusterPrimaryMetricsOptions {
  /** Include the primary's own process metrics. Default true. */
  readonly collectDefault?: boolean;
  /** How long a scrape waits for the workers. Default 3000 ms. */
  readonly timeoutMs?: number;
  readonly cluster?: ClusterPrimaryLike;
}

export interface ClusterPrimaryMetrics {
  /** The primary's own registry (merged into every scrape). */
  readonly registry: Registry;
  /** Aggregated exposition; rejects when a ready worker does not answer in time. */
  render(): Promise<MetricsExposition>;
  readyWorkers(): number;
  close(): void;
}

export function createClusterPrimaryMetrics(opts: ClusterPrimaryMetricsOptions = {}): ClusterPrimaryMetrics {
  const registry = new Registry();
  if (opts.collectDefault ?? true) registerDefaultMetrics(registry);
  const aggregator = createClusterMetricsAggregator({
    primaryRegistry: registry,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.cluster ? { cluster: opts.cluster } : {}),
  });
  return {
    registry,
    render: async () => ({ contentType: aggregator.contentType, body: await aggregator.metrics() }),
    readyWorkers: () => aggregator.readyWorkers(),
    close: () => aggregator.close(),
  };
}
