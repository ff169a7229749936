// Event message (publish) rules over the parsed XML Bundle (docs/specification.md §2.3–2.5, §2.10; issue 4 point 3), and
// extraction of every NHS number the message carries (issue 4 point 4). Modulus 11 and PDS tracing happen later,
// in the nhs-numbers stage; here a number only has to be present where the profile requires it.
//
// Decisions:
// - Every rule here answers 422 INVALID_RESOURCE naming the element: the headers were valid on their own, it
//   is the body that does not fit them. That includes a MessageHeader.event that is published by Spine
//   (never publishable through the API) and one that differs from the event named by the InteractionID.
// - Routing demographics: nhsNumber is required exactly once; name and birthDateTime are required exactly once
//   except on a screening event's `delete` message, where both may be absent (docs/specification.md §2.5 allows minimal screening
//   deletes, and the IG's own blood-spot-test-outcome-1-delete example omits both); other deletes carry the full
//   content. When present, the name must be `use=official` if `use` is given (family at most once, as STU3
//   HumanName says), and birthDateTime a valid FHIR dateTime (fhir/datetime.ts). Both travel with the routing NHS number, whose PDS record they must match
//   (src/pds/demographics.ts, checked by the nhs-numbers stage).
// - A second MessageHeader anywhere in the Bundle is refused, so no later reader can route on a different one.
// - MessageHeader.id must be a UUID, and source, responsible and focus are required exactly once (docs/specification.md §2.3); what
//   they contain is left to NEMS (the IG's own examples differ in source.name and source.contact).
// - Every date, dateTime and instant anywhere in the Bundle must be valid by the FHIR STU3 expressions and the
//   calendar (fhir/datetime.ts, rule `fhir.datetime-format`): a time with seconds and a timezone (docs/specification.md §2.3), an offset
//   within ±14:00, a date that exists.
// - NHS numbers are collected from the routing demographics and from every Patient.identifier with the
//   https://fhir.nhs.uk/Id/nhs-number system, in any entry and in contained resources, up to `maxNhsNumbers`
//   occurrences (bounding the PDS work one request can cause).
import {
  EVENT_TYPE_SYSTEM,
  eventTypeByCode,
  MESSAGE_EVENT_TYPE_SYSTEM,
  MESSAGE_EVENT_TYPE_URL,
  ROUTING_DEMOGRAPHICS_URL,
  type MessageEventType,
  type NemsEventType,
} from '../nems/events.js';
import { NHS_NUMBER_SYSTEM } from '../nems/identifiers.js';
import { describeFhirTemporal, isFhirTemporal, temporalTypeOfElement, type FhirTemporalType } from './datetime.js';
import { childrenNamed, extensionsByUrl, FHIR_XML_NAMESPACE, firstChild, resourceOf, type XmlElement } from './xml.js';
import type { NhsNumberRef, ParsedEventMessage, Rejection } from '../pipeline/types.js';
import type { ConformanceRuleId, SecurityRuleId } from '../rules/catalogue.js';
import { RulePolicy, type RuleReports } from '../rules/policy.js';

export interface EventMessageOptions {
  /** Most NHS number occurrences one message may carry. */
  readonly maxNhsNumbers: number;
  /** What each conformance rule does (strict when not given). */
  readonly policy: RulePolicy;
  /** Where reported rules are recorded (the request context). */
  readonly reports?: RuleReports;
}

export const DEFAULT_EVENT_MESSAGE_OPTIONS: EventMessageOptions = Object.freeze({ maxNhsNumbers: 32, policy: RulePolicy.STRICT });

export type EventMessageResult =
  | { readonly ok: true; readonly event: ParsedEventMessage; readonly nhsNumbers: NhsNumberRef[] }
  | { readonly ok: false; readonly rejection: Rejection };

type Failure = Extract<EventMessageResult, { ok: false }>;

