// Parser for the NEMS subscription criteria grammar (spec digest §1.5, §1.6). Strict: the fixed prefix, known
// component names only, per-type cardinalities, known event codes, no duplicates. Diagnostics name the component
// and never echo its value.
//
// Decisions where the digest is silent or contradictory:
// - Explicit NHS numbers must use the legacy system `http://fhir.nhs.net/Id/nhs-number` (the only one NEMS
//   documents, §9.7); `https://fhir.nhs.uk/Id/nhs-number` is refused until NEMS is known to accept it.
// - `Organization.identifier` is required (1..1) for every generic rule type: each rule matches against a code.
// - `Patient.age` takes the FHIR prefixes lt, gt, le, ge, eq (a prefix is required), whole years 0..150; two
//   bounds must be one lower and one upper and leave a non-empty range; eq stands alone.
// - Component values may be percent-encoded (e.g. `%7C` for `|`); they are decoded strictly after splitting on
//   `&` and `=`, so an encoded `&` can never create a component. Names are never decoded. `+` is not a space.
// - `type=message` must be the first component, right after `/Bundle?`.
import { eventTypeByCode } from '../nems/events.js';
import { isOdsCode, LEGACY_NHS_NUMBER_SYSTEM } from '../nems/identifiers.js';
import type { AgeBound, CriteriaParseResult, ParsedCriteria, ServiceType, SubscriptionRuleType } from './criteria-types.js';

export const CRITERIA_PREFIX = '/Bundle?type=message';
/** Identifier systems accepted in `Patient.identifier` (§9.7: only the documented legacy one). */
export const CRITERIA_NHS_NUMBER_SYSTEMS: readonly string[] = [LEGACY_NHS_NUMBER_SYSTEM];
export const MAX_CRITERIA_LENGTH = 4096;
export const MAX_TAG_LENGTH = 100;

export const SERVICE_TYPES: readonly ServiceType[] = ['GP', 'CHO', 'UHV', 'EPCHR'];
export const SUBSCRIPTION_RULE_TYPES: readonly SubscriptionRuleType[] = [
  'GP_GP_GP',
  'UHV_POSTCODE_LACODE',
  'CHO_GP_CCG',
  'CHO_POSTCODE_CCG',
  'COUNTRYCODE',
];
/** ONS country codes for the COUNTRYCODE rule (§1.5). */
export const COUNTRY_CODES: readonly string[] = ['E92000001', 'W92000004', 'S92000003', 'N92000002', 'L93000001', 'M83000003'];
const GP_REGISTRATION = ['RegisteredOnly', 'UnregisteredOnly'] as const;
/** Rule types that already imply a GP registration, so GPRegistration must not be combined with them (§1.5). */
const RULES_EXCLUDING_GP_REGISTRATION: readonly SubscriptionRuleType[] = ['CHO_GP_CCG', 'GP_GP_GP'];
const AGE_COMPARATORS = ['lt', 'gt', 'le', 'ge', 'eq'] as const;
const MAX_AGE_YEARS = 150;
const TAG = /^[A-Za-z0-9\-_|,]+$/;

type ComponentName =
  | 'serviceType'
  | 'Patient.identifier'
  | 'MessageHeader.event'
  | 'Patient.age'
  | 'GPRegistration'
  | 'subscriptionRuleType'
  | 'Organization.identifier'
  | 'tag';

/** Cardinality [min, max] per subscription type (§1.5 table). */
const CARDINALITY: Readonly<Record<ComponentName, { explicit: [number, number]; generic: [number, number] }>> = {
  serviceType: { explicit: [0, 1], generic: [0, 1] },
  'Patient.identifier': { explicit: [1, 1], generic: [0, 0] },
  'MessageHeader.event': { explicit: [1, Infinity], generic: [1, 1] },
  'Patient.age': { explicit: [0, 2], generic: [0, 2] },
  GPRegistration: { explicit: [0, 1], generic: [0, 1] },
  subscriptionRuleType: { explicit: [0, 0], generic: [1, 1] },
  'Organization.identifier': { explicit: [0, 0], generic: [1, 1] },
  tag: { explicit: [0, 1], generic: [0, 1] },
};

const COMPONENT_NAMES = new Set<string>(Object.keys(CARDINALITY));

