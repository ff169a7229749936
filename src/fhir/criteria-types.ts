// The parsed form of a NEMS subscription criteria string (docs/specification.md §1.5). The parser lives in criteria.ts.
import type { RuleId } from '../rules/catalogue.js';

export type SubscriptionRuleType = 'GP_GP_GP' | 'UHV_POSTCODE_LACODE' | 'CHO_GP_CCG' | 'CHO_POSTCODE_CCG' | 'COUNTRYCODE';
export type ServiceType = 'GP' | 'CHO' | 'UHV' | 'EPCHR';

export interface AgeBound {
  readonly comparator: 'lt' | 'gt' | 'le' | 'ge' | 'eq';
  readonly years: number;
}

export interface ParsedCriteria {
  readonly subscriptionType: 'explicit' | 'generic';
  readonly serviceType?: ServiceType;
  /** Explicit only: the NHS number after `http://fhir.nhs.net/Id/nhs-number|`. */
  readonly nhsNumber?: string;
  readonly eventCodes: readonly string[];
  readonly ages: readonly AgeBound[];
  readonly gpRegistration?: 'RegisteredOnly' | 'UnregisteredOnly';
  /** Generic only. A type outside the documented list only when criteria.rule-type was reported (it then matches nothing). */
  readonly ruleType?: SubscriptionRuleType;
  /** Generic only: the organisation / area code the rule matches against. */
  readonly organisationCode?: string;
  readonly tag?: string;
}

export type CriteriaParseResult =
  | { readonly ok: true; readonly criteria: ParsedCriteria }
  /** `element` names the criteria component at fault, e.g. `Subscription.criteria (MessageHeader.event)`. */
  | { readonly ok: false; readonly element: string; readonly problem: string; readonly rule: RuleId };