const HEADER = 'Bundle.entry[0].resource.MessageHeader';
/** The MessageHeader id is a UUID (docs/specification.md §2.3: unique per message, never reused); any version, either case. */
const UUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

type EventSecurityRule = Extract<SecurityRuleId, 'event.structure' | 'event.code' | 'event.routing-demographics' | 'event.nhs-numbers'>;

function invalid(element: string, problem: string, rule: EventSecurityRule = 'event.structure'): Failure {
  return { ok: false, rejection: { rule, code: 'INVALID_RESOURCE', diagnostics: `${element}: ${problem}` } };
}

/** A conformance rule of the message: the failure when it enforces, undefined when reported or off. */
type Conform = (rule: ConformanceRuleId, element: string, problem: string) => Failure | undefined;

function conformer(policy: RulePolicy, reports: RuleReports): Conform {
  return (rule, element, problem) => {
    const refused = policy.fire(reports, rule, `${element}: ${problem}`);
    return refused ? { ok: false, rejection: refused } : undefined;
  };
}

/** The single `value` attribute of the only child `name`; undefined when absent, repeated or empty. */
function onlyValue(el: XmlElement, name: string): string | undefined {
  const found = childrenNamed(el, name);
  if (found.length !== 1) return undefined;
  const value = found[0]!.attributes.get('value');
  return value === '' ? undefined : value;
}

/**
 * Validates a publish Bundle against the event named by the InteractionID (`publishEventType`) and collects its
 * NHS numbers. `tree` is the root returned by parseFhirXml.
 */
