// Issue 13 D1 and D7: revocation fails closed. An empty CRL file used to switch revocation off (start-up and
// reload succeeded, /readyz said valid, check-config exited 0, a revoked client got 200); a CRL of another CA, an
// expired CRL or a garbage CA bundle used to be accepted on reload, after which every handshake failed while
// /readyz stayed ready. Now each is refused at start-up (exit ≠ 0, check-config ≠ 0) and on reload (the old
// material stays in force, the refusal is counted), and /readyz is not ready once the CRL in force is stale.
import { createPrivateKey, createSign } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { parseCrls } from '../../src/edge/pki.js';
import { send, startCountingUpstream, startTestApp, testConfig, type CountingUpstream } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { adminGet, eventually, handshake, metricSum } from '../helpers/ops-admin.js';
import { startCli, writeCliConfig } from '../helpers/ops-cli.js';
import { createOpsPki, replaceFile, type OpsPki } from '../helpers/ops-files.js';
import { runCli } from '../cli/run-cli.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const DAY_MS = 86_400_000;

let pki: OpsPki;
let upstream: CountingUpstream;
let dir: string;

beforeAll(async () => {
  pki = createOpsPki();
  upstream = await startCountingUpstream();
  dir = mkdtempSync(join(tmpdir(), 'nems-trust-'));
});
afterAll(async () => {
  await upstream?.stop();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A CRL of the example CA whose signature no longer matches its contents (one byte of the signature flipped). */
function tamperedCrl(): string {
  const der = Buffer.from(parseCrls(pki.crlRevoking(['revoked'], 40))[0]!.der);
  der[der.length - 5] ^= 0xff;
  return `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END X509 CRL-----\n`;
}

/** A CRL that is well-formed and signed with a key that is not the CA's (same issuer name). */
function crlSignedByAnotherKey(): string {
  const der = Buffer.from(parseCrls(pki.crlRevoking(['revoked'], 41))[0]!.der);
  const crl = parseCrls(der)[0]!;
  const foreignKey = createPrivateKey(pki.read('gp-system-key.pem'));
  const signature = createSign('sha256').update(crl.tbs).sign(foreignKey);
  const original = crl.signature;
  const swapped = Buffer.from(der.toString('hex').replace(original.toString('hex'), signature.toString('hex')), 'hex');
  return `-----BEGIN X509 CRL-----\n${swapped.toString('base64')}\n-----END X509 CRL-----\n`;
}

/** Each bad material, how to put it in place (files under `dir`), and the refusal it must get. */
const BAD_MATERIAL: ReadonlyArray<readonly [string, () => { crl?: string; ca?: string }, RegExp, string]> = [
  ['an empty CRL file', () => ({ crl: '' }), /server\.tls\.crl: no PEM or DER CRL found/, 'crl-unreadable'],
  ['an unparsable CRL', () => ({ crl: '-----BEGIN X509 CRL-----\nMAMCAQE=\n-----END X509 CRL-----\n' }), /server\.tls\.crl: CRL is not a readable X\.509 CRL/, 'crl-unreadable'],
  ['a CRL of another CA', () => ({ crl: pki.crlRevoking([], 42, { issuer: 'untrusted-ca' }) }), /CRL issued by .*Untrusted Development CA.*not a CA of server\.tls\.ca/, 'crl-unknown-issuer'],
  ['a CRL whose signature does not verify', () => ({ crl: tamperedCrl() }), /does not carry a valid signature by that CA/, 'crl-signature'],
  ['a CRL signed by another key under the CA\'s name', () => ({ crl: crlSignedByAnotherKey() }), /does not carry a valid signature by that CA/, 'crl-signature'],
  ['an expired CRL', () => ({ crl: pki.crlRevoking(['revoked'], 43, { thisUpdate: new Date(Date.now() - 30 * DAY_MS), nextUpdate: new Date(Date.now() - DAY_MS) }) }), /the CRL of .* expired \(nextUpdate/, 'crl-expired'],
  ['a CRL issued in the future', () => ({ crl: pki.crlRevoking(['revoked'], 44, { thisUpdate: new Date(Date.now() + DAY_MS), nextUpdate: new Date(Date.now() + 30 * DAY_MS) }) }), /is not valid before/, 'crl-not-yet-valid'],
  ['a garbage CA bundle', () => ({ ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), /server\.tls\.ca: certificate is not a readable X\.509 certificate/, 'ca-unreadable'],
  ['a CA bundle with no CA certificate in it', () => ({ ca: pki.read('gp-system.pem').toString() }), /server\.tls\.ca: no certificate in the bundle is a CA certificate/, 'ca-unusable'],
  ['a CA bundle with a second CA the CRL file does not cover', () => ({ ca: `${pki.read('ca.pem')}${pki.read('untrusted-ca.pem')}` }), /no CRL of the CA .*Untrusted Development CA/, 'ca-without-crl'],
];

/** Private copies of ca.pem and crl.pem with `bad` written over one of them. */
function materialFiles(name: string, bad: { crl?: string; ca?: string }): { ca: string; crl: string } {
  const base = join(dir, name.replace(/\W+/g, '-'));
  const ca = `${base}-ca.pem`;
  const crl = `${base}-crl.pem`;
  copyFileSync(pki.file('ca.pem'), ca);
  copyFileSync(pki.file('crl.pem'), crl);
  if (bad.ca !== undefined) writeFileSync(ca, bad.ca);
  if (bad.crl !== undefined) writeFileSync(crl, bad.crl);
  return { ca, crl };
}

describe('start-up refuses trust material that would switch revocation off or refuse every client', () => {
  it.each(BAD_MATERIAL)('%s: startApp fails naming the problem', async (name, make, problem) => {
    const files = materialFiles(`start-${name}`, make());
    const config = testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => Object.assign(raw.server.tls, files) });
    await expect(startTestApp(config)).rejects.toThrow(problem);
  });

  it('an omitted CRL is refused unless revocation is explicitly none', async () => {
    const without = testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => { delete raw.server.tls.crl; } });
    await expect(startTestApp(without)).rejects.toThrow(/server\.tls\.crl: required unless server\.tls\.revocation is none/);
    const off = testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => { delete raw.server.tls.crl; raw.server.tls.revocation = 'none'; } });
    const app = await startTestApp(off);
    try {
      // Explicitly off: the revoked client passes the handshake, as the operator chose; /readyz says so.
      expect((await handshake(pki, app.gateway.port, 'revoked')).ok).toBe(true);
      const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
      expect(ready.checks.revocation).toEqual({ ok: true, reason: 'revocation off (server.tls.revocation: none); 1 CA(s)' });
    } finally {
      await app.stop();
    }
  });

  it('revocation none together with a CRL is a configuration error', () => {
    expect(() => testConfig(pki, { patch: (raw) => { raw.server.tls.revocation = 'none'; } })).toThrow(/server\.tls\.revocation: is none, yet crl/);
  });
});

