// The jwt stage beyond the policy table: signed tokens (local PEM keys and JWKS), the never-fall-back rule, and
// each configurable claim rule (docs/specification.md §4, §9.4, §9.19).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintSpineJwt, type MintSpineJwtOptions } from '../../src/cli/jwt.js';
import { createJwtStage, DecodedTokenCache } from '../../src/pipeline/stages/jwt.js';
import type { NemsOperation } from '../../src/nems/operations.js';
import { CHILD_HEALTH_ASID, CHILD_HEALTH_ODS, EXAMPLE_IDENTITIES, FIXTURE_NHS_NUMBER, type ExampleEndpointName } from '../helpers/endpoints.js';
import { createHeadersStage } from '../../src/pipeline/stages/headers.js';
import { createRouteStage } from '../../src/pipeline/stages/route.js';
import { contextFor, inject, policyConfig, summary, testLifecycle } from '../helpers/inject.js';
import { policyRequest } from '../helpers/policy-bodies.js';
import { decodePayload, encodeJwt, POLICY_NOW, type PolicyCase } from './policy-cases.js';

const OPS: Readonly<Record<NemsOperation, { method: string; path: string; interactionId: string; scope: string }>> = {
  create: { method: 'POST', path: '/STU3/Subscription', interactionId: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost', scope: 'patient/Subscription.write' },
  read: { method: 'GET', path: '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c', interactionId: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiGet', scope: 'patient/Subscription.read' },
  delete: { method: 'DELETE', path: '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c', interactionId: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiDelete', scope: 'patient/Subscription.write' },
  publish: { method: 'POST', path: '/STU3/Events/1/$process-message', interactionId: 'urn:nhs:names:services:events:Vaccinations.Write', scope: 'patient/Bundle.write' },
};

/** A request that passes every rule but the token's: create and publish carry the example bodies. */
function requestWith(token: string, op: NemsOperation = 'read', endpoint: ExampleEndpointName = 'child-health') {
  const c: PolicyCase = {
    name: 'jwt unit',
    endpoint,
    method: OPS[op].method,
    path: OPS[op].path,
    headers: [
      ['fromASID', EXAMPLE_IDENTITIES[endpoint].asid],
      ['toASID', '200000000306'],
      ['InteractionID', OPS[op].interactionId],
      ['Authorization', `Bearer ${token}`],
      ...(op === 'create' || op === 'publish' ? ([['Content-Type', 'application/fhir+xml']] as const) : []),
    ],
    ...(op === 'create' ? { body: { kind: 'subscription', format: 'xml' } as const } : {}),
    ...(op === 'publish' ? { body: { kind: 'event', eventCode: 'vaccinations-1' } as const } : {}),
    expect: 'pass',
  };
  return policyRequest(c);
}

function unsigned(op: NemsOperation = 'read', extra: Partial<MintSpineJwtOptions> = {}): string {
  return mintSpineJwt({ asid: CHILD_HEALTH_ASID, ods: CHILD_HEALTH_ODS, scope: OPS[op].scope, now: POLICY_NOW, ...extra });
}

function claimsFor(op: NemsOperation = 'read', extra: Partial<MintSpineJwtOptions> = {}): JWTPayload {
  return decodePayload(unsigned(op, extra)) as JWTPayload;
}

/** One request through the real lifecycle (every stage; the PDS double traces every number). */
async function run(config: ReturnType<typeof policyConfig>, token: string, op: NemsOperation = 'read', endpoint: ExampleEndpointName = 'child-health') {
  const decision = await inject(testLifecycle(config, { now: () => POLICY_NOW }), requestWith(token, op, endpoint));
  return { decision, ctx: decision.ctx!, summary: summary(decision), diagnostics: decision.action === 'reject' ? decision.diagnostics : undefined };
}

let dir: string;
let rsaPrivate: CryptoKey;
let otherRsaPrivate: CryptoKey;
let ecPrivate: CryptoKey;
let rsaKeyPath: string;
let ecKeyPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nems-jwt-'));
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const other = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  rsaPrivate = rsa.privateKey;
  otherRsaPrivate = other.privateKey;
  ecPrivate = ec.privateKey;
  rsaKeyPath = join(dir, 'rsa.pem');
  ecKeyPath = join(dir, 'ec.pem');
  writeFileSync(rsaKeyPath, await exportSPKI(rsa.publicKey));
  writeFileSync(ecKeyPath, await exportSPKI(ec.publicKey));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function signedConfig(extra: Record<string, unknown> = {}, signed: Record<string, unknown> = {}) {
  return policyConfig({
    jwt: {
      signed: { enabled: true, keys: [{ path: rsaKeyPath, alg: 'RS256', kid: 'rsa-1' }, { path: ecKeyPath, alg: 'ES256' }], ...signed },
      ...extra,
    },
  });
}

function sign(payload: JWTPayload, key: CryptoKey, header: { alg: string; kid?: string } = { alg: 'RS256', kid: 'rsa-1' }): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ ...header, typ: 'JWT' }).sign(key);
}

