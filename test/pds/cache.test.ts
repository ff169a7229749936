// CachedPdsLookup: LRU with positive/negative TTL, single-flight, errors never cached, observer hooks.
import { describe, expect, it } from 'vitest';
import { CachedPdsLookup } from '../../src/pds/cache.js';
import { PdsUnavailableError, type PdsLookup, type PdsObserver, type PdsOutcome } from '../../src/pds/types.js';

class CountingPds implements PdsLookup {
  calls = 0;
  closed = false;
  private pending: Array<() => void> = [];
  constructor(public answer: (n: string) => PdsOutcome | Error, private readonly gated = false) {}

  async lookup(nhsNumber: string): Promise<PdsOutcome> {
    this.calls++;
    if (this.gated) await new Promise<void>((resolve) => this.pending.push(resolve));
    const answer = this.answer(nhsNumber);
    if (answer instanceof Error) throw answer;
    return answer;
  }
  /** Lets every gated lookup finish. */
  release(): void {
    for (const resolve of this.pending.splice(0)) resolve();
  }
  ready() { return Promise.resolve({ ok: true, reason: 'counting' }); }
  close() { this.closed = true; return Promise.resolve(); }
}

class RecordingObserver implements PdsObserver {
  events: Array<[string, string]> = [];
  lookup(result: string, cache: string, seconds: number): void {
    expect(seconds).toBeGreaterThanOrEqual(0);
    this.events.push([result, cache]);
  }
}

const TRACED: PdsOutcome = { result: 'traced', restricted: false };
const NOT_FOUND: PdsOutcome = { result: 'not-found' };

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

