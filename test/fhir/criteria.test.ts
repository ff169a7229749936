import { describe, expect, it } from 'vitest';
import { parseCriteria } from '../../src/fhir/criteria.js';
import type { ParsedCriteria } from '../../src/fhir/criteria-types.js';

const P = '/Bundle?type=message';
const NHS = 'Patient.identifier=http://fhir.nhs.net/Id/nhs-number|9434765919';
const EXPLICIT = `${P}&${NHS}&MessageHeader.event=pds-change-of-address-1`;
const GENERIC = `${P}&subscriptionRuleType=GP_GP_GP&Organization.identifier=A83627&MessageHeader.event=pds-change-of-gp-1`;

function ok(criteria: string): ParsedCriteria {
  const result = parseCriteria(criteria);
  if (!result.ok) throw new Error(`expected valid criteria, got ${result.element}: ${result.problem}`);
  return result.criteria;
}

describe('parseCriteria: the docs/specification.md §1.5 examples', () => {
  it('accepts the explicit example (serviceType GP, one NHS number, one event)', () => {
    expect(
      ok('/Bundle?type=message&serviceType=GP&Patient.identifier=http://fhir.nhs.net/Id/nhs-number|9434765919&MessageHeader.event=pds-change-of-address-1'),
    ).toEqual({
      subscriptionType: 'explicit',
      serviceType: 'GP',
      nhsNumber: '9434765919',
      eventCodes: ['pds-change-of-address-1'],
      ages: [],
    });
  });

  it('accepts the generic example (CHO_POSTCODE_CCG, org code, one event, tag)', () => {
    expect(
      ok('/Bundle?type=message&subscriptionRuleType=CHO_POSTCODE_CCG&Organization.identifier=X2458&MessageHeader.event=pds-change-of-address-1&tag=site123'),
    ).toEqual({
      subscriptionType: 'generic',
      ruleType: 'CHO_POSTCODE_CCG',
      organisationCode: 'X2458',
      eventCodes: ['pds-change-of-address-1'],
      ages: [],
      tag: 'site123',
    });
  });

  it('rejects the docs/specification.md §9.13 read example (generic without subscriptionRuleType, 4 events, unknown pds-person-death-1)', () => {
    const result = parseCriteria(
      '/Bundle?type=message&Organization.identifier=X2458&MessageHeader.event=pds-birth-notification-1&MessageHeader.event=pds-change-of-address-1&MessageHeader.event=pds-change-of-gp-1&MessageHeader.event=pds-person-death-1',
    );
    expect(result.ok).toBe(false);
  });

  it('rejects the removed 2018 grammar (orgcode, eventcode)', () => {
    const result = parseCriteria('/Bundle?type=message&orgcode=X2458&eventcode=PDS001&eventcode=PDS002');
    expect(result).toEqual({ ok: false, element: 'Subscription.criteria', problem: 'has an unknown component', rule: 'criteria.syntax' });
  });
});

describe('parseCriteria: valid criteria', () => {
  const valid: [string, string, Partial<ParsedCriteria>][] = [
    ['explicit with several events', `${P}&${NHS}&MessageHeader.event=vaccinations-1&MessageHeader.event=pds-death-notification-1`, { eventCodes: ['vaccinations-1', 'pds-death-notification-1'] }],
    ['explicit with all ten events', `${P}&${NHS}${['blood-spot-test-outcome-1', 'newborn-hearing-1', 'nipe-outcome-1', 'pds-birth-notification-1', 'pds-change-of-address-1', 'pds-change-of-gp-1', 'pds-death-notification-1', 'pds-record-change-1', 'professional-contacts-1', 'vaccinations-1'].map((e) => `&MessageHeader.event=${e}`).join('')}`, { subscriptionType: 'explicit' }],
    ['components in any order after the prefix', `${P}&MessageHeader.event=pds-change-of-gp-1&${NHS}`, { nhsNumber: '9434765919' }],
    // The number's format is the nhs-numbers stage's to judge (400 INVALID_NHS_NUMBER, as for every NHS number).
    ['an NHS number with 9 digits, passed on as written', `${P}&Patient.identifier=http://fhir.nhs.net/Id/nhs-number|943476591&MessageHeader.event=pds-change-of-gp-1`, { nhsNumber: '943476591' }],
    ['an NHS number with spaces, passed on as written', `${P}&Patient.identifier=http://fhir.nhs.net/Id/nhs-number|943 476 5919&MessageHeader.event=pds-change-of-gp-1`, { nhsNumber: '943 476 5919' }],
    ['percent-encoded | in Patient.identifier', `${P}&Patient.identifier=http://fhir.nhs.net/Id/nhs-number%7C9434765919&MessageHeader.event=pds-change-of-gp-1`, { nhsNumber: '9434765919' }],
    ['age range gt5 & lt19', `${EXPLICIT}&Patient.age=gt5&Patient.age=lt19`, { ages: [{ comparator: 'gt', years: 5 }, { comparator: 'lt', years: 19 }] }],
    ['single upper bound lt14', `${EXPLICIT}&Patient.age=lt14`, { ages: [{ comparator: 'lt', years: 14 }] }],
    ['single lower bound gt60', `${GENERIC}&Patient.age=gt60`, { ages: [{ comparator: 'gt', years: 60 }] }],
    ['inclusive bounds ge5 & le5', `${EXPLICIT}&Patient.age=ge5&Patient.age=le5`, { ages: [{ comparator: 'ge', years: 5 }, { comparator: 'le', years: 5 }] }],
    ['eq alone', `${EXPLICIT}&Patient.age=eq0`, { ages: [{ comparator: 'eq', years: 0 }] }],
    ['serviceType EPCHR', `${EXPLICIT}&serviceType=EPCHR`, { serviceType: 'EPCHR' }],
    ['GPRegistration with a postcode rule', `${P}&subscriptionRuleType=CHO_POSTCODE_CCG&Organization.identifier=X2458&MessageHeader.event=pds-birth-notification-1&GPRegistration=UnregisteredOnly`, { gpRegistration: 'UnregisteredOnly' }],
    ['GPRegistration on explicit', `${EXPLICIT}&GPRegistration=RegisteredOnly`, { gpRegistration: 'RegisteredOnly' }],
    ['COUNTRYCODE Wales', `${P}&subscriptionRuleType=COUNTRYCODE&Organization.identifier=W92000004&MessageHeader.event=pds-death-notification-1`, { ruleType: 'COUNTRYCODE', organisationCode: 'W92000004' }],
    ['UHV_POSTCODE_LACODE with an ONS LA code', `${P}&subscriptionRuleType=UHV_POSTCODE_LACODE&Organization.identifier=E08000035&MessageHeader.event=pds-birth-notification-1`, { ruleType: 'UHV_POSTCODE_LACODE' }],
    ['tag of 100 allowed characters', `${EXPLICIT}&tag=${'aZ09-_|,'.repeat(12)}abcd`, { tag: `${'aZ09-_|,'.repeat(12)}abcd` }],
  ];
  it.each(valid)('%s', (_name, criteria, expected) => {
    expect(ok(criteria)).toMatchObject(expected);
  });
});

