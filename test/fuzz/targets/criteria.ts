// Subscription criteria (src/fhir/criteria.ts). Inputs are criteria built from the docs/specification.md §1.5 grammar (explicit and
// generic, every optional component), then edited as components (repeat, drop, rename, reorder, spoil or
// percent-encode a value, lengths at the caps) and mutated as bytes.
// Contract: never throws; a valid criteria string from the grammar is accepted as exactly what was written; a
// refusal names the criteria (and at most a known component), never a value; anything over 4096 characters is
// refused for its length; an accepted result keeps every cardinality and value rule, and written back out (values
// percent-encoded or not) parses to the same result.
import fc from 'fast-check';
import { CRITERIA_PREFIX, MAX_CRITERIA_LENGTH, parseCriteria } from '../../../src/fhir/criteria.js';
import type { CriteriaParseResult, ParsedCriteria } from '../../../src/fhir/criteria-types.js';
import { NEMS_EVENT_TYPES } from '../../../src/nems/events.js';
import { CANARY, excerpt, expectNoCanary, expectThat, printedAs, type CapProbe, type FuzzTarget } from '../harness.js';
import { mutateText, mutationsArbitrary, type Mutation } from '../mutate.js';

const NHS_SYSTEM = 'http://fhir.nhs.net/Id/nhs-number';
const EVENT_CODES = NEMS_EVENT_TYPES.map((e) => e.code);
const RULE_TYPES = ['GP_GP_GP', 'UHV_POSTCODE_LACODE', 'CHO_GP_CCG', 'CHO_POSTCODE_CCG', 'COUNTRYCODE'];
const COUNTRIES = ['E92000001', 'W92000004', 'S92000003', 'N92000002', 'L93000001', 'M83000003'];
const COMPONENTS = ['serviceType', 'Patient.identifier', 'MessageHeader.event', 'Patient.age', 'GPRegistration', 'subscriptionRuleType', 'Organization.identifier', 'tag'];
const TAG_CHARS = 'ABCxyz019-_|,';

type Component = [name: string, value: string];

/** A criteria string from the grammar, as components, and whether it is valid as generated. */
interface CriteriaModel {
  readonly components: Component[];
}

const tag = fc.array(fc.constantFrom(...TAG_CHARS), { minLength: 1, maxLength: 100 }).map((c) => c.join(''));
const ages = fc.oneof(
  fc.constant([] as string[]),
  fc.tuple(fc.constantFrom('lt', 'gt', 'le', 'ge', 'eq'), fc.integer({ min: 1, max: 149 })).map(([c, y]) => [`${c}${y}`]),
  fc.tuple(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 80, max: 150 }), fc.boolean(), fc.boolean()).map(([lo, hi, g, l]) => [`${g ? 'gt' : 'ge'}${lo}`, `${l ? 'lt' : 'le'}${hi}`]),
);

const explicitModel: fc.Arbitrary<CriteriaModel> = fc
  .record({
    serviceType: fc.option(fc.constantFrom('GP', 'CHO', 'UHV', 'EPCHR'), { nil: undefined }),
    nhs: fc.constantFrom('9912003888', '9434765919', '1234567890', '0000000000', CANARY),
    events: fc.uniqueArray(fc.constantFrom(...EVENT_CODES), { minLength: 1, maxLength: 4 }),
    ages,
    gp: fc.option(fc.constantFrom('RegisteredOnly', 'UnregisteredOnly'), { nil: undefined }),
    tag: fc.option(tag, { nil: undefined }),
  })
  .map(({ serviceType, nhs, events, ages: a, gp, tag: t }) => ({
    components: [
      ...(serviceType ? [['serviceType', serviceType] as Component] : []),
      ['Patient.identifier', `${NHS_SYSTEM}|${nhs}`] as Component,
      ...events.map((e) => ['MessageHeader.event', e] as Component),
      ...a.map((v) => ['Patient.age', v] as Component),
      ...(gp ? [['GPRegistration', gp] as Component] : []),
      ...(t ? [['tag', t] as Component] : []),
    ],
  }));

