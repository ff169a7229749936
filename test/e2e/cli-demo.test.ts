// `npm run demo` in CI (issue 5 point 6): the real binary drives the whole scenario over mTLS with a PKI made in
// this run, on an ephemeral port with no admin listener, and checks every step's outcome itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPki, type Pki } from '../helpers/e2e.js';
import { runCli, writeShippedConfig, type CliResult } from '../cli/run-cli.js';

const EXPECTED_CHECKS = [
  '201 Created with a Location through the gateway',
  '200 with status active',
  '202 Accepted',
  'one message in the mailbox',
  'the delivered XML is the published event, byte for byte',
  'an unregistered certificate gets 403 ACCESS_DENIED',
  'a JWT naming another ASID gets 400 MISSING_OR_INVALID_HEADER',
  'an NHS number failing modulus 11 gets 400 INVALID_NHS_NUMBER',
];

let pki: Pki;
let dir: string;
let result: CliResult;

beforeAll(async () => {
  pki = createPki();
  dir = mkdtempSync(join(tmpdir(), 'nems-demo-test-'));
  // The shipped configuration (ports 8443 / 9464 and all); the demo must not use those ports.
  const config = writeShippedConfig(pki, join(dir, 'gateway.yaml'));
  result = await runCli(['demo', '--certs', pki.dir, '--config', config], { timeoutMs: 30_000 });
});
afterAll(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nems-gateway demo', () => {
  it('exits 0 and says the demo passed', () => {
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('\ndemo passed: every step had its expected outcome\n');
  });

  it.each(EXPECTED_CHECKS)('prints ✔ %s', (label) => {
    expect(result.stdout.split('\n').filter((l) => l.startsWith(`  ✔ ${label}: `))).toHaveLength(1);
  });

  it('prints no failed step', () => {
    expect(result.stdout).not.toContain('✘');
    expect(result.stdout.split('\n').filter((l) => l.startsWith('  ✔ '))).toHaveLength(EXPECTED_CHECKS.length);
  });

  it('ran its own gateway on an ephemeral port, never 8443 or 9464', () => {
    const port = Number(/gateway on https:\/\/localhost:(\d+)\//.exec(result.stdout)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect([8443, 9464]).not.toContain(port);
  });
});
