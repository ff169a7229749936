// The request lifecycle (src/pipeline/request-lifecycle.ts) in-process: certificate → endpoint, the stages the route
// table names, and the decision (forward plan or rendered rejection), with no socket anywhere.
import { describe, expect, it } from 'vitest';
import { mintSpineJwt } from '../../src/cli/jwt.js';
import { SUBSCRIPTION_INTERACTIONS } from '../../src/nems/interactions.js';
import { RequestLifecycle, type Decision, type RejectDecision } from '../../src/pipeline/request-lifecycle.js';
import { createStages } from '../../src/pipeline/stages/index.js';
import { reject, type StageName } from '../../src/pipeline/types.js';
import { GP_SYSTEM_ASID, GP_SYSTEM_ODS, GP_SYSTEM_REGISTRATION, NEMS_TO_ASID } from '../helpers/endpoints.js';
import { inject, policyConfig, registryOf, testLifecycle, TRACE_EVERY_NUMBER, type InjectRequest } from '../helpers/inject.js';

const NOW = Date.UTC(2025, 0, 30, 12, 0, 0);
const ID = 'ea0a485187204b49b978bdcf7102388c';

function read(extra: readonly (readonly [string, string])[] = [], target = `/STU3/Subscription/${ID}`): InjectRequest {
  const token = mintSpineJwt({ asid: GP_SYSTEM_ASID, ods: GP_SYSTEM_ODS, scope: 'patient/Subscription.read', now: NOW });
  return {
    method: 'GET',
    target,
    requestId: 'lifecycle-1',
    headers: [
      ['fromASID', GP_SYSTEM_ASID],
      ['toASID', NEMS_TO_ASID],
      ['InteractionID', SUBSCRIPTION_INTERACTIONS.read],
      ['Authorization', `Bearer ${token}`],
      ...extra,
    ],
  };
}

function rejected(decision: Decision): RejectDecision {
  if (decision.action !== 'reject') throw new Error('expected a rejection');
  return decision;
}

describe('request lifecycle: certificate → endpoint', () => {
  it('refuses a certificate that names no registered endpoint: 403 ACCESS_DENIED at the edge, before any stage', async () => {
    const lifecycle = testLifecycle(policyConfig(), { now: () => NOW });
    const stranger = { certificate: { subjectCn: 'x.example.nhs.uk', dnsNames: ['x.example.nhs.uk'], fingerprint256: 'CD'.repeat(32) } };
    const decision = rejected(await inject(lifecycle, { ...read(), endpoint: stranger }));
    expect({ status: decision.status, code: decision.code, stage: decision.stage, identity: decision.identity }).toEqual({
      status: 403, code: 'ACCESS_DENIED', stage: 'edge', identity: 'unregistered-fqdn',
    });
    expect(decision.ctx).toBeUndefined();
    expect(decision.body).toContain('ACCESS_DENIED');
    expect(decision.headers['content-type']).toBe('application/xml+fhir;charset=utf-8');
  });

  it('has no identity without a verified certificate, and answers in JSON when the client asks for it', async () => {
    const lifecycle = testLifecycle(policyConfig(), { now: () => NOW });
    const decision = rejected(await inject(lifecycle, { ...read([['Accept', 'application/fhir+json']]), endpoint: {} }));
    expect(decision.identity).toBe('no-identity');
    expect(decision.headers['content-type']).toBe('application/fhir+json'); // the one of the eight the client asked for (mime.response-type)
    expect(JSON.parse(decision.body)).toMatchObject({ resourceType: 'OperationOutcome', id: 'lifecycle-1' });
  });
});

