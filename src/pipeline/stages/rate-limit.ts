// Rate-limit stage (issue 6 point 6): a token bucket per (ASID, NEMS operation), answering 429
// TOO_MANY_REQUESTS with the Spine Security Proxy's X-Rate-Limit-* headers (spec digest §8).
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
// - Buckets are per process: with N cluster workers a client spread over several connections can get up to N
//   times the configured rate.
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

export function createRateLimitStage(config: Config, opts: RateLimitStageOptions = {}): Stage {
  const limits = config.rateLimits;
  if (!limits.enabled) return { name: 'rate-limit', run: () => PASS };

  const now = opts.now ?? (() => performance.now());
  const maxBuckets = opts.maxBuckets ?? 10_000;
  const buckets = new Map<string, Bucket>();
  let lastSweep = Number.NEGATIVE_INFINITY;

  const ruleFor = (asid: string | undefined, fqdn: string, operation: NemsOperation): RateLimitRule =>
    (asid !== undefined ? ownRule(limits.perAsid, asid, operation) : undefined) ??
    ownRule(limits.perAsid, fqdn, operation) ??
    limits.default;

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
    name: 'rate-limit',
    run(ctx: RequestContext): StageResult {
      const operation = ctx.operation;
      if (operation === undefined) return reject('INTERNAL_SERVER_ERROR', 'Rate limit applied before the route was matched');
      const at = now();
      if (at - lastSweep >= SWEEP_INTERVAL_MS || buckets.size > maxBuckets) sweep(at);

      const claimed = ctx.headers['fromasid'];
      const asid = typeof claimed === 'string' && ctx.endpoint.asids.has(claimed) ? claimed : undefined;
      // ASIDs are 12 digits and FQDNs contain a dot, so the two kinds of key cannot collide.
      const key = `${asid ?? ctx.endpoint.fqdn} ${operation}`;
      let bucket = buckets.get(key);
      if (bucket) {
        buckets.delete(key);
        bucket.tokens = tokensAt(bucket, at);
        bucket.updatedAt = at;
      } else {
        const rule = ruleFor(asid, ctx.endpoint.fqdn, operation);
        bucket = { tokens: rule.burst, updatedAt: at, rule };
      }
      buckets.set(key, bucket);

      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        ctx.audit['rateLimitRemaining'] = Math.floor(bucket.tokens);
        return PASS;
      }
      const resetSeconds = String(Math.max(1, Math.ceil((1 - bucket.tokens) / bucket.rule.ratePerSecond)));
      opts.onLimited?.(operation);
      return reject('TOO_MANY_REQUESTS', `Rate limit exceeded for the sending ASID and the ${operation} operation`, {
        headers: {
          'X-Rate-Limit-Limit': String(bucket.rule.burst),
          'X-Rate-Limit-Remaining': '0',
          'X-Rate-Limit-Reset': resetSeconds,
          'Retry-After': resetSeconds,
        },
      });
    },
  };
}
