import { describe, expect, it } from 'vitest';
import { SPINE_CODES } from '../../src/fhir/errors.js';
import { parseFhirJson } from '../../src/fhir/json.js';
import type { FhirFormat } from '../../src/fhir/operation-outcome.js';
import { validateSubscriptionCreate, type SubscriptionCreateResult } from '../../src/fhir/subscription.js';
import { parseFhirXml } from '../../src/fhir/xml.js';
import type { AsidRegistration } from '../../src/identity/types.js';
import {
  CHILD_HEALTH_MAILBOX,
  CHILD_HEALTH_ODS,
  EXPLICIT_SUBSCRIPTION,
  explicitCriteria,
  GENERIC_SUBSCRIPTION,
  GP_MAILBOX,
  GP_ODS,
  ODS_URL,
  subscriptionJson,
  subscriptionXml,
  type SubscriptionModel,
} from '../helpers/bodies.js';
import { CHILD_HEALTH, GP_SYSTEM, withMailboxes, withRegistration } from './example-registrations.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const FORMATS: FhirFormat[] = ['xml', 'json'];

function parseBody(body: string, format: FhirFormat): unknown {
  const buffer = Buffer.from(body, 'utf8');
  if (format === 'xml') {
    const xml = parseFhirXml(buffer, 256 * 1024);
    if (!xml.ok) throw new Error(`test body did not parse: ${xml.detail}`);
    return xml.root;
  }
  const json = parseFhirJson(buffer, 256 * 1024);
  if (!json.ok) throw new Error(`test body did not parse: ${json.detail}`);
  return json.value;
}

function validateRaw(body: string, format: FhirFormat, asid: AsidRegistration = GP_SYSTEM): SubscriptionCreateResult {
  return validateSubscriptionCreate(parseBody(body, format), format, asid, NOW);
}

function validate(model: SubscriptionModel, format: FhirFormat, asid: AsidRegistration = GP_SYSTEM): SubscriptionCreateResult {
  return validateRaw(format === 'xml' ? subscriptionXml(model) : subscriptionJson(model), format, asid);
}

/** Status, Spine code and diagnostics of a rejection, or 'ok'. */
function outcome(result: SubscriptionCreateResult): 'ok' | { status: number; code: string; diagnostics: string } {
  if (result.ok) return 'ok';
  return { status: SPINE_CODES[result.rejection.code].status, code: result.rejection.code, diagnostics: result.rejection.diagnostics };
}

const with_ = (change: Partial<SubscriptionModel>, base: SubscriptionModel = EXPLICIT_SUBSCRIPTION): SubscriptionModel => ({ ...base, ...change });

describe.each(FORMATS)('Subscription create (%s): accepted', (format) => {
  it('accepts the example explicit subscription for gp-system and extracts its NHS number for tracing', () => {
    const result = validate(EXPLICIT_SUBSCRIPTION, format);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.subscription).toEqual({
      kind: 'subscription',
      subscriptionType: 'explicit',
      contactOds: GP_ODS,
      mailboxId: GP_MAILBOX,
      eventCodes: ['pds-change-of-address-1'],
    });
    expect(result.criteria.nhsNumber).toBe('9912003888');
    expect(result.nhsNumbers).toEqual([
      { value: '9912003888', source: 'subscription-criteria', element: 'Subscription.criteria (Patient.identifier)' },
    ]);
  });

  it('accepts the example generic subscription for child-health, with no NHS number to trace', () => {
    const result = validate(GENERIC_SUBSCRIPTION, format, CHILD_HEALTH);
    expect(result.ok).toBe(true);
    expect(result.ok && result.subscription.subscriptionType).toBe('generic');
    expect(result.ok && result.nhsNumbers).toEqual([]);
  });

  it('accepts explicit subscriptions from child-health too (explicit+generic endpoint)', () => {
    const model = with_({ contacts: [{ system: 'url', value: `${ODS_URL}${CHILD_HEALTH_ODS}`, use: 'work' }], channel: { type: 'message', endpoint: CHILD_HEALTH_MAILBOX } });
    expect(outcome(validate(model, format, CHILD_HEALTH))).toBe('ok');
  });

  it('accepts API-published and Spine-published events alike', () => {
    const model = with_({ criteria: explicitCriteria('9912003888', ['vaccinations-1', 'pds-record-change-1', 'blood-spot-test-outcome-1']) });
    expect(outcome(validate(model, format))).toBe('ok');
  });

  it('accepts an end instant in the future', () => {
    expect(outcome(validate(with_({ end: '2030-01-01T00:00:00+00:00' }), format))).toBe('ok');
  });

  it('accepts extra contacts after the first that also follow the profile (use work, system url, a registered ODS code)', () => {
    const model = with_({ contacts: [...EXPLICIT_SUBSCRIPTION.contacts!, ...EXPLICIT_SUBSCRIPTION.contacts!] });
    expect(outcome(validate(model, format))).toBe('ok');
  });

  it('leaves modulus 11 to the nhs-numbers stage: a 10-digit number failing it is still extracted', () => {
    const result = validate(with_({ criteria: explicitCriteria('9000000000') }), format);
    expect(result.ok && result.nhsNumbers.map((n) => n.value)).toEqual(['9000000000']);
  });

  it('accepts the legacy workflow alias PDS_RECORD_CHANGE_1 in the registry for pds-record-change-1', () => {
    const asid = withMailboxes(GP_SYSTEM, [{ id: GP_MAILBOX, odsCode: GP_ODS, workflowIds: ['PDS_RECORD_CHANGE_1'] }]);
    expect(outcome(validate(with_({ criteria: explicitCriteria('9912003888', ['pds-record-change-1']) }), format, asid))).toBe('ok');
  });

  it('does not restrict events when the registry lists no workflow IDs for the mailbox', () => {
    const asid = withMailboxes(GP_SYSTEM, [{ id: GP_MAILBOX, odsCode: GP_ODS, workflowIds: [] }]);
    expect(outcome(validate(EXPLICIT_SUBSCRIPTION, format, asid))).toBe('ok');
  });
});

