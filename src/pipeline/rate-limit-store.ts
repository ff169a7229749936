// Opens the rate-limit store the configuration names: nothing for `memory` (the stage keeps its own buckets), or
// the shared Redis store with this process's memory buckets as its `local` fallback.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { RedisBucketStore } from './rate-limit-redis.js';
import { createMemoryBucketStore } from './stages/rate-limit.js';

export async function openRateLimitStore(
  config: Config,
  logger: Logger,
  metrics: Pick<GatewayMetrics, 'rateLimitStoreAvailable' | 'rateLimitStoreFallback'>,
): Promise<RedisBucketStore | undefined> {
  const limits = config.rateLimits;
  if (!limits.enabled || limits.store !== 'redis' || !limits.redis) return undefined;
  // Loaded only for the redis store: ioredis is ~6 MB of RSS a gateway with memory buckets should not pay.
  const { createRedisBucketStore } = await import('./rate-limit-redis.js');
  const store = createRedisBucketStore({
    redis: limits.redis,
    onStoreError: limits.onStoreError,
    local: createMemoryBucketStore(),
    logger,
    onAvailability: (available) => metrics.rateLimitStoreAvailable(available),
    onFallback: (policy) => metrics.rateLimitStoreFallback(policy),
  });
  // Start with shared buckets when Redis is there; when it is not, start anyway and fall back until it is.
  if (!(await store.connected())) logger.warn({ policy: limits.onStoreError }, 'rate-limit store not reachable at start-up; falling back until it is');
  return store;
}