describe('CachedPdsLookup', () => {
  it('serves a traced result from cache until the positive TTL expires', async () => {
    const inner = new CountingPds(() => TRACED);
    const c = clock();
    const observer = new RecordingObserver();
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30, now: c.now, observer });
    expect(await cache.lookup('9912003888', 'r')).toEqual(TRACED);
    c.advance(299_000);
    expect(await cache.lookup('9912003888', 'r')).toEqual(TRACED);
    expect(inner.calls).toBe(1);
    c.advance(1_000);
    await cache.lookup('9912003888', 'r');
    expect(inner.calls).toBe(2);
    expect(observer.events).toEqual([['traced', 'miss'], ['traced', 'hit'], ['traced', 'miss']]);
  });

  it('keeps negative results (not found, superseded, invalidated) only for the shorter negative TTL', async () => {
    const outcomes: Record<string, PdsOutcome> = {
      '9000000009': NOT_FOUND, '9000000017': { result: 'superseded' }, '9000000033': { result: 'invalidated' },
    };
    const inner = new CountingPds((n) => outcomes[n]!);
    const c = clock();
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30, now: c.now });
    for (const n of Object.keys(outcomes)) await cache.lookup(n, 'r');
    c.advance(29_999);
    for (const n of Object.keys(outcomes)) expect(await cache.lookup(n, 'r')).toEqual(outcomes[n]);
    expect(inner.calls).toBe(3);
    c.advance(1);
    for (const n of Object.keys(outcomes)) await cache.lookup(n, 'r');
    expect(inner.calls).toBe(6);
  });

  it('treats a restricted result as positive', async () => {
    const inner = new CountingPds(() => ({ result: 'restricted', restricted: true }));
    const c = clock();
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 1, now: c.now });
    await cache.lookup('9000000025', 'r');
    c.advance(200_000);
    await cache.lookup('9000000025', 'r');
    expect(inner.calls).toBe(1);
  });

  it('does not cache at all when a TTL is 0', async () => {
    const inner = new CountingPds(() => NOT_FOUND);
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 0 });
    await cache.lookup('9111231130', 'r');
    await cache.lookup('9111231130', 'r');
    expect(inner.calls).toBe(2);
  });

  it('with a TTL of 0 keeps nothing, yet concurrent lookups still share one inner lookup', async () => {
    const inner = new CountingPds(() => NOT_FOUND, true);
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 0 });
    const all = Array.from({ length: 5 }, () => cache.lookup('9111231130', 'r'));
    await new Promise((r) => setImmediate(r));
    inner.release();
    expect(await Promise.all(all)).toEqual(Array(5).fill(NOT_FOUND));
    expect([inner.calls, cache.size]).toEqual([1, 0]);
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const inner = new CountingPds(() => TRACED);
    const cache = new CachedPdsLookup(inner, { maxEntries: 2, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
    await cache.lookup('1', 'r');
    await cache.lookup('2', 'r');
    await cache.lookup('1', 'r'); // touch 1: 2 is now least recently used
    await cache.lookup('3', 'r'); // evicts 2
    expect(cache.size).toBe(2);
    expect(inner.calls).toBe(3);
    await cache.lookup('1', 'r');
    await cache.lookup('3', 'r');
    expect(inner.calls).toBe(3);
    await cache.lookup('2', 'r');
    expect(inner.calls).toBe(4);
  });

  it('never caches PdsUnavailableError: the next lookup asks again', async () => {
    let fail = true;
    const inner = new CountingPds(() => (fail ? new PdsUnavailableError('timeout', 'slow') : TRACED));
    const observer = new RecordingObserver();
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30, observer });
    await expect(cache.lookup('9912003888', 'r')).rejects.toBeInstanceOf(PdsUnavailableError);
    fail = false;
    expect(await cache.lookup('9912003888', 'r')).toEqual(TRACED);
    expect(inner.calls).toBe(2);
    expect(observer.events).toEqual([['unavailable', 'miss'], ['traced', 'miss']]);
  });

  it('turns an unexpected inner error into PdsUnavailableError (bad-response)', async () => {
    const cache = new CachedPdsLookup(new CountingPds(() => new TypeError('bug')), { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
    await expect(cache.lookup('9912003888', 'r')).rejects.toMatchObject({ name: 'PdsUnavailableError', reason: 'bad-response' });
  });

  it('single-flight: 50 concurrent lookups of one number make one upstream lookup', async () => {
    const inner = new CountingPds(() => TRACED, true);
    const observer = new RecordingObserver();
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30, observer });
    const all = Array.from({ length: 50 }, (_, i) => cache.lookup('9912003888', `r${i}`));
    await new Promise((r) => setImmediate(r));
    inner.release();
    const results = await Promise.all(all);
    expect(results.every((r) => r.result === 'traced')).toBe(true);
    expect(inner.calls).toBe(1);
    expect(observer.events.filter(([, c]) => c === 'miss')).toHaveLength(1);
    expect(observer.events.filter(([, c]) => c === 'coalesced')).toHaveLength(49);
  });

  it('single-flight shares a failure with every waiter and then lets the next lookup retry', async () => {
    let fail = true;
    const inner = new CountingPds(() => (fail ? new PdsUnavailableError('unreachable', 'down') : TRACED), true);
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
    const all = Array.from({ length: 10 }, () => cache.lookup('9912003888', 'r'));
    await new Promise((r) => setImmediate(r));
    inner.release();
    const settled = await Promise.allSettled(all);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(inner.calls).toBe(1);
    fail = false;
    const again = cache.lookup('9912003888', 'r');
    await new Promise((r) => setImmediate(r));
    inner.release();
    expect(await again).toEqual(TRACED);
    expect(inner.calls).toBe(2);
  });

  it('keeps lookups of different numbers independent', async () => {
    const inner = new CountingPds(() => TRACED);
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
    await Promise.all(['9912003888', '9434765919', '9000000009'].map((n) => cache.lookup(n, 'r')));
    expect(inner.calls).toBe(3);
  });

  it('invalidate() drops cached results, and a lookup in flight during invalidate() does not refill the cache', async () => {
    const inner = new CountingPds(() => TRACED, true);
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
    const first = cache.lookup('9912003888', 'r');
    await new Promise((r) => setImmediate(r));
    cache.invalidate();
    inner.release();
    await first;
    expect(cache.size).toBe(0);
    const second = cache.lookup('9912003888', 'r');
    await new Promise((r) => setImmediate(r));
    inner.release();
    await second;
    expect(cache.size).toBe(1);
    cache.invalidate();
    expect(cache.size).toBe(0);
  });

  it('drops everything when the inner generation changes (local store reload)', async () => {
    let generation = 1;
    const inner = new CountingPds(() => TRACED);
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30, generation: () => generation });
    await cache.lookup('9912003888', 'r');
    await cache.lookup('9912003888', 'r');
    expect(inner.calls).toBe(1);
    generation = 2;
    await cache.lookup('9912003888', 'r');
    expect(inner.calls).toBe(2);
  });

  it('an observer that throws does not change the outcome', async () => {
    const cache = new CachedPdsLookup(new CountingPds(() => TRACED), {
      maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30, observer: { lookup: () => { throw new Error('metrics down'); } },
    });
    expect(await cache.lookup('9912003888', 'r')).toEqual(TRACED);
  });

  it('delegates ready() and close() to the inner lookup', async () => {
    const inner = new CountingPds(() => TRACED);
    const cache = new CachedPdsLookup(inner, { maxEntries: 10, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
    expect(await cache.ready()).toEqual({ ok: true, reason: 'counting' });
    await cache.close();
    expect(inner.closed).toBe(true);
  });
});
