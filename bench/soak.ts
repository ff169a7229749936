// `npm run bench -- --soak 600`: ten minutes of mixed valid traffic (GET subscription, subscription create and an
// 8 KB publish, at a steady rate each) through the gateway, with its resident memory, open file descriptors and
// requests in flight sampled every --soak-sample seconds (10). It passes when the gateway answered every request
// as NEMS would (0 errors), its RSS after the warm-up stays within ±10 % of the median of those samples, nothing
// is left in flight once the load stops, and its descriptors are back to their count before the load (idle
// upstream connections kept for reuse aside). JWTs live 300 s, so the load runs in segments of one sample
// interval, each with freshly minted tokens (and fresh keep-alive connections).
//
// Options: --soak S (duration), --soak-sample S (10), --soak-warmup S (10 % of the run, at least one sample),
// --soak-rps N (700 in all: 4/7 GET, 2/7 create, 1/7 publish), --soak-connections N (per operation, 4),
// --soak-settle S (10: how long the descriptors may take to return after the load), --engine, --xml, --pki,
// --out (bench/results/soak.json).
import { readdirSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { GatewayChildMessage } from './gateway-child.js';
import { runKeepAlive, type LoadResult, type Target } from './load.js';
import { tcpConnectionsTo, treeRssBytes } from './proc.js';
import { buildScenarios, SCENARIO_NAMES, type ScenarioName } from './scenarios.js';

export interface SoakOptions {
  readonly durationSeconds: number;
  readonly sampleSeconds: number;
  readonly warmupSeconds: number;
  readonly totalRps: number;
  readonly connections: number;
  readonly engine: 'undici' | 'http-proxy';
  readonly xmlParser: 'fast-xml-parser' | 'single-pass';
  /**
   * After the load, how long to wait for the open descriptors to come back to their count before it, less the idle
   * upstream connections the gateway keeps for reuse (as long as the upstream's Keep-Alive allows).
   */
  readonly settleSeconds: number;
}

/** Share of the total rate each operation gets: reads dominate, publishes are the heaviest. */
const MIX: Readonly<Record<ScenarioName, number>> = { get: 4 / 7, create: 2 / 7, publish: 1 / 7 };
/** RSS after the warm-up must stay within this fraction of the median of those samples. */
const RSS_TOLERANCE = 0.1;

export interface SoakSample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly rssMb: number;
  readonly fds: number;
  /** Requests in flight as the gateway counts them, and as nems_gateway_requests_in_flight reports them. */
  readonly inFlight: number;
  readonly inFlightMetric: number;
  /** Requests answered and errors seen since the previous sample (completed segments only). */
  readonly requests: number;
  readonly errors: number;
}

export interface OperationTotals {
  requests: number;
  errors: number;
  readonly statusCounts: Record<string, number>;
}

export interface SoakResult {
  readonly version: 1;
  readonly kind: 'soak';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: { readonly nproc: number; readonly cpuModel: string; readonly node: string; readonly platform: string };
  readonly options: SoakOptions;
  readonly samples: readonly SoakSample[];
  readonly totals: {
    readonly requests: number;
    readonly errors: number;
    readonly byOperation: Record<ScenarioName, OperationTotals>;
  };
  readonly rss: { readonly beforeMb: number; readonly medianAfterWarmupMb: number; readonly minAfterWarmupMb: number; readonly maxAfterWarmupMb: number; readonly maxDeviationPct: number; readonly slopeMbPerMinute: number };
  readonly fds: {
    readonly before: number; readonly minAfterWarmup: number; readonly maxAfterWarmup: number;
    /** 2 s after the load, and how many of those are idle connections to the upstream kept for reuse. */
    readonly after: number; readonly afterUpstreamConnections: number;
  };
  readonly after: { readonly inFlight: number; readonly inFlightMetric: number };
  readonly passed: boolean;
  readonly failures: readonly string[];
}

