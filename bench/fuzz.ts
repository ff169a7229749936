// `npm run fuzz`: the full-size fuzz of every client-facing parser (targets in test/fuzz/targets.ts, the same ones
// the CI-size test runs). Each parser gets --inputs structure-aware, mutated inputs (default 1 000 000), shared
// out over a fixed seed list, in worker threads; the report counts crashes (a throw that is not the documented
// refusal, and contract violations), hangs (one input over 50 ms in the parser; a worker that makes no progress
// for --stall-seconds is stopped and its input reported as a hang), heap before and after (after a full GC) and
// RSS; then times every cap probe and checks that the body parsers scale linearly. See README "Fuzzing".
//
// Options: --parser xml,json,… (default all), --inputs N, --workers N (default 1; at most the cores),
// --seeds a,b,c (default the fixed list), --batch N (inputs per generated batch, default 250: a batch is held in memory), --stall-seconds S,
// --no-probes, --probes-only, --out FILE (default bench/results/fuzz-latest.json; failing inputs go next to it, in fuzz/),
// --replay parser:seed:batch:index[:batchCount] (regenerate one input, run it, write it out).
// Exit status 1 when anything was found.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PROJECT_ROOT } from '../src/paths.js';
import { FUZZ_SEEDS, generateBatch, runOne, type AnyFuzzTarget } from '../test/fuzz/harness.js';
import { FUZZ_TARGETS, fuzzTarget } from '../test/fuzz/targets.js';
import { MAX_EXPONENT, runCapProbes, SCALING_RESOURCE_LIMITS, SCALING_SIZES, type ProbeResult, type ScalingResult } from './fuzz-probes.js';
import { HANG_MS, SLOT, type FoundExample, type FuzzUnit, type UnitStats } from './fuzz-worker.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MB = 1024 * 1024;

interface Options {
  readonly targets: readonly AnyFuzzTarget[];
  readonly inputs: number;
  readonly workers: number;
  readonly seeds: readonly number[];
  readonly batch: number;
  readonly stallMs: number;
  readonly probes: boolean;
  readonly probesOnly: boolean;
  readonly out: string;
  readonly replay?: string;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const positive = (name: string, fallback: number): number => {
    const v = value(name);
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number`);
    return n;
  };
  const known = new Set(['--parser', '--inputs', '--workers', '--seeds', '--batch', '--stall-seconds', '--no-probes', '--probes-only', '--out', '--replay']);
  for (const arg of argv) if (arg.startsWith('--') && !known.has(arg)) throw new Error(`unknown option ${arg}`);
  const names = value('--parser')?.split(',');
  const seeds = value('--seeds')?.split(',').map(Number) ?? FUZZ_SEEDS;
  if (seeds.some((s) => !Number.isSafeInteger(s))) throw new Error('--seeds takes whole numbers');
  const replay = value('--replay');
  return {
    targets: names ? names.map(fuzzTarget) : FUZZ_TARGETS,
    inputs: positive('--inputs', 1_000_000),
    workers: Math.min(positive('--workers', 1), availableParallelism()),
    seeds,
    batch: positive('--batch', 250),
    stallMs: positive('--stall-seconds', 30) * 1000,
    probes: !argv.includes('--no-probes'),
    probesOnly: argv.includes('--probes-only'),
    out: resolve(value('--out') ?? join(PROJECT_ROOT, 'bench', 'results', 'fuzz-latest.json')),
    ...(replay ? { replay } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Failing inputs on disk.

function writeExample(dir: string, target: string, e: Pick<FoundExample, 'seed' | 'batch' | 'index' | 'message' | 'input'> & { readonly kind: string }): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${target}-${e.kind}-${e.seed}-${e.batch}-${e.index}.input`);
  writeFileSync(file, Buffer.from(e.input, 'base64'));
  writeFileSync(`${file}.txt`, `${e.kind}: ${e.message}\nreplay: npm run fuzz -- --replay ${target}:${e.seed}:${e.batch}:${e.index}\n`);
  return file;
}

