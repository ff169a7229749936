// Rate-limit stage (issue 6 point 6): a token bucket per (ASID, NEMS operation), answering 429
// TOO_MANY_REQUESTS with the Spine Security Proxy's X-Rate-Limit-* headers (docs/specification.md §8).
//
// Decisions:
// - Whose bucket: this stage runs before the headers stage, so `fromASID` is not yet verified. It selects a
//   bucket only when it names one of the ASIDs registered to the endpoint the client certificate resolved to;
//   anything else (missing, unregistered, duplicated) shares one bucket per endpoint FQDN. Bucket keys therefore
//   come only from the registry, and a client cannot create buckets by inventing ASIDs.
// - Which rule: rateLimits.perAsid[asid][operation], then perAsid[asid].default, then the same two keyed by the
//   endpoint FQDN (a per-endpoint rule), then rateLimits.default. Every operation has its own bucket, even when
//   two operations share a rule. The endpoint bucket uses perAsid[fqdn] or the default rule.
// - Headers on 429: X-Rate-Limit-Limit = the bucket size (burst), X-Rate-Limit-Remaining = 0,
//   X-Rate-Limit-Reset = whole seconds (rounded up, at least 1) until one token is available — a delta, not an
//   epoch time — and Retry-After with the same value.
// - Passing requests get no X-Rate-Limit-* headers: a stage can only add headers to its own rejection, and
//   ctx.forwardHeaders goes upstream. The tokens left are written to ctx.audit.rateLimitRemaining instead, where
//   the edge may pick them up if it ever wants to send them.
// - Where buckets live (rateLimits.store): `memory` keeps them in this process, so with N cluster workers or
//   replicas a client spread over several connections can get up to N times the configured rate; `redis` keeps
//   the same buckets under the same keys in Redis (../rate-limit-redis.ts), one budget for every process.
// - Memory: a bucket that has refilled completely behaves exactly like a new one, so such buckets are swept
//   (at most once a second); `maxBuckets` caps the map, evicting the least recently used.
import type { Config, RateLimitRule } from '../../config/schema.js';
import type { NemsOperation } from '../../nems/operations.js';
import { PASS, reject, type RequestContext, type Stage, type StageResult } from '../types.js';

export interface RateLimitStageOptions {
  /** Clock in milliseconds; monotonic `performance.now()` by default. */
  readonly now?: () => number;
  /** Called for every request answered 429 (e.g. GatewayMetrics.rateLimited). */
  readonly onLimited?: (operation: NemsOperation) => void;
  /** Most buckets kept at once. Default 10 000. */
  readonly maxBuckets?: number;
  /** Where the buckets live; an in-process memory store (createMemoryBucketStore) by default. */
  readonly store?: TokenBucketStore;
}

/** What taking one token from a bucket gave. */
export interface BucketOutcome {
  readonly allowed: boolean;
  /** Whole tokens left after this request (allowed), when the store knows. */
  readonly remaining?: number;
  /** Whole seconds, at least 1, until a token is available (refused). */
  readonly resetSeconds?: number;
  /** Set when the shared store could not decide and the rateLimits.onStoreError policy did. */
  readonly fallback?: 'local' | 'allow' | 'deny';
}

/**
 * Token buckets by key: a new bucket holds `rule.burst` tokens and refills at `rule.ratePerSecond`, up to the
 * burst; taking needs one whole token. The memory store answers synchronously, a shared one asynchronously.
 */
export interface TokenBucketStore {
  take(key: string, rule: RateLimitRule): BucketOutcome | Promise<BucketOutcome>;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  readonly rule: RateLimitRule;
}

const SWEEP_INTERVAL_MS = 1000;

type RuleTable = Config['rateLimits']['perAsid'];

function ownRule(perAsid: RuleTable, subject: string, operation: NemsOperation): RateLimitRule | undefined {
  if (!Object.prototype.hasOwnProperty.call(perAsid, subject)) return undefined;
  const rules = perAsid[subject]!;
  return rules[operation] ?? rules.default;
}

