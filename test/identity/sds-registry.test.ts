import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { SdsFhirClient, SdsUnavailableError } from '../../src/identity/sds-client.js';
import { SdsEndpointRegistry } from '../../src/identity/sds-registry.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { SUBSCRIPTION_INTERACTIONS } from '../../src/nems/interactions.js';
import { startSdsDouble, type SdsData, type SdsDouble } from '../doubles/sds-double.js';

const API_KEY = 'sds-test-key';
const EXAMPLE: SdsData = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'sds', 'example-records.json'), 'utf8'));
const GP = { subjectCn: 'gp-system.example.nhs.uk', dnsNames: ['gp-system.example.nhs.uk'], fingerprint256: 'AA'.repeat(32) };

let dir: string;
let sds: SdsDouble;
const opened: SdsEndpointRegistry[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nems-sds-'));
  writeFileSync(join(dir, 'apikey'), `${API_KEY}\n`);
  writeFileSync(join(dir, 'overlay.yaml'), readFileSync(join(PROJECT_ROOT, 'config', 'sds-overlay.yaml')));
  sds = await startSdsDouble({ apiKey: API_KEY, data: structuredClone(EXAMPLE) });
});
afterEach(async () => {
  for (const r of opened.splice(0)) await r.close();
  sds.faults.length = 0;
  sds.down = false;
  sds.delayMs = 0;
  sds.pageSize = undefined;
  sds.data = structuredClone(EXAMPLE);
});
afterAll(async () => {
  await sds.close();
  rmSync(dir, { recursive: true, force: true });
});

function registryConfig(sdsPatch: Record<string, unknown> = {}) {
  return parseConfig({
    server: { tls: { cert: 'c', key: 'k', ca: 'a' } },
    registry: {
      kind: 'sds', path: join(dir, 'overlay.yaml'),
      sds: { baseUrl: sds.url, auth: { kind: 'api-key', apiKeyFile: join(dir, 'apikey') }, timeoutMs: 1000, refreshIntervalMs: 3_600_000, ...sdsPatch },
    },
  }, join(dir, 'gateway.yaml')).registry;
}

function open(options: { now?: () => number; metricsRegistry?: Registry } = {}, sdsPatch: Record<string, unknown> = {}): SdsEndpointRegistry {
  const registry = new SdsEndpointRegistry(registryConfig(sdsPatch), options);
  opened.push(registry);
  return registry;
}

