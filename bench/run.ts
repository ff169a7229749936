// `npm run bench`: measures what putting the gateway in the path costs. One run starts a loopback NEMS stand-in
// (child process), the gateway with the example config (child process, so its CPU and memory are its own) and
// drives the same load through the gateway and straight to the upstream: GET subscription, subscription create
// (JSON, explicit, NHS number cached in PDS) and an 8 KB vaccination publish; then one request per new mTLS
// connection. Prints a table and writes JSON (bench/results/latest.json by default). See docs/benchmark.md.
//
// Options: --short (CI: 1 s per measurement), --engine undici|http-proxy, --xml fast-xml-parser|single-pass, --log silent,info (gateway log levels
// to run, each in its own gateway process; info logs one line per request to /dev/null), --connections N,
// --duration S, --warmup S, --scenarios get,create,publish, --no-handshakes, --no-calibrate (skip the bare
// node:https and bare undici-proxy floors, which the short mode skips anyway), --pki DIR (generated when
// missing), --out FILE, --profile (writes the gateway's --cpu-prof profile to bench/results/profiles).
// --soak S runs the soak instead (bench/soak.ts): S seconds of mixed valid traffic with RSS, open descriptors and
// requests in flight sampled every 10 s.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateExampleCertificates } from '../certs-example/generate.js';
import { readCommandArgs, type CommandSpec, type OptionSpec, type OptionSpecs } from '../src/cli/args.js';
import { DEFAULT_CERTS_DIR, PROJECT_ROOT } from '../src/paths.js';
import type { GatewayChildMessage } from './gateway-child.js';
import { runFreshConnections, runKeepAlive, type LoadResult, type Target } from './load.js';
import { PROC_AVAILABLE, processTree, treeCpuMicros, treeRssBytes, type CpuMicros } from './proc.js';
import { buildScenarios, SCENARIO_NAMES, type Scenario, type ScenarioName } from './scenarios.js';
import { renderSoak, runSoak, type SoakOptions } from './soak.js';

const HERE = dirname(fileURLToPath(import.meta.url));
type Engine = 'undici' | 'http-proxy';
type LogLevel = 'silent' | 'warn' | 'info';

export interface BenchOptions {
  readonly short: boolean;
  readonly engine: Engine;
  /** nems.xmlParser for the gateway under test. */
  readonly xmlParser: 'fast-xml-parser' | 'single-pass';
  readonly logLevels: readonly LogLevel[];
  readonly connections: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly handshakeConcurrency: number;
  readonly scenarios: readonly ScenarioName[];
  readonly handshakes: boolean;
  /** Also measure the floors (bare node:https server, bare undici proxy) under the GET load. */
  readonly calibrate: boolean;
  readonly pkiDir: string;
  readonly out: string;
  readonly profile: boolean;
}

export interface Measurement extends LoadResult {
  /** Share of responses with the status NEMS gives a request that passes (1 = all). */
  readonly expectedStatusShare: number;
}

export interface GatewayMeasurement extends Measurement {
  /** CPU (user + system) of the gateway process tree per completed request, in microseconds. */
  readonly cpuMicrosPerRequest: number;
  /** The kernel's part of it (system time), in microseconds per request. */
  readonly systemCpuMicrosPerRequest: number;
  /** Gateway process tree CPU use during the measurement, in cores (1 = one core busy). */
  readonly cpuCores: number;
  /** Highest gateway process-tree RSS sampled during this measurement (warm-up included), in MB. */
  readonly rssMaxMb?: number;
}

