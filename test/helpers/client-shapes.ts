// Two real NEMS clients' subscription creates, rebuilt byte for byte from their public code (issue 12's evidence):
//
// - NHSDigital's Cohort Manager (NHSDigital/dtos-cohort-manager, application/CohortManager/src/Functions/):
//   DemographicServices/ManageNemsSubscription/NemsSubscriptionManager.cs (CreateSubscription, SendSubscriptionToNemsAsync),
//   Shared/Common/NemsHttpClientFunction.cs (SendSubscriptionPost, GenerateJwtToken) and
//   DemographicServices/ManageNemsSubscription/ManageNemsSubscriptionConfig.cs (the configuration examples).
// - The PRM team's NEMS subscription script (nhsconnect/prm-deductions-mesh-forwarder, nems-subscriber/, at commit
//   476ff9c "update jwt generation to pass twk requirements"): create_subscription.py and generate_auth_token.py,
//   with the local configuration of its `tasks` file.
//
// What the code builds is kept as it builds it: header names, their order and values, the token's header and claims
// (in serialisation order) and the body bytes. Only configuration inputs that the gateway's security rules bind to
// the client certificate are swapped for the example registry's (config/endpoints.yaml) and the local PDS data's
// (config/pds-local.yaml): the fromASID (and the ASID in sub and requesting_system), the ODS code, the MESH mailbox
// and the NHS number. Every such swap is named where it happens. Host is left to the sender (as HttpClient and
// requests leave it to the transport).
import { CHILD_HEALTH_ASID, CHILD_HEALTH_MAILBOX, CHILD_HEALTH_ODS, FIXTURE_NHS_NUMBER, GP_SYSTEM_ASID, GP_SYSTEM_MAILBOX, GP_SYSTEM_ODS, type ExampleEndpointName } from './endpoints.js';
import { CHILD_HEALTH_FQDN, GP_SYSTEM_FQDN } from './endpoints.js';

