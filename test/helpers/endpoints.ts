// The two example endpoints of the registry (a GP system that subscribes, a child health system that also
// publishes), as identity objects, for every test that needs a resolved client certificate.
import { PUBLISHABLE_EVENT_TYPES } from '../../src/nems/events.js';
import type { AsidRegistration, Endpoint } from '../../src/identity/types.js';
import { SUBSCRIPTION_INTERACTIONS, publishInteractionId } from '../../src/nems/interactions.js';

/** NEMS INT ASID (docs/specification.md §1.3); the config default for `nems.toAsid`. */
export const NEMS_TO_ASID = '200000000306';

export const GP_SYSTEM_FQDN = 'gp-system.example.nhs.uk';
export const GP_SYSTEM_ASID = '200000000101';
export const GP_SYSTEM_ODS = 'A83627';
export const GP_SYSTEM_MAILBOX = 'A83627MB001';

export const CHILD_HEALTH_FQDN = 'child-health.example.nhs.uk';
export const CHILD_HEALTH_ASID = '200000000102';
export const CHILD_HEALTH_ODS = 'RX3EP';
export const CHILD_HEALTH_MAILBOX = 'RX3EPMB001';

/** A valid NHS number (modulus 11) the local PDS data should hold as traced, for requesting_patient claims. */
export const FIXTURE_NHS_NUMBER = '9434765919';

export const SUBSCRIPTION_INTERACTION_IDS: readonly string[] = Object.values(SUBSCRIPTION_INTERACTIONS);
export const PUBLISH_INTERACTION_IDS: readonly string[] = PUBLISHABLE_EVENT_TYPES.map((e) =>
  publishInteractionId(e.publishInteractionCode!),
);

export const GP_SYSTEM_REGISTRATION: AsidRegistration = {
  asid: GP_SYSTEM_ASID,
  odsCodes: [GP_SYSTEM_ODS],
  interactions: SUBSCRIPTION_INTERACTION_IDS,
  subscriptionTypes: ['explicit'],
  mailboxes: [{ id: GP_SYSTEM_MAILBOX, odsCode: GP_SYSTEM_ODS, workflowIds: [] }],
};

export const CHILD_HEALTH_REGISTRATION: AsidRegistration = {
  asid: CHILD_HEALTH_ASID,
  odsCodes: [CHILD_HEALTH_ODS],
  interactions: [...SUBSCRIPTION_INTERACTION_IDS, ...PUBLISH_INTERACTION_IDS],
  subscriptionTypes: ['explicit', 'generic'],
  mailboxes: [{ id: CHILD_HEALTH_MAILBOX, odsCode: CHILD_HEALTH_ODS, workflowIds: [] }],
};

export const GP_SYSTEM_ENDPOINT: Endpoint = {
  fqdn: GP_SYSTEM_FQDN,
  fingerprints: [],
  asids: new Map([[GP_SYSTEM_ASID, GP_SYSTEM_REGISTRATION]]),
};

export const CHILD_HEALTH_ENDPOINT: Endpoint = {
  fqdn: CHILD_HEALTH_FQDN,
  fingerprints: [],
  asids: new Map([[CHILD_HEALTH_ASID, CHILD_HEALTH_REGISTRATION]]),
};

export type ExampleEndpointName = 'gp-system' | 'child-health';

export const EXAMPLE_ENDPOINTS: Readonly<Record<ExampleEndpointName, Endpoint>> = {
  'gp-system': GP_SYSTEM_ENDPOINT,
  'child-health': CHILD_HEALTH_ENDPOINT,
};

/** ASID and ODS code each example endpoint uses in headers and tokens. */
export const EXAMPLE_IDENTITIES: Readonly<Record<ExampleEndpointName, { readonly asid: string; readonly ods: string }>> = {
  'gp-system': { asid: GP_SYSTEM_ASID, ods: GP_SYSTEM_ODS },
  'child-health': { asid: CHILD_HEALTH_ASID, ods: CHILD_HEALTH_ODS },
};
