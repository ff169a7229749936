// The event-message validator and NHS-number extraction on parsed trees (src/fhir/event-message.ts). Inputs are
// the NEMS example events and the publish body, edited where the rules look: event code and system, message
// event type, MessageHeader id, source/responsible/focus/event dropped or repeated, routing demographics (NHS
// number, name, use, family, birth date), Patient entries and contained Patients carrying NHS numbers up to just
// over the 32-number cap (decoy systems, missing values), a second MessageHeader, the header moved, date-times
// without a zone anywhere, the namespace; plus the generic XML tree edits. Then written out and parsed.
// Contract: never throws; a refusal is 422 INVALID_RESOURCE naming a Bundle element, never a value; an acceptance
// is for the InteractionID's event with an allowed message event type and a UUID id, carries no date-time without
// a zone anywhere, and hands on exactly the NHS numbers an independent walk of the Bundle finds (the routing
// number first, every NHS-number Patient.identifier in entries and contained resources), at most 32, which is
// also what the lenient collectEventNhsNumbers finds.
import fc from 'fast-check';
import { collectEventNhsNumbers, validateEventMessage, type EventMessageResult } from '../../../src/fhir/event-message.js';
import { eventTypeByCode, NEMS_EVENT_TYPES, PUBLISHABLE_EVENT_TYPES, type NemsEventType } from '../../../src/nems/events.js';
import { DEFAULT_XML_LIMITS, parseFhirXml, type XmlElement } from '../../../src/fhir/xml.js';
import type { NhsNumberRef } from '../../../src/pipeline/types.js';
import { CANARY, excerpt, expectNoCanary, expectThat, printedAs, type FuzzTarget } from '../harness.js';
import {
  applyTreeEdit, CANONICAL_STYLE, clone, escapeAttribute, serialise, styleArbitrary, treeEditArbitrary, xmlCorpus, type GenElement, type TreeEdit, type XmlStyle,
} from '../xml-gen.js';
import { validNhsNumber } from './nhs-number.js';

const NHS_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
const ROUTING_URL = 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-RoutingDemographics-1';
const MET_URL = 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-MessageEventType-1';
const MAX_NHS_NUMBERS = 32;
const UUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

// ---------------------------------------------------------------------------------------------------------------
// Finding the parts the rules read, in a generated tree.

const el = (name: string, attributes: [string, string][] = [], children: GenElement[] = []): GenElement => ({ kind: 'element', name, attributes, children });
const prim = (name: string, value: string) => el(name, [['value', escapeAttribute(value)]]);
const kids = (e: GenElement | undefined, name: string): GenElement[] => (e ? e.children.filter((c): c is GenElement => c.kind === 'element' && c.name === name) : []);
const attr = (e: GenElement, name: string) => e.attributes.find(([n]) => n === name)?.[1];
const byUrl = (e: GenElement | undefined, url: string) => kids(e, 'extension').filter((x) => attr(x, 'url') === url);

function header(root: GenElement): GenElement | undefined {
  const resource = kids(kids(root, 'entry')[0], 'resource')[0];
  return resource?.children.find((c): c is GenElement => c.kind === 'element');
}

function setValue(parent: GenElement | undefined, name: string, value: string): void {
  if (!parent) return;
  const found = kids(parent, name)[0];
  if (found) found.attributes = [['value', escapeAttribute(value)]];
  else parent.children.push(prim(name, value));
}

function routing(root: GenElement): GenElement | undefined {
  return byUrl(header(root), ROUTING_URL)[0];
}

// ---------------------------------------------------------------------------------------------------------------
// Edits.

