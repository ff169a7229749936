// Test helpers for the embedded NEMS core: temp data directories, Subscription and event bodies, request shortcuts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNemsExample } from '../helpers/nems-examples.js';
import { createNemsCore, type CoreResponse, type NemsCore, type NemsCoreOptions } from '../../src/nems-core/core.js';
import { SUBSCRIPTION_INTERACTIONS } from '../../src/nems/interactions.js';

export const BASE_URL = 'https://nems.example.test/STU3';

export interface Organisation {
  readonly asid: string;
  readonly ods: string;
  readonly mailbox: string;
}

/** The GP practice and the child health organisation of config/endpoints.yaml. */
export const GP: Organisation = { asid: '200000000101', ods: 'A83627', mailbox: 'A83627MB001' };
export const CHO: Organisation = { asid: '200000000102', ods: 'RX3EP', mailbox: 'RX3EPMB001' };

/** Routing NHS number of the vaccination fixture, and another valid one. */
export const FIXTURE_NHS = '9912003888';
export const OTHER_NHS = '9434765919';
/** 2024-06-01: the fixture's routing birthDateTime (2017-10-02) makes the patient 6. */
export const FIXED_NOW = Date.parse('2024-06-01T09:00:00Z');

export function tempDataDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nems-core-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openCore(dir: string, options: Partial<NemsCoreOptions> = {}): NemsCore {
  return createNemsCore({ dataDir: dir, baseUrl: BASE_URL, ...options });
}

export interface ExplicitOptions {
  readonly nhs?: string;
  readonly events?: readonly string[];
  readonly ages?: readonly string[];
  readonly tag?: string;
  readonly serviceType?: string;
  readonly gpRegistration?: string;
}

export function explicitCriteria(o: ExplicitOptions = {}): string {
  const parts = ['/Bundle?type=message'];
  if (o.serviceType) parts.push(`serviceType=${o.serviceType}`);
  parts.push(`Patient.identifier=http://fhir.nhs.net/Id/nhs-number|${o.nhs ?? FIXTURE_NHS}`);
  for (const e of o.events ?? ['vaccinations-1']) parts.push(`MessageHeader.event=${e}`);
  for (const a of o.ages ?? []) parts.push(`Patient.age=${a}`);
  if (o.gpRegistration) parts.push(`GPRegistration=${o.gpRegistration}`);
  if (o.tag) parts.push(`tag=${o.tag}`);
  return parts.join('&');
}

export interface GenericOptions {
  readonly rule: string;
  readonly org: string;
  readonly event?: string;
  readonly ages?: readonly string[];
  readonly tag?: string;
  readonly gpRegistration?: string;
}

export function genericCriteria(o: GenericOptions): string {
  const parts = ['/Bundle?type=message', `subscriptionRuleType=${o.rule}`, `Organization.identifier=${o.org}`, `MessageHeader.event=${o.event ?? 'vaccinations-1'}`];
  for (const a of o.ages ?? []) parts.push(`Patient.age=${a}`);
  if (o.gpRegistration) parts.push(`GPRegistration=${o.gpRegistration}`);
  if (o.tag) parts.push(`tag=${o.tag}`);
  return parts.join('&');
}

export interface SubscriptionBodyOptions {
  readonly org?: Organisation;
  readonly criteria?: string;
  readonly end?: string;
  readonly status?: string;
  /** Raw XML inserted right after the root start tag (e.g. an `<id>`). */
  readonly prefix?: string;
}

function xmlAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export function subscriptionXml(o: SubscriptionBodyOptions = {}): Buffer {
  const org = o.org ?? GP;
  return Buffer.from(
    `<Subscription xmlns="http://hl7.org/fhir">${o.prefix ?? ''}` +
      `<meta><profile value="https://fhir.nhs.uk/STU3/StructureDefinition/EMS-Subscription-1"/></meta>` +
      `<status value="${o.status ?? 'requested'}"/>` +
      `<contact><system value="url"/><value value="https://directory.spineservices.nhs.uk/STU3/Organization/${org.ods}"/><use value="work"/></contact>` +
      (o.end ? `<end value="${o.end}"/>` : '') +
      `<reason value="Direct care of registered patients"/>` +
      `<criteria value="${xmlAttr(o.criteria ?? explicitCriteria())}"/>` +
      `<channel><type value="message"/><endpoint value="${org.mailbox}"/></channel>` +
      `</Subscription>`,
  );
}