const genericModel: fc.Arbitrary<CriteriaModel> = fc
  .record({
    rule: fc.constantFrom(...RULE_TYPES),
    org: fc.stringMatching(/^[A-Z0-9]{1,9}$/),
    country: fc.constantFrom(...COUNTRIES),
    event: fc.constantFrom(...EVENT_CODES),
    ages,
    gp: fc.option(fc.constantFrom('RegisteredOnly', 'UnregisteredOnly'), { nil: undefined }),
    tag: fc.option(tag, { nil: undefined }),
  })
  .map(({ rule, org, country, event, ages: a, gp, tag: t }) => ({
    components: [
      ['subscriptionRuleType', rule] as Component,
      ['Organization.identifier', rule === 'COUNTRYCODE' ? country : org] as Component,
      ['MessageHeader.event', event] as Component,
      ...a.map((v) => ['Patient.age', v] as Component),
      ...(gp && rule !== 'GP_GP_GP' && rule !== 'CHO_GP_CCG' ? [['GPRegistration', gp] as Component] : []),
      ...(t ? [['tag', t] as Component] : []),
    ],
  }));

type CriteriaEdit =
  | { readonly op: 'repeat' | 'drop' | 'swap' | 'encode' | 'encode-reserved'; readonly at: number }
  | { readonly op: 'rename'; readonly at: number; readonly name: number }
  | { readonly op: 'value'; readonly at: number; readonly value: number }
  | { readonly op: 'length'; readonly at: number; readonly delta: number };

const NAMES = [...COMPONENTS, 'type', 'patient.identifier', 'Patient.Identifier', '', 'MessageHeader.event ', 'unknown', 'Patient.identifier%3D', CANARY];
const VALUES = [
  '', '%', '%2', '%zz', '%C3%28', '%E2%82', '%00', '%26', '%3D', 'a=b', ' ', '+', 'GP ', 'gp', 'lt0', 'gt150', 'lt151', 'eq151', 'ge0', 'lt00',
  'eq5', 'gtx', `${NHS_SYSTEM}|9912003888`, `${NHS_SYSTEM}|`, `https://fhir.nhs.uk/Id/nhs-number|9912003888`, `${NHS_SYSTEM}%7C9912003888`,
  'pds-change-of-gp-1', 'PDS-CHANGE-OF-GP-1', 'COUNTRYCODE', 'E92000001', 'ABCDEFGHIJ', 'é', '😀', CANARY, `${NHS_SYSTEM}|${CANARY}`,
];

const position = fc.noBias(fc.nat({ max: 0x7fffffff }));
const criteriaEdit: fc.Arbitrary<CriteriaEdit> = fc.oneof(
  fc.record({ op: fc.constantFrom('repeat' as const, 'drop' as const, 'swap' as const, 'encode' as const, 'encode-reserved' as const), at: position }),
  fc.record({ op: fc.constant('rename' as const), at: position, name: fc.nat({ max: NAMES.length - 1 }) }),
  fc.record({ op: fc.constant('value' as const), at: position, value: fc.nat({ max: VALUES.length - 1 }) }),
  fc.record({ op: fc.constant('length' as const), at: position, delta: fc.integer({ min: -1, max: 1 }) }),
);