const EVENT_CODES = [...NEMS_EVENT_TYPES.map((e) => e.code), 'Vaccinations-1', 'vaccinations', '', CANARY];
const MESSAGE_EVENT_TYPES = ['new', 'update', 'delete', 'New', '', CANARY];
const IDS = ['85c8a1c5-a8a1-41c9-bb99-20956fa66218', '85C8A1C5-A8A1-41C9-BB99-20956FA66218', '85c8a1c5a8a141c9bb9920956fa66218', 'urn:uuid:85c8a1c5-a8a1-41c9-bb99-20956fa66218', '', CANARY];
const NHS_VALUES = ['9912003888', '9434765919', '9434765918', '1111111111', '', ' 9912003888', CANARY];
const BIRTHS = ['2017-10-02', '2017-10', '2017', '2017-10-02T12:00:00+00:00', '2017-10-02T12:00:00', '2017-10-02T12:00:00+14:01', '2017-13-01', '02/10/2017', CANARY];
const DATE_TIMES = ['2018-09-04T11:16:15', '2018-09-04T11:16', '2018-09-04T11:16:15.123', '2018-09-04T11:16:15+00:00', '2018-09-04T11:16:15Z', '2018-09-04T11:16:15+58:00', '2018-09-04'];

type EventEdit =
  | { readonly op: 'event-code'; readonly value: number }
  | { readonly op: 'event-system' | 'namespace' | 'second-header' | 'move-header' | 'family-twice'; readonly flag: boolean }
  | { readonly op: 'message-event-type'; readonly value: number }
  | { readonly op: 'message-id'; readonly value: number }
  | { readonly op: 'header-child'; readonly name: 'source' | 'responsible' | 'focus' | 'event'; readonly repeat: boolean }
  | { readonly op: 'routing-nhs'; readonly value: number }
  | { readonly op: 'routing-part'; readonly part: 'name' | 'birthDateTime' | 'nhsNumber'; readonly repeat: boolean }
  | { readonly op: 'routing-use'; readonly official: boolean }
  | { readonly op: 'birth'; readonly value: number }
  | { readonly op: 'patients'; readonly delta: number; readonly contained: boolean; readonly decoy: boolean; readonly missingValue: boolean; readonly seed: number }
  | { readonly op: 'zoneless'; readonly at: number; readonly value: number };

const at = fc.noBias(fc.nat({ max: 0x7fffffff }));
const eventEdit: fc.Arbitrary<EventEdit> = fc.oneof(
  fc.record({ op: fc.constant('event-code' as const), value: fc.nat({ max: EVENT_CODES.length - 1 }) }),
  fc.record({ op: fc.constantFrom('event-system' as const, 'namespace' as const, 'second-header' as const, 'move-header' as const, 'family-twice' as const), flag: fc.boolean() }),
  fc.record({ op: fc.constant('message-event-type' as const), value: fc.nat({ max: MESSAGE_EVENT_TYPES.length - 1 }) }),
  fc.record({ op: fc.constant('message-id' as const), value: fc.nat({ max: IDS.length - 1 }) }),
  fc.record({ op: fc.constant('header-child' as const), name: fc.constantFrom('source' as const, 'responsible' as const, 'focus' as const, 'event' as const), repeat: fc.boolean() }),
  fc.record({ op: fc.constant('routing-nhs' as const), value: fc.nat({ max: NHS_VALUES.length - 1 }) }),
  fc.record({ op: fc.constant('routing-part' as const), part: fc.constantFrom('name' as const, 'birthDateTime' as const, 'nhsNumber' as const), repeat: fc.boolean() }),
  fc.record({ op: fc.constant('routing-use' as const), official: fc.boolean() }),
  fc.record({ op: fc.constant('birth' as const), value: fc.nat({ max: BIRTHS.length - 1 }) }),
  fc.record({
    op: fc.constant('patients' as const),
    delta: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: -30, max: -1 }) }, { weight: 2, arbitrary: fc.integer({ min: -1, max: 2 }) }),
    contained: fc.boolean(),
    decoy: fc.boolean(),
    missingValue: fc.boolean(),
    seed: fc.nat({ max: 999_999_999 }),
  }),
  fc.record({ op: fc.constant('zoneless' as const), at, value: fc.nat({ max: DATE_TIMES.length - 1 }) }),
);

