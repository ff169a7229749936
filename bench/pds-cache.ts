// Micro-benchmark of the PDS cache (src/pds/cache.ts) on its own, in-process: the cost per lookup of a cache hit,
// a miss that inserts and evicts, and a burst of concurrent lookups of one number (single-flight). The inner
// lookup answers at once, so the figures are the cache's own overhead. `npm run build && node
// dist/bench/pds-cache.js [--rounds N]`; docs/benchmark.md has the figures that chose lru-cache.
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCommandArgs, type CommandSpec, type OptionSpecs } from '../src/cli/args.js';
import { CachedPdsLookup } from '../src/pds/cache.js';
import type { PdsLookup, PdsOutcome } from '../src/pds/types.js';

const TRACED: PdsOutcome = { result: 'traced', restricted: false, demographics: { names: [{ family: 'DAWKINS', given: ['Jack'] }] } };

class InstantPds implements PdsLookup {
  calls = 0;
  lookup(): Promise<PdsOutcome> {
    this.calls++;
    return Promise.resolve(TRACED);
  }
  ready() {
    return Promise.resolve({ ok: true, reason: 'instant' });
  }
  close() {
    return Promise.resolve();
  }
}

/** Ten-digit keys, as the stage passes them. */
const keys = (n: number) => Array.from({ length: n }, (_, i) => String(9_000_000_000 + i));

interface Scenario {
  readonly name: string;
  /** Lookups per round. */
  readonly lookups: number;
  run(): Promise<void>;
}

function scenarios(): Scenario[] {
  const warm = keys(1000);
  const hitCache = new CachedPdsLookup(new InstantPds(), { maxEntries: 100_000, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
  const hits = 200_000;

  const churn = keys(5000);
  const missCache = new CachedPdsLookup(new InstantPds(), { maxEntries: 1000, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
  const misses = 50_000;

  const burstCache = new CachedPdsLookup(new InstantPds(), { maxEntries: 1000, positiveTtlSeconds: 300, negativeTtlSeconds: 30 });
  const bursts = 1000;
  const burstSize = 50;

  return [
    {
      name: 'hit (1000 numbers cached)',
      lookups: hits,
      async run() {
        for (const k of warm) await hitCache.lookup(k, 'r');
        for (let i = 0; i < hits; i++) await hitCache.lookup(warm[i % warm.length]!, 'r');
      },
    },
    {
      name: 'miss + insert + evict (5000 numbers, 1000 entries)',
      lookups: misses,
      async run() {
        for (let i = 0; i < misses; i++) await missCache.lookup(churn[i % churn.length]!, 'r');
      },
    },
    {
      name: `single-flight: ${burstSize} concurrent lookups of one uncached number`,
      lookups: bursts * burstSize,
      async run() {
        for (let b = 0; b < bursts; b++) {
          const all: Promise<PdsOutcome>[] = [];
          for (let i = 0; i < burstSize; i++) all.push(burstCache.lookup(churn[(b * 7) % churn.length]!, 'r'));
          await Promise.all(all);
        }
      },
    },
  ];
}

const COMMAND = {
  name: 'bench-pds-cache',
  usage: 'usage: node dist/bench/pds-cache.js [--rounds N]   (median of N rounds, default 7)\n',
  options: { rounds: { type: 'string' } },
} as const satisfies CommandSpec<OptionSpecs>;

async function main(argv: string[]): Promise<number> {
  const args = readCommandArgs(COMMAND, argv);
  if (typeof args === 'number') return args;
  const rounds = Number(args.values.rounds ?? '7');
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 100) {
    process.stderr.write('--rounds must be 1-100\n');
    return 2;
  }
  process.stdout.write(`PDS cache micro-benchmark, Node ${process.version}, median of ${rounds} rounds (ns per lookup)\n`);
  for (const scenario of scenarios()) {
    const samples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      await scenario.run();
      samples.push(((performance.now() - started) * 1e6) / scenario.lookups);
    }
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)]!;
    process.stdout.write(`  ${scenario.name.padEnd(62)} ${median.toFixed(0).padStart(6)} ns  (min ${samples[0]!.toFixed(0)}, max ${samples.at(-1)!.toFixed(0)})\n`);
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