export interface BenchResult {
  readonly version: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: { readonly nproc: number; readonly cpuModel: string; readonly node: string; readonly platform: string };
  readonly options: Omit<BenchOptions, 'out' | 'pkiDir'> & { readonly cpuSource: 'proc' | 'process.cpuUsage' };
  readonly scenarios: readonly {
    readonly name: ScenarioName;
    readonly label: string;
    readonly expectedStatus: number;
    readonly direct: Measurement;
    readonly gateway: Partial<Record<LogLevel, GatewayMeasurement>>;
    /** gateway ÷ direct for each log level: rps (< 1 = slower), latencies (> 1 = slower). */
    readonly ratio: Partial<Record<LogLevel, { readonly rps: number; readonly p50: number; readonly p99: number }>>;
  }[];
  readonly handshakes: Partial<Record<LogLevel, GatewayMeasurement & { readonly perSecond: number }>>;
  /** GET load on a bare node:https server (`https`) and a bare undici proxy (`proxy`): the machine's floor. */
  readonly calibration: Partial<Record<'https' | 'proxy', GatewayMeasurement>>;
  readonly rssMb: Partial<Record<LogLevel, { readonly before: number; readonly duringMax: number; readonly after: number }>>;
}

const BENCH_COMMAND = {
  name: 'bench',
  usage: `usage: npm run bench -- [options]   (node dist/bench/run.js [options])

options: --short, --engine undici|http-proxy, --xml fast-xml-parser|single-pass, --log silent,warn,info,
  --connections N, --duration S, --warmup S, --scenarios ${SCENARIO_NAMES.join(',')}, --no-handshakes,
  --handshake-concurrency N, --calibrate, --no-calibrate, --pki DIR, --out FILE, --profile, -h/--help
soak: --soak S [--soak-sample S] [--soak-warmup S] [--soak-rps N] [--soak-connections N] [--soak-settle S]
  (see bench/run.ts, bench/soak.ts and docs/benchmark.md)
`,
  options: Object.fromEntries([
    ...['engine', 'xml', 'log', 'connections', 'duration', 'warmup', 'handshake-concurrency', 'scenarios', 'pki', 'out',
      'soak', 'soak-sample', 'soak-warmup', 'soak-rps', 'soak-connections', 'soak-settle'].map((n) => [n, { type: 'string' }] as const),
    ...['short', 'no-handshakes', 'calibrate', 'no-calibrate', 'profile'].map((n) => [n, { type: 'boolean' }] as const),
  ]) as Record<string, OptionSpec>,
} as const satisfies CommandSpec<OptionSpecs>;

type Flags = Readonly<Record<string, string | true | undefined>>;

/** Readers over the parsed command line: a string, a flag, a positive number, and the two engine choices. */
function optionReader(flags: Flags) {
  const value = (name: string): string | undefined => {
    const v = flags[name.slice(2)];
    return typeof v === 'string' ? v : undefined;
  };
  const flag = (name: string): boolean => flags[name.slice(2)] === true;
  const number = (name: string, fallback: number): number => {
    const v = value(name);
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
    return n;
  };
  const engines = (): { engine: Engine; xmlParser: BenchOptions['xmlParser'] } => {
    const engine = value('--engine') ?? 'undici';
    if (engine !== 'undici' && engine !== 'http-proxy') throw new Error('--engine must be undici or http-proxy');
    const xmlParser = value('--xml') ?? 'single-pass';
    if (xmlParser !== 'fast-xml-parser' && xmlParser !== 'single-pass') throw new Error('--xml must be fast-xml-parser or single-pass');
    return { engine, xmlParser };
  };
  return { value, flag, number, engines };
}

