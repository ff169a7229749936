// The fuzz harness shared by the CI-size properties (test/fuzz/*.test.ts) and `npm run fuzz` (bench/fuzz.ts).
//
// A target is one client-facing parser (or a family of them) with:
// - a structure-aware fast-check arbitrary: valid NEMS documents and tokens first, then mutated (byte flips,
//   truncation, splicing, duplication, encodings, counts just over every cap), so inputs get past the first refusal;
// - `run`: the parser call(s), timed; a throw here is a crash (documented refusals are results, not throws);
// - `check`: the parser's contract on that input and output (refusal reasons, caps, round trips, oracles);
//   it throws ContractViolation.
// Adding a parser: write test/fuzz/targets/<name>.ts exporting a FuzzTarget and add it to test/fuzz/targets.ts;
// the CI test and the runner pick it up from there.
import fc from 'fast-check';

/** The parser answered, but not as its contract says. */
export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
}

/** Asserts one clause of a contract. */
export function expectThat(condition: unknown, clause: string): asserts condition {
  if (!condition) throw new ContractViolation(clause);
}

export interface CapProbe<I> {
  /** Which default cap the input is just over (or exactly at). */
  readonly name: string;
  readonly input: I;
  /** Too slow for the CI size (a whole-cap document through both engines); the runner still checks and times it. */
  readonly heavy?: boolean;
}

export interface FuzzTarget<I = unknown, O = unknown> {
  /** `npm run fuzz -- --parser <name>`. */
  readonly name: string;
  /** The modules under test, for the report. */
  readonly covers: string;
  /** Structure-aware generator (valid NEMS inputs, then mutated). */
  readonly arbitrary: fc.Arbitrary<I>;
  /** Calls the parser(s). Must be synchronous; any throw is a crash. */
  run(input: I): O;
  /** The contract on one input and its output; throws ContractViolation. */
  check(input: I, output: O): void;
  /** A short class of the answer (`accepted`, `refused: too-deep`, …): the runner counts them to show how deep inputs get. */
  classify(output: O): string;
  /** The input as bytes or text, for crash files and replay. */
  show(input: I): Buffer | string;
  /** Inputs just over (and at) every default cap: checked once in CI, timed by the runner's scaling probe. */
  capProbes?(): readonly CapProbe<I>[];
  /** Inputs of a given size in bytes, for the runner's linear-time check (body parsers, where size is not capped small). */
  scaling?(): readonly { readonly name: string; make(bytes: number): I }[];
  /** Generated inputs per CI run (the whole CI fuzz must take seconds). */
  readonly ciRuns: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFuzzTarget = FuzzTarget<any, any>;

export type Outcome<O = unknown> =
  | { readonly kind: 'pass'; readonly ms: number; readonly output: O }
  | { readonly kind: 'violation'; readonly ms: number; readonly message: string; readonly output: O }
  | { readonly kind: 'crash'; readonly ms: number; readonly message: string };

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const frame = error.stack?.split('\n').find((line) => line.includes('/src/'))?.trim();
    return `${error.name}: ${error.message}${frame ? ` (${frame})` : ''}`;
  }
  return `non-Error thrown: ${String(error)}`;
}

/** Runs one input: the parser (timed) then its contract. */
export function runOne<I, O>(target: FuzzTarget<I, O>, input: I): Outcome<O> {
  const started = performance.now();
  let output: O;
  try {
    output = target.run(input);
  } catch (error) {
    return { kind: 'crash', ms: performance.now() - started, message: errorText(error) };
  }
  const ms = performance.now() - started;
  try {
    target.check(input, output);
  } catch (error) {
    if (error instanceof ContractViolation) return { kind: 'violation', ms, message: error.message, output };
    // A parser called again inside the check (a round trip) threw.
    return { kind: 'crash', ms, message: `during the contract check: ${errorText(error)}` };
  }
  return { kind: 'pass', ms, output };
}

/** The fast-check property a CI test asserts for a target. */
export function targetProperty<I, O>(target: FuzzTarget<I, O>): fc.IPropertyWithHooks<[I]> {
  return fc.property(target.arbitrary, (input) => {
    const outcome = runOne(target, input);
    if (outcome.kind !== 'pass') throw new Error(`${outcome.kind}: ${outcome.message}`);
  });
}

/** Seed of the CI-size runs: fixed, so CI is reproducible; `npm run fuzz` explores its own seed list. */
export const CI_SEED = 0x4e454d53;

/** The fixed seed list of `npm run fuzz`: each parser's inputs are shared out over these. */
export const FUZZ_SEEDS: readonly number[] = [1, 2, 3, 5, 8, 13, 21, 0x4e454d53];

/** The fast-check seed of one batch: a pure function of the run seed and the batch number, so any input replays. */
export function batchSeed(seed: number, batch: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(batch, 0x85ebca6b)) | 0;
}

/** The `count` inputs of one batch (input i of batch b of seed s is always the same). */
export function generateBatch<I>(target: FuzzTarget<I, unknown>, seed: number, batch: number, count: number): I[] {
  return fc.sample(target.arbitrary, { seed: batchSeed(seed, batch), numRuns: count });
}

/**
 * A canary planted in generated values (attribute values, claims, criteria values, header parameters). A refusal's
 * detail or diagnostics must never quote client input; finding the canary there breaks that contract.
 */
export const CANARY = 'Zq9912003888';

export function expectNoCanary(text: string, where: string): void {
  expectThat(!text.includes(CANARY) && !text.includes('9912003888'), `${where} quotes client input`);
}

/** Gives a generated input a short printed form for fast-check's counterexample reports. */
export function printedAs<T extends object>(value: T, print: () => string): T {
  Object.defineProperty(value, fc.toStringMethod, { value: print, enumerable: false });
  return value;
}

/** The start of a text or byte input, for reports. */
export function excerpt(input: Buffer | string, max = 300): string {
  const text = typeof input === 'string' ? input : input.toString('latin1');
  return `${JSON.stringify(text.slice(0, max))}${text.length > max ? `… (${text.length} ${typeof input === 'string' ? 'characters' : 'bytes'})` : ''}`;
}
