// The Subscription create validator on parsed trees (src/fhir/subscription.ts, with criteria.ts), XML and JSON.
// Inputs are the example explicit and generic Subscriptions with their elements edited (id and meta present,
// status, contacts of other organisations or uses, `end` around now and on impossible dates, channel types and
// other ASIDs' mailboxes, criteria from the criteria fuzzer, elements outside the profile), for the example
// registrations and one whose mailbox restricts workflow IDs; JSON also gets values of the wrong type; some
// bodies are then mutated as bytes.
// Contract: never throws; a refusal is 422 INVALID_RESOURCE, 405 MSG_RESOURCE_ID_FAIL or 403 ACCESS_DENIED naming
// an element of the Subscription, never a value; the same Subscription gets the same answer (code and element) in
// XML and in JSON; an acceptance agrees with the registration (ODS code, mailbox, subscription type, workflow IDs)
// and with the criteria, and the example Subscriptions are accepted.
import fc from 'fast-check';
import { parseFhirJson } from '../../../src/fhir/json.js';
import { validateSubscriptionCreate, type SubscriptionCreateResult } from '../../../src/fhir/subscription.js';
import { parseFhirXml } from '../../../src/fhir/xml.js';
import type { AsidRegistration } from '../../../src/identity/types.js';
import {
  EXPLICIT_SUBSCRIPTION, GENERIC_SUBSCRIPTION, GP_MAILBOX, GP_ODS, ODS_URL, subscriptionJson, subscriptionXml, type SubscriptionModel,
} from '../../helpers/bodies.js';
import { CHILD_HEALTH_REGISTRATION, GP_SYSTEM_REGISTRATION } from '../../helpers/endpoints.js';
import { CANARY, excerpt, expectNoCanary, expectThat, printedAs, type FuzzTarget } from '../harness.js';
import { applyMutations, mutationsArbitrary, type Mutation } from '../mutate.js';
import { criteriaInputArbitrary } from './criteria.js';

/** Request time of every fuzzed create. */
const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);

/** A registration whose mailbox takes two workflow IDs only (one in its legacy spelling). */
const WORKFLOW_REGISTRATION: AsidRegistration = {
  ...GP_SYSTEM_REGISTRATION,
  subscriptionTypes: ['explicit', 'generic'],
  mailboxes: [{ id: GP_MAILBOX, odsCode: GP_ODS, workflowIds: ['VACCINATIONS_1', 'PDS_RECORD_CHANGE_1'] }],
};
const REGISTRATIONS: Readonly<Record<string, AsidRegistration>> = {
  'gp-system': GP_SYSTEM_REGISTRATION,
  'child-health': CHILD_HEALTH_REGISTRATION,
  'gp-workflow': WORKFLOW_REGISTRATION,
};
type RegistrationName = 'gp-system' | 'child-health' | 'gp-workflow';

const CODES = new Set(['INVALID_RESOURCE', 'MSG_RESOURCE_ID_FAIL', 'ACCESS_DENIED']);

// ---------------------------------------------------------------------------------------------------------------
// Generation.

const option = <T>(values: readonly T[]) => fc.oneof({ weight: 3, arbitrary: fc.constant('keep' as const) }, { weight: 1, arbitrary: fc.constantFrom(...values) });

const CONTACTS = [
  [],
  [{ system: 'url', value: `${ODS_URL}A83627`, use: 'work' }],
  [{ system: 'url', value: `${ODS_URL}RX3EP`, use: 'work' }],
  [{ system: 'url', value: `${ODS_URL}A83627`, use: 'work' }, { system: 'url', value: `${ODS_URL}RX3EP`, use: 'work' }],
  [{ system: 'url', value: `${ODS_URL}A83627`, use: 'home' }],
  [{ system: 'email', value: `${ODS_URL}A83627`, use: 'work' }],
  [{ system: 'url', value: 'https://directory.spineservices.nhs.uk/STU3/Organization/', use: 'work' }],
  [{ system: 'url', value: `${ODS_URL}A83627/x`, use: 'work' }],
  [{ system: 'url', value: `${ODS_URL}${CANARY}`, use: 'work' }],
  [{ value: `${ODS_URL}A83627` }],
  [{}],
] as const;
const ENDS = [
  '2030-01-01T00:00:00Z', '2025-06-01T12:00:01Z', '2025-06-01T12:00:00Z', '2020-01-01T00:00:00Z', '2030-01-01T00:00:00', '2030-02-30T00:00:00Z',
  '2030-01-01T24:00:00Z', '2030-01-01T00:00:00+14:00', '2030-01-01T00:00:00+14:01', '2030-01-01T00:00:00.123456789Z', '2030-01-01T00:00:00.1234567890Z',
  '2030-01-01', '2028-02-29T00:00:00Z', '2029-02-29T00:00:00Z', CANARY,
];
const EXTRAS = [
  { name: 'error', value: 'x' }, { name: 'contained', value: 'x' }, { name: 'modifierExtension', value: 'x' }, { name: 'implicitRules', value: 'x' },
  { name: 'unknownElement', value: CANARY }, { name: 'a-b', value: 'x' }, { name: 'n'.repeat(41), value: 'x' }, { name: 'tag', value: 'x' },
];

