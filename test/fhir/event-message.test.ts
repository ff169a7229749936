import { describe, expect, it } from 'vitest';
import { SPINE_CODES } from '../../src/fhir/errors.js';
import { collectEventNhsNumbers, validateEventMessage, type EventMessageResult } from '../../src/fhir/event-message.js';
import { eventTypeByCode, eventTypeByPublishCode, type NemsEventType } from '../../src/nems/events.js';
import { nhsNumberProblem } from '../../src/nems/nhs-number.js';
import { parseFhirXml, type XmlElement } from '../../src/fhir/xml.js';
import { VACCINATION_PUBLISH_XML, vaccinationPublishXml } from '../helpers/bodies.js';
import { INVALID_NEMS_EXAMPLES, nemsExampleFiles, readNemsExample } from '../helpers/nems-examples.js';

const PUBLISH_CAP = 3 * 1024 * 1024;

function tree(xml: string | Buffer): XmlElement {
  const result = parseFhirXml(typeof xml === 'string' ? Buffer.from(xml) : xml, PUBLISH_CAP);
  if (!result.ok) throw new Error(`fixture did not parse: ${result.detail}`);
  return result.root;
}

function publishEvent(interactionCode: string): NemsEventType {
  const event = eventTypeByPublishCode(interactionCode);
  if (!event) throw new Error(`unknown publish interaction code ${interactionCode}`);
  return event;
}

function outcome(result: EventMessageResult): string {
  return result.ok ? 'valid' : `${SPINE_CODES[result.rejection.code].status} ${result.rejection.code}`;
}

/**
 * Every IG example, with the InteractionID event code it is published under, what the body stage decides, the NHS
 * numbers it carries, and the outcome end to end (after the nhs-numbers stage checks modulus 11 and PDS, with
 * the fixture numbers traced). Spine-published events never reach the nhs-numbers stage.
 */