type Failure = Extract<CriteriaParseResult, { ok: false }>;

function invalid(component: string | undefined, problem: string): Failure {
  return { ok: false, element: component ? `Subscription.criteria (${component})` : 'Subscription.criteria', problem };
}

export function parseCriteria(criteria: string): CriteriaParseResult {
  if (criteria.length > MAX_CRITERIA_LENGTH) return invalid(undefined, `is longer than ${MAX_CRITERIA_LENGTH} characters`);
  if (!criteria.startsWith(CRITERIA_PREFIX)) return invalid(undefined, `must start with ${CRITERIA_PREFIX}`);
  const rest = criteria.slice(CRITERIA_PREFIX.length);
  if (rest !== '' && !rest.startsWith('&')) return invalid(undefined, `must start with ${CRITERIA_PREFIX}`);

  // Split into components; collect raw values per name in order.
  const values = new Map<ComponentName, string[]>();
  const parts = rest === '' ? [] : rest.slice(1).split('&');
  for (const part of parts) {
    if (part === '') return invalid(undefined, 'has an empty component');
    const eq = part.indexOf('=');
    if (eq <= 0) return invalid(undefined, 'has a component without a name=value form');
    const name = part.slice(0, eq);
    if (name === 'type') return invalid('type', 'must appear exactly once, as the fixed prefix');
    if (!COMPONENT_NAMES.has(name)) return invalid(undefined, 'has an unknown component');
    const decoded = percentDecode(part.slice(eq + 1));
    if (decoded === undefined) return invalid(name, 'has a malformed percent-encoding');
    if (decoded === '') return invalid(name, 'has an empty value');
    const list = values.get(name as ComponentName) ?? [];
    if (list.includes(decoded)) return invalid(name, 'is repeated with the same value');
    list.push(decoded);
    values.set(name as ComponentName, list);
  }

  const hasIdentifier = values.has('Patient.identifier');
  const hasRuleType = values.has('subscriptionRuleType');
  if (hasIdentifier && hasRuleType) {
    return invalid(undefined, 'must be either explicit (Patient.identifier) or generic (subscriptionRuleType), not both');
  }
  if (!hasIdentifier && !hasRuleType) {
    return invalid(undefined, 'must name a patient (Patient.identifier) or a rule (subscriptionRuleType)');
  }
  const subscriptionType = hasIdentifier ? 'explicit' : 'generic';

  for (const name of Object.keys(CARDINALITY) as ComponentName[]) {
    const [min, max] = CARDINALITY[name][subscriptionType];
    const count = values.get(name)?.length ?? 0;
    if (count < min) return invalid(name, `is required ${min === 1 && max === 1 ? 'exactly once' : 'at least once'} in a ${subscriptionType} subscription`);
    if (count > max) {
      return invalid(name, max === 0 ? `is not allowed in a ${subscriptionType} subscription` : `may appear at most ${max} time(s) in a ${subscriptionType} subscription`);
    }
  }

  const single = (name: ComponentName): string | undefined => values.get(name)?.[0];

  const serviceTypeValue = single('serviceType');
  if (serviceTypeValue !== undefined && !SERVICE_TYPES.includes(serviceTypeValue as ServiceType)) {
    return invalid('serviceType', `must be one of ${SERVICE_TYPES.join(', ')}`);
  }

  let nhsNumber: string | undefined;
  const identifier = single('Patient.identifier');
  if (identifier !== undefined) {
    const bar = identifier.lastIndexOf('|');
    if (bar === -1) return invalid('Patient.identifier', 'must be written system|NHS number');
    if (!CRITERIA_NHS_NUMBER_SYSTEMS.includes(identifier.slice(0, bar))) {
      return invalid('Patient.identifier', `must use the identifier system ${CRITERIA_NHS_NUMBER_SYSTEMS.join(' or ')}`);
    }
    // Format and modulus 11 are judged with every other NHS number, in the nhs-numbers stage (400 INVALID_NHS_NUMBER).
    nhsNumber = identifier.slice(bar + 1);
  }

  const eventCodes = values.get('MessageHeader.event') ?? [];
  for (const code of eventCodes) {
    if (!eventTypeByCode(code)) return invalid('MessageHeader.event', 'is not a known EventType-1 code');
  }

  const ages: AgeBound[] = [];
  for (const raw of values.get('Patient.age') ?? []) {
    const match = /^(lt|gt|le|ge|eq)(0|[1-9][0-9]{0,2})$/.exec(raw);
    if (!match) return invalid('Patient.age', `must be a prefix (${AGE_COMPARATORS.join(', ')}) followed by whole years`);
    const years = Number(match[2]);
    if (years > MAX_AGE_YEARS) return invalid('Patient.age', `years must be between 0 and ${MAX_AGE_YEARS}`);
    ages.push({ comparator: match[1] as AgeBound['comparator'], years });
  }
  const ageProblem = agesProblem(ages);
  if (ageProblem) return invalid('Patient.age', ageProblem);

  const gpRegistrationValue = single('GPRegistration');
  if (gpRegistrationValue !== undefined && !(GP_REGISTRATION as readonly string[]).includes(gpRegistrationValue)) {
    return invalid('GPRegistration', `must be one of ${GP_REGISTRATION.join(', ')}`);
  }

  const ruleTypeValue = single('subscriptionRuleType');
  if (ruleTypeValue !== undefined && !SUBSCRIPTION_RULE_TYPES.includes(ruleTypeValue as SubscriptionRuleType)) {
    return invalid('subscriptionRuleType', `must be one of ${SUBSCRIPTION_RULE_TYPES.join(', ')}`);
  }
  const ruleType = ruleTypeValue as SubscriptionRuleType | undefined;
  if (ruleType && gpRegistrationValue !== undefined && RULES_EXCLUDING_GP_REGISTRATION.includes(ruleType)) {
    return invalid('GPRegistration', `must not be combined with subscriptionRuleType ${ruleType}`);
  }

  const organisationCode = single('Organization.identifier');
  if (organisationCode !== undefined) {
    if (!isOdsCode(organisationCode)) return invalid('Organization.identifier', 'must be 1 to 9 letters or digits');
    if (ruleType === 'COUNTRYCODE' && !COUNTRY_CODES.includes(organisationCode)) {
      return invalid('Organization.identifier', `must be one of the country codes ${COUNTRY_CODES.join(', ')} for COUNTRYCODE`);
    }
  }

  const tag = single('tag');
  if (tag !== undefined) {
    if (tag.length > MAX_TAG_LENGTH) return invalid('tag', `must be at most ${MAX_TAG_LENGTH} characters`);
    if (!TAG.test(tag)) return invalid('tag', 'may contain only letters, digits and - _ | ,');
  }

  const parsed: ParsedCriteria = {
    subscriptionType,
    ...(serviceTypeValue !== undefined ? { serviceType: serviceTypeValue as ServiceType } : {}),
    ...(nhsNumber !== undefined ? { nhsNumber } : {}),
    eventCodes,
    ages,
    ...(gpRegistrationValue !== undefined ? { gpRegistration: gpRegistrationValue as ParsedCriteria['gpRegistration'] } : {}),
    ...(ruleType !== undefined ? { ruleType } : {}),
    ...(organisationCode !== undefined ? { organisationCode } : {}),
    ...(tag !== undefined ? { tag } : {}),
  };
  return { ok: true, criteria: parsed };
}

/** Checks that at most two age bounds describe a non-empty range of whole years within 0..150. */
function agesProblem(ages: readonly AgeBound[]): string | undefined {
  let min = 0;
  let max = MAX_AGE_YEARS;
  let lower = 0;
  let upper = 0;
  for (const { comparator, years } of ages) {
    if (comparator === 'eq') {
      if (ages.length > 1) return 'eq must not be combined with another bound';
      min = years;
      max = years;
    } else if (comparator === 'gt' || comparator === 'ge') {
      lower++;
      min = comparator === 'gt' ? years + 1 : years;
    } else {
      upper++;
      max = comparator === 'lt' ? years - 1 : years;
    }
  }
  if (lower > 1 || upper > 1) return 'two bounds must be one lower (gt/ge) and one upper (lt/le)';
  if (min > max) return 'bounds leave no possible age';
  return undefined;
}

/** Strict percent-decoding of a component value: `%XX` must be valid hex forming valid UTF-8. */
function percentDecode(value: string): string | undefined {
  if (!value.includes('%')) return value;
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