export function subscriptionJson(o: SubscriptionBodyOptions = {}): Buffer {
  const org = o.org ?? GP;
  return Buffer.from(
    JSON.stringify({
      resourceType: 'Subscription',
      meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/EMS-Subscription-1'] },
      status: o.status ?? 'requested',
      contact: [{ system: 'url', value: `https://directory.spineservices.nhs.uk/STU3/Organization/${org.ods}`, use: 'work' }],
      ...(o.end ? { end: o.end } : {}),
      reason: 'Direct care of registered patients',
      criteria: o.criteria ?? explicitCriteria(),
      channel: { type: 'message', endpoint: org.mailbox },
    }),
  );
}

export function createRequest(org: Organisation, body: Buffer, contentType = 'application/fhir+xml') {
  return {
    method: 'POST',
    url: '/STU3/Subscription',
    headers: { fromASID: org.asid, toASID: '200000000306', InteractionID: SUBSCRIPTION_INTERACTIONS.create, 'Content-Type': contentType },
    body,
  };
}

export function readRequest(org: Organisation, id: string, accept?: string) {
  return {
    method: 'GET',
    url: `/STU3/Subscription/${id}`,
    headers: { fromASID: org.asid, InteractionID: SUBSCRIPTION_INTERACTIONS.read, ...(accept ? { Accept: accept } : {}) },
  };
}

export function deleteRequest(org: Organisation, id: string) {
  return { method: 'DELETE', url: `/STU3/Subscription/${id}`, headers: { fromASID: org.asid, InteractionID: SUBSCRIPTION_INTERACTIONS.delete } };
}

export function publishRequest(org: Organisation, body: Buffer, interactionCode = 'Vaccinations', contentType = 'application/fhir+xml') {
  return {
    method: 'POST',
    url: '/STU3/Events/1/$process-message',
    headers: { fromASID: org.asid, InteractionID: `urn:nhs:names:services:events:${interactionCode}.Write`, 'Content-Type': contentType },
    body,
  };
}

/** Creates a subscription and returns its logical id; fails the test on anything but 201. */
export async function subscribe(core: NemsCore, org: Organisation, criteria: string, extra: Partial<SubscriptionBodyOptions> = {}): Promise<string> {
  const response = await core.handle(createRequest(org, subscriptionXml({ org, criteria, ...extra })));
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${response.body?.toString()}`);
  return idFromLocation(response);
}

export function idFromLocation(response: CoreResponse): string {
  const location = response.headers['location'];
  if (!location) throw new Error('no Location header');
  return location.slice(location.lastIndexOf('/') + 1);
}

export function fixture(name: string): Buffer {
  return readNemsExample(name);
}

export interface EventOptions {
  /** Replaces the routing (and Patient) NHS number of the vaccination fixture. */
  readonly nhs?: string;
  /** Replaces the routing demographics birthDateTime. */
  readonly birthDateTime?: string;
  /** Replaces the MessageHeader.id, so re-publishing makes a distinct message. */
  readonly messageId?: string;
}

/** The vaccinations-1-new.xml fixture, optionally for another patient, birth date or message id. */
export function vaccinationEvent(o: EventOptions = {}): Buffer {
  let text = fixture('vaccinations-1-new.xml').toString('utf8');
  if (o.nhs) text = text.split(FIXTURE_NHS).join(o.nhs);
  if (o.birthDateTime) text = text.replace('2017-10-02T12:00:00+00:00', o.birthDateTime);
  if (o.messageId) text = text.split('85c8a1c5-a8a1-41c9-bb99-20956fa66218').join(o.messageId);
  return Buffer.from(text, 'utf8');
}

/** Issue codes and severities of an OperationOutcome body, in either format. */
export function outcomeCodes(response: CoreResponse): { code: string; severity: string }[] {
  const text = response.body?.toString('utf8') ?? '';
  if (text.startsWith('{')) {
    const oo = JSON.parse(text) as { issue: { severity: string; details: { coding: { code: string }[] } }[] };
    return oo.issue.map((i) => ({ code: i.details.coding[0]!.code, severity: i.severity }));
  }
  const out: { code: string; severity: string }[] = [];
  const issue = /<issue><severity value="([^"]+)"\/>.*?<coding><system value="[^"]+"\/><code value="([^"]+)"\/>/g;
  for (let m = issue.exec(text); m; m = issue.exec(text)) out.push({ severity: m[1]!, code: m[2]! });
  return out;
}

export function firstCode(response: CoreResponse): string | undefined {
  return outcomeCodes(response)[0]?.code;
}