export function validateEventMessage(
  tree: XmlElement,
  publishEventType: NemsEventType,
  opts: Partial<EventMessageOptions> = {},
): EventMessageResult {
  const options = { ...DEFAULT_EVENT_MESSAGE_OPTIONS, ...opts };
  const conform = conformer(options.policy, options.reports ?? {});
  let failed: Failure | undefined;
  if (tree.name !== 'Bundle') return invalid('Bundle', 'root element must be a FHIR Bundle');
  if (tree.attributes.get('xmlns') !== FHIR_XML_NAMESPACE) return invalid('Bundle', `must be in the namespace ${FHIR_XML_NAMESPACE}`);
  if (onlyValue(tree, 'type') !== 'message') return invalid('Bundle.type', "must be 'message' (exactly once)");

  const entries = childrenNamed(tree, 'entry');
  if (entries.length === 0) return invalid('Bundle.entry', 'a message Bundle needs at least the MessageHeader entry');
  const resources: (XmlElement | undefined)[] = [];
  for (const [index, entry] of entries.entries()) {
    const wrappers = childrenNamed(entry, 'resource');
    const resource = wrappers.length === 1 ? resourceOf(wrappers[0]) : undefined;
    if (!resource) return invalid(`Bundle.entry[${index}].resource`, 'must hold exactly one resource');
    resources.push(resource);
  }
  const header = resources[0]!;
  if (header.name !== 'MessageHeader') return invalid('Bundle.entry[0].resource', 'the first entry must be the MessageHeader');
  const extraHeader = resources.findIndex((r, i) => i > 0 && r?.name === 'MessageHeader');
  if (extraHeader !== -1) return invalid(`Bundle.entry[${extraHeader}].resource`, 'a message Bundle has exactly one MessageHeader');

  const messageId = onlyValue(header, 'id');
  if ((messageId === undefined || !UUID.test(messageId)) && (failed = conform('event.header-id', `${HEADER}.id`, 'is required and must be a UUID'))) return failed;
  // source, responsible and focus are 1..1 in Event-MessageHeader-1 (docs/specification.md §2.3); their contents are the event profile's.
  for (const element of ['source', 'responsible', 'focus'] as const) {
    if (childrenNamed(header, element).length !== 1 && (failed = conform('event.header-elements', `${HEADER}.${element}`, 'is required exactly once'))) return failed;
  }

  // MessageHeader.event: the event this message is, which must be the event the InteractionID names.
  const events = childrenNamed(header, 'event');
  if (events.length !== 1) return invalid(`${HEADER}.event`, 'is required exactly once');
  const event = events[0]!;
  if (onlyValue(event, 'system') !== EVENT_TYPE_SYSTEM) return invalid(`${HEADER}.event.system`, `must be ${EVENT_TYPE_SYSTEM}`, 'event.code');
  const eventCode = onlyValue(event, 'code');
  const eventType = eventCode === undefined ? undefined : eventTypeByCode(eventCode);
  if (!eventType) return invalid(`${HEADER}.event.code`, 'is not a known EventType-1 code', 'event.code');
  if (eventType.publishedBySpine) {
    return invalid(`${HEADER}.event.code`, 'this event type is published by Spine and cannot be published through the Publication API', 'event.code');
  }
  if (eventType.code !== publishEventType.code) {
    return invalid(`${HEADER}.event.code`, 'does not match the event named by the InteractionID header', 'event.code');
  }

  // event.message-event-type: reported, the message is treated as a full (not a minimal delete) message.
  let messageEventType: MessageEventType | undefined;
  const read = readMessageEventType(header);
  if (typeof read !== 'string') {
    if ((failed = conform('event.message-event-type', read.element, read.problem))) return failed;
  } else if (!eventType.messageEventTypes.includes(read)) {
    if ((failed = conform('event.message-event-type', `${HEADER}.extension(messageEventType)`, `is not allowed for ${eventType.code} (allowed: ${eventType.messageEventTypes.join(', ')})`))) return failed;
  } else {
    messageEventType = read;
  }

  const nhsNumbers: NhsNumberRef[] = [];
  // docs/specification.md §2.5: only a screening delete may be minimal (MessageHeader plus the focus Encounter, no name or birth date).
  const routing = readRoutingDemographics(header, messageEventType === 'delete' && eventType.screening, nhsNumbers, conform);
  if (routing) return routing;
  for (const [index, resource] of resources.entries()) {
    const found = collectPatientNumbers(resource!, `Bundle.entry[${index}].resource`, nhsNumbers);
    if (found) return found;
  }
  if (nhsNumbers.length > options.maxNhsNumbers) {
    return invalid('Bundle', `carries more than ${options.maxNhsNumbers} NHS numbers`, 'event.nhs-numbers');
  }
  // fhir.datetime-format: every date, dateTime and instant in the Bundle.
  const badDate = findInvalidTemporal(tree, 'Bundle');
  if (badDate && (failed = conform('fhir.datetime-format', badDate.path, `must be ${describeFhirTemporal(badDate.type)}`))) return failed;

  return {
    ok: true,
    event: { kind: 'event', eventType, ...(messageEventType !== undefined ? { messageEventType } : {}), messageId: messageId ?? '' },
    nhsNumbers,
  };
}

/**
 * The first date, dateTime or instant in the Bundle that is not valid (fhir/datetime.ts decides which elements hold
 * one: by element name, and any value written as a date with a time), with its element path; undefined when all are.
 * docs/specification.md §2.3: "dateTime values that carry a time MUST carry a timezone offset" is part of it.
 */
function findInvalidTemporal(el: XmlElement, path: string): { path: string; type: FhirTemporalType } | undefined {
  const value = el.attributes.get('value');
  if (value !== undefined) {
    const type = temporalTypeOfElement(el.name, value);
    if (type && !isFhirTemporal(type, value)) return { path, type };
  }
  for (const child of el.children) {
    const found = findInvalidTemporal(child, `${path}.${child.name}`);
    if (found) return found;
  }
  return undefined;
}

