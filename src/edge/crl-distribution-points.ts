// Revocation that maintains itself (issue 16 point 3): each configured CRL distribution point
// (RFC 5280 §4.2.1.13, HTTP) is fetched on a schedule — at least every refreshIntervalSeconds and again before the copy in
// force reaches its nextUpdate — and a copy is kept only when it is one CRL, signed by a configured CA, current and
// not older than the one it replaces. The last good copy lives in cacheDir (so a restart while the distribution
// point is down still has it); loadEdgeTls reads those copies with server.tls.crl, and a newly cached copy makes
// the app reload its TLS material (which also closes live connections the new CRL revokes). When a distribution
// point stays down, its copy ages into staleness and /readyz reports it; OpenSSL refuses the CA's clients from the
// CRL's nextUpdate on (fail closed).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { BoundedHttpError, boundedHttp } from './bounded-http.js';
import { parseCrls, type ParsedCrl } from './pki.js';
import { TrustMaterialError, checkDistributionPointCrl, type CrlSource, type TrustRefusalReason } from './trust-material.js';

type TlsConfig = Config['server']['tls'];
type DistributionPointConfig = TlsConfig['crlDistributionPoints'];

export type CrlFetchResult = 'updated' | 'unchanged' | 'failed' | 'refused';

export interface CrlFetchObserver {
  fetched(result: CrlFetchResult): void;
  refused(reason: TrustRefusalReason): void;
}

/** Where the last good copy of `url` is kept. */
export function cacheFileOf(config: DistributionPointConfig, url: string): string {
  return join(config.cacheDir, `${createHash('sha256').update(url).digest('hex').slice(0, 32)}.crl`);
}

