// Renders the configuration reference (docs/configuration.md) from the zod schema: zod's own JSON Schema export
// (descriptions, defaults, enums, bounds, unions, records, arrays) turned into one table per top-level section.
// `npm run docs:config` writes the file; test/config/reference.test.ts fails when the committed file differs from
// what this renders, or when a key has no description.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { readCommandArgs, type CommandSpec, type OptionSpecs } from '../cli/args.js';
import { PROJECT_ROOT } from '../paths.js';
import { ENV_OVERRIDES } from './load.js';
import { configSchema } from './schema.js';

/** The subset of JSON Schema (draft 2020-12) that zod's toJSONSchema produces for the constructs we use. */
export interface JsonSchema {
  readonly type?: string;
  readonly description?: string;
  readonly default?: unknown;
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly format?: string;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly minLength?: number;
  readonly minItems?: number;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchema | boolean;
  readonly propertyNames?: JsonSchema;
  readonly items?: JsonSchema;
  readonly anyOf?: readonly JsonSchema[];
  readonly oneOf?: readonly JsonSchema[];
}

/** One documented key. */
export interface ReferenceRow {
  /** Dotted path: `server.limits.maxHeaderBytes`, `rateLimits.perAsid.<key>.<default|create>.burst`, `nems.jwt.signed.keys[].path`. */
  readonly key: string;
  readonly type: string;
  /** Rendered default; '' when there is none. */
  readonly default: string;
  readonly required: boolean;
  /** The key's description; undefined when the schema has none (a test refuses that). */
  readonly description: string | undefined;
  /** For keys of one variant of a discriminated union: e.g. `kind: application-restricted`. */
  readonly when?: string;
}

/** Every key of a zod schema, in schema order, with its type, default and description. */
export function referenceRows(schema: z.ZodType): ReferenceRow[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const rows: ReferenceRow[] = [];
  walkProperties(json, '', rows, undefined);
  return rows;
}

/** Keys without a description. */
export function undocumentedKeys(schema: z.ZodType = configSchema): string[] {
  return referenceRows(schema)
    .filter((row) => !row.description?.trim())
    .map((row) => (row.when ? `${row.key} (${row.when})` : row.key));
}

function walkProperties(node: JsonSchema, prefix: string, rows: ReferenceRow[], when: string | undefined): void {
  const object = objectShape(node);
  if (!object) return;
  const required = new Set(object.required ?? []);
  for (const [name, child] of Object.entries(object.properties ?? {})) {
    const key = prefix ? `${prefix}.${name}` : name;
    rows.push({
      key,
      type: typeOf(child),
      default: child.default === undefined ? '' : renderValue(child.default),
      required: required.has(name) && child.default === undefined,
      description: child.description,
      ...(when ? { when } : {}),
    });
    walkChildren(child, key, rows, when);
  }
}

/** Descends into what a key holds: an object's keys, a record's values, a list's items, each union variant. */
function walkChildren(node: JsonSchema, key: string, rows: ReferenceRow[], when: string | undefined): void {
  if (node.properties) return walkProperties(node, key, rows, when);
  if (node.type === 'object' && typeof node.additionalProperties === 'object') {
    return walkChildren(node.additionalProperties, `${key}.${recordKeyName(node.propertyNames)}`, rows, when);
  }
  if (node.type === 'array' && node.items) return walkChildren(node.items, `${key}[]`, rows, when);
  const variants = node.oneOf ?? node.anyOf;
  if (!variants) return;
  for (const variant of variants) {
    if (!variant.properties) {
      walkChildren(variant, key, rows, when);
      continue;
    }
    const discriminator = discriminatorOf(variants);
    const label = discriminator ? `${discriminator}: ${String(variant.properties[discriminator]?.const)}` : undefined;
    walkProperties(variant, key, rows, [when, label].filter(Boolean).join(', ') || undefined);
  }
}

function objectShape(node: JsonSchema): JsonSchema | undefined {
  return node.properties ? node : undefined;
}

/** The property every object variant has with a constant value (zod's discriminatedUnion key). */
function discriminatorOf(variants: readonly JsonSchema[]): string | undefined {
  const first = variants[0]?.properties;
  if (!first) return undefined;
  return Object.keys(first).find((name) => variants.every((v) => v.properties?.[name]?.const !== undefined));
}

function recordKeyName(names: JsonSchema | undefined): string {
  if (names?.enum) return `<${names.enum.map(String).join('|')}>`;
  return '<key>';
}

