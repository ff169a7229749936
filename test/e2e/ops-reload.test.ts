// Hot reload under load (issue 6 point 4): certificates, CRL, endpoint registry and local PDS data replaced
// under a running gateway while keep-alive and new connections keep sending requests. Reloads come from
// app.reload() (what SIGHUP calls; the CLI test sends the real signal) and from file watching.
//
// Decision on live connections after a CRL update: OpenSSL checks revocation only during a handshake, so the
// gateway re-checks its open connections against every newly loaded CRL and closes those whose client
// certificate is now revoked — at once when idle, after the response in progress otherwise. Other connections
// keep their TLS session (setSecureContext affects only new handshakes).
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { Agent } from 'node:https';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { mintSpineJwt } from '../../src/cli/jwt.js';
import { issuerAndSerial, parseCrls } from '../../src/edge/pki.js';
import { SUBSCRIPTION_INTERACTIONS } from '../../src/nems/interactions.js';
import { send, spineCodeOf, startCountingUpstream, startTestApp, testConfig, type ClientName, type CountingUpstream } from '../helpers/e2e.js';
import { NEMS_TO_ASID, nemsHeaders } from '../helpers/nems-requests.js';
import { explicitCriteria, EXPLICIT_SUBSCRIPTION, subscriptionXml } from '../helpers/bodies.js';
import { adminGet, eventually, handshake, metricSum } from '../helpers/ops-admin.js';
import { copyConfigFiles, createOpsPki, extraEndpointYaml, replaceFile, type ConfigFiles, type OpsPki } from '../helpers/ops-files.js';
import { startLoad, type RunningLoad } from '../helpers/ops-load.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const NEW_ENDPOINT = { name: 'new-system', fqdn: 'new-system.example.nhs.uk', asid: '200000000199', ods: 'Y12345' };
/** A valid NHS number absent from config/pds-local.yaml (the PDS sandbox's not-found number). */
const UNTRACED_NHS_NUMBER = '9111231130';

const newEndpointHeaders = () => ({
  fromASID: NEW_ENDPOINT.asid,
  toASID: NEMS_TO_ASID,
  InteractionID: SUBSCRIPTION_INTERACTIONS.read,
  Authorization: `Bearer ${mintSpineJwt({ asid: NEW_ENDPOINT.asid, ods: NEW_ENDPOINT.ods, scope: 'patient/Subscription.read' })}`,
});

const createForUntraced = (pki: OpsPki, port: number) =>
  send(pki, port, {
    client: 'gp-system', method: 'POST', path: '/STU3/Subscription',
    body: subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria: explicitCriteria(UNTRACED_NHS_NUMBER) }),
    headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
  });

const tracedEntry = `  "${UNTRACED_NHS_NUMBER}":\n    status: traced\n    gpOdsCode: A83627\n    postcode: LS1 4HR\n    name: { family: NEWLY, given: [Traced] }\n    birthDate: "2015-05-05"\n`;

async function scrape(app: RunningApp): Promise<string> {
  return (await app.metrics.render()).body;
}

/** A keep-alive connection for one client certificate, with its socket exposed. */
async function keptAlive(pki: OpsPki, port: number, client: ClientName, headers: Record<string, string> = nemsHeaders('gp-system', 'read')) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let socket: TLSSocket | undefined;
  agent.on('free', (s: TLSSocket) => {
    socket = s;
  });
  const first = await send(pki, port, { client, path: READ_PATH, headers, agent });
  expect(first.status).toBe(200);
  return { agent, socket: () => socket! };
}

const within = (event: Promise<unknown>, ms: number) =>
  Promise.race([event.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), ms))]);

let pki: OpsPki;
let upstream: CountingUpstream;

beforeAll(async () => {
  pki = createOpsPki({ [NEW_ENDPOINT.name]: NEW_ENDPOINT.fqdn });
  upstream = await startCountingUpstream();
});
afterAll(async () => {
  await upstream?.stop();
  pki?.cleanup();
});