function applyEventEdit(root: GenElement, edit: EventEdit): void {
  const h = header(root);
  const r = routing(root);
  switch (edit.op) {
    case 'event-code':
      setValue(kids(h, 'event')[0], 'code', EVENT_CODES[edit.value]!);
      break;
    case 'event-system':
      setValue(kids(h, 'event')[0], 'system', edit.flag ? 'https://fhir.nhs.uk/STU3/CodeSystem/EventType-2' : '');
      break;
    case 'namespace':
      root.attributes = edit.flag ? [['xmlns', 'http://hl7.org/fhir/']] : [];
      break;
    case 'second-header':
      if (h) root.children.push(el('entry', [], [el('resource', [], [clone(h)])]));
      break;
    case 'move-header': {
      const entries = kids(root, 'entry');
      if (entries.length > 1) {
        root.children.splice(root.children.indexOf(entries[0]!), 1);
        root.children.push(entries[0]!);
      }
      break;
    }
    case 'family-twice': {
      const name = kids(byUrl(r, 'name')[0], 'valueHumanName')[0];
      if (name) name.children.push(prim('family', edit.flag ? 'DAWKINS' : 'OTHER'));
      break;
    }
    case 'message-event-type': {
      const coding = kids(kids(byUrl(h, MET_URL)[0], 'valueCodeableConcept')[0], 'coding')[0];
      setValue(coding, 'code', MESSAGE_EVENT_TYPES[edit.value]!);
      break;
    }
    case 'message-id':
      setValue(h, 'id', IDS[edit.value]!);
      break;
    case 'header-child': {
      const found = kids(h, edit.name)[0];
      if (h && found) {
        if (edit.repeat) h.children.push(clone(found));
        else h.children.splice(h.children.indexOf(found), 1);
      }
      break;
    }
    case 'routing-nhs':
      setValue(kids(byUrl(r, 'nhsNumber')[0], 'valueIdentifier')[0], 'value', NHS_VALUES[edit.value]!);
      break;
    case 'routing-part': {
      const found = byUrl(r, edit.part)[0];
      if (r && found) {
        if (edit.repeat) r.children.push(clone(found));
        else r.children.splice(r.children.indexOf(found), 1);
      }
      break;
    }
    case 'routing-use':
      setValue(kids(byUrl(r, 'name')[0], 'valueHumanName')[0], 'use', edit.official ? 'official' : 'usual');
      break;
    case 'birth':
      setValue(byUrl(r, 'birthDateTime')[0], 'valueDateTime', BIRTHS[edit.value]!);
      break;
    case 'patients': {
      // Identifiers so that the Bundle carries MAX_NHS_NUMBERS + delta numbers (routing one included).
      const present = oracleNumbers(parseGen(root))?.length ?? 1;
      const count = Math.max(1, MAX_NHS_NUMBERS + edit.delta - present);
      const identifiers = Array.from({ length: count }, (_, i) =>
        el('identifier', [], [
          prim('system', edit.decoy && i === 0 ? 'https://fhir.nhs.uk/Id/local' : NHS_SYSTEM),
          ...(edit.decoy && i === 0 ? [prim('system', NHS_SYSTEM)] : []),
          ...(edit.missingValue && i === count - 1 ? [] : [prim('value', validNhsNumber(edit.seed + i))]),
        ]),
      );
      const patient = el('Patient', [], identifiers);
      const resource = edit.contained ? el('Encounter', [], [el('contained', [], [patient]), prim('status', 'finished')]) : patient;
      root.children.push(el('entry', [], [prim('fullUrl', `urn:uuid:${edit.seed}`), el('resource', [], [resource])]));
      break;
    }
    case 'zoneless': {
      const withValue: GenElement[] = [];
      const walk = (e: GenElement) => {
        if (attr(e, 'value') !== undefined) withValue.push(e);
        for (const c of e.children) if (c.kind === 'element') walk(c);
      };
      walk(root);
      const target = withValue[edit.at % Math.max(1, withValue.length)];
      if (target) target.attributes = target.attributes.map(([n, v]) => [n, n === 'value' ? DATE_TIMES[edit.value]! : v]);
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The independent reading of what an accepted Bundle must carry.

function parseGen(root: GenElement): XmlElement | undefined {
  const parsed = parseFhirXml(Buffer.from(serialise(root, CANONICAL_STYLE)), 8 * 1024 * 1024, { maxElements: 1_000_000 }, 'single-pass');
  return parsed.ok ? parsed.root : undefined;
}

const children = (e: XmlElement, name: string) => e.children.filter((c) => c.name === name);
const value = (e: XmlElement, name: string) => {
  const found = children(e, name);
  return found.length === 1 ? found[0]!.attributes.get('value') : undefined;
};
const only = (wrapper: XmlElement | undefined) => (wrapper && wrapper.children.length === 1 ? wrapper.children[0] : undefined);

/** The routing number, then every Patient.identifier value with the NHS-number system, in entries and contained. */
function oracleNumbers(bundle: XmlElement | undefined): string[] | undefined {
  if (!bundle) return undefined;
  const found: string[] = [];
  const entries = children(bundle, 'entry');
  const head = only(children(entries[0] ?? bundle, 'resource')[0]);
  for (const ext of (head?.children ?? []).filter((c) => c.name === 'extension' && c.attributes.get('url') === ROUTING_URL)) {
    for (const n of ext.children.filter((c) => c.name === 'extension' && c.attributes.get('url') === 'nhsNumber')) {
      for (const id of children(n, 'valueIdentifier')) {
        const v = value(id, 'value');
        if (v !== undefined) found.push(v);
      }
    }
  }
  for (const entry of entries) {
    const resource = only(children(entry, 'resource')[0]);
    if (!resource) continue;
    const patients = resource.name === 'Patient' ? [resource] : [];
    for (const c of children(resource, 'contained')) {
      const inner = only(c);
      if (inner?.name === 'Patient') patients.push(inner);
    }
    for (const p of patients) {
      for (const id of children(p, 'identifier')) {
        if (!children(id, 'system').some((s) => s.attributes.get('value') === NHS_SYSTEM)) continue;
        const v = value(id, 'value');
        if (v !== undefined) found.push(v);
      }
    }
  }
  return found;
}

const WITH_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
const ZONE = /(?:Z|[+-]\d{2}:\d{2})$/;

function hasZonelessDateTime(e: XmlElement): boolean {
  const v = e.attributes.get('value');
  if (v !== undefined && WITH_TIME.test(v) && !ZONE.test(v)) return true;
  return e.children.some(hasZonelessDateTime);
}

// ---------------------------------------------------------------------------------------------------------------
// Generation and the contract.

export interface EventMessageInput {
  /** The Bundle as written; run() parses it (single-pass) and validates the tree. */
  readonly written: string;
  readonly publishEventType: NemsEventType;
}

const PUBLISHABLE_BASES = (): number[] =>
  xmlCorpus()
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => /vaccinations|Professional|blood-spot|newborn|nipe|publish/.test(c.name))
    .map(({ i }) => i);

export const eventMessageInputArbitrary: fc.Arbitrary<EventMessageInput> = fc
  .record({
    base: fc.nat(),
    anyBase: fc.nat({ max: 7 }),
    edits: fc.array(eventEdit, { maxLength: 3 }),
    treeEdits: fc.oneof({ weight: 3, arbitrary: fc.constant([] as TreeEdit[]) }, { weight: 1, arbitrary: fc.array(treeEditArbitrary, { maxLength: 2 }) }),
    style: fc.oneof({ weight: 3, arbitrary: fc.constant(CANONICAL_STYLE) }, { weight: 1, arbitrary: styleArbitrary }),
    interaction: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...PUBLISHABLE_EVENT_TYPES) }),
  })
  .map(({ base, anyBase, edits, treeEdits, style, interaction }) => {
    const corpus = xmlCorpus();
    const publishable = PUBLISHABLE_BASES();
    // Mostly publishable examples; now and then a Spine-published one (refused, but it reaches deep first).
    let tree = clone(corpus[anyBase === 0 ? base % corpus.length : publishable[base % publishable.length]!]!.tree);
    for (const edit of edits) applyEventEdit(tree, edit);
    for (const edit of treeEdits) tree = applyTreeEdit(tree, edit, DEFAULT_XML_LIMITS);
    const written = serialise(tree, style as XmlStyle);
    // The InteractionID's event: the message's own when it is publishable, else one picked.
    const code = header(tree) ? kids(kids(header(tree), 'event')[0], 'code')[0] : undefined;
    const own = code ? eventTypeByCode(attr(code, 'value') ?? '') : undefined;
    const publishEventType = interaction ?? (own && !own.publishedBySpine ? own : PUBLISHABLE_EVENT_TYPES[base % PUBLISHABLE_EVENT_TYPES.length]!);
    const input: EventMessageInput = { written, publishEventType };
    return printedAs(input, () => `{ event: ${publishEventType.code}, bundle: ${excerpt(written, 3000)} }`);
  });