const modelEdits = fc.record({
  base: fc.constantFrom('explicit', 'generic'),
  id: option(['abc', '']),
  meta: option(['versionId', 'lastUpdated', 'none']),
  status: option(['active', 'off', '', 'Requested', 'requested ', CANARY]),
  contacts: option(CONTACTS.map((_, i) => i)),
  end: option(ENDS),
  reason: option(['', ' ', CANARY, 'é'.repeat(300)]),
  criteria: fc.oneof({ weight: 3, arbitrary: fc.constant('keep' as const) }, { weight: 2, arbitrary: criteriaInputArbitrary.map((c) => c.criteria) }),
  channelType: option(['rest-hook', '', 'Message']),
  endpoint: option(['RX3EPMB001', 'A83627MB001', 'X', '', CANARY]),
  header: option(['x']),
  extra: option(EXTRAS.map((_, i) => i)),
  noChannel: fc.boolean(),
});

type ModelEdits = typeof modelEdits extends fc.Arbitrary<infer T> ? T : never;

/** The example Subscription, its contact and mailbox those of the registration (so inputs get past them). */
function modelFrom(e: ModelEdits, registration: AsidRegistration): SubscriptionModel {
  const base = e.base === 'explicit' ? EXPLICIT_SUBSCRIPTION : GENERIC_SUBSCRIPTION;
  const mailbox = registration.mailboxes[0]!;
  const m: SubscriptionModel = {
    ...base,
    contacts: [{ system: 'url', value: `${ODS_URL}${mailbox.odsCode}`, use: 'work' }],
    channel: { ...base.channel, endpoint: mailbox.id },
  };
  if (e.id !== 'keep') m.id = e.id;
  if (e.meta === 'versionId') m.metaVersionId = '1';
  if (e.meta === 'lastUpdated') m.metaLastUpdated = '2025-01-01T00:00:00Z';
  if (e.meta === 'none') delete m.profile;
  if (e.status !== 'keep') m.status = e.status;
  if (e.contacts !== 'keep') m.contacts = CONTACTS[e.contacts]!.map((c) => ({ ...c }));
  if (e.end !== 'keep') m.end = e.end;
  if (e.reason !== 'keep') m.reason = e.reason;
  if (e.criteria !== 'keep') m.criteria = e.criteria;
  if (e.channelType !== 'keep') m.channel!.type = e.channelType;
  if (e.endpoint !== 'keep') m.channel!.endpoint = e.endpoint;
  if (e.header !== 'keep') m.channel!.header = e.header;
  if (e.extra !== 'keep') m.extra = { ...EXTRAS[e.extra]! };
  if (e.noChannel) delete m.channel;
  return m;
}

/** JSON values of the wrong type, set on the parsed object (the validator's input) rather than the text. */
const JSON_TWEAKS = [
  ['status', 1], ['status', null], ['status', ['requested']], ['contact', {}], ['contact', []], ['contact', [null]], ['contact', ['x']],
  ['channel', []], ['channel', 'message'], ['meta', []], ['reason', true], ['criteria', { a: 1 }], ['_status', { id: 'x' }], ['resourceType', 'Bundle'],
  ['end', 20300101],
] as const;

export interface SubscriptionInput {
  readonly model: SubscriptionModel;
  readonly registration: RegistrationName;
  readonly jsonTweak?: number;
  readonly mutations: readonly Mutation[];
  /** The example Subscription as it is, for a registration it suits: must be accepted. */
  readonly valid: boolean;
}

