// Report mode through the real lifecycle (issue 12 point 3): the two real clients' shapes under each profile and
// mode, the order strict meets their rules in, and the checks a reported rule lets past: each later check still
// holds (security rules refuse) and reads only what it can rely on.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintSpineJwt } from '../../src/cli/jwt.js';
import { openPdsLookup, type PdsHandle } from '../../src/pds/index.js';
import { EXPLICIT_SUBSCRIPTION, explicitCriteria, subscriptionXml } from '../helpers/bodies.js';
import { cohortManagerCreate, COHORT_MANAGER_RULES, prmCreate, PRM_RULES, type ClientRequest } from '../helpers/client-shapes.js';
import { GP_SYSTEM_ASID, GP_SYSTEM_ODS, CHILD_HEALTH_ODS } from '../helpers/endpoints.js';
import { forwardedHeader, inject, policyConfig, summary, testLifecycle, type InjectRequest } from '../helpers/inject.js';
import { decodePayload, encodeJwt } from '../pipeline/policy-cases.js';

const SHIPPED_PDS = join(dirname(fileURLToPath(import.meta.url)), '../../config/pds-local.yaml');
const NOW = Date.UTC(2025, 5, 1, 12);

let pds: PdsHandle;
beforeAll(async () => {
  pds = await openPdsLookup(policyConfig({}, { pds: { kind: 'local', local: { path: SHIPPED_PDS } } }));
});
afterAll(() => pds.lookup.close());

const lifecycle = (policy: Record<string, unknown>) =>
  testLifecycle(policyConfig({}, { policy, pds: { kind: 'local', local: { path: SHIPPED_PDS } } }), { pds: pds.lookup, now: () => NOW });

const asRequest = (shape: ClientRequest): InjectRequest => ({ endpoint: shape.endpoint, method: shape.method, target: shape.path, headers: shape.headers, body: shape.body });

describe('the real clients under each profile and mode', () => {
  for (const [name, build, rules] of [['Cohort Manager', cohortManagerCreate, COHORT_MANAGER_RULES], ['PRM script', prmCreate, PRM_RULES]] as const) {
    it(`${name}: compatible forwards it unchanged and reports ${rules.compatible.join(', ')}`, async () => {
      const shape = build(NOW);
      const decision = await inject(lifecycle({ profile: 'compatible' }), asRequest(shape));
      expect(summary(decision, true)).toBe('pass');
      if (decision.action !== 'forward') return;
      expect(decision.ctx.reported).toEqual([...rules.compatible]);
      expect(decision.body?.equals(shape.body)).toBe(true);
      for (const header of ['toASID', 'Authorization', 'fromASID']) {
        expect(forwardedHeader(decision, header)).toBe(shape.headers.find(([n]) => n === header)![1]);
      }
    });

    it(`${name}: strict with mode report forwards it and reports every rule the guide to the letter faults`, async () => {
      const decision = await inject(lifecycle({ profile: 'strict', mode: 'report' }), asRequest(build(NOW)));
      expect(decision.action).toBe('forward');
      expect(decision.ctx?.reported).toEqual([...rules.strict]);
    });

    it(`${name}: strict refuses it with the first rule it breaks, and with that rule reported, the next one`, async () => {
      const first = await inject(lifecycle({ profile: 'strict' }), asRequest(build(NOW)));
      expect(first.action === 'reject' && [first.rule, first.status, first.code]).toEqual([rules.strict[0], 403, 'ASID_CHECK_FAILED']);
      const next = await inject(lifecycle({ profile: 'strict', rules: { [rules.strict[0]]: 'report' } }), asRequest(build(NOW)));
      expect(next.action === 'reject' && [next.rule, next.status, next.code]).toEqual([rules.strict[1], 400, 'MISSING_OR_INVALID_HEADER']);
      expect(next.ctx?.reported).toEqual([rules.strict[0]]);
    });

    it(`${name}: with every rule it breaks set off, nothing is reported`, async () => {
      const off = Object.fromEntries(rules.strict.map((id) => [id, 'off']));
      const decision = await inject(lifecycle({ profile: 'strict', rules: off }), asRequest(build(NOW)));
      expect(decision.action).toBe('forward');
      expect(decision.ctx?.reported).toBeUndefined();
    });
  }
});

