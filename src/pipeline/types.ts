// The stage contract: every check on the request path is a Stage that either passes or reports a violation (a
// Rejection: the catalogued rule it breaks, rules/catalogue.ts, with its Spine code and diagnostics). A conformance
// rule the policy reports is recorded on ctx.reported instead, and the stage carries on (rules/policy.ts). Stages
// never import each other; they read what earlier stages found on the RequestContext. They never build a response:
// the request lifecycle (request-lifecycle.ts) is the one place a violation becomes a rejection.
import type { IncomingHttpHeaders } from 'node:http';
import type { SpineCode } from '../fhir/errors.js';
import type { FhirMimeType } from '../fhir/mime.js';
import type { FhirFormat } from '../fhir/operation-outcome.js';
import type { AsidRegistration, Endpoint, PeerFacts } from '../identity/types.js';
import type { NemsEventType } from '../nems/events.js';
import type { Route } from './routes.js';
import type { NemsOperation } from '../nems/operations.js';
import { ruleDefinition, type RuleId } from '../rules/catalogue.js';

export interface Rejection {
  /** The stable id of the rule the request breaks (rules/catalogue.ts); the lifecycle carries it into the decision and the audit line. */
  readonly rule: RuleId;
  /** The rule's catalogue code, unless the violation names another (e.g. pds.policy.notFound). */
  readonly code: SpineCode;
  /** Names the header, claim or element at fault; never echoes its value. */
  readonly diagnostics: string;
  /** Overrides the catalogue status (e.g. PDS unavailable → configurable 503). */
  readonly status?: number;
  /** Extra response headers (e.g. X-Rate-Limit-*, Allow, Retry-After). */
  readonly headers?: Readonly<Record<string, string>>;
}

export type StageResult = { readonly ok: true } | { readonly ok: false; readonly rejection: Rejection };

export const PASS: StageResult = Object.freeze({ ok: true });

/** A violation of `rule`, answered with the rule's catalogue code unless `extra.code` names another. */
export function violation(rule: RuleId, diagnostics: string, extra?: Partial<Omit<Rejection, 'rule' | 'diagnostics'>>): Rejection {
  return { rule, code: extra?.code ?? ruleDefinition(rule).code, diagnostics, ...(extra?.status !== undefined ? { status: extra.status } : {}), ...(extra?.headers ? { headers: extra.headers } : {}) };
}

/** A stage's result for a violation of `rule` (see violation()). */
export function reject(rule: RuleId, diagnostics: string, extra?: Partial<Omit<Rejection, 'rule' | 'diagnostics'>>): StageResult {
  return { ok: false, rejection: violation(rule, diagnostics, extra) };
}