describe('jwt stage: signed Spine tokens (nems.jwt.signed)', () => {
  it('accepts an RS256 token signed by a configured key (kid matched) and records it as signed', async () => {
    const { summary, ctx } = await run(signedConfig(), await sign(claimsFor(), rsaPrivate));
    expect(summary).toBe('pass');
    expect(ctx.claims?.signed).toBe(true);
    expect(ctx.audit['jwtSigned']).toBe(true);
  });

  it('accepts an ES256 token without kid, matched by alg', async () => {
    expect((await run(signedConfig(), await sign(claimsFor(), ecPrivate, { alg: 'ES256' }))).summary).toBe('pass');
  });

  it('rejects a token signed by another key with 400 MISSING_OR_INVALID_HEADER and never falls back to unsigned', async () => {
    const { diagnostics, summary } = await run(signedConfig(), await sign(claimsFor(), otherRsaPrivate));
    expect(summary).toBe('400 MISSING_OR_INVALID_HEADER');
    expect(diagnostics).toMatch(/signature/);
  });

  it('rejects a signed header with the signature stripped (400) although the route takes unsigned tokens', async () => {
    const token = await sign(claimsFor(), rsaPrivate);
    const stripped = `${token.slice(0, token.lastIndexOf('.'))}.`;
    expect((await run(signedConfig(), stripped)).summary).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('rejects an RS256 token whose kid names no configured key (400)', async () => {
    expect((await run(signedConfig(), await sign(claimsFor(), rsaPrivate, { alg: 'RS256', kid: 'unknown' }))).summary).toBe(
      '400 MISSING_OR_INVALID_HEADER',
    );
  });

  it('rejects an alg outside signed.algorithms even with a key for it (400)', async () => {
    const config = signedConfig({}, { algorithms: ['ES256'] });
    expect((await run(config, await sign(claimsFor(), rsaPrivate))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('rejects HS256 even when an operator lists it in signed.algorithms (400)', async () => {
    const config = signedConfig({}, { algorithms: ['HS256', 'RS256'] });
    const token = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32).fill(7));
    expect((await run(config, token)).summary).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('applies the same claim rules to signed tokens (an expired signed token is 400)', async () => {
    const expired = claimsFor('read', { now: POLICY_NOW - 600_000 });
    expect((await run(signedConfig(), await sign(expired, rsaPrivate))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
    const wrongScope = claimsFor('publish');
    expect((await run(signedConfig(), await sign(wrongScope, rsaPrivate))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('checks iss against signed.issuers for signed tokens', async () => {
    const config = signedConfig({}, { issuers: ['https://issuer.example.nhs.uk'] });
    expect((await run(config, await sign(claimsFor(), rsaPrivate))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
    const good = { ...claimsFor(), iss: 'https://issuer.example.nhs.uk' };
    expect((await run(config, await sign(good, rsaPrivate))).summary).toBe('pass');
  });

  it('still takes alg none on operations listed in unsignedOperations', async () => {
    expect((await run(signedConfig(), unsigned())).summary).toBe('pass');
  });

  it('refuses alg none on an operation not in unsignedOperations (400) and takes a signed token there', async () => {
    const config = signedConfig({ unsignedOperations: ['create', 'read', 'delete'] });
    expect((await run(config, unsigned('publish'), 'publish')).summary).toBe('400 MISSING_OR_INVALID_HEADER');
    expect((await run(config, await sign(claimsFor('publish'), rsaPrivate), 'publish')).summary).toBe('pass');
  });

  it('refuses to start with a key file that is not PEM, naming the key but not its content', () => {
    const bad = join(dir, 'bad.pem');
    writeFileSync(bad, 'not a key');
    const config = policyConfig({ jwt: { signed: { enabled: true, keys: [{ path: bad, alg: 'RS256' }] } } });
    expect(() => createJwtStage(config)).toThrow(/nems\.jwt\.signed\.keys\[0\]/);
  });
});

describe('jwt stage: signed tokens from a JWKS URL', () => {
  let server: Server;
  let status = 200;
  let jwks: unknown;
  let url: string;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('verifies a token against the JWKS and rejects one from another key (400)', async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'jwks-1', alg: 'RS256', use: 'sig' }] };
    status = 200;
    const config = policyConfig({ jwt: { signed: { enabled: true, jwksUrl: url } } });
    const lifecycle = testLifecycle(config, { now: () => POLICY_NOW });
    const good = await sign(claimsFor(), pair.privateKey, { alg: 'RS256', kid: 'jwks-1' });
    expect((await inject(lifecycle, requestWith(good))).action).toBe('forward');
    const bad = await sign(claimsFor(), otherRsaPrivate, { alg: 'RS256', kid: 'jwks-1' });
    expect(summary(await inject(lifecycle, requestWith(bad)))).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('fails closed with 503 SERVICE_UNAVAILABLE when the JWKS cannot be fetched', async () => {
    status = 500;
    jwks = { error: 'down' };
    const config = policyConfig({ jwt: { signed: { enabled: true, jwksUrl: url } } });
    const token = await sign(claimsFor(), rsaPrivate, { alg: 'RS256', kid: 'jwks-1' });
    const { summary } = await run(config, token);
    expect(summary).toBe('503 SERVICE_UNAVAILABLE');
  });
});

describe('jwt stage: configurable claim rules', () => {
  it('organisationClaim requesting_organisation refuses the US spelling alone (400, names requesting_organisation)', async () => {
    const config = policyConfig({ jwt: { organisationClaim: 'requesting_organisation' } });
    const { diagnostics } = await run(config, unsigned('read', { organisationClaim: 'requesting_organization' }));
    expect(diagnostics).toMatch(/requesting_organisation is missing/);
    expect((await run(config, unsigned())).summary).toBe('pass');
  });

  it('organisationClaim requesting_organization refuses the British spelling alone (400)', async () => {
    const config = policyConfig({ jwt: { organisationClaim: 'requesting_organization' } });
    const { diagnostics } = await run(config, unsigned());
    expect(diagnostics).toMatch(/requesting_organization is missing/);
    expect((await run(config, unsigned('read', { organisationClaim: 'requesting_organization' }))).summary).toBe('pass');
  });

  it('requireReasonForRequest false lets the claim be absent but still checks it when present', async () => {
    const config = policyConfig({ jwt: { requireReasonForRequest: false } });
    const payload = claimsFor();
    delete payload['reason_for_request'];
    expect((await run(config, encodeJwt({ alg: 'none', typ: 'JWT' }, payload))).summary).toBe('pass');
    expect((await run(config, unsigned('read', { reasonForRequest: 'secondaryuses' }))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('allowedReasonsForRequest can admit secondaryuses (the PRM client)', async () => {
    const config = policyConfig({ jwt: { allowedReasonsForRequest: ['directcare', 'secondaryuses'] } });
    expect((await run(config, unsigned('read', { reasonForRequest: 'secondaryuses' }))).summary).toBe('pass');
  });

  it('audiences, when configured, must contain aud (400 naming aud)', async () => {
    const config = policyConfig({ jwt: { audiences: ['https://nems-gateway.example.nhs.uk'] } });
    const { diagnostics } = await run(config, unsigned());
    expect(diagnostics).toMatch(/claim aud/);
    expect((await run(config, unsigned('read', { audience: 'https://nems-gateway.example.nhs.uk' }))).summary).toBe('pass');
  });

  it('clockSkewSeconds and maxLifetimeSeconds are honoured', async () => {
    const strict = policyConfig({ jwt: { clockSkewSeconds: 0 } });
    expect((await run(strict, unsigned('read', { now: POLICY_NOW - 301_000 }))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
    expect((await run(strict, unsigned('read', { now: POLICY_NOW + 1_000 }))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
    const long = policyConfig({ jwt: { maxLifetimeSeconds: 600 } });
    expect((await run(long, unsigned('read', { lifetimeSeconds: 600 }))).summary).toBe('pass');
    expect((await run(long, unsigned('read', { lifetimeSeconds: 601 }))).summary).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('maxTokenBytes caps the raw token before decoding (400)', async () => {
    const token = unsigned();
    expect(token.length).toBeGreaterThan(256);
    const { diagnostics } = await run(policyConfig({ jwt: { maxTokenBytes: 256 } }), token);
    expect(diagnostics).toMatch(/maximum size/);
  });

  it('rejectRepeatedDigitNhsNumbers false admits 0000000000 in requesting_patient', async () => {
    const config = policyConfig({ rejectRepeatedDigitNhsNumbers: false });
    expect((await run(config, unsigned('read', { patient: '0000000000' }))).summary).toBe('pass');
  });
});

describe('jwt stage: what it records', () => {
  it('sets ctx.claims and queues requesting_patient for the PDS trace', async () => {
    const { summary, ctx } = await run(policyConfig(), unsigned('read', { patient: FIXTURE_NHS_NUMBER, user: '4387293874928' }));
    expect(summary).toBe('pass');
    expect(ctx.claims).toMatchObject({
      requestingSystemAsid: CHILD_HEALTH_ASID,
      requestingOrganisationOds: CHILD_HEALTH_ODS,
      requestingUser: 'https://fhir.nhs.uk/Id/sds-role-profile-id|4387293874928',
      requestingPatientNhsNumber: FIXTURE_NHS_NUMBER,
      scope: 'patient/Subscription.read',
      signed: false,
    });
    expect(ctx.claims!.exp - ctx.claims!.iat).toBe(300);
    expect(ctx.nhsNumbers).toEqual([{ value: FIXTURE_NHS_NUMBER, source: 'jwt-requesting-patient', element: 'Authorization JWT requesting_patient' }]);
    expect(JSON.stringify(ctx.audit)).not.toContain(FIXTURE_NHS_NUMBER);
  });

  it('never puts the NHS number or the token in diagnostics', async () => {
    const token = unsigned('read', { patient: '6101231234' });
    const { decision } = await run(policyConfig(), token);
    expect(decision.action).toBe('reject');
    if (decision.action === 'reject') {
      expect(decision.code).toBe('INVALID_NHS_NUMBER');
      expect(decision.diagnostics).not.toContain('6101231234');
      expect(decision.diagnostics).not.toContain(token.split('.')[1]!.slice(0, 20));
    }
  });

  it('answers an unsigned token synchronously (no promise on the hot path)', () => {
    const ctx = contextFor(requestWith(unsigned()), POLICY_NOW);
    const config = policyConfig();
    expect(createRouteStage(config).run(ctx)).toEqual({ ok: true });
    expect(createHeadersStage(config).run(ctx)).toEqual({ ok: true });
    expect(createJwtStage(config).run(ctx)).toEqual({ ok: true });
  });

  it('refuses to run before the headers stage (500 INTERNAL_SERVER_ERROR)', async () => {
    const ctx = contextFor(requestWith(unsigned(), 'read', 'gp-system'), POLICY_NOW);
    const result = await createJwtStage(policyConfig()).run(ctx);
    expect(result.ok ? 'pass' : result.rejection.code).toBe('INTERNAL_SERVER_ERROR');
  });
});

describe('jwt stage: decoded-token cache (nems.jwt.decodedTokenCacheSize)', () => {
  /** One lifecycle (so one set of stages, one cache) used for several requests at given times. */
  function session(config = policyConfig()) {
    let clock = POLICY_NOW;
    const lifecycle = testLifecycle(config, { now: () => clock });
    return async (token: string, at: number, op: NemsOperation = 'read') => {
      clock = at;
      const decision = await inject(lifecycle, requestWith(token, op));
      return { ctx: decision.ctx!, summary: summary(decision, true) };
    };
  }

  it('answers a reused token exactly as a fresh decode does, including the claims it records', async () => {
    const send = session();
    const token = unsigned('read', { patient: FIXTURE_NHS_NUMBER });
    const first = await send(token, POLICY_NOW);
    const second = await send(token, POLICY_NOW + 1_000);
    expect(first.summary).toBe('pass');
    expect(second.summary).toBe('pass');
    expect(second.ctx.claims).toEqual(first.ctx.claims);
    expect(second.ctx.nhsNumbers).toEqual(first.ctx.nhsNumbers);
  });

  it('re-checks expiry on every use: a cached token past exp + skew is refused as jose refuses it', async () => {
    const send = session();
    const token = unsigned('read');
    expect((await send(token, POLICY_NOW)).summary).toBe('pass');
    // Minted at POLICY_NOW with a 300 s lifetime and 60 s skew: valid until exp + 60 s.
    expect((await send(token, POLICY_NOW + 359_000)).summary).toBe('pass');
    const late = await send(token, POLICY_NOW + 360_000);
    const fresh = await session()(token, POLICY_NOW + 360_000);
    expect(late.summary).toBe('400 MISSING_OR_INVALID_HEADER The JWT claim exp shows the token has expired');
    expect(late.summary).toBe(fresh.summary);
  });

  it('re-checks nbf on every use', async () => {
    const cache = new DecodedTokenCache(10);
    const nowSeconds = Math.floor(POLICY_NOW / 1000);
    cache.set('t', { exp: nowSeconds + 300, nbf: nowSeconds + 100 });
    expect(cache.get('t', POLICY_NOW, 60)).toBeUndefined();
    expect(cache.size).toBe(0);
    cache.set('t', { exp: nowSeconds + 300, nbf: nowSeconds + 30 });
    expect(cache.get('t', POLICY_NOW, 60)).toMatchObject({ nbf: nowSeconds + 30 });
  });

  it('still applies the per-operation rules to a cached token (unsignedOperations, scope)', async () => {
    const send = session(policyConfig({ jwt: { unsignedOperations: ['read'] } }));
    const token = unsigned('read');
    expect((await send(token, POLICY_NOW)).summary).toBe('pass');
    expect((await send(token, POLICY_NOW, 'delete')).summary).toBe('400 MISSING_OR_INVALID_HEADER The JWT must be signed for this operation');
    const both = session();
    expect((await both(token, POLICY_NOW)).summary).toBe('pass');
    expect((await both(token, POLICY_NOW, 'delete')).summary).toMatch(/^400 MISSING_OR_INVALID_HEADER The JWT claim scope must be exactly/);
  });

  it('keeps only tokens with exp, not over MAX_TOKEN_LENGTH, up to its capacity, and nothing when the size is 0', () => {
    const cache = new DecodedTokenCache(2);
    const exp = Math.floor(POLICY_NOW / 1000) + 300;
    cache.set('a', { exp });
    cache.set('b', { exp });
    cache.set('c', { exp });
    expect(cache.size).toBe(2);
    expect(cache.get('a', POLICY_NOW, 0)).toBeUndefined();
    expect(cache.get('c', POLICY_NOW, 0)).toEqual({ exp });
    cache.set('no-exp', {});
    expect(cache.get('no-exp', POLICY_NOW, 0)).toBeUndefined();
    cache.set('x'.repeat(DecodedTokenCache.MAX_TOKEN_LENGTH + 1), { exp });
    expect(cache.get('x'.repeat(DecodedTokenCache.MAX_TOKEN_LENGTH + 1), POLICY_NOW, 0)).toBeUndefined();
    const off = new DecodedTokenCache(0);
    off.set('a', { exp });
    expect(off.size).toBe(0);
  });

  it('never caches a token jose refused, nor a signed one', async () => {
    const send = session();
    const expired = unsigned('read', { now: POLICY_NOW - 400_000 });
    expect((await send(expired, POLICY_NOW)).summary).toMatch(/^400 /);
    expect((await send(expired, POLICY_NOW)).summary).toMatch(/^400 /);
    // A signed token is verified every time: both uses are recorded as signed, never served as an unsigned one.
    const signedSession = session(signedConfig());
    const token = await sign(claimsFor(), rsaPrivate);
    for (let i = 0; i < 2; i++) {
      const { ctx, summary } = await signedSession(token, POLICY_NOW);
      expect(summary).toBe('pass');
      expect(ctx.claims?.signed).toBe(true);
    }
  });
});
