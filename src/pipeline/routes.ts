// The NEMS route table (spec digest §1.2, §2.1, §4.4): one row per operation with its method, path,
// InteractionID, JWT scope, accepted MIME family, body cap and the ordered stages that apply to it.
import { PUBLISHABLE_EVENT_TYPES } from '../fhir/events.js';
import type { StageName } from './types.js';

export type NemsOperation = 'create' | 'read' | 'delete' | 'publish';

export const SUBSCRIPTION_INTERACTIONS = {
  create: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost',
  read: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiGet',
  delete: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiDelete',
} as const;

export function publishInteractionId(publishInteractionCode: string): string {
  return `urn:nhs:names:services:events:${publishInteractionCode}.Write`;
}

/** Every InteractionID the gateway knows, e.g. for registry validation. */
export const ALL_INTERACTION_IDS: readonly string[] = [
  ...Object.values(SUBSCRIPTION_INTERACTIONS),
  ...PUBLISHABLE_EVENT_TYPES.map((e) => publishInteractionId(e.publishInteractionCode!)),
];

export interface Route {
  readonly operation: NemsOperation;
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Path below the configured prefix: `/Subscription`, `/Subscription/{id}` or `/Events/1/$process-message`. */
  readonly path: string;
  /** Fixed InteractionID; undefined for publish, whose InteractionID names the event. */
  readonly interactionId?: string;
  readonly scope: string;
  /** Which MIME family the route accepts (§7): all 8 FHIR types, or the 4 XML ones. */
  readonly mime: 'fhir' | 'fhir-xml';
  readonly hasBody: boolean;
  readonly stages: readonly StageName[];
}

const HEAD_STAGES: readonly StageName[] = ['route', 'rate-limit', 'headers', 'jwt', 'mime'];
const BODY_STAGES: readonly StageName[] = ['read-body', 'body', 'nhs-numbers'];

export const ROUTES: readonly Route[] = [
  {
    operation: 'create', method: 'POST', path: '/Subscription', interactionId: SUBSCRIPTION_INTERACTIONS.create,
    scope: 'patient/Subscription.write', mime: 'fhir', hasBody: true, stages: [...HEAD_STAGES, ...BODY_STAGES],
  },
  {
    operation: 'read', method: 'GET', path: '/Subscription/{id}', interactionId: SUBSCRIPTION_INTERACTIONS.read,
    scope: 'patient/Subscription.read', mime: 'fhir', hasBody: false, stages: [...HEAD_STAGES, 'nhs-numbers'],
  },
  {
    operation: 'delete', method: 'DELETE', path: '/Subscription/{id}', interactionId: SUBSCRIPTION_INTERACTIONS.delete,
    scope: 'patient/Subscription.write', mime: 'fhir', hasBody: false, stages: [...HEAD_STAGES, 'nhs-numbers'],
  },
  {
    operation: 'publish', method: 'POST', path: '/Events/1/$process-message',
    scope: 'patient/Bundle.write', mime: 'fhir-xml', hasBody: true, stages: [...HEAD_STAGES, ...BODY_STAGES],
  },
];

/** A FHIR logical id (NEMS issues 32 lower-case hex; 2018 used a hyphenated UUID, §1.2). Anything else is not an id. */
export const SUBSCRIPTION_ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export type RouteMatch =
  | { readonly kind: 'matched'; readonly route: Route; readonly subscriptionId?: string }
  /** Known NEMS path, but a method the table does not allow. */
  | { readonly kind: 'method-not-allowed'; readonly allowed: readonly string[] }
  /** The subscription search removed in 2019 (§1.9) or update: a real NEMS operation the gateway blocks. */
  | { readonly kind: 'not-supported'; readonly what: string }
  | { readonly kind: 'unknown-path' };

/**
 * Matches method and path (below `prefix`) against the table. Pure: no config beyond the prefix.
 * The path must already be stripped of its query string.
 */
export function matchRoute(method: string, path: string, prefix: string): RouteMatch {
  if (prefix && !(path === prefix || path.startsWith(`${prefix}/`))) return { kind: 'unknown-path' };
  const rest = path.slice(prefix.length);
  if (rest === '/Subscription') {
    if (method === 'POST') return { kind: 'matched', route: ROUTES[0]! };
    if (method === 'GET') return { kind: 'not-supported', what: 'Subscription search' };
    return { kind: 'method-not-allowed', allowed: ['POST'] };
  }
  if (rest.startsWith('/Subscription/')) {
    const id = rest.slice('/Subscription/'.length);
    if (!SUBSCRIPTION_ID_PATTERN.test(id)) return { kind: 'unknown-path' };
    if (method === 'GET') return { kind: 'matched', route: ROUTES[1]!, subscriptionId: id };
    if (method === 'DELETE') return { kind: 'matched', route: ROUTES[2]!, subscriptionId: id };
    if (method === 'PUT' || method === 'PATCH') return { kind: 'not-supported', what: 'Subscription update' };
    return { kind: 'method-not-allowed', allowed: ['GET', 'DELETE'] };
  }
  if (rest === '/Events/1/$process-message') {
    if (method === 'POST') return { kind: 'matched', route: ROUTES[3]! };
    return { kind: 'method-not-allowed', allowed: ['POST'] };
  }
  return { kind: 'unknown-path' };
}
