// The mime stage (docs/specification.md §7): the MimeDecision it records, forward headers set only when changed, and
// nems.canonicaliseMime.
import { describe, expect, it } from 'vitest';
import { inject, policyConfig, summary, testLifecycle } from '../helpers/inject.js';

/** The real lifecycle with the mime stage alone after the route (the other stages pass): headers here are MIME only. */
async function mime(method: string, path: string, headers: [string, string][], nems: Record<string, unknown> = {}, body?: string) {
  const lifecycle = testLifecycle(policyConfig(nems), { only: ['mime'] });
  const decision = await inject(lifecycle, { method, target: path, headers, ...(body ? { body: Buffer.from(body) } : {}) });
  return { ctx: decision.ctx!, result: summary(decision) };
}

const READ = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';

describe('mime stage', () => {
  it('records request and response formats and leaves accepted spellings untouched', async () => {
    const { ctx, result } = await mime('POST', '/STU3/Subscription', [['Content-Type', 'application/fhir+json'], ['Accept', 'application/fhir+json']]);
    expect(result).toBe('pass');
    expect(ctx.mime).toEqual({
      forwardContentType: 'application/fhir+json',
      requestFormat: 'json',
      forwardAccept: 'application/fhir+json',
      responseFormat: 'json',
      responseType: { spelling: 'application/fhir+json', essence: 'application/fhir+json', charset: false, format: 'json' },
    });
    expect(ctx.forwardHeaders).toEqual({});
  });

  it.each([
    // [Accept, _format, the response type recorded (its spelling labels rejections), the Accept forwarded]
    ['application/fhir+json', undefined, 'application/fhir+json', 'application/fhir+json'],
    ['application/fhir+json;charset=utf-8', undefined, 'application/fhir+json;charset=utf-8', 'application/fhir+json;charset=utf-8'],
    ['application/json+fhir', undefined, 'application/json+fhir', 'application/json+fhir'],
    ['application/fhir+xml', undefined, 'application/fhir+xml', 'application/fhir+xml'],
    ['*/*', undefined, 'application/xml+fhir;charset=utf-8', 'application/xml+fhir;charset=utf-8'],
    [undefined, 'application/fhir+json', 'application/fhir+json', 'application/fhir+json'],
    // _format names a type and wins over a different JSON spelling in Accept: the named type goes upstream too.
    ['application/json+fhir', 'application/fhir+json', 'application/fhir+json', 'application/fhir+json'],
    ['application/fhir+json', 'json', 'application/fhir+json', 'application/fhir+json'],
    [undefined, 'json', undefined, 'application/json+fhir;charset=utf-8'],
  ])('mime.response-type: Accept %s, _format %s → responds as %s, forwards Accept %s', async (accept, format, responseType, forwarded) => {
    const path = format ? `${READ}?_format=${encodeURIComponent(format)}` : READ;
    const { ctx, result } = await mime('GET', path, accept ? [['Accept', accept]] : []);
    expect(result).toBe('pass');
    expect(ctx.mime?.responseType?.spelling).toBe(responseType);
    expect(ctx.mime?.forwardAccept).toBe(forwarded);
  });

  it('sets forward headers for the defaults it adds', async () => {
    const { ctx } = await mime('POST', '/STU3/Subscription', []);
    expect(ctx.forwardHeaders).toEqual({ 'content-type': 'application/xml+fhir;charset=utf-8', accept: 'application/xml+fhir;charset=utf-8' });
    expect(ctx.mime?.responseFormat).toBe('xml');
  });

  it('records no Content-Type decision for a read without a body', async () => {
    const { ctx } = await mime('GET', READ, [['Content-Type', 'text/plain']]);
    expect(ctx.mime?.forwardContentType).toBeUndefined();
    expect(ctx.forwardHeaders['content-type']).toBeUndefined();
  });

  it('checks the Content-Type of a read that declares a body, defaulting a missing one', async () => {
    expect((await mime('GET', READ, [['Content-Type', 'application/fhir+json']], {}, 'x')).ctx.mime?.requestFormat).toBe('json');
    expect((await mime('GET', READ, [['Transfer-Encoding', 'chunked'], ['Content-Type', 'text/plain']])).result).toBe('415 UNSUPPORTED_MEDIA_TYPE');
    expect((await mime('GET', READ, [['Content-Length', '0'], ['Content-Type', 'text/plain']])).result).toBe('pass');
  });

  it('with canonicaliseMime forwards the canonical spelling of what was accepted', async () => {
    const { ctx, result } = await mime(
      'POST',
      '/STU3/Subscription',
      [['Content-Type', 'Application/FHIR+JSON ; charset="UTF-8"'], ['Accept', 'application/fhir+json;q=0.9, application/fhir+xml;q=0.1']],
      { canonicaliseMime: true },
    );
    expect(result).toBe('pass');
    expect(ctx.forwardHeaders).toEqual({ 'content-type': 'application/fhir+json;charset=utf-8', accept: 'application/fhir+json' });
  });

  it('publish answers in XML whatever the wildcard (406 NOT_ACCEPTABLE for a JSON-only Accept)', async () => {
    const path = '/STU3/Events/1/$process-message';
    expect((await mime('POST', path, [['Accept', 'application/json+fhir']])).result).toBe('406 NOT_ACCEPTABLE');
    expect((await mime('POST', path, [['Accept', '*/*']])).ctx.mime?.responseFormat).toBe('xml');
  });
});
