// The NEMS request-policy case table (issue 3): route table, Spine headers, Spine JWT claims and MIME rules,
// written as data so the same cases run as unit tests of the stages (policy.test.ts) and end to end through TLS.
//
// Every case assumes the default `nems` configuration (toASID 200000000306, prefix /STU3, unsigned tokens on
// every operation, skew 60 s, lifetime 300 s, 8 KB tokens, either organisation spelling, reason directcare,
// no legacy publish InteractionIDs, MIME forwarded as sent) and the two example endpoints of
// test/helpers/endpoints.ts. Tokens are minted at `now`, so an end-to-end run passes its own clock:
// `buildPolicyCases(Date.now())`; the unit run uses POLICY_NOW as the request's receivedAt.
import type { SpineCode } from '../../src/fhir/errors.js';
import { SUBSCRIPTION_INTERACTIONS, publishInteractionId } from '../../src/nems/interactions.js';
import type { NemsOperation } from '../../src/nems/operations.js';
import { mintSpineJwt, type MintSpineJwtOptions } from '../../src/cli/jwt.js';
import {
  CHILD_HEALTH_ASID,
  CHILD_HEALTH_ODS,
  EXAMPLE_IDENTITIES,
  FIXTURE_NHS_NUMBER,
  GP_SYSTEM_ASID,
  GP_SYSTEM_ODS,
  NEMS_TO_ASID,
  type ExampleEndpointName,
} from '../helpers/endpoints.js';

/** What the e2e run sends as the body; symbolic so it can use real fixtures. Absent: no body. */
export type PolicyBody =
  | { readonly kind: 'subscription'; readonly format: 'xml' | 'json' }
  /** A publish Bundle for this EventType-1 code (e.g. `vaccinations-1`), from shared/fixtures/nems-examples. */
  | { readonly kind: 'event'; readonly eventCode: string }
  | { readonly kind: 'raw'; readonly text: string };

export type PolicyExpectation =
  | 'pass'
  | {
      readonly status: number;
      readonly code: SpineCode;
      /** Response headers the rejection must carry (e.g. Allow). */
      readonly headers?: Readonly<Record<string, string>>;
    };

export interface PolicyCase {
  readonly name: string;
  /** Which example endpoint's client certificate sends the request. */
  readonly endpoint: ExampleEndpointName;
  readonly method: string;
  /** The request target exactly as sent: path plus any query string. */
  readonly path: string;
  /** Raw name/value pairs in order, so repeated headers can be expressed. Host and Content-Length are added by the sender. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body?: PolicyBody;
  readonly expect: PolicyExpectation;
  /** For passing cases: the Content-Type (absent: none) and Accept the upstream must receive. */
  readonly forward?: { readonly contentType?: string; readonly accept: string };
}

/** Fixed clock for the unit run: 2025-01-30T12:00:00Z. */
export const POLICY_NOW = Date.UTC(2025, 0, 30, 12, 0, 0);

export const SUBSCRIPTION_ID = 'ea0a485187204b49b978bdcf7102388c';
export const DEFAULT_MIME = 'application/xml+fhir;charset=utf-8';

const PATHS: Readonly<Record<NemsOperation, { method: string; path: string }>> = {
  create: { method: 'POST', path: '/STU3/Subscription' },
  read: { method: 'GET', path: `/STU3/Subscription/${SUBSCRIPTION_ID}` },
  delete: { method: 'DELETE', path: `/STU3/Subscription/${SUBSCRIPTION_ID}` },
  publish: { method: 'POST', path: '/STU3/Events/1/$process-message' },
};

const SCOPES: Readonly<Record<NemsOperation, string>> = {
  create: 'patient/Subscription.write',
  read: 'patient/Subscription.read',
  delete: 'patient/Subscription.write',
  publish: 'patient/Bundle.write',
};

/** Publish interaction code → EventType-1 code, for the body fixture. */
const PUBLISH_EVENTS: Readonly<Record<string, string>> = {
  Vaccinations: 'vaccinations-1',
  Bloodspottestoutcome: 'blood-spot-test-outcome-1',
  Newbornhearing: 'newborn-hearing-1',
  Nipeoutcome: 'nipe-outcome-1',
  Professionalcontacts: 'professional-contacts-1',
};

/** Encodes a JWT from parts; the signature section is given already encoded. */
export function encodeJwt(header: unknown, payload: unknown, signature = ''): string {
  const part = (value: unknown) =>
    Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8').toString('base64url');
  return `${part(header)}.${part(payload)}.${signature}`;
}

export function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

interface RequestOptions {
  /** Publish interaction code (default Vaccinations). */
  readonly event?: string;
  readonly interactionId?: string;
  readonly token?: string;
  readonly authorization?: string;
  readonly fromAsid?: string;
  readonly toAsid?: string;
  /** Header names (as the base writes them) to leave out. */
  readonly omit?: readonly string[];
  /** Extra headers appended after the base set. */
  readonly add?: readonly (readonly [string, string])[];
  /** Content-Type for body operations; null sends none. Default application/fhir+xml;charset=utf-8. */
  readonly contentType?: string | null;
  readonly body?: PolicyBody;
  readonly path?: string;
  readonly method?: string;
}