/** What the soak needs from the benchmark runner (bench/run.ts). */
export interface SoakDeps {
  startUpstream(): Promise<{ child: ChildProcess; origin: string }>;
  startGateway(upstreamOrigin: string): Promise<{ child: ChildProcess; pid: number; origin: string }>;
  stopChild(child: ChildProcess): Promise<void>;
  usage(gw: { child: ChildProcess }): Promise<Extract<GatewayChildMessage, { type: 'usage' }>>;
  tls: { ca: Buffer; cert: Record<'gp-system' | 'child-health', Buffer>; key: Record<'gp-system' | 'child-health', Buffer> };
  machine(): SoakResult['machine'];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;

function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export async function runSoak(opts: SoakOptions, deps: SoakDeps, progress: (line: string) => void): Promise<SoakResult> {
  const startedAt = new Date().toISOString();
  const upstream = await deps.startUpstream();
  const gw = await deps.startGateway(upstream.origin);
  const samples: SoakSample[] = [];
  const byOperation = Object.fromEntries(SCENARIO_NAMES.map((n) => [n, { requests: 0, errors: 0, statusCounts: {} }])) as Record<ScenarioName, OperationTotals>;
  let sinceSample = { requests: 0, errors: 0 };
  try {
    await sleep(500);
    const rssBefore = treeRssBytes([gw.pid]);
    const fdsBefore = openDescriptors(gw.pid);
    progress(`soak: ${opts.durationSeconds} s of mixed traffic at ${opts.totalRps} req/s, a sample every ${opts.sampleSeconds} s (warm-up ${opts.warmupSeconds} s)`);
    progress('    t s   RSS MB   fds  in flight  req  errors');

    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const takeSample = async () => {
      const usage = await deps.usage(gw);
      const sample: SoakSample = {
        t: Math.round(elapsed()),
        rssMb: mb(treeRssBytes([gw.pid])),
        fds: openDescriptors(gw.pid),
        inFlight: usage.inFlight,
        inFlightMetric: usage.inFlightMetric,
        ...sinceSample,
      };
      sinceSample = { requests: 0, errors: 0 };
      samples.push(sample);
      progress(`${String(sample.t).padStart(7)}  ${sample.rssMb.toFixed(1).padStart(7)}  ${String(sample.fds).padStart(4)}  ${String(sample.inFlight).padStart(9)}  ${String(sample.requests).padStart(5)}  ${String(sample.errors).padStart(6)}`);
    };
    // Samples fall in the middle of a segment, while the load runs: the first half an interval in, then every interval.
    let sampling = Promise.resolve();
    const sample = () => {
      sampling = sampling.then(takeSample).catch((err: unknown) => progress(`sample failed: ${(err as Error).message}`));
    };
    let sampler: NodeJS.Timeout | undefined;
    const kickoff = setTimeout(() => {
      sample();
      sampler = setInterval(sample, opts.sampleSeconds * 1000);
    }, opts.sampleSeconds * 500);

    try {
      while (elapsed() < opts.durationSeconds - 0.5) {
        const segment = Math.min(opts.sampleSeconds, opts.durationSeconds - elapsed());
        const scenarios = buildScenarios(Date.now());
        const results = await Promise.all(
          SCENARIO_NAMES.map(async (name): Promise<[ScenarioName, LoadResult]> => {
            const s = scenarios[name];
            const target: Target = { origin: gw.origin, tls: { ca: deps.tls.ca, cert: deps.tls.cert[s.client], key: deps.tls.key[s.client] } };
            return [name, await runKeepAlive(target, s.request, opts.connections, segment, Math.max(1, Math.round(opts.totalRps * MIX[name])))];
          }),
        );
        for (const [name, result] of results) {
          const expected = scenarios[name].expectedStatus;
          const totals = byOperation[name];
          let errors = result.errors;
          for (const [status, count] of Object.entries(result.statusCounts)) {
            totals.statusCounts[status] = (totals.statusCounts[status] ?? 0) + count;
            if (Number(status) !== expected) errors += count;
          }
          totals.requests += result.requests;
          totals.errors += errors;
          sinceSample.requests += result.requests;
          sinceSample.errors += errors;
        }
      }
    } finally {
      clearTimeout(kickoff);
      clearInterval(sampler);
      await sampling;
    }

    // The load has stopped: nothing may stay in flight, and the descriptors of the load's connections go.
    await sleep(2000);
    const usageAfter = await deps.usage(gw);
    const upstreamPort = Number(new URL(upstream.origin).port);
    // Idle upstream connections stay open for reuse; every other descriptor must be back to its count before the load.
    let fdsAfter = openDescriptors(gw.pid);
    let upstreamAfter = tcpConnectionsTo(gw.pid, upstreamPort);
    for (let waited = 0; fdsAfter - upstreamAfter > fdsBefore && waited < opts.settleSeconds * 1000; waited += 500) {
      await sleep(500);
      fdsAfter = openDescriptors(gw.pid);
      upstreamAfter = tcpConnectionsTo(gw.pid, upstreamPort);
    }
    return summarise(opts, {
      startedAt, machine: deps.machine(), samples, byOperation, rssBefore: mb(rssBefore), fdsBefore, fdsAfter, upstreamAfter,
      after: { inFlight: usageAfter.inFlight, inFlightMetric: usageAfter.inFlightMetric },
    });
  } finally {
    await deps.stopChild(gw.child);
    await deps.stopChild(upstream.child);
  }
}

function summarise(
  opts: SoakOptions,
  run: {
    startedAt: string; machine: SoakResult['machine']; samples: SoakSample[]; byOperation: SoakResult['totals']['byOperation'];
    rssBefore: number; fdsBefore: number; fdsAfter: number; upstreamAfter: number; after: SoakResult['after'];
  },
): SoakResult {
  const failures: string[] = [];
  const steady = run.samples.filter((s) => s.t >= opts.warmupSeconds);
  if (steady.length < 2) failures.push(`only ${steady.length} sample(s) after the warm-up; run longer`);
  const rss = steady.map((s) => s.rssMb);
  const sorted = [...rss].sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : 0;
  const maxDeviation = median > 0 ? Math.max(...rss.map((r) => Math.abs(r - median) / median)) : 0;
  if (maxDeviation > RSS_TOLERANCE) failures.push(`RSS after the warm-up strays ${(maxDeviation * 100).toFixed(1)} % from its median (limit ${RSS_TOLERANCE * 100} %)`);
  const requests = Object.values(run.byOperation).reduce((n, o) => n + o.requests, 0);
  const errors = Object.values(run.byOperation).reduce((n, o) => n + o.errors, 0);
  if (errors > 0) failures.push(`${errors} request(s) failed or got another status than NEMS gives a valid request`);
  if (requests === 0) failures.push('no request was answered');
  if (run.after.inFlight !== 0 || run.after.inFlightMetric !== 0) failures.push(`${run.after.inFlight} request(s) still in flight after the load stopped (metric ${run.after.inFlightMetric})`);
  if (run.fdsAfter - run.upstreamAfter > run.fdsBefore) {
    failures.push(`${run.fdsAfter} descriptors open after the load, ${run.upstreamAfter} of them idle upstream connections, against ${run.fdsBefore} before`);
  }
  const fds = steady.map((s) => s.fds);
  return {
    version: 1,
    kind: 'soak',
    startedAt: run.startedAt,
    finishedAt: new Date().toISOString(),
    machine: run.machine,
    options: opts,
    samples: run.samples,
    totals: { requests, errors, byOperation: run.byOperation },
    rss: {
      beforeMb: run.rssBefore,
      medianAfterWarmupMb: median,
      minAfterWarmupMb: sorted[0] ?? 0,
      maxAfterWarmupMb: sorted.at(-1) ?? 0,
      maxDeviationPct: Math.round(maxDeviation * 1000) / 10,
      slopeMbPerMinute: Math.round(slope(steady.map((s) => [s.t / 60, s.rssMb])) * 100) / 100,
    },
    fds: {
      before: run.fdsBefore, minAfterWarmup: fds.length ? Math.min(...fds) : 0, maxAfterWarmup: fds.length ? Math.max(...fds) : 0,
      after: run.fdsAfter, afterUpstreamConnections: run.upstreamAfter,
    },
    after: run.after,
    passed: failures.length === 0,
    failures,
  };
}

/** Least-squares slope of y over x (0 with fewer than two points). */
function slope(points: ReadonlyArray<readonly [number, number]>): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  return sxx > 0 ? sxy / sxx : 0;
}

