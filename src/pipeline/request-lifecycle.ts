// The request lifecycle, without sockets (Fastify's lifecycle and inject() idea): one inbound request in, one
// decision out. Certificate → endpoint, the request context, the stages the route table names (in order, the first
// violation ends the run), then either a forward plan (headers, body bytes, the ASID registration) or a rendered
// rejection (status, headers, OperationOutcome, Spine code, stage). The TLS edge (edge/gateway.ts) is a thin
// adapter around it; unit tests and, later, an offline replay drive it with plain data.
//
// This is the one place a stage's violation becomes a response (reject()). Synchronous stages are not awaited, so
// a request whose stages are all synchronous costs exactly one promise: run()'s own.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Config } from '../config/schema.js';
import { SPINE_CODES, type SpineCode } from '../fhir/errors.js';
import { preferredErrorMedia } from '../fhir/mime.js';
import { outcomeMedia, renderOperationOutcome, type OutcomeMedia } from '../fhir/operation-outcome.js';
import { EndpointResolver } from '../identity/endpoint-resolver.js';
import type { EndpointRegistry, IdentityRejectionReason } from '../identity/types.js';
import type { RuleId } from '../rules/catalogue.js';
import type { ForwardRequest } from '../upstream/types.js';
import { bodyLimitFor } from './body-limits.js';
import { createRequestContext } from './context.js';
import { forwardHeaders } from './forward-headers.js';
import {
  isPayloadTooLarge,
  violation,
  type InboundRequest,
  type MimeDecision,
  type Rejection,
  type RequestContext,
  type StageName,
  type StageResult,
  type StageSet,
} from './types.js';

/** A stage, or 'edge' for what the lifecycle itself refuses (no registered endpoint, an unreadable body). */
export type LifecycleStage = StageName | 'edge';

/** A rejection ready for the wire. */
export interface RenderedRejection {
  readonly status: number;
  /** Content-Type, Content-Length, Cache-Control, X-Request-ID and the rejection's own (Allow, Retry-After, …). */
  readonly headers: OutgoingHttpHeaders;
  /** The OperationOutcome, in the format the client negotiated (XML for media-type failures). */
  readonly body: string;
  readonly code: SpineCode;
  /** The rule broken (rules/catalogue.ts). */
  readonly rule: RuleId;
}

export interface RejectDecision extends RenderedRejection {
  readonly action: 'reject';
  readonly stage: LifecycleStage;
  /** Gateway-written; never a header, claim or body value. */
  readonly diagnostics: string;
  /** Absent when the request was refused before it had a context (the certificate names no endpoint). */
  readonly ctx?: RequestContext;
  /** Why the certificate resolved to no endpoint. */
  readonly identity?: IdentityRejectionReason;
}

/** The forward plan: exactly what the upstream gets, plus the context the stages filled (for the audit line). */
export interface ForwardDecision extends ForwardRequest {
  readonly action: 'forward';
  readonly ctx: RequestContext;
}

export type Decision = ForwardDecision | RejectDecision;

export type StageObserver = (stage: StageName, result: StageResult, seconds: number) => void;

export interface LifecycleOptions {
  readonly config: Config;
  readonly registry: EndpointRegistry;
  readonly stages: StageSet;
  /** Gateway clock (ms since the epoch) for each request's receivedAt. */
  readonly now?: () => number;
  readonly observe?: StageObserver;
}

export class RequestLifecycle {
  readonly #config: Config;
  /** Certificate → endpoint, once per TLS connection and registry version. */
  readonly #endpoints: EndpointResolver;
  readonly #stages: StageSet;
  readonly #now: () => number;
  readonly #observe: StageObserver | undefined;

  constructor(options: LifecycleOptions) {
    this.#config = options.config;
    this.#endpoints = new EndpointResolver(options.registry);
    this.#stages = options.stages;
    this.#now = options.now ?? Date.now;
    this.#observe = options.observe;
  }