describe('reload with app.reload() (what SIGHUP runs) under load', () => {
  let files: ConfigFiles;
  let app: RunningApp;
  let port: number;
  let load: RunningLoad;
  let firstSerial = '';

  beforeAll(async () => {
    files = copyConfigFiles();
    app = await startTestApp(testConfig(pki, {
      upstreamUrl: upstream.url,
      patch: (raw) => {
        raw.registry.path = files.registry;
        raw.pds.local.path = files.pdsLocal;
      },
    }));
    port = app.gateway.port;
    firstSerial = (await handshake(pki, port, 'child-health')).serverSerial!;
    // child-health sends the background load: gp-system is revoked at the end of this suite.
    load = startLoad(pki, port, { client: 'child-health', path: READ_PATH, headers: () => nemsHeaders('child-health', 'read'), maxRequests: 300 });
  });
  afterAll(async () => {
    await load?.stop();
    await app?.stop();
    files?.cleanup();
  });

  it('refuses a garbage server certificate (reload fails, counted, the old certificate keeps serving)', async () => {
    const goodCert = pki.read('server.pem');
    replaceFile(pki.file('server.pem'), '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    const result = await app.reload(['tls']);
    expect(result.ok).toBe(false);
    expect(result.failures[0]).toMatch(/^tls: server\.tls/);
    replaceFile(pki.file('server.pem'), goodCert);
    expect(metricSum(await scrape(app), 'nems_gateway_reloads_total', { component: 'certificate', result: 'failure' })).toBe(1);
    expect(metricSum(await scrape(app), 'nems_gateway_reload_last_failed', { component: 'certificate' })).toBe(1);
    const probe = await handshake(pki, port, 'child-health');
    expect(probe).toMatchObject({ ok: true, serverSerial: firstSerial });
  });

  it('rotates the server certificate: new connections get the new certificate, a kept-alive connection keeps working', async () => {
    const held = await keptAlive(pki, port, 'child-health', nemsHeaders('child-health', 'read'));
    const heldSocket = held.socket();
    expect(heldSocket.getPeerX509Certificate()!.serialNumber.toUpperCase().replace(/^0+/, '')).toBe(firstSerial);
    const newSerial = pki.issueServer('server-2');
    replaceFile(pki.file('server-key.pem'), pki.read('server-2-key.pem'));
    replaceFile(pki.file('server.pem'), pki.read('server-2.pem'));
    expect(await app.reload(['tls'])).toEqual({ ok: true, failures: [] });

    expect(await handshake(pki, port, 'child-health')).toMatchObject({ ok: true, serverSerial: newSerial });
    const again = await send(pki, port, { client: 'child-health', path: READ_PATH, headers: nemsHeaders('child-health', 'read'), agent: held.agent });
    expect(again.status).toBe(200);
    expect(held.socket()).toBe(heldSocket);
    held.agent.destroy();
    const text = await scrape(app);
    expect(metricSum(text, 'nems_gateway_reloads_total', { component: 'certificate', result: 'success' })).toBe(1);
    expect(metricSum(text, 'nems_gateway_reload_last_failed', { component: 'certificate' })).toBe(0);
  });

  it('refuses a bad registry (old registry kept, failure counted, requests keep succeeding), then a good one adds an endpoint', async () => {
    const before = await send(pki, port, { client: 'new-system' as ClientName, path: READ_PATH, headers: newEndpointHeaders() });
    expect(before.status).toBe(403);
    expect(spineCodeOf(before.text)).toBe('ACCESS_DENIED');

    const good = readFileSync(files.registry, 'utf8');
    replaceFile(files.registry, 'endpoints:\n  - fqdn: broken\n    asids: "not a list"\n');
    const refused = await app.reload(['registry']);
    expect(refused.ok).toBe(false);
    expect(refused.failures[0]).toMatch(/^registry: /);
    const text = await scrape(app);
    expect(metricSum(text, 'nems_gateway_reloads_total', { component: 'registry', result: 'failure' })).toBe(1);
    expect(metricSum(text, 'nems_gateway_reload_last_failed', { component: 'registry' })).toBe(1);
    // The registry in force is unchanged: the example endpoints still work.
    expect((await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);
    const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
    expect(ready.checks.config).toEqual({ ok: true, reason: 'valid; latest reload refused for registry (previous version in force)' });

    replaceFile(files.registry, `${good}${extraEndpointYaml(NEW_ENDPOINT.fqdn, NEW_ENDPOINT.asid, NEW_ENDPOINT.ods)}`);
    expect(await app.reload(['registry'])).toEqual({ ok: true, failures: [] });
    const after = await send(pki, port, { client: 'new-system' as ClientName, path: READ_PATH, headers: newEndpointHeaders() });
    expect(after.status).toBe(200);
    expect(metricSum(await scrape(app), 'nems_gateway_reload_last_failed', { component: 'registry' })).toBe(0);
  });

  it('reloads the local PDS data: an NHS number added to the file is traced from then on', async () => {
    const before = await createForUntraced(pki, port);
    expect(before.status).toBe(404);
    expect(spineCodeOf(before.text)).toBe('PATIENT_NOT_FOUND');
    const original = readFileSync(files.pdsLocal, 'utf8');
    replaceFile(files.pdsLocal, 'version: 1\npatients: [not, a, map]\n');
    expect((await app.reload(['pds'])).ok).toBe(false);
    expect(metricSum(await scrape(app), 'nems_gateway_reloads_total', { component: 'pds-data', result: 'failure' })).toBe(1);
    expect((await createForUntraced(pki, port)).status).toBe(404);

    replaceFile(files.pdsLocal, original.replace(/^patients:\n/m, `patients:\n${tracedEntry}`));
    expect(await app.reload(['pds'])).toEqual({ ok: true, failures: [] });
    expect((await createForUntraced(pki, port)).status).toBe(201);
  });

  it('applies a CRL revoking gp-system: new handshakes fail as revoked; live gp-system connections close (the busy one after its response)', async () => {
    const idle = await keptAlive(pki, port, 'gp-system');
    const busy = await keptAlive(pki, port, 'gp-system');
    const idleClosed = once(idle.socket(), 'close');
    const busyClosed = once(busy.socket(), 'close');
    await upstream.reset();
    const slow = send(pki, port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-delay-ms': '400' }, agent: busy.agent })
      .catch((err: Error) => err);
    await eventually(async () => (await upstream.stats()).received.some((r) => r.headers['x-test-delay-ms']), 'the slow request to reach the upstream');
    const revokedBefore = metricSum(await scrape(app), 'nems_gateway_tls_handshake_failures_total', { reason: 'revoked' });

    replaceFile(pki.file('crl.pem'), pki.crlRevoking(['revoked', 'gp-system'], 2));
    expect(await app.reload(['tls'])).toEqual({ ok: true, failures: [] });

    // Well before the 5 s keep-alive timeout would have closed them anyway.
    expect(await within(idleClosed, 1000)).toBe('closed');
    expect(await slow).toMatchObject({ status: 200 });
    expect(await within(busyClosed, 1000)).toBe('closed');
    idle.agent.destroy();
    busy.agent.destroy();
    expect((await handshake(pki, port, 'gp-system')).ok).toBe(false);
    await expect(send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).rejects.toThrow();
    expect(metricSum(await scrape(app), 'nems_gateway_tls_handshake_failures_total', { reason: 'revoked' })).toBe(revokedBefore + 2);
    // Another endpoint's certificate is unaffected.
    expect((await handshake(pki, port, 'child-health')).ok).toBe(true);
  });

  it('the background load saw only 200s across every reload, on kept-alive and new connections', async () => {
    await eventually(() => load.sent >= 60, 'at least 60 load requests', 10_000);
    const report = await load.stop();
    expect(report.errors).toEqual([]);
    expect(report.statuses).toEqual({ 200: report.sent });
    // Keep-alive connections really were reused across the reloads (3 connections, many requests).
    expect(report.keepAliveRequests).toBeGreaterThan(report.keepAliveSockets * 5);
  });
});

describe('matching live certificates against a CRL (issuer name and serial)', () => {
  it('finds the revoked client of the example CRL under the CA that issued it, and nothing in garbage', () => {
    const crl = pki.crlRevoking(['revoked'], 9);
    const revoked = issuerAndSerial(new X509Certificate(pki.read('revoked.pem')).raw);
    const valid = issuerAndSerial(new X509Certificate(pki.read('child-health.pem')).raw);
    const untrusted = issuerAndSerial(new X509Certificate(pki.read('untrusted.pem')).raw);
    const parsed = parseCrls(crl);
    expect(parsed.map((c) => c.issuer)).toEqual([revoked.issuer]);
    expect(parsed[0]!.revoked).toEqual(new Set([revoked.serial]));
    expect(valid.issuer).toBe(revoked.issuer);
    expect(parsed[0]!.revoked.has(valid.serial)).toBe(false);
    expect(untrusted.issuer).not.toBe(revoked.issuer);
    expect(() => parseCrls('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')).toThrow(expect.objectContaining({ reason: 'malformed-crl' }));
    expect(() => parseCrls('not a CRL')).toThrow(expect.objectContaining({ reason: 'no-crl' }));
  });
});

describe('reload on file change (lifecycle.watchFiles)', () => {
  let files: ConfigFiles;
  let tlsDir: string;
  let app: RunningApp;
  let port: number;

  beforeAll(async () => {
    files = copyConfigFiles();
    // This app gets its own copies of the TLS files, so it sees only its own changes.
    tlsDir = mkdtempSync(join(tmpdir(), 'nems-ops-tls-'));
    for (const name of ['server.pem', 'server-key.pem', 'ca.pem']) copyFileSync(pki.file(name), join(tlsDir, name));
    replaceFile(join(tlsDir, 'crl.pem'), pki.crlRevoking(['revoked'], 3));
    app = await startTestApp(testConfig(pki, {
      upstreamUrl: upstream.url,
      patch: (raw) => {
        raw.server.tls = { cert: join(tlsDir, 'server.pem'), key: join(tlsDir, 'server-key.pem'), ca: join(tlsDir, 'ca.pem'), crl: join(tlsDir, 'crl.pem') };
        raw.registry.path = files.registry;
        raw.pds.local.path = files.pdsLocal;
        raw.lifecycle.watchFiles = true;
      },
    }));
    port = app.gateway.port;
  });
  afterAll(async () => {
    await app?.stop();
    files?.cleanup();
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  const reloads = async (component: string, result: 'success' | 'failure') =>
    metricSum(await scrape(app), 'nems_gateway_reloads_total', { component, result });

  it('a bad registry file is refused and counted; a good one adding an endpoint takes effect', async () => {
    const good = readFileSync(files.registry, 'utf8');
    replaceFile(files.registry, 'endpoints: {{{');
    await eventually(async () => (await reloads('registry', 'failure')) === 1, 'the refused registry reload');
    expect((await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);

    replaceFile(files.registry, `${good}${extraEndpointYaml(NEW_ENDPOINT.fqdn, NEW_ENDPOINT.asid, NEW_ENDPOINT.ods)}`);
    await eventually(async () => (await reloads('registry', 'success')) === 1, 'the registry reload');
    expect((await send(pki, port, { client: 'new-system' as ClientName, path: READ_PATH, headers: newEndpointHeaders() })).status).toBe(200);
  });

  it('a changed local PDS file is reloaded', async () => {
    expect((await createForUntraced(pki, port)).status).toBe(404);
    replaceFile(files.pdsLocal, readFileSync(files.pdsLocal, "utf8").replace(/^patients:\n/m, `patients:\n${tracedEntry}`));
    await eventually(async () => (await reloads('pds-data', 'success')) === 1, 'the PDS data reload');
    expect((await createForUntraced(pki, port)).status).toBe(201);
  });

  it('a new certificate and key (replaced one after the other) are picked up by new connections', async () => {
    const serial = pki.issueServer('server-3');
    replaceFile(join(tlsDir, 'server-key.pem'), pki.read('server-3-key.pem'));
    replaceFile(join(tlsDir, 'server.pem'), pki.read('server-3.pem'));
    await eventually(async () => (await handshake(pki, port, 'gp-system')).serverSerial === serial, 'the new server certificate');
    expect(await reloads('certificate', 'success')).toBeGreaterThanOrEqual(1);
  });

  it('a new CRL revoking gp-system makes its new handshakes fail', async () => {
    expect((await handshake(pki, port, 'gp-system')).ok).toBe(true);
    replaceFile(join(tlsDir, 'crl.pem'), pki.crlRevoking(['revoked', 'gp-system'], 4));
    await eventually(async () => !(await handshake(pki, port, 'gp-system')).ok, 'gp-system to be refused');
    expect((await handshake(pki, port, 'child-health')).ok).toBe(true);
  });

  it('an unchanged file rewritten in place causes no reload', async () => {
    const before = await reloads('registry', 'success');
    replaceFile(files.registry, readFileSync(files.registry));
    await new Promise((r) => setTimeout(r, 600));
    expect(await reloads('registry', 'success')).toBe(before);
  });
});