function readMessageEventType(header: XmlElement): MessageEventType | { element: string; problem: string } {
  const element = `${HEADER}.extension(messageEventType)`;
  const extensions = extensionsByUrl(header, MESSAGE_EVENT_TYPE_URL);
  if (extensions.length !== 1) return { element, problem: 'is required exactly once' };
  const concepts = childrenNamed(extensions[0]!, 'valueCodeableConcept');
  if (concepts.length !== 1) return { element: `${element}.valueCodeableConcept`, problem: 'is required exactly once' };
  const codings = childrenNamed(concepts[0]!, 'coding').filter((c) => onlyValue(c, 'system') === MESSAGE_EVENT_TYPE_SYSTEM);
  if (codings.length !== 1) return { element: `${element}.valueCodeableConcept.coding`, problem: `needs exactly one coding from ${MESSAGE_EVENT_TYPE_SYSTEM}` };
  const code = onlyValue(codings[0]!, 'code');
  if (code !== 'new' && code !== 'update' && code !== 'delete') {
    return { element: `${element}.valueCodeableConcept.coding.code`, problem: "must be 'new', 'update' or 'delete'" };
  }
  return code;
}

/** Checks the routing demographics extension and records its NHS number. Returns a failure or undefined. */
function readRoutingDemographics(header: XmlElement, minimalAllowed: boolean, nhsNumbers: NhsNumberRef[], conform: Conform): Failure | undefined {
  const element = `${HEADER}.extension(routingDemographics)`;
  const routingInvalid = (at: string, problem: string): Failure => invalid(at, problem, 'event.routing-demographics');
  const extensions = extensionsByUrl(header, ROUTING_DEMOGRAPHICS_URL);
  if (extensions.length !== 1) return routingInvalid(element, 'is required exactly once');
  const routing = extensions[0]!;

  const nhsNumberExt = extensionsByUrl(routing, 'nhsNumber');
  if (nhsNumberExt.length !== 1) return routingInvalid(`${element}.extension(nhsNumber)`, 'is required exactly once');
  const identifiers = childrenNamed(nhsNumberExt[0]!, 'valueIdentifier');
  if (identifiers.length !== 1) return routingInvalid(`${element}.extension(nhsNumber).valueIdentifier`, 'is required exactly once');
  if (onlyValue(identifiers[0]!, 'system') !== NHS_NUMBER_SYSTEM) {
    return routingInvalid(`${element}.extension(nhsNumber).valueIdentifier.system`, `must be ${NHS_NUMBER_SYSTEM}`);
  }
  const value = onlyValue(identifiers[0]!, 'value');
  if (value === undefined) return routingInvalid(`${element}.extension(nhsNumber).valueIdentifier.value`, 'is required');
  const ref = { value, source: 'routing-demographics', element: `${element}.extension(nhsNumber).valueIdentifier.value` } as const;

  const names = extensionsByUrl(routing, 'name');
  const births = extensionsByUrl(routing, 'birthDateTime');
  if (minimalAllowed && names.length === 0 && births.length === 0) {
    nhsNumbers.push(ref);
    return undefined;
  }
  if (names.length !== 1) return routingInvalid(`${element}.extension(name)`, 'is required exactly once');
  const humanNames = childrenNamed(names[0]!, 'valueHumanName');
  if (humanNames.length !== 1) return routingInvalid(`${element}.extension(name).valueHumanName`, 'is required exactly once');
  const humanName = humanNames[0]!;
  const use = childrenNamed(humanName, 'use');
  let failed: Failure | undefined;
  if (use.length > 0 && onlyValue(humanName, 'use') !== 'official') {
    if ((failed = conform('event.name-use', `${element}.extension(name).valueHumanName.use`, "must be 'official'"))) return failed;
  }
  const families = childrenNamed(humanName, 'family');
  if (families.length > 1) return routingInvalid(`${element}.extension(name).valueHumanName.family`, 'is allowed at most once');
  const family = families[0]?.attributes.get('value') || undefined;
  const given: string[] = [];
  for (const g of childrenNamed(humanName, 'given')) {
    const v = g.attributes.get('value');
    if (v) given.push(v);
  }
  if (family === undefined && given.length === 0) {
    return routingInvalid(`${element}.extension(name).valueHumanName`, 'must carry the patient name');
  }

  if (births.length !== 1) return routingInvalid(`${element}.extension(birthDateTime)`, 'is required exactly once');
  const birth = onlyValue(births[0]!, 'valueDateTime');
  if (birth === undefined) return routingInvalid(`${element}.extension(birthDateTime).valueDateTime`, 'is required');
  // fhir.datetime-format for the routing birth date, named here because it travels with the routing NHS number. A
  // reported one is still compared with PDS as written (src/pds/demographics.ts): a date that is not the record's
  // is a mismatch, which pds.demographics-match (security) refuses.
  if (!isFhirTemporal('dateTime', birth)) {
    if ((failed = conform('fhir.datetime-format', `${element}.extension(birthDateTime).valueDateTime`, `must be ${describeFhirTemporal('dateTime')}`))) return failed;
  }
  // Name and birth date go with the number: they must match its PDS record (checked in the nhs-numbers stage).
  nhsNumbers.push({ ...ref, demographics: { element, ...(family !== undefined ? { family } : {}), given, birthDateTime: birth } });
  return undefined;
}