function tokensAt(bucket: Bucket, now: number): number {
  const elapsedMs = Math.max(0, now - bucket.updatedAt);
  return Math.min(bucket.rule.burst, bucket.tokens + (elapsedMs * bucket.rule.ratePerSecond) / 1000);
}

/** This process's buckets; also the `local` fallback of the Redis store. */
export function createMemoryBucketStore(opts: { now?: () => number; maxBuckets?: number } = {}): TokenBucketStore {
  const now = opts.now ?? (() => performance.now());
  const maxBuckets = opts.maxBuckets ?? 10_000;
  const buckets = new Map<string, Bucket>();
  let lastSweep = Number.NEGATIVE_INFINITY;

  const sweep = (at: number) => {
    lastSweep = at;
    for (const [key, bucket] of buckets) if (tokensAt(bucket, at) >= bucket.rule.burst) buckets.delete(key);
    // Map order is least recently used first (every use re-inserts); trim to 90% so this is not redone per request.
    const target = Math.floor(maxBuckets * 0.9);
    for (const key of buckets.keys()) {
      if (buckets.size <= target) break;
      buckets.delete(key);
    }
  };

  return {
    take(key: string, rule: RateLimitRule): BucketOutcome {
      const at = now();
      if (at - lastSweep >= SWEEP_INTERVAL_MS || buckets.size > maxBuckets) sweep(at);
      let bucket = buckets.get(key);
      if (bucket) {
        buckets.delete(key);
        bucket.tokens = tokensAt(bucket, at);
        bucket.updatedAt = at;
      } else {
        bucket = { tokens: rule.burst, updatedAt: at, rule };
      }
      buckets.set(key, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { allowed: true, remaining: Math.floor(bucket.tokens) };
      }
      return { allowed: false, resetSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / bucket.rule.ratePerSecond)) };
    },
  };
}

export function createRateLimitStage(config: Config, opts: RateLimitStageOptions = {}): Stage {
  const limits = config.rateLimits;
  if (!limits.enabled) return { name: 'rate-limit', run: () => PASS };
  const store = opts.store ?? createMemoryBucketStore({
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.maxBuckets !== undefined ? { maxBuckets: opts.maxBuckets } : {}),
  });

  const ruleFor = (asid: string | undefined, fqdn: string, operation: NemsOperation): RateLimitRule =>
    (asid !== undefined ? ownRule(limits.perAsid, asid, operation) : undefined) ??
    ownRule(limits.perAsid, fqdn, operation) ??
    limits.default;

  const decide = (ctx: RequestContext, operation: NemsOperation, rule: RateLimitRule, outcome: BucketOutcome): StageResult => {
    if (outcome.fallback) ctx.audit['rateLimitFallback'] = outcome.fallback;
    if (outcome.allowed) {
      if (outcome.remaining !== undefined) ctx.audit['rateLimitRemaining'] = outcome.remaining;
      return PASS;
    }
    const resetSeconds = String(outcome.resetSeconds ?? 1);
    opts.onLimited?.(operation);
    return reject('limits.rate', `Rate limit exceeded for the sending ASID and the ${operation} operation`, {
      headers: {
        'X-Rate-Limit-Limit': String(rule.burst),
        'X-Rate-Limit-Remaining': '0',
        'X-Rate-Limit-Reset': resetSeconds,
        'Retry-After': resetSeconds,
      },
    });
  };

  return {
    name: 'rate-limit',
    run(ctx: RequestContext): StageResult | Promise<StageResult> {
      const operation = ctx.operation;
      if (operation === undefined) return reject('gateway.internal', 'Rate limit applied before the route was matched');
      const claimed = ctx.headers['fromasid'];
      const asid = typeof claimed === 'string' && ctx.endpoint.asids.has(claimed) ? claimed : undefined;
      // ASIDs are 12 digits and FQDNs contain a dot, so the two kinds of key cannot collide.
      const key = `${asid ?? ctx.endpoint.fqdn} ${operation}`;
      const rule = ruleFor(asid, ctx.endpoint.fqdn, operation);
      const outcome = store.take(key, rule);
      return outcome instanceof Promise
        ? outcome.then((taken) => decide(ctx, operation, rule, taken))
        : decide(ctx, operation, rule, outcome);
    },
  };
}
