// Runs the real command line (`node dist/src/main.js start --config F`) as a child process, as an operator
// would: ports are ephemeral (0 in the config file) and discovered from the JSON log lines the gateway writes
// ('NEMS gateway listening (mTLS)' carries the mTLS port, 'admin listener …' or, in cluster mode,
// 'NEMS gateway primary started' the admin port). Requires `npm run build` (npm test builds first).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.js';
import { loopbackListeners, type Pki } from './e2e.js';

export const CLI_ENTRY = join(PROJECT_ROOT, 'dist', 'src', 'main.js');

export interface LogLine {
  readonly msg: string;
  readonly level: string;
  readonly [field: string]: unknown;
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly logs: readonly LogLine[];
  /** Everything the process wrote to stderr. */
  stderr(): string;
  /** Resolves with the first log line (already written or to come) matching `test`. */
  waitForLog(test: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Exit code and signal, once the process has exited and its output is fully read. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends SIGKILL if still running (clean-up after a failed test). */
  kill(): void;
}

export interface CliConfigOptions {
  readonly upstreamUrl: string;
  readonly registryPath?: string;
  readonly drainDeadlineMs?: number;
  readonly workers?: number;
  readonly patch?: (raw: Record<string, any>) => void;
}

/** Writes a gateway.yaml (JSON is YAML) for the CLI: ephemeral ports, the given PKI, info-level JSON logs. */
export function writeCliConfig(pki: Pki, opts: CliConfigOptions): { file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'nems-ops-cli-'));
  const raw: Record<string, any> = {
    ...loopbackListeners(pki),
    registry: { path: opts.registryPath ?? join(PROJECT_ROOT, 'config', 'endpoints.yaml') },
    upstream: { kind: 'http', url: opts.upstreamUrl, timeoutMs: 5000, connectTimeoutMs: 1000 },
    pds: { kind: 'local', local: { path: join(PROJECT_ROOT, 'config', 'pds-local.yaml') } },
    core: { dataDir: join(dir, 'data') },
    logging: { level: 'info' },
    lifecycle: { watchFiles: false, drainDeadlineMs: opts.drainDeadlineMs ?? 5000, workers: opts.workers ?? 1, readinessGraceMs: 0 },
    // The policy cases these suites replay were written against the guide to the letter.
    policy: { profile: 'strict' },
  };
  opts.patch?.(raw);
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return { file, dir };
}

/** Starts `nems-gateway start --config <file>`. The environment is the test's minus every NEMS_GATEWAY_* override. */
export function startCli(configFile: string, env: Record<string, string> = {}): CliProcess {
  if (!existsSync(CLI_ENTRY)) throw new Error(`${CLI_ENTRY} is missing: run npm run build first`);
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NEMS_GATEWAY_')));
  const child = spawn(process.execPath, [CLI_ENTRY, 'start', '--config', configFile], {
    env: { ...cleanEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: Array<{ test: (line: LogLine) => boolean; resolve: (line: LogLine) => void }> = [];
  let stderr = '';
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    let newline: number;
    while ((newline = partial.indexOf('\n')) !== -1) {
      const text = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  // 'close', not 'exit': every log line is read by then (cluster workers share the stdout pipe).
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    logs,
    stderr: () => stderr,
    exited,
    waitForLog(test, what, timeoutMs = 15_000) {
      const seen = logs.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log line '${what}' within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
        const waiter = {
          test,
          resolve: (line: LogLine) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(waiter);
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`gateway exited (${code ?? signal}) before '${what}'; stderr: ${stderr.slice(-2000)}`));
        });
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Starts a single-process gateway and returns its mTLS and admin ports once both listen. */
export async function startCliGateway(configFile: string): Promise<{ cli: CliProcess; port: number; adminPort: number }> {
  const cli = startCli(configFile);
  try {
    const listening = await cli.waitForLog((l) => l.msg === 'NEMS gateway listening (mTLS)', 'NEMS gateway listening');
    const admin = await cli.waitForLog((l) => l.msg.startsWith('admin listener'), 'admin listener');
    return { cli, port: listening.port as number, adminPort: admin.port as number };
  } catch (err) {
    cli.kill();
    throw err;
  }
}