/** The cached copies of the configured distribution points (those that have one), as CRL sources. */
export function cachedDistributionPointCrls(config: DistributionPointConfig): CrlSource[] {
  const sources: CrlSource[] = [];
  for (const url of config.urls) {
    const file = cacheFileOf(config, url);
    if (!existsSync(file)) continue;
    try {
      sources.push({ origin: `${url} (cached copy)`, input: readFileSync(file) });
    } catch (err) {
      throw new Error(`server.tls.crlDistributionPoints: cannot read the cached copy ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return sources;
}

interface PointState {
  readonly url: string;
  copy?: ParsedCrl;
  etag?: string;
  lastModified?: string;
  lastSuccessAt?: number;
  lastProblem?: string;
  timer?: NodeJS.Timeout;
}

export interface CrlDistributionPoints {
  /** Fetches every distribution point once (start-up, check-config). Failures are logged and counted, never thrown. */
  fetchAll(): Promise<void>;
  /** Keeps each distribution point refreshed on its schedule from now on. */
  start(): void;
  stop(): void;
  /** For /readyz: every distribution point has a current copy. */
  readiness(): { ok: boolean; reason: string };
}

export interface CrlDistributionPointOptions {
  readonly tls: TlsConfig;
  /** A newer CRL was cached: load it (app.reload(['tls'])). */
  readonly onUpdated?: (url: string) => void;
  readonly observer?: CrlFetchObserver;
  readonly logger?: Pick<Logger, 'info' | 'warn'>;
  readonly now?: () => number;
}

export function createCrlDistributionPoints(options: CrlDistributionPointOptions): CrlDistributionPoints {
  const config = options.tls.crlDistributionPoints;
  const now = options.now ?? Date.now;
  const graceMs = options.tls.crlGraceSeconds * 1000;
  let running = false;
  const points: PointState[] = config.urls.map((url) => {
    const state: PointState = { url };
    // The cached copy is what is in force after a restart (loadEdgeTls validates it); read it for the schedule.
    try {
      const file = cacheFileOf(config, url);
      if (existsSync(file)) state.copy = parseCrls(readFileSync(file))[0];
    } catch {
      state.lastProblem = 'cached copy unreadable';
    }
    return state;
  });

  async function fetchOne(point: PointState): Promise<CrlFetchResult> {
    let problem: string;
    try {
      const response = await boundedHttp(point.url, {
        timeoutMs: config.timeoutMs,
        maxBytes: config.maxBytes,
        headers: {
          accept: 'application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1',
          ...(point.copy && point.etag ? { 'if-none-match': point.etag } : {}),
          ...(point.copy && point.lastModified ? { 'if-modified-since': point.lastModified } : {}),
        },
      });
      if (response.status === 304 && point.copy) return succeeded(point, 'unchanged');
      if (response.status !== 200) {
        problem = `HTTP ${response.status}`;
      } else {
        if (point.copy && response.body.equals(point.copy.der)) return succeeded(point, 'unchanged', response.headers);
        const crl = checkDistributionPointCrl({
          origin: point.url,
          body: response.body,
          caPem: readFileSync(options.tls.ca),
          ...(point.copy ? { previous: point.copy } : {}),
          graceSeconds: options.tls.crlGraceSeconds,
          now: new Date(now()),
        });
        writeAtomically(cacheFileOf(config, point.url), crl.der);
        point.copy = crl;
        options.logger?.info({ url: point.url, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked: crl.revoked.size }, 'fetched a new CRL from its distribution point');
        return succeeded(point, 'updated', response.headers);
      }
    } catch (err) {
      if (err instanceof TrustMaterialError) {
        point.lastProblem = `refused: ${err.message}`;
        options.observer?.refused(err.reason);
        options.logger?.warn({ url: point.url, reason: err.reason, problem: err.message }, 'refused the CRL a distribution point served; keeping the last good copy');
        return 'refused';
      }
      problem = err instanceof BoundedHttpError ? err.message : (err as NodeJS.ErrnoException).code ?? 'fetch failed';
    }
    point.lastProblem = problem;
    options.logger?.warn({ url: point.url, problem }, 'cannot fetch the CRL from its distribution point; keeping the last good copy');
    return 'failed';
  }

  function succeeded(point: PointState, result: 'updated' | 'unchanged', headers?: Record<string, unknown>): CrlFetchResult {
    point.lastSuccessAt = now();
    delete point.lastProblem;
    const etag = headers?.['etag'];
    const lastModified = headers?.['last-modified'];
    if (typeof etag === 'string') point.etag = etag;
    if (typeof lastModified === 'string') point.lastModified = lastModified;
    return result;
  }

  async function run(point: PointState): Promise<void> {
    const result = await fetchOne(point);
    options.observer?.fetched(result);
    if (result === 'updated') options.onUpdated?.(point.url);
  }

  /** Seconds until the next fetch: the interval, sooner before nextUpdate, the retry delay after a failure. */
  function delayMs(point: PointState): number {
    const interval = config.refreshIntervalSeconds * 1000;
    const retry = Math.min(config.retrySeconds * 1000, interval);
    if (point.lastProblem || !point.copy?.nextUpdate) return retry;
    const untilMargin = point.copy.nextUpdate.getTime() - config.refreshMarginSeconds * 1000 - now();
    return untilMargin > 0 ? Math.min(interval, untilMargin) : retry;
  }

  function schedule(point: PointState): void {
    if (!running) return;
    point.timer = setTimeout(() => {
      void run(point).finally(() => schedule(point));
    }, delayMs(point));
    point.timer.unref();
  }

  return {
    async fetchAll() {
      await Promise.all(points.map(run));
    },
    start() {
      if (running) return;
      running = true;
      for (const point of points) schedule(point);
    },
    stop() {
      running = false;
      for (const point of points) clearTimeout(point.timer);
    },
    readiness() {
      const at = now();
      const lines: string[] = [];
      let ok = true;
      for (const point of points) {
        const next = point.copy?.nextUpdate;
        const current = next !== undefined && at <= next.getTime() + graceMs;
        if (!current) ok = false;
        const copy = next ? `copy current until ${new Date(next.getTime() + graceMs).toISOString()}` : 'no copy';
        lines.push(`${point.url}: ${current ? copy : `${copy} (stale)`}${point.lastProblem ? `; last fetch ${point.lastProblem}` : ''}`);
      }
      return { ok, reason: lines.join('; ') };
    },
  };
}

/** Write a sibling, then rename over the original: a reader never sees half a CRL. */
function writeAtomically(file: string, content: Buffer): void {
  mkdirSync(join(file, '..'), { recursive: true });
  const temp = `${file}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(temp, content);
  renameSync(temp, file);
}

/**
 * Fetches every configured distribution point once into the cache, as start-up does (check-config, so it
 * validates what start-up would load). A no-op without distribution points or with revocation none.
 */
export async function fetchDistributionPointsOnce(tls: TlsConfig, logger?: Pick<Logger, 'info' | 'warn'>): Promise<void> {
  if (tls.revocation !== 'crl' || tls.crlDistributionPoints.urls.length === 0) return;
  await createCrlDistributionPoints({ tls, ...(logger ? { logger } : {}) }).fetchAll();
}
