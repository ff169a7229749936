// Parser for the NEMS subscription criteria grammar (docs/specification.md §1.5, §1.6). Strict: the fixed prefix, known
// component names only, per-type cardinalities, known event codes, no duplicates. Diagnostics name the component
// and never echo its value.
//
// Decisions where the digest is silent or contradictory:
// - Explicit NHS numbers (rule criteria.nhs-number-system): strict takes only the legacy system
//   `http://fhir.nhs.net/Id/nhs-number` (the only one NEMS documents, docs/specification.md §9.7); compatible also takes
//   `https://fhir.nhs.uk/Id/nhs-number`. Whatever the system, the number after it is traced (a security rule).
// - What keeps the criteria readable (prefix, components, explicit xor generic, cardinalities) is the security
//   rule criteria.syntax; the values of components are conformance rules (criteria.event-code, criteria.rule-type,
//   …). A reported value is kept as sent when it can only fail to match (an unknown event code or rule type) and
//   dropped when it would narrow a match it cannot express (an unreadable age bound or GP registration).
// - `Organization.identifier` is required (1..1) for every generic rule type: each rule matches against a code.
// - `Patient.age` takes the FHIR prefixes lt, gt, le, ge, eq (a prefix is required), whole years 0..150; two
//   bounds must be one lower and one upper and leave a non-empty range; eq stands alone.
// - Component values may be percent-encoded (e.g. `%7C` for `|`); they are decoded strictly after splitting on
//   `&` and `=`, so an encoded `&` can never create a component. Names are never decoded. `+` is not a space.
// - `type=message` must be the first component, right after `/Bundle?`.
import { eventTypeByCode } from '../nems/events.js';
import { isOdsCode, LEGACY_NHS_NUMBER_SYSTEM, NHS_NUMBER_SYSTEM } from '../nems/identifiers.js';
import type { ConformanceRuleId } from '../rules/catalogue.js';
import { RulePolicy, type RuleReports } from '../rules/policy.js';
import type { AgeBound, CriteriaParseResult, ParsedCriteria, ServiceType, SubscriptionRuleType } from './criteria-types.js';

export const CRITERIA_PREFIX = '/Bundle?type=message';
/** Identifier systems accepted in `Patient.identifier` under strict (docs/specification.md §9.7: only the documented legacy one). */
export const CRITERIA_NHS_NUMBER_SYSTEMS: readonly string[] = [LEGACY_NHS_NUMBER_SYSTEM];
/** … and under compatible: the current system of every other NHS API too. */
export const COMPATIBLE_CRITERIA_NHS_NUMBER_SYSTEMS: readonly string[] = [LEGACY_NHS_NUMBER_SYSTEM, NHS_NUMBER_SYSTEM];
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
/** ONS country codes for the COUNTRYCODE rule (docs/specification.md §1.5). */
export const COUNTRY_CODES: readonly string[] = ['E92000001', 'W92000004', 'S92000003', 'N92000002', 'L93000001', 'M83000003'];
const GP_REGISTRATION = ['RegisteredOnly', 'UnregisteredOnly'] as const;
/** Rule types that already imply a GP registration, so GPRegistration must not be combined with them (docs/specification.md §1.5). */
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

/** Cardinality [min, max] per subscription type (docs/specification.md §1.5 table). */
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

function invalid(component: string | undefined, problem: string, rule: Failure['rule'] = 'criteria.syntax'): Failure {
  return { ok: false, element: component ? `Subscription.criteria (${component})` : 'Subscription.criteria', problem, rule };
}

