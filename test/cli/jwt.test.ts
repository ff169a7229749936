// `nems-gateway jwt` (issue 3 point 6): an unsigned Spine JWT the gateway's own jwt stage accepts.
import { describe, expect, it } from 'vitest';
import { mintSpineJwt, runJwtCommand } from '../../src/cli/jwt.js';

function decode(token: string): { header: unknown; payload: Record<string, unknown>; signature: string } {
  const [header, payload, signature] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header!, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>,
    signature: signature!,
  };
}

function capture(argv: string[]) {
  let out = '';
  let err = '';
  const code = runJwtCommand(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('mintSpineJwt', () => {
  it('produces {"alg":"none","typ":"JWT"}, the Spine claims and an empty signature with the trailing dot', () => {
    const token = mintSpineJwt({ asid: '200000000101', ods: 'A83627', scope: 'patient/Subscription.write', now: 1_700_000_000_500 });
    expect(token.endsWith('.')).toBe(true);
    expect(token.split('.')).toHaveLength(3);
    expect(token).not.toMatch(/=/);
    const { header, payload, signature } = decode(token);
    expect(header).toEqual({ alg: 'none', typ: 'JWT' });
    expect(signature).toBe('');
    expect(payload).toMatchObject({
      sub: 'https://fhir.nhs.uk/Id/accredited-system|200000000101',
      requesting_system: 'https://fhir.nhs.uk/Id/accredited-system|200000000101',
      requesting_organisation: 'https://fhir.nhs.uk/Id/ods-organization-code|A83627',
      scope: 'patient/Subscription.write',
      reason_for_request: 'directcare',
      iat: 1_700_000_000,
      exp: 1_700_000_300,
    });
    expect(typeof payload['iss']).toBe('string');
    expect(typeof payload['aud']).toBe('string');
    expect(payload['requesting_patient']).toBeUndefined();
  });

  it('sets sub to requesting_user when a user is given, and prefixes bare ids and NHS numbers', () => {
    const { payload } = decode(mintSpineJwt({ asid: '200000000101', ods: 'A83627', scope: 's', user: '4387293874928', patient: '9434765919', lifetimeSeconds: 60, now: 0 }));
    expect(payload['requesting_user']).toBe('https://fhir.nhs.uk/Id/sds-role-profile-id|4387293874928');
    expect(payload['sub']).toBe(payload['requesting_user']);
    expect(payload['requesting_patient']).toBe('http://fhir.nhs.net/Id/nhs-number|9434765919');
    expect(payload['exp']).toBe(60);
  });

  it('writes the US or both organisation spellings on request', () => {
    const us = decode(mintSpineJwt({ asid: '200000000101', ods: 'A83627', scope: 's', organisationClaim: 'requesting_organization' })).payload;
    expect(us['requesting_organisation']).toBeUndefined();
    expect(us['requesting_organization']).toBe('https://fhir.nhs.uk/Id/ods-organization-code|A83627');
    const both = decode(mintSpineJwt({ asid: '200000000101', ods: 'A83627', scope: 's', organisationClaim: 'both' })).payload;
    expect(both['requesting_organisation']).toBe(both['requesting_organization']);
  });
});

describe('runJwtCommand', () => {
  it('prints one token and exits 0', () => {
    const { code, out, err } = capture(['--asid', '200000000102', '--ods', 'RX3EP', '--scope', 'patient/Bundle.write', '--patient', '9434765919', '--user', '123', '--lifetime', '120', '--aud=https://nems.example.nhs.uk']);
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out.endsWith('.\n')).toBe(true);
    const { payload } = decode(out.trim());
    expect(payload).toMatchObject({ aud: 'https://nems.example.nhs.uk', scope: 'patient/Bundle.write' });
    expect((payload['exp'] as number) - (payload['iat'] as number)).toBe(120);
  });

  it('prints usage and exits 0 for --help', () => {
    const { code, out } = capture(['--help']);
    expect(code).toBe(0);
    expect(out).toMatch(/usage: nems-gateway jwt/);
  });

  it.each([
    [[], 'required'],
    [['--asid', '200000000102', '--ods', 'RX3EP'], 'required'],
    [['--asid', '2000', '--ods', 'RX3EP', '--scope', 's'], '12-digit'],
    [['--asid', '200000000102', '--ods', 'RX3-EP', '--scope', 's'], 'ODS'],
    [['--asid', '200000000102', '--ods', 'RX3EP', '--scope', 's', '--lifetime', '-5'], 'lifetime'],
    [['--asid', '200000000102', '--ods', 'RX3EP', '--scope', 's', '--aud', 'not a url'], 'URL'],
    [['--asid', '200000000102', '--ods', 'RX3EP', '--scope', 's', '--bogus', 'x'], 'unknown'],
    [['--asid', '200000000102', '--ods', 'RX3EP', '--scope'], 'needs a value'],
    [['--asid', '200000000102', '--asid', '200000000101', '--ods', 'RX3EP', '--scope', 's'], 'twice'],
  ])('exits 2 with a usage error for %j', (argv, message) => {
    const { code, out, err } = capture(argv);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(new RegExp(message));
  });
});
