// Representation headers end to end, over real mTLS to a real upstream process:
// - mime.content-encoding: a body with a content coding other than identity is 415 UNSUPPORTED_MEDIA_TYPE and never
//   reaches NEMS (before: gzip bytes were judged as text, "not valid UTF-8"; plain XML labelled gzip was forwarded);
// - mime.response-type: rejections are labelled with the FHIR type the client asked for, and that type goes
//   upstream in Accept (before: `Accept: application/fhir+json` was answered as `application/json+fhir`).
import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EXPLICIT_SUBSCRIPTION_JSON, EXPLICIT_SUBSCRIPTION_XML, VACCINATION_PUBLISH_XML } from '../helpers/bodies.js';
import { send, spineCodeOf, useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';

const PUBLISH = '/STU3/Events/1/$process-message';
const SUBSCRIPTION = '/STU3/Subscription';
const READ = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';

const { pki, upstream, app } = useTestGateway();

describe('mime.content-encoding: coded bodies are refused, not judged as text', () => {
  it.each([
    ['gzip', gzipSync],
    ['br', brotliCompressSync],
    ['deflate', deflateSync],
  ] as const)('a publish body coded %s → 415 UNSUPPORTED_MEDIA_TYPE, nothing forwarded', async (coding, encode) => {
    await upstream.reset();
    const res = await send(pki, app.gateway.port, {
      client: 'child-health', method: 'POST', path: PUBLISH, body: encode(Buffer.from(VACCINATION_PUBLISH_XML)),
      headers: { ...nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml' }), 'Content-Encoding': coding },
    });
    expect({ status: res.status, code: spineCodeOf(res.text) }).toEqual({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(res.text).toContain('Content-Encoding');
    expect(res.text).not.toContain('UTF-8');
    expect((await upstream.stats()).count).toBe(0);
  });

  it('plain XML labelled gzip is refused too (it was forwarded with the label)', async () => {
    await upstream.reset();
    const res = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'POST', path: SUBSCRIPTION, body: EXPLICIT_SUBSCRIPTION_XML,
      headers: { ...nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), 'Content-Encoding': 'gzip' },
    });
    expect(res.status).toBe(415);
    expect((await upstream.stats()).count).toBe(0);
  });

  it('Content-Encoding: identity is forwarded as before', async () => {
    await upstream.reset();
    const res = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'POST', path: SUBSCRIPTION, body: EXPLICIT_SUBSCRIPTION_XML,
      headers: { ...nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), 'Content-Encoding': 'identity' },
    });
    expect(res.status).toBe(201);
    expect((await upstream.stats()).count).toBe(1);
  });
});

describe('mime.response-type: answered in the media type the client asked for', () => {
  it.each([
    'application/fhir+json',
    'application/fhir+json;charset=utf-8',
    'application/json+fhir',
    'application/json+fhir;charset=utf-8',
  ])('a create rejected with Accept %s is labelled with exactly that type and written as JSON', async (accept) => {
    const res = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'POST', path: SUBSCRIPTION, body: EXPLICIT_SUBSCRIPTION_JSON.replace('"requested"', '"active"'),
      headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+json', accept }),
    });
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toBe(accept);
    expect(JSON.parse(res.text)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ details: { coding: [{ code: 'INVALID_RESOURCE' }] } }] });
  });

  it.each(['application/fhir+xml', 'application/xml+fhir'])('an XML type is echoed too (Accept %s)', async (accept) => {
    const res = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'GET', path: READ,
      headers: { ...nemsHeaders('gp-system', 'read', { accept }), fromASID: '200000000102' },
    });
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe(accept);
    expect(res.text.startsWith('<OperationOutcome')).toBe(true);
  });

  it('_format naming a type wins over Accept, for the rejection and for the Accept sent upstream', async () => {
    const rejected = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'GET', path: `${READ}?_format=application/fhir%2Bjson`,
      headers: { ...nemsHeaders('gp-system', 'read', { accept: 'application/json+fhir' }), fromASID: '200000000102' },
    });
    expect(rejected.headers['content-type']).toBe('application/fhir+json');
    await upstream.reset();
    const forwarded = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'GET', path: `${READ}?_format=application/fhir%2Bjson`,
      headers: nemsHeaders('gp-system', 'read', { accept: 'application/json+fhir' }),
    });
    expect(forwarded.status).toBe(200);
    expect((await upstream.stats()).received[0]!.headers['accept']).toBe('application/fhir+json');
  });

  it('a rejection made before the MIME stage (an unregistered certificate) echoes an explicitly named type', async () => {
    const res = await send(pki, app.gateway.port, { client: 'unregistered', method: 'GET', path: READ, headers: { Accept: 'application/fhir+json' } });
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe('application/fhir+json');
    expect(JSON.parse(res.text).issue[0].details.coding[0].code).toBe('ACCESS_DENIED');
  });

  it('no preference keeps the NEMS default label', async () => {
    const res = await send(pki, app.gateway.port, {
      client: 'gp-system', method: 'GET', path: READ, headers: { ...nemsHeaders('gp-system', 'read'), fromASID: '200000000102' },
    });
    expect(res.headers['content-type']).toBe('application/xml+fhir;charset=utf-8');
  });
});
