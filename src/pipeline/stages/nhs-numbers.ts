// The nhs-numbers stage (docs/specification.md §6.1): every NHS number the request carries must be well formed, pass
// modulus 11 and be traced on PDS at the time of the call. PDS outcomes map to rejections through config.pds.policy:
//
//   not found          → pds.policy.notFound: 404 PATIENT_NOT_FOUND (default) or 400 INVALID_NHS_NUMBER
//   superseded         → reject: 400 INVALID_NHS_NUMBER ("superseded"; never the new number) | allow
//   invalidated        → reject: 400 INVALID_NHS_NUMBER (the number itself is no longer valid) | allow
//   invalid (PDS 400)  → 400 INVALID_NHS_NUMBER (PDS says it is not a valid NHS number; Spine Core's code)
//   restricted, publish→ reject: 403 NO_PATIENT_CONSENT (docs/specification.md §2.2: publishers MUST NOT publish for S-flag patients) | allow
//   restricted, create → pds.policy.restrictedOnSubscribe (default allow); read/delete always allow (no new data flow)
//   routing name or birthDateTime ≠ PDS record (publish, docs/specification.md §6.1)
//                      → pds.policy.demographicsMismatch: 400 INVALID_PATIENT_DEMOGRAPHICS (default) | allow;
//                        which parts count: pds.policy.demographicsFields (src/pds/demographics.ts says what "match" is);
//                        names PDS holds but none current never match (a name that cannot be compared never passes)
//   PDS unavailable    → 503 SERVICE_UNAVAILABLE + Retry-After; never pass
//
// Diagnostics name the element (and why), never the number. The audit gets counts and the decisive result only.
import type { Config } from '../../config/schema.js';
import { nhsNumberProblem, type NhsNumberProblem } from '../../nems/nhs-number.js';
import { demographicsMismatch, type DemographicsField } from '../../pds/demographics.js';
import { PdsUnavailableError, type PdsLookup, type PdsOutcome } from '../../pds/types.js';
import { PASS, reject, type NhsNumberRef, type RequestContext, type Stage, type StageResult } from '../types.js';

/** Real NEMS messages name one patient (two for a birth with mother); more is hostile, not clinical. */
export const MAX_DISTINCT_NHS_NUMBERS = 16;
/** Seconds a client should wait before retrying when PDS cannot answer. */
export const PDS_RETRY_AFTER_SECONDS = 5;
/** Margin on top of the PDS client's own timeout before the stage gives up on the whole set. */
const DEADLINE_MARGIN_MS = 500;

export interface NhsNumbersStageOptions {
  /** Overall deadline for tracing every number of one request; defaults to the PDS timeout plus a margin. */
  readonly deadlineMs?: number;
}

type Traced = { readonly ref: NhsNumberRef; readonly outcome: PdsOutcome } | { readonly ref: NhsNumberRef; readonly error: PdsUnavailableError };

