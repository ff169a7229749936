// Subscription create rules (docs/specification.md §1.4–1.6, §1.10; issue 4 point 2). The XML tree or the JSON object is
// first read into one small draft model (structure only), then the NEMS rules run once over that model.
//
// Decisions:
// - A client-assigned `id` → 405 MSG_RESOURCE_ID_FAIL (the Spine code the digest names for exactly this);
//   `meta.versionId` / `meta.lastUpdated` → 422 INVALID_RESOURCE.
// - Explicit/generic not allowed by the ASID's NEMS_SUBS_TYPE category bag → 403 ACCESS_DENIED (authorisation,
//   not a resource fault). Every other rule → 422 INVALID_RESOURCE naming the element.
// - Only the STU3 Subscription elements NEMS can act on are accepted; `contained`, `modifierExtension`,
//   `implicitRules`, `error`, the legacy 2018 `channel.header` and unknown elements are refused, so the gateway
//   never passes on content whose meaning it did not check. JSON primitive extensions (`_status`) are refused too.
// - The XML root must be `Subscription` in the FHIR namespace.
// - `end`, when present, must be a valid FHIR instant (fhir/datetime.ts, rule `fhir.datetime-format`) and lie in
//   the future.
// - The rules that need the endpoint registry (contact ODS codes and the mailbox registered for the ASID, the
//   NEMS_SUBS_TYPE category bag, the mailbox's workflow IDs) take the ASID registration as a parameter. The
//   embedded core, which has no registry when it runs standalone, passes none: it then checks that the mailbox is
//   a MESH mailbox id and every other rule exactly as the gateway does (docs/specification.md §1.4).
import { parseCriteria } from './criteria.js';
import { describeFhirTemporal, parseFhirInstant } from './datetime.js';
import type { ParsedCriteria } from './criteria-types.js';
import { eventTypeByCode, LEGACY_WORKFLOW_ALIASES } from '../nems/events.js';
import type { FhirFormat } from './operation-outcome.js';
import { FHIR_XML_NAMESPACE, type XmlElement } from './xml.js';
import type { AsidRegistration } from '../identity/types.js';
import { isMailboxId, isOdsCode, ODS_ORGANIZATION_URL_PREFIX } from '../nems/identifiers.js';
import type { NhsNumberRef, ParsedSubscription, Rejection } from '../pipeline/types.js';
import type { ConformanceRuleId } from '../rules/catalogue.js';
import { RulePolicy, type RuleReports } from '../rules/policy.js';


const TOP_LEVEL = new Set(['id', 'meta', 'language', 'text', 'extension', 'status', 'contact', 'end', 'reason', 'criteria', 'channel', 'tag']);
const META = new Set(['versionId', 'lastUpdated', 'profile', 'security', 'tag', 'extension']);
const CONTACT = new Set(['system', 'value', 'use', 'rank', 'period', 'extension']);
const CHANNEL = new Set(['type', 'endpoint', 'payload', 'extension']);

export type SubscriptionCreateResult =
  | {
      readonly ok: true;
      readonly subscription: ParsedSubscription;
      readonly criteria: ParsedCriteria;
      readonly nhsNumbers: NhsNumberRef[];
      /** `Subscription.end` in ms since the epoch, when given. */
      readonly endAt?: number;
    }
  | { readonly ok: false; readonly rejection: Rejection };

interface ContactDraft {
  readonly system?: string;
  readonly value?: string;
  readonly use?: string;
}

/** What the rules need from a Subscription, whatever its format. */
interface SubscriptionDraft {
  readonly hasMetaVersionId: boolean;
  readonly hasMetaLastUpdated: boolean;
  readonly status?: string;
  readonly reason?: string;
  readonly criteria?: string;
  readonly end?: string;
  readonly contacts: readonly ContactDraft[];
  readonly channelType?: string;
  readonly channelEndpoint?: string;
}

type Result<T> = { ok: true; value: T } | { ok: false; rejection: Rejection };

