// What the edge reports about traffic. The metrics module implements it; tests and tools may pass NOOP_OBSERVER.
import type { SpineCode } from '../fhir/errors.js';
import type { IdentityRejectionReason } from '../identity/types.js';
import type { RouteLabel } from '../observability/labels.js';
import type { StageName } from '../pipeline/types.js';
import type { RuleId } from '../rules/catalogue.js';
import type { UpstreamFailureKind } from '../upstream/types.js';

export type { RouteLabel };
export type RequestOutcome = 'forwarded' | 'rejected' | 'upstream_error';

export interface RequestRecord {
  readonly route: RouteLabel;
  readonly outcome: RequestOutcome;
  readonly status: number;
  readonly seconds: number;
  readonly upstreamSeconds?: number;
  readonly rejection?: { readonly code: SpineCode; readonly stage: StageName | 'edge' };
  readonly upstreamFailure?: UpstreamFailureKind;
  /** The rule a rejection enforced, and the conformance rules reported on the way (forwarded or not). */
  readonly rules?: { readonly enforced?: RuleId; readonly reported?: readonly RuleId[] };
}

export interface EdgeObserver {
  connectionOpened(): void;
  connectionClosed(): void;
  /** `tlsSocket` carries OpenSSL's real reason (authorizationError) when Node reports only ECONNRESET. */
  tlsHandshakeFailed(error: Error, tlsSocket?: { readonly authorizationError?: unknown } | null): void;
  /** A verified certificate that resolved to no registered endpoint. */
  identityRejected(reason: IdentityRejectionReason): void;
  /** A request arrived; the returned function is called once its response is finished. */
  requestStarted(): () => void;
  request(record: RequestRecord): void;
}

const noop = () => {};
export const NOOP_OBSERVER: EdgeObserver = {
  connectionOpened: noop,
  connectionClosed: noop,
  tlsHandshakeFailed: noop,
  identityRejected: noop,
  requestStarted: () => noop,
  request: noop,
};
