// `npm start` smoke test: the real binary (`nems-gateway start`) with the shipped configuration pointed at a PKI made
// in this run through the documented environment overrides (NEMS_GATEWAY_CONFIG, NEMS_GATEWAY_PORT=0,
// NEMS_GATEWAY_ADMIN_PORT=0, NEMS_GATEWAY_DATA_DIR); then the README walk-through: create an explicit subscription
// as gp-system, publish a vaccinations event as child-health, list the mailbox; SIGTERM stops it with exit 0.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { createPki, send, type Pki } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { runCli, spawnCli, writeShippedConfig } from '../cli/run-cli.js';

const EXAMPLES = join(PROJECT_ROOT, 'docs', 'examples');

let pki: Pki;
let dir: string;
let dataDir: string;
let child: ChildProcess;
let stdout = '';
let stderr = '';
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

/** The JSON log lines written so far. */
function logLines(): Record<string, any>[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
}

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}) while waiting for ${what}: ${stderr}${stdout}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let gatewayPort: number;
let adminPort: number;

beforeAll(async () => {
  pki = createPki();
  dir = mkdtempSync(join(tmpdir(), 'nems-start-test-'));
  dataDir = join(dir, 'data');
  const config = writeShippedConfig(pki, join(dir, 'gateway.yaml'), (raw) => {
    raw.lifecycle.watchFiles = false;
  });
  child = spawnCli(['start'], {
    NEMS_GATEWAY_CONFIG: config, NEMS_GATEWAY_PORT: '0', NEMS_GATEWAY_ADMIN_PORT: '0', NEMS_GATEWAY_DATA_DIR: dataDir,
  });
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  gatewayPort = await until(() => logLines().find((l) => l.msg === 'NEMS gateway listening (mTLS)')?.port as number | undefined, 'the gateway to listen');
  adminPort = await until(() => logLines().find((l) => l.msg?.startsWith('admin listener'))?.port as number | undefined, 'the admin listener');
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nems-gateway start', () => {
  it('listens on ephemeral ports taken from NEMS_GATEWAY_PORT / NEMS_GATEWAY_ADMIN_PORT, in front of the embedded core', () => {
    expect(gatewayPort).toBeGreaterThan(0);
    expect(adminPort).toBeGreaterThan(0);
    expect([8443, 9464]).not.toContain(gatewayPort);
    expect([8443, 9464]).not.toContain(adminPort);
    expect(logLines().find((l) => l.msg === 'NEMS gateway listening (mTLS)')).toMatchObject({ host: '127.0.0.1', upstream: 'embedded' });
    expect(logLines().find((l) => l.msg === 'embedded reference NEMS core open')).toMatchObject({ dataDir });
  });

  it('is alive and ready on the admin port', async () => {
    const fetchAdmin = (path: string) => new Promise<number>((resolve, reject) => {
      get({ host: '127.0.0.1', port: adminPort, path, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    expect(await fetchAdmin('/healthz')).toBe(200);
    expect(await fetchAdmin('/readyz')).toBe(200);
  });

  it('runs the README flow: subscribe (201), publish (202), and the mailbox command lists the one delivered message', async () => {
    const created = await send(pki, gatewayPort, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body: readFileSync(join(EXAMPLES, 'subscription-explicit.xml')),
      headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
    });
    expect(created.status).toBe(201);
    const published = await send(pki, gatewayPort, {
      client: 'child-health', method: 'POST', path: '/STU3/Events/1/$process-message', body: readFileSync(join(EXAMPLES, 'vaccinations-1-new.xml')),
      headers: nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml' }),
    });
    expect(published.status).toBe(202);

    // Delivery is asynchronous: poll the mailbox command (bounded).
    let listed = await runCli(['mailbox', 'A83627MB001', '--data-dir', dataDir]);
    for (let i = 0; i < 20 && listed.stdout.trim() === ''; i++) {
      await new Promise((r) => setTimeout(r, 100));
      listed = await runCli(['mailbox', 'A83627MB001', '--data-dir', dataDir]);
    }
    expect(listed.code).toBe(0);
    const messages = listed.stdout.trim().split('\n');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('VACCINATIONS_1');
  });

  it('logs one line per request and no NHS number or token (buffered lines reach stdout within the flush interval)', async () => {
    // The shipped config buffers stdout (logging.bufferBytes) and flushes every logging.flushIntervalMs (1 s).
    const requests = await until(() => {
      const lines = logLines().filter((l) => l.msg === 'request forwarded');
      return lines.length >= 2 ? lines : undefined;
    }, 'the request lines to be flushed', 3_000);
    expect(requests.map((l) => [l.route, l.status])).toEqual([['create', 201], ['publish', 202]]);
    expect(stdout).not.toContain('9912003888');
    expect(stdout).not.toMatch(/Bearer|eyJ/);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(logLines().some((l) => l.msg === 'stopped')).toBe(true);
    expect(stderr).toBe('');
  });
});
