// The headers stage (spec digest §1.3, §2.1): what it records, and the legacy publish InteractionID option (§9.22).
import { describe, expect, it } from 'vitest';
import { mintSpineJwt } from '../../src/cli/jwt.js';
import type { AsidRegistration, Endpoint } from '../../src/identity/types.js';
import { createHeadersStage } from '../../src/pipeline/stages/headers.js';
import { createRouteStage } from '../../src/pipeline/stages/route.js';
import { CHILD_HEALTH_ASID, CHILD_HEALTH_ODS, CHILD_HEALTH_REGISTRATION } from '../helpers/endpoints.js';
import type { PolicyCase } from './policy-cases.js';
import { contextFor, policyConfig, runStages } from './policy-runner.js';

const token = mintSpineJwt({ asid: CHILD_HEALTH_ASID, ods: CHILD_HEALTH_ODS, scope: 'patient/Bundle.write', now: 0 });

function publishCase(interactionId: string): PolicyCase {
  return {
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
    expect: 'pass',
  };
}

async function headers(c: PolicyCase, nems: Record<string, unknown> = {}, endpoint?: Endpoint) {
  const config = policyConfig(nems);
  const ctx = { ...contextFor(c, 0), ...(endpoint ? { endpoint } : {}) };
  const outcome = await runStages([createRouteStage(config), createHeadersStage(config)], ctx);
  return { ctx, result: outcome.ok ? 'pass' : `${outcome.status} ${outcome.code}` };
}

describe('headers stage', () => {
  it('records fromASID, its registration, the InteractionID and the publish event type', async () => {
    const { ctx, result } = await headers(publishCase('urn:nhs:names:services:events:Professionalcontacts.Write'));
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
    expect((await headers(publishCase('urn:nhs:names:services:events:Nipeoutcome.Write'), {}, endpoint)).result).toBe('403 ASID_CHECK_FAILED');
  });

  it('follows nems.toAsid (403 ASID_CHECK_FAILED for the INT ASID when Live is configured)', async () => {
    const id = 'urn:nhs:names:services:events:Vaccinations.Write';
    expect((await headers(publishCase(id), { toAsid: '111111111111' })).result).toBe('403 ASID_CHECK_FAILED');
  });
});