const FIXTURE_TABLE: {
  file: string;
  interaction: string;
  body: string;
  numbers: string[];
  endToEnd: string;
}[] = [
  { file: 'blood-spot-test-outcome-1-new.xml', interaction: 'Bloodspottestoutcome', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted' },
  { file: 'blood-spot-test-outcome-1-delete.xml', interaction: 'Bloodspottestoutcome', body: 'valid', numbers: ['9912003888'], endToEnd: '202 accepted (minimal delete: routing NHS number only)' },
  { file: 'newborn-hearing-1-new.xml', interaction: 'Newbornhearing', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted' },
  { file: 'newborn-hearing-1-update.xml', interaction: 'Newbornhearing', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted (screening update sent as new)' },
  // The IG's own example carries MessageHeader.timestamp …+58:00, an offset beyond ±14:00 (fhir.datetime-format).
  { file: 'nipe-outcome-1-update.xml', interaction: 'Nipeoutcome', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '9912003888'], endToEnd: '422 INVALID_RESOURCE (MessageHeader.timestamp +58:00)' },
  { file: 'nipe-outcome-1-delete.xml', interaction: 'Nipeoutcome', body: 'valid', numbers: ['9912003888'], endToEnd: '202 accepted' },
  { file: 'Professional-Contacts-1-new.xml', interaction: 'Professionalcontacts', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted' },
  { file: 'Professional-Contacts-1-update.xml', interaction: 'Professionalcontacts', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted' },
  { file: 'vaccinations-1-new.xml', interaction: 'Vaccinations', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted' },
  { file: 'vaccinations-1-notgiven-new.xml', interaction: 'Vaccinations', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted' },
  { file: 'vaccinations-1-delete.xml', interaction: 'Vaccinations', body: 'valid', numbers: ['9912003888', '9912003888'], endToEnd: '202 accepted' },
  // Spine publishes these (docs/specification.md §2.4); the Publication API refuses them whatever InteractionID they come under.
  { file: 'BirthNotificationWithMother.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['1112223330', '1112223330', '9912003888'], endToEnd: '422 INVALID_RESOURCE (mother 1112223330 also fails modulus 11)' },
  { file: 'BirthNotificationWithoutMother.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['5900005879'], endToEnd: '422 INVALID_RESOURCE' },
  { file: 'PDS-Change-Of-Address-ems-example.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '9912003888'], endToEnd: '422 INVALID_RESOURCE' },
  { file: 'PDS-Change-Of-GP-ems-example.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '9912003888'], endToEnd: '422 INVALID_RESOURCE' },
  { file: 'PDS-Death-Notification-formal-ems-example.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '6101231234'], endToEnd: '422 INVALID_RESOURCE (focus 6101231234 also fails modulus 11)' },
  { file: 'PDS-Death-Notification-informal-ems-example.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '6101231234'], endToEnd: '422 INVALID_RESOURCE (focus 6101231234 also fails modulus 11)' },
  { file: 'PDS-Death-Notification-removed-ems-example.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '6101231234'], endToEnd: '422 INVALID_RESOURCE (focus 6101231234 also fails modulus 11)' },
  { file: 'PDS-Record-Change.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '9912003888'], endToEnd: '422 INVALID_RESOURCE' },
  { file: 'PDS-Record-Change-Citizen.xml', interaction: 'Vaccinations', body: '422 INVALID_RESOURCE', numbers: ['9912003888', '9912003888'], endToEnd: '422 INVALID_RESOURCE' },
];

describe('IG example event messages through publish validation (outcome stated per file)', () => {
  it.each(FIXTURE_TABLE)('$file under $interaction.Write → body stage: $body; end to end: $endToEnd', (row) => {
    const root = tree(readNemsExample(row.file));
    const result = validateEventMessage(root, publishEvent(row.interaction));
    expect(outcome(result)).toBe(row.body);
    // Extraction is independent of the other rules: invalid modulus-11 numbers are found even where the
    // message fails for another reason, so no fixture number escapes the nhs-numbers stage by accident.
    expect(collectEventNhsNumbers(root).map((n) => n.value)).toEqual(row.numbers);
    if (result.ok) {
      // The same references; the routing one also carries the name and birth date checked against PDS.
      expect(result.nhsNumbers.map(({ demographics: _d, ...ref }) => ref)).toEqual(collectEventNhsNumbers(root));
      expect(result.nhsNumbers[0]!.source).toBe('routing-demographics');
      expect(result.nhsNumbers.slice(1).every((n) => n.source === 'patient-identifier')).toBe(true);
      // Valid fixtures carry only numbers that pass modulus 11, so the nhs-numbers stage then only traces them.
      expect(result.nhsNumbers.every((n) => nhsNumberProblem(n.value) === undefined)).toBe(true);
    } else if (INVALID_NEMS_EXAMPLES[row.file]) {
      expect(result.rejection.diagnostics.startsWith(`${INVALID_NEMS_EXAMPLES[row.file]}:`)).toBe(true);
    } else {
      expect(result.rejection.diagnostics).toMatch(/^Bundle\.entry\[0\]\.resource\.MessageHeader\.event\.code:/);
    }
  });

  it('refuses the official nipe-outcome-1-update example for its MessageHeader.timestamp offset +58:00, naming the element; the same message with +00:00 is valid', () => {
    const bytes = readNemsExample('nipe-outcome-1-update.xml').toString('utf8');
    expect(bytes).toContain('<timestamp value="2017-11-01T16:02:04+58:00"/>');
    const refused = validateEventMessage(tree(bytes), publishEvent('Nipeoutcome'));
    expect(outcome(refused)).toBe('422 INVALID_RESOURCE');
    expect(!refused.ok && refused.rejection.diagnostics).toMatch(/^Bundle\.entry\.resource\.MessageHeader\.timestamp: must be a FHIR instant .*±?14:00/);
    const corrected = validateEventMessage(tree(bytes.replace('+58:00', '+00:00')), publishEvent('Nipeoutcome'));
    expect(outcome(corrected)).toBe('valid');
  });

  it('covers every fixture in the folder', () => {
    const files = nemsExampleFiles();
    expect(FIXTURE_TABLE.map((r) => r.file).sort()).toEqual(files);
  });

  it('names the invalid modulus-11 numbers the fixtures carry', () => {
    expect(nhsNumberProblem('1112223330')).toBe('check-digit');
    expect(nhsNumberProblem('6101231234')).toBe('check-digit');
    expect(nhsNumberProblem('9912003888')).toBeUndefined();
    expect(nhsNumberProblem('5900005879')).toBeUndefined();
  });

  it('rejects a valid vaccinations fixture sent under the Newbornhearing InteractionID → 422 INVALID_RESOURCE', () => {
    const root = tree(readNemsExample('vaccinations-1-new.xml'));
    const result = validateEventMessage(root, publishEvent('Newbornhearing'));
    expect(outcome(result)).toBe('422 INVALID_RESOURCE');
    expect(!result.ok && result.rejection.diagnostics).toContain('InteractionID');
  });
});

describe('publish validation of the 8 KB vaccinations sample', () => {
  const vaccinations = eventTypeByCode('vaccinations-1')!;

  it('accepts it and extracts routing and Patient NHS numbers with their element paths', () => {
    const result = validateEventMessage(tree(VACCINATION_PUBLISH_XML), vaccinations);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event).toMatchObject({ kind: 'event', messageEventType: 'new', messageId: '85c8a1c5-a8a1-41c9-bb99-20956fa66218' });
    expect(result.event.eventType.code).toBe('vaccinations-1');
    expect(result.nhsNumbers).toEqual([
      {
        value: '9912003888',
        source: 'routing-demographics',
        element: 'Bundle.entry[0].resource.MessageHeader.extension(routingDemographics).extension(nhsNumber).valueIdentifier.value',
        demographics: {
          element: 'Bundle.entry[0].resource.MessageHeader.extension(routingDemographics)',
          family: 'DAWKINS',
          given: ['Jack'],
          birthDateTime: '2017-10-02T12:00:00+00:00',
        },
      },
      { value: '9912003888', source: 'patient-identifier', element: 'Bundle.entry[3].resource.Patient.identifier[0].value' },
    ]);
  });

  it('passes a routing number failing modulus 11 on to the nhs-numbers stage (which answers 400 INVALID_NHS_NUMBER)', () => {
    const result = validateEventMessage(tree(vaccinationPublishXml({ nhsNumber: '6101231234' })), vaccinations);
    expect(result.ok && result.nhsNumbers.map((n) => n.value)).toEqual(['6101231234', '6101231234']);
  });

  it('extracts a Patient number that differs from the routing number', () => {
    const result = validateEventMessage(tree(vaccinationPublishXml({ patientNhsNumber: '9000000009' })), vaccinations);
    expect(result.ok && result.nhsNumbers.map((n) => `${n.source}:${n.value}`)).toEqual(['routing-demographics:9912003888', 'patient-identifier:9000000009']);
  });

  it('accepts update and delete for vaccinations', () => {
    expect(outcome(validateEventMessage(tree(vaccinationPublishXml({ messageEventType: 'update' })), vaccinations))).toBe('valid');
    expect(outcome(validateEventMessage(tree(vaccinationPublishXml({ messageEventType: 'delete' })), vaccinations))).toBe('valid');
  });

  it('allows a minimal delete (no routing name or birthDateTime) for screening events only (docs/specification.md §2.5)', () => {
    const minimal = (xml: string) => xml.replace(/<extension url="name">[\s\S]*?<\/extension>\s*<extension url="birthDateTime">[\s\S]*?<\/extension>/, '');
    const vaccinationDelete = minimal(vaccinationPublishXml({ messageEventType: 'delete' }));
    expect(vaccinationDelete).not.toContain('birthDateTime');
    expect(outcome(validateEventMessage(tree(vaccinationDelete), vaccinations))).toBe('422 INVALID_RESOURCE');
    const bloodSpot = eventTypeByCode('blood-spot-test-outcome-1')!;
    const bloodSpotDelete = minimal(vaccinationPublishXml({ eventCode: 'blood-spot-test-outcome-1', messageEventType: 'delete' }));
    expect(outcome(validateEventMessage(tree(bloodSpotDelete), bloodSpot))).toBe('valid');
  });
});

describe('publish validation rejects, naming the element (422 INVALID_RESOURCE)', () => {
  const vaccinations = eventTypeByCode('vaccinations-1')!;
  const base = VACCINATION_PUBLISH_XML;
  const H = 'Bundle.entry[0].resource.MessageHeader';
  const cases: [string, string, NemsEventType, string][] = [
    ['a root that is not Bundle', base.replace(/<(\/?)Bundle/g, '<$1Parameters'), vaccinations, 'Bundle'],
    ['a Bundle outside the FHIR namespace', base.replace(' xmlns="http://hl7.org/fhir"', ''), vaccinations, 'Bundle'],
    ['Bundle.type document', base.replace('<type value="message"/>', '<type value="document"/>'), vaccinations, 'Bundle.type'],
    ['a repeated Bundle.type', base.replace('<type value="message"/>', '<type value="message"/><type value="message"/>'), vaccinations, 'Bundle.type'],
    ['no entries', '<Bundle xmlns="http://hl7.org/fhir"><type value="message"/></Bundle>', vaccinations, 'Bundle.entry'],
    ['an entry with two resources', base.replace('<Immunization>', '<Basic/><Immunization>'), vaccinations, 'Bundle.entry[1].resource'],
    ['a first entry that is not the MessageHeader', base.replace(/<(\/?)MessageHeader>/g, '<$1Basic>'), vaccinations, 'Bundle.entry[0].resource'],
    ['a second MessageHeader', base.replace(/<(\/?)Encounter>/g, '<$1MessageHeader>'), vaccinations, 'Bundle.entry[4].resource'],
    ['no MessageHeader.id', base.replace('<id value="85c8a1c5-a8a1-41c9-bb99-20956fa66218"/>', ''), vaccinations, `${H}.id`],
    ['a MessageHeader.id that is not a UUID', base.replace('<id value="85c8a1c5-a8a1-41c9-bb99-20956fa66218"/>', '<id value="message-1"/>'), vaccinations, `${H}.id`],
    ['no MessageHeader.source', base.replace(/<source>[\s\S]*?<\/source>/, ''), vaccinations, `${H}.source`],
    ['no MessageHeader.responsible', base.replace(/<responsible>[\s\S]*?<\/responsible>/, ''), vaccinations, `${H}.responsible`],
    ['no MessageHeader.focus', base.replace(/<focus>[\s\S]*?<\/focus>/, ''), vaccinations, `${H}.focus`],
    ['two MessageHeader.focus', base.replace(/(<focus>[\s\S]*?<\/focus>)/, '$1$1'), vaccinations, `${H}.focus`],
    ['a MessageHeader.timestamp without a timezone', base.replace('<timestamp value="2017-02-14T15:00:00+00:00"/>', '<timestamp value="2017-02-14T15:00:00"/>'), vaccinations, 'Bundle.entry.resource.MessageHeader.timestamp'],
    ['a meta.lastUpdated without a timezone', base.replace('2017-11-01T15:00:33+00:00', '2017-11-01T15:00:33.123'), vaccinations, 'Bundle.entry.resource.MessageHeader.meta.lastUpdated'],
    ['an Immunization.date without a timezone', base.replace('<date value="2017-02-14T12:00:00+00:00"/>', '<date value="2017-02-14T12:00:00"/>'), vaccinations, 'Bundle.entry.resource.Immunization.date'],
    // fhir.datetime-format: the STU3 expressions and the calendar, for every date in the Bundle.
    ['a MessageHeader.timestamp offset of +14:30', base.replace('2017-02-14T15:00:00+00:00', '2017-02-14T15:00:00+14:30'), vaccinations, 'Bundle.entry.resource.MessageHeader.timestamp'],
    ['a MessageHeader.timestamp offset of +58:00', base.replace('2017-02-14T15:00:00+00:00', '2017-02-14T15:00:00+58:00'), vaccinations, 'Bundle.entry.resource.MessageHeader.timestamp'],
    ['a MessageHeader.timestamp without seconds', base.replace('2017-02-14T15:00:00+00:00', '2017-02-14T15:00+00:00'), vaccinations, 'Bundle.entry.resource.MessageHeader.timestamp'],
    ['a MessageHeader.timestamp that is only a date (an instant needs a time)', base.replace('2017-02-14T15:00:00+00:00', '2017-02-14'), vaccinations, 'Bundle.entry.resource.MessageHeader.timestamp'],
    ['an Immunization.date on 30 February', base.replace('<date value="2017-02-14T12:00:00+00:00"/>', '<date value="2017-02-30"/>'), vaccinations, 'Bundle.entry.resource.Immunization.date'],
    ['an Immunization.date on 29 February of a common year', base.replace('<date value="2017-02-14T12:00:00+00:00"/>', '<date value="2019-02-29T12:00:00Z"/>'), vaccinations, 'Bundle.entry.resource.Immunization.date'],
    ['an Immunization.date in month 13', base.replace('<date value="2017-02-14T12:00:00+00:00"/>', '<date value="2017-13"/>'), vaccinations, 'Bundle.entry.resource.Immunization.date'],
    ['a meta.lastUpdated at hour 24', base.replace('2017-11-01T15:00:33+00:00', '2017-11-01T24:00:00+00:00'), vaccinations, 'Bundle.entry.resource.MessageHeader.meta.lastUpdated'],
    ['a routing birthDateTime on 31 April', base.replace('2017-10-02T12:00:00+00:00', '2017-04-31'), vaccinations, `${H}.extension(routingDemographics).extension(birthDateTime).valueDateTime`],
    ['a routing birthDateTime offset of -15:00', base.replace('2017-10-02T12:00:00+00:00', '2017-10-02T12:00:00-15:00'), vaccinations, `${H}.extension(routingDemographics).extension(birthDateTime).valueDateTime`],
    ['an event from another code system', base.replace('https://fhir.nhs.uk/STU3/CodeSystem/EventType-1', 'https://fhir.nhs.uk/STU3/CodeSystem/EMS-EventType-1'), vaccinations, `${H}.event.system`],
    ['the legacy event code PDS002', vaccinationPublishXml({ eventCode: 'PDS002' }), vaccinations, `${H}.event.code`],
    ['an unknown event code', vaccinationPublishXml({ eventCode: 'vaccinations-2' }), vaccinations, `${H}.event.code`],
    ['a Spine-published event (pds-change-of-address-1)', vaccinationPublishXml({ eventCode: 'pds-change-of-address-1' }), vaccinations, `${H}.event.code`],
    ['an event that differs from the InteractionID', VACCINATION_PUBLISH_XML, eventTypeByCode('nipe-outcome-1')!, `${H}.event.code`],
    ['a messageEventType not allowed for the event (update for blood spot)', vaccinationPublishXml({ eventCode: 'blood-spot-test-outcome-1', messageEventType: 'update' }), eventTypeByCode('blood-spot-test-outcome-1')!, `${H}.extension(messageEventType)`],
    ['an unknown messageEventType', vaccinationPublishXml({ messageEventType: 'amend' }), vaccinations, `${H}.extension(messageEventType).valueCodeableConcept.coding.code`],
    ['no messageEventType extension', base.replace('Extension-MessageEventType-1', 'Extension-Other-1'), vaccinations, `${H}.extension(messageEventType)`],
    ['the legacy EMS-MessageEventType-1 system', base.replace('CodeSystem/MessageEventType-1', 'CodeSystem/EMS-MessageEventType-1'), vaccinations, `${H}.extension(messageEventType).valueCodeableConcept.coding`],
    ['no routing demographics', base.replace('Extension-RoutingDemographics-1', 'Extension-Other-2'), vaccinations, `${H}.extension(routingDemographics)`],
    ['a routing NHS number with another system', base.replace('<system value="https://fhir.nhs.uk/Id/nhs-number"/>', '<system value="http://fhir.nhs.net/Id/nhs-number"/>'), vaccinations, `${H}.extension(routingDemographics).extension(nhsNumber).valueIdentifier.system`],
    ['a routing NHS number without a value', base.replace('<value value="9912003888"/>', ''), vaccinations, `${H}.extension(routingDemographics).extension(nhsNumber).valueIdentifier.value`],
    ['no routing name', base.replace('<extension url="name">', '<extension url="nickname">'), vaccinations, `${H}.extension(routingDemographics).extension(name)`],
    ['a routing name that is not official', base.replace('<use value="official"/>', '<use value="nickname"/>'), vaccinations, `${H}.extension(routingDemographics).extension(name).valueHumanName.use`],
    ['no routing birthDateTime', base.replace('<extension url="birthDateTime">', '<extension url="birthDate">'), vaccinations, `${H}.extension(routingDemographics).extension(birthDateTime)`],
    ['a routing birthDateTime without a timezone', base.replace('2017-10-02T12:00:00+00:00', '2017-10-02T12:00:00'), vaccinations, `${H}.extension(routingDemographics).extension(birthDateTime).valueDateTime`],
    ['a Patient NHS-number identifier without a value', base.replace('<value value="9912003888"/>\n        </identifier>', '</identifier>'), vaccinations, 'Bundle.entry[3].resource.Patient.identifier[0].value'],
  ];
  it.each(cases)('%s', (_name, xml, event, element) => {
    const result = validateEventMessage(tree(xml), event);
    expect(outcome(result)).toBe('422 INVALID_RESOURCE');
    expect(!result.ok && result.rejection.diagnostics.startsWith(`${element}:`)).toBe(true);
    expect(!result.ok && result.rejection.diagnostics).not.toContain('9912003888');
  });

  it('sanity: the Patient-identifier case above really removes only the Patient value', () => {
    const xml = base.replace('<value value="9912003888"/>\n        </identifier>', '</identifier>');
    expect(xml).not.toBe(base);
    expect(xml).toContain('<value value="9912003888"/>');
  });

  it('collects NHS numbers from a Patient contained in another resource', () => {
    const contained =
      '<contained><Patient><identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9000000009"/></identifier></Patient></contained>';
    const xml = base.replace('<Immunization>\n        <id value="076db265-8799-4dda-9418-e2a4d6d1c0d0"/>', `<Immunization>\n        <id value="076db265-8799-4dda-9418-e2a4d6d1c0d0"/>${contained}`);
    const result = validateEventMessage(tree(xml), vaccinations);
    expect(result.ok && result.nhsNumbers.find((n) => n.value === '9000000009')?.element).toBe('Bundle.entry[1].resource.Immunization.contained[0].Patient.identifier[0].value');
  });

  it('finds an NHS number behind a decoy first system element', () => {
    const xml = base.replace(
      '<system value="https://fhir.nhs.uk/Id/nhs-number"/>\n          <value value="9912003888"/>\n        </identifier>',
      '<system value="https://example.org/decoy"/><system value="https://fhir.nhs.uk/Id/nhs-number"/>\n          <value value="9000000009"/>\n        </identifier>',
    );
    expect(xml).not.toBe(base);
    const result = validateEventMessage(tree(xml), vaccinations);
    expect(result.ok && result.nhsNumbers.map((n) => n.value)).toContain('9000000009');
  });

  it('refuses a message carrying more NHS numbers than the cap (bounding PDS work)', () => {
    const patient = '<entry><resource><Patient><identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9000000009"/></identifier></Patient></resource></entry>';
    const xml = base.replace('</Bundle>', `${patient.repeat(40)}</Bundle>`);
    const result = validateEventMessage(tree(xml), vaccinations);
    expect(outcome(result)).toBe('422 INVALID_RESOURCE');
    expect(!result.ok && result.rejection.diagnostics).toMatch(/^Bundle:/);
    expect(outcome(validateEventMessage(tree(xml), vaccinations, { maxNhsNumbers: 64 }))).toBe('valid');
  });
});