/**
 * Records the NHS number of every Patient.identifier with the NHS number system: the resource itself when it
 * is a Patient, and any Patient in its `contained`. An NHS-number identifier without a value is refused.
 */
function collectPatientNumbers(resource: XmlElement, path: string, nhsNumbers: NhsNumberRef[]): Failure | undefined {
  const patients: { el: XmlElement; path: string }[] = [];
  if (resource.name === 'Patient') patients.push({ el: resource, path: `${path}.Patient` });
  for (const [index, contained] of childrenNamed(resource, 'contained').entries()) {
    const inner = resourceOf(contained);
    if (inner?.name === 'Patient') patients.push({ el: inner, path: `${path}.${resource.name}.contained[${index}].Patient` });
  }
  for (const patient of patients) {
    for (const [index, identifier] of childrenNamed(patient.el, 'identifier').entries()) {
      // Any NHS-number system child counts, so a decoy first <system> cannot hide a number.
      if (!childrenNamed(identifier, 'system').some((s) => s.attributes.get('value') === NHS_NUMBER_SYSTEM)) continue;
      const element = `${patient.path}.identifier[${index}].value`;
      const value = onlyValue(identifier, 'value');
      if (value === undefined) return invalid(element, 'an NHS number identifier needs exactly one value', 'event.nhs-numbers');
      nhsNumbers.push({ value, source: 'patient-identifier', element });
    }
  }
  return undefined;
}

/**
 * Lenient extraction of every NHS number a Bundle carries, without validating anything else: the routing
 * demographics of a first-entry MessageHeader and every NHS-number Patient.identifier. For audit and tests
 * (e.g. showing which numbers a message that fails other rules would have put before PDS).
 */
export function collectEventNhsNumbers(tree: XmlElement): NhsNumberRef[] {
  const found: NhsNumberRef[] = [];
  for (const [index, entry] of childrenNamed(tree, 'entry').entries()) {
    const resource = resourceOf(firstChild(entry, 'resource'));
    if (!resource) continue;
    if (index === 0 && resource.name === 'MessageHeader') {
      const element = `${HEADER}.extension(routingDemographics).extension(nhsNumber).valueIdentifier.value`;
      for (const routing of extensionsByUrl(resource, ROUTING_DEMOGRAPHICS_URL)) {
        for (const ext of extensionsByUrl(routing, 'nhsNumber')) {
          for (const identifier of childrenNamed(ext, 'valueIdentifier')) {
            const value = onlyValue(identifier, 'value');
            if (value !== undefined && onlyValue(identifier, 'system') === NHS_NUMBER_SYSTEM) {
              found.push({ value, source: 'routing-demographics', element });
            }
          }
        }
      }
    }
    collectPatientNumbers(resource, `Bundle.entry[${index}].resource`, found);
  }
  return found;
}
