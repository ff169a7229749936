// The effective rule policy of one configuration: what each rule does (enforce, report, off) and which readings the
// profile takes, compiled once per config (never per request). Precedence for a conformance rule: its own
// `policy.rules.<id>`, then `policy.mode: report`, then the profile's default (rules/catalogue.ts profileAction).
// Security rules always enforce; the config schema does not even accept a setting for one.
//
// A stage that finds a conformance violation calls fire(): enforce gives the Rejection to return; report records
// the rule id on the request (ctx.reported, allocated only when something fires) and the stage carries on checking
// the rest; off does neither.
import type { Config } from '../config/schema.js';
import type { Rejection } from '../pipeline/types.js';
import type { SpineCode } from '../fhir/errors.js';
import { CONFORMANCE_RULE_IDS, profileAction, RULE_IDS, ruleDefinition, type ConformanceRuleId, type Profile, type RuleAction, type RuleId } from './catalogue.js';

/** What records the rules a request reported: the request context, or the core's own per-request record. */
export interface RuleReports {
  reported?: RuleId[];
}

/** The wider readings `compatible` takes where the sources allow them (rules/catalogue.ts compatibleReading). */
export interface PolicyReadings {
  /** headers.authorization-scheme: `bearer` in any case (RFC 7235). */
  readonly bearerAnyCase: boolean;
  /** jwt.scope: a space-separated list holding the operation's scope. */
  readonly scopeList: boolean;
  /** jwt.reason-for-request: the three Spine Core values besides the configured ones. */
  readonly spineCoreReasons: boolean;
  /** criteria.nhs-number-system: both NHS-number systems. */
  readonly bothNhsNumberSystems: boolean;
}

export const SPINE_CORE_REASONS_FOR_REQUEST: readonly string[] = ['directcare', 'secondaryuses', 'patientaccess'];

export interface PolicySettings {
  readonly profile: Profile;
  readonly mode: 'enforce' | 'report';
  readonly rules?: Partial<Readonly<Record<ConformanceRuleId, RuleAction>>>;
}

export class RulePolicy {
  readonly profile: Profile;
  readonly mode: 'enforce' | 'report';
  readonly readings: PolicyReadings;
  readonly #actions: Readonly<Record<RuleId, RuleAction>>;

  constructor(settings: PolicySettings) {
    this.profile = settings.profile;
    this.mode = settings.mode;
    const actions = {} as Record<RuleId, RuleAction>;
    for (const id of RULE_IDS) actions[id] = profileAction(id, settings.profile);
    for (const id of CONFORMANCE_RULE_IDS) {
      const own = settings.rules?.[id];
      actions[id] = own ?? (settings.mode === 'report' ? 'report' : actions[id]);
    }
    this.#actions = Object.freeze(actions);
    const compatible = settings.profile === 'compatible';
    this.readings = Object.freeze({ bearerAnyCase: compatible, scopeList: compatible, spineCoreReasons: compatible, bothNhsNumberSystems: compatible });
  }

  static fromConfig(config: Pick<Config, 'policy'>): RulePolicy {
    return new RulePolicy(config.policy);
  }

  /** The guide to the letter, every rule enforced: the embedded core's default when it is given no policy. */
  static readonly STRICT = new RulePolicy({ profile: 'strict', mode: 'enforce' });

  action(rule: RuleId): RuleAction {
    return this.#actions[rule];
  }

  /**
   * A conformance rule fired. enforce: the Rejection to answer with. report: recorded on `reports` (once per rule),
   * undefined so the caller carries on. off: undefined.
   */
  fire(reports: RuleReports, rule: ConformanceRuleId, diagnostics: string, code?: SpineCode): Rejection | undefined {
    const action = this.#actions[rule];
    if (action === 'enforce') return { rule, code: code ?? ruleDefinition(rule).code, diagnostics };
    if (action === 'report') {
      const reported = (reports.reported ??= []);
      if (!reported.includes(rule)) reported.push(rule);
    }
    return undefined;
  }
}