/** Every stage, in the order the route table runs them. */
export const STAGE_NAMES = ['route', 'rate-limit', 'headers', 'jwt', 'mime', 'read-body', 'body', 'nhs-numbers'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export interface Stage {
  readonly name: StageName;
  /** Synchronous stages return their result directly: the lifecycle then spends no microtask on them. */
  run(ctx: RequestContext): StageResult | Promise<StageResult>;
}

/** One instance of every stage; the route table says which run for a request, and in which order. */
export type StageSet = Readonly<Record<StageName, Stage>>;

/** Where an NHS number was found, for diagnostics and per-source policy. Never logged with its value. */
export type NhsNumberSource =
  | 'subscription-criteria'
  | 'routing-demographics'
  | 'patient-identifier'
  | 'jwt-requesting-patient';

export interface NhsNumberRef {
  readonly value: string;
  readonly source: NhsNumberSource;
  /** Element path for diagnostics, e.g. `Bundle.entry[2].resource.Patient.identifier`. */
  readonly element: string;
  /** The demographics sent with this number, which must match its PDS record (routing demographics of a publish). */
  readonly demographics?: SubmittedDemographics;
}

/** Name and birth date a request states for a patient (an event's routing demographics). Never logged. */
export interface SubmittedDemographics {
  /** Element path of the demographics, for diagnostics. */
  readonly element: string;
  readonly family?: string;
  readonly given: readonly string[];
  /** The FHIR dateTime as sent (e.g. `2017-10-02T12:00:00+00:00`). */
  readonly birthDateTime?: string;
}

/** Verified Spine JWT claims that later stages may need. */
export interface SpineClaims {
  readonly iss: string;
  readonly sub: string;
  readonly requestingSystemAsid: string;
  /** Absent when the token carries no organisation claim (jwt.organisation-present reported or off). */
  readonly requestingOrganisationOds?: string;
  readonly requestingUser?: string;
  readonly requestingPatientNhsNumber?: string;
  readonly scope: string;
  readonly exp: number;
  readonly iat: number;
  readonly signed: boolean;
}

export interface ParsedSubscription {
  readonly kind: 'subscription';
  readonly subscriptionType: 'explicit' | 'generic';
  readonly contactOds: string;
  readonly mailboxId: string;
  readonly eventCodes: readonly string[];
}

export interface ParsedEventMessage {
  readonly kind: 'event';
  readonly eventType: NemsEventType;
  /** Absent when event.message-event-type was reported or off and the extension could not be read. */
  readonly messageEventType?: 'new' | 'update' | 'delete';
  readonly messageId: string;
}

export interface MimeDecision {
  /** Content-Type to forward (as sent, canonical, or the XML default). Undefined when the request has no body. */
  readonly forwardContentType?: string;
  /** Accept to forward (as sent, canonical, or the XML default). */
  readonly forwardAccept: string;
  readonly requestFormat?: FhirFormat;
  readonly responseFormat: FhirFormat;
  /** The one of the 8 FHIR types the client named for the response (Accept or `_format`); rejections use its spelling. */
  readonly responseType?: FhirMimeType;
}

/** How the pipeline reaches the transport. The edge supplies a real socket; unit tests supply a buffer. */
export interface RequestSource {
  /** Reads the whole body, failing with PayloadTooLargeError (code PAYLOAD_TOO_LARGE) once more than `limit` bytes arrive. */
  readBody(limit: number): Promise<Buffer>;
}

/**
 * One request as it arrived, without a socket (Fastify's inject() idea): the edge builds it from node:https, a test
 * or a replay from plain data. It is also the body source, so the edge allocates nothing more per request.
 */
export interface InboundRequest extends RequestSource {
  readonly method: string;
  /** The request target exactly as received: path and query string, never normalised. */
  readonly target: string;
  /** Headers as Node presents them (names lower-cased, repeats joined or first kept). */
  readonly headers: IncomingHttpHeaders;
  /** Raw name/value pairs as received, for duplicate detection and forwarding. */
  readonly rawHeaders: readonly string[];
  readonly peer: PeerFacts;
  /** The request id every answer and the upstream request carry (X-Request-ID; see pickRequestId). */
  readonly requestId: string;
  /** Headers the edge itself sets on the upstream request (the W3C traceparent/tracestate of this hop). */
  readonly edgeHeaders?: Readonly<Record<string, string>>;
}

/** What a RequestSource rejects with when the body is over the limit it was given. */
export class PayloadTooLargeError extends Error {
  readonly code = 'PAYLOAD_TOO_LARGE';
}

export function isPayloadTooLarge(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'PAYLOAD_TOO_LARGE';
}

export interface RequestContext {
  readonly requestId: string;
  readonly method: string;
  /** Path without query string, percent-decoding not applied. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Incoming headers, names lower-cased by Node. */
  readonly headers: IncomingHttpHeaders;
  /** Raw name/value pairs as received, for duplicate detection. */
  readonly rawHeaders: readonly string[];
  /** The registered endpoint the client certificate resolved to at the TLS edge. */
  readonly endpoint: Endpoint;
  readonly source: RequestSource;
  /** Gateway time in ms since the epoch when the request arrived (injectable for tests). */
  readonly receivedAt: number;

  // Filled in by stages, in pipeline order.
  route?: Route;
  operation?: NemsOperation;
  /** Subscription logical id for read/delete. */
  subscriptionId?: string;
  /** Event type named by a publish InteractionID. */
  publishEventType?: NemsEventType;
  fromAsid?: string;
  asidRegistration?: AsidRegistration;
  interactionId?: string;
  claims?: SpineClaims;
  mime?: MimeDecision;
  body?: Buffer;
  parsed?: ParsedSubscription | ParsedEventMessage;
  /** Every NHS number the request carries; stages append, the nhs-numbers stage checks them all. */
  readonly nhsNumbers: NhsNumberRef[];
  /** Headers the forwarder must set (overriding the client's), e.g. the defaulted Accept. */
  readonly forwardHeaders: Record<string, string>;
  /** Stage timings and facts for the audit line; never NHS numbers or tokens. */
  readonly audit: Record<string, string | number | boolean>;
  /** Conformance rules that fired and were reported, not enforced (allocated only when one fires). */
  reported?: RuleId[];
}
