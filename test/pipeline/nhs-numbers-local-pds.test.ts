// The nhs-numbers stage over the shipped local traced-number store (config/pds-local.yaml), cache included.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPdsLookup, type PdsHandle } from '../../src/pds/index.js';
import { createNhsNumbersStage } from '../../src/pipeline/stages/nhs-numbers.js';
import type { Stage } from '../../src/pipeline/types.js';
import { contextWith, ref, testConfig, wire } from './nhs-numbers-fixtures.js';

const SHIPPED = join(dirname(fileURLToPath(import.meta.url)), '../../config/pds-local.yaml');

let handle: PdsHandle;
let stage: Stage;
const observed: string[] = [];
beforeAll(async () => {
  const config = testConfig({ pds: { kind: 'local', local: { path: SHIPPED } } });
  handle = await openPdsLookup(config, { observer: { lookup: (result, cache) => observed.push(`${result}/${cache}`) } });
  stage = createNhsNumbersStage(config, handle.lookup);
});
afterAll(async () => {
  await handle.lookup.close();
});

async function verdict(operation: Parameters<typeof contextWith>[0], value: string) {
  return wire(await stage.run(contextWith(operation, [ref(value)])));
}

describe('nhs-numbers stage with the shipped local PDS store', () => {
  it('passes a publish routed on the NEMS examples number 9912003888 (traced)', async () => {
    expect(await verdict('publish', '9912003888')).toBe('pass');
  });

  it('passes a subscription for the PDS sandbox patient 9000000009 (traced)', async () => {
    expect(await verdict('create', '9000000009')).toBe('pass');
  });

  it('rejects the sandbox not-found number 9111231130 with 404 PATIENT_NOT_FOUND', async () => {
    expect(await verdict('create', '9111231130')).toMatchObject({ status: 404, code: 'PATIENT_NOT_FOUND' });
  });

  it('rejects a publish for the restricted sandbox patient 9000000025 with 403 NO_PATIENT_CONSENT, but accepts a subscription', async () => {
    expect(await verdict('publish', '9000000025')).toMatchObject({ status: 403, code: 'NO_PATIENT_CONSENT' });
    expect(await verdict('create', '9000000025')).toBe('pass');
  });

  it('rejects the superseded example with 400 INVALID_NHS_NUMBER without naming its successor', async () => {
    const result = await verdict('publish', '9990000018');
    expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
    expect(result !== 'pass' && result.diagnostics).not.toContain('9990000026');
  });

  it('rejects the invalidated example with 400 INVALID_NHS_NUMBER', async () => {
    expect(await verdict('create', '9990000034')).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
  });

  it('rejects the BirthNotificationWithMother routing number 1112223330 (fails modulus 11) with 400 INVALID_NHS_NUMBER', async () => {
    expect(await verdict('publish', '1112223330')).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
  });

  it('reports every lookup to the observer, serving repeats from the cache', async () => {
    observed.length = 0;
    await verdict('publish', '9434765919');
    await verdict('publish', '9434765919');
    expect(observed).toEqual(['traced/miss', 'traced/hit']);
  });
});
