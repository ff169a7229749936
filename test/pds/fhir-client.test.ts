// PdsFhirClient against a real loopback HTTP server playing PDS and the NHS API platform token endpoint.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { PdsFhirClient, type PdsFhirConfig } from '../../src/pds/fhir-client.js';
import { createPdsLookup } from '../../src/pds/index.js';
import { PdsUnavailableError } from '../../src/pds/types.js';
import { API_KEY, json, KID, operationOutcome, patient, startFakePds, type FakePds } from './fake-pds-server.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TIMEOUT_MS = 400;

let keys: { privateKey: KeyObject; publicKey: KeyObject };
let privatePem: string;
beforeAll(() => {
  keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  privatePem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
});

let pds: FakePds;
const clients: PdsFhirClient[] = [];
beforeEach(async () => {
  pds = await startFakePds(keys.publicKey);
  scenarios(pds);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await pds.close();
});

function scenarios(fake: FakePds): void {
  const p = fake.patients;
  p.set('9000000009', (res) => json(res, 200, patient('9000000009')));
  p.set('9000000025', (res) => json(res, 200, patient('9000000025', {
    meta: { versionId: '2', security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R', display: 'restricted' }] },
    address: undefined, generalPractitioner: undefined,
  })));
  p.set('9990000018', (res) => json(res, 200, patient('9990000026')));
  p.set('9000000041', (res) => json(res, 200, patient('9000000041', {
    name: [
      { use: 'usual', family: 'Ó Briain', given: ['Siobhán', 'Mary'] },
      { use: 'old', family: 'Maiden', given: ['Siobhan'] },
      { use: 'nickname', given: ['Shiv'], period: { start: '2001-01-01', end: '2002-01-01' } },
      { use: 'usual', family: 42 },
      'not a name',
    ],
    birthDate: '1980-02',
  })));
  p.set('9990000034', (res) => json(res, 404, operationOutcome('INVALIDATED_RESOURCE')));
  p.set('9303712862', (res) => json(res, 200, patient('9303712862', {
    meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'REDACTED' }] },
  })));
  p.set('9000000017', (res) => json(res, 500, operationOutcome('SERVICE_ERROR', 'exception')));
  p.set('9733162868', (res) => json(res, 429, operationOutcome('TOO_MANY_REQUESTS', 'throttled')));
  p.set('9732110317', (res) => json(res, 408, operationOutcome('UNABLE_TO_CALL_SERVICE', 'timeout')));
  p.set('9000000033', () => undefined); // never answers
  p.set('9693632109', (res) => { res.writeHead(200, { 'content-type': 'application/fhir+json' }); res.end('{"resourceType":"Patient","id":'); });
  p.set('4010232137', (res) => { res.writeHead(200, { 'content-type': 'application/fhir+json' }); res.end(`{"resourceType":"Patient","id":"4010232137","pad":"${'x'.repeat(2 * 1024 * 1024)}"}`); });
  p.set('5900005879', (res) => {
    // Oversized without a content-length: the client must stop reading at the cap.
    res.writeHead(200, { 'content-type': 'application/fhir+json' });
    const chunk = 'x'.repeat(64 * 1024);
    let sent = 0;
    const pump = (): void => { while (sent < 40 && res.write(chunk)) sent++; if (sent < 40) res.once('drain', pump); else res.end(); };
    res.write('{"resourceType":"Patient","pad":"');
    pump();
  });
  p.set('9434765919', (res) => json(res, 200, { resourceType: 'Patient', name: [] }));
  p.set('9912003888', (res) => json(res, 400, operationOutcome('INVALID_RESOURCE_ID', 'value')));
  p.set('9000000084', (res) => json(res, 400, operationOutcome('MISSING_VALUE', 'required')));
  p.set('1234567881', (res) => json(res, 200, operationOutcome('RESOURCE_NOT_FOUND')));
  p.set('9990000026', (res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html/>'); });
}

function client(config: Partial<PdsFhirConfig> = {}, options: ConstructorParameters<typeof PdsFhirClient>[1] = {}): PdsFhirClient {
  const c = new PdsFhirClient({ baseUrl: pds.baseUrl, timeoutMs: TIMEOUT_MS, auth: { kind: 'none' }, ...config }, options);
  clients.push(c);
  return c;
}

function appRestricted(extra: Record<string, unknown> = {}): Partial<PdsFhirConfig> {
  return {
    auth: { kind: 'application-restricted', tokenUrl: pds.tokenUrl, apiKey: API_KEY, privateKeyPath: '/unused', kid: KID, tokenLifetimeSeconds: 300, ...extra },
  };
}

async function unavailableReason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(PdsUnavailableError);
    return (err as PdsUnavailableError).reason;
  }
  throw new Error('expected the lookup to fail');
}

