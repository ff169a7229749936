// check-config reads what start-up reads for the shared rate-limit store (rateLimits.store: redis): its password
// file and CA. It does not dial Redis: a store that is down is a fallback at run time, not a bad configuration.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPki, type Pki } from '../helpers/e2e.js';
import { runCli, writeShippedConfig } from './run-cli.js';

let pki: Pki;
let dir: string;
beforeAll(() => {
  pki = createPki();
  dir = mkdtempSync(join(tmpdir(), 'nems-check-redis-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  pki?.cleanup();
});

const withRedis = (name: string, passwordFile: string) =>
  writeShippedConfig(pki, join(dir, name), (raw) => {
    raw.rateLimits = { enabled: true, store: 'redis', redis: { url: 'redis://127.0.0.1:1/0', passwordFile } };
  });

describe('nems-gateway check-config with rate limits on Redis', () => {
  it('passes with a readable password file (Redis itself is not dialled)', async () => {
    writeFileSync(join(dir, 'redis-password'), 'secret\n');
    const r = await runCli(['check-config', '--config', withRedis('ok.yaml', 'redis-password')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('fails (exit 1) naming the missing password file, never its content', async () => {
    const r = await runCli(['check-config', '--config', withRedis('missing.yaml', 'no-such-password')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ENOENT.*no-such-password/);
  });
});
