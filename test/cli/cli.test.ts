// The `nems-gateway` command line through the real binary (dist/src/main.js): check-config validates like
// `nginx -t` (exit 0 with a summary, non-zero naming the key), jwt prints a token, --help, unknown commands exit 2.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { createPki, type Pki } from '../helpers/e2e.js';
import { runCli, writeShippedConfig } from './run-cli.js';

let pki: Pki;
let dir: string;
let shipped: string;
let n = 0;

beforeAll(() => {
  pki = createPki();
  dir = mkdtempSync(join(tmpdir(), 'nems-cli-'));
  shipped = writeShippedConfig(pki, join(dir, 'gateway.yaml'));
});
afterAll(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function variant(patch: (raw: Record<string, any>) => void): string {
  return writeShippedConfig(pki, join(dir, `gateway-${n++}.yaml`), patch);
}

describe.concurrent('nems-gateway check-config', () => {
  it('exits 0 with a summary for the shipped configuration', async () => {
    const r = await runCli(['check-config', '--config', shipped]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${shipped}: configuration OK (2 endpoints, upstream embedded, PDS local)\n`);
  });

  it('reads NEMS_GATEWAY_CONFIG, and --config wins over it', async () => {
    const viaEnv = await runCli(['check-config'], { env: { NEMS_GATEWAY_CONFIG: shipped } });
    expect([viaEnv.code, viaEnv.stdout]).toEqual([0, `${shipped}: configuration OK (2 endpoints, upstream embedded, PDS local)\n`]);
    const both = await runCli(['check-config', '--config', shipped], { env: { NEMS_GATEWAY_CONFIG: join(dir, 'missing.yaml') } });
    expect(both.code).toBe(0);
  });

  it.each([
    ['a bad port', (raw: Record<string, any>) => { raw.admin.port = 70000; }, /admin\.port: .*65535/],
    ['an unknown key', (raw: Record<string, any>) => { raw.server.limits.maxBodySize = 1; }, /server\.limits: unknown key\(s\) 'maxBodySize'/],
    ['a wrong type', (raw: Record<string, any>) => { raw.nems.toAsid = 200000000306; }, /nems\.toAsid: .*expected string/],
    ['upstream kind http without url', (raw: Record<string, any>) => { raw.upstream.kind = 'http'; }, /upstream\.url: is required when kind is http/],
    ['a missing server certificate', (raw: Record<string, any>) => { raw.server.tls.cert = join(dir, 'nope.pem'); }, /server\.tls\.cert: cannot read .*nope\.pem \(ENOENT\)/],
    ['a missing CRL', (raw: Record<string, any>) => { raw.server.tls.crl = join(dir, 'nope-crl.pem'); }, /server\.tls\.crl: cannot read .* \(ENOENT\)/],
    ['a key that does not match the certificate', (raw: Record<string, any>) => { raw.server.tls.key = pki.file('gp-system-key.pem'); }, /server\.tls: .*key values mismatch/],
    ['a missing registry', (raw: Record<string, any>) => { raw.registry.path = join(dir, 'no-endpoints.yaml'); }, /no-endpoints\.yaml: invalid endpoint registry:\n {2}- cannot read file \(ENOENT\)/],
    ['a missing upstream client certificate', (raw: Record<string, any>) => { raw.upstream.tls = { cert: join(dir, 'no-client.pem'), key: pki.file('gp-system-key.pem') }; }, /upstream\.tls\.cert: cannot read .*no-client\.pem \(ENOENT\)/],
    ['an upstream client key that does not match', (raw: Record<string, any>) => { raw.upstream.tls = { cert: pki.file('gp-system.pem'), key: pki.file('child-health-key.pem') }; }, /upstream\.tls: .*key values mismatch/],
    ['a missing signed-JWT key', (raw: Record<string, any>) => { raw.nems.jwt = { signed: { enabled: true, keys: [{ path: join(dir, 'no-jwt-key.pem'), alg: 'RS256' }] } }; }, /configuration check failed/],
  ])('exits non-zero naming the key for %s', async (_name, patch, problem) => {
    const r = await runCli(['check-config', '--config', variant(patch)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(problem);
  });

  it('exits non-zero naming the entry for a bad registry', async () => {
    const registry = parseYaml(readFileSync(join(PROJECT_ROOT, 'config', 'endpoints.yaml'), 'utf8')) as { endpoints: any[] };
    registry.endpoints[1].asids[0].asid = '200000000101';
    registry.endpoints[0].asids[0].interactions.push('urn:nhs:names:services:clinicals-sync:SubscriptionsApiPatch');
    const file = join(dir, 'bad-endpoints.yaml');
    writeFileSync(file, stringify(registry));
    const r = await runCli(['check-config', '--config', variant((raw) => { raw.registry.path = file; })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('endpoints.0.asids.0.interactions.3: is not a NEMS InteractionID');
  });

  it('exits non-zero for a missing file, bad YAML and a bad environment override', async () => {
    const missing = await runCli(['check-config', '--config', join(dir, 'missing.yaml')]);
    expect([missing.code, missing.stderr]).toEqual([1, `${join(dir, 'missing.yaml')}: invalid configuration:\n  - cannot read file (ENOENT)\n`]);
    const yamlFile = join(dir, 'broken.yaml');
    writeFileSync(yamlFile, 'server:\n  port: [\n');
    const yaml = await runCli(['check-config', '--config', yamlFile]);
    expect(yaml.code).toBe(1);
    expect(yaml.stderr).toMatch(/YAML syntax: .*line \d+/);
    const env = await runCli(['check-config', '--config', shipped], { env: { NEMS_GATEWAY_PORT: 'https' } });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('NEMS_GATEWAY_PORT: must be a whole number');
  });

  it('exits 2 (a usage error) when --config has no value', async () => {
    const r = await runCli(['check-config', '--config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('option --config needs a value');
  });

  it('refuses a mistyped option instead of validating the default file', async () => {
    const r = await runCli(['check-config', '--confg', shipped]);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toMatch(/^nems-gateway check-config: unknown option --confg\nusage: nems-gateway check-config/);
  });
});

describe('nems-gateway jwt', () => {
  it('prints an unsigned Spine JWT for the ASID, ODS code and scope', async () => {
    const r = await runCli(['jwt', '--asid', '200000000101', '--ods', 'A83627', '--scope', 'patient/Subscription.read']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.\n$/);
    const payload = JSON.parse(Buffer.from(r.stdout.split('.')[1]!, 'base64url').toString());
    expect(payload).toMatchObject({ requesting_system: 'https://fhir.nhs.uk/Id/accredited-system|200000000101', scope: 'patient/Subscription.read' });
  });

  it('exits 2 with its usage when a required option is missing', async () => {
    const r = await runCli(['jwt', '--asid', '200000000101']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/nems-gateway jwt: /);
  });
});

describe('usage', () => {
  it.each([['--help'], ['-h'], ['help']])('%s prints the commands and exits 0', async (flag) => {
    const r = await runCli([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: nems-gateway <command> \[options\]/);
    for (const command of ['start', 'check-config', 'jwt', 'core', 'mailbox', 'demo']) expect(r.stdout).toContain(`\n  ${command} `);
  });

  it('demo refuses a mistyped option instead of running with defaults', async () => {
    const r = await runCli(['demo', '--cert', pki.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^nems-gateway demo: unknown option --cert\nusage: nems-gateway demo/);
  });

  it.each(['start', 'check-config', 'jwt', 'core', 'mailbox', 'demo'])('%s --help prints its own usage and exits 0 without doing anything', async (command) => {
    for (const args of [[command, '--help'], [command, '-h'], ['help', command]]) {
      const r = await runCli(args);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toMatch(new RegExp(`^usage: nems-gateway ${command} `));
      expect(r.stdout).toContain('-h, --help');
    }
  });

  it.each([
    [['start', '--confg', 'x.yaml'], 'unknown option --confg'],
    [['start', 'x.yaml'], "unexpected argument 'x.yaml'"],
    [['core', '--port', 'http'], '--port must be 1-65535'],
    [['core', '--port', '0'], '--port must be 1-65535'],
    [['core', '--base-url', 'not a url', '--data-dir', '/nonexistent'], '--base-url must be a URL'],
    [['core', '--follow'], 'unknown option --follow'],
    [['mailbox'], 'missing <mailbox-id>'],
    [['mailbox', 'A83627MB001', 'B'], "unexpected argument 'B'"],
    [['mailbox', '../x', '--data-dir', '/nonexistent'], "'../x' is not a mailbox id"],
    [['mailbox', 'A83627MB001', '--follow=yes'], 'option --follow takes no value'],
    [['demo', '--keep-data', '--keep-data'], 'option --keep-data given twice'],
    [['jwt', '--asid'], 'option --asid needs a value'],
  ])('%j exits 2 naming the problem', async (args, problem) => {
    const r = await runCli(args);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toContain(`nems-gateway ${args[0]}: ${problem}\nusage: nems-gateway ${args[0]}`);
  });

  it('help for an unknown command exits 2', async () => {
    const r = await runCli(['help', 'frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^unknown command 'frobnicate'/);
  });

  it('an unknown command exits 2 with the usage on stderr', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^unknown command 'frobnicate'\nusage: nems-gateway/);
  });
});
