// The two NEMS documents the core reads (EMS-Subscription-1 in XML or JSON, an event message Bundle in XML) reduced
// to the fields it acts on, and the stored Subscription rendered back as FHIR STU3 XML and JSON (docs/specification.md §1.4, §2.3).
import { MESSAGE_EVENT_TYPE_URL, ROUTING_DEMOGRAPHICS_URL } from '../nems/events.js';
import { NHS_NUMBER_SYSTEM, ODS_ORGANIZATION_SYSTEM } from '../nems/identifiers.js';
import { escapeXmlAttribute } from '../fhir/operation-outcome.js';
import {
  childValue,
  childrenNamed,
  extensionsByUrl,
  firstChild,
  FHIR_XML_NAMESPACE,
  inFhirNamespace,
  resourceOf,
  type XmlElement,
} from '../fhir/xml.js';
import type { PatientRecord } from './matching.js';

export const SUBSCRIPTION_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/EMS-Subscription-1';

export interface ContactPoint {
  readonly system?: string;
  readonly value?: string;
  readonly use?: string;
}

/** The Subscription elements the core keeps; anything else in a create request is not stored. */
export interface SubscriptionModel {
  readonly resourceType: string;
  readonly hasId: boolean;
  readonly hasMetaVersionId: boolean;
  readonly hasMetaLastUpdated: boolean;
  readonly profiles: readonly string[];
  readonly status?: string;
  readonly contacts: readonly ContactPoint[];
  readonly end?: string;
  readonly reason?: string;
  readonly criteria?: string;
  readonly channel?: { readonly type?: string; readonly endpoint?: string; readonly payload?: string; readonly headers: readonly string[] };
}

export function subscriptionFromXml(root: XmlElement): SubscriptionModel {
  const meta = firstChild(root, 'meta');
  const channel = firstChild(root, 'channel');
  return {
    // Outside the FHIR namespace the element is not a FHIR resource at all.
    resourceType: inFhirNamespace(root) ? root.name : '',
    hasId: firstChild(root, 'id') !== undefined,
    hasMetaVersionId: meta !== undefined && firstChild(meta, 'versionId') !== undefined,
    hasMetaLastUpdated: meta !== undefined && firstChild(meta, 'lastUpdated') !== undefined,
    profiles: meta ? childrenNamed(meta, 'profile').map((p) => p.attributes.get('value') ?? '').filter(Boolean) : [],
    ...optional('status', childValue(root, 'status')),
    contacts: childrenNamed(root, 'contact').map((c) => ({
      ...optional('system', childValue(c, 'system')),
      ...optional('value', childValue(c, 'value')),
      ...optional('use', childValue(c, 'use')),
    })),
    ...optional('end', childValue(root, 'end')),
    ...optional('reason', childValue(root, 'reason')),
    ...optional('criteria', childValue(root, 'criteria')),
    ...(channel
      ? {
          channel: {
            ...optional('type', childValue(channel, 'type')),
            ...optional('endpoint', childValue(channel, 'endpoint')),
            ...optional('payload', childValue(channel, 'payload')),
            headers: childrenNamed(channel, 'header').map((h) => h.attributes.get('value') ?? '').filter(Boolean),
          },
        }
      : {}),
  };
}

type JsonObject = Record<string, unknown>;

function asObject(value: unknown): JsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function subscriptionFromJson(value: unknown): SubscriptionModel {
  const root = asObject(value) ?? {};
  const meta = asObject(root['meta']);
  const channel = asObject(root['channel']);
  return {
    resourceType: asString(root['resourceType']) ?? '',
    hasId: root['id'] !== undefined,
    hasMetaVersionId: meta?.['versionId'] !== undefined,
    hasMetaLastUpdated: meta?.['lastUpdated'] !== undefined,
    profiles: asArray(meta?.['profile']).map(asString).filter((p): p is string => Boolean(p)),
    ...optional('status', asString(root['status'])),
    contacts: asArray(root['contact']).map((c) => {
      const contact = asObject(c) ?? {};
      return {
        ...optional('system', asString(contact['system'])),
        ...optional('value', asString(contact['value'])),
        ...optional('use', asString(contact['use'])),
      };
    }),
    ...optional('end', asString(root['end'])),
    ...optional('reason', asString(root['reason'])),
    ...optional('criteria', asString(root['criteria'])),
    ...(channel
      ? {
          channel: {
            ...optional('type', asString(channel['type'])),
            ...optional('endpoint', asString(channel['endpoint'])),
            ...optional('payload', asString(channel['payload'])),
            headers: asArray(channel['header']).map(asString).filter((h): h is string => Boolean(h)),
          },
        }
      : {}),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: V };
}

