// One `npm run fuzz` worker thread: runs units (one target, one seed, N inputs) and reports what it found.
// Progress goes through shared memory (a counter and the input in hand), so the main thread can tell a stuck
// input from a slow one without a message per input, and replay the stuck one from its seed, batch and index.
import { existsSync, readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { generateBatch, runOne, type AnyFuzzTarget, type Outcome } from '../test/fuzz/harness.js';
import { FUZZ_TARGETS } from '../test/fuzz/targets.js';

/** Inputs slower than this are hangs (the threshold). */
export const HANG_MS = 50;
/** Examples kept per kind (crash, violation, hang) and unit. */
const EXAMPLES_PER_KIND = 3;

export interface FuzzUnit {
  readonly id: number;
  readonly target: string;
  readonly seedIndex: number;
  readonly seed: number;
  readonly count: number;
  readonly batchSize: number;
}

export interface FoundExample {
  readonly kind: 'crash' | 'violation' | 'hang';
  readonly message: string;
  readonly seed: number;
  readonly batch: number;
  readonly index: number;
  readonly batchCount: number;
  readonly ms: number;
  /** The input as the target shows it, base64. */
  readonly input: string;
}

export interface UnitStats {
  readonly id: number;
  readonly target: string;
  readonly inputs: number;
  readonly crashes: number;
  readonly violations: number;
  readonly hangs: number;
  readonly examples: FoundExample[];
  /** Time in the parser(s) only, summed. */
  readonly parserMs: number;
  readonly generateMs: number;
  readonly wallMs: number;
  readonly slowestMs: number;
  /** The slowest input once re-runs are taken into account (best of 3 for any input over HANG_MS). */
  readonly slowestConfirmedMs: number;
  /** Inputs over HANG_MS once that were not on either re-run (the machine, not the parser). */
  readonly slowOnce: number;
  /** Inputs by parser time: < 0.1 ms, < 1, < 10, < 50, ≥ 50. */
  readonly histogram: [number, number, number, number, number];
  readonly classes: Record<string, number>;
  /** This thread's V8 heap after a full GC, before and after the unit, and the most seen during it (MB). */
  readonly heapBeforeMb: number;
  readonly heapAfterMb: number;
  readonly heapPeakMb: number;
}

/** Progress slots in the shared Int32Array. */
export const SLOT = { counter: 0, unit: 1, batch: 2, index: 3 } as const;

const gc = (globalThis as { gc?: () => void }).gc;
const heapMb = () => getHeapStatistics().used_heap_size / (1024 * 1024);
function collectedHeapMb(): number {
  gc?.();
  return heapMb();
}

function shown(target: AnyFuzzTarget, input: unknown): string {
  try {
    const value = target.show(input);
    return (typeof value === 'string' ? Buffer.from(value, 'utf8') : value).toString('base64');
  } catch {
    return '';
  }
}

const SCHEDSTAT = '/proc/thread-self/schedstat';
const HAS_SCHEDSTAT = existsSync(SCHEDSTAT);

/**
 * CPU time this thread has run, in ms (Linux schedstat; the kernel brings it up to date at each tick, so it is good
 * to a few ms: enough to tell an input over HANG_MS), or wall time where that is missing. On a machine shared by many
 * processes a long call is preempted far more often than a short one, so wall time makes a slow input look slower
 * still; CPU time is what the input costs. Per thread, so other workers do not count.
 */
function threadCpuMs(): number {
  if (!HAS_SCHEDSTAT) return performance.now();
  return Number(readFileSync(SCHEDSTAT, 'latin1').split(' ')[0]) / 1e6;
}

/** The CPU time of one more run of the parser(s) on this input. */
function timeRun(target: AnyFuzzTarget, input: unknown): number {
  const started = threadCpuMs();
  try {
    target.run(input);
  } catch {
    // Already reported as a crash.
  }
  return threadCpuMs() - started;
}

function classify(target: AnyFuzzTarget, output: unknown): string {
  try {
    return target.classify(output);
  } catch {
    return 'unclassified';
  }
}

export function runUnit(unit: FuzzUnit, progress?: Int32Array): UnitStats {
  const target = FUZZ_TARGETS.find((t) => t.name === unit.target);
  if (!target) throw new Error(`unknown fuzz target ${unit.target}`);
  const started = performance.now();
  const heapBeforeMb = collectedHeapMb();
  let heapPeakMb = heapBeforeMb;
  const tally = { crash: 0, violation: 0, hang: 0 };
  const examples: FoundExample[] = [];
  const histogram: [number, number, number, number, number] = [0, 0, 0, 0, 0];
  const classes = new Map<string, number>();
  let parserMs = 0;
  let generateMs = 0;
  let slowestMs = 0;
  let slowestConfirmedMs = 0;
  let slowOnce = 0;
  let done = 0;
  const record = (kind: FoundExample['kind'], outcome: Outcome, message: string, batch: number, index: number, batchCount: number, input: unknown) => {
    tally[kind]++;
    if (examples.filter((e) => e.kind === kind).length >= EXAMPLES_PER_KIND || examples.some((e) => e.kind === kind && e.message === message)) return;
    examples.push({ kind, message, seed: unit.seed, batch, index, batchCount, ms: outcome.ms, input: shown(target, input) });
  };
  if (progress) Atomics.store(progress, SLOT.unit, unit.id);
  for (let batch = 0; done < unit.count; batch++) {
    const count = Math.min(unit.batchSize, unit.count - done);
    const generating = performance.now();
    const inputs = generateBatch(target, unit.seed, batch, count);
    generateMs += performance.now() - generating;
    if (progress) Atomics.store(progress, SLOT.batch, batch);
    for (let index = 0; index < inputs.length; index++) {
      if (progress) Atomics.store(progress, SLOT.index, index);
      const input = inputs[index];
      const outcome = runOne(target, input);
      parserMs += outcome.ms;
      slowestMs = Math.max(slowestMs, outcome.ms);
      histogram[outcome.ms < 0.1 ? 0 : outcome.ms < 1 ? 1 : outcome.ms < 10 ? 2 : outcome.ms < HANG_MS ? 3 : 4]++;
      if (outcome.kind !== 'pass') record(outcome.kind, outcome, outcome.message, batch, index, count, input);
      if (outcome.ms > HANG_MS) {
        // A shared machine stalls calls (scheduling, another process): a hang is an input that still costs over
        // HANG_MS of this thread's CPU on the better of two re-runs.
        const again = Math.min(timeRun(target, input), timeRun(target, input));
        if (again > HANG_MS) {
          record('hang', outcome, `${again.toFixed(1)} ms of CPU for one input (best of 2 re-runs)`, batch, index, count, input);
          slowestConfirmedMs = Math.max(slowestConfirmedMs, again);
        } else slowOnce++;
      } else slowestConfirmedMs = Math.max(slowestConfirmedMs, outcome.ms);
      const cls = outcome.kind === 'crash' ? 'crash' : classify(target, outcome.output);
      classes.set(cls, (classes.get(cls) ?? 0) + 1);
      if (progress) Atomics.add(progress, SLOT.counter, 1);
    }
    done += inputs.length;
    heapPeakMb = Math.max(heapPeakMb, heapMb());
  }
  return {
    id: unit.id,
    target: unit.target,
    inputs: done,
    crashes: tally.crash,
    violations: tally.violation,
    hangs: tally.hang,
    examples,
    parserMs,
    generateMs,
    wallMs: performance.now() - started,
    slowestMs,
    slowestConfirmedMs,
    slowOnce,
    histogram,
    classes: Object.fromEntries(classes),
    heapBeforeMb,
    heapAfterMb: collectedHeapMb(),
    heapPeakMb,
  };
}

if (parentPort && workerData?.progress) {
  const port = parentPort;
  const progress = new Int32Array(workerData.progress as SharedArrayBuffer);
  port.on('message', (message: { type: 'unit'; unit: FuzzUnit } | { type: 'exit' }) => {
    if (message.type === 'exit') process.exit(0);
    port.postMessage({ type: 'done', stats: runUnit(message.unit, progress) });
  });
  port.postMessage({ type: 'ready' });
}
