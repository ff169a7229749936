// `npm run bench` in its short CI mode: it must run end to end (loopback upstream, gateway and load generator with
// client certificates) and produce figures for every scenario. Only that figures exist is asserted, never their
// values: the machine decides those (docs/benchmark.md).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';

const RUNNER = join(PROJECT_ROOT, 'dist', 'bench', 'run.js');
const work = mkdtempSync(join(tmpdir(), 'nems-bench-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the benchmark with `args`, its own PKI (never certs-example/generated) and output file; bounded. */
function runBenchmark(args: readonly string[], out: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, ...args, '--out', out, '--pki', join(work, 'pki')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const positive = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n > 0;

describe('npm run bench -- --short (CI mode)', () => {
  it('runs every scenario through the gateway and straight to the upstream, prints a table and writes JSON with figures', async () => {
    expect(existsSync(RUNNER), 'dist/bench/run.js is missing: npm test builds it (npm run build)').toBe(true);
    const out = join(work, 'latest.json');
    const run = await runBenchmark(['--short'], out, 28_000);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/GET subscription/);
    expect(run.stdout).toMatch(/gateway RSS/);

    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(result.version).toBe(1);
    expect(result.machine.nproc).toBeGreaterThan(0);
    expect(result.scenarios.map((s: { name: string }) => s.name)).toEqual(['get', 'create', 'publish']);
    for (const scenario of result.scenarios) {
      for (const figure of ['rps', 'p50Ms', 'p99Ms']) expect(positive(scenario.direct[figure]), `${scenario.name} direct ${figure}`).toBe(true);
      const levels = Object.keys(scenario.gateway);
      expect(levels.length).toBeGreaterThan(0);
      for (const level of levels) {
        const gateway = scenario.gateway[level];
        for (const figure of ['rps', 'p50Ms', 'p99Ms', 'cpuMicrosPerRequest']) {
          expect(positive(gateway[figure]), `${scenario.name} gateway ${level} ${figure}`).toBe(true);
        }
        for (const figure of ['rps', 'p50', 'p99']) expect(positive(scenario.ratio[level][figure]), `${scenario.name} ratio ${figure}`).toBe(true);
      }
    }
    const handshakes = Object.values(result.handshakes) as { perSecond: number; cpuMicrosPerRequest: number }[];
    expect(handshakes.length).toBeGreaterThan(0);
    for (const h of handshakes) {
      expect(positive(h.perSecond)).toBe(true);
      expect(positive(h.cpuMicrosPerRequest)).toBe(true);
    }
    for (const rss of Object.values(result.rssMb) as { before: number; duringMax: number; after: number }[]) {
      expect(positive(rss.before) && positive(rss.duringMax) && positive(rss.after)).toBe(true);
    }
  }, 30_000);
});

describe('npm run bench -- --soak (a few seconds of it)', () => {
  it('drives mixed valid traffic, samples RSS, descriptors and in-flight, and reports 0 errors and nothing left in flight', async () => {
    expect(existsSync(RUNNER), 'dist/bench/run.js is missing: npm test builds it (npm run build)').toBe(true);
    const out = join(work, 'soak.json');
    const run = await runBenchmark(['--soak', '6', '--soak-sample', '2', '--soak-warmup', '2', '--soak-rps', '70', '--soak-settle', '1'], out, 40_000);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(result.kind).toBe('soak');
    // Six seconds cannot judge memory flatness: the only failure allowed here is that one.
    expect(run.code === 0 || result.failures.every((f: string) => f.startsWith('RSS')), `${run.stderr}\n${run.stdout}`).toBe(true);
    expect(result.totals.requests).toBeGreaterThan(0);
    expect(result.totals.errors).toBe(0);
    for (const name of ['get', 'create', 'publish']) expect(result.totals.byOperation[name].requests).toBeGreaterThan(0);
    expect(result.samples.length).toBeGreaterThanOrEqual(2);
    for (const sample of result.samples) expect(positive(sample.rssMb) && positive(sample.fds)).toBe(true);
    expect(result.after).toEqual({ inFlight: 0, inFlightMetric: 0 });
    expect(run.stdout).toMatch(/NEMS gateway soak/);
  }, 45_000);
});