export function renderSoak(r: SoakResult): string {
  const o = r.options;
  const ops = (Object.entries(r.totals.byOperation) as [ScenarioName, OperationTotals][])
    .map(([name, t]) => `${name} ${t.requests} (${t.errors} errors)`).join(', ');
  return [
    `NEMS gateway soak: ${o.durationSeconds} s, ${o.totalRps} req/s mixed (GET ${Math.round(MIX.get * 100)} %, create ${Math.round(MIX.create * 100)} %, publish ${Math.round(MIX.publish * 100)} %), ` +
      `${o.connections} keep-alive connections per operation, engine ${o.engine}, XML ${o.xmlParser}, log info`,
    `machine: ${r.machine.nproc} × ${r.machine.cpuModel}, node ${r.machine.node}, ${r.machine.platform}`,
    `requests: ${r.totals.requests} answered, ${r.totals.errors} errors (${ops})`,
    `RSS: ${r.rss.beforeMb} MB before; after the ${o.warmupSeconds} s warm-up median ${r.rss.medianAfterWarmupMb} MB, ` +
      `${r.rss.minAfterWarmupMb}–${r.rss.maxAfterWarmupMb} MB, largest deviation ${r.rss.maxDeviationPct} % (limit ±${RSS_TOLERANCE * 100} %), trend ${r.rss.slopeMbPerMinute} MB/min`,
    `open fds: ${r.fds.before} before, ${r.fds.minAfterWarmup}–${r.fds.maxAfterWarmup} under load, ${r.fds.after} after the load ` +
      `(${r.fds.afterUpstreamConnections} of them idle upstream connections kept for reuse)`,
    `in flight after the load: ${r.after.inFlight} (metric ${r.after.inFlightMetric})`,
    r.passed ? 'PASS' : `FAIL: ${r.failures.join('; ')}`,
  ].join('\n');
}
