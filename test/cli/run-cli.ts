// Runs the built CLI (`node dist/src/main.js …`, as the `nems-gateway` bin does) in a child process with a clean
// environment: no NEMS_GATEWAY_* variable from the developer's shell leaks in unless a test sets it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { PROJECT_ROOT } from '../../src/paths.js';
import type { Pki } from '../helpers/e2e.js';

export const MAIN = join(PROJECT_ROOT, 'dist', 'src', 'main.js');

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NEMS_GATEWAY_')) env[k] = v;
  return { ...env, ...extra };
}

export function spawnCli(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npm test builds before running vitest)`);
  return spawn(process.execPath, [MAIN, ...args], { cwd: PROJECT_ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs one command to completion (killed after `timeoutMs`). */
export function runCli(args: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawnCli(args, opts.env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * The shipped config/gateway.yaml, rewritten to use a test PKI and absolute paths to the shipped registry and PDS
 * data, then `patch`ed. Returns the path of the written file.
 */
export function writeShippedConfig(pki: Pki, file: string, patch: (raw: Record<string, any>) => void = () => {}): string {
  const raw = parseYaml(readFileSync(join(PROJECT_ROOT, 'config', 'gateway.yaml'), 'utf8')) as Record<string, any>;
  raw.server.tls = { ...raw.server.tls, cert: pki.file('server.pem'), key: pki.file('server-key.pem'), ca: pki.file('ca.pem'), crl: pki.file('crl.pem') };
  raw.registry.path = join(PROJECT_ROOT, 'config', 'endpoints.yaml');
  raw.pds.local.path = join(PROJECT_ROOT, 'config', 'pds-local.yaml');
  patch(raw);
  writeFileSync(file, stringify(raw));
  return file;
}
