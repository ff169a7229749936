// The rule catalogue (issue 12): every check the gateway makes, as data (catalogue.json; the ids are listed here too,
// so stages name rules the compiler knows). Each rule has a stable id, what it checks,
// its public source, its class, the Spine code (and so the status) it answers with, and what each profile does with
// it. Stages and the FHIR validators name the rule they apply (pipeline/types.ts reject(), rules/policy.ts
// RulePolicy.fire()); the request lifecycle is the one place a rule becomes a response or a report. The README's rule
// tables are generated from this list (`npm run docs:rules`, checked by test/rules/catalogue.test.ts).
//
// Classes:
// - security: identity, the certificate → endpoint → ASID → ODS binding, NHS numbers valid and traced, routing
//   demographics matching PDS, the route allowlist, safe parsing and every size and time limit. Always enforced:
//   no profile, mode or per-rule setting can report or switch one off (the config schema refuses it).
// - conformance: shape rules NEMS itself also judges. Each takes enforce, report or off (policy.rules.<id>).
//
// Profiles: `strict` reads the NEMS guide and Spine Core to the letter and enforces every conformance rule (the
// gateway's behaviour before issue 12). `compatible` (shipped) reports the conformance rules real NEMS clients are
// known to break, and takes the wider reading where the sources themselves allow it (`compatibleReading`).
import { SPINE_CODES, type SpineCode } from '../fhir/errors.js';
import CATALOGUE from './catalogue.json' with { type: 'json' };

export type RuleClass = 'security' | 'conformance';
export type RuleAction = 'enforce' | 'report' | 'off';
export const RULE_ACTIONS: readonly RuleAction[] = ['enforce', 'report', 'off'];
export const PROFILES = ['strict', 'compatible'] as const;
export type Profile = (typeof PROFILES)[number];

/** Where a rule is checked: a pipeline stage, the edge (identity, transport), or the request body's validators. */
export type RuleStage = 'edge' | 'route' | 'rate-limit' | 'headers' | 'jwt' | 'mime' | 'read-body' | 'body' | 'nhs-numbers' | 'upstream';

export interface RuleDefinition {
  readonly id: string;
  readonly class: RuleClass;
  readonly stage: RuleStage;
  /** What the rule checks, in a line. */
  readonly checks: string;
  /** Its public source: a URL or `docs/specification.md §x.y`. */
  readonly source: string;
  /** The Spine code a violation answers with (the catalogue status follows from it). */
  readonly code: SpineCode;
  /** Other codes or statuses the rule answers with in named cases (configuration or outcome). */
  readonly otherAnswers?: string;
  /** Conformance rules: the action under `compatible` (strict always enforces). */
  readonly compatible?: RuleAction;
  /** Conformance rules whose reading differs by profile: what strict accepts and what compatible accepts, and why. */
  readonly strictReading?: string;
  readonly compatibleReading?: string;
  /** Why compatible reports (or reads wider): the evidence. */
  readonly evidence?: string;
}

/** The security rules' ids, by family (checked against catalogue.json when this module loads). */
export const SECURITY_RULE_IDS = [
  'tls.client-identity', 'tls.client-key-size', 'tls.certificate-status',
  'http.version', 'http.host', 'http.expect', 'http.connection-nominates-checked-header',
  'route.safe-path', 'route.allowlist', 'route.method', 'route.unsupported-interaction',
  'limits.rate', 'limits.body-size', 'limits.body-time', 'limits.nhs-numbers',
  'headers.required', 'headers.asid-format', 'headers.bearer-token', 'headers.interaction-id', 'headers.from-asid', 'headers.asid-interaction',
  'jwt.size', 'jwt.structure', 'jwt.algorithm', 'jwt.signature', 'jwt.signing-keys', 'jwt.signed-issuer', 'jwt.exp', 'jwt.iat', 'jwt.requesting-system', 'jwt.organisation-ods', 'jwt.requesting-patient',
  'mime.content-encoding', 'mime.content-type', 'mime.publish-xml',
  'body.unreadable', 'body.required', 'body.malformed', 'body.unsafe-content',
  'subscription.resource', 'subscription.contact-ods', 'subscription.mailbox', 'subscription.type-allowed',
  'criteria.syntax',
  'event.structure', 'event.code', 'event.routing-demographics', 'event.nhs-numbers',
  'nhs-number.valid',
  'pds.traced', 'pds.superseded', 'pds.invalidated', 'pds.invalid-nhs-number', 'pds.restricted', 'pds.demographics-match', 'pds.available',
  'upstream.reachable',
  'gateway.internal',
] as const;