// A GP create, token and headers as the policy table builds them, with edits.
const token = (edit: Record<string, unknown> = {}) => {
  const payload = decodePayload(mintSpineJwt({ asid: GP_SYSTEM_ASID, ods: GP_SYSTEM_ODS, scope: 'patient/Subscription.write', now: NOW }));
  for (const [claim, value] of Object.entries(edit)) {
    if (value === undefined) delete payload[claim];
    else payload[claim] = value;
  }
  return encodeJwt({ alg: 'none', typ: 'JWT' }, payload);
};
const create = (o: { body?: string; token?: string; scheme?: string; toAsid?: string; accept?: string } = {}): InjectRequest => ({
  endpoint: 'gp-system',
  method: 'POST',
  target: '/STU3/Subscription',
  headers: [
    ['fromASID', GP_SYSTEM_ASID], ['toASID', o.toAsid ?? '200000000306'],
    ['InteractionID', 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost'],
    ['Authorization', `${o.scheme ?? 'Bearer'} ${o.token ?? token()}`],
    ['Content-Type', 'application/fhir+xml'],
    ...(o.accept ? [['Accept', o.accept] as [string, string]] : []),
  ],
  body: Buffer.from(o.body ?? subscriptionXml(EXPLICIT_SUBSCRIPTION)),
});
const REPORT_ALL = { profile: 'strict', mode: 'report' };

describe('what a reported rule lets past, and what still holds', () => {
  it('a reported lower-case bearer scheme: the token after it is still read and checked', async () => {
    expect(summary(await inject(lifecycle(REPORT_ALL), create({ scheme: 'bearer' })))).toBe('pass');
    const broken = await inject(lifecycle(REPORT_ALL), create({ scheme: 'bearer', token: 'not-a-jwt' }));
    expect(broken.action === 'reject' && broken.rule).toBe('jwt.structure');
  });

  it('a reported toASID: the ASID registration for the interaction still refuses', async () => {
    const publishOnGp = { ...create({ toAsid: '111111111111' }), target: '/STU3/Events/1/$process-message' };
    const headers = publishOnGp.headers!.map(([n, v]) => (n === 'InteractionID' ? ['InteractionID', 'urn:nhs:names:services:events:Vaccinations.Write'] as const : [n, v] as const));
    const decision = await inject(lifecycle(REPORT_ALL), { ...publishOnGp, headers });
    expect(decision.action === 'reject' && decision.rule).toBe('headers.asid-interaction');
    expect(decision.ctx?.reported).toEqual(['headers.to-asid']);
  });

  it('a reported one-hour token: an expired one is still refused, and iat after exp too', async () => {
    const seconds = Math.floor(NOW / 1000);
    const expired = await inject(lifecycle(REPORT_ALL), create({ token: token({ iat: seconds - 7200, exp: seconds - 3600 }) }));
    expect(expired.action === 'reject' && expired.rule).toBe('jwt.exp');
    const hour = await inject(lifecycle(REPORT_ALL), create({ token: token({ iat: seconds, exp: seconds + 3600 }) }));
    expect(hour.action === 'forward' && hour.ctx.reported).toEqual(['jwt.max-lifetime']);
  });

  it('a reported missing organisation claim: a present one naming another ODS code is still refused', async () => {
    const missing = await inject(lifecycle(REPORT_ALL), create({ token: token({ requesting_organisation: undefined }) }));
    expect(missing.action === 'forward' && missing.ctx.claims?.requestingOrganisationOds).toBeUndefined();
    const foreign = await inject(lifecycle(REPORT_ALL), create({ token: token({ requesting_organisation: `https://fhir.nhs.uk/Id/ods-organization-code|${CHILD_HEALTH_ODS}` }) }));
    expect(foreign.action === 'reject' && foreign.rule).toBe('jwt.organisation-ods');
  });

  it('a reported meta.lastUpdated: a contact of another organisation is still refused', async () => {
    const body = subscriptionXml({
      ...EXPLICIT_SUBSCRIPTION,
      metaLastUpdated: '2025-06-01T11:00:00+00:00',
      contacts: [{ system: 'url', value: `https://directory.spineservices.nhs.uk/STU3/Organization/${CHILD_HEALTH_ODS}`, use: 'work' }],
    });
    const decision = await inject(lifecycle(REPORT_ALL), create({ body }));
    expect(decision.action === 'reject' && decision.rule).toBe('subscription.contact-ods');
    expect(decision.ctx?.reported).toEqual(['subscription.meta-supplied']);
  });

  it('a reported criteria NHS-number system: the number is still traced (not on PDS → refused)', async () => {
    const criteria = explicitCriteria('9111231130').replace('http://fhir.nhs.net/Id/nhs-number', 'https://fhir.nhs.uk/Id/nhs-number');
    const decision = await inject(lifecycle(REPORT_ALL), create({ body: subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria }) }));
    expect(decision.action === 'reject' && [decision.rule, decision.code]).toEqual(['pds.traced', 'PATIENT_NOT_FOUND']);
    expect(decision.ctx?.reported).toEqual(['criteria.nhs-number-system']);
  });

  it('a reported Accept the route cannot satisfy: the client\'s own Accept goes upstream unchanged', async () => {
    const decision = await inject(lifecycle(REPORT_ALL), create({ accept: 'text/html' }));
    expect(decision.action === 'forward' && forwardedHeader(decision, 'accept')).toBe('text/html');
    expect(decision.ctx?.reported).toEqual(['mime.accept']);
  });
});
