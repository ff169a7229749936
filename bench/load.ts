// Load generation: autocannon for keep-alive load (its own lean HTTP client, so the load generator takes as little
// of the shared CPU as possible), and a small loop of fresh mTLS connections for the handshake figure. Latencies
// are recorded per response with sub-millisecond precision (autocannon's own histogram keeps whole milliseconds).
import autocannon from 'autocannon';
import { request as httpsRequest } from 'node:https';

export interface Target {
  /** Origin, e.g. https://127.0.0.1:8443 or http://127.0.0.1:5000. */
  readonly origin: string;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer };
}

export interface LoadRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly statusCounts: Record<string, number>;
}

/** Most latencies kept per measurement (bounds memory on a very fast machine). */
const MAX_SAMPLES = 5_000_000;

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

function summarise(latencies: number[], seconds: number, errors: number, statusCounts: Record<string, number>): LoadResult {
  const sorted = Float64Array.from(latencies).sort();
  const requests = Object.values(statusCounts).reduce((a, b) => a + b, 0);
  return {
    requests,
    seconds,
    rps: seconds > 0 ? requests / seconds : 0,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors,
    statusCounts,
  };
}

/** Keep-alive load: `connections` connections, each sending the next request as soon as the last is answered. */
/** Keep-alive load for `durationSeconds`; as fast as the target answers, or at most `overallRate` requests/s in all. */
export function runKeepAlive(target: Target, req: LoadRequest, connections: number, durationSeconds: number, overallRate?: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  const started = performance.now();
  return new Promise<LoadResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${target.origin}${req.path}`,
        method: req.method,
        headers: req.headers,
        ...(req.body !== undefined ? { body: req.body } : {}),
        connections,
        duration: durationSeconds,
        ...(overallRate !== undefined ? { overallRate } : {}),
        // autocannon checks for the end of the run at each sample: sample often so a run ends on time.
        sampleInt: 100,
        timeout: 10,
        ...(target.tls ? { servername: 'localhost', tlsOptions: { cert: target.tls.cert, key: target.tls.key, ca: target.tls.ca } } : {}),
      },
      (err, result) => {
        if (err) return reject(err);
        const seconds = (performance.now() - started) / 1000;
        resolve(summarise(latencies, seconds, result.errors + result.timeouts, statusCounts));
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
      if (latencies.length < MAX_SAMPLES) latencies.push(responseTime);
    });
  });
}

/** One request per brand-new mTLS connection (full handshake, no session resumption), `concurrency` at a time. */
export async function runFreshConnections(target: Target, req: LoadRequest, concurrency: number, durationSeconds: number): Promise<LoadResult> {
  if (!target.tls) throw new Error('fresh-connection load needs TLS');
  const tls = target.tls;
  const url = new URL(target.origin);
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationSeconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const r = httpsRequest(
        {
          host: url.hostname,
          port: Number(url.port),
          method: req.method,
          path: req.path,
          headers: req.headers,
          agent: false,
          servername: 'localhost',
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            statusCounts[res.statusCode ?? 0] = (statusCounts[res.statusCode ?? 0] ?? 0) + 1;
            if (latencies.length < MAX_SAMPLES) latencies.push(performance.now() - t0);
            resolve();
          });
          res.on('error', () => {
            errors++;
            resolve();
          });
        },
      );
      r.setTimeout(10_000, () => r.destroy(new Error('timeout')));
      r.on('error', () => {
        errors++;
        resolve();
      });
      r.end(req.body);
    });
  const worker = async () => {
    // Bounded: stops at the deadline, and after a run of failures.
    for (let i = 0; i < 10_000_000 && performance.now() < deadline; i++) {
      await one();
      if (errors > 1000) break;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return summarise(latencies, (performance.now() - started) / 1000, errors, statusCounts);
}
