// The NEMS operations and their routes as data (docs/specification.md §1.2, §2.1, §4.4; NEMS guide
// https://developer.nhs.uk/apis/ems-beta/): method, path below the base URL, InteractionID, JWT scope, MIME family
// and whether a body comes with it; plus the real NEMS interactions the gateway refuses to forward, and the one
// matcher that reads this table (the pipeline's route stage and the embedded core both use it).
import { SUBSCRIPTION_INTERACTIONS } from './interactions.js';
import { SUBSCRIPTION_ID_PATTERN } from './identifiers.js';

export const NEMS_OPERATIONS = ['create', 'read', 'delete', 'publish'] as const;
export type NemsOperation = (typeof NEMS_OPERATIONS)[number];

export interface NemsRoute {
  readonly operation: NemsOperation;
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Path below the configured prefix; `{id}` stands for one subscription id segment. */
  readonly path: '/Subscription' | '/Subscription/{id}' | '/Events/1/$process-message';
  /** Fixed InteractionID; undefined for publish, whose InteractionID names the event (interactions.ts). */
  readonly interactionId?: string;
  /** The one JWT scope the operation takes. */
  readonly scope: string;
  /** Which MIME family the route accepts (docs/specification.md §7): all 8 FHIR types, or the 4 XML ones. */
  readonly mime: 'fhir' | 'fhir-xml';
  readonly hasBody: boolean;
}

export const NEMS_ROUTES: readonly NemsRoute[] = [
  { operation: 'create', method: 'POST', path: '/Subscription', interactionId: SUBSCRIPTION_INTERACTIONS.create, scope: 'patient/Subscription.write', mime: 'fhir', hasBody: true },
  { operation: 'read', method: 'GET', path: '/Subscription/{id}', interactionId: SUBSCRIPTION_INTERACTIONS.read, scope: 'patient/Subscription.read', mime: 'fhir', hasBody: false },
  { operation: 'delete', method: 'DELETE', path: '/Subscription/{id}', interactionId: SUBSCRIPTION_INTERACTIONS.delete, scope: 'patient/Subscription.write', mime: 'fhir', hasBody: false },
  { operation: 'publish', method: 'POST', path: '/Events/1/$process-message', scope: 'patient/Bundle.write', mime: 'fhir-xml', hasBody: true },
];

const BY_OPERATION: ReadonlyMap<NemsOperation, NemsRoute> = new Map(NEMS_ROUTES.map((r) => [r.operation, r]));

/** The route of an operation (its method, path, InteractionID, scope, …). */
export function nemsRoute(operation: NemsOperation): NemsRoute {
  return BY_OPERATION.get(operation)!;
}

/**
 * FHIR interactions on NEMS paths that NEMS does not (or no longer) offer: the subscription search removed in 2019
 * and update (docs/specification.md §1.2, §1.9). Answered as unsupported, never forwarded.
 */
export const UNSUPPORTED_INTERACTIONS: readonly { readonly method: string; readonly path: NemsRoute['path']; readonly what: string }[] = [
  { method: 'GET', path: '/Subscription', what: 'Subscription search' },
  { method: 'PUT', path: '/Subscription/{id}', what: 'Subscription update' },
  { method: 'PATCH', path: '/Subscription/{id}', what: 'Subscription update' },
];

export type RouteMatch<R extends NemsRoute = NemsRoute> =
  | { readonly kind: 'matched'; readonly route: R; readonly subscriptionId?: string }
  /** Known NEMS path, but a method the table does not allow. */
  | { readonly kind: 'method-not-allowed'; readonly allowed: readonly string[] }
  /** A real NEMS interaction the gateway blocks (UNSUPPORTED_INTERACTIONS). */
  | { readonly kind: 'not-supported'; readonly what: string }
  | { readonly kind: 'unknown-path' };

interface PathEntry<R extends NemsRoute> {
  /** The literal path, or the literal part before `{id}`. */
  readonly literal: string;
  readonly hasId: boolean;
  readonly byMethod: ReadonlyMap<string, RouteMatch<R>>;
  /** Methods of the routes on this path, in table order: the `Allow` header. */
  readonly methodNotAllowed: RouteMatch<R>;
}

/**
 * Builds the matcher for a route table (the rows of NEMS_ROUTES, possibly carrying more, like the pipeline's stage
 * lists). Pure: the result depends on method, path (no query string) and prefix only. Matches with no subscription
 * id are built once here, so matching a create or a publish allocates nothing.
 */
export function createRouteMatcher<R extends NemsRoute>(routes: readonly R[]): (method: string, path: string, prefix: string) => RouteMatch<R> {
  const paths: PathEntry<R>[] = [];
  const entryFor = (path: NemsRoute['path']) => {
    const hasId = path.endsWith('/{id}');
    const literal = hasId ? path.slice(0, -'{id}'.length) : path;
    let entry = paths.find((p) => p.literal === literal && p.hasId === hasId);
    if (!entry) {
      const allowed = routes.filter((r) => r.path === path).map((r) => r.method);
      entry = { literal, hasId, byMethod: new Map(), methodNotAllowed: { kind: 'method-not-allowed', allowed } };
      paths.push(entry);
    }
    return entry.byMethod as Map<string, RouteMatch<R>>;
  };
  for (const route of routes) entryFor(route.path).set(route.method, { kind: 'matched', route });
  for (const blocked of UNSUPPORTED_INTERACTIONS) entryFor(blocked.path).set(blocked.method, { kind: 'not-supported', what: blocked.what });
  const unknown: RouteMatch<R> = { kind: 'unknown-path' };

  return (method, path, prefix) => {
    if (prefix && !(path === prefix || path.startsWith(`${prefix}/`))) return unknown;
    const rest = path.slice(prefix.length);
    for (const entry of paths) {
      if (!entry.hasId) {
        if (rest !== entry.literal) continue;
        return entry.byMethod.get(method) ?? entry.methodNotAllowed;
      }
      if (!rest.startsWith(entry.literal)) continue;
      const id = rest.slice(entry.literal.length);
      if (!SUBSCRIPTION_ID_PATTERN.test(id)) continue;
      const match = entry.byMethod.get(method);
      if (match === undefined) return entry.methodNotAllowed;
      return match.kind === 'matched' ? { kind: 'matched', route: match.route, subscriptionId: id } : match;
    }
    return unknown;
  };
}
