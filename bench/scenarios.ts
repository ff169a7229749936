// The three NEMS operations the benchmark drives, built once per run from the shared test helpers: valid headers
// (JWT minted now, 300 s lifetime, so a run must finish within 5 minutes) and the standard bodies.
import { EXPLICIT_SUBSCRIPTION_JSON, vaccinationPublishXml } from '../test/helpers/bodies.js';
import { nemsHeaders, type ExampleClient } from '../test/helpers/nems-requests.js';
import type { LoadRequest } from './load.js';

export type ScenarioName = 'get' | 'create' | 'publish';

export interface Scenario {
  readonly name: ScenarioName;
  readonly label: string;
  readonly client: ExampleClient;
  readonly request: LoadRequest;
  /** What NEMS (the loopback upstream) answers when the gateway lets the request through. */
  readonly expectedStatus: number;
}

export const SCENARIO_NAMES: readonly ScenarioName[] = ['get', 'create', 'publish'];

export function buildScenarios(now = Date.now()): Record<ScenarioName, Scenario> {
  const publishBody = vaccinationPublishXml();
  return {
    get: {
      name: 'get',
      label: 'GET subscription',
      client: 'gp-system',
      expectedStatus: 200,
      request: {
        method: 'GET',
        path: '/STU3/Subscription/8f3d2c1b0a9e4d7c6b5a4f3e2d1c0b9a',
        headers: nemsHeaders('gp-system', 'read', { accept: 'application/fhir+xml', now }),
      },
    },
    create: {
      name: 'create',
      label: 'create (JSON, explicit)',
      client: 'gp-system',
      expectedStatus: 201,
      request: {
        method: 'POST',
        path: '/STU3/Subscription',
        headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+json', accept: 'application/fhir+json', now }),
        body: EXPLICIT_SUBSCRIPTION_JSON,
      },
    },
    publish: {
      name: 'publish',
      label: `publish (${(Buffer.byteLength(publishBody) / 1024).toFixed(1)} KB XML)`,
      client: 'child-health',
      expectedStatus: 202,
      request: {
        method: 'POST',
        path: '/STU3/Events/1/$process-message',
        headers: nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml', accept: 'application/fhir+xml', now }),
        body: publishBody,
      },
    },
  };
}