describe('SDS FHIR client against the SDS double', () => {
  it('sends the API key, the FHIR identifiers and a correlation id, and reads Devices', async () => {
    const client = new SdsFhirClient(registryConfig().sds!);
    try {
      const devices = await client.searchDevices('A83627', SUBSCRIPTION_INTERACTIONS.create);
      expect(devices.map((d) => d.asid)).toEqual(['200000000101']);
      const request = sds.requests.at(-1)!;
      expect(request.headers.apikey).toBe(API_KEY);
      expect(request.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
      const query = new URL(request.url, 'http://x').searchParams;
      expect(query.get('organization')).toBe('https://fhir.nhs.uk/Id/ods-organization-code|A83627');
      expect(query.get('identifier')).toBe(`https://fhir.nhs.uk/Id/nhsServiceInteractionId|${SUBSCRIPTION_INTERACTIONS.create}`);
    } finally {
      await client.close();
    }
  });

  it('follows every page and refuses a search whose next link leaves the base URL', async () => {
    sds.data.as.push(...Array.from({ length: 4 }, (_, i) => ({ ...EXAMPLE.as[0]!, uniqueIdentifier: [`20000000020${i}`] })));
    sds.pageSize = 2;
    const client = new SdsFhirClient(registryConfig().sds!);
    try {
      expect((await client.searchDevices('A83627', SUBSCRIPTION_INTERACTIONS.create)).length).toBe(5);
      const offSite = { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'next', url: 'http://evil.example/Device?page=2' }], entry: [] };
      sds.faults.push({ path: '/Device', status: 200, body: JSON.stringify(offSite) });
      await expect(client.searchDevices('A83627', SUBSCRIPTION_INTERACTIONS.create)).rejects.toMatchObject({ reason: 'bad-response' });
    } finally {
      await client.close();
    }
  });

  it('classifies a refused key, a 5xx, a timeout and a dead connection', async () => {
    const wrongKey = join(dir, 'wrong');
    writeFileSync(wrongKey, 'nope');
    const refused = new SdsFhirClient(registryConfig({ auth: { kind: 'api-key', apiKeyFile: wrongKey } }).sds!);
    const client = new SdsFhirClient(registryConfig({ timeoutMs: 300 }).sds!);
    try {
      await expect(refused.searchDevices('A83627', SUBSCRIPTION_INTERACTIONS.create)).rejects.toMatchObject({ reason: 'auth' });
      sds.faults.push({ status: 504 });
      await expect(client.searchDevices('A83627', SUBSCRIPTION_INTERACTIONS.create)).rejects.toMatchObject({ reason: 'bad-response' });
      sds.delayMs = 1000;
      await expect(client.searchDevices('A83627', SUBSCRIPTION_INTERACTIONS.create)).rejects.toMatchObject({ reason: 'timeout' });
      sds.delayMs = 0;
      sds.faults.push({ reset: true });
      await expect(client.searchDevices('A83627', SUBSCRIPTION_INTERACTIONS.create)).rejects.toBeInstanceOf(SdsUnavailableError);
    } finally {
      await refused.close();
      await client.close();
    }
  });
});

