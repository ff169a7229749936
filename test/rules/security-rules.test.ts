// Security rules always enforce (issue 12 point 2): every security rule id × {strict, compatible, mode report under
// each profile, every conformance rule off}, and a setting for the rule itself is refused by the config schema.
// Triggers: every policy-table case (test/pipeline/policy-cases.ts) that strict refuses for a security rule, plus
// the body, PDS and limit cases below. Rules only the TLS edge or the forwarder can break are held structurally (they
// are never passed through RulePolicy.fire, and RulePolicy answers enforce for them under every setting) and listed.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { openPdsLookup, type PdsHandle } from '../../src/pds/index.js';
import { PdsUnavailableError, type PdsLookup } from '../../src/pds/types.js';
import { CONFORMANCE_RULE_IDS, ruleDefinition, SECURITY_RULE_IDS, type RuleId } from '../../src/rules/catalogue.js';
import { RulePolicy } from '../../src/rules/policy.js';
import { explicitCriteria, EXPLICIT_SUBSCRIPTION, subscriptionJson, subscriptionXml, vaccinationPublishXml } from '../helpers/bodies.js';
import { inject, policyConfig, testLifecycle, type InjectRequest } from '../helpers/inject.js';
import { mintSpineJwt } from '../../src/cli/jwt.js';
import { GP_SYSTEM_ASID, GP_SYSTEM_ODS, CHILD_HEALTH_ASID, CHILD_HEALTH_ODS } from '../helpers/endpoints.js';
import { policyRequest } from '../helpers/policy-bodies.js';
import { POLICY_CASES, POLICY_NOW } from '../pipeline/policy-cases.js';

const SHIPPED_PDS = join(dirname(fileURLToPath(import.meta.url)), '../../config/pds-local.yaml');

/** Rules only the TLS edge, the forwarder or a gateway fault can break: held by construction, asserted below. */
const STRUCTURAL_ONLY: readonly RuleId[] = [
  'tls.client-key-size', 'tls.certificate-status', 'upstream.reachable', 'gateway.internal',
  'jwt.signature', 'jwt.signing-keys', 'jwt.signed-issuer', 'limits.body-time', 'body.unreadable',
  // The request framing the edge checks on Node's parsed request (edge/request-framing.ts): over raw sockets in
  // test/e2e/http-edge.test.ts.
  'http.version', 'http.host', 'http.expect', 'http.connection-nominates-checked-header',
];

const SETTINGS: Readonly<Record<string, Record<string, unknown>>> = {
  strict: { profile: 'strict' },
  compatible: { profile: 'compatible' },
  'strict, mode report': { profile: 'strict', mode: 'report' },
  'compatible, mode report': { profile: 'compatible', mode: 'report' },
  'every conformance rule off': { profile: 'compatible', rules: Object.fromEntries(CONFORMANCE_RULE_IDS.map((id) => [id, 'off'])) },
};

/** A PDS double answering every lookup with one outcome. */
const pdsAnswering = (outcome: Awaited<ReturnType<PdsLookup['lookup']>>): PdsLookup => ({
  lookup: () => Promise.resolve(outcome),
  ready: () => Promise.resolve({ ok: true, reason: 'test double' }),
  close: () => Promise.resolve(),
});

/** A valid (modulus 11) NHS number from a 9-digit stem, for messages that need many distinct ones. */
function nhsNumber(stem: number): string | undefined {
  const digits = String(stem).padStart(9, '0');
  const sum = [...digits].reduce((total, d, i) => total + Number(d) * (10 - i), 0);
  const check = 11 - (sum % 11);
  if (check === 10) return undefined;
  return `${digits}${check === 11 ? 0 : check}`;
}
const SEVENTEEN_NUMBERS = Array.from({ length: 40 }, (_, i) => nhsNumber(943476500 + i)).filter((n): n is string => n !== undefined).slice(0, 17);
const identifiers = (numbers: readonly string[], withValue = true) =>
  numbers.map((n) => `<identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/>${withValue ? `<value value="${n}"/>` : ''}</identifier>`).join('');

const PDS_DOWN: PdsLookup = {
  lookup: () => Promise.reject(new PdsUnavailableError('timeout', 'test double: PDS down')),
  ready: () => Promise.resolve({ ok: false, reason: 'test double' }),
  close: () => Promise.resolve(),
};