describe('the command line refuses the same material (check-config like nginx -t, start exits non-zero)', () => {
  it.each(BAD_MATERIAL.filter(([name]) => /empty CRL|another CA|expired|garbage CA/.test(name)))('%s: check-config exits 1 and start exits non-zero', async (name, make, problem) => {
    const files = materialFiles(`cli-${name}`, make());
    const { file } = writeCliConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => Object.assign(raw.server.tls, files) });
    const check = await runCli(['check-config', '--config', file]);
    expect(check.stderr).toMatch(problem);
    expect(check.code).toBe(1);
    const cli = startCli(file);
    const exit = await cli.exited;
    expect(exit.code).not.toBe(0);
    expect(cli.logs.some((l) => l.msg === 'NEMS gateway listening (mTLS)')).toBe(false);
    expect(cli.logs.find((l) => l.msg === 'start-up failed')?.problem).toMatch(problem);
  });
});

describe('reload refuses the same material and keeps the material in force', () => {
  let app: RunningApp;
  let port: number;
  let caFile: string;
  let crlFile: string;
  const goodCrl = () => pki.crlRevoking(['revoked'], 50 + Math.floor(Math.random() * 1000));

  beforeAll(async () => {
    ({ ca: caFile, crl: crlFile } = materialFiles('reload', {}));
    app = await startTestApp(testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => Object.assign(raw.server.tls, { ca: caFile, crl: crlFile }) }));
    port = app.gateway.port;
  });
  afterAll(async () => {
    await app?.stop();
  });

  it.each(BAD_MATERIAL)('%s: refused, counted, the revoked client is still refused and gp-system still served', async (name, make, problem, reason) => {
    const bad = make();
    const before = metricSum((await app.metrics.render()).body, 'nems_gateway_trust_material_refusals_total', { source: 'reload', reason });
    if (bad.ca !== undefined) replaceFile(caFile, bad.ca);
    if (bad.crl !== undefined) replaceFile(crlFile, bad.crl);
    const result = await app.reload(['tls']);
    expect(result.ok).toBe(false);
    expect(result.failures[0]).toMatch(problem);
    const text = (await app.metrics.render()).body;
    expect(metricSum(text, 'nems_gateway_trust_material_refusals_total', { source: 'reload', reason })).toBe(before + 1);
    expect(metricSum(text, 'nems_gateway_reload_last_failed', { component: 'certificate' })).toBe(1);
    const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
    expect(ready.checks.config.reason).toBe('valid; latest reload refused for tls (previous version in force)');
    expect(ready.checks.revocation.ok).toBe(true);

    // The material in force is the previous one: revocation still works and valid clients are still served.
    expect((await handshake(pki, port, 'revoked')).ok).toBe(false);
    expect((await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);

    replaceFile(caFile, pki.read('ca.pem'));
    replaceFile(crlFile, goodCrl());
    expect(await app.reload(['tls'])).toEqual({ ok: true, failures: [] });
  });

  it('reports not ready once the CRL in force passes its nextUpdate, and ready again after a current one is loaded', async () => {
    const nextUpdate = new Date(Date.now() + 3000);
    replaceFile(crlFile, pki.crlRevoking(['revoked'], 2000, { nextUpdate }));
    expect(await app.reload(['tls'])).toEqual({ ok: true, failures: [] });
    expect((await adminGet(app.admin!.port, '/readyz')).status).toBe(200);
    const expiry = metricSum((await app.metrics.render()).body, 'nems_gateway_certificate_expiry_remaining_seconds', { certificate: 'crl_next_update' });
    expect(expiry).toBeGreaterThan(0);
    expect(expiry).toBeLessThanOrEqual(3);

    await eventually(async () => (await adminGet(app.admin!.port, '/readyz')).status === 503, 'readiness to fail after nextUpdate', 10_000, 100);
    const ready = JSON.parse((await adminGet(app.admin!.port, '/readyz')).text);
    expect(ready.checks.revocation.ok).toBe(false);
    expect(ready.checks.revocation.reason).toMatch(/^stale: the CRL of CN=NEMS Gateway Development CA, C=GB \(server\.tls\.crl\) passed its nextUpdate/);
    // OpenSSL itself refuses every client of that CA now (fail closed), which is why readiness fails.
    expect((await handshake(pki, port, 'gp-system')).ok).toBe(false);
    // A reload cannot put the same stale CRL back in force.
    const refused = await app.reload(['tls']);
    expect(refused.failures[0]).toMatch(/expired/);

    replaceFile(crlFile, goodCrl());
    expect(await app.reload(['tls'])).toEqual({ ok: true, failures: [] });
    expect((await adminGet(app.admin!.port, '/readyz')).status).toBe(200);
    expect((await handshake(pki, port, 'gp-system')).ok).toBe(true);
  });
});
