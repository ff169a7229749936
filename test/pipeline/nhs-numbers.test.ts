// The nhs-numbers stage (docs/specification.md §6, §2.2, §9.18) driven with a plain RequestContext and a fake PDS.
import { describe, expect, it } from 'vitest';
import { nhsNumberProblem } from '../../src/nems/nhs-number.js';
import { createNhsNumbersStage, MAX_DISTINCT_NHS_NUMBERS } from '../../src/pipeline/stages/nhs-numbers.js';
import { PdsUnavailableError } from '../../src/pds/types.js';
import { contextWith, FakePds, INVALIDATED, NOT_FOUND, ref, RESTRICTED, SUPERSEDED, testConfig, TRACED, wire } from './nhs-numbers-fixtures.js';

const A = '9912003888';
const B = '9434765919';
const C = '9000000009';

async function run(
  pds: FakePds,
  operation: Parameters<typeof contextWith>[0],
  numbers: ReturnType<typeof ref>[],
  config = testConfig(),
  deadlineMs?: number,
) {
  const ctx = contextWith(operation, numbers);
  const stage = createNhsNumbersStage(config, pds, deadlineMs === undefined ? {} : { deadlineMs });
  const result = wire(await stage.run(ctx));
  if (result !== 'pass') {
    // Diagnostics and audit never carry the number itself.
    for (const n of numbers.filter((r) => r.value.trim().length >= 5)) {
      expect(result.diagnostics).not.toContain(n.value);
      expect(JSON.stringify(ctx.audit)).not.toContain(n.value);
    }
  }
  return { result, ctx };
}