/** Percent-encodes every character (`all`) or only what would split the string (`%`, `&`, `=`). */
function encodeValue(value: string, all: boolean): string {
  if (all) return [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  return value.replace(/[%&=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function writeCriteria(components: readonly Component[], prefix = CRITERIA_PREFIX): string {
  return prefix + components.map(([n, v]) => `&${n}=${v}`).join('');
}

function applyEdit(components: Component[], edit: CriteriaEdit): void {
  const i = components.length === 0 ? 0 : edit.at % components.length;
  const c = components[i];
  switch (edit.op) {
    case 'repeat':
      if (c) components.splice(i, 0, [c[0], c[1]]);
      break;
    case 'drop':
      if (c) components.splice(i, 1);
      break;
    case 'swap':
      if (components.length > 1) {
        const j = (i + 1) % components.length;
        [components[i], components[j]] = [components[j]!, components[i]!];
      }
      break;
    case 'encode':
    case 'encode-reserved':
      if (c) c[1] = encodeValue(c[1], edit.op === 'encode');
      break;
    case 'rename':
      if (c) c[0] = NAMES[edit.name]!;
      break;
    case 'value':
      if (c) c[1] = VALUES[edit.value]!;
      else components.push(['tag', VALUES[edit.value]!]);
      break;
    case 'length': {
      // Pad the tag (or add one) so the whole string is MAX_CRITERIA_LENGTH + delta characters long.
      const without = components.filter(([n]) => n !== 'tag');
      const base = writeCriteria(without).length + '&tag='.length;
      const padding = MAX_CRITERIA_LENGTH + edit.delta - base;
      if (padding > 0) {
        components.splice(0, components.length, ...without, ['tag', 'T'.repeat(padding)]);
      }
      break;
    }
  }
}

export interface CriteriaInput {
  readonly criteria: string;
  /** True when the string is straight from the grammar (no edit, no mutation): it must be accepted. */
  readonly valid: boolean;
}

const CRITERIA_TOKENS = ['&', '=', '%', '%26', '%3D', '|', '?', '/Bundle?type=message', '&type=message', '&&', '#', ' ', '\u0000', 'é'];

export const criteriaInputArbitrary: fc.Arbitrary<CriteriaInput> = fc
  .record({
    model: fc.oneof(explicitModel, genericModel),
    edits: fc.oneof({ weight: 1, arbitrary: fc.constant([] as CriteriaEdit[]) }, { weight: 3, arbitrary: fc.array(criteriaEdit, { minLength: 1, maxLength: 3 }) }),
    prefix: fc.oneof({ weight: 9, arbitrary: fc.constant(CRITERIA_PREFIX) }, { weight: 1, arbitrary: fc.constantFrom('/bundle?type=message', 'Bundle?type=message', '/Bundle?type=message&', '/Bundle?type=Message', '') }),
    mutations: fc.oneof({ weight: 3, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: mutationsArbitrary(CRITERIA_TOKENS.length, 1, 2) }),
  })
  .map(({ model, edits, prefix, mutations }) => {
    const components = model.components.map(([n, v]) => [n, v] as Component);
    for (const edit of edits) applyEdit(components, edit);
    const written = writeCriteria(components, prefix);
    const criteria = mutations.length > 0 ? mutateText(written, mutations, CRITERIA_TOKENS, [written]) : written;
    const input: CriteriaInput = { criteria, valid: edits.length === 0 && mutations.length === 0 && prefix === CRITERIA_PREFIX };
    return printedAs(input, () => `{ valid: ${input.valid}, criteria: ${excerpt(criteria, 600)} }`);
  });

/** Writes a parsed result back as a criteria string, every value passed through `encode`. */
export function writeParsed(p: ParsedCriteria, encode: (v: string) => string): string {
  const c: Component[] = [];
  if (p.serviceType) c.push(['serviceType', p.serviceType]);
  if (p.nhsNumber !== undefined) c.push(['Patient.identifier', `${NHS_SYSTEM}|${p.nhsNumber}`]);
  for (const e of p.eventCodes) c.push(['MessageHeader.event', e]);
  for (const a of p.ages) c.push(['Patient.age', `${a.comparator}${a.years}`]);
  if (p.gpRegistration) c.push(['GPRegistration', p.gpRegistration]);
  if (p.ruleType) c.push(['subscriptionRuleType', p.ruleType]);
  if (p.organisationCode !== undefined) c.push(['Organization.identifier', p.organisationCode]);
  if (p.tag !== undefined) c.push(['tag', p.tag]);
  return writeCriteria(c.map(([n, v]) => [n, encode(v)]));
}

function checkAccepted(p: ParsedCriteria): void {
  if (p.subscriptionType === 'explicit') {
    expectThat(p.nhsNumber !== undefined && !p.nhsNumber.includes('|'), 'explicit criteria accepted without one NHS number');
    expectThat(p.eventCodes.length >= 1 && p.ruleType === undefined && p.organisationCode === undefined, 'explicit criteria accepted with generic components or no event');
  } else {
    expectThat(p.nhsNumber === undefined && p.eventCodes.length === 1, 'generic criteria accepted with a patient or not exactly one event');
    expectThat(p.ruleType !== undefined && RULE_TYPES.includes(p.ruleType), 'generic criteria accepted without a known rule type');
    expectThat(p.organisationCode !== undefined && /^[A-Za-z0-9]{1,9}$/.test(p.organisationCode), 'generic criteria accepted without a well-formed organisation code');
    expectThat(p.ruleType !== 'COUNTRYCODE' || COUNTRIES.includes(p.organisationCode!), 'COUNTRYCODE accepted with a code that is not a country');
    expectThat(!(p.gpRegistration && (p.ruleType === 'GP_GP_GP' || p.ruleType === 'CHO_GP_CCG')), 'GPRegistration accepted with a rule type that excludes it');
  }
  expectThat(p.eventCodes.every((e) => EVENT_CODES.includes(e)) && new Set(p.eventCodes).size === p.eventCodes.length, 'accepted an unknown or repeated event code');
  expectThat(p.ages.length <= 2 && p.ages.every((a) => a.years >= 0 && a.years <= 150), 'accepted more than two ages or an age out of range');
  expectThat(p.tag === undefined || (p.tag.length <= 100 && /^[A-Za-z0-9\-_|,]+$/.test(p.tag)), 'accepted a tag that breaks its rule');
}

export function checkCriteria(input: CriteriaInput, result: CriteriaParseResult): void {
  if (input.valid) expectThat(result.ok, `refused criteria written from the grammar: ${result.ok ? '' : `${result.element} ${result.problem}`}`);
  if (input.criteria.length > MAX_CRITERIA_LENGTH) {
    expectThat(!result.ok && result.problem.includes(String(MAX_CRITERIA_LENGTH)), 'criteria over the length cap not refused for its length');
  }
  if (!result.ok) {
    const known = /^Subscription\.criteria(?: \((?:type|serviceType|Patient\.identifier|MessageHeader\.event|Patient\.age|GPRegistration|subscriptionRuleType|Organization\.identifier|tag)\))?$/;
    expectThat(known.test(result.element), `refusal names an unexpected element ${JSON.stringify(result.element.slice(0, 80))}`);
    expectThat(result.problem.length > 0 && result.problem.length <= 200, 'refusal problem missing or too long');
    expectNoCanary(`${result.element} ${result.problem}`, 'criteria refusal');
    return;
  }
  checkAccepted(result.criteria);
  const canonical = JSON.stringify(result.criteria);
  for (const [how, encode] of [['as written', (v: string) => encodeValue(v, false)], ['percent-encoded', (v: string) => encodeValue(v, true)]] as const) {
    const again = parseCriteria(writeParsed(result.criteria, encode));
    // Fully encoded values may take the string over the length cap; that refusal is the right answer.
    if (!again.ok && again.problem.includes(String(MAX_CRITERIA_LENGTH))) continue;
    expectThat(again.ok && JSON.stringify(again.criteria) === canonical, `accepted criteria written back ${how} do not parse to the same result`);
  }
}

export const criteriaTarget: FuzzTarget<CriteriaInput, CriteriaParseResult> = {
  name: 'criteria',
  covers: 'src/fhir/criteria.ts',
  arbitrary: criteriaInputArbitrary,
  run: (input) => parseCriteria(input.criteria),
  check: checkCriteria,
  classify: (out) => (out.ok ? `accepted ${out.criteria.subscriptionType}` : `refused: ${out.element}`),
  show: (input) => input.criteria,
  capProbes: (): CapProbe<CriteriaInput>[] => {
    const base = `${CRITERIA_PREFIX}&subscriptionRuleType=CHO_POSTCODE_CCG&Organization.identifier=X2458&MessageHeader.event=pds-change-of-address-1`;
    const padded = (length: number) => `${base}&tag=${'T'.repeat(length - base.length - 5)}`;
    return [
      { name: 'tag of 100 characters', input: { criteria: `${base}&tag=${'T'.repeat(100)}`, valid: true } },
      { name: 'tag of 101 characters', input: { criteria: `${base}&tag=${'T'.repeat(101)}`, valid: false } },
      { name: `${MAX_CRITERIA_LENGTH} characters`, input: { criteria: padded(MAX_CRITERIA_LENGTH), valid: false } },
      { name: `${MAX_CRITERIA_LENGTH + 1} characters`, input: { criteria: padded(MAX_CRITERIA_LENGTH + 1), valid: false } },
      { name: 'age 150', input: { criteria: `${base}&Patient.age=le150`, valid: true } },
      { name: 'age 151', input: { criteria: `${base}&Patient.age=le151`, valid: false } },
    ];
  },
  ciRuns: 1000,
};