describe('SDS registry refresh', () => {
  it('installs the joined registry and resolves the GP certificate to its ASID', async () => {
    const registry = open();
    await registry.refresh();
    const lookup = registry.resolve(GP);
    expect(lookup.ok).toBe(true);
    if (!lookup.ok) return;
    const asid = lookup.endpoint.asids.get('200000000101')!;
    expect(asid.odsCodes).toEqual(['A83627']);
    expect(asid.mailboxes.map((m) => m.id)).toEqual(['A83627MB001']);
    expect(registry.endpoints().map((e) => e.fqdn)).toEqual(['child-health.example.nhs.uk', 'gp-system.example.nhs.uk']);
    expect(await registry.ready()).toMatchObject({ ok: true });
  });

  it('keeps the last good registry whole when one page of one search fails mid-refresh', async () => {
    const registry = open();
    await registry.refresh();
    const generation = registry.generation;
    // SDS now drops the GP system, but the refresh breaks on page 2 of a later search: nothing of it is installed.
    sds.data.as = sds.data.as.filter((r) => r.uniqueIdentifier[0] !== '200000000101');
    sds.data.as.push(...Array.from({ length: 3 }, (_, i) => ({ ...EXAMPLE.as[1]!, uniqueIdentifier: [`20000000030${i}`] })));
    sds.pageSize = 2;
    sds.faults.push({ path: '/Device', page: 2, status: 500 });
    await expect(registry.refresh()).rejects.toBeInstanceOf(SdsUnavailableError);
    expect(registry.generation).toBe(generation);
    expect(registry.resolve(GP).ok).toBe(true);
    expect(registry.consecutiveFailures).toBe(1);
  });

  it('never widens access on a partial answer: a Bundle announcing more entries than it holds is refused', async () => {
    const registry = open();
    await registry.refresh();
    const before = registry.endpoints();
    const device = JSON.parse(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', total: 2, entry: [] }));
    sds.faults.push({ path: '/Device', status: 200, body: JSON.stringify(device) });
    await expect(registry.refresh()).rejects.toMatchObject({ reason: 'partial' });
    expect(registry.endpoints()).toBe(before);
  });

  it('denies everyone and is not ready before the first good refresh', async () => {
    sds.down = true;
    const registry = open();
    await registry.start();
    expect(registry.resolve(GP)).toEqual({ ok: false, reason: 'unregistered-fqdn' });
    expect(await registry.ready()).toMatchObject({ ok: false, reason: expect.stringContaining('no successful refresh') });
  });

  it('serves the last good copy while SDS is down, then stops past maxStaleMs', async () => {
    let now = 1_000_000;
    const metrics = new Registry();
    const registry = open({ now: () => now, metricsRegistry: metrics }, { maxStaleMs: 60_000 });
    await registry.refresh();
    sds.down = true;
    now += 30_000;
    await expect(registry.refresh()).rejects.toBeInstanceOf(SdsUnavailableError);
    expect(registry.resolve(GP).ok).toBe(true);
    expect(await registry.ready()).toMatchObject({ ok: true });
    const text = await metrics.metrics();
    expect(text).toMatch(/nems_gateway_sds_registry_age_seconds 30/);
    expect(text).toMatch(/nems_gateway_sds_refresh_total\{result="failed"\} 1/);
    expect(text).toMatch(/nems_gateway_sds_refresh_total\{result="ok"\} 1/);
    now += 31_000;
    expect(registry.resolve(GP)).toEqual({ ok: false, reason: 'unregistered-fqdn' });
    expect(await registry.ready()).toMatchObject({ ok: false, reason: expect.stringContaining('past maxStaleMs') });
    expect(await metrics.metrics()).toMatch(/nems_gateway_sds_registry_usable 0/);
    sds.down = false;
    await registry.refresh();
    expect(registry.resolve(GP).ok).toBe(true);
  });

  it('reloads the overlay without calling SDS, and refuses a bad overlay keeping the one in force', async () => {
    const registry = open();
    await registry.refresh();
    const calls = sds.requests.length;
    const overlayPath = join(dir, 'overlay.yaml');
    const original = readFileSync(overlayPath, 'utf8');
    try {
      writeFileSync(overlayPath, original.replace('subscriptionTypes: [explicit]\n', 'subscriptionTypes: [explicit, generic]\n'));
      registry.reload();
      const lookup = registry.resolve(GP);
      expect(lookup.ok && lookup.endpoint.asids.get('200000000101')!.subscriptionTypes).toEqual(['explicit', 'generic']);
      writeFileSync(overlayPath, 'odsCodes: []\n');
      expect(() => registry.reload()).toThrow(/odsCodes/);
      expect(registry.resolve(GP).ok).toBe(true);
      expect(sds.requests.length).toBe(calls);
    } finally {
      writeFileSync(overlayPath, original);
    }
  });
});

describe('shipped configuration for the doubles', () => {
  it('config/local-doubles.yaml validates, with every secret named by file and resolved beside it', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    const { config } = loadConfig(join(PROJECT_ROOT, 'config', 'local-doubles.yaml'));
    expect(config.registry.kind).toBe('sds');
    expect(config.registry.sds!.auth).toEqual({ kind: 'api-key', apiKeyFile: join(PROJECT_ROOT, 'data', 'secrets', 'sds-apikey') });
    expect(config.core.delivery).toBe('mesh');
    expect(config.core.mesh!.passwordFile).toBe(join(PROJECT_ROOT, 'data', 'secrets', 'mesh-password'));
    expect(config.core.mesh!.tls!.ca).toBe(join(PROJECT_ROOT, 'certs-example', 'generated', 'ca.pem'));
  });

  it('refuses core.delivery mesh without core.mesh, and registry.kind sds without registry.sds', () => {
    expect(() => parseConfig({ server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { path: 'r' }, core: { delivery: 'mesh' } }, join(dir, 'g.yaml'))).toThrow(/core\.mesh: is required when delivery is mesh/);
    expect(() => parseConfig({ server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { kind: 'sds', path: 'r' } }, join(dir, 'g.yaml'))).toThrow(/registry\.sds: is required when kind is sds/);
  });
});