describe('nhs-numbers stage: format and modulus 11', () => {
  it('is named nhs-numbers and passes at once when the request carries no NHS number', async () => {
    const pds = new FakePds({});
    const stage = createNhsNumbersStage(testConfig(), pds);
    expect(stage.name).toBe('nhs-numbers');
    expect(wire(await stage.run(contextWith('read', [])))).toBe('pass');
    expect(pds.calls).toEqual([]);
  });

  it('rejects a number failing modulus 11 with 400 INVALID_NHS_NUMBER naming the element, before any PDS call', async () => {
    const pds = new FakePds({ [A]: TRACED });
    const { result } = await run(pds, 'publish', [ref(A), ref('1112223330', 'Bundle.entry[2].resource.Patient.identifier')]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
    expect(result !== 'pass' && result.diagnostics).toContain('Bundle.entry[2].resource.Patient.identifier');
    expect(result !== 'pass' && result.diagnostics).toContain('modulus 11');
    expect(pds.calls).toEqual([]);
  });

  it.each(['991200388', '99120038881', '991200388X', ' 912003888', ''])('rejects the malformed value %j with 400 INVALID_NHS_NUMBER', async (value) => {
    const { result } = await run(new FakePds({}), 'create', [ref(value, 'Subscription.criteria')]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
    expect(result !== 'pass' && result.diagnostics).toContain('Subscription.criteria');
  });

  it('rejects a single-repeated-digit number with 400 INVALID_NHS_NUMBER unless the policy is off', async () => {
    const pds = new FakePds({ '0000000000': TRACED });
    const { result } = await run(pds, 'publish', [ref('0000000000')]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
    const lenient = testConfig({ nems: { rejectRepeatedDigitNhsNumbers: false } });
    expect((await run(pds, 'publish', [ref('0000000000')], lenient)).result).toBe('pass');
  });

  it('rejects more than the cap of distinct NHS numbers with 400 INVALID_REQUEST_MESSAGE without calling PDS', async () => {
    const valid: string[] = [];
    for (let p = 900000000; valid.length <= MAX_DISTINCT_NHS_NUMBERS && p < 900001000; p++) {
      for (let d = 0; d <= 9; d++) {
        const n = `${p}${d}`;
        if (!nhsNumberProblem(n)) { valid.push(n); break; }
      }
    }
    const pds = new FakePds({});
    const { result } = await run(pds, 'publish', valid.map((n) => ref(n)));
    expect(result).toMatchObject({ status: 400, code: 'INVALID_REQUEST_MESSAGE' });
    expect(pds.calls).toEqual([]);
  });
});

describe('nhs-numbers stage: PDS outcomes and the policy table', () => {
  it('passes a publish whose NHS numbers are all traced, looking each distinct number up once, concurrently', async () => {
    const pds = new FakePds({ [A]: TRACED, [B]: TRACED, [C]: TRACED }, 20);
    const { result, ctx } = await run(pds, 'publish', [ref(A), ref(B, 'Bundle.entry[1].resource.Patient.identifier'), ref(A, 'x'), ref(C, 'y')]);
    expect(result).toBe('pass');
    expect([...pds.calls].sort()).toEqual([A, B, C].sort());
    expect(pds.peakInFlight).toBe(3);
    expect(ctx.audit).toMatchObject({ nhsNumbersChecked: 3, nhsNumbersTraced: 3, pdsResult: 'traced' });
  });

  it('rejects a number PDS does not know with 404 PATIENT_NOT_FOUND by default', async () => {
    const { result, ctx } = await run(new FakePds({ [A]: NOT_FOUND }), 'create', [ref(A, 'Subscription.criteria')]);
    expect(result).toMatchObject({ status: 404, code: 'PATIENT_NOT_FOUND' });
    expect(result !== 'pass' && result.diagnostics).toContain('Subscription.criteria');
    expect(ctx.audit.pdsResult).toBe('not-found');
  });

  it('rejects a number PDS does not know with 400 INVALID_NHS_NUMBER when pds.policy.notFound says so', async () => {
    const config = testConfig({ pds: { policy: { notFound: 'INVALID_NHS_NUMBER' } } });
    const { result } = await run(new FakePds({ [A]: NOT_FOUND }), 'publish', [ref(A)], config);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
  });

  it('rejects a superseded number with 400 INVALID_NHS_NUMBER saying it was superseded, never naming the new number', async () => {
    const { result } = await run(new FakePds({ [A]: SUPERSEDED }), 'publish', [ref(A)]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
    expect(result !== 'pass' && result.diagnostics).toMatch(/superseded/);
    expect(result !== 'pass' && result.diagnostics).not.toMatch(/\d{10}/);
  });

  it('passes a superseded number when pds.policy.superseded is allow', async () => {
    const config = testConfig({ pds: { policy: { superseded: 'allow' } } });
    expect((await run(new FakePds({ [A]: SUPERSEDED }), 'publish', [ref(A)], config)).result).toBe('pass');
  });

  it('rejects an invalidated number with 400 INVALID_NHS_NUMBER, and passes it when the policy is allow', async () => {
    const { result } = await run(new FakePds({ [A]: INVALIDATED }), 'create', [ref(A)]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
    expect(result !== 'pass' && result.diagnostics).toMatch(/invalidated/);
    const config = testConfig({ pds: { policy: { invalidated: 'allow' } } });
    expect((await run(new FakePds({ [A]: INVALIDATED }), 'create', [ref(A)], config)).result).toBe('pass');
  });

  it('rejects a number PDS calls invalid (PDS 400 INVALID_RESOURCE_ID) with 400 INVALID_NHS_NUMBER, never 404 PATIENT_NOT_FOUND', async () => {
    for (const notFound of ['PATIENT_NOT_FOUND', 'INVALID_NHS_NUMBER'] as const) {
      const config = testConfig({ pds: { policy: { notFound } } });
      const { result } = await run(new FakePds({ [A]: { result: 'invalid' } }), 'create', [ref(A)], config);
      expect(result).toMatchObject({ status: 400, code: 'INVALID_NHS_NUMBER' });
      expect(result !== 'pass' && result.diagnostics).toMatch(/is not a valid NHS number on PDS$/);
    }
  });

  it('rejects a publish for a restricted (S-flag) patient with 403 NO_PATIENT_CONSENT', async () => {
    const { result } = await run(new FakePds({ [A]: RESTRICTED }), 'publish', [ref(A)]);
    expect(result).toMatchObject({ status: 403, code: 'NO_PATIENT_CONSENT' });
    expect(result !== 'pass' && result.diagnostics).toMatch(/restricted/);
  });

  it('passes a publish for a restricted patient when pds.policy.restrictedOnPublish is allow', async () => {
    const config = testConfig({ pds: { policy: { restrictedOnPublish: 'allow' } } });
    expect((await run(new FakePds({ [A]: RESTRICTED }), 'publish', [ref(A)], config)).result).toBe('pass');
  });

  it('passes a subscription create for a restricted patient by default', async () => {
    expect((await run(new FakePds({ [A]: RESTRICTED }), 'create', [ref(A)])).result).toBe('pass');
  });

  it('rejects a subscription create for a restricted patient with 403 NO_PATIENT_CONSENT when restrictedOnSubscribe is reject', async () => {
    const config = testConfig({ pds: { policy: { restrictedOnSubscribe: 'reject' } } });
    const { result } = await run(new FakePds({ [A]: RESTRICTED }), 'create', [ref(A)], config);
    expect(result).toMatchObject({ status: 403, code: 'NO_PATIENT_CONSENT' });
  });

  it.each(['read', 'delete'] as const)('passes a %s whose requesting_patient is restricted, whatever restrictedOnSubscribe says', async (op) => {
    const config = testConfig({ pds: { policy: { restrictedOnSubscribe: 'reject' } } });
    const jwtRef = { value: A, source: 'jwt-requesting-patient' as const, element: 'JWT claim requesting_patient' };
    expect((await run(new FakePds({ [A]: RESTRICTED }), op, [jwtRef], config)).result).toBe('pass');
  });

  it('still rejects a read whose requesting_patient is not on PDS with 404 PATIENT_NOT_FOUND', async () => {
    const jwtRef = { value: A, source: 'jwt-requesting-patient' as const, element: 'JWT claim requesting_patient' };
    const { result } = await run(new FakePds({}), 'read', [jwtRef]);
    expect(result).toMatchObject({ status: 404, code: 'PATIENT_NOT_FOUND' });
    expect(result !== 'pass' && result.diagnostics).toContain('JWT claim requesting_patient');
  });
});

describe('nhs-numbers stage: PDS unavailable fails closed', () => {
  it.each(['unreachable', 'timeout', 'bad-response', 'auth', 'throttled'] as const)(
    'rejects with 503 SERVICE_UNAVAILABLE and Retry-After when PDS is %s',
    async (reason) => {
      const { result, ctx } = await run(new FakePds({ [A]: new PdsUnavailableError(reason, 'x') }), 'publish', [ref(A)]);
      expect(result).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
      expect(result !== 'pass' && Number(result.headers['Retry-After'])).toBeGreaterThan(0);
      expect(ctx.audit.pdsResult).toBe('unavailable');
    },
  );

  it('treats a lookup failing with an unexpected error as unavailable: 503 SERVICE_UNAVAILABLE', async () => {
    const { result } = await run(new FakePds({ [A]: new TypeError('boom 9912003888') }), 'publish', [ref(A)]);
    expect(result).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(result !== 'pass' && result.diagnostics).not.toContain('boom');
  });

  it('gives up on a PDS that never answers at the stage deadline with 503 SERVICE_UNAVAILABLE', async () => {
    const started = Date.now();
    const { result } = await run(new FakePds({ [A]: TRACED, [B]: 'hang' }), 'publish', [ref(A), ref(B)], testConfig(), 100);
    expect(result).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('prefers a definitive rejection (404 PATIENT_NOT_FOUND) over an unavailable lookup in the same request', async () => {
    const pds = new FakePds({ [A]: new PdsUnavailableError('timeout', 'x'), [B]: NOT_FOUND });
    const { result } = await run(pds, 'publish', [ref(A), ref(B)]);
    expect(result).toMatchObject({ status: 404, code: 'PATIENT_NOT_FOUND' });
  });

  it('never passes when one number is traced and another is unavailable: 503 SERVICE_UNAVAILABLE', async () => {
    const pds = new FakePds({ [A]: TRACED, [B]: new PdsUnavailableError('unreachable', 'x') });
    const { result } = await run(pds, 'publish', [ref(A), ref(B)]);
    expect(result).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
  });
});

describe('nhs-numbers stage: routing demographics must match PDS (docs/specification.md §6.1, §2.10.4)', () => {
  const RECORD = { names: [{ family: 'DAWKINS', given: ['Jack'] }], birthDate: '2017-10-02' };
  const TRACED_WITH_DEMOGRAPHICS = { result: 'traced', restricted: false, demographics: RECORD } as const;
  const RESTRICTED_WITH_DEMOGRAPHICS = { result: 'restricted', restricted: true, demographics: RECORD } as const;
  const ROUTING = 'Bundle.entry[0].resource.MessageHeader.extension(routingDemographics)';
  const routing = (over: { family?: string; birthDateTime?: string } = {}) => ({
    ...ref(A, `${ROUTING}.extension(nhsNumber).valueIdentifier.value`),
    demographics: { element: ROUTING, family: over.family ?? 'DAWKINS', given: ['Jack'], birthDateTime: over.birthDateTime ?? '2017-10-02T12:00:00+00:00' },
  });

  it('passes a publish whose routing name and birth date match the PDS record', async () => {
    expect((await run(new FakePds({ [A]: TRACED_WITH_DEMOGRAPHICS }), 'publish', [routing()])).result).toBe('pass');
  });

  it('rejects another family name with 400 INVALID_PATIENT_DEMOGRAPHICS naming the element, not the values', async () => {
    const { result, ctx } = await run(new FakePds({ [A]: TRACED_WITH_DEMOGRAPHICS }), 'publish', [routing({ family: 'SMITH' })]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_PATIENT_DEMOGRAPHICS' });
    expect(result !== 'pass' && result.diagnostics).toBe(`${ROUTING}.extension(name) does not match the PDS record of its NHS number`);
    expect(result !== 'pass' && result.diagnostics).not.toMatch(/SMITH|DAWKINS/);
    expect(JSON.stringify(ctx.audit)).not.toMatch(/SMITH|DAWKINS|2017/);
  });

  it('rejects another birth date with 400 INVALID_PATIENT_DEMOGRAPHICS naming birthDateTime', async () => {
    const { result } = await run(new FakePds({ [A]: TRACED_WITH_DEMOGRAPHICS }), 'publish', [routing({ birthDateTime: '2019-10-12T12:00:00+00:00' })]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_PATIENT_DEMOGRAPHICS' });
    expect(result !== 'pass' && result.diagnostics).toContain('extension(birthDateTime)');
  });

  it('fails closed when PDS holds names but none is current (all use=old or ended): 400 INVALID_PATIENT_DEMOGRAPHICS, whatever name is sent', async () => {
    const noCurrentName = { result: 'traced', restricted: false, demographics: { names: [], birthDate: '2017-10-02' } } as const;
    for (const family of ['DAWKINS', 'SMITH']) {
      const { result } = await run(new FakePds({ [A]: noCurrentName }), 'publish', [routing({ family })]);
      expect(result).toMatchObject({ status: 400, code: 'INVALID_PATIENT_DEMOGRAPHICS' });
      expect(result !== 'pass' && result.diagnostics).toBe(`${ROUTING}.extension(name) does not match the PDS record of its NHS number`);
    }
  });

  it('answers 503 when PDS gave no usable record for the name (the client fails it as bad-response)', async () => {
    const { result } = await run(new FakePds({ [A]: new PdsUnavailableError('bad-response', 'PDS Patient.name holds no readable name') }), 'publish', [routing()]);
    expect(result).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
  });

  it('checks a restricted patient too when restricted publishing is allowed', async () => {
    const config = testConfig({ pds: { policy: { restrictedOnPublish: 'allow' } } });
    const pds = new FakePds({ [A]: RESTRICTED_WITH_DEMOGRAPHICS });
    expect((await run(pds, 'publish', [routing()], config)).result).toBe('pass');
    expect((await run(pds, 'publish', [routing({ family: 'SMITH' })], config)).result).toMatchObject({ code: 'INVALID_PATIENT_DEMOGRAPHICS' });
  });

  it('lets the restricted rule win over a mismatch: 403 NO_PATIENT_CONSENT', async () => {
    const { result } = await run(new FakePds({ [A]: RESTRICTED_WITH_DEMOGRAPHICS }), 'publish', [routing({ family: 'SMITH' })]);
    expect(result).toMatchObject({ status: 403, code: 'NO_PATIENT_CONSENT' });
  });

  it('passes a mismatch when pds.policy.demographicsMismatch is allow', async () => {
    const config = testConfig({ pds: { policy: { demographicsMismatch: 'allow' } } });
    expect((await run(new FakePds({ [A]: TRACED_WITH_DEMOGRAPHICS }), 'publish', [routing({ family: 'SMITH' })], config)).result).toBe('pass');
  });

  it('compares only pds.policy.demographicsFields', async () => {
    const config = testConfig({ pds: { policy: { demographicsFields: ['birthDate'] } } });
    const pds = new FakePds({ [A]: TRACED_WITH_DEMOGRAPHICS });
    expect((await run(pds, 'publish', [routing({ family: 'SMITH' })], config)).result).toBe('pass');
    expect((await run(pds, 'publish', [routing({ birthDateTime: '1900-01-01' })], config)).result).toMatchObject({ code: 'INVALID_PATIENT_DEMOGRAPHICS' });
  });

  it('refuses an empty or repeated demographicsFields list at config load', () => {
    expect(() => testConfig({ pds: { policy: { demographicsFields: [] } } })).toThrow();
    expect(() => testConfig({ pds: { policy: { demographicsFields: ['family', 'family'] } } })).toThrow();
  });

  it('judges the routing reference even when the same number came first from the JWT requesting_patient', async () => {
    const jwtRef = { value: A, source: 'jwt-requesting-patient' as const, element: 'JWT claim requesting_patient' };
    const pds = new FakePds({ [A]: TRACED_WITH_DEMOGRAPHICS });
    const { result } = await run(pds, 'publish', [jwtRef, routing({ family: 'SMITH' })]);
    expect(result).toMatchObject({ status: 400, code: 'INVALID_PATIENT_DEMOGRAPHICS' });
    expect(pds.calls).toEqual([A]);
  });

  it('compares nothing for references without demographics or records without them', async () => {
    // A Patient.identifier carries no routing demographics; a PDS record without names or birth date gives nothing to compare.
    expect((await run(new FakePds({ [A]: TRACED_WITH_DEMOGRAPHICS }), 'publish', [ref(A, 'Bundle.entry[3].resource.Patient.identifier[0].value')])).result).toBe('pass');
    expect((await run(new FakePds({ [A]: TRACED }), 'publish', [routing({ family: 'SMITH' })])).result).toBe('pass');
  });
});
