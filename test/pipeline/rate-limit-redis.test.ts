// The shared (Redis) token-bucket store against a real redis-server: the same answers as the memory store, the
// same bucket keys, nothing but keys and counts in Redis, and every onStoreError policy when Redis fails or is slow.
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { AsidRegistration, Endpoint } from '../../src/identity/types.js';
import type { NemsOperation } from '../../src/nems/operations.js';
import { createRedisBucketStore, type RedisBucketStore, type StoreErrorPolicy } from '../../src/pipeline/rate-limit-redis.js';
import { createMemoryBucketStore, createRateLimitStage } from '../../src/pipeline/stages/rate-limit.js';
import type { RequestContext, Stage, StageResult } from '../../src/pipeline/types.js';
import { redisServerTool, startTestRedis, type TestRedis } from '../helpers/redis-server.js';

const ASID_A = '200000000101';
const ASID_B = '200000000102';
const silent = pino({ level: 'silent' });

const registration = (asid: string): AsidRegistration => ({ asid, odsCodes: ['A83627'], interactions: [], subscriptionTypes: ['explicit'], mailboxes: [] });
const endpoint: Endpoint = {
  fqdn: 'gp-system.example.nhs.uk',
  fingerprints: [],
  asids: new Map([[ASID_A, registration(ASID_A)], [ASID_B, registration(ASID_B)]]),
};

function config(rule: { ratePerSecond: number; burst: number }): Config {
  return configSchema.parse({ server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { path: 'r' }, rateLimits: { enabled: true, default: rule } });
}

function request(operation: NemsOperation, fromAsid?: string): RequestContext {
  return {
    requestId: 'req-1', method: 'GET', path: '/STU3/Subscription/abc', query: new URLSearchParams(),
    headers: fromAsid === undefined ? {} : { fromasid: fromAsid }, rawHeaders: [], endpoint,
    source: { readBody: () => Promise.resolve(Buffer.alloc(0)) }, receivedAt: 0, operation,
    nhsNumbers: [], forwardHeaders: {}, audit: {},
  };
}

const run = async (stage: Stage, ctx: RequestContext): Promise<StageResult> => stage.run(ctx);
async function outcomes(stage: Stage, n: number, operation: NemsOperation = 'read', fromAsid = ASID_A): Promise<Array<StageResult>> {
  const results: StageResult[] = [];
  for (let i = 0; i < n; i++) results.push(await run(stage, request(operation, fromAsid)));
  return results;
}
/**
 * Outcomes with X-Rate-Limit-Reset and Retry-After as "≈N": the memory store here runs on a frozen clock, Redis on
 * its own, so a second passing between two calls may take one off the whole seconds Redis reports.
 */
const summary = (results: StageResult[]) => results.map((r) => {
  if (r.ok) return 'pass';
  const { 'X-Rate-Limit-Reset': reset, 'Retry-After': retryAfter, ...rest } = r.rejection.headers ?? {};
  expect(retryAfter).toBe(reset);
  return { status: r.rejection.code, headers: rest, reset: `≈${Math.ceil(Number(reset) / 10) * 10}` };
});

let redis: TestRedis;
let admin: Redis;
const stores: RedisBucketStore[] = [];
let prefixCount = 0;

function redisStore(overrides: { url?: string; commandTimeoutMs?: number; retryIntervalMs?: number; policy?: StoreErrorPolicy; onFallback?: (p: StoreErrorPolicy) => void } = {}) {
  const keyPrefix = `test${++prefixCount}:`;
  const store = createRedisBucketStore({
    redis: {
      url: overrides.url ?? redis.url, keyPrefix, commandTimeoutMs: overrides.commandTimeoutMs ?? 1000,
      connectTimeoutMs: 2000, retryIntervalMs: overrides.retryIntervalMs ?? 200,
    },
    onStoreError: overrides.policy ?? 'local',
    local: createMemoryBucketStore(),
    logger: silent,
    ...(overrides.onFallback ? { onFallback: overrides.onFallback } : {}),
  });
  stores.push(store);
  return { store, keyPrefix };
}