type EventMessageOutput =
  | { readonly parsed: false; readonly reason: string }
  | { readonly parsed: true; readonly tree: XmlElement; readonly result: EventMessageResult; readonly collected: NhsNumberRef[] };

function runEventMessage(input: EventMessageInput): EventMessageOutput {
  const parsed = parseFhirXml(Buffer.from(input.written, 'utf8'), 3 * 1024 * 1024, undefined, 'single-pass');
  if (!parsed.ok) return { parsed: false, reason: parsed.reason };
  return { parsed: true, tree: parsed.root, result: validateEventMessage(parsed.root, input.publishEventType), collected: collectEventNhsNumbers(parsed.root) };
}

function checkEventMessage(input: EventMessageInput, out: EventMessageOutput): void {
  if (!out.parsed) return;
  const r = out.result;
  if (!r.ok) {
    expectThat(r.rejection.code === 'INVALID_RESOURCE', `undocumented code ${r.rejection.code}`);
    expectThat(r.rejection.diagnostics.startsWith('Bundle'), 'diagnostics do not name a Bundle element');
    expectNoCanary(r.rejection.diagnostics, 'event-message diagnostics');
    return;
  }
  expectThat(r.event.eventType === input.publishEventType, 'accepted a message for another event than the InteractionID names');
  // Under the default (strict) policy the message event type is enforced, so an accepted message always has one.
  const messageEventType = r.event.messageEventType;
  expectThat(messageEventType !== undefined && r.event.eventType.messageEventTypes.includes(messageEventType), 'accepted a message event type the event does not allow');
  expectThat(UUID.test(r.event.messageId), 'accepted a MessageHeader id that is not a UUID');
  expectThat(!hasZonelessDateTime(out.tree), 'accepted a date-time without a timezone');
  const expected = oracleNumbers(out.tree) ?? [];
  const handed = r.nhsNumbers.map((n) => n.value);
  expectThat(JSON.stringify(handed) === JSON.stringify(expected), `NHS numbers handed on (${handed.length}) differ from those the Bundle carries (${expected.length})`);
  expectThat(handed.length >= 1 && handed.length <= MAX_NHS_NUMBERS && r.nhsNumbers[0]!.source === 'routing-demographics', 'accepted without the routing number first, or over the 32-number cap');
  expectThat(JSON.stringify(out.collected.map((n) => n.value)) === JSON.stringify(handed), 'collectEventNhsNumbers disagrees with the validator');
  for (const n of r.nhsNumbers) expectNoCanary(n.element, 'an NHS number element path');
}

export const eventMessageTarget: FuzzTarget<EventMessageInput, EventMessageOutput> = {
  name: 'event-message',
  covers: 'src/fhir/event-message.ts (rules and NHS-number extraction) on Bundles parsed by the single-pass engine',
  arbitrary: eventMessageInputArbitrary,
  run: runEventMessage,
  check: checkEventMessage,
  classify: (out) => (!out.parsed ? `not parsed: ${out.reason}` : out.result.ok ? 'accepted' : `refused: ${out.result.rejection.diagnostics.split(':')[0]!.replace(/\[\d+\]/g, '[n]').slice(0, 90)}`),
  show: (input) => `${input.publishEventType.code}\n${input.written}`,
  ciRuns: 500,
};