/** What NEMS adds to a stored subscription. */
export interface StoredResourceMeta {
  readonly id: string;
  readonly versionId: string;
  readonly lastUpdated: string;
}

/** The stored Subscription as STU3 XML, elements in schema order, status `active`. */
export function renderSubscriptionXml(model: SubscriptionModel, meta: StoredResourceMeta): string {
  const v = (name: string, value: string | undefined): string => (value === undefined ? '' : `<${name} value="${escapeXmlAttribute(value)}"/>`);
  const profiles = model.profiles.length > 0 ? model.profiles : [SUBSCRIPTION_PROFILE];
  const parts = [
    `<Subscription xmlns="${FHIR_XML_NAMESPACE}">`,
    v('id', meta.id),
    `<meta>${v('versionId', meta.versionId)}${v('lastUpdated', meta.lastUpdated)}${profiles.map((p) => v('profile', p)).join('')}</meta>`,
    v('status', 'active'),
    ...model.contacts.map((c) => `<contact>${v('system', c.system)}${v('value', c.value)}${v('use', c.use)}</contact>`),
    v('end', model.end),
    v('reason', model.reason),
    v('criteria', model.criteria),
  ];
  if (model.channel) {
    const ch = model.channel;
    parts.push(`<channel>${v('type', ch.type)}${v('endpoint', ch.endpoint)}${v('payload', ch.payload)}${ch.headers.map((h) => v('header', h)).join('')}</channel>`);
  }
  parts.push('</Subscription>');
  return parts.join('');
}