/** A create from gp-system or a vaccinations publish from child-health, valid but for what the body breaks. */
function spineRequest(kind: 'create' | 'publish', body: string, type = 'application/fhir+xml'): InjectRequest {
  const [endpoint, asid, ods, target, interaction, scope] = kind === 'create'
    ? ['gp-system', GP_SYSTEM_ASID, GP_SYSTEM_ODS, '/STU3/Subscription', 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost', 'patient/Subscription.write'] as const
    : ['child-health', CHILD_HEALTH_ASID, CHILD_HEALTH_ODS, '/STU3/Events/1/$process-message', 'urn:nhs:names:services:events:Vaccinations.Write', 'patient/Bundle.write'] as const;
  return {
    endpoint,
    method: 'POST',
    target,
    headers: [
      ['fromASID', asid], ['toASID', '200000000306'], ['InteractionID', interaction],
      ['Authorization', `Bearer ${mintSpineJwt({ asid, ods, scope, now: POLICY_NOW })}`],
      ['Content-Type', type],
    ],
    body: Buffer.from(body),
  };
}
const create = (body: string, type?: string) => spineRequest('create', body, type);
const publish = (body: string) => spineRequest('publish', body);

/** Security rules the policy table does not reach, each with a request that breaks it (and, where needed, a PDS). */
const EXTRA: readonly { readonly rule: RuleId; readonly request: InjectRequest; readonly pds?: PdsLookup; readonly rateLimited?: boolean }[] = [
  { rule: 'subscription.resource', request: create('<Bundle xmlns="http://hl7.org/fhir"/>') },
  { rule: 'subscription.contact-ods', request: create(subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, contacts: [{ system: 'url', value: 'https://directory.spineservices.nhs.uk/STU3/Organization/RX3EP', use: 'work' }] })) },
  { rule: 'subscription.mailbox', request: create(subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, channel: { type: 'message', endpoint: 'RX3EPMB001' } })) },
  { rule: 'subscription.type-allowed', request: create(subscriptionJson({ ...EXPLICIT_SUBSCRIPTION, criteria: '/Bundle?type=message&subscriptionRuleType=GP_GP_GP&Organization.identifier=A83627&MessageHeader.event=pds-change-of-gp-1' }), 'application/fhir+json') },
  { rule: 'criteria.syntax', request: create(subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria: '/Bundle?type=message&eventcode=PDS001' })) },
  { rule: 'body.malformed', request: create('<Subscription xmlns="http://hl7.org/fhir">') },
  { rule: 'body.unsafe-content', request: create('<!DOCTYPE x><Subscription xmlns="http://hl7.org/fhir"/>') },
  { rule: 'body.required', request: { ...create(''), body: Buffer.alloc(0), headers: [...(create('').headers ?? []), ['Content-Length', '0']] } },
  { rule: 'event.structure', request: publish('<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>') },
  { rule: 'event.code', request: publish(vaccinationPublishXml().replace('<code value="vaccinations-1"/>', '<code value="pds-change-of-gp-1"/>')) },
  { rule: 'event.routing-demographics', request: publish(vaccinationPublishXml().replace(/<extension url="birthDateTime">[\s\S]*?<\/extension>/, '')) },
  { rule: 'nhs-number.valid', request: publish(vaccinationPublishXml({ nhsNumber: '9434765918' })) },
  { rule: 'pds.traced', request: create(subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria: explicitCriteria('9111231130') })) },
  { rule: 'pds.superseded', request: create(subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria: explicitCriteria('9990000018') })) },
  { rule: 'pds.invalidated', request: create(subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria: explicitCriteria('9990000034') })) },
  { rule: 'pds.available', request: create(subscriptionXml(EXPLICIT_SUBSCRIPTION)), pds: PDS_DOWN },
  { rule: 'limits.rate', request: create(subscriptionXml(EXPLICIT_SUBSCRIPTION)), rateLimited: true },
  { rule: 'tls.client-identity', request: { ...create(subscriptionXml(EXPLICIT_SUBSCRIPTION)), endpoint: { certificate: { subjectCn: 'unregistered.example.nhs.uk', dnsNames: ['unregistered.example.nhs.uk'], fingerprint256: 'AB'.repeat(32) }, remoteAddress: '127.0.0.1' } } },
  { rule: 'event.nhs-numbers', request: publish(vaccinationPublishXml().replace('<Patient>', `<Patient>${identifiers(['x'], false)}`)) },
  { rule: 'limits.nhs-numbers', request: publish(vaccinationPublishXml().replace('<Patient>', `<Patient>${identifiers(SEVENTEEN_NUMBERS)}`)) },
  { rule: 'pds.invalid-nhs-number', request: create(subscriptionXml(EXPLICIT_SUBSCRIPTION)), pds: pdsAnswering({ result: 'invalid' }) },
  { rule: 'pds.restricted', request: publish(vaccinationPublishXml()), pds: pdsAnswering({ result: 'restricted', restricted: true }) },
  { rule: 'pds.demographics-match', request: publish(vaccinationPublishXml().replace('<family value="DAWKINS"/>', '<family value="SOMEONE-ELSE"/>')) },
  { rule: 'limits.body-size', request: create(`<Subscription xmlns="http://hl7.org/fhir">${' '.repeat(300 * 1024)}</Subscription>`) },
];