/** A security rule of the Subscription (subscription.resource unless named). */
function invalidResource(element: string, problem: string, rule: 'subscription.resource' | 'subscription.contact-ods' | 'subscription.mailbox' | 'criteria.syntax' = 'subscription.resource'): { ok: false; rejection: Rejection } {
  return { ok: false, rejection: { rule, code: 'INVALID_RESOURCE', diagnostics: `${element}: ${problem}` } };
}

/** What the registry knows about the requesting ASID that the Subscription rules need. */
export type SubscriptionRegistration = Pick<AsidRegistration, 'odsCodes' | 'mailboxes' | 'subscriptionTypes'>;

/**
 * Validates a Subscription create body already parsed by xml.ts (format 'xml', an XmlElement root) or json.ts
 * (format 'json', the parsed value). `now` (ms since the epoch) decides whether `end` is in the past.
 * `asid` is the requesting ASID's registration; undefined where no registry is known (the standalone core).
 */
export function validateSubscriptionCreate(
  resource: XmlElement | unknown,
  format: FhirFormat,
  asid: SubscriptionRegistration | undefined,
  now: number = Date.now(),
  policy: RulePolicy = RulePolicy.STRICT,
  reports: RuleReports = {},
): SubscriptionCreateResult {
  const view = format === 'xml' ? xmlView(resource as XmlElement) : jsonView(resource);
  if (!view.ok) return view;
  // A client-assigned id is judged before anything else, with its own Spine code.
  if (view.value.has('id')) {
    const refused = policy.fire(reports, 'subscription.id-supplied', 'Subscription.id: must not be supplied on create; NEMS assigns it');
    if (refused) return { ok: false, rejection: refused };
  }
  const draft = readDraft(view.value);
  if (!draft.ok) return draft;
  return applyRules(draft.value, asid, now, policy, reports);
}