describe('parseCriteria: invalid criteria name the component (422 INVALID_RESOURCE at Subscription create)', () => {
  const invalid: [string, string, string][] = [
    ['empty', '', 'Subscription.criteria'],
    ['wrong prefix', '/Patient?type=message&' + NHS + '&MessageHeader.event=pds-change-of-gp-1', 'Subscription.criteria'],
    ['prefix with another type', '/Bundle?type=messages&' + NHS, 'Subscription.criteria'],
    ['type not first', `/Bundle?${NHS}&type=message&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria'],
    ['type repeated', `${EXPLICIT}&type=message`, 'Subscription.criteria (type)'],
    ['prefix only', P, 'Subscription.criteria'],
    ['empty component', `${P}&&${NHS}&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria'],
    ['trailing &', `${EXPLICIT}&`, 'Subscription.criteria'],
    ['component without =', `${EXPLICIT}&tag`, 'Subscription.criteria'],
    ['empty value', `${EXPLICIT}&tag=`, 'Subscription.criteria (tag)'],
    ['unknown component', `${EXPLICIT}&subject=x`, 'Subscription.criteria'],
    ['component names are case-sensitive', `${P}&patient.identifier=http://fhir.nhs.net/Id/nhs-number|9434765919&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria'],
    ['both explicit and generic', `${EXPLICIT}&subscriptionRuleType=GP_GP_GP`, 'Subscription.criteria'],
    ['neither explicit nor generic', `${P}&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria'],
    ['explicit without an event', `${P}&${NHS}`, 'Subscription.criteria (MessageHeader.event)'],
    ['explicit with two NHS numbers', `${EXPLICIT}&Patient.identifier=http://fhir.nhs.net/Id/nhs-number|9000000009`, 'Subscription.criteria (Patient.identifier)'],
    ['explicit with Organization.identifier', `${EXPLICIT}&Organization.identifier=A83627`, 'Subscription.criteria (Organization.identifier)'],
    ['explicit with the current NHS number system (docs/specification.md §9.7: not accepted)', `${P}&Patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria (Patient.identifier)'],
    ['explicit without a system', `${P}&Patient.identifier=9434765919&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria (Patient.identifier)'],
    ['generic with two events', `${GENERIC}&MessageHeader.event=pds-change-of-address-1`, 'Subscription.criteria (MessageHeader.event)'],
    ['generic without Organization.identifier', `${P}&subscriptionRuleType=GP_GP_GP&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria (Organization.identifier)'],
    ['generic with an unknown rule type (HSS, renamed in 2.9.1)', `${P}&subscriptionRuleType=HSS&Organization.identifier=E92000001&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria (subscriptionRuleType)'],
    ['COUNTRYCODE with a non-country code', `${P}&subscriptionRuleType=COUNTRYCODE&Organization.identifier=X2458&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria (Organization.identifier)'],
    ['organisation code too long', `${P}&subscriptionRuleType=GP_GP_GP&Organization.identifier=A1234567890&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria (Organization.identifier)'],
    ['organisation code with punctuation', `${P}&subscriptionRuleType=GP_GP_GP&Organization.identifier=A8-3627&MessageHeader.event=pds-change-of-gp-1`, 'Subscription.criteria (Organization.identifier)'],
    ['unknown event code', `${P}&${NHS}&MessageHeader.event=pds-person-death-1`, 'Subscription.criteria (MessageHeader.event)'],
    ['legacy event code PDS002', `${P}&${NHS}&MessageHeader.event=PDS002`, 'Subscription.criteria (MessageHeader.event)'],
    ['failsafe event code (not live)', `${P}&${NHS}&MessageHeader.event=failsafe-message-gp-1`, 'Subscription.criteria (MessageHeader.event)'],
    ['duplicate event', `${EXPLICIT}&MessageHeader.event=pds-change-of-address-1`, 'Subscription.criteria (MessageHeader.event)'],
    ['duplicate serviceType', `${EXPLICIT}&serviceType=GP&serviceType=CHO`, 'Subscription.criteria (serviceType)'],
    ['unknown serviceType', `${EXPLICIT}&serviceType=PHARM`, 'Subscription.criteria (serviceType)'],
    ['age without a prefix', `${EXPLICIT}&Patient.age=14`, 'Subscription.criteria (Patient.age)'],
    ['age with an unsupported prefix', `${EXPLICIT}&Patient.age=ne14`, 'Subscription.criteria (Patient.age)'],
    ['age with a fraction', `${EXPLICIT}&Patient.age=lt1.5`, 'Subscription.criteria (Patient.age)'],
    ['age with a leading zero', `${EXPLICIT}&Patient.age=lt05`, 'Subscription.criteria (Patient.age)'],
    ['age above 150', `${EXPLICIT}&Patient.age=lt151`, 'Subscription.criteria (Patient.age)'],
    ['three age bounds', `${EXPLICIT}&Patient.age=gt5&Patient.age=lt19&Patient.age=le20`, 'Subscription.criteria (Patient.age)'],
    ['two lower bounds', `${EXPLICIT}&Patient.age=gt5&Patient.age=ge7`, 'Subscription.criteria (Patient.age)'],
    ['contradictory bounds gt19 & lt5', `${EXPLICIT}&Patient.age=gt19&Patient.age=lt5`, 'Subscription.criteria (Patient.age)'],
    ['empty range gt5 & lt6', `${EXPLICIT}&Patient.age=gt5&Patient.age=lt6`, 'Subscription.criteria (Patient.age)'],
    ['lt0 matches nobody', `${EXPLICIT}&Patient.age=lt0`, 'Subscription.criteria (Patient.age)'],
    ['gt150 matches nobody', `${EXPLICIT}&Patient.age=gt150`, 'Subscription.criteria (Patient.age)'],
    ['eq combined with another bound', `${EXPLICIT}&Patient.age=eq5&Patient.age=lt19`, 'Subscription.criteria (Patient.age)'],
    ['repeated identical age bound', `${EXPLICIT}&Patient.age=lt19&Patient.age=lt19`, 'Subscription.criteria (Patient.age)'],
    ['unknown GPRegistration', `${EXPLICIT}&GPRegistration=Any`, 'Subscription.criteria (GPRegistration)'],
    ['GPRegistration with CHO_GP_CCG', `${P}&subscriptionRuleType=CHO_GP_CCG&Organization.identifier=03J&MessageHeader.event=pds-change-of-gp-1&GPRegistration=RegisteredOnly`, 'Subscription.criteria (GPRegistration)'],
    ['GPRegistration with GP_GP_GP', `${GENERIC}&GPRegistration=RegisteredOnly`, 'Subscription.criteria (GPRegistration)'],
    ['tag of 101 characters', `${EXPLICIT}&tag=${'a'.repeat(101)}`, 'Subscription.criteria (tag)'],
    ['tag with a space', `${EXPLICIT}&tag=site%20123`, 'Subscription.criteria (tag)'],
    ['tag with a ~ (MESH separator)', `${EXPLICIT}&tag=a~~~b`, 'Subscription.criteria (tag)'],
    ['two tags', `${EXPLICIT}&tag=a&tag=b`, 'Subscription.criteria (tag)'],
    ['malformed percent-encoding', `${EXPLICIT}&tag=a%2`, 'Subscription.criteria (tag)'],
    ['percent-encoded & cannot add a component', `${EXPLICIT}&tag=a%26subscriptionRuleType%3DGP_GP_GP`, 'Subscription.criteria (tag)'],
    ['overlong criteria', `${EXPLICIT}&tag=${'a'.repeat(5000)}`, 'Subscription.criteria'],
  ];
  it.each(invalid)('%s', (_name, criteria, element) => {
    const result = parseCriteria(criteria);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.element).toBe(element);
    expect(result.problem.length).toBeGreaterThan(0);
  });

  it('never echoes the NHS number or other values in its problem text', () => {
    const result = parseCriteria(`${P}&Patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919&MessageHeader.event=pds-change-of-gp-1`);
    expect(JSON.stringify(result)).not.toContain('9434765919');
  });
});