  /** One promise per request: synchronous stages (most of them) are not awaited, so cost no microtask hop. */
  async run(inbound: InboundRequest): Promise<Decision> {
    const identity = this.#endpoints.resolve(inbound.peer);
    if (!identity.ok) return this.#identityRejection(inbound, identity.reason);
    const ctx = createRequestContext(inbound, identity.endpoint, this.#now());

    let first = this.#runStage('route', ctx);
    if (first instanceof Promise) first = await first;
    if (!first.ok) return this.reject(ctx, first.rejection, 'route');
    const names = ctx.route?.stages ?? [];
    for (const name of names) {
      if (name === 'route') continue;
      let result = this.#runStage(name, ctx);
      if (result instanceof Promise) result = await result;
      if (!result.ok) return this.reject(ctx, result.rejection, name);
    }

    // Read and delete skip the body stages; a body they declare anyway is read under the default cap and forwarded.
    let body = ctx.body;
    if (body === undefined && declaresBody(inbound.headers)) {
      try {
        body = await inbound.readBody(bodyLimitFor(this.#config, ctx.operation));
      } catch (err) {
        const tooLarge = isPayloadTooLarge(err);
        return this.reject(ctx, tooLarge
          ? violation('limits.body-size', 'The request body is too large')
          : violation('body.unreadable', 'The request body could not be read'), 'edge');
      }
    }
    return {
      action: 'forward',
      requestId: ctx.requestId,
      method: ctx.method,
      url: inbound.target,
      headers: forwardHeaders(inbound, ctx, body),
      ...(body ? { body } : {}),
      ...(ctx.asidRegistration ? { asid: ctx.asidRegistration } : {}),
      ctx,
    };
  }

  /**
   * The one place a violation becomes a rejection: status from the catalogue unless the violation overrides it,
   * the OperationOutcome in the negotiated format. The edge uses it too for what happens after the decision
   * (502/504 from the upstream).
   */
  reject(ctx: RequestContext, violation: Rejection, stage: LifecycleStage): RejectDecision {
    const media = errorMedia(violation.code, ctx.mime, ctx.headers, ctx.query);
    return { action: 'reject', stage, diagnostics: violation.diagnostics, ctx, ...renderRejection(ctx.requestId, violation, media) };
  }

  /**
   * A refusal before the request has a context (the connection's certificate was refused since the handshake, or
   * names no endpoint): answered in the format the request asks for.
   */
  refuse(inbound: InboundRequest, violation: Rejection): RejectDecision {
    const q = inbound.target.indexOf('?');
    const query = new URLSearchParams(q === -1 ? '' : inbound.target.slice(q + 1));
    const media = errorMedia(violation.code, undefined, inbound.headers, query);
    return { action: 'reject', stage: 'edge', diagnostics: violation.diagnostics, ...renderRejection(inbound.requestId, violation, media) };
  }

  #identityRejection(inbound: InboundRequest, reason: IdentityRejectionReason): RejectDecision {
    const refused = violation('tls.client-identity', 'The client certificate is not registered for a Spine endpoint');
    return { ...this.refuse(inbound, refused), identity: reason };
  }

  #runStage(name: StageName, ctx: RequestContext): StageResult | Promise<StageResult> {
    const stage = this.#stages[name];
    const observe = this.#observe;
    if (!observe) return stage.run(ctx);
    const started = performance.now();
    const pending = stage.run(ctx);
    if (pending instanceof Promise) {
      return pending.then((result) => {
        observe(name, result, (performance.now() - started) / 1000);
        return result;
      });
    }
    observe(name, pending, (performance.now() - started) / 1000);
    return pending;
  }
}

/** Renders a violation for the wire: catalogue status unless overridden, the OperationOutcome, no-store. */
export function renderRejection(requestId: string, rejection: Rejection, media: OutcomeMedia): RenderedRejection {
  const status = rejection.status ?? SPINE_CODES[rejection.code].status;
  const body = renderOperationOutcome(requestId, [{ code: rejection.code, diagnostics: rejection.diagnostics }], media.format);
  const headers: OutgoingHttpHeaders = {
    ...rejection.headers,
    'content-type': media.contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  return { status, headers, body, code: rejection.code, rule: rejection.rule };
}

function errorMedia(
  code: SpineCode,
  mime: MimeDecision | undefined,
  headers: InboundRequest['headers'],
  query: URLSearchParams,
): OutcomeMedia {
  // Media-type failures are answered in the XML default: the client's own format is what failed (docs/specification.md §7).
  if (code === 'UNSUPPORTED_MEDIA_TYPE' || code === 'NOT_ACCEPTABLE') return outcomeMedia('xml');
  // mime.response-type: labelled with the FHIR type the client asked for (fhir/operation-outcome.ts outcomeMedia).
  return mime ? outcomeMedia(mime.responseFormat, mime.responseType) : preferredErrorMedia(headers, query);
}

/** The request says a body follows (any Content-Length but 0, or any Transfer-Encoding). */
export function declaresBody(headers: InboundRequest['headers']): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}
