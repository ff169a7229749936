// The headers stage (docs/specification.md §1.3, §2.1): what it records, and the legacy publish InteractionID option (§9.22).
import { describe, expect, it } from 'vitest';
import { mintSpineJwt } from '../../src/cli/jwt.js';
import type { AsidRegistration, Endpoint } from '../../src/identity/types.js';
import { CHILD_HEALTH_ASID, CHILD_HEALTH_ODS, CHILD_HEALTH_REGISTRATION, GP_SYSTEM_ENDPOINT } from '../helpers/endpoints.js';
import { inject, peerOf, policyConfig, summary, testLifecycle, type InjectRequest } from '../helpers/inject.js';
import { policyRequest } from '../helpers/policy-bodies.js';
import type { PolicyCase } from './policy-cases.js';

const token = mintSpineJwt({ asid: CHILD_HEALTH_ASID, ods: CHILD_HEALTH_ODS, scope: 'patient/Bundle.write', now: 0 });

/** A publish from the child health system; the body is the example message of the event the InteractionID names. */
function publishCase(interactionId: string, eventCode = 'vaccinations-1'): InjectRequest {
  const c: PolicyCase = {
    name: 'headers unit',
    endpoint: 'child-health',
    method: 'POST',
    path: '/STU3/Events/1/$process-message',
    headers: [
      ['fromASID', CHILD_HEALTH_ASID],
      ['toASID', '200000000306'],
      ['InteractionID', interactionId],
      ['Authorization', `Bearer ${token}`],
    ],
    body: { kind: 'event', eventCode },
    expect: 'pass',
  };
  return policyRequest(c);
}

/** Through the real lifecycle (every stage; the PDS double traces every number), optionally with another registry entry. */
async function headers(request: InjectRequest, nems: Record<string, unknown> = {}, endpoint?: Endpoint) {
  const lifecycle = testLifecycle(policyConfig(nems), { now: () => 0, ...(endpoint ? { endpoints: [endpoint, GP_SYSTEM_ENDPOINT] } : {}) });
  const decision = await inject(lifecycle, endpoint ? { ...request, endpoint: peerOf(endpoint) } : request);
  return { ctx: decision.ctx!, result: summary(decision) };
}

describe('headers stage', () => {
  it('records fromASID, its registration, the InteractionID and the publish event type', async () => {
    const { ctx, result } = await headers(publishCase('urn:nhs:names:services:events:Professionalcontacts.Write', 'professional-contacts-1'));
    expect(result).toBe('pass');
    expect(ctx.fromAsid).toBe(CHILD_HEALTH_ASID);
    expect(ctx.asidRegistration).toBe(CHILD_HEALTH_REGISTRATION);
    expect(ctx.interactionId).toBe('urn:nhs:names:services:events:Professionalcontacts.Write');
    expect(ctx.publishEventType?.code).toBe('professional-contacts-1');
  });

  it.each([
    'urn:nhs:names:services:events:vaccinations-1.Write',
    'urn:nhs:names:services:events:vaccinations-1.write:1',
    'urn:nhs:names:services:events:Vaccinations.write:2',
  ])('with acceptLegacyPublishInteractionIds takes %s and records the current form', async (legacy) => {
    const { ctx, result } = await headers(publishCase(legacy), { acceptLegacyPublishInteractionIds: true });
    expect(result).toBe('pass');
    expect(ctx.interactionId).toBe('urn:nhs:names:services:events:Vaccinations.Write');
    expect(ctx.publishEventType?.code).toBe('vaccinations-1');
    expect(ctx.audit['legacyInteractionId']).toBe(true);
    expect((await headers(publishCase(legacy))).result).toBe('400 MISSING_OR_INVALID_HEADER');
  });

  it('still refuses unknown forms with legacy ids enabled (400 MISSING_OR_INVALID_HEADER)', async () => {
    for (const id of ['urn:nhs:names:services:events:pds-birth-notification-1.Write', 'urn:nhs:names:services:nemspublish:Vaccinations']) {
      expect((await headers(publishCase(id), { acceptLegacyPublishInteractionIds: true })).result).toBe('400 MISSING_OR_INVALID_HEADER');
    }
  });

  it('checks the ASID registration per InteractionID: an ASID allowed only Vaccinations cannot publish NIPE (403 ASID_CHECK_FAILED)', async () => {
    const narrow: AsidRegistration = { ...CHILD_HEALTH_REGISTRATION, interactions: ['urn:nhs:names:services:events:Vaccinations.Write'] };
    const endpoint: Endpoint = { fqdn: 'child-health.example.nhs.uk', fingerprints: [], asids: new Map([[CHILD_HEALTH_ASID, narrow]]) };
    expect((await headers(publishCase('urn:nhs:names:services:events:Vaccinations.Write'), {}, endpoint)).result).toBe('pass');
    expect((await headers(publishCase('urn:nhs:names:services:events:Nipeoutcome.Write', 'nipe-outcome-1'), {}, endpoint)).result).toBe('403 ASID_CHECK_FAILED');
  });

  it('follows nems.toAsid (403 ASID_CHECK_FAILED for the INT ASID when Live is configured)', async () => {
    const id = 'urn:nhs:names:services:events:Vaccinations.Write';
    expect((await headers(publishCase(id), { toAsid: '111111111111' })).result).toBe('403 ASID_CHECK_FAILED');
  });
});