export function parseCriteria(criteria: string, policy: RulePolicy = RulePolicy.STRICT, reports: RuleReports = {}): CriteriaParseResult {
  /** A conformance rule: the failure when it enforces; recorded (report) or ignored (off) otherwise. */
  const conform = (rule: ConformanceRuleId, component: string, problem: string): Failure | undefined => {
    const refused = policy.fire(reports, rule, '');
    return refused ? invalid(component, problem, rule) : undefined;
  };
  let failed: Failure | undefined;
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

  let serviceTypeValue = single('serviceType');
  if (serviceTypeValue !== undefined && !SERVICE_TYPES.includes(serviceTypeValue as ServiceType)) {
    if ((failed = conform('criteria.service-type', 'serviceType', `must be one of ${SERVICE_TYPES.join(', ')}`))) return failed;
    serviceTypeValue = undefined;
  }

  let nhsNumber: string | undefined;
  const identifier = single('Patient.identifier');
  if (identifier !== undefined) {
    const bar = identifier.lastIndexOf('|');
    if (bar === -1) return invalid('Patient.identifier', 'must be written system|NHS number');
    const systems = policy.readings.bothNhsNumberSystems ? COMPATIBLE_CRITERIA_NHS_NUMBER_SYSTEMS : CRITERIA_NHS_NUMBER_SYSTEMS;
    if (!systems.includes(identifier.slice(0, bar))) {
      if ((failed = conform('criteria.nhs-number-system', 'Patient.identifier', `must use the identifier system ${systems.join(' or ')}`))) return failed;
    }
    // Format and modulus 11 are judged with every other NHS number, in the nhs-numbers stage (400 INVALID_NHS_NUMBER).
    nhsNumber = identifier.slice(bar + 1);
  }

  const eventCodes = values.get('MessageHeader.event') ?? [];
  for (const code of eventCodes) {
    if (!eventTypeByCode(code) && (failed = conform('criteria.event-code', 'MessageHeader.event', 'is not a known EventType-1 code'))) return failed;
  }

  let ages: AgeBound[] = [];
  for (const raw of values.get('Patient.age') ?? []) {
    const match = /^(lt|gt|le|ge|eq)(0|[1-9][0-9]{0,2})$/.exec(raw);
    const years = match ? Number(match[2]) : 0;
    if (!match || years > MAX_AGE_YEARS) {
      const problem = match ? `years must be between 0 and ${MAX_AGE_YEARS}` : `must be a prefix (${AGE_COMPARATORS.join(', ')}) followed by whole years`;
      if ((failed = conform('criteria.age', 'Patient.age', problem))) return failed;
      continue;
    }
    ages.push({ comparator: match[1] as AgeBound['comparator'], years });
  }
  const ageProblem = agesProblem(ages);
  if (ageProblem) {
    if ((failed = conform('criteria.age', 'Patient.age', ageProblem))) return failed;
    ages = [];
  }

  let gpRegistrationValue = single('GPRegistration');
  if (gpRegistrationValue !== undefined && !(GP_REGISTRATION as readonly string[]).includes(gpRegistrationValue)) {
    if ((failed = conform('criteria.gp-registration', 'GPRegistration', `must be one of ${GP_REGISTRATION.join(', ')}`))) return failed;
    gpRegistrationValue = undefined;
  }

  const ruleTypeValue = single('subscriptionRuleType');
  if (ruleTypeValue !== undefined && !SUBSCRIPTION_RULE_TYPES.includes(ruleTypeValue as SubscriptionRuleType)) {
    if ((failed = conform('criteria.rule-type', 'subscriptionRuleType', `must be one of ${SUBSCRIPTION_RULE_TYPES.join(', ')}`))) return failed;
  }
  const ruleType = ruleTypeValue as SubscriptionRuleType | undefined;
  if (ruleType && gpRegistrationValue !== undefined && RULES_EXCLUDING_GP_REGISTRATION.includes(ruleType)) {
    if ((failed = conform('criteria.gp-registration', 'GPRegistration', `must not be combined with subscriptionRuleType ${ruleType}`))) return failed;
  }

  const organisationCode = single('Organization.identifier');
  if (organisationCode !== undefined) {
    if (!isOdsCode(organisationCode)) {
      if ((failed = conform('criteria.organisation-code', 'Organization.identifier', 'must be 1 to 9 letters or digits'))) return failed;
    } else if (ruleType === 'COUNTRYCODE' && !COUNTRY_CODES.includes(organisationCode)) {
      if ((failed = conform('criteria.organisation-code', 'Organization.identifier', `must be one of the country codes ${COUNTRY_CODES.join(', ')} for COUNTRYCODE`))) return failed;
    }
  }

  const tag = single('tag');
  if (tag !== undefined) {
    if (tag.length > MAX_TAG_LENGTH) {
      if ((failed = conform('criteria.tag', 'tag', `must be at most ${MAX_TAG_LENGTH} characters`))) return failed;
    } else if (!TAG.test(tag) && (failed = conform('criteria.tag', 'tag', 'may contain only letters, digits and - _ | ,'))) return failed;
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
