// The route stage (docs/specification.md §1.2, §2.1): what it records on a match, and the configurable path prefix.
import { describe, expect, it } from 'vitest';
import { createRouteStage } from '../../src/pipeline/stages/route.js';
import { contextFor, policyConfig } from '../helpers/inject.js';

function routed(method: string, path: string, nems: Record<string, unknown> = {}) {
  const ctx = contextFor({ method, target: path }, 0);
  const result = createRouteStage(policyConfig(nems)).run(ctx);
  if (result instanceof Promise) throw new Error('route stage must be synchronous');
  return { ctx, result: result.ok ? 'pass' : `${result.rejection.code}` };
}

describe('route stage', () => {
  it('is named route and records operation, route and subscription id for a read', () => {
    const { ctx, result } = routed('GET', '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c');
    expect(result).toBe('pass');
    expect(ctx.operation).toBe('read');
    expect(ctx.route?.scope).toBe('patient/Subscription.read');
    expect(ctx.subscriptionId).toBe('ea0a485187204b49b978bdcf7102388c');
    expect(ctx.audit['operation']).toBe('read');
    expect(createRouteStage(policyConfig()).name).toBe('route');
  });

  it('records no subscription id for a create and the publish route for $process-message', () => {
    expect(routed('POST', '/STU3/Subscription').ctx.subscriptionId).toBeUndefined();
    expect(routed('POST', '/STU3/Events/1/$process-message').ctx.operation).toBe('publish');
  });

  it('follows nems.pathPrefix: /nems/STU3 matches, /STU3 then is 404 NO_RECORD_FOUND', () => {
    expect(routed('POST', '/nems/STU3/Subscription', { pathPrefix: '/nems/STU3' }).result).toBe('pass');
    expect(routed('POST', '/STU3/Subscription', { pathPrefix: '/nems/STU3' }).result).toBe('NO_RECORD_FOUND');
    expect(routed('POST', '/Subscription', { pathPrefix: '' }).result).toBe('pass');
  });

  it.each([
    '*',
    '',
    'STU3/Subscription',
    '/STU3/Subscription/abc%2F..%2Fdef',
    '/STU3/Subscription/abc%5cdef',
    '/STU3/Subscription/%2E%2E',
    '/STU3\\Subscription',
    '/STU3/Subscription/ab cd',
    '/STU3/Subscription/abc\u0000',
    '/STU3/Subscription/ab\u00e9',
    `/STU3/Subscription/${'a'.repeat(3000)}`,
  ])('rejects the odd request target %j with 404 NO_RECORD_FOUND without normalising it', (path) => {
    const { ctx, result } = routed('GET', path);
    expect(result).toBe('NO_RECORD_FOUND');
    expect(ctx.route).toBeUndefined();
  });
});
