// The shared nginx benchmark's `nems` profile request shapes must stay accepted under the shipped configuration
// (issue 12: the policy must not turn a benchmark of valid NEMS traffic into a benchmark of rejections). The shapes
// are rebuilt here as that fixture builds them (nginx-bench fixtures.mjs, profile nems: headers, the unsigned Spine
// JWT claims, the subscription JSON, the IG's vaccinations-1-new.xml); the test never reads outside the repository.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.js';
import { openPdsLookup } from '../../src/pds/index.js';
import { inject, summary, testLifecycle, type InjectRequest } from '../helpers/inject.js';
import { readNemsExample } from '../helpers/nems-examples.js';

const NOW = Date.UTC(2025, 5, 1, 12);
const b64url = (obj: unknown) => Buffer.from(JSON.stringify(obj)).toString('base64url');

const ENDPOINTS = {
  'gp-system': { asid: '200000000101', ods: 'A83627', fqdn: 'gp-system.example.nhs.uk' },
  'child-health': { asid: '200000000102', ods: 'RX3EP', fqdn: 'child-health.example.nhs.uk' },
} as const;

function nemsJwt(endpoint: keyof typeof ENDPOINTS, scope: string): string {
  const e = ENDPOINTS[endpoint];
  const now = Math.floor(NOW / 1000);
  const system = `https://fhir.nhs.uk/Id/accredited-system|${e.asid}`;
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
    iss: `https://${e.fqdn}`, sub: system, aud: 'https://clinicals.spineservices.nhs.uk', iat: now, exp: now + 300,
    reason_for_request: 'directcare', scope, requesting_system: system,
    requesting_organisation: `https://fhir.nhs.uk/Id/ods-organization-code|${e.ods}`,
  })}.`;
}

const SUBSCRIPTION_JSON = JSON.stringify({
  resourceType: 'Subscription',
  meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/EMS-Subscription-1'] },
  status: 'requested',
  contact: [{ system: 'url', value: 'https://directory.spineservices.nhs.uk/STU3/Organization/A83627', use: 'work' }],
  reason: 'Patient under direct care of this GP practice (benchmark)',
  criteria: '/Bundle?type=message&serviceType=GP&Patient.identifier=http://fhir.nhs.net/Id/nhs-number|9912003888&MessageHeader.event=vaccinations-1',
  channel: { type: 'message', endpoint: 'A83627MB001' },
});

const headers = (endpoint: keyof typeof ENDPOINTS, interaction: string, scope: string, extra: [string, string][]): [string, string][] => [
  ['fromASID', ENDPOINTS[endpoint].asid], ['toASID', '200000000306'], ['InteractionID', interaction],
  ['Authorization', `Bearer ${nemsJwt(endpoint, scope)}`], ...extra,
];

const SHAPES: Readonly<Record<string, InjectRequest>> = {
  get: {
    endpoint: 'gp-system', method: 'GET', target: '/STU3/Subscription/0123456789abcdef0123456789abcdef',
    headers: headers('gp-system', 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiGet', 'patient/Subscription.read', [['Accept', 'application/fhir+xml']]),
  },
  'post-json': {
    endpoint: 'gp-system', method: 'POST', target: '/STU3/Subscription', body: Buffer.from(SUBSCRIPTION_JSON),
    headers: headers('gp-system', 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost', 'patient/Subscription.write', [['Accept', 'application/fhir+json'], ['Content-Type', 'application/fhir+json']]),
  },
  'post-xml': {
    endpoint: 'child-health', method: 'POST', target: '/STU3/Events/1/$process-message', body: readNemsExample('vaccinations-1-new.xml'),
    headers: headers('child-health', 'urn:nhs:names:services:events:Vaccinations.Write', 'patient/Bundle.write', [['Accept', 'application/fhir+xml'], ['Content-Type', 'application/fhir+xml']]),
  },
};

describe('the nginx benchmark nems profile under the shipped configuration', () => {
  it.each(Object.keys(SHAPES).map((name) => [name] as const))('%s is forwarded, with no rule reported', async (name) => {
    const { config } = loadConfig(join(PROJECT_ROOT, 'config', 'gateway.yaml'), {});
    expect(config.policy.profile).toBe('compatible');
    const pds = await openPdsLookup(config);
    try {
      const decision = await inject(testLifecycle(config, { pds: pds.lookup, now: () => NOW }), SHAPES[name]!);
      expect(summary(decision, true)).toBe('pass');
      expect(decision.ctx?.reported).toBeUndefined();
    } finally {
      await pds.lookup.close();
    }
  });
});
