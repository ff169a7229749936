// Every NEMS example event (test/fixtures/nems-examples) published through real mTLS by child-health, with the
// outcome stated per file; then the NHS-number and PDS outcomes on the publish path. Nothing that is rejected, and
// nothing carrying an unverified NHS number, reaches the upstream.
import { describe, expect, it } from 'vitest';
import { readNemsExample } from '../helpers/nems-examples.js';
import { send, spineCodeOf, useTestGateway } from '../helpers/e2e.js';
import { explicitCriteria, EXPLICIT_SUBSCRIPTION, subscriptionXml } from '../helpers/bodies.js';
import { nemsHeaders } from '../helpers/nems-requests.js';

const PUBLISH = '/STU3/Events/1/$process-message';

/** Publish interaction code used for each file, and what the gateway must do with it. */
const FIXTURES: readonly { file: string; code: string; expect: 'forwarded' | { status: number; code: string } }[] = [
  { file: 'blood-spot-test-outcome-1-new.xml', code: 'Bloodspottestoutcome', expect: 'forwarded' },
  { file: 'blood-spot-test-outcome-1-delete.xml', code: 'Bloodspottestoutcome', expect: 'forwarded' },
  { file: 'newborn-hearing-1-new.xml', code: 'Newbornhearing', expect: 'forwarded' },
  { file: 'newborn-hearing-1-update.xml', code: 'Newbornhearing', expect: 'forwarded' },
  // The IG example's timestamp offset +58:00 breaks FHIR (fhir.datetime-format): refused naming the element.
  { file: 'nipe-outcome-1-update.xml', code: 'Nipeoutcome', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'nipe-outcome-1-delete.xml', code: 'Nipeoutcome', expect: 'forwarded' },
  { file: 'Professional-Contacts-1-new.xml', code: 'Professionalcontacts', expect: 'forwarded' },
  { file: 'Professional-Contacts-1-update.xml', code: 'Professionalcontacts', expect: 'forwarded' },
  { file: 'vaccinations-1-new.xml', code: 'Vaccinations', expect: 'forwarded' },
  { file: 'vaccinations-1-notgiven-new.xml', code: 'Vaccinations', expect: 'forwarded' },
  { file: 'vaccinations-1-delete.xml', code: 'Vaccinations', expect: 'forwarded' },
  // Events Spine itself publishes are not publishable through the API (docs/specification.md §2.4).
  { file: 'BirthNotificationWithMother.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'BirthNotificationWithoutMother.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'PDS-Change-Of-Address-ems-example.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'PDS-Change-Of-GP-ems-example.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'PDS-Death-Notification-formal-ems-example.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'PDS-Death-Notification-informal-ems-example.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'PDS-Death-Notification-removed-ems-example.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'PDS-Record-Change.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  { file: 'PDS-Record-Change-Citizen.xml', code: 'Vaccinations', expect: { status: 422, code: 'INVALID_RESOURCE' } },
  // The InteractionID must name the event the MessageHeader carries.
  { file: 'vaccinations-1-new.xml', code: 'Professionalcontacts', expect: { status: 422, code: 'INVALID_RESOURCE' } },
];

const { pki, upstream, app } = useTestGateway();

async function publish(body: Buffer, code = 'Vaccinations') {
  await upstream.reset();
  const res = await send(pki, app.gateway.port, {
    client: 'child-health', method: 'POST', path: PUBLISH, body,
    headers: nemsHeaders('child-health', 'publish', { publishCode: code, contentType: 'application/fhir+xml' }),
  });
  return { res, stats: await upstream.stats() };
}

describe('NEMS example events published through the gateway', () => {
  it.each(FIXTURES.map((f) => [`${f.file} as ${f.code}`, f] as const))('%s', async (_name, f) => {
    const body = readNemsExample(f.file);
    const { res, stats } = await publish(body, f.code);
    if (f.expect === 'forwarded') {
      expect(stats.count).toBe(1);
      expect(Buffer.from(stats.received[0]!.body, 'base64').equals(body)).toBe(true);
    } else {
      expect({ status: res.status, code: spineCodeOf(res.text) }).toEqual(f.expect);
      expect(stats.count).toBe(0);
    }
  });

  it('names the element when it refuses the official nipe-outcome-1-update example (timestamp +58:00)', async () => {
    const { res, stats } = await publish(readNemsExample('nipe-outcome-1-update.xml'), 'Nipeoutcome');
    expect(res.status).toBe(422);
    expect(res.text).toContain('<diagnostics value="Bundle.entry.resource.MessageHeader.timestamp: must be a FHIR instant');
    expect(stats.count).toBe(0);
  });
});

describe('NHS numbers on the publish path', () => {
  const vaccination = readNemsExample('vaccinations-1-new.xml').toString('utf8');
  const withNhsNumber = (n: string) => Buffer.from(vaccination.replaceAll('9912003888', n));

  it.each([
    ['fails modulus 11', '9912003880', 400, 'INVALID_NHS_NUMBER'],
    ['is not 10 digits', '991200388', 400, 'INVALID_NHS_NUMBER'],
    ['is one repeated digit', '0000000000', 400, 'INVALID_NHS_NUMBER'],
    ['is not known to PDS', '9111231130', 404, 'PATIENT_NOT_FOUND'],
    ['has been superseded', '9990000018', 400, 'INVALID_NHS_NUMBER'],
    ['has been invalidated', '9990000034', 400, 'INVALID_NHS_NUMBER'],
    ['belongs to a restricted (S-flag) patient', '9000000025', 403, 'NO_PATIENT_CONSENT'],
  ] as const)('rejects an event whose NHS number %s (%i %s) and forwards nothing', async (_name, nhsNumber, status, code) => {
    const { res, stats } = await publish(withNhsNumber(nhsNumber));
    expect({ status: res.status, code: spineCodeOf(res.text) }).toEqual({ status, code });
    expect(res.text).not.toContain(nhsNumber);
    expect(stats.count).toBe(0);
  });

  it('forwards an event for another traced patient', async () => {
    const { stats } = await publish(withNhsNumber('9434765919'));
    expect(stats.count).toBe(1);
  });
});

describe('NHS numbers on the subscription create path', () => {
  it.each([
    ['fails modulus 11', '9912003880', 400, 'INVALID_NHS_NUMBER'],
    ['is not 10 digits', '991200388', 400, 'INVALID_NHS_NUMBER'],
    ['has spaces', '991 200 3888', 400, 'INVALID_NHS_NUMBER'],
    ['is not known to PDS', '9111231130', 404, 'PATIENT_NOT_FOUND'],
  ] as const)('rejects a subscription whose criteria NHS number %s (%i %s) and forwards nothing', async (_name, nhsNumber, status, code) => {
    await upstream.reset();
    const res = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription',
      body: Buffer.from(subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria: explicitCriteria(nhsNumber) })),
      headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
    });
    expect({ status: res.status, code: spineCodeOf(res.text) }).toEqual({ status, code });
    expect((await upstream.stats()).count).toBe(0);
  });
});