/** A short human type: `integer 0–65535`, `one of: a, b`, `list of string`, `map of <key> → object`, `URL`. */
export function typeOf(node: JsonSchema): string {
  if (node.const !== undefined) return `\`${String(node.const)}\``;
  if (node.enum) return `one of ${node.enum.map((v) => `\`${String(v)}\``).join(', ')}`;
  const variants = node.oneOf ?? node.anyOf;
  if (variants) {
    if (variants.every((v) => v.const !== undefined)) return `one of ${variants.map((v) => `\`${String(v.const)}\``).join(', ')}`;
    const discriminator = discriminatorOf(variants);
    if (discriminator) return `object, by \`${discriminator}\`: ${variants.map((v) => `\`${String(v.properties![discriminator]!.const)}\``).join(', ')}`;
    return variants.map(typeOf).join(' or ');
  }
  switch (node.type) {
    case 'string':
      if (node.format === 'uri') return 'URL';
      if (node.pattern) return `string matching \`${node.pattern}\``;
      return node.minLength && node.minLength > 0 ? 'string (not empty)' : 'string';
    case 'integer':
    case 'number':
      return `${node.type}${bounds(node)}`;
    case 'boolean':
      return 'boolean';
    case 'array': {
      const items = node.items ? typeOf(node.items).replace(/^one of /, '') : 'values';
      return `list of ${items}${node.minItems ? ` (at least ${node.minItems})` : ''}`;
    }
    case 'object':
      if (node.properties) return 'object';
      if (typeof node.additionalProperties === 'object') {
        return `map of \`${recordKeyName(node.propertyNames)}\` → ${typeOf(node.additionalProperties)}`;
      }
      return 'object';
    default:
      return 'any';
  }
}

/** Bounds as written in the schema; zod's implicit safe-integer limits of .int() are left out. */
function bounds(node: JsonSchema): string {
  const low = node.minimum === Number.MIN_SAFE_INTEGER ? undefined : node.minimum;
  const high = node.maximum === Number.MAX_SAFE_INTEGER ? undefined : node.maximum;
  if (low !== undefined && high !== undefined) return ` ${low}–${high}`;
  if (node.exclusiveMinimum !== undefined) return ` > ${node.exclusiveMinimum}${high !== undefined ? `, ≤ ${high}` : ''}`;
  if (low !== undefined) return ` ≥ ${low}`;
  if (high !== undefined) return ` ≤ ${high}`;
  return '';
}

function renderValue(value: unknown): string {
  if (typeof value === 'string') return `\`${value}\``;
  if (Array.isArray(value)) return value.length === 0 ? '`[]`' : `\`[${value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}]\``;
  if (value !== null && typeof value === 'object') return Object.keys(value).length === 0 ? '' : `\`${JSON.stringify(value)}\``;
  return `\`${String(value)}\``;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The whole of docs/configuration.md. */
export function renderConfigReference(schema: z.ZodType = configSchema): string {
  const rows = referenceRows(schema);
  const sections = new Map<string, ReferenceRow[]>();
  for (const row of rows) {
    const top = row.key.split('.')[0]!;
    if (!sections.has(top)) sections.set(top, []);
    sections.get(top)!.push(row);
  }
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`. Do not edit: change the .describe() text in the',
    '     schema and run the script; a test fails when this file is not what the script generates. -->',
    '',
    'The gateway reads one YAML file (`config/gateway.yaml` by default; `--config F` or `NEMS_GATEWAY_CONFIG`), validates',
    'it against the schema in `src/config/schema.ts` at start-up and in `nems-gateway check-config`, and stops with',
    '`key.path: problem` when it is wrong. Unknown keys are refused. Paths are relative to the config file\'s folder.',
    'Every key below is optional unless marked **required**; an absent key takes its default.',
    '',
    '## Environment overrides',
    '',
    '| Variable | Overrides |',
    '| --- | --- |',
    ...Object.entries(ENV_OVERRIDES).map(([name, what]) => `| \`${name}\` | ${cell(what)} |`),
    '',
  ];
  for (const [top, sectionRows] of sections) {
    const head = sectionRows[0]!;
    out.push(`## \`${top}\``, '', head.description ?? '', '', '| Key | Type | Default | Description |', '| --- | --- | --- | --- |');
    for (const row of sectionRows.slice(1)) {
      const key = `\`${row.key}\`${row.when ? ` (${row.when})` : ''}`;
      const fallback = row.required ? '**required**' : row.default || '–';
      out.push(`| ${cell(key)} | ${cell(row.type)} | ${cell(fallback)} | ${cell(row.description ?? '')} |`);
    }
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

export const CONFIG_REFERENCE_FILE = join(PROJECT_ROOT, 'docs', 'configuration.md');

const COMMAND = {
  name: 'docs:config',
  usage: `usage: npm run docs:config [-- --check]

Writes docs/configuration.md from the configuration schema (src/config/schema.ts).

options:
  --check       write nothing; exit 1 when docs/configuration.md is not current or a key has no description
  -h, --help    print this help
`,
  options: { check: { type: 'boolean' } },
} as const satisfies CommandSpec<OptionSpecs>;

function main(argv: string[]): number {
  const args = readCommandArgs(COMMAND, argv);
  if (typeof args === 'number') return args;
  const missing = undocumentedKeys();
  if (missing.length > 0) {
    process.stderr.write(`keys without a .describe() in src/config/schema.ts:\n${missing.map((k) => `  - ${k}\n`).join('')}`);
    return 1;
  }
  const text = renderConfigReference();
  if (args.values.check) {
    let current = '';
    try {
      current = readFileSync(CONFIG_REFERENCE_FILE, 'utf8');
    } catch {
      // missing: not current
    }
    if (current === text) return 0;
    process.stderr.write(`${CONFIG_REFERENCE_FILE} is not current: run npm run docs:config\n`);
    return 1;
  }
  writeFileSync(CONFIG_REFERENCE_FILE, text);
  process.stdout.write(`wrote ${CONFIG_REFERENCE_FILE}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
