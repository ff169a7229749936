import { describe, expect, it } from 'vitest';
import { eventTypeByCode, eventTypeByPublishCode } from '../../src/nems/events.js';
import { createBodyStage } from '../../src/pipeline/stages/body.js';
import { createReadBodyStage } from '../../src/pipeline/stages/read-body.js';
import type { ParsedEventMessage, ParsedSubscription } from '../../src/pipeline/types.js';
import { EXPLICIT_SUBSCRIPTION, EXPLICIT_SUBSCRIPTION_JSON, EXPLICIT_SUBSCRIPTION_XML, subscriptionJson, subscriptionXml, VACCINATION_PUBLISH_XML } from '../helpers/bodies.js';
import { GP_SYSTEM } from '../fhir/example-registrations.js';
import { INVALID_NEMS_EXAMPLES, nemsExampleFiles, readNemsExample } from '../helpers/nems-examples.js';
import { bodyContext, bodyTestConfig, ScriptedSource, wire } from './body-context.js';

const config = bodyTestConfig();
const stage = createBodyStage(config);
const vaccinations = eventTypeByCode('vaccinations-1')!;
const jwtPatient = { value: '9434765919', source: 'jwt-requesting-patient' as const, element: 'JWT requesting_patient' };

describe("stage 'body': Subscription create", () => {
  it('is named body', () => {
    expect(stage.name).toBe('body');
  });

  it.each([
    ['xml', EXPLICIT_SUBSCRIPTION_XML],
    ['json', EXPLICIT_SUBSCRIPTION_JSON],
  ] as const)('accepts the example explicit subscription (%s), records it and appends its NHS number', async (format, text) => {
    const body = Buffer.from(text);
    const copy = Buffer.from(body);
    const ctx = bodyContext('create', { body, requestFormat: format, asidRegistration: GP_SYSTEM, nhsNumbers: [jwtPatient] });
    expect(wire(await stage.run(ctx))).toBe('pass');
    expect((ctx.parsed as ParsedSubscription).subscriptionType).toBe('explicit');
    expect(ctx.nhsNumbers).toEqual([jwtPatient, { value: '9912003888', source: 'subscription-criteria', element: 'Subscription.criteria (Patient.identifier)' }]);
    // The forwarded bytes are the client's bytes.
    expect(ctx.body).toBe(body);
    expect(body.equals(copy)).toBe(true);
    expect(ctx.audit['subscriptionType']).toBe('explicit');
  });

  it('defaults to XML when the mime stage gave no request format', async () => {
    const ctx = bodyContext('create', { body: Buffer.from(EXPLICIT_SUBSCRIPTION_XML), asidRegistration: GP_SYSTEM });
    expect(wire(await stage.run(ctx))).toBe('pass');
  });

  it('rejects an XML body declared as JSON → 400 BAD_REQUEST (malformed JSON, Spine Core\'s code)', async () => {
    const ctx = bodyContext('create', { body: Buffer.from(EXPLICIT_SUBSCRIPTION_XML), requestFormat: 'json', asidRegistration: GP_SYSTEM });
    expect(wire(await stage.run(ctx))).toMatchObject({ status: 400, code: 'BAD_REQUEST', diagnostics: expect.stringContaining('JSON') });
  });

  it('rejects a billion-laughs Subscription → 400 INVALID_REQUEST_MESSAGE, quickly', async () => {
    const laughs = `<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">${Array.from({ length: 9 }, (_, i) => `<!ENTITY a${i + 1} "${`&a${i === 0 ? '' : i};`.repeat(10)}">`).join('')}]><Subscription xmlns="http://hl7.org/fhir"><reason value="&a9;"/></Subscription>`;
    const ctx = bodyContext('create', { body: Buffer.from(laughs), requestFormat: 'xml', asidRegistration: GP_SYSTEM });
    const started = performance.now();
    const result = wire(await stage.run(ctx));
    expect(performance.now() - started).toBeLessThan(500);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
    expect(ctx.parsed).toBeUndefined();
    expect(ctx.nhsNumbers).toEqual([]);
  });

  it('rejects JSON with a __proto__ key → 400 INVALID_REQUEST_MESSAGE', async () => {
    const body = Buffer.from(EXPLICIT_SUBSCRIPTION_JSON.replace('{', '{"__proto__":{"admin":true},'));
    const ctx = bodyContext('create', { body, requestFormat: 'json', asidRegistration: GP_SYSTEM });
    expect(wire(await stage.run(ctx))).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
  });

  it('passes on the rule rejections of validateSubscriptionCreate (status active → 422 INVALID_RESOURCE)', async () => {
    for (const [format, text] of [
      ['xml', subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, status: 'active' })],
      ['json', subscriptionJson({ ...EXPLICIT_SUBSCRIPTION, status: 'active' })],
    ] as const) {
      const ctx = bodyContext('create', { body: Buffer.from(text), requestFormat: format, asidRegistration: GP_SYSTEM });
      expect(wire(await stage.run(ctx))).toMatchObject({ status: 422, code: 'INVALID_RESOURCE', diagnostics: expect.stringMatching(/^Subscription\.status:/) });
      expect(ctx.nhsNumbers).toEqual([]);
    }
  });

  it('fails closed when the requesting ASID was not resolved → 500 INTERNAL_SERVER_ERROR', async () => {
    const ctx = bodyContext('create', { body: Buffer.from(EXPLICIT_SUBSCRIPTION_XML), requestFormat: 'xml' });
    expect(wire(await stage.run(ctx))).toMatchObject({ status: 500, code: 'INTERNAL_SERVER_ERROR' });
  });

  it('fails closed when the body was never read → 500 INTERNAL_SERVER_ERROR', async () => {
    expect(wire(await stage.run(bodyContext('create', { asidRegistration: GP_SYSTEM })))).toMatchObject({ status: 500 });
  });
});

