// LRU + TTL cache with single-flight in front of any PdsLookup (spec digest §6.2: PDS allows ~5 TPS per app).
// Positive results (traced, restricted) live longer than negative ones; PdsUnavailableError is never cached.
import { performance } from 'node:perf_hooks';
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

interface CacheEntry {
  readonly outcome: PdsOutcome;
  readonly expiresAt: number;
}

export class CachedPdsLookup implements PdsLookup {
  // A Map iterates in insertion order: re-inserting on hit makes the first key the least recently used.
  private readonly entries = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<PdsOutcome>>();
  private readonly now: () => number;
  /** Bumped by invalidate(): an in-flight lookup started before it must not fill the cache afterwards. */
  private epoch = 0;
  private seenGeneration: number | undefined;

  constructor(
    private readonly inner: PdsLookup,
    private readonly options: PdsCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.seenGeneration = options.generation?.();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops every cached outcome (e.g. after the local store reloads). In-flight lookups still complete. */
  invalidate(): void {
    this.entries.clear();
    this.inflight.clear();
    this.epoch++;
  }

  async lookup(nhsNumber: string, requestId: string): Promise<PdsOutcome> {
    const started = performance.now();
    this.checkGeneration();

    const cached = this.entries.get(nhsNumber);
    if (cached) {
      if (cached.expiresAt > this.now()) {
        this.entries.delete(nhsNumber);
        this.entries.set(nhsNumber, cached);
        this.observe(cached.outcome.result, 'hit', started);
        return cached.outcome;
      }
      this.entries.delete(nhsNumber);
    }

    const pending = this.inflight.get(nhsNumber);
    if (pending) {
      try {
        const outcome = await pending;
        this.observe(outcome.result, 'coalesced', started);
        return outcome;
      } catch (err) {
        this.observe('unavailable', 'coalesced', started);
        throw err;
      }
    }

    const epoch = this.epoch;
    const upstream = this.callInner(nhsNumber, requestId);
    this.inflight.set(nhsNumber, upstream);
    try {
      const outcome = await upstream;
      if (epoch === this.epoch) this.store(nhsNumber, outcome);
      this.observe(outcome.result, 'miss', started);
      return outcome;
    } catch (err) {
      this.observe('unavailable', 'miss', started);
      throw err;
    } finally {
      if (this.inflight.get(nhsNumber) === upstream) this.inflight.delete(nhsNumber);
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
  private async callInner(nhsNumber: string, requestId: string): Promise<PdsOutcome> {
    try {
      return await this.inner.lookup(nhsNumber, requestId);
    } catch (err) {
      if (err instanceof PdsUnavailableError) throw err;
      throw new PdsUnavailableError('bad-response', 'PDS lookup failed unexpectedly', { cause: err });
    }
  }

  private store(nhsNumber: string, outcome: PdsOutcome): void {
    const positive = outcome.result === 'traced' || outcome.result === 'restricted';
    const ttlSeconds = positive ? this.options.positiveTtlSeconds : this.options.negativeTtlSeconds;
    if (ttlSeconds <= 0 || this.options.maxEntries <= 0) return;
    this.entries.delete(nhsNumber);
    this.entries.set(nhsNumber, { outcome, expiresAt: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  private checkGeneration(): void {
    if (!this.options.generation) return;
    const current = this.options.generation();
    if (current !== this.seenGeneration) {
      this.seenGeneration = current;
      this.invalidate();
    }
  }

  private observe(result: PdsOutcome['result'] | 'unavailable', cache: 'hit' | 'miss' | 'coalesced', started: number): void {
    if (!this.options.observer) return;
    try {
      this.options.observer.lookup(result, cache, Math.max(0, performance.now() - started) / 1000);
    } catch {
      // Metrics must never change the outcome of a lookup.
    }
  }
}
