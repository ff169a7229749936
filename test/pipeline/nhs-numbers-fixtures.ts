// Helpers for the nhs-numbers stage tests: a RequestContext from the one factory, a parsed Config and a
// scriptable fake PDS.
import type { Config } from '../../src/config/schema.js';
import { SPINE_CODES } from '../../src/fhir/errors.js';
import type { NemsOperation } from '../../src/nems/operations.js';
import type { NhsNumberRef, RequestContext, StageResult } from '../../src/pipeline/types.js';
import { PdsUnavailableError, type PdsLookup, type PdsOutcome } from '../../src/pds/types.js';
import { contextFor, policyConfig } from '../helpers/inject.js';

export function testConfig(overrides: { pds?: Record<string, unknown>; nems?: Record<string, unknown> } = {}): Config {
  return policyConfig(overrides.nems ?? {}, overrides.pds ? { pds: overrides.pds } : {});
}

/** The context the nhs-numbers stage sees once earlier stages routed the request and found these numbers. */
export function contextWith(operation: NemsOperation, nhsNumbers: NhsNumberRef[]): RequestContext {
  const method = operation === 'publish' || operation === 'create' ? 'POST' : operation === 'read' ? 'GET' : 'DELETE';
  const ctx = contextFor({ method, target: '/STU3/Subscription', requestId: 'req-1' }, 0, { fqdn: 'client.example.nhs.uk', fingerprints: [], asids: new Map() });
  ctx.operation = operation;
  ctx.nhsNumbers.push(...nhsNumbers);
  return ctx;
}

export function ref(value: string, element = 'Bundle.entry[0].resource.MessageHeader.extension(routingDemographics)'): NhsNumberRef {
  return { value, source: 'routing-demographics', element };
}

/** What a rejection would put on the wire: HTTP status, Spine code, diagnostics, headers. */
export function wire(result: StageResult): { status: number; code: string; diagnostics: string; headers: Record<string, string> } | 'pass' {
  if (result.ok) return 'pass';
  const { code, diagnostics, status, headers } = result.rejection;
  return { status: status ?? SPINE_CODES[code].status, code, diagnostics, headers: { ...headers } };
}

type Script = PdsOutcome | PdsUnavailableError | Error | 'hang';

/** A fake PdsLookup answering from a table; counts calls and the peak number of concurrent lookups. */
export class FakePds implements PdsLookup {
  calls: string[] = [];
  inFlight = 0;
  peakInFlight = 0;

  constructor(private readonly table: Record<string, Script>, private readonly delayMs = 0) {}

  async lookup(nhsNumber: string): Promise<PdsOutcome> {
    this.calls.push(nhsNumber);
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    try {
      const script = this.table[nhsNumber] ?? { result: 'not-found' };
      if (script === 'hang') return await new Promise<never>(() => undefined);
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (script instanceof Error) throw script;
      return script;
    } finally {
      this.inFlight--;
    }
  }

  ready(): Promise<{ ok: boolean; reason: string }> {
    return Promise.resolve({ ok: true, reason: 'fake' });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export const TRACED: PdsOutcome = { result: 'traced', restricted: false, gpOdsCode: 'A83627' };
export const RESTRICTED: PdsOutcome = { result: 'restricted', restricted: true };
export const NOT_FOUND: PdsOutcome = { result: 'not-found' };
export const SUPERSEDED: PdsOutcome = { result: 'superseded' };
export const INVALIDATED: PdsOutcome = { result: 'invalidated' };