/** The stored Subscription as STU3 JSON. */
export function renderSubscriptionJson(model: SubscriptionModel, meta: StoredResourceMeta): string {
  const profiles = model.profiles.length > 0 ? model.profiles : [SUBSCRIPTION_PROFILE];
  return JSON.stringify({
    resourceType: 'Subscription',
    id: meta.id,
    meta: { versionId: meta.versionId, lastUpdated: meta.lastUpdated, profile: profiles },
    status: 'active',
    contact: model.contacts.map((c) => ({ ...c })),
    ...optional('end', model.end),
    ...optional('reason', model.reason),
    ...optional('criteria', model.criteria),
    ...(model.channel
      ? {
          channel: {
            ...optional('type', model.channel.type),
            ...optional('endpoint', model.channel.endpoint),
            ...optional('payload', model.channel.payload),
            ...(model.channel.headers.length > 0 ? { header: model.channel.headers } : {}),
          },
        }
      : {}),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Event message Bundle

export interface EventDocument {
  readonly eventSystem?: string;
  readonly eventCode?: string;
  readonly messageHeaderId?: string;
  readonly messageEventType?: string;
  readonly hasRoutingDemographics: boolean;
  readonly routingNhsNumberSystem?: string;
  readonly routingNhsNumber?: string;
  readonly routingBirthDateTime?: string;
  readonly subjectPatient?: PatientRecord;
}

export type EventDocumentResult =
  | { readonly ok: true; readonly event: EventDocument }
  /** `element` names the part of the Bundle at fault. */
  | { readonly ok: false; readonly element: string; readonly problem: string };

/** Reads the routing facts of an event message Bundle (docs/specification.md §2.3); structural problems name the element at fault. */
export function eventFromXml(root: XmlElement): EventDocumentResult {
  if (root.name !== 'Bundle' || !inFhirNamespace(root)) return { ok: false, element: 'Bundle', problem: 'root element is not a FHIR Bundle' };
  if (childValue(root, 'type') !== 'message') return { ok: false, element: 'Bundle.type', problem: 'must be message' };
  const entries = childrenNamed(root, 'entry');
  const header = resourceOf(firstChild(entries[0] ?? root, 'resource'));
  if (!entries[0] || !header || header.name !== 'MessageHeader') {
    return { ok: false, element: 'Bundle.entry[0].resource', problem: 'the first entry must be a MessageHeader' };
  }
  const event = firstChild(header, 'event');
  const routing = extensionsByUrl(header, ROUTING_DEMOGRAPHICS_URL)[0];
  const nhsIdentifier = routing ? firstChild(extensionsByUrl(routing, 'nhsNumber')[0] ?? routing, 'valueIdentifier') : undefined;
  const birth = routing ? extensionsByUrl(routing, 'birthDateTime')[0] : undefined;
  const messageEventTypeExt = extensionsByUrl(header, MESSAGE_EVENT_TYPE_URL)[0];
  const messageEventCoding = messageEventTypeExt ? firstChild(firstChild(messageEventTypeExt, 'valueCodeableConcept') ?? messageEventTypeExt, 'coding') : undefined;

  const resources = indexEntries(entries);
  const routingNhsNumber = nhsIdentifier ? childValue(nhsIdentifier, 'value') : undefined;
  const subject = findSubjectPatient(header, resources, routingNhsNumber);
  return {
    ok: true,
    event: {
      ...optional('eventSystem', event ? childValue(event, 'system') : undefined),
      ...optional('eventCode', event ? childValue(event, 'code') : undefined),
      ...optional('messageHeaderId', childValue(header, 'id')),
      ...optional('messageEventType', messageEventCoding ? childValue(messageEventCoding, 'code') : undefined),
      hasRoutingDemographics: routing !== undefined,
      ...optional('routingNhsNumberSystem', nhsIdentifier ? childValue(nhsIdentifier, 'system') : undefined),
      ...optional('routingNhsNumber', routingNhsNumber),
      ...optional('routingBirthDateTime', birth ? childValue(birth, 'valueDateTime') : undefined),
      ...(subject ? { subjectPatient: patientRecord(subject, resources) } : {}),
    },
  };
}

interface IndexedResources {
  readonly byFullUrl: ReadonlyMap<string, XmlElement>;
  readonly patients: readonly XmlElement[];
}

function indexEntries(entries: readonly XmlElement[]): IndexedResources {
  const byFullUrl = new Map<string, XmlElement>();
  const patients: XmlElement[] = [];
  for (const entry of entries) {
    const resource = resourceOf(firstChild(entry, 'resource'));
    if (!resource) continue;
    const fullUrl = childValue(entry, 'fullUrl');
    if (fullUrl && !byFullUrl.has(fullUrl)) byFullUrl.set(fullUrl, resource);
    if (resource.name === 'Patient') patients.push(resource);
  }
  return { byFullUrl, patients };
}

function patientNhsNumber(patient: XmlElement): string | undefined {
  const id = childrenNamed(patient, 'identifier').find((i) => childValue(i, 'system') === NHS_NUMBER_SYSTEM);
  return id ? childValue(id, 'value') : undefined;
}

/**
 * The Patient the event is about: the one carrying the routing NHS number; without one (a birth notification
 * without the mother's number), the Patient the focus resource names as subject/patient, else the first Patient.
 */
function findSubjectPatient(header: XmlElement, resources: IndexedResources, routingNhsNumber: string | undefined): XmlElement | undefined {
  if (routingNhsNumber) return resources.patients.find((p) => patientNhsNumber(p) === routingNhsNumber);
  const focusRef = childValue(firstChild(header, 'focus') ?? header, 'reference');
  const focus = focusRef ? resources.byFullUrl.get(focusRef) : undefined;
  if (focus?.name === 'Patient') return focus;
  for (const link of ['subject', 'patient']) {
    const ref = focus ? childValue(firstChild(focus, link) ?? focus, 'reference') : undefined;
    const target = ref ? resources.byFullUrl.get(ref) : undefined;
    if (target?.name === 'Patient') return target;
  }
  return resources.patients[0];
}

function patientRecord(patient: XmlElement, resources: IndexedResources): PatientRecord {
  const addresses = childrenNamed(patient, 'address');
  const home = addresses.find((a) => childValue(a, 'use') === 'home') ?? addresses[0];
  return {
    ...optional('gpOdsCode', gpOdsCode(patient, resources)),
    ...optional('postcode', home ? childValue(home, 'postalCode') : undefined),
    ...optional('birthDate', childValue(patient, 'birthDate')),
  };
}

/** The registered practice: a bundled Organization, an ODS directory URL, or a logical ODS identifier. */
function gpOdsCode(patient: XmlElement, resources: IndexedResources): string | undefined {
  for (const gp of childrenNamed(patient, 'generalPractitioner')) {
    const ref = childValue(gp, 'reference');
    if (ref) {
      const target = resources.byFullUrl.get(ref);
      if (target?.name === 'Organization') {
        const ods = childrenNamed(target, 'identifier').find((i) => childValue(i, 'system') === ODS_ORGANIZATION_SYSTEM);
        const code = ods ? childValue(ods, 'value') : undefined;
        if (code) return code;
      }
      const m = /\/Organization\/([A-Za-z0-9]{1,10})$/.exec(ref);
      if (m) return m[1];
    }
    const identifier = firstChild(gp, 'identifier');
    if (identifier && childValue(identifier, 'system') === ODS_ORGANIZATION_SYSTEM) {
      const code = childValue(identifier, 'value');
      if (code) return code;
    }
  }
  return undefined;
}