function parseOptions(flags: Flags): BenchOptions {
  const { value, flag, number, engines } = optionReader(flags);
  const short = flag('--short');
  const { engine, xmlParser } = engines();
  const logLevels = (value('--log') ?? (short ? 'info' : 'silent,info')).split(',');
  for (const l of logLevels) if (l !== 'silent' && l !== 'warn' && l !== 'info') throw new Error('--log takes silent, warn and/or info');
  const scenarios = (value('--scenarios') ?? SCENARIO_NAMES.join(',')).split(',');
  for (const s of scenarios) if (!SCENARIO_NAMES.includes(s as ScenarioName)) throw new Error(`unknown scenario ${s}`);
  const durationSeconds = number('--duration', short ? 1 : 8);
  const warmupSeconds = number('--warmup', short ? 0.3 : 2);
  const opts: BenchOptions = {
    short,
    engine,
    xmlParser,
    logLevels: logLevels as LogLevel[],
    connections: Math.round(number('--connections', 16)),
    durationSeconds,
    warmupSeconds,
    handshakeConcurrency: Math.round(number('--handshake-concurrency', 8)),
    scenarios: scenarios as ScenarioName[],
    handshakes: !flag('--no-handshakes'),
    calibrate: flag('--calibrate') || (!short && !flag('--no-calibrate')),
    pkiDir: resolve(value('--pki') ?? DEFAULT_CERTS_DIR),
    out: resolve(value('--out') ?? join(PROJECT_ROOT, 'bench', 'results', 'latest.json')),
    profile: flag('--profile'),
  };
  // Bounded: the JWTs minted at the start live 300 s and the issue allows 3 minutes.
  const perGateway = opts.scenarios.length * (durationSeconds + warmupSeconds) + (opts.handshakes ? durationSeconds : 0);
  const estimate =
    opts.scenarios.length * (durationSeconds + warmupSeconds) + opts.logLevels.length * (perGateway + 3) +
    (opts.calibrate ? 2 * (durationSeconds + warmupSeconds + 1) : 0);
  if (estimate > 175) throw new Error(`this run would take about ${Math.round(estimate)} s; keep it under 3 minutes`);
  return opts;
}

function ensurePki(dir: string): void {
  const needed = ['ca.pem', 'crl.pem', 'server.pem', 'server-key.pem', 'gp-system.pem', 'gp-system-key.pem', 'child-health.pem', 'child-health-key.pem'];
  if (needed.every((f) => existsSync(join(dir, f)))) return;
  generateExampleCertificates(dir);
}

function waitForMessage<T>(child: ChildProcess, accept: (msg: unknown) => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (msg: unknown) => {
      const failed = (msg as { type?: string; problem?: string })?.type === 'failed';
      if (failed) {
        cleanup();
        reject(new Error(`${what}: ${(msg as { problem?: string }).problem}`));
        return;
      }
      const accepted = accept(msg);
      if (accepted !== undefined) {
        cleanup();
        resolvePromise(accepted);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what}: process exited (${code})`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (child.connected) child.send({ type: 'stop' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

const children: ChildProcess[] = [];

async function startUpstream(): Promise<{ child: ChildProcess; origin: string }> {
  const child = fork(join(HERE, 'upstream.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  const port = await waitForMessage(child, (m) => ((m as { type?: string }).type === 'ready' ? (m as { port: number }).port : undefined), 10_000, 'upstream');
  return { child, origin: `http://127.0.0.1:${port}` };
}

interface GatewayProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly origin: string;
}

