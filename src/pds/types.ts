// PDS verification contract (docs/specification.md §6): every NHS number must be traced at the time of the call.

/**
 * The demographics of a PDS record that an event's routing demographics must match (docs/specification.md §6.1, §2.10.4). A field PDS
 * did not give is absent, and is then not compared.
 */
export interface PdsDemographics {
  /**
   * The record's current names (PDS `use: old` and names whose period has ended are left out). Absent when PDS
   * holds no name; an empty list when PDS holds names but none is current, which no sent name can match.
   */
  readonly names?: readonly PdsName[];
  /** FHIR date: YYYY, YYYY-MM or YYYY-MM-DD. */
  readonly birthDate?: string;
}

export interface PdsName {
  readonly family?: string;
  readonly given: readonly string[];
}

/** What a PDS lookup found for one NHS number. */
export type PdsOutcome =
  | {
      readonly result: 'traced';
      readonly restricted: false;
      readonly gpOdsCode?: string;
      readonly postcode?: string;
      readonly demographics?: PdsDemographics;
    }
  /** Traced, but the record carries meta.security R (S-flag). Location data is withheld by PDS; name and birth date are not. */
  | { readonly result: 'restricted'; readonly restricted: true; readonly demographics?: PdsDemographics }
  | { readonly result: 'not-found' }
  /** PDS answered with a different (newer) NHS number: the submitted one is not current. */
  | { readonly result: 'superseded' }
  /** The record existed but was invalidated and not superseded (PDS 404 INVALIDATED_RESOURCE). */
  | { readonly result: 'invalidated' }
  /** PDS says the number is not a valid NHS number (PDS 400 INVALID_RESOURCE_ID, "Invalid NHS number"). */
  | { readonly result: 'invalid' };

export type PdsResult = PdsOutcome['result'];

/** PDS could not give an answer (unreachable, timed out, malformed, auth failure). Always fails closed. */
export class PdsUnavailableError extends Error {
  constructor(readonly reason: 'unreachable' | 'timeout' | 'bad-response' | 'auth' | 'throttled', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PdsUnavailableError';
  }
}

export interface PdsLookup {
  /** Looks up one 10-digit, modulus-11-valid NHS number. Rejects with PdsUnavailableError, never with other errors. */
  lookup(nhsNumber: string, requestId: string): Promise<PdsOutcome>;
  /**
   * The outcome a cache already holds for this number (counted as a hit), or undefined: lets a request whose numbers
   * are all cached be judged without a promise or a deadline timer. Only a caching lookup has it.
   */
  cached?(nhsNumber: string): PdsOutcome | undefined;
  /** Readiness for /readyz: a local store is ready once loaded; a remote PDS when its last call succeeded. */
  ready(): Promise<{ ok: boolean; reason: string }>;
  close(): Promise<void>;
}

/** Optional hooks for metrics; the PDS module calls them, observability implements them. */
export interface PdsObserver {
  lookup(result: PdsResult | 'unavailable', cache: 'hit' | 'miss' | 'coalesced', seconds: number): void;
}
