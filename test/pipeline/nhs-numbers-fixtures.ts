// Helpers for the nhs-numbers stage tests: a plain RequestContext, a parsed Config and a scriptable fake PDS.
import { configSchema, type Config } from '../../src/config/schema.js';
import { SPINE_CODES } from '../../src/fhir/errors.js';
import type { NemsOperation } from '../../src/nems/operations.js';
import type { NhsNumberRef, RequestContext, StageResult } from '../../src/pipeline/types.js';
import { PdsUnavailableError, type PdsLookup, type PdsOutcome } from '../../src/pds/types.js';

export function testConfig(overrides: { pds?: Record<string, unknown>; nems?: Record<string, unknown> } = {}): Config {
  return configSchema.parse({
    server: { tls: { cert: '/x/cert.pem', key: '/x/key.pem', ca: '/x/ca.pem' } },
    registry: { path: '/x/registry.yaml' },
    ...(overrides.nems ? { nems: overrides.nems } : {}),
    ...(overrides.pds ? { pds: overrides.pds } : {}),
  });
}

export function contextWith(operation: NemsOperation, nhsNumbers: NhsNumberRef[]): RequestContext {
  return {
    requestId: 'req-1',
    method: operation === 'publish' || operation === 'create' ? 'POST' : operation === 'read' ? 'GET' : 'DELETE',
    path: '/STU3/Subscription',
    query: new URLSearchParams(),
    headers: {},
    rawHeaders: [],
    endpoint: { fqdn: 'client.example.nhs.uk', fingerprints: [], asids: new Map() },
    source: { readBody: () => Promise.resolve(Buffer.alloc(0)) },
    receivedAt: 0,
    operation,
    nhsNumbers,
    forwardHeaders: {},
    audit: {},
  };
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
