// LRU + TTL cache with single-flight in front of any PdsLookup (docs/specification.md §6.2: PDS allows ~5 TPS per app).
// Positive results (traced, restricted) live longer than negative ones; PdsUnavailableError is never cached.
// lru-cache holds the entries (LRU order, per-entry TTL). Single-flight is the Map below, not lru-cache's
// fetch(): fetch() makes an AbortController and a listener per miss, which measured ~6 µs per miss on Node 20
// against ~1 µs for the whole hand-written miss path (bench/pds-cache.ts, docs/benchmark.md).
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { PdsUnavailableError, type PdsLookup, type PdsObserver, type PdsOutcome } from './types.js';

export interface PdsCacheOptions {
  readonly maxEntries: number;
  readonly positiveTtlSeconds: number;
  readonly negativeTtlSeconds: number;
  readonly observer?: PdsObserver;
  /** Milliseconds since the epoch; injectable for TTL tests. */
  readonly now?: () => number;
  /** The inner store's data generation (local store reloads): a change drops every cached entry. */
  readonly generation?: () => number;
}

export class CachedPdsLookup implements PdsLookup {
  readonly #cache: LRUCache<string, PdsOutcome>;
  /** Single-flight: the one inner lookup in flight per NHS number, shared by every concurrent caller. */
  readonly #inflight = new Map<string, Promise<PdsOutcome>>();
  readonly #positiveTtlMs: number;
  readonly #negativeTtlMs: number;
  /** Bumped by invalidate(): an in-flight lookup started before it must not fill the cache afterwards. */
  #epoch = 0;
  #seenGeneration: number | undefined;

  constructor(
    private readonly inner: PdsLookup,
    private readonly options: PdsCacheOptions,
  ) {
    this.#positiveTtlMs = ttlMs(options.positiveTtlSeconds);
    this.#negativeTtlMs = ttlMs(options.negativeTtlSeconds);
    this.#cache = new LRUCache<string, PdsOutcome>({
      max: options.maxEntries,
      // Every entry gets its own TTL in set(); this turns TTL tracking on.
      ttl: Math.max(this.#positiveTtlMs, this.#negativeTtlMs, 1),
      ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
    });
    this.#seenGeneration = options.generation?.();
  }

  get size(): number {
    return this.#cache.size;
  }

  /** Drops every cached outcome (e.g. after the local store reloads). In-flight lookups still complete. */
  invalidate(): void {
    this.#cache.clear();
    this.#inflight.clear();
    this.#epoch++;
  }

  cached(nhsNumber: string): PdsOutcome | undefined {
    const started = performance.now();
    this.#checkGeneration();
    const cached = this.#cache.get(nhsNumber);
    if (cached !== undefined) this.#observe(cached.result, 'hit', started);
    return cached;
  }

  async lookup(nhsNumber: string, requestId: string): Promise<PdsOutcome> {
    const cached = this.cached(nhsNumber);
    if (cached !== undefined) return cached;
    const started = performance.now();

    const pending = this.#inflight.get(nhsNumber);
    if (pending) {
      try {
        const outcome = await pending;
        this.#observe(outcome.result, 'coalesced', started);
        return outcome;
      } catch (err) {
        this.#observe('unavailable', 'coalesced', started);
        throw err;
      }
    }

    const epoch = this.#epoch;
    const upstream = this.#callInner(nhsNumber, requestId);
    this.#inflight.set(nhsNumber, upstream);
    try {
      const outcome = await upstream;
      if (epoch === this.#epoch) this.#store(nhsNumber, outcome);
      this.#observe(outcome.result, 'miss', started);
      return outcome;
    } catch (err) {
      this.#observe('unavailable', 'miss', started);
      throw err;
    } finally {
      if (this.#inflight.get(nhsNumber) === upstream) this.#inflight.delete(nhsNumber);
    }
  }

  ready(): Promise<{ ok: boolean; reason: string }> {
    return this.inner.ready();
  }

  async close(): Promise<void> {
    this.invalidate();
    await this.inner.close();
  }

  /** Keeps the PdsLookup contract: whatever the inner lookup throws becomes a PdsUnavailableError. */
  async #callInner(nhsNumber: string, requestId: string): Promise<PdsOutcome> {
    try {
      return await this.inner.lookup(nhsNumber, requestId);
    } catch (err) {
      if (err instanceof PdsUnavailableError) throw err;
      throw new PdsUnavailableError('bad-response', 'PDS lookup failed unexpectedly', { cause: err });
    }
  }

  #store(nhsNumber: string, outcome: PdsOutcome): void {
    const positive = outcome.result === 'traced' || outcome.result === 'restricted';
    const ttl = positive ? this.#positiveTtlMs : this.#negativeTtlMs;
    // lru-cache takes a TTL of 0 as "never expires"; ours means "do not keep".
    if (ttl > 0) this.#cache.set(nhsNumber, outcome, { ttl });
  }

  #checkGeneration(): void {
    if (!this.options.generation) return;
    const current = this.options.generation();
    if (current !== this.#seenGeneration) {
      this.#seenGeneration = current;
      this.invalidate();
    }
  }

  #observe(result: PdsOutcome['result'] | 'unavailable', cache: 'hit' | 'miss' | 'coalesced', started: number): void {
    if (!this.options.observer) return;
    try {
      this.options.observer.lookup(result, cache, Math.max(0, performance.now() - started) / 1000);
    } catch {
      // Metrics must never change the outcome of a lookup.
    }
  }
}

/**
 * Seconds to lru-cache milliseconds. lru-cache counts an entry stale only once *more* than its TTL has passed;
 * one millisecond less keeps the cache's contract that an entry expires when its TTL has passed.
 */
function ttlMs(seconds: number): number {
  return seconds > 0 ? seconds * 1000 - 1 : 0;
}