describe('PdsFhirClient outcomes (sandbox, no auth)', () => {
  it('maps 200 Patient to traced with the GP ODS code and the home postcode', async () => {
    expect(await client().lookup('9000000009', 'req-1')).toEqual({
      result: 'traced', restricted: false, gpOdsCode: 'Y12345', postcode: 'LS1 6AE',
      demographics: { names: [{ family: 'Smith', given: ['Jane'] }], birthDate: '2010-10-22' },
    });
  });

  it('the fake PDS, as PDS, answers 400 INVALID_RESOURCE_ID for a number that fails modulus 11: invalid, never not-found', async () => {
    expect(await client().lookup('9912003880', 'r')).toEqual({ result: 'invalid' });
  });

  it('a record whose names are all old or ended carries an empty name list (nothing matches it), not no names', async () => {
    pds.patients.set('9000000068', (res) => json(res, 200, patient('9000000068', {
      name: [{ use: 'old', family: 'Maiden', given: ['Ann'] }, { use: 'usual', family: 'Smith', given: ['Ann'], period: { end: '2001-01-01' } }],
    })));
    expect(await client().lookup('9000000068', 'r')).toMatchObject({ result: 'traced', demographics: { names: [], birthDate: '2010-10-22' } });
  });

  it('a record whose names are all unreadable is not a usable answer: bad-response (503), never "no names"', async () => {
    pds.patients.set('9000000076', (res) => json(res, 200, patient('9000000076', { name: [{ use: 'usual', family: 42 }, 'not a name'] })));
    expect(await unavailableReason(client().lookup('9000000076', 'r'))).toBe('bad-response');
  });

  it('a record with no name at all leaves the name out (not compared), as the README reads it', async () => {
    pds.patients.set('9000000092', (res) => json(res, 200, patient('9000000092', { name: undefined })));
    expect(await client().lookup('9000000092', 'r')).toMatchObject({ result: 'traced', demographics: { birthDate: '2010-10-22' } });
  });

  it('keeps only current, well-formed names (no use=old, no ended period) and a FHIR birthDate', async () => {
    const outcome = await client().lookup('9000000041', 'r');
    expect(outcome).toMatchObject({ result: 'traced', demographics: { names: [{ family: 'Ó Briain', given: ['Siobhán', 'Mary'] }], birthDate: '1980-02' } });
  });

  it('sends GET /Patient/{nhsNumber} with Accept fhir+json, a UUID v4 X-Request-ID per lookup, no Authorization', async () => {
    const c = client({ endUserOrganisationOds: 'A83627' });
    await c.lookup('9000000009', 'req-1');
    await c.lookup('9000000009', 'req-2');
    const [first, second] = pds.patientRequests;
    expect(first!.accept).toBe('application/fhir+json');
    expect(first!['x-request-id']).toMatch(UUID_V4);
    expect(second!['x-request-id']).toMatch(UUID_V4);
    expect(first!['x-request-id']).not.toBe(second!['x-request-id']);
    expect(first!['x-correlation-id']).toBe('req-1');
    expect(first!['nhsd-end-user-organisation-ods']).toBe('A83627');
    expect(first!.authorization).toBeUndefined();
  });

  it('maps 200 with meta.security R to restricted', async () => {
    // PDS withholds location data for S-flag patients, but not the name and birth date the demographics check needs.
    expect(await client().lookup('9000000025', 'r')).toEqual({
      result: 'restricted', restricted: true, demographics: { names: [{ family: 'Smith', given: ['Jane'] }], birthDate: '2010-10-22' },
    });
  });

  it('maps 200 with a different Patient.id to superseded', async () => {
    expect(await client().lookup('9990000018', 'r')).toEqual({ result: 'superseded' });
  });

  it('maps 404 INVALIDATED_RESOURCE to invalidated and 404 RESOURCE_NOT_FOUND to not-found', async () => {
    const c = client();
    expect(await c.lookup('9990000034', 'r')).toEqual({ result: 'invalidated' });
    expect(await c.lookup('9111231130', 'r')).toEqual({ result: 'not-found' });
  });

  it('maps meta.security REDACTED to invalidated', async () => {
    expect(await client().lookup('9303712862', 'r')).toEqual({ result: 'invalidated' });
  });

  it('maps 400 INVALID_RESOURCE_ID ("Invalid NHS number") to invalid, but any other 400 to bad-response', async () => {
    const c = client();
    expect(await c.lookup('9912003888', 'r')).toEqual({ result: 'invalid' });
    expect(await unavailableReason(c.lookup('9000000084', 'r'))).toBe('bad-response');
  });

  it('treats a 404 that is not a PDS OperationOutcome (wrong base URL) as bad-response, never not-found', async () => {
    const c = new PdsFhirClient({ baseUrl: pds.baseUrl.replace('/R4', '/R3'), timeoutMs: TIMEOUT_MS, auth: { kind: 'none' } });
    clients.push(c);
    expect(await unavailableReason(c.lookup('9000000009', 'r'))).toBe('bad-response');
  });

  it.each([
    ['500', '9000000017', 'bad-response'],
    ['408', '9732110317', 'bad-response'],
    ['429', '9733162868', 'throttled'],
    ['a truncated JSON body', '9693632109', 'bad-response'],
    ['a 2 MB body with content-length', '4010232137', 'bad-response'],
    ['a 2.5 MB chunked body', '5900005879', 'bad-response'],
    ['a Patient without an id', '9434765919', 'bad-response'],
    ['a 200 OperationOutcome', '1234567881', 'bad-response'],
    ['a 200 text/html body', '9990000026', 'bad-response'],
  ])('fails closed on %s: PdsUnavailableError(%s → %s)', async (_what, nhsNumber, reason) => {
    expect(await unavailableReason(client().lookup(nhsNumber, 'r'))).toBe(reason);
  });

  it('gives up on a PDS that never answers within timeoutMs plus a small margin (timeout)', async () => {
    const started = Date.now();
    expect(await unavailableReason(client().lookup('9000000033', 'r'))).toBe('timeout');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 500);
  });

  it('reports a closed port as unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const c = new PdsFhirClient({ baseUrl: `http://127.0.0.1:${port}/FHIR/R4`, timeoutMs: TIMEOUT_MS, auth: { kind: 'none' } });
    clients.push(c);
    expect(await unavailableReason(c.lookup('9000000009', 'r'))).toBe('unreachable');
  });

  it('reports not ready after a failure, and ready again after a success or once the failure window has passed', async () => {
    let now = 1_000_000;
    const c = client({}, { now: () => now, readyFailureWindowMs: 30_000 });
    expect(await c.ready()).toMatchObject({ ok: true });
    await unavailableReason(c.lookup('9000000017', 'r'));
    expect(await c.ready()).toEqual({ ok: false, reason: 'PDS FHIR API: last call failed (bad-response)' });
    now += 1;
    await c.lookup('9000000009', 'r');
    expect(await c.ready()).toMatchObject({ ok: true });
    await unavailableReason(c.lookup('9000000017', 'r'));
    now += 30_000;
    expect(await c.ready()).toMatchObject({ ok: true });
  });
});

