// The NEMS event catalogue (docs/specification.md §2.4): the one table of event codes, publish interaction codes,
// MESH workflow IDs, allowed messageEventTypes and which events a client may publish. Everything else imports
// from here; the publish InteractionIDs built from it are in interactions.ts.

export const EVENT_TYPE_SYSTEM = 'https://fhir.nhs.uk/STU3/CodeSystem/EventType-1';
export const MESSAGE_EVENT_TYPE_SYSTEM = 'https://fhir.nhs.uk/STU3/CodeSystem/MessageEventType-1';
export const ROUTING_DEMOGRAPHICS_URL = 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-RoutingDemographics-1';
export const MESSAGE_EVENT_TYPE_URL = 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-MessageEventType-1';

export type MessageEventType = 'new' | 'update' | 'delete';

export interface NemsEventType {
  /** EventType-1 code carried in MessageHeader.event and subscription criteria. */
  readonly code: string;
  readonly name: string;
  /** Publish Interaction Event Code (InteractionID `urn:nhs:names:services:events:<Code>.Write`); absent for Spine-published events. */
  readonly publishInteractionCode?: string;
  /** MESH WorkflowID, also the NEMS_EVENT_ID category-bag value. */
  readonly workflowId: string;
  readonly messageEventTypes: readonly MessageEventType[];
  readonly publishedBySpine: boolean;
  /** Screening events (blood spot, newborn hearing, NIPE): updates go as `new`, and a `delete` may be minimal (docs/specification.md §2.5). */
  readonly screening: boolean;
}

export const NEMS_EVENT_TYPES: readonly NemsEventType[] = [
  { code: 'blood-spot-test-outcome-1', name: 'Blood Spot Test Outcome', publishInteractionCode: 'Bloodspottestoutcome', workflowId: 'BLOODSPOTTESTOUTCOME_1', messageEventTypes: ['new', 'delete'], publishedBySpine: false, screening: true },
  { code: 'newborn-hearing-1', name: 'Newborn Hearing', publishInteractionCode: 'Newbornhearing', workflowId: 'NEWBORNHEARING_1', messageEventTypes: ['new', 'delete'], publishedBySpine: false, screening: true },
  { code: 'nipe-outcome-1', name: 'NIPE Outcome', publishInteractionCode: 'Nipeoutcome', workflowId: 'NIPEOUTCOME_1', messageEventTypes: ['new', 'delete'], publishedBySpine: false, screening: true },
  { code: 'pds-birth-notification-1', name: 'PDS Birth Notification', workflowId: 'BIRTHNOTIFICATION_1', messageEventTypes: ['new'], publishedBySpine: true, screening: false },
  { code: 'pds-change-of-address-1', name: 'PDS Change of Address', workflowId: 'CHANGEOFADDRESS_1', messageEventTypes: ['new'], publishedBySpine: true, screening: false },
  { code: 'pds-change-of-gp-1', name: 'PDS Change of GP', workflowId: 'CHANGEOFGP_1', messageEventTypes: ['new'], publishedBySpine: true, screening: false },
  { code: 'pds-death-notification-1', name: 'PDS Death Notification', workflowId: 'DEATHNOTIFICATION_1', messageEventTypes: ['new'], publishedBySpine: true, screening: false },
  { code: 'pds-record-change-1', name: 'PDS Record Change', workflowId: 'PDSRECORDCHANGE_1', messageEventTypes: ['new'], publishedBySpine: true, screening: false },
  { code: 'professional-contacts-1', name: 'Professional Contacts', publishInteractionCode: 'Professionalcontacts', workflowId: 'PROFESSIONALCONTACTS_1', messageEventTypes: ['new', 'update', 'delete'], publishedBySpine: false, screening: false },
  { code: 'vaccinations-1', name: 'Vaccinations', publishInteractionCode: 'Vaccinations', workflowId: 'VACCINATIONS_1', messageEventTypes: ['new', 'update', 'delete'], publishedBySpine: false, screening: false },
];

const BY_CODE = new Map(NEMS_EVENT_TYPES.map((e) => [e.code, e]));
const BY_PUBLISH_CODE = new Map(
  NEMS_EVENT_TYPES.filter((e) => e.publishInteractionCode).map((e) => [e.publishInteractionCode!, e]),
);

export function eventTypeByCode(code: string): NemsEventType | undefined {
  return BY_CODE.get(code);
}

export function eventTypeByPublishCode(publishCode: string): NemsEventType | undefined {
  return BY_PUBLISH_CODE.get(publishCode);
}

export const PUBLISHABLE_EVENT_TYPES = NEMS_EVENT_TYPES.filter((e) => !e.publishedBySpine);

/** Workflow ID formerly used for PDS Record Change (before 2.14.1), accepted as an alias in registries. */
export const LEGACY_WORKFLOW_ALIASES: Readonly<Record<string, string>> = { PDS_RECORD_CHANGE_1: 'PDSRECORDCHANGE_1' };

export const ALL_WORKFLOW_IDS = NEMS_EVENT_TYPES.map((e) => e.workflowId);