/** The conformance rules' ids, by family. */
export const CONFORMANCE_RULE_IDS = [
  'headers.authorization-scheme', 'headers.to-asid',
  'jwt.claim-types', 'jwt.max-lifetime', 'jwt.iss', 'jwt.sub', 'jwt.aud', 'jwt.reason-for-request', 'jwt.scope', 'jwt.organisation-present', 'jwt.requesting-user',
  'mime.accept', 'mime.format-parameter', 'mime.format-repeated',
  'subscription.id-supplied', 'subscription.meta-supplied', 'subscription.status', 'subscription.reason', 'subscription.contact', 'subscription.channel-type', 'subscription.end-future', 'subscription.mailbox-workflow',
  'criteria.nhs-number-system', 'criteria.event-code', 'criteria.rule-type', 'criteria.service-type', 'criteria.age', 'criteria.gp-registration', 'criteria.organisation-code', 'criteria.tag',
  'event.header-id', 'event.header-elements', 'event.message-event-type', 'event.name-use',
  'fhir.datetime-format',
] as const;

export type SecurityRuleId = (typeof SECURITY_RULE_IDS)[number];
export type ConformanceRuleId = (typeof CONFORMANCE_RULE_IDS)[number];
export type RuleId = SecurityRuleId | ConformanceRuleId;

/**
 * The catalogue, in the order the pipeline applies the rules: catalogue.json (data: what each rule checks, its
 * source, code, profile actions and evidence), read and checked once when the gateway loads.
 */
export const RULES: readonly RuleDefinition[] = loadCatalogue(CATALOGUE as unknown);

function loadCatalogue(data: unknown): RuleDefinition[] {
  if (!Array.isArray(data)) throw new Error('rules/catalogue.json: not a list of rules');
  const security: ReadonlySet<string> = new Set(SECURITY_RULE_IDS);
  const conformance: ReadonlySet<string> = new Set(CONFORMANCE_RULE_IDS);
  const rules = data as RuleDefinition[];
  for (const rule of rules) {
    const listed = rule.class === 'security' ? security : rule.class === 'conformance' ? conformance : undefined;
    if (!listed?.has(rule.id) || !(rule.code in SPINE_CODES)) throw new Error(`rules/catalogue.json: ${String(rule.id)} is not a ${String(rule.class)} rule of catalogue.ts, or its code is unknown`);
  }
  if (new Set(rules.map((r) => r.id)).size !== security.size + conformance.size || rules.length !== security.size + conformance.size) {
    throw new Error('rules/catalogue.json: the ids are not exactly those of catalogue.ts');
  }
  return rules;
}


const BY_ID: ReadonlyMap<string, RuleDefinition> = new Map(RULES.map((rule) => [rule.id, rule]));

/** Every rule id, in catalogue order. */
export const RULE_IDS: readonly RuleId[] = RULES.map((rule) => rule.id as RuleId);

export function ruleDefinition(id: RuleId): RuleDefinition {
  return BY_ID.get(id)!;
}

export function isRuleId(id: string): id is RuleId {
  return BY_ID.has(id);
}

/** The status a rule answers with (the catalogue code's), unless a violation overrides it. */
export function ruleStatus(id: RuleId): number {
  return SPINE_CODES[ruleDefinition(id).code].status;
}

/** What a profile does with a rule before mode and per-rule settings: security always enforces. */
export function profileAction(id: RuleId, profile: Profile): RuleAction {
  const rule = ruleDefinition(id);
  if (rule.class === 'security' || profile === 'strict') return 'enforce';
  return rule.compatible ?? 'enforce';
}