describe('PdsFhirClient application-restricted auth (signed JWT client assertion)', () => {
  it('signs an RS512 assertion with kid, iss = sub = API key, aud = token URL, jti and exp ≤ 5 min, and sends the bearer token', async () => {
    pds.requireAuth = true;
    const c = client(appRestricted(), { privateKeyPem: privatePem });
    expect((await c.lookup('9000000009', 'r')).result).toBe('traced');
    expect(pds.assertionErrors).toEqual([]);
    expect(pds.assertions).toHaveLength(1);
    const [{ header, payload }] = pds.assertions as [{ header: Record<string, unknown>; payload: Record<string, unknown> }];
    expect(header).toMatchObject({ alg: 'RS512', kid: KID, typ: 'JWT' });
    expect(payload).toMatchObject({ iss: API_KEY, sub: API_KEY, aud: pds.tokenUrl });
    expect(Number(payload.exp)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 300);
    expect(pds.patientRequests[0]!.authorization).toBe('Bearer token-1');
  });

  it('caches the token across lookups until shortly before expiry, then fetches a new one', async () => {
    pds.requireAuth = true;
    let now = Date.now();
    pds.now = () => now;
    const c = client(appRestricted(), { privateKeyPem: privatePem, now: () => now });
    for (let i = 0; i < 5; i++) await c.lookup('9000000009', `r${i}`);
    expect(pds.assertions).toHaveLength(1);
    now += 560_000; // expires_in 599 s, refreshed 30 s early
    await c.lookup('9000000009', 'r');
    expect(pds.assertions).toHaveLength(1);
    now += 10_000;
    await c.lookup('9000000009', 'r');
    expect(pds.assertions).toHaveLength(2);
    expect(pds.patientRequests.at(-1)!.authorization).toBe('Bearer token-2');
    expect(new Set(pds.assertions.map((a) => a.payload.jti)).size).toBe(2);
  });

  it('shares one token request among concurrent lookups (single-flight refresh)', async () => {
    pds.requireAuth = true;
    const c = client(appRestricted(), { privateKeyPem: privatePem });
    const numbers = ['9000000009', '9000000025', '9990000018', '9990000034', '9111231130'];
    const results = await Promise.all(numbers.map((n) => c.lookup(n, 'r')));
    expect(results.map((r) => r.result)).toEqual(['traced', 'restricted', 'superseded', 'invalidated', 'not-found']);
    expect(pds.assertions).toHaveLength(1);
  });

  it('reads a PKCS#1 private key from privateKeyPath', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pds-key-'));
    try {
      const path = join(dir, 'key.pem');
      writeFileSync(path, keys.privateKey.export({ type: 'pkcs1', format: 'pem' }));
      pds.requireAuth = true;
      const c = client(appRestricted({ privateKeyPath: path }));
      expect((await c.lookup('9000000009', 'r')).result).toBe('traced');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with a key that is not an RSA private key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => client(appRestricted(), { privateKeyPem: ec })).toThrow(/RSA/);
    expect(() => client(appRestricted(), { privateKeyPem: 'not a key' })).toThrow(/PEM/);
  });

  it('fails closed with auth when the token endpoint rejects the assertion (wrong key)', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const c = client(appRestricted(), { privateKeyPem: other });
    expect(await unavailableReason(c.lookup('9000000009', 'r'))).toBe('auth');
    expect(pds.patientRequests).toHaveLength(0);
  });

  it.each([
    ['no access_token', { expires_in: '599' }],
    ['a non-numeric expires_in', { access_token: 'abc', expires_in: 'soon' }],
    ['a token_type other than Bearer', { access_token: 'abc', expires_in: 599, token_type: 'MAC' }],
  ])('fails closed with bad-response on a token response with %s', async (_what, body) => {
    pds.tokenHandler = (res) => json(res, 200, body, 'application/json');
    const c = client(appRestricted(), { privateKeyPem: privatePem });
    expect(await unavailableReason(c.lookup('9000000009', 'r'))).toBe('bad-response');
  });

  it('drops the cached token when PDS answers 401, so the next lookup fetches a fresh one', async () => {
    pds.requireAuth = true;
    const c = client(appRestricted(), { privateKeyPem: privatePem });
    await c.lookup('9000000009', 'r');
    pds.issuedTokens.push('revoked-elsewhere'); // the fake now only honours a token it has not issued to us
    expect(await unavailableReason(c.lookup('9000000009', 'r'))).toBe('auth');
    expect((await c.lookup('9000000009', 'r')).result).toBe('traced');
    expect(pds.assertions).toHaveLength(2);
  });

  it('gives up within timeoutMs when the token endpoint never answers', async () => {
    pds.tokenHandler = () => undefined;
    const c = client(appRestricted(), { privateKeyPem: privatePem });
    const started = Date.now();
    expect(await unavailableReason(c.lookup('9000000009', 'r'))).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 500);
  });
});


describe('createPdsLookup with pds.kind fhir', () => {
  it('puts the cache in front of the FHIR client: a repeat lookup does not reach PDS', async () => {
    const config = configSchema.parse({
      server: { tls: { cert: '/c', key: '/k', ca: '/a' } }, registry: { path: '/r' },
      pds: { kind: 'fhir', fhir: { baseUrl: pds.baseUrl, timeoutMs: TIMEOUT_MS } },
    });
    const handle = createPdsLookup(config);
    try {
      expect(handle.local).toBeUndefined();
      expect((await handle.lookup.lookup('9000000009', 'r')).result).toBe('traced');
      expect((await handle.lookup.lookup('9000000009', 'r')).result).toBe('traced');
      expect(pds.patientRequests).toHaveLength(1);
      expect(await handle.lookup.ready()).toMatchObject({ ok: true });
    } finally {
      await handle.lookup.close();
    }
  });
});