describe.skipIf(redisServerTool.skip)('rate limits on Redis (rateLimits.store: redis)', () => {
  beforeAll(async () => {
    redis = await startTestRedis({ debugCommand: true });
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
    admin?.disconnect();
    await redis?.stop();
  });

  it('answers exactly as the memory store: the burst passes, then 429 TOO_MANY_REQUESTS with the same X-Rate-Limit-* headers', async () => {
    const rule = { ratePerSecond: 0.001, burst: 3 };
    const { store } = redisStore();
    expect(await store.connected()).toBe(true);
    const shared = createRateLimitStage(config(rule), { store });
    const memory = createRateLimitStage(config(rule), { now: () => 0 });
    const fromRedis = summary(await outcomes(shared, 5));
    expect(fromRedis).toEqual(summary(await outcomes(memory, 5)));
    expect(fromRedis.slice(0, 3)).toEqual(['pass', 'pass', 'pass']);
    expect(fromRedis[3]).toEqual({ status: 'TOO_MANY_REQUESTS', headers: { 'X-Rate-Limit-Limit': '3', 'X-Rate-Limit-Remaining': '0' }, reset: '≈1000' });
    // Separate buckets per operation and per ASID, as in memory.
    expect(summary(await outcomes(shared, 4, 'delete'))).toEqual(summary(await outcomes(memory, 4, 'delete')));
    expect(summary(await outcomes(shared, 4, 'read', ASID_B))).toEqual(summary(await outcomes(memory, 4, 'read', ASID_B)));
  });

  it('keys a bucket by ASID (or endpoint FQDN) and operation and holds only a token count and a time', async () => {
    const { store, keyPrefix } = redisStore();
    await store.connected();
    const stage = createRateLimitStage(config({ ratePerSecond: 0.001, burst: 5 }), { store });
    await run(stage, request('publish', ASID_A));
    await run(stage, request('create', '999999999999'));
    const keys = (await admin.keys(`${keyPrefix}*`)).sort();
    expect(keys).toEqual([`${keyPrefix}${ASID_A} publish`, `${keyPrefix}gp-system.example.nhs.uk create`]);
    const bucket = await admin.hgetall(keys[0]!);
    expect(Object.keys(bucket).sort()).toEqual(['at', 'tokens']);
    expect(Number(bucket['tokens'])).toBeCloseTo(4, 2);
    // A bucket expires when it would have refilled (then it is the same as a new one): 1 token at 0.001/s = 1000 s.
    const ttl = await admin.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(990_000);
    expect(ttl).toBeLessThanOrEqual(1_000_000);
  });

  it('refills at ratePerSecond on Redis\'s clock: refused with X-Rate-Limit-Reset until a token is due, then passes', async () => {
    const { store, keyPrefix } = redisStore();
    await store.connected();
    const stage = createRateLimitStage(config({ ratePerSecond: 0.01, burst: 1 }), { store });
    expect((await run(stage, request('read', ASID_A))).ok).toBe(true);
    const refused = await run(stage, request('read', ASID_A));
    // One token every 100 s: 100 s to wait, less the whole seconds since the bucket emptied.
    const reset = Number(refused.ok ? NaN : refused.rejection.headers?.['X-Rate-Limit-Reset']);
    expect(reset).toBeGreaterThanOrEqual(99);
    expect(reset).toBeLessThanOrEqual(100);
    // 100 s later on Redis's clock (the bucket's time moved back instead of waiting): one token, one request.
    await admin.hincrbyfloat(`${keyPrefix}${ASID_A} read`, 'at', -100_000);
    expect((await run(stage, request('read', ASID_A))).ok).toBe(true);
    expect((await run(stage, request('read', ASID_A))).ok).toBe(false);
  });

  it.each<[StoreErrorPolicy, Array<'pass' | 'TOO_MANY_REQUESTS'>]>([
    ['local', ['pass', 'pass', 'TOO_MANY_REQUESTS']],
    ['allow', ['pass', 'pass', 'pass']],
    ['deny', ['TOO_MANY_REQUESTS', 'TOO_MANY_REQUESTS', 'TOO_MANY_REQUESTS']],
  ])('with no Redis to reach, decides by onStoreError %s and counts every fallback', async (policy, expected) => {
    const fallbacks: StoreErrorPolicy[] = [];
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const { store } = redisStore({ url: 'redis://127.0.0.1:1/0', policy, onFallback: (p) => fallbacks.push(p) });
    expect(await store.connected()).toBe(false);
    const stage = createRateLimitStage(config({ ratePerSecond: 0.001, burst: 2 }), { store });
    const results = await outcomes(stage, 3);
    expect(results.map((r) => (r.ok ? 'pass' : r.rejection.code))).toEqual(expected);
    expect(fallbacks).toEqual([policy, policy, policy]);
    expect(store.status().ok).toBe(true);
    expect(store.status().reason).toMatch(new RegExp(`redis redis://127\\.0\\.0\\.1:1 unreachable since .*: falling back to onStoreError ${policy}`));
  });

  it('time-boxes every call: a Redis that does not answer within commandTimeoutMs is skipped for retryIntervalMs', async () => {
    const fallbacks: StoreErrorPolicy[] = [];
    const { store } = redisStore({ commandTimeoutMs: 100, retryIntervalMs: 60_000, onFallback: (p) => fallbacks.push(p) });
    expect(await store.connected()).toBe(true);
    const stage = createRateLimitStage(config({ ratePerSecond: 0.001, burst: 5 }), { store });
    const blocker = new Redis(redis.url);
    await blocker.ping();
    const blocked = blocker.call('DEBUG', 'SLEEP', '2');
    // Redis is single-threaded: once it has read the DEBUG SLEEP, it answers no one for 2 s.
    await new Promise((r) => setTimeout(r, 100));
    try {
      expect((await run(stage, request('read'))).ok).toBe(true);
      // Decided by the local fallback: had the store waited out Redis's second of sleep, Redis would have decided.
      expect(fallbacks).toEqual(['local']);
      expect(store.status().reason).toContain('no answer within 100 ms: falling back to onStoreError local');
      // Paused: the next decision does not wait for Redis at all.
      expect((await run(stage, request('read'))).ok).toBe(true);
      expect(fallbacks).toEqual(['local', 'local']);
    } finally {
      await blocked;
      blocker.disconnect();
    }
  });
});
