// The SDS-backed endpoint registry (registry.kind sds). Every refresh reads /Device and /Endpoint for each overlay
// ODS code and NEMS InteractionID, joins them with the overlay and installs the result whole — or, on any failure,
// installs nothing and keeps the last good copy (stale-if-error). Past `maxStaleMs` without a good refresh the
// copy is no longer used: every client is denied and /readyz fails until SDS answers again (fail closed).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Config, SdsRegistryConfig } from '../config/schema.js';
import { DEFAULT_METRIC_PREFIX } from '../observability/metrics.js';
import { ALL_INTERACTION_IDS } from '../nems/interactions.js';
import { knownInteractions, resolveEndpoint } from './file-registry.js';
import { SdsFhirClient, SdsUnavailableError, type SdsSource } from './sds-client.js';
import { joinSdsRegistry, type SdsDevice, type SdsMhs } from './sds-join.js';
import { loadSdsOverlay, type SdsOverlay } from './sds-overlay.js';
import type { Endpoint, EndpointLookup, EndpointRegistry, PeerCertificateIdentity } from './types.js';

export interface SdsRegistryOptions {
  readonly logger?: Logger;
  /** Where the refresh metrics are registered (the gateway's registry); none when absent. */
  readonly metricsRegistry?: Registry;
  readonly now?: () => number;
  /** Stand-in for the SDS FHIR client (unit tests). */
  readonly source?: SdsSource;
}

interface SdsAnswer {
  readonly devices: readonly SdsDevice[];
  readonly mhs: readonly SdsMhs[];
}

export class SdsEndpointRegistry implements EndpointRegistry {
  readonly #settings: SdsRegistryConfig;
  readonly #source: SdsSource;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #interactions: readonly string[];
  #overlay: SdsOverlay;
  #answer: SdsAnswer | undefined;
  #byFqdn = new Map<string, Endpoint>();
  #endpoints: readonly Endpoint[] = [];
  #generation = 0;
  #lastSuccessAt: number | undefined;
  #consecutiveFailures = 0;
  #lastFailure: string | undefined;
  #refreshing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #staleLogged = false;
  readonly #metrics: SdsMetrics | undefined;

  constructor(readonly config: Config['registry'], options: SdsRegistryOptions = {}) {
    if (!config.sds) throw new Error('registry.sds is required when registry.kind is sds');
    this.#settings = config.sds;
    this.#overlay = loadSdsOverlay(config.path);
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
    this.#source = options.source ?? new SdsFhirClient(config.sds, options.now ? { now: options.now } : {});
    const unknown = (config.sds.interactions ?? []).filter((i) => !knownInteractions.has(i));
    if (unknown.length) throw new Error(`registry.sds.interactions: not NEMS InteractionIDs: ${unknown.join(', ')}`);
    this.#interactions = config.sds.interactions ?? ALL_INTERACTION_IDS;
    this.#metrics = options.metricsRegistry ? new SdsMetrics(options.metricsRegistry, this) : undefined;
  }

  /**
   * Bumped on every install; while the copy is past maxStaleMs it reads as a different (negative) number, so
   * identities cached per connection are looked up again — and denied — instead of outliving the registry.
   */
  get generation(): number {
    return this.usable() ? this.#generation : -this.#generation - 1;
  }

  /** Epoch ms of the last good refresh; undefined before the first. */
  get lastSuccessAt(): number | undefined {
    return this.#lastSuccessAt;
  }

  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** Seconds since the last good refresh, or undefined before the first. */
  ageSeconds(): number | undefined {
    return this.#lastSuccessAt === undefined ? undefined : Math.max(0, (this.#now() - this.#lastSuccessAt) / 1000);
  }

  /** True while the last good copy may be used. */
  usable(): boolean {
    return this.#lastSuccessAt !== undefined && this.#now() - this.#lastSuccessAt <= this.#settings.maxStaleMs;
  }

