// The records of docs/examples/replay-clients.jsonl, built from the client shapes at the file's recorded time: the
// sample ships what these functions build (test/cli/replay.test.ts compares them), so it stays byte-faithful to the
// clients' code.
import { readFileSync } from 'node:fs';
import { mintSpineJwt } from '../../src/cli/jwt.js';
import { EXPLICIT_SUBSCRIPTION, explicitCriteria, subscriptionXml } from './bodies.js';
import { cohortManagerCreate, prmCreate, replayLine, type ClientRequest } from './client-shapes.js';
import { GP_SYSTEM_ASID, GP_SYSTEM_ODS } from './endpoints.js';

/** When the sample's requests were "recorded": replay judges each at its receivedAt, so the tokens are current. */
export const SAMPLE_RECORDED_AT = Date.parse('2025-06-01T12:00:00Z');

function gpCreate(label: string, nhsNumber: string | undefined): ClientRequest {
  const body = Buffer.from(subscriptionXml(nhsNumber ? { ...EXPLICIT_SUBSCRIPTION, criteria: explicitCriteria(nhsNumber) } : EXPLICIT_SUBSCRIPTION));
  return {
    label,
    endpoint: 'gp-system',
    method: 'POST',
    path: '/STU3/Subscription',
    headers: [
      ['fromASID', GP_SYSTEM_ASID],
      ['toASID', '200000000306'],
      ['InteractionID', 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost'],
      ['Authorization', `Bearer ${mintSpineJwt({ asid: GP_SYSTEM_ASID, ods: GP_SYSTEM_ODS, scope: 'patient/Subscription.write', now: SAMPLE_RECORDED_AT })}`],
      ['Content-Type', 'application/fhir+xml;charset=utf-8'],
      ['Content-Length', String(body.length)],
    ],
    body,
  };
}

export function sampleReplayText(): string {
  const records = [
    cohortManagerCreate(SAMPLE_RECORDED_AT),
    prmCreate(SAMPLE_RECORDED_AT),
    gpCreate('GP system create, to the letter', undefined),
    // 9111231130 is PDS's not-found number: a security rule refuses it in every profile and mode.
    gpCreate('GP system create for a number PDS does not hold', '9111231130'),
  ];
  return `${records.map((r) => replayLine(r, SAMPLE_RECORDED_AT)).join('\n')}\n`;
}

export function shippedSample(path: string): string {
  return readFileSync(path, 'utf8');
}
