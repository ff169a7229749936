import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NemsCore } from '../../src/nems-core/core.js';
import { listMailbox } from '../../src/nems-core/outbox.js';
import {
  BASE_URL, CHO, createRequest, deleteRequest, explicitCriteria, firstCode, fixture, GP, idFromLocation, openCore,
  outcomeCodes, publishRequest, readRequest, subscribe, subscriptionJson, subscriptionXml, tempDataDir, vaccinationEvent,
} from './helpers.js';

let dataDir: { dir: string; cleanup: () => void };
let core: NemsCore;

beforeEach(() => {
  dataDir = tempDataDir();
  core = openCore(dataDir.dir);
});

afterEach(async () => {
  await core.close();
  dataDir.cleanup();
});

describe('Subscription create', () => {
  it('stores an XML subscription and answers 201 with Location (32-hex id), ETag W/"1" and Last-Modified, no body', async () => {
    const response = await core.handle(createRequest(GP, subscriptionXml()));
    expect(response.status).toBe(201);
    expect(response.headers['location']).toMatch(new RegExp(`^${BASE_URL.replace(/\./g, '\\.')}/Subscription/[0-9a-f]{32}$`));
    expect(response.headers['etag']).toBe('W/"1"');
    expect(Date.parse(response.headers['last-modified']!)).not.toBeNaN();
    expect(response.body).toBeUndefined();
  });

  it('stores a JSON subscription (application/fhir+json) and answers 201', async () => {
    const response = await core.handle(createRequest(GP, subscriptionJson(), 'application/fhir+json'));
    expect(response.status).toBe(201);
    const read = await core.handle(readRequest(GP, idFromLocation(response), 'application/fhir+json'));
    expect(JSON.parse(read.body!.toString())).toMatchObject({ resourceType: 'Subscription', status: 'active', channel: { endpoint: GP.mailbox } });
  });

  it('gives every subscription a fresh logical id', async () => {
    const a = await subscribe(core, GP, explicitCriteria({ tag: 'a' }));
    const b = await subscribe(core, GP, explicitCriteria({ tag: 'b' }));
    expect(a).not.toBe(b);
  });

  it.each([
    ['an id', { prefix: '<id value="abc"/>' }, 405, 'MSG_RESOURCE_ID_FAIL'],
    ['meta.versionId', { prefix: '<meta><versionId value="1"/></meta>' }, 422, 'INVALID_RESOURCE'],
    ['status active', { status: 'active' }, 422, 'INVALID_RESOURCE'],
    ['criteria that does not parse', { criteria: '/Bundle?type=message&Patient.identifier=x' }, 422, 'INVALID_RESOURCE'],
    ['an NHS number failing modulus 11', { criteria: explicitCriteria({ nhs: '1112223330' }) }, 400, 'INVALID_NHS_NUMBER'],
    ['an end date in the past', { end: '2001-01-01T00:00:00+00:00' }, 422, 'INVALID_RESOURCE'],
    ['an end without a timezone', { end: '2099-01-01T00:00:00' }, 422, 'INVALID_RESOURCE'],
    ['an end with offset +14:30 (fhir.datetime-format)', { end: '2099-01-01T00:00:00+14:30' }, 422, 'INVALID_RESOURCE'],
    ['an end on 29 February of a common year', { end: '2099-02-29T00:00:00Z' }, 422, 'INVALID_RESOURCE'],
  ])('rejects a create with %s: %i %s', async (_what, options, status, code) => {
    const response = await core.handle(createRequest(GP, subscriptionXml(options)));
    expect(response.status).toBe(status);
    expect(firstCode(response)).toBe(code);
    expect(core.stats().subscriptions).toBe(0);
  });

  it("applies the gateway's Subscription rules to every contact, not only the first: 422 INVALID_RESOURCE", async () => {
    const second = '<contact><system value="url"/><value value="https://directory.spineservices.nhs.uk/STU3/Organization/A83627"/><use value="home"/></contact>';
    const body = Buffer.from(subscriptionXml().toString('utf8').replace('</contact>', `</contact>${second}`));
    const response = await core.handle(createRequest(GP, body));
    expect({ status: response.status, code: firstCode(response) }).toEqual({ status: 422, code: 'INVALID_RESOURCE' });
    expect(response.body?.toString()).toContain('Subscription.contact[1].use');
    expect(core.stats().subscriptions).toBe(0);
  });

  it('refuses a channel.endpoint that is not a MESH mailbox id: 422 INVALID_RESOURCE', async () => {
    const body = Buffer.from(subscriptionXml().toString('utf8').replace(`<endpoint value="${GP.mailbox}"/>`, '<endpoint value="../etc"/>'));
    const response = await core.handle(createRequest(GP, body));
    expect({ status: response.status, code: firstCode(response) }).toEqual({ status: 422, code: 'INVALID_RESOURCE' });
  });

  it('rejects a body with a DOCTYPE: 400 INVALID_REQUEST_MESSAGE', async () => {
    const body = Buffer.from(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>${subscriptionXml().toString()}`);
    const response = await core.handle(createRequest(GP, body));
    expect(response.status).toBe(400);
    expect(firstCode(response)).toBe('INVALID_REQUEST_MESSAGE');
  });

  it('rejects a body over the subscription cap: 413 PAYLOAD_TOO_LARGE', async () => {
    const small = openCore(dataDir.dir, { maxSubscriptionBytes: 100 });
    try {
      const response = await small.handle(createRequest(GP, subscriptionXml()));
      expect(response.status).toBe(413);
      expect(firstCode(response)).toBe('PAYLOAD_TOO_LARGE');
    } finally {
      await small.close();
    }
  });

  it('rejects an unsupported Content-Type: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await core.handle(createRequest(GP, subscriptionXml(), 'text/plain'));
    expect(response.status).toBe(415);
    expect(firstCode(response)).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('rejects a request without fromASID: 400 MISSING_OR_INVALID_HEADER', async () => {
    const request = createRequest(GP, subscriptionXml());
    const { fromASID: _omit, ...headers } = request.headers;
    const response = await core.handle({ ...request, headers });
    expect(response.status).toBe(400);
    expect(firstCode(response)).toBe('MISSING_OR_INVALID_HEADER');
  });

  it('rejects a create whose InteractionID names another operation: 400 MISSING_OR_INVALID_HEADER', async () => {
    const request = createRequest(GP, subscriptionXml());
    const response = await core.handle({ ...request, headers: { ...request.headers, InteractionID: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiGet' } });
    expect(response.status).toBe(400);
    expect(firstCode(response)).toBe('MISSING_OR_INVALID_HEADER');
  });

  it('rejects a duplicate of an active subscription with 422 DUPLICATE_REJECTED naming the existing id, as NEMS does', async () => {
    const first = await core.handle(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'dup' }) })));
    expect(first.status).toBe(201);
    const existing = idFromLocation(first);
    const second = await core.handle(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'dup' }) })));
    expect(second.status).toBe(422);
    expect(firstCode(second)).toBe('DUPLICATE_REJECTED');
    const body = second.body!.toString();
    expect(body).toContain(`<diagnostics value="An identical subscription already exists : ${existing}"/>`);
    // The exact pattern NHSDigital's Cohort Manager NEMS client uses to read the existing id (case-sensitive).
    expect(/subscription already exists\s*:\s*"?([a-zA-Z0-9-_]+)"?/.exec(body)?.[1]).toBe(existing);
    // JSON too, for a client that asked for it.
    const json = await core.handle({ ...createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'dup' }) })), url: '/STU3/Subscription?_format=json' });
    expect(/subscription already exists\s*:\s*"?([a-zA-Z0-9-_]+)"?/.exec(json.body!.toString())?.[1]).toBe(existing);
    expect(core.stats().subscriptions).toBe(1);
  });

  it('a duplicate means: same ASID, same MESH mailbox, criteria of the same meaning, still active', async () => {
    const criteria = explicitCriteria({ events: ['vaccinations-1', 'pds-change-of-address-1'], ages: ['lt16'], tag: 'x' });
    const created = idFromLocation(await core.handle(createRequest(GP, subscriptionXml({ criteria }))));
    const status = async (org: typeof GP, c: string, extra: Parameters<typeof subscriptionXml>[0] = {}) =>
      (await core.handle(createRequest(org, subscriptionXml({ org, criteria: c, ...extra })))).status;
    // The same criteria written in another order, or percent-encoded, mean the same subscription.
    const reordered = explicitCriteria({ events: ['pds-change-of-address-1', 'vaccinations-1'], ages: ['lt16'], tag: 'x' });
    expect(await status(GP, reordered)).toBe(422);
    expect(await status(GP, criteria.replace('vaccinations-1', 'vaccinations%2D1'))).toBe(422);
    // Different criteria, another mailbox or another owner ASID make a new subscription.
    expect(await status(GP, criteria.replace('tag=x', 'tag=y'))).toBe(201);
    expect(await status(GP, explicitCriteria({ events: ['vaccinations-1'], ages: ['lt16'], tag: 'x' }))).toBe(201);
    expect(await status({ ...GP, mailbox: 'A83627MB002' }, criteria)).toBe(201);
    expect(await status({ ...GP, asid: '200000000199' }, criteria)).toBe(201);
    // Once deleted, or once its end has passed, it is no longer there to duplicate.
    expect((await core.handle(deleteRequest(GP, created))).status).toBe(200);
    expect(await status(GP, criteria)).toBe(201);
  });

  it('does not count a subscription whose end has passed as a duplicate', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const clocked = openCore(dataDir.dir, { now: () => now });
    try {
      const body = { criteria: explicitCriteria({ tag: 'ending' }), end: '2030-01-02T00:00:00Z' };
      expect((await clocked.handle(createRequest(GP, subscriptionXml(body)))).status).toBe(201);
      expect((await clocked.handle(createRequest(GP, subscriptionXml(body)))).status).toBe(422);
      now = Date.parse('2030-01-03T00:00:00Z');
      expect((await clocked.handle(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'ending' }) })))).status).toBe(201);
    } finally {
      await clocked.close();
    }
  });

  it('stores duplicates only when told to (rejectDuplicateSubscriptions: false)', async () => {
    const lax = openCore(dataDir.dir, { rejectDuplicateSubscriptions: false });
    try {
      expect((await lax.handle(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'lax' }) })))).status).toBe(201);
      expect((await lax.handle(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'lax' }) })))).status).toBe(201);
    } finally {
      await lax.close();
    }
  });
});

describe('Subscription read and delete', () => {
  it('reads the stored subscription as XML by default: 200, id, meta.versionId 1, meta.lastUpdated, status active', async () => {
    const id = await subscribe(core, GP, explicitCriteria());
    const response = await core.handle(readRequest(GP, id));
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/xml+fhir;charset=utf-8');
    expect(response.headers['etag']).toBe('W/"1"');
    expect(response.headers['last-modified']).toBeDefined();
    const xml = response.body!.toString();
    expect(xml).toContain(`<id value="${id}"/>`);
    expect(xml).toMatch(/<meta><versionId value="1"\/><lastUpdated value="[^"]+"\/>/);
    expect(xml).toContain('<status value="active"/>');
    expect(xml).toContain('MessageHeader.event=vaccinations-1');
  });

  it.each(['application/fhir+json', 'application/json+fhir', 'application/fhir+json;charset=utf-8'])('reads as JSON for Accept %s', async (accept) => {
    const id = await subscribe(core, GP, explicitCriteria());
    const response = await core.handle(readRequest(GP, id, accept));
    expect(response.status).toBe(200);
    // mime.response-type: labelled with the very type asked for.
    expect(response.headers['content-type']).toBe(accept);
    const resource = JSON.parse(response.body!.toString()) as { id: string; meta: { versionId: string }; status: string };
    expect(resource).toMatchObject({ id, meta: { versionId: '1' }, status: 'active' });
  });

  it('honours _format=json over Accept', async () => {
    const id = await subscribe(core, GP, explicitCriteria());
    const request = readRequest(GP, id, 'application/fhir+xml');
    const response = await core.handle({ ...request, url: `${request.url}?_format=json` });
    expect(response.body!.toString().startsWith('{')).toBe(true);
  });

  it("answers 404 NO_RECORD_FOUND for another organisation's subscription, for read and delete", async () => {
    const id = await subscribe(core, GP, explicitCriteria());
    const read = await core.handle(readRequest(CHO, id));
    expect(read.status).toBe(404);
    expect(firstCode(read)).toBe('NO_RECORD_FOUND');
    const del = await core.handle(deleteRequest(CHO, id));
    expect(del.status).toBe(404);
    expect((await core.handle(readRequest(GP, id))).status).toBe(200);
  });

  it('answers 404 NO_RECORD_FOUND for an unknown or malformed id', async () => {
    expect(firstCode(await core.handle(readRequest(GP, '0123456789abcdef0123456789abcdef')))).toBe('NO_RECORD_FOUND');
    expect((await core.handle(readRequest(GP, 'not-an-id'))).status).toBe(404);
  });

  it('deletes: 200, then read and delete answer 404 NO_RECORD_FOUND', async () => {
    const id = await subscribe(core, GP, explicitCriteria());
    const del = await core.handle(deleteRequest(GP, id));
    expect(del.status).toBe(200);
    expect((await core.handle(readRequest(GP, id))).status).toBe(404);
    const again = await core.handle(deleteRequest(GP, id));
    expect(again.status).toBe(404);
    expect(firstCode(again)).toBe('NO_RECORD_FOUND');
  });
});

describe('routes and errors', () => {
  it('answers an unknown path with 404 NO_RECORD_FOUND', async () => {
    const response = await core.handle({ method: 'GET', url: '/STU3/Patient/1', headers: { fromASID: GP.asid } });
    expect(response.status).toBe(404);
    expect(firstCode(response)).toBe('NO_RECORD_FOUND');
  });

  it('answers the removed subscription search with 501 NOT_IMPLEMENTED', async () => {
    const response = await core.handle({ method: 'GET', url: '/STU3/Subscription?criteria:contains=x', headers: { fromASID: GP.asid } });
    expect(response.status).toBe(501);
    expect(firstCode(response)).toBe('NOT_IMPLEMENTED');
  });

  it('answers a wrong method with 400 BAD_REQUEST and an Allow header', async () => {
    const response = await core.handle({ method: 'GET', url: '/STU3/Events/1/$process-message', headers: { fromASID: GP.asid } });
    expect(response.status).toBe(400);
    expect(firstCode(response)).toBe('BAD_REQUEST');
    expect(response.headers['allow']).toBe('POST');
  });

  it('uses X-Request-ID as the OperationOutcome id, and renders JSON when Accept asks for it', async () => {
    const response = await core.handle({ method: 'GET', url: '/STU3/Nope', headers: { 'X-Request-ID': 'trace-123', Accept: 'application/fhir+json' } });
    expect(JSON.parse(response.body!.toString())).toMatchObject({ resourceType: 'OperationOutcome', id: 'trace-123' });
    expect(response.headers['content-type']).toBe('application/fhir+json');
  });
});

describe('publish', () => {
  it('accepts a vaccination event with 202 and no body, then delivers it asynchronously', async () => {
    await subscribe(core, GP, explicitCriteria());
    const response = await core.handle(publishRequest(CHO, vaccinationEvent()));
    expect(response.status).toBe(202);
    expect(response.body).toBeUndefined();
    await core.idle();
    const messages = listMailbox(dataDir.dir, GP.mailbox);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.control).toMatchObject({ workflowId: 'VACCINATIONS_1', eventCode: 'vaccinations-1', fromAsid: CHO.asid });
  });

  it('rejects a JSON publish: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await core.handle(publishRequest(CHO, vaccinationEvent(), 'Vaccinations', 'application/fhir+json'));
    expect(response.status).toBe(415);
    expect(firstCode(response)).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('rejects an InteractionID that names another event than the MessageHeader: 422 INVALID_RESOURCE (as the gateway)', async () => {
    const response = await core.handle(publishRequest(CHO, vaccinationEvent(), 'Nipeoutcome'));
    expect(response.status).toBe(422);
    expect(firstCode(response)).toBe('INVALID_RESOURCE');
  });

  it('rejects an InteractionID that names no publishable event: 400 MISSING_OR_INVALID_HEADER', async () => {
    for (const code of ['Unknown', 'pds-change-of-address-1']) {
      const response = await core.handle(publishRequest(CHO, vaccinationEvent(), code));
      expect(response.status).toBe(400);
      expect(firstCode(response)).toBe('MISSING_OR_INVALID_HEADER');
    }
  });

  it('accepts the pre-2020 InteractionID form naming the event code (vaccinations-1.Write) when configured to: 202', async () => {
    const legacyDir = tempDataDir();
    const legacy = openCore(legacyDir.dir, { acceptLegacyPublishInteractionIds: true });
    try {
      const response = await legacy.handle(publishRequest(CHO, vaccinationEvent(), 'vaccinations-1'));
      expect(response.status).toBe(202);
    } finally {
      await legacy.close();
      legacyDir.cleanup();
    }
  });

  it('refuses the pre-2020 InteractionID forms by default, as the gateway does: 400 MISSING_OR_INVALID_HEADER', async () => {
    for (const interactionId of ['urn:nhs:names:services:events:vaccinations-1.Write', 'urn:nhs:names:services:events:Vaccinations.write:1']) {
      const request = publishRequest(CHO, vaccinationEvent());
      const response = await core.handle({ ...request, headers: { ...request.headers, InteractionID: interactionId } });
      expect({ status: response.status, code: firstCode(response) }).toEqual({ status: 400, code: 'MISSING_OR_INVALID_HEADER' });
    }
    expect(core.stats().publications).toBe(0);
  });

  it('rejects a PDS event (published by Spine itself) through the API: 422 INVALID_RESOURCE', async () => {
    const response = await core.handle(publishRequest(CHO, fixture('PDS-Change-Of-Address-ems-example.xml')));
    expect(response.status).toBe(422);
    expect(firstCode(response)).toBe('INVALID_RESOURCE');
  });

  it('rejects a routing NHS number failing modulus 11: 400 INVALID_NHS_NUMBER', async () => {
    const response = await core.handle(publishRequest(CHO, vaccinationEvent({ nhs: '9912003889' })));
    expect(response.status).toBe(400);
    expect(firstCode(response)).toBe('INVALID_NHS_NUMBER');
  });

  it('rejects a Patient NHS number failing modulus 11 even when routing is valid: 400 INVALID_NHS_NUMBER', async () => {
    const text = vaccinationEvent().toString();
    // Only the second occurrence (the Patient resource), not the routing demographics.
    const at = text.indexOf('9912003888', text.indexOf('9912003888') + 1);
    const body = Buffer.from(`${text.slice(0, at)}9912003889${text.slice(at + 10)}`);
    const response = await core.handle(publishRequest(CHO, body));
    expect(response.status).toBe(400);
    expect(firstCode(response)).toBe('INVALID_NHS_NUMBER');
    expect(response.body!.toString()).not.toContain('9912003889');
  });

  it('rejects XML that is not well formed: 400 BAD_REQUEST (Spine Core: malformed content)', async () => {
    const response = await core.handle(publishRequest(CHO, Buffer.from('<Bundle xmlns="http://hl7.org/fhir"><type value="message">')));
    expect(response.status).toBe(400);
    expect(firstCode(response)).toBe('BAD_REQUEST');
  });

  it('rejects a publish over the 3 MB cap: 413 PAYLOAD_TOO_LARGE', async () => {
    const response = await core.handle(publishRequest(CHO, Buffer.alloc(3 * 1024 * 1024 + 1, 0x20)));
    expect(response.status).toBe(413);
  });
});

describe('event-type lifecycle (config.core.lifecycle)', () => {
  function lifecycleCore(state: 'deprecated' | 'no-longer-supported' | 'withdrawn'): NemsCore {
    return openCore(dataDir.dir, { lifecycle: { 'vaccinations-1': { state, since: '2024-01-01', info: 'https://example.test/nems' } } });
  }

  it('deprecated: create answers 201 with a DEPRECATED OperationOutcome (severity information)', async () => {
    const c = lifecycleCore('deprecated');
    try {
      const response = await c.handle(createRequest(GP, subscriptionXml()));
      expect(response.status).toBe(201);
      expect(response.headers['location']).toBeDefined();
      expect(outcomeCodes(response)).toEqual([{ code: 'DEPRECATED', severity: 'information' }]);
      expect(response.body!.toString()).toContain('2024-01-01');
    } finally {
      await c.close();
    }
  });

  it('no longer supported: create answers 400 NO_LONGER_SUPPORTED, publish 202 with a NO_LONGER_SUPPORTED warning', async () => {
    const c = lifecycleCore('no-longer-supported');
    try {
      const create = await c.handle(createRequest(GP, subscriptionXml()));
      expect(create.status).toBe(400);
      expect(firstCode(create)).toBe('NO_LONGER_SUPPORTED');
      const publish = await c.handle(publishRequest(CHO, vaccinationEvent()));
      expect(publish.status).toBe(202);
      expect(outcomeCodes(publish)).toEqual([{ code: 'NO_LONGER_SUPPORTED', severity: 'information' }]);
    } finally {
      await c.close();
    }
  });

  it('deprecated: publish answers 202 with a DEPRECATED warning', async () => {
    const c = lifecycleCore('deprecated');
    try {
      const publish = await c.handle(publishRequest(CHO, vaccinationEvent()));
      expect(publish.status).toBe(202);
      expect(outcomeCodes(publish)).toEqual([{ code: 'DEPRECATED', severity: 'information' }]);
    } finally {
      await c.close();
    }
  });

  it('withdrawn: create and publish answer 400 WITHDRAWN and nothing is stored', async () => {
    const c = lifecycleCore('withdrawn');
    try {
      const create = await c.handle(createRequest(GP, subscriptionXml()));
      expect(create.status).toBe(400);
      expect(firstCode(create)).toBe('WITHDRAWN');
      const publish = await c.handle(publishRequest(CHO, vaccinationEvent()));
      expect(publish.status).toBe(400);
      expect(firstCode(publish)).toBe('WITHDRAWN');
      expect(c.stats()).toMatchObject({ subscriptions: 0, publications: 0 });
    } finally {
      await c.close();
    }
  });
});

describe('the NEMS example fixtures', () => {
  it.each([
    ['vaccinations-1-new.xml', 'Vaccinations'],
    ['vaccinations-1-delete.xml', 'Vaccinations'],
    ['vaccinations-1-notgiven-new.xml', 'Vaccinations'],
    ['Professional-Contacts-1-new.xml', 'Professionalcontacts'],
    ['Professional-Contacts-1-update.xml', 'Professionalcontacts'],
    ['blood-spot-test-outcome-1-new.xml', 'Bloodspottestoutcome'],
    ['blood-spot-test-outcome-1-delete.xml', 'Bloodspottestoutcome'],
    ['newborn-hearing-1-new.xml', 'Newbornhearing'],
    ['newborn-hearing-1-update.xml', 'Newbornhearing'],
    ['nipe-outcome-1-delete.xml', 'Nipeoutcome'],
  ])('accepts the publishable example %s through the Publication API: 202', async (file, interactionCode) => {
    const response = await core.handle(publishRequest(CHO, fixture(file), interactionCode));
    expect(response.status, response.body?.toString()).toBe(202);
  });

  it('refuses the official nipe-outcome-1-update example with the gateway\'s own date rule: timestamp offset +58:00 → 422 INVALID_RESOURCE naming it', async () => {
    const response = await core.handle(publishRequest(CHO, fixture('nipe-outcome-1-update.xml'), 'Nipeoutcome'));
    expect(response.status).toBe(422);
    expect(firstCode(response)).toBe('INVALID_RESOURCE');
    expect(response.body?.toString()).toContain('Bundle.entry.resource.MessageHeader.timestamp: must be a FHIR instant');
  });

  it.each([
    ['BirthNotificationWithoutMother.xml', 202, undefined],
    ['PDS-Change-Of-Address-ems-example.xml', 202, undefined],
    ['PDS-Change-Of-GP-ems-example.xml', 202, undefined],
    ['PDS-Record-Change.xml', 202, undefined],
    ['BirthNotificationWithMother.xml', 400, 'INVALID_NHS_NUMBER'], // routes on 1112223330, which fails modulus 11
  ])('takes the Spine-published example %s as Spine would: %i %s', async (file, status, code) => {
    const response = await core.publishAsSpine(fixture(file));
    expect(response.status, response.body?.toString()).toBe(status);
    if (code) expect(firstCode(response)).toBe(code);
  });
});