async function startCalibrationServer(mode: 'https' | 'proxy', pkiDir: string, upstreamOrigin: string): Promise<GatewayProcess> {
  const child = fork(join(HERE, 'calibration-server.js'), [mode, pkiDir, upstreamOrigin], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  const port = await waitForMessage(child, (m) => ((m as { type?: string }).type === 'ready' ? (m as { port: number }).port : undefined), 10_000, `calibration ${mode}`);
  return { child, pid: child.pid!, origin: `https://127.0.0.1:${port}` };
}

async function startGatewayChild(opts: BenchOptions, logLevel: LogLevel, upstreamOrigin: string): Promise<GatewayProcess> {
  const profileDir = join(PROJECT_ROOT, 'bench', 'results', 'profiles');
  if (opts.profile) mkdirSync(profileDir, { recursive: true });
  const child = fork(join(HERE, 'gateway-child.js'), [opts.pkiDir, opts.engine, opts.xmlParser], {
    // The log (stdout) goes to /dev/null: the cost of writing every line is measured, not a terminal's speed.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=gateway-${opts.engine}-${logLevel}.cpuprofile`] : [],
    env: {
      ...process.env,
      NEMS_GATEWAY_PORT: '0',
      NEMS_GATEWAY_ADMIN_PORT: '0',
      NEMS_GATEWAY_UPSTREAM_URL: upstreamOrigin,
      NEMS_GATEWAY_LOG_LEVEL: logLevel,
      NEMS_GATEWAY_WORKERS: '1',
    },
  });
  children.push(child);
  const port = await waitForMessage(child, (m) => ((m as GatewayChildMessage).type === 'ready' ? (m as { port: number }).port : undefined), 30_000, 'gateway');
  return { child, pid: child.pid!, origin: `https://127.0.0.1:${port}` };
}

/** Gateway process-tree CPU in microseconds: /proc when there is one, else the process's own cpuUsage over IPC. */
async function gatewayCpu(gw: GatewayProcess): Promise<CpuMicros> {
  if (PROC_AVAILABLE) return treeCpuMicros(gw.pid);
  const usage = await gatewayUsage(gw);
  return { total: usage.userMicros + usage.systemMicros, system: usage.systemMicros };
}

function gatewayUsage(gw: GatewayProcess): Promise<Extract<GatewayChildMessage, { type: 'usage' }>> {
  const answer = waitForMessage(gw.child, (m) => ((m as GatewayChildMessage).type === 'usage' ? (m as Extract<GatewayChildMessage, { type: 'usage' }>) : undefined), 5_000, 'gateway usage');
  gw.child.send({ type: 'usage' });
  return answer;
}

async function gatewayRss(gw: GatewayProcess): Promise<number> {
  if (PROC_AVAILABLE) return treeRssBytes(processTree(gw.pid));
  return (await gatewayUsage(gw)).rssBytes;
}

function withExpected(result: LoadResult, expectedStatus: number): Measurement {
  const expected = result.statusCounts[String(expectedStatus)] ?? 0;
  return { ...result, expectedStatusShare: result.requests > 0 ? expected / result.requests : 0 };
}

async function measureGateway(gw: GatewayProcess, run: () => Promise<LoadResult>, expectedStatus: number): Promise<GatewayMeasurement> {
  const cpuBefore = await gatewayCpu(gw);
  const result = await run();
  const cpuAfter = await gatewayCpu(gw);
  const cpu = cpuAfter.total - cpuBefore.total;
  return {
    ...withExpected(result, expectedStatus),
    cpuMicrosPerRequest: result.requests > 0 ? cpu / result.requests : 0,
    systemCpuMicrosPerRequest: result.requests > 0 ? (cpuAfter.system - cpuBefore.system) / result.requests : 0,
    cpuCores: result.seconds > 0 ? cpu / (result.seconds * 1_000_000) : 0,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function machine(): BenchResult['machine'] {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    // not Linux
  }
  return { nproc: availableParallelism(), cpuModel, node: process.version, platform: `${process.platform}-${process.arch}` };
}

export async function runBenchmark(opts: BenchOptions, progress: (line: string) => void): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  ensurePki(opts.pkiDir);
  const tls = {
    ca: readFileSync(join(opts.pkiDir, 'ca.pem')),
    cert: { 'gp-system': readFileSync(join(opts.pkiDir, 'gp-system.pem')), 'child-health': readFileSync(join(opts.pkiDir, 'child-health.pem')) },
    key: { 'gp-system': readFileSync(join(opts.pkiDir, 'gp-system-key.pem')), 'child-health': readFileSync(join(opts.pkiDir, 'child-health-key.pem')) },
  };
  const all = buildScenarios();
  const scenarios: Scenario[] = opts.scenarios.map((n) => all[n]);
  const upstream = await startUpstream();
  const directTarget: Target = { origin: upstream.origin };
  const keepAlive = async (target: Target, s: Scenario) => {
    await runKeepAlive(target, s.request, opts.connections, opts.warmupSeconds);
    return runKeepAlive(target, s.request, opts.connections, opts.durationSeconds);
  };

  const direct = new Map<ScenarioName, Measurement>();
  for (const s of scenarios) {
    progress(`direct    ${s.label} ...`);
    direct.set(s.name, withExpected(await keepAlive(directTarget, s), s.expectedStatus));
  }

  const calibration: BenchResult['calibration'] = {};
  if (opts.calibrate && PROC_AVAILABLE) {
    for (const mode of ['https', 'proxy'] as const) {
      progress(`floor     bare ${mode === 'https' ? 'node:https server' : 'undici proxy'}, GET ...`);
      const server = await startCalibrationServer(mode, opts.pkiDir, upstream.origin);
      const s = all.get;
      const target: Target = { origin: server.origin, tls: { ca: tls.ca, cert: tls.cert[s.client], key: tls.key[s.client] } };
      await runKeepAlive(target, s.request, opts.connections, opts.warmupSeconds);
      calibration[mode] = await measureGateway(server, () => runKeepAlive(target, s.request, opts.connections, opts.durationSeconds), s.expectedStatus);
      await stopChild(server.child);
    }
  }

  const gateway = new Map<ScenarioName, Partial<Record<LogLevel, GatewayMeasurement>>>();
  const handshakes: BenchResult['handshakes'] = {};
  const rssMb: BenchResult['rssMb'] = {};
  for (const level of opts.logLevels) {
    const gw = await startGatewayChild(opts, level, upstream.origin);
    await sleep(500);
    const before = await gatewayRss(gw);
    let duringMax = before;
    let phaseMax = before;
    const sampler = setInterval(() => {
      void gatewayRss(gw).then((rss) => {
        duringMax = Math.max(duringMax, rss);
        phaseMax = Math.max(phaseMax, rss);
      }, () => {});
    }, 250);
    /** Runs one measurement and notes the highest RSS seen while it (and its warm-up) ran. */
    const phase = async (run: () => Promise<GatewayMeasurement>): Promise<GatewayMeasurement> => {
      phaseMax = 0;
      const m = await run();
      return { ...m, rssMaxMb: mb(Math.max(phaseMax, await gatewayRss(gw))) };
    };
    try {
      for (const s of scenarios) {
        progress(`gateway   ${s.label} (log ${level}) ...`);
        const target: Target = { origin: gw.origin, tls: { ca: tls.ca, cert: tls.cert[s.client], key: tls.key[s.client] } };
        const m = await phase(async () => {
          await runKeepAlive(target, s.request, opts.connections, opts.warmupSeconds);
          return measureGateway(gw, () => runKeepAlive(target, s.request, opts.connections, opts.durationSeconds), s.expectedStatus);
        });
        gateway.set(s.name, { ...gateway.get(s.name), [level]: m });
      }
      if (opts.handshakes) {
        progress(`gateway   new mTLS connection per GET (log ${level}) ...`);
        const s = all.get;
        const target: Target = { origin: gw.origin, tls: { ca: tls.ca, cert: tls.cert[s.client], key: tls.key[s.client] } };
        const m = await phase(() => measureGateway(gw, () => runFreshConnections(target, s.request, opts.handshakeConcurrency, opts.durationSeconds), s.expectedStatus));
        handshakes[level] = { ...m, perSecond: m.rps };
      }
    } finally {
      clearInterval(sampler);
    }
    await sleep(1000);
    const after = await gatewayRss(gw);
    rssMb[level] = { before: mb(before), duringMax: mb(Math.max(duringMax, after)), after: mb(after) };
    await stopChild(gw.child);
  }
  await stopChild(upstream.child);

  const { out: _out, pkiDir: _pki, ...shown } = opts;
  return {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: machine(),
    options: { ...shown, cpuSource: PROC_AVAILABLE ? 'proc' : 'process.cpuUsage' },
    scenarios: scenarios.map((s) => {
      const d = direct.get(s.name)!;
      const g = gateway.get(s.name) ?? {};
      const ratio: Partial<Record<LogLevel, { rps: number; p50: number; p99: number }>> = {};
      for (const [level, m] of Object.entries(g) as [LogLevel, GatewayMeasurement][]) {
        ratio[level] = { rps: safeRatio(m.rps, d.rps), p50: safeRatio(m.p50Ms, d.p50Ms), p99: safeRatio(m.p99Ms, d.p99Ms) };
      }
      return { name: s.name, label: s.label, expectedStatus: s.expectedStatus, direct: d, gateway: g, ratio };
    }),
    handshakes,
    calibration,
    rssMb,
  };
}

function mb(bytes: number): number {
  return Math.round((bytes / (1024 * 1024)) * 10) / 10;
}

function safeRatio(a: number, b: number): number {
  return b > 0 ? Math.round((a / b) * 100) / 100 : 0;
}

function fixed(n: number, digits: number): string {
  return n.toFixed(digits);
}

export function renderTable(r: BenchResult): string {
  const lines: string[] = [];
  const o = r.options;
  lines.push(`NEMS gateway benchmark: engine ${o.engine}, XML parser ${o.xmlParser}, ${o.connections} keep-alive connections, ${o.durationSeconds} s per measurement after ${o.warmupSeconds} s warm-up${o.short ? ' (short mode)' : ''}`);
  lines.push(`machine: ${r.machine.nproc} × ${r.machine.cpuModel}, node ${r.machine.node}, ${r.machine.platform}; load generator, gateway and upstream share it`);
  lines.push(`gateway log: ${o.logLevels.map((l) => (l === 'silent' ? 'silent (no request lines)' : `${l} (one line per request to /dev/null)`)).join(' | ')}; CPU from ${o.cpuSource}`);
  lines.push('');
  const header = ['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', '(kernel)', 'rps ratio', 'p50 ratio', 'p99 ratio', 'RSS MB', 'ok'];
  const rows: string[][] = [header];
  for (const s of r.scenarios) {
    rows.push([s.label, 'direct', fixed(s.direct.rps, 0), fixed(s.direct.p50Ms, 2), fixed(s.direct.p99Ms, 2), '', '', '', '', '', '', pct(s.direct.expectedStatusShare)]);
    for (const [level, m] of Object.entries(s.gateway) as [LogLevel, GatewayMeasurement][]) {
      const ratio = s.ratio[level]!;
      rows.push(['', `gateway (log ${level})`, fixed(m.rps, 0), fixed(m.p50Ms, 2), fixed(m.p99Ms, 2), fixed(m.cpuMicrosPerRequest, 0), fixed(m.systemCpuMicrosPerRequest, 0), fixed(ratio.rps, 2), fixed(ratio.p50, 2), fixed(ratio.p99, 2), rssCell(m), pct(m.expectedStatusShare)]);
    }
  }
  for (const [level, h] of Object.entries(r.handshakes) as [LogLevel, GatewayMeasurement & { perSecond: number }][]) {
    rows.push(['new mTLS conn per GET', `gateway (log ${level})`, fixed(h.perSecond, 0), fixed(h.p50Ms, 2), fixed(h.p99Ms, 2), fixed(h.cpuMicrosPerRequest, 0), fixed(h.systemCpuMicrosPerRequest, 0), '', '', '', rssCell(h), pct(h.expectedStatusShare)]);
  }
  for (const [mode, m] of Object.entries(r.calibration) as ['https' | 'proxy', GatewayMeasurement][]) {
    const label = mode === 'https' ? 'floor: bare node:https' : 'floor: bare undici proxy';
    rows.push([label, 'GET, no checks', fixed(m.rps, 0), fixed(m.p50Ms, 2), fixed(m.p99Ms, 2), fixed(m.cpuMicrosPerRequest, 0), fixed(m.systemCpuMicrosPerRequest, 0), '', '', '', '', pct(m.expectedStatusShare)]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const [i, row] of rows.entries()) {
    lines.push(row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
    if (i === 0) lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  lines.push('');
  for (const [level, rss] of Object.entries(r.rssMb)) {
    lines.push(`gateway RSS (log ${level}): before ${rss.before} MB, during (max) ${rss.duringMax} MB, after ${rss.after} MB`);
  }
  return lines.join('\n');
}

function rssCell(m: GatewayMeasurement): string {
  return m.rssMaxMb === undefined ? '' : fixed(m.rssMaxMb, 0);
}

function pct(share: number): string {
  return `${Math.floor(share * 1000) / 10}%`;
}

function parseSoakOptions(flags: Flags): SoakOptions & { readonly pkiDir: string; readonly out: string } {
  const { value, number, engines } = optionReader(flags);
  const durationSeconds = number('--soak', 600);
  const sampleSeconds = number('--soak-sample', 10);
  const { engine, xmlParser } = engines();
  if (durationSeconds > 6 * 3600) throw new Error('--soak is bounded at 6 hours');
  return {
    durationSeconds,
    sampleSeconds,
    warmupSeconds: number('--soak-warmup', Math.max(sampleSeconds, Math.round(durationSeconds / 10))),
    totalRps: Math.round(number('--soak-rps', 700)),
    connections: Math.round(number('--soak-connections', 4)),
    settleSeconds: number('--soak-settle', 10),
    engine,
    xmlParser,
    pkiDir: resolve(value('--pki') ?? DEFAULT_CERTS_DIR),
    out: resolve(value('--out') ?? join(PROJECT_ROOT, 'bench', 'results', 'soak.json')),
  };
}

async function soakMain(flags: Flags): Promise<number> {
  const { pkiDir, out, ...opts } = parseSoakOptions(flags);
  const watchdog = setTimeout(() => {
    process.stderr.write('soak exceeded its time bound; stopping\n');
    for (const c of children) c.kill('SIGKILL');
    process.exit(3);
  }, (opts.durationSeconds + 120) * 1000);
  watchdog.unref();
  if (!PROC_AVAILABLE) throw new Error('the soak samples /proc/<pid> (Linux)');
  ensurePki(pkiDir);
  const benchOpts = { pkiDir, engine: opts.engine, xmlParser: opts.xmlParser, profile: false } as BenchOptions;
  const result = await runSoak(opts, {
    startUpstream,
    startGateway: (upstreamOrigin) => startGatewayChild(benchOpts, 'info', upstreamOrigin),
    stopChild,
    usage: (gw) => gatewayUsage(gw as GatewayProcess),
    tls: {
      ca: readFileSync(join(pkiDir, 'ca.pem')),
      cert: { 'gp-system': readFileSync(join(pkiDir, 'gp-system.pem')), 'child-health': readFileSync(join(pkiDir, 'child-health.pem')) },
      key: { 'gp-system': readFileSync(join(pkiDir, 'gp-system-key.pem')), 'child-health': readFileSync(join(pkiDir, 'child-health-key.pem')) },
    },
    machine,
  }, (line) => process.stderr.write(`${line}\n`));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${renderSoak(result)}\n\nJSON: ${out}\n`);
  return result.passed ? 0 : 2;
}

async function main(): Promise<number> {
  const args = readCommandArgs(BENCH_COMMAND, process.argv.slice(2));
  if (typeof args === 'number') return args;
  const flags = args.values as Flags;
  if (flags.soak !== undefined) return soakMain(flags);
  const opts = parseOptions(flags);
  // A hard stop well inside the JWTs' 300 s lifetime, whatever happens.
  const watchdog = setTimeout(() => {
    process.stderr.write('benchmark exceeded its time bound; stopping\n');
    for (const c of children) c.kill('SIGKILL');
    process.exit(3);
  }, 200_000);
  watchdog.unref();
  const result = await runBenchmark(opts, (line) => process.stderr.write(`${line}\n`));
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${renderTable(result)}\n\nJSON: ${opts.out}\n`);
  // A benchmark of rejections or errors measures the wrong thing: fail so nobody reads its figures.
  const measurements = [
    ...result.scenarios.flatMap((s) => [s.direct, ...Object.values(s.gateway)]),
    ...Object.values(result.handshakes),
    ...Object.values(result.calibration),
  ];
  const bad = measurements.filter((m) => m.expectedStatusShare < 0.99 || m.requests === 0);
  if (bad.length > 0) {
    process.stderr.write(`${bad.length} measurement(s) got fewer than 99% of the expected status; see statusCounts in the JSON\n`);
    return 2;
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`benchmark failed: ${(err as Error).message}\n`);
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      process.exit(1);
    },
  );
}