  /**
   * First refresh, then the schedule. Never throws for SDS being down: the gateway starts, denies every client and
   * reports not ready until a refresh succeeds.
   */
  async start(): Promise<void> {
    await this.refresh().catch(() => undefined);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const delay = this.#consecutiveFailures > 0 ? Math.min(this.#settings.retryIntervalMs, this.#settings.refreshIntervalMs) : this.#settings.refreshIntervalMs;
    this.#timer = setTimeout(() => {
      void this.refresh().catch(() => undefined).finally(() => this.#schedule());
    }, delay);
    this.#timer.unref();
  }

  /** Reads SDS and installs the joined registry whole; on any failure keeps the registry in force and throws. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refreshOnce().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refreshOnce(): Promise<void> {
    const startedAt = this.#now();
    let answer: SdsAnswer;
    try {
      answer = await this.#readSds();
    } catch (err) {
      const reason = err instanceof SdsUnavailableError ? err.reason : 'bad-response';
      this.#consecutiveFailures++;
      this.#lastFailure = reason;
      this.#metrics?.refreshed(false);
      this.#logger?.warn(
        { reason, problem: (err as Error).message, consecutiveFailures: this.#consecutiveFailures, ageSeconds: this.ageSeconds() },
        this.#lastSuccessAt === undefined ? 'SDS refresh failed; no registry yet, every client is denied' : 'SDS refresh failed; keeping the last good registry',
      );
      throw err;
    }
    this.#install(answer, this.#overlay);
    this.#lastSuccessAt = startedAt;
    this.#consecutiveFailures = 0;
    this.#lastFailure = undefined;
    this.#staleLogged = false;
    this.#metrics?.refreshed(true);
    this.#logger?.info({ endpoints: this.#endpoints.length, devices: answer.devices.length, mhs: answer.mhs.length }, 'SDS registry refreshed');
  }

  /** Every (ODS code, interaction) search, `concurrency` at a time; the first failure abandons the rest. */
  async #readSds(): Promise<SdsAnswer> {
    const tasks: Array<(signal: AbortSignal) => Promise<void>> = [];
    const devices: SdsDevice[] = [];
    const mhs: SdsMhs[] = [];
    for (const ods of this.#overlay.odsCodes) {
      for (const interaction of this.#interactions) {
        tasks.push(async (signal) => { devices.push(...(await this.#source.searchDevices(ods, interaction, signal))); });
        tasks.push(async (signal) => { mhs.push(...(await this.#source.searchEndpoints(ods, interaction, signal))); });
      }
    }
    const abort = new AbortController();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < tasks.length && !abort.signal.aborted) {
        const task = tasks[next++]!;
        try {
          await task(abort.signal);
        } catch (err) {
          abort.abort();
          throw err;
        }
      }
    };
    const results = await Promise.allSettled(Array.from({ length: Math.min(this.#settings.concurrency, tasks.length) }, worker));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // The first failure is the cause; later ones are searches abandoned because of it.
    if (failed) throw results.map((r) => (r.status === 'rejected' ? r.reason : undefined)).find((e) => !(e instanceof SdsUnavailableError && e.message === 'SDS refresh abandoned')) ?? failed.reason;
    return { devices, mhs };
  }

  #install(answer: SdsAnswer, overlay: SdsOverlay): void {
    const { endpoints, problems } = joinSdsRegistry({ ...answer, overlay, allowedInteractions: new Set(this.#interactions) });
    for (const problem of problems.slice(0, 50)) this.#logger?.warn({ problem }, 'SDS registry: record left out');
    this.#answer = answer;
    this.#overlay = overlay;
    this.#byFqdn = new Map(endpoints.map((e) => [e.fqdn, e]));
    this.#endpoints = endpoints;
    this.#generation++;
  }

  /**
   * Re-reads the overlay and re-joins it with the last SDS answer (no network). A bad overlay keeps the registry in
   * force and throws. A changed list of ODS codes takes effect at the next refresh.
   */
  reload(): void {
    const overlay = loadSdsOverlay(this.config.path);
    if (this.#answer) this.#install(this.#answer, overlay);
    else this.#overlay = overlay;
  }

  endpoints(): readonly Endpoint[] {
    return this.usable() ? this.#endpoints : [];
  }

  resolve(peer: PeerCertificateIdentity): EndpointLookup {
    if (!this.usable()) {
      if (this.#lastSuccessAt !== undefined && !this.#staleLogged) {
        this.#staleLogged = true;
        this.#logger?.error({ ageSeconds: this.ageSeconds(), maxStaleMs: this.#settings.maxStaleMs }, 'SDS registry is older than maxStaleMs; denying every client');
      }
      return { ok: false, reason: 'unregistered-fqdn' };
    }
    return resolveEndpoint(this.#byFqdn, peer);
  }

  /** For /readyz: ready while a good copy younger than maxStaleMs is in force. */
  ready(): Promise<{ ok: boolean; reason: string }> {
    const age = this.ageSeconds();
    const failing = this.#lastFailure ? `; latest refresh failed (${this.#lastFailure}, ${this.#consecutiveFailures} in a row)` : '';
    if (age === undefined) return Promise.resolve({ ok: false, reason: `SDS registry: no successful refresh yet${failing}` });
    if (!this.usable()) return Promise.resolve({ ok: false, reason: `SDS registry: last good copy is ${Math.round(age)} s old, past maxStaleMs${failing}` });
    return Promise.resolve({ ok: true, reason: `SDS registry: ${this.#endpoints.length} endpoints, ${Math.round(age)} s old${failing}` });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#refreshing?.catch(() => undefined);
    await this.#source.close();
  }
}

/** Registry age and refresh outcomes, registered on the gateway's metrics registry. */
class SdsMetrics {
  private readonly refreshes: Counter<'result'>;

  constructor(registry: Registry, source: SdsEndpointRegistry) {
    const p = DEFAULT_METRIC_PREFIX;
    this.refreshes = new Counter({ name: `${p}sds_refresh_total`, help: 'SDS registry refreshes by result (ok, failed); a failed one keeps the last good registry', labelNames: ['result'], registers: [registry] });
    this.refreshes.inc({ result: 'ok' }, 0);
    this.refreshes.inc({ result: 'failed' }, 0);
    new Gauge({
      name: `${p}sds_registry_age_seconds`, help: 'Seconds since the last successful SDS refresh (absent before the first)', registers: [registry],
      collect() {
        const age = source.ageSeconds();
        if (age === undefined) this.reset();
        else this.set(age);
      },
    });
    new Gauge({
      name: `${p}sds_refresh_consecutive_failures`, help: 'SDS refreshes failed since the last successful one', registers: [registry],
      collect() { this.set(source.consecutiveFailures); },
    });
    new Gauge({
      name: `${p}sds_registry_usable`, help: '1 while the SDS registry copy is younger than maxStaleMs, else 0 (every client denied)', registers: [registry],
      collect() { this.set(source.usable() ? 1 : 0); },
    });
    new Gauge({
      name: `${p}sds_registry_endpoints`, help: 'Endpoints (certificate FQDNs) in the SDS registry in force', registers: [registry],
      collect() { this.set(source.endpoints().length); },
    });
  }

  refreshed(ok: boolean): void {
    this.refreshes.inc({ result: ok ? 'ok' : 'failed' });
  }
}