export function buildPolicyCases(now: number): PolicyCase[] {
  const nowSeconds = Math.floor(now / 1000);

  const token = (endpoint: ExampleEndpointName, op: NemsOperation, extra: Partial<MintSpineJwtOptions> = {}): string =>
    mintSpineJwt({ ...EXAMPLE_IDENTITIES[endpoint], scope: SCOPES[op], now, ...extra });

  /** A default token with its payload edited (undefined deletes a claim). */
  const edited = (
    endpoint: ExampleEndpointName,
    op: NemsOperation,
    edit: Readonly<Record<string, unknown>>,
    header: unknown = { alg: 'none', typ: 'JWT' },
    signature = '',
  ): string => {
    const payload = decodePayload(token(endpoint, op));
    for (const [claim, value] of Object.entries(edit)) {
      if (value === undefined) delete payload[claim];
      else payload[claim] = value;
    }
    return encodeJwt(header, payload, signature);
  };

  const request = (endpoint: ExampleEndpointName, op: NemsOperation, o: RequestOptions = {}) => {
    const event = o.event ?? 'Vaccinations';
    const interactionId = o.interactionId ?? (op === 'publish' ? publishInteractionId(event) : SUBSCRIPTION_INTERACTIONS[op]);
    const hasBody = op === 'create' || op === 'publish';
    const base: [string, string][] = [
      ['fromASID', o.fromAsid ?? EXAMPLE_IDENTITIES[endpoint].asid],
      ['toASID', o.toAsid ?? NEMS_TO_ASID],
      ['InteractionID', interactionId],
      ['Authorization', o.authorization ?? `Bearer ${o.token ?? token(endpoint, op)}`],
    ];
    const contentType = o.contentType === undefined ? 'application/fhir+xml;charset=utf-8' : o.contentType;
    if (hasBody && contentType !== null) base.push(['Content-Type', contentType]);
    const omit = new Set(o.omit ?? []);
    const headers = [...base.filter(([name]) => !omit.has(name)), ...(o.add ?? [])];
    const jsonBody = contentType !== null && /json/i.test(contentType);
    const body: PolicyBody | undefined =
      o.body ??
      (op === 'create'
        ? { kind: 'subscription', format: jsonBody ? 'json' : 'xml' }
        : op === 'publish'
          ? { kind: 'event', eventCode: PUBLISH_EVENTS[event] ?? 'vaccinations-1' }
          : undefined);
    return {
      endpoint,
      method: o.method ?? PATHS[op].method,
      path: o.path ?? PATHS[op].path,
      headers,
      ...(body ? { body } : {}),
    };
  };

  const fail = (status: number, code: SpineCode, headers?: Record<string, string>): PolicyExpectation =>
    headers ? { status, code, headers } : { status, code };
  const MISSING = fail(400, 'MISSING_OR_INVALID_HEADER');
  const ASID_FAILED = fail(403, 'ASID_CHECK_FAILED');
  const NOT_FOUND = fail(404, 'NO_RECORD_FOUND');
  const UNSUPPORTED = fail(415, 'UNSUPPORTED_MEDIA_TYPE');
  const NOT_ACCEPTABLE = fail(406, 'NOT_ACCEPTABLE');
  const INVALID_NHS = fail(400, 'INVALID_NHS_NUMBER');

  const cases: PolicyCase[] = [];
  const add = (name: string, req: ReturnType<typeof request>, expect: PolicyExpectation, forward?: PolicyCase['forward']) => {
    cases.push({ name, ...req, expect, ...(forward ? { forward } : {}) });
  };
  const bodyDefault = { contentType: 'application/fhir+xml;charset=utf-8', accept: DEFAULT_MIME };
  const noBodyDefault = { accept: DEFAULT_MIME };

  // ---- Route table -----------------------------------------------------------------------------------------
  add('route: create POST /STU3/Subscription from the GP system passes', request('gp-system', 'create'), 'pass', bodyDefault);
  add('route: read GET /STU3/Subscription/{id} from the GP system passes', request('gp-system', 'read'), 'pass', noBodyDefault);
  add('route: delete DELETE /STU3/Subscription/{id} from the GP system passes', request('gp-system', 'delete'), 'pass', noBodyDefault);
  add('route: create from the child health system passes', request('child-health', 'create'), 'pass', bodyDefault);
  add('route: read of a 2018-style hyphenated UUID id passes', request('gp-system', 'read', { path: '/STU3/Subscription/25777f7d-27bc-4f2e-9a0b-7c1d2e3f4a5b' }), 'pass', noBodyDefault);
  for (const event of Object.keys(PUBLISH_EVENTS)) {
    add(`route: publish of ${event} from the child health system passes`, request('child-health', 'publish', { event }), 'pass', bodyDefault);
  }
  add('route: the removed subscription search GET /STU3/Subscription is 501 NOT_IMPLEMENTED', request('gp-system', 'read', { path: '/STU3/Subscription' }), fail(501, 'NOT_IMPLEMENTED'));
  add('route: subscription search with a query is 501 NOT_IMPLEMENTED', request('gp-system', 'read', { path: `/STU3/Subscription?contact=https://directory.spineservices.nhs.uk/STU3/Organization/${GP_SYSTEM_ODS}` }), fail(501, 'NOT_IMPLEMENTED'));
  add('route: subscription update PUT is 501 NOT_IMPLEMENTED', request('gp-system', 'create', { method: 'PUT', path: PATHS.read.path }), fail(501, 'NOT_IMPLEMENTED'));
  add('route: subscription update PATCH is 501 NOT_IMPLEMENTED', request('gp-system', 'create', { method: 'PATCH', path: PATHS.read.path }), fail(501, 'NOT_IMPLEMENTED'));
  add('route: GET on $process-message is 400 BAD_REQUEST with Allow: POST', request('child-health', 'read', { path: PATHS.publish.path }), fail(400, 'BAD_REQUEST', { Allow: 'POST' }));
  add('route: DELETE /STU3/Subscription (no id) is 400 BAD_REQUEST with Allow: POST', request('gp-system', 'delete', { path: '/STU3/Subscription' }), fail(400, 'BAD_REQUEST', { Allow: 'POST' }));
  add('route: POST /STU3/Subscription/{id} is 400 BAD_REQUEST with Allow: GET, DELETE', request('gp-system', 'create', { path: PATHS.read.path }), fail(400, 'BAD_REQUEST', { Allow: 'GET, DELETE' }));
  add('route: HEAD /STU3/Subscription/{id} is 400 BAD_REQUEST', request('gp-system', 'read', { method: 'HEAD' }), fail(400, 'BAD_REQUEST', { Allow: 'GET, DELETE' }));
  add('route: OPTIONS /STU3/Subscription is 400 BAD_REQUEST', request('gp-system', 'read', { method: 'OPTIONS', path: '/STU3/Subscription' }), fail(400, 'BAD_REQUEST', { Allow: 'POST' }));
  add('route: an unknown resource /STU3/Patient/9434765919 is 404 NO_RECORD_FOUND', request('gp-system', 'read', { path: '/STU3/Patient/9434765919' }), NOT_FOUND);
  add('route: a path without the /STU3 prefix is 404 NO_RECORD_FOUND', request('gp-system', 'create', { path: '/Subscription' }), NOT_FOUND);
  add('route: a lower-case /stu3/subscription is 404 NO_RECORD_FOUND', request('gp-system', 'create', { path: '/stu3/subscription' }), NOT_FOUND);
  add('route: an empty segment /STU3//Subscription is 404 NO_RECORD_FOUND', request('gp-system', 'create', { path: '/STU3//Subscription' }), NOT_FOUND);
  add('route: a dot-dot id /STU3/Subscription/.. is 404 NO_RECORD_FOUND', request('gp-system', 'read', { path: '/STU3/Subscription/..' }), NOT_FOUND);
  add('route: a dot segment /STU3/./Subscription is 404 NO_RECORD_FOUND', request('gp-system', 'create', { path: '/STU3/./Subscription' }), NOT_FOUND);
  add('route: an encoded dot-dot id is 404 NO_RECORD_FOUND', request('gp-system', 'read', { path: '/STU3/Subscription/%2e%2e' }), NOT_FOUND);
  add('route: an encoded slash /STU3/Subscription%2F{id} is 404 NO_RECORD_FOUND', request('gp-system', 'read', { path: `/STU3/Subscription%2F${SUBSCRIPTION_ID}` }), NOT_FOUND);
  add('route: a traversal to another id /STU3/Subscription/x/../{id} is 404 NO_RECORD_FOUND', request('gp-system', 'read', { path: `/STU3/Subscription/x/../${SUBSCRIPTION_ID}` }), NOT_FOUND);
  add('route: a trailing slash /STU3/Subscription/ is 404 NO_RECORD_FOUND', request('gp-system', 'create', { path: '/STU3/Subscription/' }), NOT_FOUND);
  add('route: an encoded $ in %24process-message is 404 NO_RECORD_FOUND', request('child-health', 'publish', { path: '/STU3/Events/1/%24process-message' }), NOT_FOUND);
  add('route: an absolute-form request target is 404 NO_RECORD_FOUND', request('gp-system', 'create', { path: 'https://gateway.example.nhs.uk/STU3/Subscription' }), NOT_FOUND);
  add('route: an extra path segment /STU3/Subscription/{id}/_history is 404 NO_RECORD_FOUND', request('gp-system', 'read', { path: `${PATHS.read.path}/_history` }), NOT_FOUND);

  // ---- Spine headers ---------------------------------------------------------------------------------------
  for (const header of ['fromASID', 'toASID', 'InteractionID', 'Authorization']) {
    add(`headers: a create without ${header} is 400 MISSING_OR_INVALID_HEADER`, request('gp-system', 'create', { omit: [header] }), MISSING);
  }
  add('headers: fromASID twice is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { add: [['fromASID', GP_SYSTEM_ASID]] }), MISSING);
  add('headers: fromASID twice under different case is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { add: [['FROMASID', GP_SYSTEM_ASID]] }), MISSING);
  add('headers: toASID twice is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { add: [['toasid', NEMS_TO_ASID]] }), MISSING);
  add('headers: InteractionID twice is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { add: [['InteractionID', SUBSCRIPTION_INTERACTIONS.read]] }), MISSING);
  add('headers: Authorization twice is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { add: [['Authorization', `Bearer ${token('gp-system', 'read')}`]] }), MISSING);
  add('headers: header names are case-insensitive (FROMASID, toasid, interactionid, AUTHORIZATION pass)', {
    endpoint: 'gp-system',
    method: 'GET',
    path: PATHS.read.path,
    headers: [
      ['FROMASID', GP_SYSTEM_ASID],
      ['toasid', NEMS_TO_ASID],
      ['interactionid', SUBSCRIPTION_INTERACTIONS.read],
      ['AUTHORIZATION', `Bearer ${token('gp-system', 'read')}`],
    ],
  }, 'pass', noBodyDefault);
  add('headers: Spine Core spellings FromASID and ToASID pass', request('gp-system', 'read', { omit: ['fromASID', 'toASID'], add: [['FromASID', GP_SYSTEM_ASID], ['ToASID', NEMS_TO_ASID]] }), 'pass', noBodyDefault);
  add('headers: an 11-digit fromASID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { fromAsid: '20000000010' }), MISSING);
  add('headers: a non-numeric fromASID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { fromAsid: '20000000010A' }), MISSING);
  add('headers: an empty fromASID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { fromAsid: '' }), MISSING);
  add('headers: a 13-digit toASID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { toAsid: '2000000003060' }), MISSING);
  add('headers: the fromASID of another endpoint (child health ASID on the GP certificate) is 403 ASID_CHECK_FAILED', request('gp-system', 'read', { fromAsid: CHILD_HEALTH_ASID, token: token('gp-system', 'read', { asid: CHILD_HEALTH_ASID, ods: CHILD_HEALTH_ODS }) }), ASID_FAILED);
  add('headers: the fromASID of another endpoint (GP ASID on the child health certificate) is 403 ASID_CHECK_FAILED', request('child-health', 'create', { fromAsid: GP_SYSTEM_ASID }), ASID_FAILED);
  add('headers: an unregistered fromASID is 403 ASID_CHECK_FAILED', request('gp-system', 'read', { fromAsid: '999999999999' }), ASID_FAILED);
  add('headers: a toASID that is not the NEMS ASID is 403 ASID_CHECK_FAILED', request('gp-system', 'read', { toAsid: '928942012545' }), ASID_FAILED);
  add('headers: a GP system ASID not registered for publish is 403 ASID_CHECK_FAILED', request('gp-system', 'publish', { token: token('gp-system', 'publish') }), ASID_FAILED);
  add('headers: create with the read InteractionID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'create', { interactionId: SUBSCRIPTION_INTERACTIONS.read }), MISSING);
  add('headers: read with the delete InteractionID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { interactionId: SUBSCRIPTION_INTERACTIONS.delete }), MISSING);
  add('headers: delete with the create InteractionID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'delete', { interactionId: SUBSCRIPTION_INTERACTIONS.create }), MISSING);
  add('headers: publish with a subscription InteractionID is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'publish', { interactionId: SUBSCRIPTION_INTERACTIONS.create }), MISSING);
  add('headers: create with a publish InteractionID is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'create', { interactionId: publishInteractionId('Vaccinations') }), MISSING);
  add('headers: an unknown InteractionID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { interactionId: 'urn:nhs:names:services:clinicals-sync:SubscriptionsApiSearch' }), MISSING);
  add('headers: a lower-case subscription InteractionID is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { interactionId: SUBSCRIPTION_INTERACTIONS.read.toLowerCase() }), MISSING);
  add('headers: publish of a Spine-published event (Pdsbirthnotification.Write) is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'publish', { interactionId: publishInteractionId('Pdsbirthnotification') }), MISSING);
  add('headers: publish InteractionID with a lower-case .write is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'publish', { interactionId: 'urn:nhs:names:services:events:Vaccinations.write' }), MISSING);
  add('headers: the legacy vaccinations-1.Write form is 400 MISSING_OR_INVALID_HEADER by default', request('child-health', 'publish', { interactionId: 'urn:nhs:names:services:events:vaccinations-1.Write' }), MISSING);
  add('headers: the legacy .write:1 form is 400 MISSING_OR_INVALID_HEADER by default', request('child-health', 'publish', { interactionId: 'urn:nhs:names:services:events:Vaccinations.write:1' }), MISSING);
  add('headers: the 2019 PublicationApiPost InteractionID is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'publish', { interactionId: 'urn:nhs:names:services:clinicals-sync:PublicationApiPost' }), MISSING);
  add('headers: Authorization without the Bearer scheme is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { authorization: token('gp-system', 'read') }), MISSING);
  add('headers: a lower-case bearer scheme is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { authorization: `bearer ${token('gp-system', 'read')}` }), MISSING);
  add('headers: an upper-case BEARER scheme is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { authorization: `BEARER ${token('gp-system', 'read')}` }), MISSING);
  add('headers: Bearer with no token is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { authorization: 'Bearer' }), MISSING);
  add('headers: Basic credentials are 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { authorization: 'Basic dXNlcjpwYXNz' }), MISSING);
  add('headers: two tokens after Bearer are 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { authorization: `Bearer ${token('gp-system', 'read')} ${token('gp-system', 'read')}` }), MISSING);

  // ---- Spine JWT: claims -----------------------------------------------------------------------------------
  for (const claim of ['iss', 'sub', 'aud', 'exp', 'iat', 'reason_for_request', 'scope', 'requesting_system', 'requesting_organisation']) {
    add(`jwt: a token without ${claim} is 400 MISSING_OR_INVALID_HEADER`, request('gp-system', 'read', { token: edited('gp-system', 'read', { [claim]: undefined }) }), MISSING);
  }
  const gpSystem = `https://fhir.nhs.uk/Id/accredited-system|${GP_SYSTEM_ASID}`;
  const wrong: [string, Record<string, unknown>][] = [
    ['iss is an empty string', { iss: '' }],
    ['iss is a number', { iss: 42 }],
    ['sub differs from requesting_system', { sub: `https://fhir.nhs.uk/Id/accredited-system|${CHILD_HEALTH_ASID}` }],
    ['sub differs from requesting_user', { requesting_user: 'https://fhir.nhs.uk/Id/sds-role-profile-id|4387293874928', sub: 'https://fhir.nhs.uk/Id/sds-role-profile-id|387429785309275' }],
    ['sub equals requesting_system while requesting_user is present', { requesting_user: 'https://fhir.nhs.uk/Id/sds-role-profile-id|4387293874928' }],
    ['aud is a number', { aud: 7 }],
    ['aud is an empty array', { aud: [] }],
    ['exp is not an integer', { exp: nowSeconds + 120.5 }],
    ['exp is a string', { exp: String(nowSeconds + 120) }],
    ['iat is a string', { iat: String(nowSeconds) }],
    ['reason_for_request is secondaryuses', { reason_for_request: 'secondaryuses' }],
    ['reason_for_request is DIRECTCARE', { reason_for_request: 'DIRECTCARE' }],
    ['scope is the write scope on a read', { scope: 'patient/Subscription.write' }],
    ['scope carries both subscription scopes', { scope: 'patient/Subscription.read patient/Subscription.write' }],
    ['scope is a Spine Core wildcard', { scope: 'patient/*.read' }],
    ['requesting_system has another naming system', { requesting_system: `https://fhir.nhs.uk/Id/sds-user-id|${GP_SYSTEM_ASID}`, sub: `https://fhir.nhs.uk/Id/sds-user-id|${GP_SYSTEM_ASID}` }],
    ['requesting_system uses the slash form', { requesting_system: `https://fhir.nhs.uk/Id/accredited-system/${GP_SYSTEM_ASID}`, sub: `https://fhir.nhs.uk/Id/accredited-system/${GP_SYSTEM_ASID}` }],
    ['requesting_system names an ASID other than fromASID', { requesting_system: `https://fhir.nhs.uk/Id/accredited-system|${CHILD_HEALTH_ASID}`, sub: `https://fhir.nhs.uk/Id/accredited-system|${CHILD_HEALTH_ASID}` }],
    ['requesting_system is a GP Connect-style Device resource', { requesting_system: { resourceType: 'Device', identifier: [{ system: 'https://fhir.nhs.uk/Id/accredited-system', value: GP_SYSTEM_ASID }] } }],
    ['requesting_organisation has another naming system', { requesting_organisation: `https://fhir.nhs.uk/Id/sds-user-id|${GP_SYSTEM_ODS}` }],
    ['requesting_organisation is the ODS code of another ASID', { requesting_organisation: `https://fhir.nhs.uk/Id/ods-organization-code|${CHILD_HEALTH_ODS}` }],
    ['requesting_organisation is a GP Connect-style Organization resource', { requesting_organisation: { resourceType: 'Organization', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: GP_SYSTEM_ODS }] } }],
    ['both organisation spellings disagree', { requesting_organization: `https://fhir.nhs.uk/Id/ods-organization-code|${CHILD_HEALTH_ODS}` }],
    ['requesting_patient has an unknown naming system', { requesting_patient: `https://example.org/Id/patient|${FIXTURE_NHS_NUMBER}` }],
    ['payload is a JSON array', {}],
  ];
  for (const [what, edit] of wrong) {
    const tokenText = what === 'payload is a JSON array' ? encodeJwt({ alg: 'none', typ: 'JWT' }, [gpSystem]) : edited('gp-system', 'read', edit);
    add(`jwt: a token whose ${what} is 400 MISSING_OR_INVALID_HEADER`, request('gp-system', 'read', { token: tokenText }), MISSING);
  }
  add('jwt: a Bundle.write scope on a subscription create is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'create', { token: token('child-health', 'create', { scope: 'patient/Bundle.write' }) }), MISSING);
  add('jwt: a Subscription.write scope on a publish is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'publish', { token: token('child-health', 'publish', { scope: 'patient/Subscription.write' }) }), MISSING);
  add('jwt: a Subscription.read scope on a delete is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'delete', { token: token('gp-system', 'delete', { scope: 'patient/Subscription.read' }) }), MISSING);
  add('jwt: the GP ODS code in a child health token is 400 MISSING_OR_INVALID_HEADER', request('child-health', 'publish', { token: token('child-health', 'publish', { ods: GP_SYSTEM_ODS }) }), MISSING);
  add('jwt: a requesting_user with sub equal to it passes', request('gp-system', 'read', { token: token('gp-system', 'read', { user: '4387293874928' }) }), 'pass', noBodyDefault);
  add('jwt: the US spelling requesting_organization alone passes', request('gp-system', 'read', { token: token('gp-system', 'read', { organisationClaim: 'requesting_organization' }) }), 'pass', noBodyDefault);
  add('jwt: both organisation spellings with the same value pass', request('gp-system', 'read', { token: token('gp-system', 'read', { organisationClaim: 'both' }) }), 'pass', noBodyDefault);
  add('jwt: an aud given as an array passes', request('gp-system', 'read', { token: edited('gp-system', 'read', { aud: ['https://clinicals.spineservices.nhs.uk'] }) }), 'pass', noBodyDefault);
  add('jwt: scope with surrounding spaces still names exactly the route scope and passes', request('gp-system', 'read', { token: edited('gp-system', 'read', { scope: ' patient/Subscription.read ' }) }), 'pass', noBodyDefault);
  add('jwt: a valid requesting_patient (fhir.nhs.net system) passes', request('gp-system', 'read', { token: token('gp-system', 'read', { patient: FIXTURE_NHS_NUMBER }) }), 'pass', noBodyDefault);
  add('jwt: a valid requesting_patient with the fhir.nhs.uk system passes', request('gp-system', 'read', { token: token('gp-system', 'read', { patient: `https://fhir.nhs.uk/Id/nhs-number|${FIXTURE_NHS_NUMBER}` }) }), 'pass', noBodyDefault);
  add('jwt: a requesting_patient failing modulus 11 is 400 INVALID_NHS_NUMBER', request('gp-system', 'read', { token: token('gp-system', 'read', { patient: '6101231234' }) }), INVALID_NHS);
  add('jwt: a 9-digit requesting_patient is 400 INVALID_NHS_NUMBER', request('gp-system', 'read', { token: token('gp-system', 'read', { patient: '943476591' }) }), INVALID_NHS);
  add('jwt: a repeated-digit requesting_patient (0000000000) is 400 INVALID_NHS_NUMBER', request('gp-system', 'read', { token: token('gp-system', 'read', { patient: '0000000000' }) }), INVALID_NHS);
  add('jwt: a requesting_patient with spaces (943 476 5919) is 400 INVALID_NHS_NUMBER', request('gp-system', 'read', { token: token('gp-system', 'read', { patient: '943 476 5919' }) }), INVALID_NHS);

  // ---- Spine JWT: algorithm, time and shape ----------------------------------------------------------------
  const payloadOf = decodePayload(token('gp-system', 'read'));
  add('jwt: alg HS256 is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: encodeJwt({ alg: 'HS256', typ: 'JWT' }, payloadOf, 'c2lnbmF0dXJl') }), MISSING);
  add('jwt: alg RS256 without configured keys is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: encodeJwt({ alg: 'RS256', typ: 'JWT' }, payloadOf, 'c2lnbmF0dXJl') }), MISSING);
  add('jwt: alg none with a signature is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: encodeJwt({ alg: 'none', typ: 'JWT' }, payloadOf, 'c2lnbmF0dXJl') }), MISSING);
  add('jwt: alg None (not exactly none) is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: encodeJwt({ alg: 'None', typ: 'JWT' }, payloadOf) }), MISSING);
  add('jwt: a header without alg is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: encodeJwt({ typ: 'JWT' }, payloadOf) }), MISSING);
  add('jwt: a header that is not JSON is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: encodeJwt('{"alg":"none"', payloadOf) }), MISSING);
  add('jwt: a payload that is not JSON is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: encodeJwt({ alg: 'none', typ: 'JWT' }, 'not json') }), MISSING);
  add('jwt: a token with 2 sections (trailing dot dropped) is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: token('gp-system', 'read').slice(0, -1) }), MISSING);
  add('jwt: a token with 4 sections is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: `${token('gp-system', 'read')}.` }), MISSING);
  add('jwt: a token with padding characters is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: token('gp-system', 'read').replace('.', '=.') }), MISSING);
  add('jwt: an expired token (exp a minute past the skew) is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: token('gp-system', 'read', { now: now - 420_000 }) }), MISSING);
  add('jwt: a token expired but within the 60 s skew passes', request('gp-system', 'read', { token: token('gp-system', 'read', { now: now - 330_000 }) }), 'pass', noBodyDefault);
  add('jwt: a future iat beyond the skew is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: token('gp-system', 'read', { now: now + 120_000 }) }), MISSING);
  add('jwt: an iat 30 s in the future (within the skew) passes', request('gp-system', 'read', { token: token('gp-system', 'read', { now: now + 30_000 }) }), 'pass', noBodyDefault);
  add('jwt: a lifetime of 301 s is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: token('gp-system', 'read', { lifetimeSeconds: 301 }) }), MISSING);
  add('jwt: a lifetime of exactly 300 s passes', request('gp-system', 'read', { token: token('gp-system', 'read', { lifetimeSeconds: 300 }) }), 'pass', noBodyDefault);
  add('jwt: exp before iat is 400 MISSING_OR_INVALID_HEADER', request('gp-system', 'read', { token: edited('gp-system', 'read', { iat: nowSeconds, exp: nowSeconds - 1 }) }), MISSING);
  const oversize = edited('gp-system', 'read', { padding: 'x'.repeat(8300) });
  add('jwt: a token over 8 KB is 400 MISSING_OR_INVALID_HEADER before decoding', request('gp-system', 'read', { token: oversize }), MISSING);

  // ---- MIME ------------------------------------------------------------------------------------------------
  const all8 = [
    'application/fhir+xml',
    'application/fhir+json',
    'application/fhir+xml;charset=utf-8',
    'application/fhir+json;charset=utf-8',
    'application/xml+fhir',
    'application/json+fhir',
    'application/xml+fhir;charset=utf-8',
    'application/json+fhir;charset=utf-8',
  ];
  for (const type of all8) {
    add(`mime: create with Content-Type ${type} passes, forwarded as sent`, request('gp-system', 'create', { contentType: type }), 'pass', { contentType: type, accept: DEFAULT_MIME });
  }
  for (const type of all8) {
    add(`mime: read with Accept ${type} passes, forwarded as sent`, request('gp-system', 'read', { add: [['Accept', type]] }), 'pass', { accept: type });
  }
  for (const type of all8.filter((t) => t.includes('xml'))) {
    add(`mime: publish with Content-Type ${type} passes`, request('child-health', 'publish', { contentType: type }), 'pass', { contentType: type, accept: DEFAULT_MIME });
  }
  add('mime: publish with Content-Type application/fhir+json is 415 UNSUPPORTED_MEDIA_TYPE', request('child-health', 'publish', { contentType: 'application/fhir+json' }), UNSUPPORTED);
  add('mime: publish with Content-Type application/json+fhir;charset=utf-8 is 415 UNSUPPORTED_MEDIA_TYPE', request('child-health', 'publish', { contentType: 'application/json+fhir;charset=utf-8' }), UNSUPPORTED);
  add('mime: create without Content-Type forwards the XML default', request('gp-system', 'create', { contentType: null }), 'pass', { contentType: DEFAULT_MIME, accept: DEFAULT_MIME });
  add('mime: publish without Content-Type forwards the XML default', request('child-health', 'publish', { contentType: null }), 'pass', { contentType: DEFAULT_MIME, accept: DEFAULT_MIME });
  add('mime: odd case and spacing (Application/FHIR+XML ; Charset="UTF-8") passes, forwarded as sent', request('gp-system', 'create', { contentType: 'Application/FHIR+XML ; Charset="UTF-8"' }), 'pass', { contentType: 'Application/FHIR+XML ; Charset="UTF-8"', accept: DEFAULT_MIME });
  add('mime: create with Content-Type application/xml is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { contentType: 'application/xml' }), UNSUPPORTED);
  add('mime: create with Content-Type application/json is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { contentType: 'application/json' }), UNSUPPORTED);
  add('mime: create with Content-Type text/plain is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { contentType: 'text/plain' }), UNSUPPORTED);
  add('mime: a charset other than utf-8 is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { contentType: 'application/fhir+xml;charset=iso-8859-1' }), UNSUPPORTED);
  add('mime: a parameter other than charset is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { contentType: 'application/fhir+xml;fhirVersion=3.0' }), UNSUPPORTED);
  add('mime: a malformed Content-Type is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { contentType: 'application/fhir+xml;charset' }), UNSUPPORTED);
  add('mime: Content-Type twice is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { add: [['Content-Type', 'application/fhir+json']] }), UNSUPPORTED);
  add('mime: Accept */* forwards the XML default', request('gp-system', 'read', { add: [['Accept', '*/*']] }), 'pass', { accept: DEFAULT_MIME });
  add('mime: Accept application/* forwards the XML default', request('gp-system', 'read', { add: [['Accept', 'application/*']] }), 'pass', { accept: DEFAULT_MIME });
  add('mime: a browser Accept (text/html, */*;q=0.8) forwards the XML default', request('gp-system', 'read', { add: [['Accept', 'text/html,application/xhtml+xml,*/*;q=0.8']] }), 'pass', { accept: DEFAULT_MIME });
  add('mime: Accept application/json is 406 NOT_ACCEPTABLE', request('gp-system', 'read', { add: [['Accept', 'application/json']] }), NOT_ACCEPTABLE);
  add('mime: Accept text/html is 406 NOT_ACCEPTABLE', request('gp-system', 'read', { add: [['Accept', 'text/html']] }), NOT_ACCEPTABLE);
  add('mime: Accept */*;q=0 is 406 NOT_ACCEPTABLE', request('gp-system', 'read', { add: [['Accept', '*/*;q=0']] }), NOT_ACCEPTABLE);
  add('mime: Accept application/fhir+json;q=0 is 406 NOT_ACCEPTABLE', request('gp-system', 'read', { add: [['Accept', 'application/fhir+json;q=0']] }), NOT_ACCEPTABLE);
  add('mime: q-values choose JSON (application/fhir+xml;q=0.5, application/fhir+json) and forward the header as sent', request('gp-system', 'read', { add: [['Accept', 'application/fhir+xml;q=0.5, application/fhir+json']] }), 'pass', { accept: 'application/fhir+xml;q=0.5, application/fhir+json' });
  add('mime: a q=0 exclusion beside */* (application/xml+fhir;q=0, */*) forwards the next XML type', request('gp-system', 'read', { add: [['Accept', 'application/xml+fhir;q=0, */*']] }), 'pass', { accept: 'application/fhir+xml;charset=utf-8' });
  add('mime: an explicit JSON type beats */* at a lower weight and is forwarded as sent', request('gp-system', 'read', { add: [['Accept', 'application/fhir+json, */*;q=0.1']] }), 'pass', { accept: 'application/fhir+json, */*;q=0.1' });
  add('mime: a malformed q-value entry is ignored and the rest (*/*) forwards the default', request('gp-system', 'read', { add: [['Accept', 'application/fhir+json;q=2, */*']] }), 'pass', { accept: DEFAULT_MIME });
  add('mime: Accept application/fhir+json on publish is 406 NOT_ACCEPTABLE', request('child-health', 'publish', { add: [['Accept', 'application/fhir+json']] }), NOT_ACCEPTABLE);
  add('mime: Accept application/fhir+json, */*;q=0.1 on publish forwards the XML default', request('child-health', 'publish', { add: [['Accept', 'application/fhir+json, */*;q=0.1']] }), 'pass', { contentType: 'application/fhir+xml;charset=utf-8', accept: DEFAULT_MIME });
  add('mime: Accept given twice is read as one list (json, then */*)', request('gp-system', 'read', { add: [['Accept', 'application/fhir+json'], ['Accept', '*/*;q=0.1']] }), 'pass', { accept: 'application/fhir+json, */*;q=0.1' });
  add('mime: _format=json on read forwards a JSON Accept', request('gp-system', 'read', { path: `${PATHS.read.path}?_format=json` }), 'pass', { accept: 'application/json+fhir;charset=utf-8' });
  add('mime: _format=application/fhir+json with an unencoded + passes', request('gp-system', 'read', { path: `${PATHS.read.path}?_format=application/fhir+json` }), 'pass', { accept: 'application/fhir+json' });
  add('mime: _format=xml wins over Accept application/fhir+json', request('gp-system', 'read', { path: `${PATHS.read.path}?_format=xml`, add: [['Accept', 'application/fhir+json']] }), 'pass', { accept: DEFAULT_MIME });
  add('mime: _format=json wins over an unsatisfiable Accept', request('gp-system', 'read', { path: `${PATHS.read.path}?_format=json`, add: [['Accept', 'text/html']] }), 'pass', { accept: 'application/json+fhir;charset=utf-8' });
  add('mime: _format=json with a matching Accept keeps the Accept as sent', request('gp-system', 'read', { path: `${PATHS.read.path}?_format=json`, add: [['Accept', 'application/fhir+json']] }), 'pass', { accept: 'application/fhir+json' });
  // mime.content-encoding: the gateway decodes no content coding, so a coded body is refused before it is read.
  add('mime: create with Content-Encoding gzip is 415 UNSUPPORTED_MEDIA_TYPE (never judged as text)', request('gp-system', 'create', { add: [['Content-Encoding', 'gzip']] }), UNSUPPORTED);
  add('mime: publish with Content-Encoding br is 415 UNSUPPORTED_MEDIA_TYPE', request('child-health', 'publish', { add: [['Content-Encoding', 'br']] }), UNSUPPORTED);
  add('mime: publish with Content-Encoding identity, deflate is 415 UNSUPPORTED_MEDIA_TYPE', request('child-health', 'publish', { add: [['Content-Encoding', 'identity, deflate']] }), UNSUPPORTED);
  add('mime: create with Content-Encoding given twice (identity, then GZIP) is 415 UNSUPPORTED_MEDIA_TYPE', request('gp-system', 'create', { add: [['Content-Encoding', 'identity'], ['content-encoding', 'GZIP']] }), UNSUPPORTED);
  add('mime: create with Content-Encoding identity passes', request('gp-system', 'create', { add: [['Content-Encoding', 'Identity']] }), 'pass', bodyDefault);
  add('mime: a read without a body is not judged on Content-Encoding', request('gp-system', 'read', { add: [['Content-Encoding', 'gzip']] }), 'pass', noBodyDefault);
  add('mime: _format=html is 406 NOT_ACCEPTABLE', request('gp-system', 'read', { path: `${PATHS.read.path}?_format=html` }), NOT_ACCEPTABLE);
  add('mime: _format=json on publish is 406 NOT_ACCEPTABLE', request('child-health', 'publish', { path: `${PATHS.publish.path}?_format=json` }), NOT_ACCEPTABLE);
  add('mime: _format given twice is 400 BAD_REQUEST', request('gp-system', 'read', { path: `${PATHS.read.path}?_format=xml&_format=json` }), fail(400, 'BAD_REQUEST'));
  add('mime: a read ignores an unsupported Content-Type when no body is declared', request('gp-system', 'read', { add: [['Content-Type', 'text/plain']] }), 'pass', { contentType: 'text/plain', accept: DEFAULT_MIME });
  add('mime: a delete declaring a body checks its Content-Type (text/plain is 415 UNSUPPORTED_MEDIA_TYPE)', request('gp-system', 'delete', { add: [['Content-Type', 'text/plain']], body: { kind: 'raw', text: 'hello' } }), UNSUPPORTED);

  return cases;
}

export const POLICY_CASES: readonly PolicyCase[] = buildPolicyCases(POLICY_NOW);