describe('routing demographics against the PDS record on the publish path (docs/specification.md §6.1, §2.10.4)', () => {
  const vaccination = readNemsExample('vaccinations-1-new.xml').toString('utf8');
  // config/pds-local.yaml: 9912003888 is DAWKINS, Jack (no birth date: the examples disagree on it);
  // 9000000009 is Smith, Jane, born 2010-10-22.
  const asJaneSmith = (family: string, birth: string) =>
    vaccination.replaceAll('9912003888', '9000000009').replace('<family value="DAWKINS"/>', `<family value="${family}"/>`)
      .replace('<given value="Jack"/>', '<given value="Jane"/>').replace('2017-10-02T12:00:00+00:00', birth);

  it.each([
    ['the family name differs', vaccination.replace('<family value="DAWKINS"/>', '<family value="JONES"/>')],
    ['the given name differs', vaccination.replace('<given value="Jack"/>', '<given value="John"/>')],
    ['the birth date differs', asJaneSmith('SMITH', '2010-10-23T00:00:00+00:00')],
  ])('rejects an event where %s with 400 INVALID_PATIENT_DEMOGRAPHICS and forwards nothing', async (_name, body) => {
    const { res, stats } = await publish(Buffer.from(body));
    expect({ status: res.status, code: spineCodeOf(res.text) }).toEqual({ status: 400, code: 'INVALID_PATIENT_DEMOGRAPHICS' });
    expect(res.text).not.toMatch(/JONES|John|DAWKINS|Smith|2010-10/i);
    expect(stats.count).toBe(0);
  });

  it('forwards an event whose demographics match, in any letter case', async () => {
    const { res, stats } = await publish(Buffer.from(asJaneSmith('SMITH', '2010-10-22T08:00:00+01:00')));
    expect(res.status).toBe(201); // the counting upstream's answer, relayed
    expect(stats.count).toBe(1);
  });
});
