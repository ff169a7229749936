// The rule catalogue (src/rules/catalogue.ts) is the one list of what the gateway checks: ids are stable and
// unique, each rule says what it checks, where that comes from and how it answers, every rule is applied somewhere in
// the source, every rejection of the policy table names a catalogued rule with the catalogue's answer, and the
// README's rule tables are generated from it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { SPINE_CODES } from '../../src/fhir/errors.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { CONFORMANCE_RULE_IDS, isRuleId, RULES, ruleDefinition, SECURITY_RULE_IDS, type RuleDefinition } from '../../src/rules/catalogue.js';
import { README_FILE, readmeWithRuleTables } from '../../src/rules/readme.js';
import { RulePolicy } from '../../src/rules/policy.js';
import { inject, policyConfig, testLifecycle } from '../helpers/inject.js';
import { policyRequest } from '../helpers/policy-bodies.js';
import { POLICY_CASES, POLICY_NOW } from '../pipeline/policy-cases.js';

const rules: readonly RuleDefinition[] = RULES;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the rule catalogue', () => {
  it('has unique, stable-looking ids, each with what it checks, a public source and a Spine code', () => {
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length);
    for (const rule of rules) {
      expect(rule.id, rule.id).toMatch(/^[a-z]+(-[a-z]+)*\.[a-z]+(-[a-z0-9]+)*$/);
      expect(rule.checks.length, rule.id).toBeGreaterThan(10);
      expect(rule.source, rule.id).toMatch(/^(https:\/\/|docs\/specification\.md §\d+(\.\d+)*$)/);
      expect(SPINE_CODES[rule.code], rule.id).toBeDefined();
    }
  });

  it('gives every conformance rule its compatible action and evidence where compatible differs, and security rules none', () => {
    for (const rule of rules) {
      if (rule.class === 'security') {
        expect(rule.compatible, rule.id).toBeUndefined();
        continue;
      }
      expect(rule.compatible, rule.id).toBeDefined();
      if (rule.compatible !== 'enforce' || rule.compatibleReading) expect(rule.evidence, rule.id).toBeTruthy();
      expect(Boolean(rule.strictReading), rule.id).toBe(Boolean(rule.compatibleReading));
    }
    expect(SECURITY_RULE_IDS.length + CONFORMANCE_RULE_IDS.length).toBe(rules.length);
  });

  it('names the rules issue 12 gives as examples, with the classes it gives them', () => {
    for (const id of ['jwt.max-lifetime', 'headers.to-asid', 'subscription.meta-supplied', 'criteria.nhs-number-system']) {
      expect(isRuleId(id) && ruleDefinition(id).class, id).toBe('conformance');
    }
    for (const id of ['tls.client-identity', 'headers.from-asid', 'headers.asid-interaction', 'jwt.requesting-system', 'jwt.organisation-ods', 'nhs-number.valid', 'pds.traced', 'pds.demographics-match', 'route.allowlist', 'body.malformed', 'limits.body-size']) {
      expect(isRuleId(id) && ruleDefinition(id).class, id).toBe('security');
    }
  });

  it('applies every rule somewhere in the source (no catalogued rule without a check)', () => {
    const text = sourceFiles(join(PROJECT_ROOT, 'src'))
      .filter((file) => !file.endsWith(join('rules', 'catalogue.ts')))
      .map((file) => readFileSync(file, 'utf8'))
      .join('\n');
    const unused = rules.filter((r) => !text.includes(`'${r.id}'`)).map((r) => r.id);
    expect(unused).toEqual([]);
  });

  it('answers every policy-table rejection with a catalogued rule and the catalogue\'s code (or a named other answer)', async () => {
    const lifecycle = testLifecycle(policyConfig(), { now: () => POLICY_NOW });
    let rejections = 0;
    for (const c of POLICY_CASES) {
      const decision = await inject(lifecycle, policyRequest(c));
      if (decision.action !== 'reject') continue;
      rejections++;
      expect(isRuleId(decision.rule), c.name).toBe(true);
      const rule = ruleDefinition(decision.rule);
      if (!rule.otherAnswers) expect(decision.code, `${c.name}: ${rule.id}`).toBe(rule.code);
    }
    expect(rejections).toBeGreaterThan(50);
  });

  it('is what the README\'s rule tables show (run npm run docs:rules after changing it)', () => {
    const readme = readFileSync(README_FILE, 'utf8');
    expect(readmeWithRuleTables(readme), 'README.md rule tables are stale: run npm run docs:rules').toBe(readme);
  });
});

describe('policy settings', () => {
  const parse = (policy: unknown) =>
    configSchema.safeParse({ server: { tls: { cert: '/x/c', key: '/x/k', ca: '/x/ca' } }, registry: { path: '/x/r' }, policy });

  it('ships compatible, enforcing; compatible reports exactly the rules with evidence of real clients breaking them', () => {
    const parsed = parse(undefined);
    expect(parsed.success).toBe(true);
    if (!parsed.success) return;
    expect(parsed.data.policy).toEqual({ profile: 'compatible', mode: 'enforce', rules: {} });
    const policy = RulePolicy.fromConfig(parsed.data);
    const reported = CONFORMANCE_RULE_IDS.filter((id) => policy.action(id) === 'report');
    expect(reported).toEqual(['headers.to-asid', 'jwt.max-lifetime', 'jwt.iss', 'jwt.organisation-present', 'subscription.meta-supplied', 'criteria.event-code', 'criteria.rule-type', 'fhir.datetime-format']);
    expect(policy.readings).toEqual({ bearerAnyCase: true, scopeList: true, spineCoreReasons: true, bothNhsNumberSystems: true });
  });

  it('orders a per-rule setting over the mode, and the mode over the profile', () => {
    const parsed = parse({ profile: 'strict', mode: 'report', rules: { 'jwt.max-lifetime': 'enforce', 'criteria.tag': 'off' } });
    expect(parsed.success).toBe(true);
    if (!parsed.success) return;
    const policy = RulePolicy.fromConfig(parsed.data);
    expect(policy.action('jwt.max-lifetime')).toBe('enforce');
    expect(policy.action('criteria.tag')).toBe('off');
    expect(policy.action('headers.to-asid')).toBe('report');
    expect(policy.action('headers.from-asid')).toBe('enforce');
    expect(policy.readings.bothNhsNumberSystems).toBe(false);
  });

  it('refuses an unknown rule id and an unknown action', () => {
    expect(parse({ rules: { 'jwt.no-such-rule': 'report' } }).success).toBe(false);
    expect(parse({ rules: { 'jwt.max-lifetime': 'warn' } }).success).toBe(false);
  });
});
