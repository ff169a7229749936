// Renders the README's rule tables from the catalogue (rules/catalogue.ts): `npm run docs:rules` rewrites the block
// between the markers in README.md; test/rules/catalogue.test.ts fails when the committed block is not what this
// renders, so the tables can never drift from the rules the gateway applies.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SPINE_CODES } from '../fhir/errors.js';
import { PROJECT_ROOT } from '../paths.js';
import { RULES, type RuleDefinition } from './catalogue.js';

export const README_FILE = join(PROJECT_ROOT, 'README.md');
export const RULES_BEGIN = '<!-- rules:begin (generated from src/rules/catalogue.ts by `npm run docs:rules`; do not edit) -->';
export const RULES_END = '<!-- rules:end -->';

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const answer = (rule: RuleDefinition): string =>
  `${SPINE_CODES[rule.code].status} ${rule.code}${rule.otherAnswers ? `; ${rule.otherAnswers}` : ''}`;

/** The block between the markers: the security table, then the conformance table with each profile's reading. */
export function renderRuleTables(): string {
  const rules: readonly RuleDefinition[] = RULES;
  const security = rules.filter((r) => r.class === 'security');
  const conformance = rules.filter((r) => r.class === 'conformance');
  const lines = [
    RULES_BEGIN,
    '',
    `**Security rules** (${security.length}): always enforced, in every profile and mode; \`policy.rules\` does not accept them.`,
    '',
    '| Rule | Checks | Answer | Source |',
    '| --- | --- | --- | --- |',
    ...security.map((r) => `| \`${r.id}\` | ${cell(r.checks)} | ${cell(answer(r))} | ${cell(r.source)} |`),
    '',
    `**Conformance rules** (${conformance.length}): each \`enforce\`, \`report\` or \`off\` (\`policy.rules.<id>\`; \`policy.mode: report\` reports them all).`,
    '',
    '| Rule | Checks | Answer | strict | compatible (shipped) | Why compatible differs |',
    '| --- | --- | --- | --- | --- | --- |',
    ...conformance.map((r) => {
      const strict = r.strictReading ? `enforce: ${r.strictReading}` : 'enforce';
      const compatibleAction = r.compatible ?? 'enforce';
      const compatible = r.compatibleReading ? `${compatibleAction}: ${r.compatibleReading}` : compatibleAction;
      const why = compatibleAction !== 'enforce' || r.compatibleReading ? (r.evidence ?? '') : '';
      return `| \`${r.id}\` | ${cell(r.checks)} | ${cell(answer(r))} | ${cell(strict)} | ${cell(compatible)} | ${cell(why)} |`;
    }),
    '',
    RULES_END,
  ];
  return lines.join('\n');
}

/** README.md with its rule block replaced by the rendered one; throws when the markers are missing. */
export function readmeWithRuleTables(readme: string): string {
  const begin = readme.indexOf(RULES_BEGIN);
  const end = readme.indexOf(RULES_END);
  if (begin < 0 || end < begin) throw new Error('README.md has no rules:begin/rules:end markers');
  return `${readme.slice(0, begin)}${renderRuleTables()}${readme.slice(end + RULES_END.length)}`;
}

function main(argv: readonly string[]): number {
  const check = argv.includes('--check');
  const current = readFileSync(README_FILE, 'utf8');
  const next = readmeWithRuleTables(current);
  if (current === next) return 0;
  if (check) {
    process.stderr.write('README.md rule tables are not current: run npm run docs:rules\n');
    return 1;
  }
  writeFileSync(README_FILE, next);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
