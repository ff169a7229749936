// The NEMS vocabulary (src/nems/): each term defined once as data, and the functions every other module uses on it.
import { describe, expect, it } from 'vitest';
import { PUBLISHABLE_EVENT_TYPES } from '../../src/nems/events.js';
import { isAsid, isCanonicalOdsCode, isMailboxId, isOdsCode } from '../../src/nems/identifiers.js';
import { ALL_INTERACTION_IDS, publishInteractionId, REGISTRABLE_INTERACTION_IDS, resolveInteraction, SUBSCRIPTION_INTERACTIONS } from '../../src/nems/interactions.js';
import { createRouteMatcher, NEMS_OPERATIONS, NEMS_ROUTES, nemsRoute, type NemsRoute } from '../../src/nems/operations.js';
import { configSchema } from '../../src/config/schema.js';
import { OPERATION_LABELS, ROUTE_LABELS } from '../../src/observability/labels.js';
import { ROUTES } from '../../src/pipeline/routes.js';

describe('NEMS operations and routes', () => {
  it('has one route per operation, each with its InteractionID (publish: named by the event) and one scope', () => {
    expect(NEMS_ROUTES.map((r) => r.operation)).toEqual([...NEMS_OPERATIONS]);
    expect(NEMS_ROUTES.map((r) => [r.method, r.path, r.scope])).toEqual([
      ['POST', '/Subscription', 'patient/Subscription.write'],
      ['GET', '/Subscription/{id}', 'patient/Subscription.read'],
      ['DELETE', '/Subscription/{id}', 'patient/Subscription.write'],
      ['POST', '/Events/1/$process-message', 'patient/Bundle.write'],
    ]);
    expect(nemsRoute('publish').interactionId).toBeUndefined();
    expect(nemsRoute('delete').interactionId).toBe(SUBSCRIPTION_INTERACTIONS.delete);
  });

  it('the pipeline route table, the config enums and the metric labels all come from the one operation list', () => {
    expect(ROUTES.map((r) => r.operation)).toEqual([...NEMS_OPERATIONS]);
    expect(OPERATION_LABELS).toEqual(NEMS_OPERATIONS);
    expect(ROUTE_LABELS).toEqual([...NEMS_OPERATIONS, 'unmatched']);
    const config = configSchema.parse({ server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { path: 'r' } });
    expect(config.nems.jwt.unsignedOperations).toEqual([...NEMS_OPERATIONS]);
  });

  it('the matcher reads the table it is given: a route added to the table is matched, with its Allow set', () => {
    const extra = { operation: 'read', method: 'GET', path: '/Events/1/$process-message', scope: 's', mime: 'fhir', hasBody: false } as unknown as NemsRoute;
    const match = createRouteMatcher([...NEMS_ROUTES, extra]);
    expect(match('GET', '/STU3/Events/1/$process-message', '/STU3')).toEqual({ kind: 'matched', route: extra });
    expect(match('PUT', '/STU3/Events/1/$process-message', '/STU3')).toEqual({ kind: 'method-not-allowed', allowed: ['POST', 'GET'] });
    // Without the row the same request is not allowed.
    expect(createRouteMatcher(NEMS_ROUTES)('GET', '/STU3/Events/1/$process-message', '/STU3')).toEqual({ kind: 'method-not-allowed', allowed: ['POST'] });
  });

  it('matches the subscription id segment by the subscription id pattern, and blocks search and update', () => {
    const match = createRouteMatcher(NEMS_ROUTES);
    expect(match('DELETE', '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c', '/STU3')).toMatchObject({ kind: 'matched', subscriptionId: 'ea0a485187204b49b978bdcf7102388c' });
    expect(match('GET', '/STU3/Subscription/a/b', '/STU3')).toEqual({ kind: 'unknown-path' });
    expect(match('GET', '/STU3/Subscription/', '/STU3')).toEqual({ kind: 'unknown-path' });
    expect(match('GET', '/STU3/Subscription', '/STU3')).toEqual({ kind: 'not-supported', what: 'Subscription search' });
    expect(match('PATCH', '/STU3/Subscription/abc', '/STU3')).toEqual({ kind: 'not-supported', what: 'Subscription update' });
    expect(match('OPTIONS', '/STU3/Subscription/abc', '/STU3')).toEqual({ kind: 'method-not-allowed', allowed: ['GET', 'DELETE'] });
  });
});

describe('NEMS InteractionIDs', () => {
  it('knows the three subscription interactions and the current publish form of every publishable event', () => {
    expect(ALL_INTERACTION_IDS).toEqual([
      ...Object.values(SUBSCRIPTION_INTERACTIONS),
      ...PUBLISHABLE_EVENT_TYPES.map((e) => publishInteractionId(e.publishInteractionCode!)),
    ]);
    expect(ALL_INTERACTION_IDS).toContain('urn:nhs:names:services:events:Vaccinations.Write');
  });

  it('resolves a legacy publish form to the current one only when legacy forms are accepted', () => {
    const legacy = 'urn:nhs:names:services:events:nipe-outcome-1.write:2';
    expect(resolveInteraction(undefined, legacy, false)).toBeUndefined();
    expect(resolveInteraction(undefined, legacy, true)).toMatchObject({
      interactionId: 'urn:nhs:names:services:events:Nipeoutcome.Write',
      publishEventType: { code: 'nipe-outcome-1' },
      legacy: true,
    });
    expect(REGISTRABLE_INTERACTION_IDS.has(legacy)).toBe(true);
  });

  it('never resolves a Spine-published event or a subscription InteractionID for another operation', () => {
    expect(resolveInteraction(undefined, 'urn:nhs:names:services:events:pds-change-of-address-1.Write', true)).toBeUndefined();
    expect(resolveInteraction(SUBSCRIPTION_INTERACTIONS.read, SUBSCRIPTION_INTERACTIONS.delete, true)).toBeUndefined();
    expect(resolveInteraction(SUBSCRIPTION_INTERACTIONS.read, SUBSCRIPTION_INTERACTIONS.read, false)).toEqual({ interactionId: SUBSCRIPTION_INTERACTIONS.read, legacy: false });
  });
});

describe('NEMS identifiers', () => {
  it('ASIDs are 12 digits', () => {
    expect(isAsid('200000000306')).toBe(true);
    for (const bad of ['20000000030', '2000000003060', '20000000030A', '']) expect(isAsid(bad)).toBe(false);
  });

  it('ODS codes are 1 to 9 letters or digits; the registry form is upper case', () => {
    for (const good of ['X1', 'RX3EP', 'A83627', 'E92000001']) expect(isOdsCode(good)).toBe(true);
    for (const bad of ['', 'A836270000', 'A83-627']) expect(isOdsCode(bad)).toBe(false);
    expect(isOdsCode('rx3ep')).toBe(true);
    expect(isCanonicalOdsCode('rx3ep')).toBe(false);
    expect(isCanonicalOdsCode('RX3EP')).toBe(true);
  });

  it('MESH mailbox ids are safe file names', () => {
    expect(isMailboxId('Mailbox1234')).toBe(true);
    for (const bad of ['', '-mailbox', '_x', '../x', 'a/b', 'x'.repeat(65)]) expect(isMailboxId(bad)).toBe(false);
  });
});