export function createNhsNumbersStage(config: Config, pds: PdsLookup, options: NhsNumbersStageOptions = {}): Stage {
  const policy = config.pds.policy;
  const rejectRepeated = config.nems.rejectRepeatedDigitNhsNumbers;
  const deadlineMs = options.deadlineMs ?? (config.pds.fhir?.timeoutMs ?? 3_000) + DEADLINE_MARGIN_MS;
  const demographicsFields: ReadonlySet<DemographicsField> | undefined =
    policy.demographicsMismatch === 'reject' ? new Set(policy.demographicsFields) : undefined;

  const unavailable = (diagnostics: string): StageResult =>
    reject('pds.available', diagnostics, { headers: { 'Retry-After': String(PDS_RETRY_AFTER_SECONDS) } });

  /** The rejection a PDS outcome earns for this operation, or undefined when it may pass. */
  const judge = (ctx: RequestContext, ref: NhsNumberRef, outcome: PdsOutcome): StageResult | undefined => {
    const verdict = judgeOutcome(ctx, ref, outcome);
    if (verdict || !demographicsFields || !ref.demographics) return verdict;
    if (outcome.result !== 'traced' && outcome.result !== 'restricted') return undefined;
    const mismatch = demographicsMismatch(ref.demographics, outcome.demographics, demographicsFields);
    if (!mismatch) return undefined;
    const part = mismatch === 'name' ? 'extension(name)' : 'extension(birthDateTime)';
    return reject('pds.demographics-match', `${ref.demographics.element}.${part} does not match the PDS record of its NHS number`);
  };

  const judgeOutcome = (ctx: RequestContext, ref: NhsNumberRef, outcome: PdsOutcome): StageResult | undefined => {
    const where = describe(ref);
    switch (outcome.result) {
      case 'traced':
        return undefined;
      case 'not-found':
        return policy.notFound === 'PATIENT_NOT_FOUND'
          ? reject('pds.traced', `${where} does not match a patient record on PDS`)
          : reject('pds.traced', `${where} does not match a patient record on PDS`, { code: 'INVALID_NHS_NUMBER' });
      case 'superseded':
        return policy.superseded === 'reject'
          ? reject('pds.superseded', `${where} has been superseded on PDS; use the patient's current NHS number`)
          : undefined;
      case 'invalidated':
        return policy.invalidated === 'reject'
          ? reject('pds.invalidated', `${where} has been invalidated on PDS`)
          : undefined;
      case 'invalid':
        // pds.invalid-nhs-number: PDS 400 "Invalid NHS number" is Spine Core's 400 INVALID_NHS_NUMBER, not a 404.
        return reject('pds.invalid-nhs-number', `${where} is not a valid NHS number on PDS`);
      case 'restricted': {
        // Read and delete start no new data flow; an unknown operation gets the strictest (publish) rule.
        if (ctx.operation === 'read' || ctx.operation === 'delete') return undefined;
        if (ctx.operation === 'create') {
          return policy.restrictedOnSubscribe === 'reject'
            ? reject('pds.restricted', `${where} belongs to a patient whose PDS record is restricted (S flag); subscriptions are not accepted for this patient`)
            : undefined;
        }
        return policy.restrictedOnPublish === 'reject'
          ? reject('pds.restricted', `${where} belongs to a patient whose PDS record is restricted (S flag); events must not be published for this patient`)
          : undefined;
      }
    }
  };

  return {
    name: 'nhs-numbers',
    // Synchronous when there is nothing to trace (every read and delete without requesting_patient).
    run(ctx: RequestContext): StageResult | Promise<StageResult> {
      return ctx.nhsNumbers.length === 0 ? PASS : check(ctx);
    },
  };

  function check(ctx: RequestContext): StageResult | Promise<StageResult> {
    // Format and modulus 11 first, for every reference, so the element at fault is named before any PDS call.
    const distinct = new Map<string, NhsNumberRef>();
    for (const ref of ctx.nhsNumbers) {
      const problem = nhsNumberProblem(ref.value, rejectRepeated);
      if (problem) return reject('nhs-number.valid', `${describe(ref)} ${explain(problem)}`);
      // One lookup per number; the reference carrying demographics (the routing one) is the one judged, so a
      // repeat of the same number elsewhere (e.g. the JWT requesting_patient) cannot stand in for it.
      const seen = distinct.get(ref.value);
      if (!seen || (!seen.demographics && ref.demographics)) distinct.set(ref.value, ref);
    }
    if (distinct.size > MAX_DISTINCT_NHS_NUMBERS) {
      return reject('limits.nhs-numbers', `The request carries more than ${MAX_DISTINCT_NHS_NUMBERS} distinct NHS numbers`);
    }
    ctx.audit.nhsNumbersChecked = distinct.size;
    const refs = [...distinct.values()];
    // Every number already in the PDS cache (the usual case for a client that repeats a patient): judged now, with no
    // promise, timer or microtask on the request path. Any miss traces the whole set as below.
    const cached = cachedOutcomes(pds, refs);
    if (cached) {
      ctx.audit.pdsMs = 0;
      return verdict(ctx, cached);
    }
    return traceAndJudge(ctx, refs);
  }

  async function traceAndJudge(ctx: RequestContext, refs: readonly NhsNumberRef[]): Promise<StageResult> {
    const started = Date.now();
    const traced = await traceAll(pds, refs, ctx.requestId, deadlineMs);
    ctx.audit.pdsMs = Date.now() - started;
    if (traced === 'deadline') {
      ctx.audit.pdsResult = 'unavailable';
      return unavailable('PDS did not answer in time; the NHS number could not be verified');
    }
    return verdict(ctx, traced);
  }

  function verdict(ctx: RequestContext, traced: readonly Traced[]): StageResult {
    // A definitive rejection wins over "unavailable": retrying would not change it.
    let firstUnavailable: Traced | undefined;
    let tracedCount = 0;
    for (const item of traced) {
      if ('error' in item) {
        firstUnavailable ??= item;
        continue;
      }
      const rejection = judge(ctx, item.ref, item.outcome);
      if (rejection) {
        ctx.audit.pdsResult = item.outcome.result;
        return rejection;
      }
      tracedCount++;
    }
    if (firstUnavailable) {
      ctx.audit.pdsResult = 'unavailable';
      return unavailable(`PDS could not be consulted to verify ${describe(firstUnavailable.ref)}`);
    }
    ctx.audit.nhsNumbersTraced = tracedCount;
    ctx.audit.pdsResult = 'traced';
    return PASS;
  }
}

/** The cached outcome of every number, or undefined when the lookup has no cache or one number is not in it. */
function cachedOutcomes(pds: PdsLookup, refs: readonly NhsNumberRef[]): Traced[] | undefined {
  if (!pds.cached) return undefined;
  const traced: Traced[] = [];
  for (const ref of refs) {
    const outcome = pds.cached(ref.value);
    if (outcome === undefined) return undefined;
    traced.push({ ref, outcome });
  }
  return traced;
}

/** Traces every number concurrently; 'deadline' when the whole set takes longer than deadlineMs. */
async function traceAll(pds: PdsLookup, refs: readonly NhsNumberRef[], requestId: string, deadlineMs: number): Promise<Traced[] | 'deadline'> {
  const lookups = refs.map(async (ref): Promise<Traced> => {
    try {
      return { ref, outcome: await pds.lookup(ref.value, requestId) };
    } catch (err) {
      // The contract says lookups only fail with PdsUnavailableError; anything else fails closed the same way.
      return { ref, error: err instanceof PdsUnavailableError ? err : new PdsUnavailableError('bad-response', 'PDS lookup failed', { cause: err }) };
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), deadlineMs);
  });
  try {
    return await Promise.race([Promise.all(lookups), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(ref: NhsNumberRef): string {
  return `The NHS number in ${ref.element}`;
}

function explain(problem: NhsNumberProblem): string {
  switch (problem) {
    case 'format':
      return 'is not 10 digits';
    case 'check-digit':
      return 'fails the modulus 11 check';
    case 'repeated-digit':
      return 'is a single repeated digit, which is never issued';
  }
}