export interface ClientRequest {
  readonly label: string;
  readonly endpoint: ExampleEndpointName;
  readonly method: 'POST';
  readonly path: string;
  /** Raw header pairs in the order the client sends them (Host excepted). */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

const base64url = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

/** Both clients POST their Subscription to <base URL>/STU3/Subscription. */
const subscriptionCreate = (label: string, endpoint: ExampleEndpointName, headers: ClientRequest['headers'], body: Buffer): ClientRequest =>
  ({ label, endpoint, method: 'POST', path: '/STU3/Subscription', headers, body });

/** Cohort Manager's configuration example toASID ("Target ASID (usually same as FromAsid for NEMS)"). */
export const COHORT_MANAGER_TO_ASID = '200000002527';
/** The PRM script's hard-coded toASID. */
export const PRM_TO_ASID = '111111111111';

/**
 * Firely's STU3 serialiser writes an instant with `yyyy-MM-ddTHH:mm:ss.FFFFFFFK`: trailing zeros of the fraction
 * dropped, `+00:00` for UTC (DateTimeOffset.UtcNow).
 */
function firelyInstant(ms: number): string {
  const iso = new Date(ms).toISOString();
  const fraction = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 19)}${fraction ? `.${fraction}` : ''}+00:00`;
}

/**
 * Cohort Manager's create, as NemsSubscriptionManager.CreateAndSendSubscriptionAsync sends it at `now`.
 * Swapped: NemsFromAsid 200000002527 → the gp-system ASID, NemsOdsCode T8T9T → A83627, NemsMeshMailboxId
 * T8T9TOT001 → A83627MB001, the NHS number → one the local PDS data traces. Kept: NemsToAsid 200000002527.
 */
export function cohortManagerCreate(now: number): ClientRequest {
  const asid = GP_SYSTEM_ASID;
  const seconds = Math.floor(now / 1000);
  // GenerateJwtToken: anonymous objects serialised by System.Text.Json in declaration order; exp = UtcNow + 1 hour;
  // aud = NemsFhirEndpoint.Replace("/STU3", "") (SendSubscriptionToNemsAsync; the INT endpoint of the config comment).
  const system = `https://fhir.nhs.uk/Id/accredited-system|${asid}`;
  const header = JSON.stringify({ alg: 'none', typ: 'JWT' });
  const payload = JSON.stringify({ iss: 'https://nems.nhs.uk', sub: system, aud: 'https://msg.intspineservices.nhs.uk', exp: seconds + 3600, iat: seconds, reason_for_request: 'directcare', scope: 'patient/Subscription.write', requesting_system: system });
  const token = `${base64url(header)}.${base64url(payload)}.`;
  // CreateSubscription, serialised by Firely's FhirJsonSerializer (compact, STU3 element order).
  const body = JSON.stringify({
    resourceType: 'Subscription',
    meta: { lastUpdated: firelyInstant(now), profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/EMS-Subscription-1'] },
    status: 'requested',
    contact: [{ system: 'url', value: `https://directory.spineservices.nhs.uk/STU3/Organization/${GP_SYSTEM_ODS}`, use: 'work' }],
    reason: 'Subscribe to pds-record-change-1 events for patient',
    // NemsSubscriptionCriteria defaults to https://fhir.nhs.uk/Id/nhs-number.
    criteria: `/Bundle?type=message&Patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${FIXTURE_NHS_NUMBER}&MessageHeader.event=pds-record-change-1`,
    channel: { type: 'message', endpoint: GP_SYSTEM_MAILBOX, payload: 'application/fhir+json' },
  });
  const bytes = Buffer.from(body, 'utf8');
  // SendSubscriptionPost to NemsFhirEndpoint (…/STU3) + "/Subscription": request headers in the order added, then
  // StringContent's content headers.
  return subscriptionCreate('Cohort Manager create', 'gp-system', [
      ['Authorization', `Bearer ${token}`],
      ['fromASID', asid],
      ['toASID', COHORT_MANAGER_TO_ASID],
      ['InteractionID', 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost'],
      ['Content-Type', 'application/fhir+json; charset=utf-8'],
      ['Content-Length', String(bytes.length)],
    ], bytes);
}

/**
 * The PRM script's create at `now` (commit 476ff9c). Swapped: OUR_ASID 918999198820 → the child-health ASID,
 * OUR_ODS_CODE A91720 → RX3EP (in the contact, the token and the criteria, as the script uses the one variable),
 * MESH_MAILBOX_ID A91720OT001 → RX3EPMB001. Kept: toASID 111111111111, iss '', reason_for_request secondaryuses,
 * subscriptionRuleType=HSS and MessageHeader.event=pds-change-gp-1, the tab-indented XML, no Content-Type.
 */
export function prmCreate(now: number): ClientRequest {
  const asid = CHILD_HEALTH_ASID;
  const ods = CHILD_HEALTH_ODS;
  const seconds = Math.floor(now / 1000);
  // PyJWT 2 jwt.encode(payload, key=None, algorithm=None): header keys sorted, compact separators, empty signature;
  // aud = NEMS_URL of the script's local (TKW) configuration; the claims in the script's dict order.
  const system = `https://fhir.nhs.uk/Id/accredited-system|${asid}`;
  const header = JSON.stringify({ alg: 'none', typ: 'JWT' });
  const organisation = `https://fhir.nhs.uk/Id/ods-organization-code|${ods}`;
  const payload = JSON.stringify({ iss: '', sub: system, aud: 'http://192.168.128.14:8080', exp: seconds + 300, iat: seconds, reason_for_request: 'secondaryuses', scope: 'patient/Subscription.write', requesting_system: system, requesting_organization: organisation });
  const token = `${base64url(header)}.${base64url(payload)}.`;
  const body =
    '<Subscription xmlns="http://hl7.org/fhir">' +
    '<meta>' +
    '\t<profile value="https://fhir.nhs.uk/STU3/StructureDefinition/EMS-Subscription-1"/>' +
    '</meta>' +
    '<status value="requested"/>' +
    '<contact>' +
    '\t<system value="url"/>' +
    `\t<value value="https://directory.spineservices.nhs.uk/STU3/Organization/${ods}"/>` +
    '\t<use value="work"/>' +
    '</contact>' +
    '<reason value="To facilate GP2GP transfer of EHR for suspended patients from their previous practise"/>' +
    `<criteria value="/Bundle?type=message&amp;subscriptionRuleType=HSS&amp;Organization.identifier=${ods}&amp;MessageHeader.event=pds-change-gp-1" />` +
    '<channel>' +
    '\t<type value="message"/>' +
    `\t<endpoint value="${CHILD_HEALTH_MAILBOX}"/>` +
    '</channel>' +
    '</Subscription>';
  const bytes = Buffer.from(body, 'utf8');
  // requests.post(f"{nems_url}/STU3/Subscription"): the session's default headers first (User-Agent, Accept-Encoding,
  // Accept replaced in place, Connection), then the script's in dict order; Content-Length, no Content-Type, for a str body.
  return subscriptionCreate('PRM script create', 'child-health', [
      ['User-Agent', 'python-requests/2.26.0'],
      ['Accept-Encoding', 'gzip, deflate'],
      ['Accept', 'application/fhir+xml;charset=utf-8'],
      ['Connection', 'keep-alive'],
      ['fromASID', asid],
      ['toASID', PRM_TO_ASID],
      ['Authorization', `Bearer ${token}`],
      ['InteractionID', 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost'],
      ['Content-Length', String(bytes.length)],
    ], bytes);
}

/** The rules each shape breaks, in the order strict meets them (first = the one strict answers with). */
export const COHORT_MANAGER_RULES = {
  strict: ['headers.to-asid', 'jwt.organisation-present', 'jwt.max-lifetime', 'subscription.meta-supplied', 'criteria.nhs-number-system'],
  /** compatible accepts the nhs.uk criteria system outright. */
  compatible: ['headers.to-asid', 'jwt.organisation-present', 'jwt.max-lifetime', 'subscription.meta-supplied'],
} as const;
export const PRM_RULES = {
  strict: ['headers.to-asid', 'jwt.iss', 'jwt.reason-for-request', 'criteria.event-code', 'criteria.rule-type'],
  /** compatible accepts the three Spine Core reasons outright. */
  compatible: ['headers.to-asid', 'jwt.iss', 'criteria.event-code', 'criteria.rule-type'],
} as const;

const FQDN: Readonly<Record<ExampleEndpointName, string>> = { 'gp-system': GP_SYSTEM_FQDN, 'child-health': CHILD_HEALTH_FQDN };

/** One record of a replay file (src/cli/replay.ts) for a request recorded at `receivedAt`. */
export function replayLine(request: ClientRequest, receivedAt: number): string {
  return JSON.stringify({
    label: request.label,
    endpoint: FQDN[request.endpoint],
    receivedAt: new Date(receivedAt).toISOString(),
    method: request.method,
    path: request.path,
    headers: request.headers,
    body: request.body.toString('utf8'),
  });
}