describe('request lifecycle: the decision', () => {
  it('forwards a passing read with the client headers, the gateway-owned ones replaced, and the ASID registration', async () => {
    const lifecycle = testLifecycle(policyConfig(), { now: () => NOW });
    const decision = await inject(lifecycle, read([['X-Forwarded-For', '10.0.0.1'], ['Connection', 'keep-alive, X-Hop'], ['X-Hop', '1']], `/STU3/Subscription/${ID}?_format=xml`));
    expect(decision.action).toBe('forward');
    if (decision.action !== 'forward') return;
    expect(decision.url).toBe(`/STU3/Subscription/${ID}?_format=xml`);
    expect(decision.method).toBe('GET');
    expect(decision.requestId).toBe('lifecycle-1');
    expect(decision.asid).toBe(GP_SYSTEM_REGISTRATION);
    expect(decision.body).toBeUndefined();
    expect(decision.headers).toMatchObject({
      fromASID: GP_SYSTEM_ASID,
      'x-request-id': 'lifecycle-1',
      forwarded: 'for=127.0.0.1;proto=https',
      'x-forwarded-client-cert': `Hash=${'ab'.repeat(32)};DNS=gp-system.example.nhs.uk`,
    });
    const names = Object.keys(decision.headers).map((h) => h.toLowerCase());
    for (const dropped of ['x-forwarded-for', 'connection', 'x-hop']) expect(names).not.toContain(dropped);
    expect(decision.ctx.operation).toBe('read');
    expect(decision.ctx.audit['fromAsid']).toBe(GP_SYSTEM_ASID);
  });

  it('reads a body a read declares anyway under the default cap and forwards it; over the cap it is 413 at the edge', async () => {
    const config = policyConfig({}, { server: { tls: { cert: 'c', key: 'k', ca: 'a' }, limits: { maxBodyBytes: 1024 } } });
    const lifecycle = testLifecycle(config, { now: () => NOW });
    const small = await inject(lifecycle, { ...read(), body: Buffer.from('hello') });
    expect(small.action === 'forward' && small.body?.toString()).toBe('hello');
    expect(small.action === 'forward' && small.headers['content-length']).toBe('5');
    const large = rejected(await inject(lifecycle, { ...read(), body: Buffer.alloc(2048, 0x20) }));
    expect({ status: large.status, code: large.code, stage: large.stage }).toEqual({ status: 413, code: 'PAYLOAD_TOO_LARGE', stage: 'edge' });
  });

  it('renders a violation once: catalogue status, the violation headers, no-store, the request id, XML for 406/415', async () => {
    const lifecycle = testLifecycle(policyConfig(), { now: () => NOW });
    const notAllowed = rejected(await inject(lifecycle, { method: 'OPTIONS', target: '/STU3/Subscription' }));
    expect(notAllowed).toMatchObject({ status: 400, code: 'BAD_REQUEST', stage: 'route' });
    expect(notAllowed.headers).toMatchObject({ Allow: 'POST', 'cache-control': 'no-store', 'x-request-id': 'inject-request' });
    expect(notAllowed.headers['content-length']).toBe(Buffer.byteLength(notAllowed.body));
    const notAcceptable = rejected(await inject(lifecycle, read([['Accept', 'application/json']])));
    expect(notAcceptable).toMatchObject({ status: 406, code: 'NOT_ACCEPTABLE', stage: 'mime' });
    expect(notAcceptable.headers['content-type']).toBe('application/xml+fhir;charset=utf-8');
  });

  it('runs the rate-limit stage the route table names (429 TOO_MANY_REQUESTS with X-Rate-Limit-*)', async () => {
    const config = policyConfig({}, { rateLimits: { enabled: true, default: { ratePerSecond: 1, burst: 1 } } });
    const lifecycle = testLifecycle(config, { now: () => NOW, stageDeps: { now: () => 0 } });
    expect((await inject(lifecycle, read())).action).toBe('forward');
    const limited = rejected(await inject(lifecycle, read()));
    expect({ status: limited.status, code: limited.code, stage: limited.stage }).toEqual({ status: 429, code: 'TOO_MANY_REQUESTS', stage: 'rate-limit' });
    expect(limited.headers).toMatchObject({ 'X-Rate-Limit-Limit': '1', 'Retry-After': '1' });
  });

  it('runs the stages of the route in table order, and only those (a read skips the body stages)', async () => {
    const seen: StageName[] = [];
    const config = policyConfig();
    const lifecycle = new RequestLifecycle({
      config,
      registry: registryOf(),
      stages: createStages(config, { pds: TRACE_EVERY_NUMBER }),
      now: () => NOW,
      observe: (stage) => seen.push(stage),
    });
    expect((await inject(lifecycle, read())).action).toBe('forward');
    expect(seen).toEqual(['route', 'rate-limit', 'headers', 'jwt', 'mime', 'nhs-numbers']);
  });

  it('answers a request whose stages are all synchronous without a stage promise', async () => {
    const config = policyConfig();
    const stages = createStages(config, { pds: TRACE_EVERY_NUMBER });
    const returned: string[] = [];
    const observed = Object.fromEntries(Object.entries(stages).map(([name, stage]) => [name, {
      name: stage.name,
      run: (ctx: Parameters<typeof stage.run>[0]) => {
        const result = stage.run(ctx);
        returned.push(result instanceof Promise ? `${name}:promise` : name);
        return result;
      },
    }])) as typeof stages;
    const lifecycle = new RequestLifecycle({ config, registry: registryOf(), stages: observed, now: () => NOW });
    expect((await inject(lifecycle, read())).action).toBe('forward');
    expect(returned.filter((r) => r.endsWith(':promise'))).toEqual([]);
  });

  it('carries the rule id a stage names into the decision', async () => {
    const config = policyConfig();
    const stages = { ...createStages(config, { pds: TRACE_EVERY_NUMBER }) };
    stages.headers = { name: 'headers', run: () => reject('headers.to-asid', 'The toASID header is not the NEMS ASID') };
    const lifecycle = new RequestLifecycle({ config, registry: registryOf(), stages, now: () => NOW });
    const decision = rejected(await inject(lifecycle, read()));
    expect({ code: decision.code, rule: decision.rule, stage: decision.stage }).toEqual({ code: 'ASID_CHECK_FAILED', rule: 'headers.to-asid', stage: 'headers' });
  });
});