function applyRules(d: SubscriptionDraft, asid: SubscriptionRegistration | undefined, now: number, policy: RulePolicy, reports: RuleReports): SubscriptionCreateResult {
  // A conformance rule: enforce ends the check here; report or off carries on with what can still be relied on.
  const conform = (rule: ConformanceRuleId, element: string, problem: string): { ok: false; rejection: Rejection } | undefined => {
    const refused = policy.fire(reports, rule, `${element}: ${problem}`);
    return refused ? { ok: false, rejection: refused } : undefined;
  };
  let failed: { ok: false; rejection: Rejection } | undefined;
  if (d.hasMetaVersionId && (failed = conform('subscription.meta-supplied', 'Subscription.meta.versionId', 'must not be supplied on create'))) return failed;
  if (d.hasMetaLastUpdated && (failed = conform('subscription.meta-supplied', 'Subscription.meta.lastUpdated', 'must not be supplied on create'))) return failed;
  if (d.status === undefined) {
    if ((failed = conform('subscription.status', 'Subscription.status', 'is required'))) return failed;
  } else if (d.status !== 'requested' && (failed = conform('subscription.status', 'Subscription.status', "must be 'requested' on create"))) return failed;
  if ((d.reason === undefined || d.reason.trim() === '') && (failed = conform('subscription.reason', 'Subscription.reason', 'is required'))) return failed;
  if (d.criteria === undefined) return invalidResource('Subscription.criteria', 'is required', 'criteria.syntax');

  const parsed = parseCriteria(d.criteria, policy, reports);
  if (!parsed.ok) return { ok: false, rejection: { rule: parsed.rule, code: 'INVALID_RESOURCE', diagnostics: `${parsed.element}: ${parsed.problem}` } };
  const criteria = parsed.criteria;

  // Every contact is the requesting organisation: use work, system url, the ODS directory URL of an ODS code the
  // ASID is registered for (docs/specification.md §1.4: "the endpoint ASID … MUST include every ODS code used in subscriptions").
  // The first one's ODS code is also the mailbox's (checked below). The shape is conformance; that every contact
  // names an ODS code of the ASID is security (subscription.contact-ods), so a contact whose code cannot be read is
  // refused when there is a registry to check it against.
  if (d.contacts.length === 0 && (failed = conform('subscription.contact', 'Subscription.contact', 'is required'))) return failed;
  const contactOdsCodes: string[] = [];
  for (const [i, contact] of d.contacts.entries()) {
    const at = `Subscription.contact[${i}]`;
    if (contact.use !== 'work' && (failed = conform('subscription.contact', `${at}.use`, "must be 'work'"))) return failed;
    if (contact.system !== 'url' && (failed = conform('subscription.contact', `${at}.system`, "must be 'url'"))) return failed;
    let ods: string | undefined;
    if (contact.value === undefined || !contact.value.startsWith(ODS_ORGANIZATION_URL_PREFIX)) {
      if ((failed = conform('subscription.contact', `${at}.value`, `must be ${ODS_ORGANIZATION_URL_PREFIX}<ODS code>`))) return failed;
    } else {
      ods = contact.value.slice(ODS_ORGANIZATION_URL_PREFIX.length);
      if (!isOdsCode(ods)) {
        if ((failed = conform('subscription.contact', `${at}.value`, 'ODS code must be 1 to 9 letters or digits'))) return failed;
        ods = undefined;
      }
    }
    if (asid && (ods === undefined || !asid.odsCodes.includes(ods))) {
      return invalidResource(`${at}.value`, 'ODS code is not registered for the requesting ASID', 'subscription.contact-ods');
    }
    if (ods !== undefined) contactOdsCodes.push(ods);
  }

  if (d.channelType === undefined) {
    if ((failed = conform('subscription.channel-type', 'Subscription.channel.type', 'is required'))) return failed;
  } else if (d.channelType !== 'message' && (failed = conform('subscription.channel-type', 'Subscription.channel.type', "must be 'message'"))) return failed;
  if (d.channelEndpoint === undefined) return invalidResource('Subscription.channel.endpoint', 'is required', 'subscription.mailbox');
  const mailbox = asid?.mailboxes.find((m) => m.id === d.channelEndpoint);
  if (asid) {
    if (!mailbox) return invalidResource('Subscription.channel.endpoint', 'is not a MESH mailbox registered for the requesting ASID', 'subscription.mailbox');
    if (contactOdsCodes.length > 0 && mailbox.odsCode !== contactOdsCodes[0]) {
      return invalidResource('Subscription.channel.endpoint', 'MESH mailbox belongs to a different ODS code than Subscription.contact[0]', 'subscription.mailbox');
    }
  } else if (!isMailboxId(d.channelEndpoint)) {
    return invalidResource('Subscription.channel.endpoint', 'must be a MESH mailbox id', 'subscription.mailbox');
  }
  // The subscriber: contact[0]'s ODS code, or (its contacts reported) the mailbox's.
  const contactOds = contactOdsCodes[0] ?? mailbox?.odsCode ?? '';

  let endAt: number | undefined;
  if (d.end !== undefined) {
    // fhir.datetime-format: an end that is not a valid instant is no end the core could apply.
    const end = parseFhirInstant(d.end);
    if (end === undefined) {
      if ((failed = conform('fhir.datetime-format', 'Subscription.end', `must be ${describeFhirTemporal('instant')}`))) return failed;
    } else {
      if (end <= now && (failed = conform('subscription.end-future', 'Subscription.end', 'must be in the future'))) return failed;
      endAt = end;
    }
  }

  if (asid && !asid.subscriptionTypes.includes(criteria.subscriptionType)) {
    return {
      ok: false,
      rejection: {
        rule: 'subscription.type-allowed',
        code: 'ACCESS_DENIED',
        diagnostics: `Subscription.criteria: ${criteria.subscriptionType} subscriptions are not allowed for the requesting ASID (NEMS_SUBS_TYPE)`,
      },
    };
  }
  if (mailbox && mailbox.workflowIds.length > 0) {
    const accepted = new Set(mailbox.workflowIds.map((w) => LEGACY_WORKFLOW_ALIASES[w] ?? w));
    for (const code of criteria.eventCodes) {
      // An unknown code was judged by criteria.event-code; it names no workflow to look for.
      const event = eventTypeByCode(code);
      if (event && !accepted.has(event.workflowId)) {
        if ((failed = conform('subscription.mailbox-workflow', 'Subscription.criteria (MessageHeader.event)', 'event type is not enabled for the MESH mailbox (workflow ID)'))) return failed;
        break;
      }
    }
  }

  const nhsNumbers: NhsNumberRef[] =
    criteria.nhsNumber !== undefined
      ? [{ value: criteria.nhsNumber, source: 'subscription-criteria', element: 'Subscription.criteria (Patient.identifier)' }]
      : [];
  const subscription: ParsedSubscription = {
    kind: 'subscription',
    subscriptionType: criteria.subscriptionType,
    contactOds,
    mailboxId: mailbox?.id ?? d.channelEndpoint,
    eventCodes: criteria.eventCodes,
  };
  return { ok: true, subscription, criteria, nhsNumbers, ...(endAt !== undefined ? { endAt } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Format views: the same questions asked of an XML element or a JSON object.

/** A primitive read: absent, a string value, or present but unusable (repeated, wrong type, no value). */
type Primitive = { kind: 'absent' } | { kind: 'value'; value: string } | { kind: 'invalid'; problem: string };

interface FhirView {
  /** Element names present, for the allow-lists. */
  names(): string[];
  has(name: string): boolean;
  primitive(name: string): Primitive;
  /** A singular complex child; invalid when repeated or of the wrong type. */
  object(name: string): Result<FhirView | undefined>;
  /** A repeating complex child. */
  objects(name: string): Result<FhirView[]>;
}

function xmlView(root: XmlElement): Result<FhirView> {
  if (root.name !== 'Subscription') return invalidResource('Subscription', 'root element must be a FHIR Subscription');
  if (root.attributes.get('xmlns') !== FHIR_XML_NAMESPACE) return invalidResource('Subscription', `must be in the namespace ${FHIR_XML_NAMESPACE}`);
  return { ok: true, value: xmlElementView(root) };
}

function xmlElementView(el: XmlElement): FhirView {
  const named = (name: string) => el.children.filter((c) => c.name === name);
  return {
    names: () => el.children.map((c) => c.name),
    has: (name) => el.children.some((c) => c.name === name),
    primitive(name) {
      const found = named(name);
      if (found.length === 0) return { kind: 'absent' };
      if (found.length > 1) return { kind: 'invalid', problem: 'must not be repeated' };
      const value = found[0]!.attributes.get('value');
      if (value === undefined || value === '') return { kind: 'invalid', problem: 'must have a non-empty value attribute' };
      return { kind: 'value', value };
    },
    object(name) {
      const found = named(name);
      if (found.length > 1) return invalidResource(name, 'must not be repeated');
      return { ok: true, value: found[0] ? xmlElementView(found[0]) : undefined };
    },
    objects(name) {
      return { ok: true, value: named(name).map(xmlElementView) };
    },
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonView(resource: unknown): Result<FhirView> {
  if (!isPlainObject(resource)) return invalidResource('Subscription', 'body must be a JSON object');
  if (resource['resourceType'] !== 'Subscription') return invalidResource('Subscription.resourceType', "must be 'Subscription'");
  return { ok: true, value: jsonObjectView(resource, true) };
}

function jsonObjectView(obj: Record<string, unknown>, isResource = false): FhirView {
  const own = (name: string) => Object.prototype.hasOwnProperty.call(obj, name);
  return {
    names: () => Object.keys(obj).filter((k) => !(isResource && k === 'resourceType')),
    has: own,
    primitive(name) {
      if (!own(name)) return { kind: 'absent' };
      const value = obj[name];
      if (typeof value !== 'string') return { kind: 'invalid', problem: 'must be a string' };
      if (value === '') return { kind: 'invalid', problem: 'must not be empty' };
      return { kind: 'value', value };
    },
    object(name) {
      if (!own(name)) return { ok: true, value: undefined };
      const value = obj[name];
      if (!isPlainObject(value)) return invalidResource(name, 'must be a JSON object');
      return { ok: true, value: jsonObjectView(value) };
    },
    objects(name) {
      if (!own(name)) return { ok: true, value: [] };
      const value = obj[name];
      if (!Array.isArray(value) || value.length === 0) return invalidResource(name, 'must be a non-empty JSON array');
      const views: FhirView[] = [];
      for (const item of value) {
        if (!isPlainObject(item)) return invalidResource(name, 'array items must be JSON objects');
        views.push(jsonObjectView(item));
      }
      return { ok: true, value: views };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the draft (structure only; the NEMS rules live in applyRules).

/** Names the refused element only when it looks like a FHIR element name, so client text is never echoed. */
function unknownElement(view: FhirView, allowed: ReadonlySet<string>, path: string): { ok: false; rejection: Rejection } | undefined {
  for (const name of view.names()) {
    if (allowed.has(name)) continue;
    if (/^_?[A-Za-z][A-Za-z0-9]{0,39}$/.test(name)) return invalidResource(`${path}.${name}`, 'is not accepted on a NEMS Subscription create');
    return invalidResource(path, 'contains an element that is not accepted on a NEMS Subscription create');
  }
  return undefined;
}

function readPrimitive(view: FhirView, name: string, path: string): Result<string | undefined> {
  const p = view.primitive(name);
  if (p.kind === 'invalid') return invalidResource(`${path}.${name}`, p.problem);
  return { ok: true, value: p.kind === 'value' ? p.value : undefined };
}

function prefixed(result: { ok: false; rejection: Rejection }, path: string): { ok: false; rejection: Rejection } {
  return { ok: false, rejection: { ...result.rejection, diagnostics: `${path}.${result.rejection.diagnostics}` } };
}

function readDraft(view: FhirView): Result<SubscriptionDraft> {
  const unknownTop = unknownElement(view, TOP_LEVEL, 'Subscription');
  if (unknownTop) return unknownTop;

  const meta = view.object('meta');
  if (!meta.ok) return prefixed(meta, 'Subscription');
  if (meta.value) {
    const unknown = unknownElement(meta.value, META, 'Subscription.meta');
    if (unknown) return unknown;
  }

  const fields: Record<'status' | 'reason' | 'criteria' | 'end', string | undefined> = {
    status: undefined,
    reason: undefined,
    criteria: undefined,
    end: undefined,
  };
  for (const name of ['status', 'reason', 'criteria', 'end'] as const) {
    const read = readPrimitive(view, name, 'Subscription');
    if (!read.ok) return read;
    fields[name] = read.value;
  }

  const contactViews = view.objects('contact');
  if (!contactViews.ok) return prefixed(contactViews, 'Subscription');
  const contacts: ContactDraft[] = [];
  for (const [index, c] of contactViews.value.entries()) {
    const path = `Subscription.contact[${index}]`;
    const unknown = unknownElement(c, CONTACT, path);
    if (unknown) return unknown;
    const system = readPrimitive(c, 'system', path);
    if (!system.ok) return system;
    const value = readPrimitive(c, 'value', path);
    if (!value.ok) return value;
    const use = readPrimitive(c, 'use', path);
    if (!use.ok) return use;
    contacts.push({ system: system.value, value: value.value, use: use.value });
  }

  const channel = view.object('channel');
  if (!channel.ok) return prefixed(channel, 'Subscription');
  let channelType: string | undefined;
  let channelEndpoint: string | undefined;
  if (channel.value) {
    const unknown = unknownElement(channel.value, CHANNEL, 'Subscription.channel');
    if (unknown) return unknown;
    const type = readPrimitive(channel.value, 'type', 'Subscription.channel');
    if (!type.ok) return type;
    const endpoint = readPrimitive(channel.value, 'endpoint', 'Subscription.channel');
    if (!endpoint.ok) return endpoint;
    channelType = type.value;
    channelEndpoint = endpoint.value;
  }

  return {
    ok: true,
    value: {
      hasMetaVersionId: meta.value?.has('versionId') ?? false,
      hasMetaLastUpdated: meta.value?.has('lastUpdated') ?? false,
      ...fields,
      contacts,
      channelType,
      channelEndpoint,
    },
  };
}