function replay(opts: Options): number {
  const [name, seed, batch, index, count] = opts.replay!.split(':');
  const target = fuzzTarget(name!);
  const i = Number(index);
  const inputs = generateBatch(target, Number(seed), Number(batch), count ? Number(count) : Math.max(opts.batch, i + 1));
  const input = inputs[i];
  const outcome = runOne(target, input);
  const shown = target.show(input);
  const file = writeExample(join(dirname(opts.out), 'fuzz'), target.name, {
    kind: outcome.kind === 'pass' ? 'replay' : outcome.kind,
    seed: Number(seed),
    batch: Number(batch),
    index: i,
    message: outcome.kind === 'pass' ? 'replayed: passes' : outcome.message,
    input: (typeof shown === 'string' ? Buffer.from(shown) : shown).toString('base64'),
  });
  console.log(`${target.name} ${opts.replay}: ${outcome.kind}${outcome.kind === 'pass' ? '' : `: ${outcome.message}`} (${outcome.ms.toFixed(2)} ms); input written to ${file}`);
  return outcome.kind === 'pass' ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Running the units on worker threads, with a watchdog.

interface Slot {
  worker: Worker;
  readonly progress: Int32Array;
  unit?: FuzzUnit;
  lastCounter: number;
  lastChange: number;
  counterAtStart: number;
}

interface TargetSpan {
  start?: number;
  end?: number;
  rssBeforeMb?: number;
  rssAfterMb?: number;
  rssPeakMb: number;
  cpuStart?: NodeJS.CpuUsage;
  cpuMicros?: number;
}

function buildUnits(opts: Options): FuzzUnit[] {
  const units: FuzzUnit[] = [];
  for (const target of opts.targets) {
    const per = Math.floor(opts.inputs / opts.seeds.length);
    opts.seeds.forEach((seed, seedIndex) => {
      const count = per + (seedIndex === 0 ? opts.inputs - per * opts.seeds.length : 0);
      if (count > 0) units.push({ id: units.length, target: target.name, seedIndex, seed, count, batchSize: opts.batch });
    });
  }
  return units;
}

async function runUnits(opts: Options, units: FuzzUnit[]): Promise<{ stats: UnitStats[]; stalls: (FoundExample & { target: string })[]; spans: Map<string, TargetSpan>; load: number[]; rssPeakMb: number }> {
  const queue = [...units];
  const stats: UnitStats[] = [];
  const stalls: (FoundExample & { target: string })[] = [];
  const spans = new Map<string, TargetSpan>(opts.targets.map((t) => [t.name, { rssPeakMb: 0 }]));
  const load: number[] = [loadavg()[0]!];
  let rssPeakMb = 0;
  const total = units.reduce((n, u) => n + u.count, 0);
  let finished = 0;
  const started = performance.now();
  const rssMb = () => process.memoryUsage.rss() / MB;

  return new Promise((resolveAll, rejectAll) => {
    const slots: Slot[] = [];
    const activeTargets = () => new Set(slots.map((s) => s.unit?.target).filter((t): t is string => t !== undefined));

    const dispatch = (slot: Slot): void => {
      const unit = queue.shift();
      slot.unit = unit;
      if (!unit) {
        slot.worker.postMessage({ type: 'exit' });
        if (slots.every((s) => !s.unit)) finish();
        return;
      }
      const span = spans.get(unit.target)!;
      if (span.start === undefined) {
        span.start = performance.now();
        span.rssBeforeMb = rssMb();
        span.cpuStart = process.cpuUsage();
      }
      slot.counterAtStart = Atomics.load(slot.progress, SLOT.counter);
      slot.lastCounter = slot.counterAtStart;
      slot.lastChange = performance.now();
      slot.worker.postMessage({ type: 'unit', unit });
    };

    const endUnit = (unit: FuzzUnit): void => {
      if (queue.some((u) => u.target === unit.target) || slots.some((s) => s.unit !== unit && s.unit?.target === unit.target)) return;
      const span = spans.get(unit.target)!;
      span.end = performance.now();
      span.rssAfterMb = rssMb();
      span.cpuMicros = span.cpuStart ? (({ user, system }) => user + system)(process.cpuUsage(span.cpuStart)) : undefined;
    };

    const spawn = (): Slot => {
      const progress = new Int32Array(new SharedArrayBuffer(4 * 4));
      const worker = new Worker(join(HERE, 'fuzz-worker.js'), { workerData: { progress: progress.buffer } });
      const slot: Slot = { worker, progress, lastCounter: 0, lastChange: performance.now(), counterAtStart: 0 };
      worker.on('message', (message: { type: 'ready' } | { type: 'done'; stats: UnitStats }) => {
        if (message.type === 'done') {
          stats.push(message.stats);
          finished += message.stats.inputs;
          const unit = slot.unit!;
          slot.unit = undefined;
          endUnit(unit);
        }
        dispatch(slot);
      });
      worker.on('error', (error) => rejectAll(error));
      return slot;
    };

    const watchdog = setInterval(() => {
      const now = performance.now();
      const rss = rssMb();
      rssPeakMb = Math.max(rssPeakMb, rss);
      for (const name of activeTargets()) spans.get(name)!.rssPeakMb = Math.max(spans.get(name)!.rssPeakMb, rss);
      for (const [i, slot] of slots.entries()) {
        if (!slot.unit) continue;
        const counter = Atomics.load(slot.progress, SLOT.counter);
        if (counter !== slot.lastCounter) {
          slot.lastCounter = counter;
          slot.lastChange = now;
          continue;
        }
        if (now - slot.lastChange < opts.stallMs) continue;
        // Stuck on one input: report it, replace the worker, go on with the other units.
        const unit = slot.unit;
        const batch = Atomics.load(slot.progress, SLOT.batch);
        const index = Atomics.load(slot.progress, SLOT.index);
        const batchCount = Math.min(unit.batchSize, unit.count - batch * unit.batchSize);
        const target = fuzzTarget(unit.target);
        const input = generateBatch(target, unit.seed, batch, batchCount)[index];
        const shown = target.show(input);
        stalls.push({
          target: unit.target, kind: 'hang', message: `no progress for ${opts.stallMs / 1000} s on one input (worker stopped)`, seed: unit.seed, batch, index, batchCount,
          ms: now - slot.lastChange, input: (typeof shown === 'string' ? Buffer.from(shown) : shown).toString('base64'),
        });
        finished += counter - slot.counterAtStart;
        void slot.worker.terminate();
        slot.unit = undefined;
        endUnit(unit);
        slots[i] = spawn();
      }
    }, 1000);

    const report = setInterval(() => {
      load.push(loadavg()[0]!);
      const seconds = (performance.now() - started) / 1000;
      const running = slots.reduce((n, s) => n + (s.unit ? Atomics.load(s.progress, SLOT.counter) - s.counterAtStart : 0), 0);
      const done = finished + running;
      const eta = done > 0 ? ((total - done) * seconds) / done : 0;
      process.stderr.write(`fuzz: ${done.toLocaleString('en-GB')} / ${total.toLocaleString('en-GB')} inputs (${[...activeTargets()].join(', ')}), ${Math.round(seconds)} s, ~${Math.round(eta)} s to go, load ${loadavg()[0]!.toFixed(1)}\n`);
    }, 10_000);

    let allDone = false;
    const finish = (): void => {
      if (allDone) return;
      allDone = true;
      clearInterval(watchdog);
      clearInterval(report);
      load.push(loadavg()[0]!);
      resolveAll({ stats, stalls, spans, load, rssPeakMb: Math.max(rssPeakMb, rssMb()) });
    };

    for (let i = 0; i < opts.workers; i++) slots.push(spawn());
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Probes: every cap, timed with the shipped V8 settings on this thread; linear time in a worker (fuzz-probes.ts).

function runProbes(targets: readonly AnyFuzzTarget[]): Promise<{ probes: ProbeResult[]; scaling: ScalingResult[] }> {
  const probes = runCapProbes(targets);
  const names = targets.filter((t) => t.scaling).map((t) => t.name);
  return new Promise((resolveScaling, rejectScaling) => {
    const worker = new Worker(join(HERE, 'fuzz-probes.js'), { workerData: { scaling: names }, resourceLimits: SCALING_RESOURCE_LIMITS });
    worker.once('message', (scaling: ScalingResult[]) => resolveScaling({ probes, scaling }));
    worker.once('error', rejectScaling);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The report.

interface TargetReport {
  readonly parser: string;
  readonly covers: string;
  readonly inputs: number;
  readonly crashes: number;
  readonly violations: number;
  readonly hangs: number;
  readonly wallSeconds: number;
  readonly cpuSeconds?: number;
  readonly parserSeconds: number;
  readonly microsPerInput: number;
  /** Slowest input, re-runs taken into account. */
  readonly slowestMs: number;
  /** Inputs over the hang threshold once but not on re-run (machine noise). */
  readonly slowOnce: number;
  readonly histogram: readonly number[];
  readonly heapBeforeMb: number;
  readonly heapAfterMb: number;
  readonly heapGrowthMb: number;
  readonly heapPeakMb: number;
  readonly rssBeforeMb?: number;
  readonly rssAfterMb?: number;
  readonly rssPeakMb: number;
  readonly classes: Record<string, number>;
  readonly examples: (FoundExample & { file: string })[];
}

function aggregate(opts: Options, stats: UnitStats[], stalls: (FoundExample & { target: string })[], spans: Map<string, TargetSpan>): TargetReport[] {
  const dir = join(dirname(opts.out), 'fuzz');
  return opts.targets.map((target) => {
    const mine = stats.filter((s) => s.target === target.name);
    const sum = (f: (s: UnitStats) => number) => mine.reduce((n, s) => n + f(s), 0);
    const span = spans.get(target.name)!;
    const classes: Record<string, number> = {};
    for (const s of mine) for (const [k, v] of Object.entries(s.classes)) classes[k] = (classes[k] ?? 0) + v;
    const stalled = stalls.filter((s) => s.target === target.name);
    const examples = [...mine.flatMap((s) => s.examples), ...stalled].map((e) => ({ ...e, file: writeExample(dir, target.name, e) }));
    const inputs = sum((s) => s.inputs);
    return {
      parser: target.name,
      covers: target.covers,
      inputs,
      crashes: sum((s) => s.crashes),
      violations: sum((s) => s.violations),
      hangs: sum((s) => s.hangs) + stalled.length,
      wallSeconds: span.start !== undefined && span.end !== undefined ? (span.end - span.start) / 1000 : 0,
      ...(span.cpuMicros !== undefined && opts.workers === 1 ? { cpuSeconds: span.cpuMicros / 1e6 } : {}),
      parserSeconds: sum((s) => s.parserMs) / 1000,
      microsPerInput: inputs > 0 ? (sum((s) => s.parserMs) * 1000) / inputs : 0,
      slowestMs: Math.max(0, ...mine.map((s) => s.slowestConfirmedMs), ...stalled.map((s) => s.ms)),
      slowOnce: sum((s) => s.slowOnce),
      histogram: [0, 1, 2, 3, 4].map((i) => sum((s) => s.histogram[i]!)),
      heapBeforeMb: Math.min(...mine.map((s) => s.heapBeforeMb)),
      heapAfterMb: Math.max(...mine.map((s) => s.heapAfterMb)),
      heapGrowthMb: Math.max(0, ...mine.map((s) => s.heapAfterMb - s.heapBeforeMb)),
      heapPeakMb: Math.max(...mine.map((s) => s.heapPeakMb)),
      ...(span.rssBeforeMb !== undefined ? { rssBeforeMb: span.rssBeforeMb } : {}),
      ...(span.rssAfterMb !== undefined ? { rssAfterMb: span.rssAfterMb } : {}),
      rssPeakMb: span.rssPeakMb,
      classes: Object.fromEntries(Object.entries(classes).sort((a, b) => b[1] - a[1])),
      examples,
    };
  });
}

const f1 = (n: number) => n.toFixed(1);

function printReport(opts: Options, reports: TargetReport[], probes: { probes: ProbeResult[]; scaling: ScalingResult[] } | undefined, meta: Record<string, unknown>): void {
  const lines: string[] = [];
  lines.push(`NEMS gateway fuzz: ${opts.inputs.toLocaleString('en-GB')} inputs per parser, seeds ${opts.seeds.join(',')}, ${opts.workers} worker thread(s); hang = one input over ${HANG_MS} ms`);
  lines.push(`machine: ${String(meta['machine'])}; load average ${String(meta['load'])}`);
  lines.push('');
  lines.push('| parser | inputs | crashes | violations | hangs (slow once) | wall s | µs/input (parser) | slowest ms | heap before → after MB (growth) | RSS peak MB | accepted |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|');
  for (const r of reports) {
    const accepted = Object.entries(r.classes).filter(([k]) => /^(accepted|passed|valid|read a date|content-type matched|accept explicit)/.test(k)).reduce((n, [, v]) => n + v, 0);
    lines.push(
      `| ${r.parser} | ${r.inputs.toLocaleString('en-GB')} | ${r.crashes} | ${r.violations} | ${r.hangs} (${r.slowOnce}) | ${f1(r.wallSeconds)} | ${f1(r.microsPerInput)} | ${f1(r.slowestMs)} | ${f1(r.heapBeforeMb)} → ${f1(r.heapAfterMb)} (${f1(r.heapGrowthMb)}) | ${f1(r.rssPeakMb)} | ${r.inputs > 0 ? Math.round((accepted / r.inputs) * 100) : 0} % |`,
    );
  }
  for (const r of reports) {
    for (const e of r.examples) lines.push(`  ${r.parser} ${e.kind}: ${e.message} — ${e.file}`);
  }
  if (probes) {
    lines.push('', 'Caps (CPU, best of 3):');
    for (const p of probes.probes) lines.push(`  ${p.target} ${p.name}: ${p.outcome} in ${p.bestMs.toFixed(2)} ms`);
    lines.push('', `Linear time (CPU ms, best of 5, at ${SCALING_SIZES.map((s) => `${s / 1024}`).join(' / ')} KB; exponent of time against size, 1 linear, 2 quadratic, over ${MAX_EXPONENT} superlinear):`);
    for (const s of probes.scaling) {
      lines.push(`  ${s.target} ${s.name}: ${s.ms.map((m) => m.toFixed(1)).join(' / ')}, exponent ${s.exponent.toFixed(2)}${s.linear ? '' : '  SUPERLINEAR'}`);
    }
  }
  console.log(lines.join('\n'));
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.replay) return replay(opts);
  if (opts.probesOnly) {
    const probes = await runProbes(opts.targets);
    printReport(opts, [], probes, { machine: `${availableParallelism()} × ${cpus()[0]?.model ?? 'unknown CPU'}`, load: loadavg()[0]!.toFixed(1) });
    return probes.scaling.some((p) => !p.linear) ? 1 : 0;
  }
  if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('fuzz: run with node --expose-gc (npm run fuzz does) for heap figures after a full GC\n');
  const startedAt = new Date();
  const cpuStart = process.cpuUsage();
  const units = buildUnits(opts);
  process.stderr.write(`fuzz: ${opts.targets.map((t) => t.name).join(', ')}: ${opts.inputs.toLocaleString('en-GB')} inputs each over ${opts.seeds.length} seeds, ${opts.workers} worker(s)\n`);
  const run = await runUnits(opts, units);
  const reports = aggregate(opts, run.stats, run.stalls, run.spans);
  const probes = opts.probes ? await runProbes(opts.targets) : undefined;
  const cpu = process.cpuUsage(cpuStart);
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  const meanLoad = run.load.reduce((a, b) => a + b, 0) / run.load.length;
  const meta = {
    machine: `${availableParallelism()} × ${cpuModel}, node ${process.version}, ${process.platform}`,
    load: `mean ${meanLoad.toFixed(1)}, max ${Math.max(...run.load).toFixed(1)} (1-minute, sampled every 10 s)`,
  };
  const result = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    wallSeconds: (Date.now() - startedAt.getTime()) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    machine: { nproc: availableParallelism(), cpuModel, node: process.version, platform: process.platform },
    load: { samples: run.load, mean: meanLoad, max: Math.max(...run.load) },
    options: { inputs: opts.inputs, workers: opts.workers, seeds: opts.seeds, batch: opts.batch, stallSeconds: opts.stallMs / 1000, hangMs: HANG_MS },
    rssPeakMb: run.rssPeakMb,
    parsers: reports,
    ...(probes ? probes : {}),
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);
  printReport(opts, reports, probes, meta);
  console.log(`\nwall ${result.wallSeconds.toFixed(0)} s, process CPU ${result.cpuSeconds.toFixed(0)} s, RSS peak ${f1(run.rssPeakMb)} MB; written to ${opts.out}`);
  const found = reports.some((r) => r.crashes + r.violations + r.hangs > 0) || (probes?.scaling.some((s) => !s.linear) ?? false);
  return found ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
