// docs/configuration.md is generated from the zod schema (src/config/reference.ts): the committed file must be what
// the generator renders now, every key must have a description, and the generator must handle every zod construct
// the schema uses (objects, records, enums, literal unions, discriminated unions, arrays, defaults, optional).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CONFIG_REFERENCE_FILE, referenceRows, renderConfigReference, undocumentedKeys } from '../../src/config/reference.js';
import { configSchema } from '../../src/config/schema.js';
import { PROJECT_ROOT } from '../../src/paths.js';

describe('docs/configuration.md', () => {
  it('is what `npm run docs:config` generates from src/config/schema.ts (run it after changing the schema)', () => {
    expect(existsSync(CONFIG_REFERENCE_FILE), `${CONFIG_REFERENCE_FILE} is missing: run npm run docs:config`).toBe(true);
    expect(readFileSync(CONFIG_REFERENCE_FILE, 'utf8'), 'docs/configuration.md is stale: run npm run docs:config').toBe(renderConfigReference());
  });

  it('documents every key of the schema: each has a .describe()', () => {
    expect(undocumentedKeys(configSchema)).toEqual([]);
  });

  it('lists every section of the schema and a row for every key the loader accepts', () => {
    const text = renderConfigReference();
    for (const section of Object.keys(configSchema.shape)) expect(text).toContain(`\n## \`${section}\`\n`);
    for (const key of ['server.tls.cert', 'nems.jwt.signed.keys[].alg', 'pds.fhir.auth.tokenUrl', 'rateLimits.perAsid.<key>.<default|create|read|delete|publish>.burst', 'core.lifecycle.<key>.state', 'registry.kind']) {
      expect(referenceRows(configSchema).map((r) => r.key)).toContain(key);
    }
  });

  it('the script checks currency too: --check exits 0 on the committed file', () => {
    const script = join(PROJECT_ROOT, 'dist', 'src', 'config', 'reference.js');
    expect(existsSync(script), `${script} is missing: npm test builds it`).toBe(true);
    const r = spawnSync(process.execPath, [script, '--check'], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 15_000 });
    expect([r.status, r.stderr]).toEqual([0, '']);
  });
});

describe('the reference generator', () => {
  const rule = z.strictObject({ rate: z.number().positive().describe('Rate.'), burst: z.number().int().positive().describe('Burst.') });
  const schema = z.strictObject({
    section: z
      .strictObject({
        port: z.number().int().min(0).max(65535).default(8443).describe('A port.'),
        mode: z.enum(['a', 'b']).default('a').describe('A mode.'),
        status: z.union([z.literal(503), z.literal(504)]).default(503).describe('A status.'),
        url: z.url().optional().describe('A URL.'),
        pattern: z.string().regex(/^\d{12}$/).describe('An ASID.'),
        list: z.array(z.strictObject({ path: z.string().min(1).describe('A path.') })).default([]).describe('A list.'),
        names: z.array(z.enum(['x', 'y'])).min(1).default(['x']).describe('Names.'),
        byAsid: z.record(z.string(), z.partialRecord(z.enum(['default', 'publish']), rule)).default({}).describe('Per ASID.'),
        auth: z
          .discriminatedUnion('kind', [
            z.strictObject({ kind: z.literal('none').describe('None.') }),
            z.strictObject({ kind: z.literal('key').describe('Key.'), secret: z.string().describe('The secret.') }),
          ])
          .default({ kind: 'none' })
          .describe('Auth.'),
        flag: z.boolean().default(false),
      })
      .optional()
      .describe('A section.'),
  });

  it('renders each construct with its type, default and description', () => {
    const rows = Object.fromEntries(referenceRows(schema).map((r) => [`${r.key}${r.when ? ` (${r.when})` : ''}`, r]));
    expect(rows['section']).toMatchObject({ type: 'object', default: '', description: 'A section.' });
    expect(rows['section.port']).toMatchObject({ type: 'integer 0–65535', default: '`8443`', required: false });
    expect(rows['section.mode']).toMatchObject({ type: 'one of `a`, `b`', default: '`a`' });
    expect(rows['section.status']).toMatchObject({ type: 'one of `503`, `504`', default: '`503`' });
    expect(rows['section.url']).toMatchObject({ type: 'URL', default: '', required: false, description: 'A URL.' });
    expect(rows['section.pattern']).toMatchObject({ type: 'string matching `^\\d{12}$`', required: true });
    expect(rows['section.list']).toMatchObject({ type: 'list of object', default: '`[]`' });
    expect(rows['section.list[].path']).toMatchObject({ type: 'string (not empty)', required: true, description: 'A path.' });
    expect(rows['section.names']).toMatchObject({ type: 'list of `x`, `y` (at least 1)', default: '`[x]`' });
    expect(rows['section.byAsid']).toMatchObject({ type: 'map of `<key>` → map of `<default|publish>` → object' });
    expect(rows['section.byAsid.<key>.<default|publish>.rate']).toMatchObject({ type: 'number > 0', description: 'Rate.' });
    expect(rows['section.auth']).toMatchObject({ type: 'object, by `kind`: `none`, `key`', default: '`{"kind":"none"}`' });
    expect(rows['section.auth.secret (kind: key)']).toMatchObject({ type: 'string', required: true, description: 'The secret.' });
    expect(rows['section.auth.kind (kind: none)']).toMatchObject({ type: '`none`', description: 'None.' });
  });

  it('names every key without a description', () => {
    expect(undocumentedKeys(schema)).toEqual(['section.flag']);
  });

  it('renders one table per section, escaping | in cells', () => {
    const text = renderConfigReference(schema);
    expect(text).toContain('## `section`\n\nA section.\n\n| Key | Type | Default | Description |');
    expect(text).toContain('| `section.byAsid.<key>.<default\\|publish>.burst` | integer > 0 | **required** | Burst. |');
  });
});