describe("stage 'body': event publish", () => {
  it('accepts the 8 KB vaccinations sample and appends both NHS numbers after earlier ones', async () => {
    const body = Buffer.from(VACCINATION_PUBLISH_XML);
    const ctx = bodyContext('publish', { body, requestFormat: 'xml', publishEventType: vaccinations, nhsNumbers: [jwtPatient] });
    expect(wire(await stage.run(ctx))).toBe('pass');
    const parsed = ctx.parsed as ParsedEventMessage;
    expect(parsed.kind).toBe('event');
    expect(parsed.eventType.code).toBe('vaccinations-1');
    expect(ctx.nhsNumbers.map((n) => n.source)).toEqual(['jwt-requesting-patient', 'routing-demographics', 'patient-identifier']);
    expect(ctx.body).toBe(body);
    expect(ctx.audit).toMatchObject({ eventCode: 'vaccinations-1', messageEventType: 'new' });
  });

  it('always parses publish as XML, whatever the request format says', async () => {
    const ctx = bodyContext('publish', { body: Buffer.from(VACCINATION_PUBLISH_XML), requestFormat: 'json', publishEventType: vaccinations });
    expect(wire(await stage.run(ctx))).toBe('pass');
  });

  it('rejects a publish whose InteractionID does not match the MessageHeader event → 422 INVALID_RESOURCE', async () => {
    const ctx = bodyContext('publish', { body: Buffer.from(VACCINATION_PUBLISH_XML), publishEventType: eventTypeByCode('newborn-hearing-1')! });
    expect(wire(await stage.run(ctx))).toMatchObject({ status: 422, code: 'INVALID_RESOURCE', diagnostics: expect.stringContaining('InteractionID') });
    expect(ctx.nhsNumbers).toEqual([]);
  });

  it('rejects a non-UTF-8 publish body → 400 BAD_REQUEST (malformed content)', async () => {
    const body = Buffer.concat([Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><Bundle name="'), Buffer.from([0xe9]), Buffer.from('"/>')]);
    expect(wire(await stage.run(bodyContext('publish', { body, publishEventType: vaccinations })))).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
  });

  it('rejects 10k-deep nesting → 400 INVALID_REQUEST_MESSAGE', async () => {
    const body = Buffer.from(`${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}`);
    expect(wire(await stage.run(bodyContext('publish', { body, publishEventType: vaccinations })))).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
  });

  it('fails closed when the publish event type was not resolved → 500 INTERNAL_SERVER_ERROR', async () => {
    expect(wire(await stage.run(bodyContext('publish', { body: Buffer.from(VACCINATION_PUBLISH_XML) })))).toMatchObject({ status: 500 });
  });

  it('does nothing for read and delete', async () => {
    expect(wire(await stage.run(bodyContext('read')))).toBe('pass');
    expect(wire(await stage.run(bodyContext('delete')))).toBe('pass');
  });
});

// Every IG example through each XML engine (nems.xmlParser), the default and the one kept selectable.
describe.each(['single-pass', 'fast-xml-parser'] as const)("stages 'read-body' then 'body' over every IG example (%s)", (xmlParser) => {
  const config = bodyTestConfig({ xmlParser });
  const stage = createBodyStage(config);
  const readBody = createReadBodyStage(config);
  const publishable: Record<string, string> = {
    'blood-spot-test-outcome-1': 'Bloodspottestoutcome',
    'newborn-hearing-1': 'Newbornhearing',
    'nipe-outcome-1': 'Nipeoutcome',
    'Professional-Contacts-1': 'Professionalcontacts',
    'vaccinations-1': 'Vaccinations',
  };
  const files = nemsExampleFiles();

  it.each(files)('%s', async (file) => {
    const prefix = Object.keys(publishable).find((p) => file.startsWith(p));
    // Spine-published examples are sent under the Vaccinations InteractionID: nothing they could use exists.
    const publishEventType = eventTypeByPublishCode(prefix ? publishable[prefix]! : 'Vaccinations')!;
    const bytes = readNemsExample(file);
    const ctx = bodyContext('publish', { source: new ScriptedSource(bytes), publishEventType });
    expect(wire(await readBody.run(ctx))).toBe('pass');
    const result = wire(await stage.run(ctx));
    if (INVALID_NEMS_EXAMPLES[file]) {
      // The IG example's own mistake (see INVALID_NEMS_EXAMPLES), refused naming the element.
      expect(result).toMatchObject({ status: 422, code: 'INVALID_RESOURCE', diagnostics: expect.stringMatching(`^${INVALID_NEMS_EXAMPLES[file]}:`) });
    } else if (prefix) {
      expect(result).toBe('pass');
      expect(ctx.nhsNumbers.length).toBeGreaterThan(0);
    } else {
      expect(result).toMatchObject({ status: 422, code: 'INVALID_RESOURCE' });
      expect(ctx.nhsNumbers).toEqual([]);
    }
    expect(ctx.body!.equals(bytes)).toBe(true);
  });
});

describe('body stage: which code a refused body gets (Spine Core: BAD_REQUEST for malformed XML or JSON content)', () => {
  const create = async (text: string, format: 'xml' | 'json') =>
    wire(await stage.run(bodyContext('create', { body: Buffer.from(text), requestFormat: format, asidRegistration: GP_SYSTEM })));

  it.each([
    ['XML that is not well formed', '<Subscription xmlns="http://hl7.org/fhir"><status value="requested"></Subscription>', 'xml'],
    ['JSON with a syntax error', '{"resourceType": "Subscription",}', 'json'],
    ['JSON that is not JSON at all', 'resourceType=Subscription', 'json'],
  ] as const)('%s → 400 BAD_REQUEST', async (_name, text, format) => {
    expect(await create(text, format)).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
  });

  it.each([
    ['a DOCTYPE', '<!DOCTYPE x [<!ENTITY a "b">]><Subscription xmlns="http://hl7.org/fhir"/>', 'xml'],
    ['a processing instruction', '<?xml-stylesheet href="x"?><Subscription xmlns="http://hl7.org/fhir"/>', 'xml'],
    ['a duplicate JSON key', '{"resourceType": "Subscription", "status": "requested", "status": "active"}', 'json'],
  ] as const)('well-formed content with %s → 400 INVALID_REQUEST_MESSAGE (refused as unsafe, not malformed)', async (_name, text, format) => {
    expect(await create(text, format)).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
  });

  it('publish: XML that is not well formed → 400 BAD_REQUEST', async () => {
    const result = wire(await stage.run(bodyContext('publish', { body: Buffer.from('<Bundle xmlns="http://hl7.org/fhir"><type value="message"/>'), publishEventType: vaccinations })));
    expect(result).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
  });
});

describe.each(['single-pass', 'fast-xml-parser'] as const)("stage 'body' with nems.xmlParser %s", (xmlParser) => {
  const engineStage = createBodyStage(bodyTestConfig({ xmlParser }));

  it('accepts the 8 KB vaccinations publish', async () => {
    const ctx = bodyContext('publish', { body: Buffer.from(VACCINATION_PUBLISH_XML), publishEventType: vaccinations });
    expect(wire(await engineStage.run(ctx))).toBe('pass');
  });

  it.each([
    ['a DOCTYPE', '<?xml version="1.0"?><!DOCTYPE Bundle [<!ENTITY x "y">]><Bundle xmlns="http://hl7.org/fhir">&x;</Bundle>'],
    ['65 levels of nesting', `${'<a>'.repeat(64)}<b/>${'</a>'.repeat(64)}`],
    ['an undefined entity', '<Bundle xmlns="http://hl7.org/fhir"><type value="&nbsp;"/></Bundle>'],
  ])('refuses %s → 400 INVALID_REQUEST_MESSAGE', async (_what, xml) => {
    expect(wire(await engineStage.run(bodyContext('publish', { body: Buffer.from(xml), publishEventType: vaccinations })))).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
  });
});