const TOKENS = ['<', '>', '"', '{', '}', ',', ':', '&amp;', '\\u0000', 'value', '/'];

export const subscriptionInputArbitrary: fc.Arbitrary<SubscriptionInput> = fc
  .record({
    edits: modelEdits,
    editsUsed: fc.boolean(),
    registration: fc.constantFrom<RegistrationName>('gp-system', 'child-health', 'gp-workflow'),
    jsonTweak: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat({ max: JSON_TWEAKS.length - 1 }) }),
    mutations: fc.oneof({ weight: 4, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: mutationsArbitrary(TOKENS.length, 1, 2) }),
  })
  .map(({ edits, editsUsed, registration, jsonTweak, mutations }) => {
    const plain: ModelEdits = { ...edits, id: 'keep', meta: 'keep', status: 'keep', contacts: 'keep', end: 'keep', reason: 'keep', criteria: 'keep', channelType: 'keep', endpoint: 'keep', header: 'keep', extra: 'keep', noChannel: false };
    const used = editsUsed ? edits : plain;
    const model = modelFrom(used, REGISTRATIONS[registration]!);
    // gp-system may not subscribe generically; gp-workflow's mailbox does not take the examples' event.
    const suits = registration === 'child-health' || (registration === 'gp-system' && used.base === 'explicit');
    const valid = !editsUsed && jsonTweak === undefined && mutations.length === 0 && suits;
    const input: SubscriptionInput = { model, registration, ...(jsonTweak !== undefined ? { jsonTweak } : {}), mutations, valid };
    return printedAs(input, () => `{ registration: ${registration}, valid: ${valid}, jsonTweak: ${jsonTweak ?? '-'}, mutations: ${JSON.stringify(mutations)}, model: ${excerpt(JSON.stringify(model), 1500)} }`);
  });

// ---------------------------------------------------------------------------------------------------------------
// Running and the contract.

type Side = { readonly parsed: false; readonly reason: string } | { readonly parsed: true; readonly result: SubscriptionCreateResult };

interface SubscriptionOutput {
  readonly xml: Side;
  readonly json: Side;
}

function xmlSide(input: SubscriptionInput): Side {
  const body = applyMutations(Buffer.from(subscriptionXml(input.model), 'utf8'), input.mutations, TOKENS.map((t) => Buffer.from(t)), []);
  const parsed = parseFhirXml(body, 256 * 1024, undefined, 'single-pass');
  if (!parsed.ok) return { parsed: false, reason: parsed.reason };
  return { parsed: true, result: validateSubscriptionCreate(parsed.root, 'xml', REGISTRATIONS[input.registration]!, NOW) };
}

function jsonSide(input: SubscriptionInput): Side {
  let text = subscriptionJson(input.model);
  if (input.jsonTweak !== undefined) {
    const [key, value] = JSON_TWEAKS[input.jsonTweak]!;
    text = JSON.stringify({ ...(JSON.parse(text) as object), [key]: value });
  }
  const body = applyMutations(Buffer.from(text, 'utf8'), input.mutations, TOKENS.map((t) => Buffer.from(t)), []);
  const parsed = parseFhirJson(body, 256 * 1024);
  if (!parsed.ok) return { parsed: false, reason: parsed.reason };
  return { parsed: true, result: validateSubscriptionCreate(parsed.value, 'json', REGISTRATIONS[input.registration]!, NOW) };
}

function summary(side: Side): string {
  if (!side.parsed) return `parse: ${side.reason}`;
  const r = side.result;
  return r.ok ? `ok ${JSON.stringify(r.subscription)} ${JSON.stringify(r.nhsNumbers)}` : `${r.rejection.code} ${r.rejection.diagnostics.split(': ')[0]}`;
}

/** A value both formats carry the same way: XML trims attribute values and turns tab/CR/LF into spaces. */
function xmlStable(value: string | undefined): boolean {
  return value === undefined || (value === value.trim() && !/[\u0000-\u001f\ufffe\uffff]/.test(value));
}

