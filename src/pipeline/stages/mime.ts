// MIME stage: Content-Type, Accept and `_format` against the FHIR types NEMS takes (docs/specification.md §7, the list
// lives in fhir/mime.ts). Accepted spellings go upstream as sent unless `nems.canonicaliseMime`; a missing
// type, `*/*` or a wildcard-only match goes upstream as the explicit NEMS default.
//
// Decisions:
// - Unsupported or malformed Content-Type, a charset other than utf-8, a parameter other than charset, or
//   Content-Type given twice → 415 UNSUPPORTED_MEDIA_TYPE; JSON on publish → 415 (docs/specification.md §2.1: XML only).
// - Accept that allows none of the route's types (q=0 excludes) → 406 NOT_ACCEPTABLE; so does a `_format`
//   naming no FHIR format, or JSON on publish. `_format` given twice → 400 BAD_REQUEST (ambiguous request).
// - `_format` wins over Accept (docs/specification.md §7). The forwarded Accept is then the FHIR type `_format` names, else the client's
//   own Accept when it names the same format explicitly, else the default type of that format, so NEMS never sees
//   the two disagree.
// - Rule `mime.response-type`: the one of the 8 types the client asked for (an explicit Accept range, or `_format`
//   naming one) is recorded as ctx.mime.responseType; rejections are labelled with it (fhir/operation-outcome.ts
//   outcomeMedia), so `Accept: application/fhir+json` is never answered as `application/json+fhir`.
// - No Accept and no `_format` → the XML default (docs/specification.md §7: NEMS's rule over Spine Core's JSON default, §9.12), even
//   for a JSON request body.
// - Read and delete carry no body: their Content-Type is ignored (and forwarded untouched) unless the request
//   declares a body (Content-Length > 0 or any Transfer-Encoding), in which case it is checked like any body's.
// - A body with a Content-Encoding other than `identity` (gzip, br, deflate, …) → 415 UNSUPPORTED_MEDIA_TYPE (rule
//   `mime.content-encoding`): the gateway does not decode content codings, so it could neither judge such a body
//   nor forward it knowing what it carries (RFC 9110 §8.4: a server refuses a coding it does not accept with 415).
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../../config/schema.js';
import {
  DEFAULT_FHIR_MIME_TYPE,
  defaultMimeTypeFor,
  matchFhirMimeType,
  negotiateAccept,
  parseFormatParameter,
  type FhirMimeType,
  type MimeFamily,
} from '../../fhir/mime.js';
import type { FhirFormat } from '../../fhir/operation-outcome.js';
import { RulePolicy } from '../../rules/policy.js';
import { PASS, reject, type RequestContext, type Stage, type StageResult } from '../types.js';

function declaresBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length.trim() !== '0';
}

function contentTypeValues(rawHeaders: readonly string[]): string[] {
  return rawHeaderValues(rawHeaders, 'content-type');
}

/** Every value of one header as received (names compared without case); `name` is lower-case. */
function rawHeaderValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const sent = rawHeaders[i]!;
    // Only a name of the same length can match: most headers are never lower-cased.
    if (sent.length === name.length && sent.toLowerCase() === name) values.push(rawHeaders[i + 1]!);
  }
  return values;
}

/** True when every content coding listed (all Content-Encoding lines, comma-separated) is `identity`. */
function identityEncoded(rawHeaders: readonly string[]): boolean {
  for (const value of rawHeaderValues(rawHeaders, 'content-encoding')) {
    for (const coding of value.split(',')) {
      const token = coding.trim().toLowerCase();
      if (token !== '' && token !== 'identity') return false;
    }
  }
  return true;
}

type Decided<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly result: StageResult };

interface ContentTypeDecision {
  readonly forward: string;
  readonly format: FhirFormat;
}

interface AcceptDecision {
  readonly forward: string;
  readonly format: FhirFormat;
  /** The FHIR type the client named for the response, when it named one. */
  readonly type?: FhirMimeType;
  /** A reported Accept or `_format` rule: the client's Accept goes upstream as sent. */
  readonly unchanged?: boolean;
}

