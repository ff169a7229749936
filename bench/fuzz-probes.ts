// The probes of `npm run fuzz` after the generated inputs: every cap probe of every target (at and just over each
// default cap), timed; and the linear-time check of the body parsers, run in its own worker thread (this file is
// also that worker) with a young generation large enough that a 2 MB document's tree is not promoted while it is
// built: with V8's default, garbage-collection steps make every allocating parser look superlinear between 256 KB and
// 2 MB (measured: ×2.2–3.4 per doubling by default, ×1.4–1.9 with this setting), hiding what the parser itself does.
import { parentPort, workerData } from 'node:worker_threads';
import { runOne, type AnyFuzzTarget } from '../test/fuzz/harness.js';
import { fuzzTarget } from '../test/fuzz/targets.js';

export interface ProbeResult {
  readonly target: string;
  readonly name: string;
  readonly outcome: string;
  readonly bestMs: number;
}

export interface ScalingResult {
  readonly target: string;
  readonly name: string;
  /** Best-of-5 CPU ms at each of SCALING_SIZES. */
  readonly ms: readonly number[];
  /** Exponent of time against size (Theil–Sen: the median slope over every pair of sizes): 1 linear, 2 quadratic. */
  readonly exponent: number;
  readonly linear: boolean;
}

/**
 * 64 KB to 2 MB, doubling. The exponent is the median of the slopes between every pair of sizes on a log-log scale
 * (Theil–Sen): a quadratic parser shows ~2, a linear one ~1, and a few measurements thrown off by a machine shared
 * with other processes do not move the median.
 */
export const SCALING_SIZES = [64, 128, 256, 512, 1024, 2048].map((k) => k * 1024);
/** A median exponent above this is called superlinear. */
export const MAX_EXPONENT = 1.4;
export const SCALING_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 1024 };

export function scalingExponent(sizes: readonly number[], ms: readonly number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < sizes.length; i++) {
    for (let j = i + 1; j < sizes.length; j++) {
      slopes.push(Math.log(Math.max(ms[j]!, 0.01) / Math.max(ms[i]!, 0.01)) / Math.log(sizes[j]! / sizes[i]!));
    }
  }
  slopes.sort((a, b) => a - b);
  const mid = slopes.length >> 1;
  return slopes.length % 2 === 1 ? slopes[mid]! : (slopes[mid - 1]! + slopes[mid]!) / 2;
}

/**
 * Best-of-N CPU time of the parser(s) on one input, and the outcome of the contract check. Probes run when nothing
 * else in the process is working, so its CPU time (getrusage, microseconds) is this work and its garbage collection;
 * wall time would grow with the machine's load, and more for long calls than for short ones.
 */
function best(target: AnyFuzzTarget, input: unknown, times = 3): { ms: number; outcome: string } {
  const checked = runOne(target, input);
  const outcome = checked.kind === 'pass' ? target.classify(checked.output) : `${checked.kind}: ${checked.message}`;
  let ms = Infinity;
  for (let i = 0; i < times; i++) {
    // Start from a collected heap, so one run does not pay for the garbage of the last.
    (globalThis as { gc?: () => void }).gc?.();
    const started = process.cpuUsage();
    try {
      target.run(input);
    } catch {
      // Reported by the check above.
    }
    const used = process.cpuUsage(started);
    ms = Math.min(ms, (used.user + used.system) / 1000);
  }
  return { ms, outcome };
}

export function runCapProbes(targets: readonly AnyFuzzTarget[]): ProbeResult[] {
  return targets.flatMap((target) =>
    (target.capProbes?.() ?? []).map((probe) => {
      const { ms, outcome } = best(target, probe.input);
      return { target: target.name, name: probe.name, outcome, bestMs: ms };
    }),
  );
}

export function runScaling(targets: readonly AnyFuzzTarget[]): ScalingResult[] {
  const results: ScalingResult[] = [];
  for (const target of targets) {
    for (const pattern of target.scaling?.() ?? []) {
      // Warm up first: compiled code, and a young generation grown to the largest input's tree.
      best(target, pattern.make(SCALING_SIZES[SCALING_SIZES.length - 1]!), 3);
      const ms = SCALING_SIZES.map((size) => best(target, pattern.make(size), 5).ms);
      const exponent = scalingExponent(SCALING_SIZES, ms);
      results.push({ target: target.name, name: pattern.name, ms, exponent, linear: exponent <= MAX_EXPONENT });
    }
  }
  return results;
}

if (parentPort && Array.isArray(workerData?.scaling)) {
  parentPort.postMessage(runScaling((workerData.scaling as string[]).map(fuzzTarget)));
}
