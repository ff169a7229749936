import { describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { AsidRegistration, Endpoint } from '../../src/identity/types.js';
import type { NemsOperation } from '../../src/nems/operations.js';
import { createRateLimitStage } from '../../src/pipeline/stages/rate-limit.js';
import type { RequestContext, Stage, StageResult } from '../../src/pipeline/types.js';
import { contextFor } from '../helpers/inject.js';

const ASID_A = '200000000101';
const ASID_B = '200000000102';
const UNREGISTERED_ASID = '999999999999';

function registration(asid: string): AsidRegistration {
  return { asid, odsCodes: ['RR8'], interactions: [], subscriptionTypes: ['explicit'], mailboxes: [] };
}

const endpoint: Endpoint = {
  fqdn: 'gp-system.example.nhs.uk',
  fingerprints: [],
  asids: new Map([[ASID_A, registration(ASID_A)], [ASID_B, registration(ASID_B)]]),
};
const otherEndpoint: Endpoint = { fqdn: 'trust.example.nhs.uk', fingerprints: [], asids: new Map([[ASID_A, registration(ASID_A)]]) };

type PerAsidRules = Record<string, Partial<Record<'default' | NemsOperation, { ratePerSecond: number; burst: number }>>>;

/**
 * A validated Config with `perAsid` set afterwards: the schema's z.record(z.enum(...)) is exhaustive in zod 4
 * (it demands all five keys), while an ASID should be able to name only the operations it overrides.
 */
function config(rateLimits: { enabled: boolean; default?: { ratePerSecond: number; burst: number }; perAsid?: PerAsidRules }): Config {
  const { perAsid, ...rest } = rateLimits;
  const parsed = configSchema.parse({ server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { path: 'r' }, rateLimits: rest });
  return { ...parsed, rateLimits: { ...parsed.rateLimits, perAsid: (perAsid ?? {}) as Config['rateLimits']['perAsid'] } };
}

/** The context the rate-limit stage sees: routed to `operation`, with the (unverified) fromASID header as sent. */
function request(operation: NemsOperation | undefined, fromAsid?: string, at: Endpoint = endpoint): RequestContext {
  const headers: [string, string][] = fromAsid === undefined ? [] : [['fromASID', fromAsid]];
  const ctx = contextFor({ method: 'GET', target: '/STU3/Subscription/abc', headers, requestId: 'req-1' }, 0, at);
  if (operation) ctx.operation = operation;
  return ctx;
}

/** Runs the stage synchronously (it never returns a promise). */
function run(stage: Stage, ctx: RequestContext): StageResult {
  const result = stage.run(ctx);
  if (result instanceof Promise) throw new Error('rate-limit stage must be synchronous');
  return result;
}

function passes(stage: Stage, n: number, operation: NemsOperation = 'read', fromAsid = ASID_A): boolean[] {
  return Array.from({ length: n }, () => run(stage, request(operation, fromAsid)).ok);
}

function rejection(result: StageResult) {
  if (result.ok) throw new Error('expected a rejection');
  return result.rejection;
}

describe('rate-limit stage: token bucket per (ASID, operation)', () => {
  it('passes a burst of N requests and answers the N+1th 429 TOO_MANY_REQUESTS with X-Rate-Limit-* and Retry-After', () => {
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 2, burst: 3 } }), { now: () => 0 });
    expect(passes(stage, 3)).toEqual([true, true, true]);
    const refused = rejection(run(stage, request('read', ASID_A)));
    expect(refused.code).toBe('TOO_MANY_REQUESTS');
    expect(refused.headers).toEqual({ 'X-Rate-Limit-Limit': '3', 'X-Rate-Limit-Remaining': '0', 'X-Rate-Limit-Reset': '1', 'Retry-After': '1' });
    expect(refused.diagnostics).not.toContain(ASID_A);
  });

  it('refills one token after exactly 1/rate seconds, not a millisecond earlier', () => {
    let now = 1_000_000;
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 4, burst: 2 } }), { now: () => now });
    expect(passes(stage, 3)).toEqual([true, true, false]);
    now += 249;
    expect(run(stage, request('read', ASID_A)).ok).toBe(false);
    now += 1; // 250 ms = 1/4 s after the bucket emptied
    expect(run(stage, request('read', ASID_A)).ok).toBe(true);
    expect(run(stage, request('read', ASID_A)).ok).toBe(false);
    now += 10_000; // a long idle period refills only up to the burst
    expect(passes(stage, 3)).toEqual([true, true, false]);
  });

  it('reports X-Rate-Limit-Reset as whole seconds (rounded up) until one token is available', () => {
    let now = 0;
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 0.2, burst: 1 } }), { now: () => now });
    expect(run(stage, request('create', ASID_A)).ok).toBe(true);
    expect(rejection(run(stage, request('create', ASID_A))).headers?.['X-Rate-Limit-Reset']).toBe('5');
    now += 2_500;
    expect(rejection(run(stage, request('create', ASID_A))).headers?.['Retry-After']).toBe('3');
    now += 2_500;
    expect(run(stage, request('create', ASID_A)).ok).toBe(true);
  });

  it('applies a per-ASID per-operation override, then the per-ASID default, then the global default', () => {
    const stage = createRateLimitStage(config({
      enabled: true,
      default: { ratePerSecond: 1, burst: 5 },
      perAsid: { [ASID_A]: { publish: { ratePerSecond: 1, burst: 1 }, default: { ratePerSecond: 1, burst: 2 } } },
    }), { now: () => 0 });
    expect(passes(stage, 2, 'publish')).toEqual([true, false]);
    expect(passes(stage, 3, 'create')).toEqual([true, true, false]);
    expect(passes(stage, 6, 'create', ASID_B)).toEqual([true, true, true, true, true, false]);
  });

  it('keeps a separate bucket for each operation of one ASID', () => {
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 1, burst: 1 } }), { now: () => 0 });
    expect(passes(stage, 2, 'read')).toEqual([true, false]);
    expect(passes(stage, 2, 'delete')).toEqual([true, false]);
  });

  it('isolates ASIDs: one exhausted ASID does not limit another ASID of the same endpoint', () => {
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 1, burst: 2 } }), { now: () => 0 });
    expect(passes(stage, 3, 'read', ASID_A)).toEqual([true, true, false]);
    expect(passes(stage, 3, 'read', ASID_B)).toEqual([true, true, false]);
  });

  it('buckets an unregistered, missing or duplicated fromASID by the endpoint FQDN, so invented ASIDs share one bucket', () => {
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 1, burst: 3 } }), { now: () => 0 });
    const results = [
      run(stage, request('read', UNREGISTERED_ASID)).ok,
      run(stage, request('read', undefined)).ok,
      run(stage, request('read', `${ASID_A}, ${ASID_A}`)).ok,
      run(stage, request('read', '000000000000')).ok,
    ];
    expect(results).toEqual([true, true, true, false]);
    // The registered ASID's own bucket is untouched, and another endpoint has its own FQDN bucket.
    expect(run(stage, request('read', ASID_A)).ok).toBe(true);
    expect(run(stage, request('read', UNREGISTERED_ASID, otherEndpoint)).ok).toBe(true);
  });

  it('takes a rule keyed by endpoint FQDN for that endpoint\'s FQDN bucket and for its ASIDs without their own rule', () => {
    const stage = createRateLimitStage(config({
      enabled: true,
      default: { ratePerSecond: 1, burst: 10 },
      perAsid: { [endpoint.fqdn]: { default: { ratePerSecond: 1, burst: 1 } }, [ASID_B]: { read: { ratePerSecond: 1, burst: 2 } } },
    }), { now: () => 0 });
    expect(passes(stage, 2, 'read', UNREGISTERED_ASID)).toEqual([true, false]);
    expect(passes(stage, 2, 'read', ASID_A)).toEqual([true, false]);
    expect(passes(stage, 3, 'read', ASID_B)).toEqual([true, true, false]);
  });

  it('always passes when rate limiting is disabled', () => {
    const stage = createRateLimitStage(config({ enabled: false, default: { ratePerSecond: 1, burst: 1 } }), { now: () => 0 });
    expect(passes(stage, 50).every(Boolean)).toBe(true);
    expect(stage.name).toBe('rate-limit');
  });

  it('calls onLimited with the operation for every 429, and records tokens left on the audit line when passing', () => {
    const limited: NemsOperation[] = [];
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 1, burst: 2 } }), {
      now: () => 0, onLimited: (operation) => limited.push(operation),
    });
    const first = request('publish', ASID_A);
    run(stage, first);
    expect(first.audit['rateLimitRemaining']).toBe(1);
    run(stage, request('publish', ASID_A));
    run(stage, request('publish', ASID_A));
    run(stage, request('publish', ASID_A));
    expect(limited).toEqual(['publish', 'publish']);
  });

  it('answers 500 INTERNAL_SERVER_ERROR when run before the route stage named an operation', () => {
    const stage = createRateLimitStage(config({ enabled: true }), { now: () => 0 });
    expect(rejection(run(stage, request(undefined, ASID_A))).code).toBe('INTERNAL_SERVER_ERROR');
  });

  it('forgets refilled buckets and caps the number kept, least recently used first', () => {
    let now = 0;
    const stage = createRateLimitStage(config({ enabled: true, default: { ratePerSecond: 10, burst: 1 } }), { now: () => now, maxBuckets: 10 });
    const endpoints = Array.from({ length: 40 }, (_, i): Endpoint => ({ fqdn: `e${i}.example.nhs.uk`, fingerprints: [], asids: new Map() }));
    for (const e of endpoints) expect(run(stage, request('read', undefined, e)).ok).toBe(true);
    // Each bucket is empty; 100 ms later each has refilled fully, so forgetting them changes nothing.
    expect(run(stage, request('read', undefined, endpoints[39])).ok).toBe(false);
    now += 100;
    for (const e of endpoints) expect(run(stage, request('read', undefined, e)).ok).toBe(true);
  });
});