function modelIsXmlStable(m: SubscriptionModel): boolean {
  const values = [m.id, m.metaVersionId, m.metaLastUpdated, m.profile, m.status, m.end, m.reason, m.criteria, m.channel?.type, m.channel?.endpoint, m.channel?.header, m.extra?.value];
  for (const c of m.contacts ?? []) values.push(c.system, c.value, c.use);
  // An element name is only comparable when it is one in both formats.
  return values.every(xmlStable) && (m.extra === undefined || /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(m.extra.name));
}

function checkSide(input: SubscriptionInput, side: Side, format: string): void {
  if (!side.parsed) return;
  const r = side.result;
  const registration = REGISTRATIONS[input.registration]!;
  if (!r.ok) {
    expectThat(CODES.has(r.rejection.code), `${format}: undocumented code ${r.rejection.code}`);
    expectThat(r.rejection.diagnostics.startsWith('Subscription') && r.rejection.diagnostics.length <= 300, `${format}: diagnostics do not name a Subscription element`);
    expectNoCanary(r.rejection.diagnostics, `${format} diagnostics`);
    return;
  }
  const mailbox = registration.mailboxes.find((m) => m.id === r.subscription.mailboxId);
  expectThat(mailbox !== undefined && mailbox.odsCode === r.subscription.contactOds, `${format}: accepted a mailbox not registered for the contact's ODS code`);
  expectThat(registration.odsCodes.includes(r.subscription.contactOds), `${format}: accepted an ODS code not registered for the ASID`);
  expectThat(registration.subscriptionTypes.includes(r.subscription.subscriptionType) && r.criteria.subscriptionType === r.subscription.subscriptionType, `${format}: accepted a subscription type the ASID may not use`);
  expectThat(JSON.stringify(r.subscription.eventCodes) === JSON.stringify(r.criteria.eventCodes), `${format}: event codes differ from the criteria`);
  expectThat(r.nhsNumbers.length === (r.criteria.nhsNumber === undefined ? 0 : 1) && r.nhsNumbers.every((n) => n.value === r.criteria.nhsNumber), `${format}: the criteria NHS number was not handed on`);
  if (input.jsonTweak === undefined && input.mutations.length === 0) {
    const m = input.model;
    // Both XML engines trim attribute values (as fast-xml-parser does); JSON strings are taken as they are.
    const status = format === 'XML' ? m.status?.trim() : m.status;
    expectThat(m.id === undefined && m.metaVersionId === undefined && m.metaLastUpdated === undefined, `${format}: accepted an id or meta the client may not set`);
    // `tag` is an STU3 Subscription element the validator lets through unread (only its name is checked).
    const extra = m.extra !== undefined && m.extra.name !== 'tag';
    expectThat(status === 'requested' && (m.reason ?? '').trim() !== '' && !extra && m.channel?.header === undefined, `${format}: accepted a Subscription that breaks a create rule`);
    expectThat(m.end === undefined || Date.parse(m.end) > NOW, `${format}: accepted an end that is not in the future`);
  }
}

function checkSubscription(input: SubscriptionInput, out: SubscriptionOutput): void {
  checkSide(input, out.xml, 'XML');
  checkSide(input, out.json, 'JSON');
  if (input.valid) {
    expectThat(out.xml.parsed && out.xml.result.ok && out.json.parsed && out.json.result.ok, `refused the example Subscription: XML ${summary(out.xml)}; JSON ${summary(out.json)}`);
  }
  if (input.jsonTweak === undefined && input.mutations.length === 0 && modelIsXmlStable(input.model) && out.xml.parsed && out.json.parsed) {
    expectThat(summary(out.xml) === summary(out.json), `XML and JSON differ: XML ${summary(out.xml).slice(0, 200)}; JSON ${summary(out.json).slice(0, 200)}`);
  }
}

export const subscriptionTarget: FuzzTarget<SubscriptionInput, SubscriptionOutput> = {
  name: 'subscription',
  covers: 'src/fhir/subscription.ts (with criteria.ts) on XML and JSON trees',
  arbitrary: subscriptionInputArbitrary,
  run: (input) => ({ xml: xmlSide(input), json: jsonSide(input) }),
  check: checkSubscription,
  classify: (out) => summary(out.xml).replace(/^ok .*/, 'accepted').replace(/^(parse: \S+).*/, '$1'),
  show: (input) => `${input.registration}\n${subscriptionXml(input.model)}\n${subscriptionJson(input.model)}`,
  ciRuns: 600,
};
