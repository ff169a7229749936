// Helpers for the read-body and body stage tests: a parsed Config, a RequestContext from the one factory with a
// scripted body source, and the wire view of a StageResult.
import { configSchema, type Config } from '../../src/config/schema.js';
import { SPINE_CODES } from '../../src/fhir/errors.js';
import type { NemsEventType } from '../../src/nems/events.js';
import type { FhirFormat } from '../../src/fhir/operation-outcome.js';
import type { AsidRegistration } from '../../src/identity/types.js';
import type { NemsOperation } from '../../src/nems/operations.js';
import { createRequestContext } from '../../src/pipeline/context.js';
import type { NhsNumberRef, RequestContext, RequestSource, StageResult } from '../../src/pipeline/types.js';
import { GP_SYSTEM_ENDPOINT } from '../helpers/endpoints.js';
import { inboundRequest } from '../helpers/inject.js';

export const RECEIVED_AT = Date.parse('2025-06-01T12:00:00Z');

export function bodyTestConfig(
  limits: { publishMaxBytes?: number; subscriptionMaxBytes?: number; maxBodyBytes?: number; requestTimeoutMs?: number; xmlParser?: 'fast-xml-parser' | 'single-pass' } = {},
): Config {
  return configSchema.parse({
    server: {
      tls: { cert: '/x/cert.pem', key: '/x/key.pem', ca: '/x/ca.pem' },
      limits: {
        ...(limits.maxBodyBytes !== undefined ? { maxBodyBytes: limits.maxBodyBytes } : {}),
        ...(limits.requestTimeoutMs !== undefined ? { requestTimeoutMs: limits.requestTimeoutMs } : {}),
      },
    },
    registry: { path: '/x/registry.yaml' },
    nems: {
      ...(limits.publishMaxBytes !== undefined ? { publishMaxBytes: limits.publishMaxBytes } : {}),
      ...(limits.subscriptionMaxBytes !== undefined ? { subscriptionMaxBytes: limits.subscriptionMaxBytes } : {}),
      ...(limits.xmlParser !== undefined ? { xmlParser: limits.xmlParser } : {}),
    },
    // The body rules to the letter, as these tests were written (the compatible profile reports some).
    policy: { profile: 'strict' },
  });
}

/** A body source that records the limit it was asked for and answers from a script. */
export class ScriptedSource implements RequestSource {
  limits: number[] = [];
  constructor(private readonly answer: Buffer | Error | 'hang') {}
  readBody(limit: number): Promise<Buffer> {
    this.limits.push(limit);
    if (this.answer === 'hang') return new Promise<Buffer>(() => undefined);
    if (this.answer instanceof Error) return Promise.reject(this.answer);
    // Behave like the edge: refuse once more than `limit` bytes arrive.
    if (this.answer.length > limit) return Promise.reject(Object.assign(new Error('too large'), { code: 'PAYLOAD_TOO_LARGE' }));
    return Promise.resolve(this.answer);
  }
}

export interface BodyContextOptions {
  body?: Buffer;
  source?: RequestSource;
  contentLength?: string;
  requestFormat?: FhirFormat;
  asidRegistration?: AsidRegistration;
  publishEventType?: NemsEventType;
  nhsNumbers?: NhsNumberRef[];
}

/** The context the body stages see once the head stages routed the request (and, as options say, found more). */
export function bodyContext(operation: NemsOperation, opts: BodyContextOptions = {}): RequestContext {
  const inbound = inboundRequest({
    method: operation === 'read' ? 'GET' : operation === 'delete' ? 'DELETE' : 'POST',
    target: operation === 'publish' ? '/STU3/Events/1/$process-message' : '/STU3/Subscription',
    headers: opts.contentLength !== undefined ? [['Content-Length', opts.contentLength]] : [],
    requestId: 'req-body-1',
  });
  const source = opts.source ?? new ScriptedSource(opts.body ?? Buffer.alloc(0));
  const ctx = createRequestContext({ ...inbound, readBody: (limit) => source.readBody(limit) }, GP_SYSTEM_ENDPOINT, RECEIVED_AT);
  ctx.operation = operation;
  if (opts.body !== undefined) ctx.body = opts.body;
  if (opts.asidRegistration) ctx.asidRegistration = opts.asidRegistration;
  if (opts.publishEventType) ctx.publishEventType = opts.publishEventType;
  ctx.mime = {
    forwardAccept: 'application/fhir+xml',
    responseFormat: 'xml',
    ...(opts.requestFormat ? { requestFormat: opts.requestFormat } : {}),
  };
  ctx.nhsNumbers.push(...(opts.nhsNumbers ?? []));
  return ctx;
}

/** What a rejection would put on the wire: HTTP status, Spine code and diagnostics. */
export function wire(result: StageResult): 'pass' | { status: number; code: string; diagnostics: string } {
  if (result.ok) return 'pass';
  const { code, diagnostics, status } = result.rejection;
  return { status: status ?? SPINE_CODES[code].status, code, diagnostics };
}
