// The gateway's route table: the NEMS routes (src/nems/operations.ts: method, path, InteractionID, scope, MIME
// family, body) each with the ordered stages that apply to it, and the matcher over that table.
import { createRouteMatcher, NEMS_ROUTES, type NemsOperation, type NemsRoute, type RouteMatch } from '../nems/operations.js';
import type { StageName } from './types.js';

export interface Route extends NemsRoute {
  readonly stages: readonly StageName[];
}

const HEAD_STAGES: readonly StageName[] = ['route', 'rate-limit', 'headers', 'jwt', 'mime'];
const BODY_STAGES: readonly StageName[] = ['read-body', 'body', 'nhs-numbers'];

/** Read and delete skip the body stages; create and publish run all of them. */
const STAGES: Readonly<Record<NemsOperation, readonly StageName[]>> = {
  create: [...HEAD_STAGES, ...BODY_STAGES],
  read: [...HEAD_STAGES, 'nhs-numbers'],
  delete: [...HEAD_STAGES, 'nhs-numbers'],
  publish: [...HEAD_STAGES, ...BODY_STAGES],
};

export const ROUTES: readonly Route[] = NEMS_ROUTES.map((route) => ({ ...route, stages: STAGES[route.operation] }));

/**
 * Matches method and path (below `prefix`) against the table. Pure: no config beyond the prefix.
 * The path must already be stripped of its query string.
 */
export const matchRoute: (method: string, path: string, prefix: string) => RouteMatch<Route> = createRouteMatcher(ROUTES);