describe.each(FORMATS)('Subscription create (%s): rejected, naming the element', (format) => {
  const rejected: [string, SubscriptionModel, AsidRegistration, number, string, string][] = [
    ['a client-assigned id', with_({ id: 'ea0a485187204b49b978bdcf7102388c' }), GP_SYSTEM, 405, 'MSG_RESOURCE_ID_FAIL', 'Subscription.id'],
    ['meta.versionId', with_({ metaVersionId: '1' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.meta.versionId'],
    ['meta.lastUpdated', with_({ metaLastUpdated: '2025-01-01T00:00:00+00:00' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.meta.lastUpdated'],
    ['no status', with_({ status: undefined }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.status'],
    ['status active', with_({ status: 'active' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.status'],
    ['no reason', with_({ reason: undefined }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.reason'],
    ['a blank reason', with_({ reason: '   ' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.reason'],
    ['no criteria', with_({ criteria: undefined }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.criteria'],
    ['criteria in the 2018 grammar', with_({ criteria: '/Bundle?type=message&nhsnumber=9434765919&eventcode=PDS002' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.criteria'],
    ['criteria with an unknown event code', with_({ criteria: explicitCriteria('9912003888', ['pds-person-death-1']) }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.criteria (MessageHeader.event)'],
    ['no contact', with_({ contacts: [] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact'],
    ['contact[0].use home', with_({ contacts: [{ system: 'url', value: `${ODS_URL}${GP_ODS}`, use: 'home' }] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[0].use'],
    ['contact[0].system email', with_({ contacts: [{ system: 'email', value: `${ODS_URL}${GP_ODS}`, use: 'work' }] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[0].system'],
    ['contact[0].value not the ODS directory URL', with_({ contacts: [{ system: 'url', value: `https://example.org/Organization/${GP_ODS}`, use: 'work' }] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[0].value'],
    ['contact[0].value with a malformed ODS code', with_({ contacts: [{ system: 'url', value: `${ODS_URL}${GP_ODS}/extra`, use: 'work' }] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[0].value'],
    ['a second contact with system email and use home', with_({ contacts: [{ system: 'url', value: `${ODS_URL}${GP_ODS}`, use: 'work' }, { system: 'email', value: 'gp@example.nhs.uk', use: 'home' }] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[1].use'],
    ['a second contact whose ODS code is not registered for the ASID', with_({ contacts: [{ system: 'url', value: `${ODS_URL}${GP_ODS}`, use: 'work' }, { system: 'url', value: `${ODS_URL}${CHILD_HEALTH_ODS}`, use: 'work' }] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[1].value'],
    ['contact[0] ODS code not registered for the ASID', with_({ contacts: [{ system: 'url', value: `${ODS_URL}${CHILD_HEALTH_ODS}`, use: 'work' }] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[0].value'],
    ['an ODS code only in contact[1]', with_({ contacts: [{ system: 'url', value: `${ODS_URL}X26`, use: 'work' }, ...EXPLICIT_SUBSCRIPTION.contacts!] }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.contact[0].value'],
    ['no channel', with_({ channel: undefined }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.channel.type'],
    ['channel.type mesh (2018)', with_({ channel: { type: 'mesh', endpoint: GP_MAILBOX } }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.channel.type'],
    ['no channel.endpoint', with_({ channel: { type: 'message' } }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.channel.endpoint'],
    ['a mailbox not registered for the ASID', with_({ channel: { type: 'message', endpoint: CHILD_HEALTH_MAILBOX } }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.channel.endpoint'],
    ['a legacy channel.header (2018 workflow ID)', with_({ channel: { type: 'message', endpoint: GP_MAILBOX, header: 'CHANGEOFADDRESS_1' } }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.channel.header'],
    ['an end in the past', with_({ end: '2020-01-01T00:00:00+00:00' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an end that is a date, not an instant', with_({ end: '2030-01-01' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an end without a timezone', with_({ end: '2030-01-01T00:00:00' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an end on 30 February', with_({ end: '2030-02-30T00:00:00Z' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an end on 29 February of a common year', with_({ end: '2030-02-29T00:00:00Z' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an end with offset +14:30', with_({ end: '2030-01-01T00:00:00+14:30' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an end with offset +58:00', with_({ end: '2030-01-01T00:00:00+58:00' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an end without seconds', with_({ end: '2030-01-01T00:00+00:00' }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.end'],
    ['an element NEMS does not accept (error)', with_({ extra: { name: 'error', value: 'x' } }), GP_SYSTEM, 422, 'INVALID_RESOURCE', 'Subscription.error'],
    ['a generic subscription from an explicit-only ASID (NEMS_SUBS_TYPE)', with_({ contacts: EXPLICIT_SUBSCRIPTION.contacts!, channel: EXPLICIT_SUBSCRIPTION.channel! }, GENERIC_SUBSCRIPTION), GP_SYSTEM, 403, 'ACCESS_DENIED', 'Subscription.criteria'],
    ['an explicit subscription from a generic-only ASID', EXPLICIT_SUBSCRIPTION, withRegistration(GP_SYSTEM, { subscriptionTypes: ['generic'] }), 403, 'ACCESS_DENIED', 'Subscription.criteria'],
    ['an event the mailbox has no workflow ID for', EXPLICIT_SUBSCRIPTION, withMailboxes(GP_SYSTEM, [{ id: GP_MAILBOX, odsCode: GP_ODS, workflowIds: ['VACCINATIONS_1'] }]), 422, 'INVALID_RESOURCE', 'Subscription.criteria (MessageHeader.event)'],
    [
      'a mailbox registered for the ASID but under another ODS code than contact[0]',
      EXPLICIT_SUBSCRIPTION,
      withRegistration(GP_SYSTEM, { odsCodes: [GP_ODS, 'B85612'], mailboxes: [{ id: GP_MAILBOX, odsCode: 'B85612', workflowIds: [] }] }),
      422,
      'INVALID_RESOURCE',
      'Subscription.channel.endpoint',
    ],
  ];
  it.each(rejected)('rejects %s → %i %s', (_name, model, asid, status, code, element) => {
    const result = outcome(validate(model, format, asid));
    expect(result).not.toBe('ok');
    if (result === 'ok') return;
    expect(result.status).toBe(status);
    expect(result.code).toBe(code);
    expect(result.diagnostics.startsWith(`${element}:`)).toBe(true);
    expect(result.diagnostics).not.toContain('9912003888');
  });
});

describe('Subscription create: format-specific structure', () => {
  const xml = subscriptionXml(EXPLICIT_SUBSCRIPTION);
  const json = JSON.parse(subscriptionJson(EXPLICIT_SUBSCRIPTION)) as Record<string, unknown>;

  it('rejects an XML root that is not Subscription → 422 INVALID_RESOURCE', () => {
    expect(outcome(validateRaw(xml.replace(/Subscription/g, 'Bundle'), 'xml'))).toMatchObject({ status: 422, diagnostics: expect.stringMatching(/^Subscription:/) });
  });

  it('rejects an XML Subscription outside the FHIR namespace → 422 INVALID_RESOURCE', () => {
    expect(outcome(validateRaw(xml.replace(' xmlns="http://hl7.org/fhir"', ''), 'xml'))).toMatchObject({ code: 'INVALID_RESOURCE' });
  });

  it('rejects a repeated XML status → 422 INVALID_RESOURCE naming Subscription.status', () => {
    const repeated = xml.replace('<status value="requested"/>', '<status value="requested"/><status value="active"/>');
    expect(outcome(validateRaw(repeated, 'xml'))).toMatchObject({ code: 'INVALID_RESOURCE', diagnostics: expect.stringMatching(/^Subscription\.status:/) });
  });

  it('rejects an XML status without a value attribute → 422 INVALID_RESOURCE', () => {
    expect(outcome(validateRaw(xml.replace('<status value="requested"/>', '<status/>'), 'xml'))).toMatchObject({ code: 'INVALID_RESOURCE' });
  });

  it('rejects a repeated XML channel → 422 INVALID_RESOURCE naming Subscription.channel', () => {
    const twice = xml.replace('</channel>', `</channel><channel><type value="message"/><endpoint value="${GP_MAILBOX}"/></channel>`);
    expect(outcome(validateRaw(twice, 'xml'))).toMatchObject({ code: 'INVALID_RESOURCE', diagnostics: expect.stringMatching(/^Subscription\.channel:/) });
  });

  it('rejects an XML modifierExtension → 422 INVALID_RESOURCE', () => {
    const withModifier = xml.replace('<status', '<modifierExtension url="https://example.org/x"><valueBoolean value="true"/></modifierExtension><status');
    expect(outcome(validateRaw(withModifier, 'xml'))).toMatchObject({ diagnostics: expect.stringMatching(/^Subscription\.modifierExtension:/) });
  });

  it('reads the criteria with &amp; decoded from the XML attribute', () => {
    expect(xml).toContain('&amp;MessageHeader.event=');
    expect(outcome(validateRaw(xml, 'xml'))).toBe('ok');
  });

  it('rejects JSON whose resourceType is not Subscription → 422 INVALID_RESOURCE', () => {
    expect(outcome(validateRaw(JSON.stringify({ ...json, resourceType: 'Patient' }), 'json'))).toMatchObject({ diagnostics: expect.stringMatching(/^Subscription\.resourceType:/) });
  });

  it('rejects a JSON array body → 422 INVALID_RESOURCE', () => {
    expect(outcome(validateRaw('[]', 'json'))).toMatchObject({ code: 'INVALID_RESOURCE' });
  });

  it('rejects a JSON status that is not a string → 422 INVALID_RESOURCE', () => {
    expect(outcome(validateRaw(JSON.stringify({ ...json, status: ['requested'] }), 'json'))).toMatchObject({ diagnostics: expect.stringMatching(/^Subscription\.status:/) });
  });

  it('rejects a JSON contact that is an object, not an array → 422 INVALID_RESOURCE', () => {
    const contact = (json['contact'] as unknown[])[0];
    expect(outcome(validateRaw(JSON.stringify({ ...json, contact }), 'json'))).toMatchObject({ diagnostics: expect.stringMatching(/^Subscription\.contact:/) });
  });

  it('rejects a JSON id even when null → 405 MSG_RESOURCE_ID_FAIL', () => {
    expect(outcome(validateRaw(JSON.stringify({ ...json, id: null }), 'json'))).toMatchObject({ status: 405, code: 'MSG_RESOURCE_ID_FAIL' });
  });

  it('rejects a JSON primitive extension (_status) → 422 INVALID_RESOURCE', () => {
    expect(outcome(validateRaw(JSON.stringify({ ...json, _status: { extension: [] } }), 'json'))).toMatchObject({ diagnostics: expect.stringMatching(/^Subscription\._status:/) });
  });

  it('does not echo an unknown element name that is not FHIR-shaped', () => {
    const result = outcome(validateRaw(JSON.stringify({ ...json, 'x 9912003888': 1 }), 'json'));
    expect(result).toMatchObject({ code: 'INVALID_RESOURCE', diagnostics: expect.stringMatching(/^Subscription:/) });
    expect(JSON.stringify(result)).not.toContain('9912003888');
  });
});