let pds: PdsHandle;
beforeAll(async () => {
  pds = await openPdsLookup(policyConfig({}, { pds: { kind: 'local', local: { path: SHIPPED_PDS } } }));
});
afterAll(() => pds.lookup.close());

function lifecycleFor(policy: Record<string, unknown>, o: { pds?: PdsLookup; rateLimited?: boolean } = {}) {
  const config = policyConfig({}, {
    policy,
    pds: { kind: 'local', local: { path: SHIPPED_PDS } },
    ...(o.rateLimited ? { rateLimits: { enabled: true, default: { ratePerSecond: 0.001, burst: 1 } } } : {}),
  });
  return testLifecycle(config, { pds: o.pds ?? pds.lookup, now: () => POLICY_NOW });
}

interface Trigger {
  readonly name: string;
  readonly request: InjectRequest;
  readonly pds?: PdsLookup;
  readonly rateLimited?: boolean;
}

/** Runs a trigger under one policy; the rate-limited ones spend their one token first. */
async function decide(policy: Record<string, unknown>, t: Trigger) {
  const lifecycle = lifecycleFor(policy, t);
  if (t.rateLimited) await inject(lifecycle, t.request);
  return inject(lifecycle, t.request);
}

const TRIGGERS: Trigger[] = [
  ...POLICY_CASES.filter((c) => c.expect !== 'pass').map((c) => ({ name: `policy table: ${c.name}`, request: policyRequest(c) })),
  ...EXTRA.map((e) => ({ name: `breaks ${e.rule}`, request: e.request, ...(e.pds ? { pds: e.pds } : {}), ...(e.rateLimited ? { rateLimited: true } : {}) })),
];

describe('security rules reject in every mode', () => {
  const covered = new Set<RuleId>();

  it.each(TRIGGERS.map((t) => [t.name, t] as const))('%s', async (_name, t) => {
    const strict = await decide(SETTINGS.strict!, t);
    expect(strict.action).toBe('reject');
    if (strict.action !== 'reject' || ruleDefinition(strict.rule).class !== 'security') return;
    covered.add(strict.rule);
    for (const [setting, policy] of Object.entries(SETTINGS)) {
      const decision = await decide(policy, t);
      expect(decision.action, setting).toBe('reject');
      if (decision.action !== 'reject') continue;
      expect({ setting, rule: decision.rule, status: decision.status, code: decision.code }).toEqual({ setting, rule: strict.rule, status: strict.status, code: strict.code });
    }
  });

  it('reaches every security rule but the edge-only ones, and each extra trigger breaks the rule it names', async () => {
    for (const e of EXTRA) {
      const decision = await decide(SETTINGS.strict!, { name: e.rule, request: e.request, ...(e.pds ? { pds: e.pds } : {}), ...(e.rateLimited ? { rateLimited: true } : {}) });
      expect(decision.action === 'reject' ? decision.rule : 'forward', e.rule).toBe(e.rule);
    }
    const missing = SECURITY_RULE_IDS.filter((id) => !covered.has(id) && !STRUCTURAL_ONLY.includes(id));
    expect(missing).toEqual([]);
  });

  it.each(SECURITY_RULE_IDS.map((id) => [id] as const))('%s: the schema refuses a setting for it, and every policy enforces it', (id) => {
    for (const action of ['off', 'report', 'enforce']) {
      const parsed = configSchema.safeParse({
        server: { tls: { cert: '/x/c', key: '/x/k', ca: '/x/ca' } }, registry: { path: '/x/r' }, policy: { rules: { [id]: action } },
      });
      expect(parsed.success, `${id}: ${action}`).toBe(false);
    }
    for (const policy of Object.values(SETTINGS)) {
      expect(RulePolicy.fromConfig(policyConfig({}, { policy })).action(id)).toBe('enforce');
    }
  });
});
