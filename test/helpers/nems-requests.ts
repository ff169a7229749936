// Correct NEMS request headers for the two example endpoints, for end-to-end tests, the demo and the benchmark.
import { mintSpineJwt } from '../../src/cli/jwt.js';
import { SUBSCRIPTION_INTERACTIONS, publishInteractionId } from '../../src/nems/interactions.js';

export const EXAMPLE = {
  'gp-system': { asid: '200000000101', ods: 'A83627', mailbox: 'A83627MB001' },
  'child-health': { asid: '200000000102', ods: 'RX3EP', mailbox: 'RX3EPMB001' },
} as const;
export const NEMS_TO_ASID = '200000000306';

export type ExampleClient = keyof typeof EXAMPLE;
export type Operation = 'create' | 'read' | 'delete' | 'publish';

const SCOPES: Record<Operation, string> = {
  create: 'patient/Subscription.write',
  read: 'patient/Subscription.read',
  delete: 'patient/Subscription.write',
  publish: 'patient/Bundle.write',
};

export function nemsHeaders(
  client: ExampleClient,
  operation: Operation,
  opts: { publishCode?: string; contentType?: string; accept?: string; now?: number } = {},
): Record<string, string> {
  const { asid, ods } = EXAMPLE[client];
  const interactionId = operation === 'publish' ? publishInteractionId(opts.publishCode ?? 'Vaccinations') : SUBSCRIPTION_INTERACTIONS[operation];
  const token = mintSpineJwt({ asid, ods, scope: SCOPES[operation], ...(opts.now !== undefined ? { now: opts.now } : {}) });
  return {
    fromASID: asid,
    toASID: NEMS_TO_ASID,
    InteractionID: interactionId,
    Authorization: `Bearer ${token}`,
    ...(opts.contentType ? { 'Content-Type': opts.contentType } : {}),
    ...(opts.accept ? { Accept: opts.accept } : {}),
  };
}
