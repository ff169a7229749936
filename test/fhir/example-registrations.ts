// The example registry's subscriber ASIDs (from test/helpers/endpoints.ts), with mailboxes that list all ten
// workflow IDs so the mailbox workflow check is exercised rather than skipped.
import { ALL_WORKFLOW_IDS } from '../../src/nems/events.js';
import type { AsidRegistration, MeshMailbox } from '../../src/identity/types.js';
import { CHILD_HEALTH_REGISTRATION, GP_SYSTEM_REGISTRATION } from '../helpers/endpoints.js';

function allWorkflows(registration: AsidRegistration): AsidRegistration {
  return { ...registration, mailboxes: registration.mailboxes.map((m) => ({ ...m, workflowIds: ALL_WORKFLOW_IDS })) };
}

/** gp-system: ASID 200000000101, ODS A83627, mailbox A83627MB001, explicit only. */
export const GP_SYSTEM: AsidRegistration = allWorkflows(GP_SYSTEM_REGISTRATION);
/** child-health: ASID 200000000102, ODS RX3EP, mailbox RX3EPMB001, explicit and generic. */
export const CHILD_HEALTH: AsidRegistration = allWorkflows(CHILD_HEALTH_REGISTRATION);

/** A copy of a registration with some fields replaced. */
export function withRegistration(base: AsidRegistration, change: Partial<AsidRegistration>): AsidRegistration {
  return { ...base, ...change };
}

export function withMailboxes(base: AsidRegistration, mailboxes: MeshMailbox[]): AsidRegistration {
  return { ...base, mailboxes };
}