export function createMimeStage(config: Config, policy: RulePolicy = RulePolicy.fromConfig(config)): Stage {
  const canonicalise = config.nems.canonicaliseMime;
  const spell = (sent: string, type: FhirMimeType): string => (canonicalise ? type.spelling : sent);

  function decideContentType(ctx: RequestContext, family: MimeFamily): Decided<ContentTypeDecision> {
    const values = contentTypeValues(ctx.rawHeaders);
    if (values.length > 1) {
      return { ok: false, result: reject('mime.content-type', 'The Content-Type header must be supplied at most once') };
    }
    const sent = values[0]?.trim();
    if (sent === undefined || sent === '') return { ok: true, value: { forward: DEFAULT_FHIR_MIME_TYPE, format: 'xml' } };
    const type = matchFhirMimeType(sent, 'fhir');
    if (!type) {
      return { ok: false, result: reject('mime.content-type', 'The Content-Type header is not a supported FHIR media type') };
    }
    if (family === 'fhir-xml' && type.format !== 'xml') {
      return { ok: false, result: reject('mime.publish-xml', 'The Content-Type header must be an XML FHIR media type for publish') };
    }
    return { ok: true, value: { forward: spell(sent, type), format: type.format } };
  }

  /**
   * A conformance rule of Accept or `_format` fired: enforce refuses; report or off lets the request go upstream with
   * its own Accept unchanged, and the gateway's own answers (a later rejection) use the XML default.
   */
  function unjudgedAccept(ctx: RequestContext, rule: 'mime.accept' | 'mime.format-parameter' | 'mime.format-repeated', diagnostics: string): Decided<AcceptDecision> {
    const refused = policy.fire(ctx, rule, diagnostics);
    if (refused) return { ok: false, result: { ok: false, rejection: refused } };
    return { ok: true, value: { forward: ctx.headers.accept ?? DEFAULT_FHIR_MIME_TYPE, format: 'xml', unchanged: true } };
  }

  function decideAccept(ctx: RequestContext, family: MimeFamily): Decided<AcceptDecision> {
    const sentAccept = ctx.headers.accept?.trim();
    const negotiated = sentAccept ? negotiateAccept(sentAccept, family) : undefined;
    const formats = ctx.query.getAll('_format');
    if (formats.length > 1) return unjudgedAccept(ctx, 'mime.format-repeated', 'The _format parameter must be supplied at most once');

    if (formats.length === 1) {
      const requested = parseFormatParameter(formats[0]!);
      if (!requested) return unjudgedAccept(ctx, 'mime.format-parameter', 'The _format parameter is not a supported FHIR format');
      if (family === 'fhir-xml' && requested.format !== 'xml') {
        return unjudgedAccept(ctx, 'mime.format-parameter', 'The _format parameter must be an XML format for publish');
      }
      if (requested.fhirType) return { ok: true, value: { forward: requested.fhirType.spelling, format: requested.format, type: requested.fhirType } };
      if (sentAccept && negotiated?.ok && negotiated.explicit && negotiated.type.format === requested.format) {
        return { ok: true, value: { forward: spell(sentAccept, negotiated.type), format: requested.format, type: negotiated.type } };
      }
      return { ok: true, value: { forward: defaultMimeTypeFor(requested.format), format: requested.format } };
    }

    if (!sentAccept || !negotiated) return { ok: true, value: { forward: DEFAULT_FHIR_MIME_TYPE, format: 'xml' } };
    if (!negotiated.ok) return unjudgedAccept(ctx, 'mime.accept', 'The Accept header allows no supported FHIR media type');
    // A wildcard-only match is made explicit so NEMS never picks for itself (Spine Core's default is JSON).
    const forward = negotiated.explicit ? spell(sentAccept, negotiated.type) : negotiated.type.spelling;
    return { ok: true, value: { forward, format: negotiated.type.format, type: negotiated.type } };
  }

  return {
    name: 'mime',
    run(ctx: RequestContext): StageResult {
      const route = ctx.route;
      if (!route) return reject('gateway.internal', 'The mime stage ran before the route stage');

      let contentType: ContentTypeDecision | undefined;
      if (route.hasBody || declaresBody(ctx.headers)) {
        // mime.content-encoding
        if (!identityEncoded(ctx.rawHeaders)) {
          return reject('mime.content-encoding', 'The Content-Encoding header names a content coding the gateway does not decode: send the body without one');
        }
        const decided = decideContentType(ctx, route.mime);
        if (!decided.ok) return decided.result;
        contentType = decided.value;
      }
      const accept = decideAccept(ctx, route.mime);
      if (!accept.ok) return accept.result;

      ctx.mime = {
        ...(contentType ? { forwardContentType: contentType.forward, requestFormat: contentType.format } : {}),
        forwardAccept: accept.value.forward,
        responseFormat: accept.value.format,
        ...(accept.value.type ? { responseType: accept.value.type } : {}),
      };
      if (contentType && contentType.forward !== ctx.headers['content-type']) {
        ctx.forwardHeaders['content-type'] = contentType.forward;
        ctx.audit['contentTypeRewritten'] = true;
      }
      if (!accept.value.unchanged && accept.value.forward !== ctx.headers.accept) {
        ctx.forwardHeaders['accept'] = accept.value.forward;
        ctx.audit['acceptRewritten'] = true;
      }
      return PASS;
    },
  };
}
