// The rule catalogue (issue 12): every check the gateway makes, as data. Each rule has a stable id, what it checks,
// its public source, its class, the Spine code (and so the status) it answers with, and what each profile does with
// it. Stages and the FHIR validators name the rule they apply (pipeline/types.ts reject(), rules/policy.ts
// RulePolicy.fire()); the request lifecycle is the one place a rule becomes a response or a report. The README's rule
// tables are generated from this list (`npm run docs:rules`, checked by test/rules/catalogue.test.ts).
//
// Classes:
// - security: identity, the certificate → endpoint → ASID → ODS binding, NHS numbers valid and traced, routing
//   demographics matching PDS, the route allowlist, safe parsing and every size and time limit. Always enforced:
//   no profile, mode or per-rule setting can report or switch one off (the config schema refuses it).
// - conformance: shape rules NEMS itself also judges. Each takes enforce, report or off (policy.rules.<id>).
//
// Profiles: `strict` reads the NEMS guide and Spine Core to the letter and enforces every conformance rule (the
// gateway's behaviour before issue 12). `compatible` (shipped) reports the conformance rules real NEMS clients are
// known to break, and takes the wider reading where the sources themselves allow it (`compatibleReading`).
import { SPINE_CODES, type SpineCode } from '../fhir/errors.js';

export type RuleClass = 'security' | 'conformance';
export type RuleAction = 'enforce' | 'report' | 'off';
export const RULE_ACTIONS: readonly RuleAction[] = ['enforce', 'report', 'off'];
export const PROFILES = ['strict', 'compatible'] as const;
export type Profile = (typeof PROFILES)[number];

/** Where a rule is checked: a pipeline stage, the edge (identity, transport), or the request body's validators. */
export type RuleStage = 'edge' | 'route' | 'rate-limit' | 'headers' | 'jwt' | 'mime' | 'read-body' | 'body' | 'nhs-numbers' | 'upstream';

export interface RuleDefinition {
  readonly id: string;
  readonly class: RuleClass;
  readonly stage: RuleStage;
  /** What the rule checks, in a line. */
  readonly checks: string;
  /** Its public source: a URL or `docs/specification.md §x.y`. */
  readonly source: string;
  /** The Spine code a violation answers with (the catalogue status follows from it). */
  readonly code: SpineCode;
  /** Other codes or statuses the rule answers with in named cases (configuration or outcome). */
  readonly otherAnswers?: string;
  /** Conformance rules: the action under `compatible` (strict always enforces). */
  readonly compatible?: RuleAction;
  /** Conformance rules whose reading differs by profile: what strict accepts and what compatible accepts, and why. */
  readonly strictReading?: string;
  readonly compatibleReading?: string;
  /** Why compatible reports (or reads wider): the evidence. */
  readonly evidence?: string;
}

const IG = 'https://developer.nhs.uk/apis/ems-beta';
const SPINE_CORE = 'https://developer.nhs.uk/apis/spine-core';
const COHORT_MANAGER = 'NHSDigital/dtos-cohort-manager (DemographicServices/ManageNemsSubscription/NemsSubscriptionManager.cs, Shared/Common/NemsHttpClientFunction.cs)';
const PRM_SCRIPT = 'nhsconnect/prm-deductions-mesh-forwarder (nems-subscriber/create_subscription.py and generate_auth_token.py, commit 476ff9c)';

/** The catalogue, in the order the pipeline applies the rules. */
export const RULES = [
  // -- edge: identity and transport ---------------------------------------------------------------------------
  { id: 'tls.client-identity', class: 'security', stage: 'edge', code: 'ACCESS_DENIED', source: 'docs/specification.md §5.2',
    checks: 'The verified client certificate names a registered Spine endpoint (FQDN, CN, pinned fingerprint).' },
  { id: 'tls.client-key-size', class: 'security', stage: 'edge', code: 'ACCESS_DENIED', source: 'docs/specification.md §5.2',
    checks: 'The client certificate key meets server.tls.clientKeyMinimum.' },
  { id: 'tls.certificate-status', class: 'security', stage: 'edge', code: 'ACCESS_DENIED', source: 'https://www.rfc-editor.org/rfc/rfc6960',
    checks: 'An OCSP responder, when configured, does not call the client certificate revoked or unknown.',
    otherAnswers: '503 SERVICE_UNAVAILABLE when the responder cannot answer (ocsp.policy hard-fail)' },
  // -- route ----------------------------------------------------------------------------------------------------
  { id: 'route.safe-path', class: 'security', stage: 'route', code: 'NO_RECORD_FOUND', source: 'docs/specification.md §1.2',
    checks: 'The request target is a plain origin-form path (no dot segments, encoded slashes, control characters).' },
  { id: 'route.allowlist', class: 'security', stage: 'route', code: 'NO_RECORD_FOUND', source: 'docs/specification.md §1.2',
    checks: 'The path is a NEMS route below nems.pathPrefix.' },
  { id: 'route.method', class: 'security', stage: 'route', code: 'BAD_REQUEST', source: 'docs/specification.md §3.2',
    checks: 'The method is one the NEMS route takes (Allow lists them).' },
  { id: 'route.unsupported-interaction', class: 'security', stage: 'route', code: 'NOT_IMPLEMENTED', source: 'docs/specification.md §1.9',
    checks: 'Not a FHIR interaction NEMS does not offer (subscription search, update).' },
  { id: 'limits.rate', class: 'security', stage: 'rate-limit', code: 'TOO_MANY_REQUESTS', source: 'docs/specification.md §8',
    checks: 'The (ASID, operation) token bucket has a token (rateLimits).' },
  // -- headers --------------------------------------------------------------------------------------------------
  { id: 'headers.required', class: 'security', stage: 'headers', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §1.3',
    checks: 'fromASID, toASID, InteractionID and Authorization are each sent exactly once.' },
  { id: 'headers.asid-format', class: 'security', stage: 'headers', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §1.3',
    checks: 'fromASID and toASID are 12-digit ASIDs.' },
  { id: 'headers.authorization-scheme', class: 'conformance', stage: 'headers', code: 'MISSING_OR_INVALID_HEADER', source: `${SPINE_CORE}/security_jwt.html`,
    checks: 'The Authorization scheme is Bearer.', compatible: 'enforce',
    strictReading: '`Bearer` written exactly so, as every Spine example writes it.',
    compatibleReading: 'Any case (`bearer`, `BEARER`): RFC 7235 §2.1 makes auth schemes case-insensitive.',
    evidence: 'RFC 7235 §2.1' },
  { id: 'headers.bearer-token', class: 'security', stage: 'headers', code: 'MISSING_OR_INVALID_HEADER', source: `${SPINE_CORE}/security_jwt.html`,
    checks: 'Authorization carries one token after the scheme.' },
  { id: 'headers.interaction-id', class: 'security', stage: 'headers', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §3.2',
    checks: 'InteractionID names the requested NEMS operation (legacy publish forms only with nems.acceptLegacyPublishInteractionIds).' },
  { id: 'headers.from-asid', class: 'security', stage: 'headers', code: 'ASID_CHECK_FAILED', source: 'docs/specification.md §5.1',
    checks: 'fromASID is an ASID registered for the client certificate\'s endpoint.' },
  { id: 'headers.to-asid', class: 'conformance', stage: 'headers', code: 'ASID_CHECK_FAILED', source: 'docs/specification.md §9.3',
    checks: 'toASID is a NEMS ASID: nems.toAsid or one of nems.toAsids.', compatible: 'report',
    evidence: `Cohort Manager sends its own ASID (config example 200000002527, "usually same as FromAsid"; ${COHORT_MANAGER}); the PRM script sends 111111111111 (${PRM_SCRIPT}). Both reached NEMS.` },
  { id: 'headers.asid-interaction', class: 'security', stage: 'headers', code: 'ASID_CHECK_FAILED', source: 'docs/specification.md §5.4',
    checks: 'The fromASID is registered for the InteractionID.' },
  // -- jwt ------------------------------------------------------------------------------------------------------
  { id: 'jwt.size', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.1',
    checks: 'The token is at most nems.jwt.maxTokenBytes, checked before decoding.' },
  { id: 'jwt.structure', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.1',
    checks: 'Three base64url sections, a JSON header with alg, a JSON claims set.' },
  { id: 'jwt.algorithm', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.1',
    checks: 'alg none (empty signature) only for nems.jwt.unsignedOperations; signed only as configured; never HS*.' },
  { id: 'jwt.signature', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.1',
    checks: 'A signed token verifies against a configured key.' },
  { id: 'jwt.signing-keys', class: 'security', stage: 'jwt', code: 'SERVICE_UNAVAILABLE', source: 'docs/specification.md §4.1',
    checks: 'The configured JWKS could be fetched (fail closed).' },
  { id: 'jwt.signed-issuer', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.2',
    checks: 'A signed token\'s iss is one of nems.jwt.signed.issuers, when set.' },
  { id: 'jwt.claim-types', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.5',
    checks: 'requesting_* / requested_* claims are Spine Core identifier strings, not FHIR resources (GP Connect).', compatible: 'enforce' },
  { id: 'jwt.exp', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.3',
    checks: 'exp is present, whole seconds, and not past (with nems.jwt.clockSkewSeconds).' },
  { id: 'jwt.iat', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.3',
    checks: 'iat is present, whole seconds, not in the future, and before exp.' },
  { id: 'jwt.max-lifetime', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §9.19',
    checks: 'exp − iat is at most nems.jwt.maxLifetimeSeconds (Spine Core: 5 minutes).', compatible: 'report',
    evidence: `Cohort Manager mints exp = now + 1 hour (exp − iat = 3600; ${COHORT_MANAGER}), and its README documents that token shape for NEMS.` },
  { id: 'jwt.iss', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.2',
    checks: 'iss is a non-empty string.', compatible: 'report',
    evidence: `The PRM script sends iss '' (${PRM_SCRIPT}).` },
  { id: 'jwt.sub', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.4',
    checks: 'sub is present and equals requesting_user, or requesting_system when there is no user.', compatible: 'enforce' },
  { id: 'jwt.aud', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.2',
    checks: 'aud is present (one of nems.jwt.audiences when set).', compatible: 'enforce' },
  { id: 'jwt.reason-for-request', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: `${SPINE_CORE}/security_jwt.html`,
    checks: 'reason_for_request is present (nems.jwt.requireReasonForRequest) and an accepted value.', compatible: 'enforce',
    strictReading: 'One of nems.jwt.allowedReasonsForRequest (default directcare).',
    compatibleReading: 'Also the three Spine Core values directcare, secondaryuses, patientaccess.',
    evidence: `Spine Core lists the three values; the PRM script sends secondaryuses (${PRM_SCRIPT}).` },
  { id: 'jwt.scope', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.4',
    checks: 'scope holds the operation\'s scope.', compatible: 'enforce',
    strictReading: 'Exactly the operation\'s one scope.',
    compatibleReading: 'A space-separated list that holds the operation\'s scope (Spine Core: "a space-separated list").',
    evidence: `${SPINE_CORE}/security_jwt.html` },
  { id: 'jwt.requesting-system', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.4',
    checks: 'requesting_system is `https://fhir.nhs.uk/Id/accredited-system|<ASID>` and names the fromASID.' },
  { id: 'jwt.organisation-present', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §9.4',
    checks: 'An organisation claim is present, in a spelling nems.jwt.organisationClaim accepts.', compatible: 'report',
    evidence: `Cohort Manager's token has no requesting_organisation (${COHORT_MANAGER}).` },
  { id: 'jwt.organisation-ods', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.4',
    checks: 'A present organisation claim is `…/ods-organization-code|<ODS>` naming an ODS code of the ASID; both spellings agree.' },
  { id: 'jwt.requesting-user', class: 'conformance', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §4.2',
    checks: 'requesting_user, when present, is `<system>|<id>`.', compatible: 'enforce' },
  { id: 'jwt.requesting-patient', class: 'security', stage: 'jwt', code: 'MISSING_OR_INVALID_HEADER', source: 'docs/specification.md §9.7',
    checks: 'requesting_patient, when present, is an NHS-number identifier (either system); the number joins the NHS-number checks.' },
  // -- mime -----------------------------------------------------------------------------------------------------
  { id: 'mime.content-encoding', class: 'security', stage: 'mime', code: 'UNSUPPORTED_MEDIA_TYPE', source: 'https://www.rfc-editor.org/rfc/rfc9110#section-8.4',
    checks: 'A body has no content coding but identity: the gateway judges only what it can read.' },
  { id: 'mime.content-type', class: 'security', stage: 'mime', code: 'UNSUPPORTED_MEDIA_TYPE', source: 'docs/specification.md §7',
    checks: 'Content-Type, when sent, is once and one of the 8 FHIR types (charset utf-8): the body is parsed as what it says.' },
  { id: 'mime.publish-xml', class: 'security', stage: 'mime', code: 'UNSUPPORTED_MEDIA_TYPE', source: 'docs/specification.md §2.1',
    checks: 'A publish body is XML (the gateway parses publish as XML only).' },
  { id: 'mime.accept', class: 'conformance', stage: 'mime', code: 'NOT_ACCEPTABLE', source: 'docs/specification.md §7',
    checks: 'Accept allows one of the route\'s FHIR types (XML only for publish).', compatible: 'enforce' },
  { id: 'mime.format-parameter', class: 'conformance', stage: 'mime', code: 'NOT_ACCEPTABLE', source: 'docs/specification.md §7',
    checks: '`_format` names a FHIR format the route takes.', compatible: 'enforce' },
  { id: 'mime.format-repeated', class: 'conformance', stage: 'mime', code: 'BAD_REQUEST', source: 'docs/specification.md §7',
    checks: '`_format` is given at most once.', compatible: 'enforce' },
  // -- body -----------------------------------------------------------------------------------------------------
  { id: 'limits.body-size', class: 'security', stage: 'read-body', code: 'PAYLOAD_TOO_LARGE', source: 'docs/specification.md §2.1',
    checks: 'The body is within the operation\'s cap (nems.publishMaxBytes, nems.subscriptionMaxBytes, server.limits.maxBodyBytes).' },
  { id: 'limits.body-time', class: 'security', stage: 'read-body', code: 'BAD_REQUEST', source: 'docs/specification.md §8',
    checks: 'The body arrives within server.limits.requestTimeoutMs.' },
  { id: 'body.unreadable', class: 'security', stage: 'read-body', code: 'BAD_REQUEST', source: 'docs/specification.md §3.2',
    checks: 'The body can be read to its end.' },
  { id: 'body.required', class: 'security', stage: 'read-body', code: 'INVALID_REQUEST_MESSAGE', source: 'docs/specification.md §1.4',
    checks: 'Create and publish carry a body.' },
  { id: 'body.malformed', class: 'security', stage: 'body', code: 'BAD_REQUEST', source: 'docs/specification.md §3.2',
    checks: 'The body is UTF-8 and well-formed XML or JSON.' },
  { id: 'body.unsafe-content', class: 'security', stage: 'body', code: 'INVALID_REQUEST_MESSAGE', source: 'docs/specification.md §8',
    checks: 'No DTD, entities, processing instructions, CDATA or duplicate JSON keys; depth and size within limits.' },
  // -- subscription create ---------------------------------------------------------------------------------------
  { id: 'subscription.resource', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'A FHIR Subscription of only the elements NEMS acts on, each readable (not repeated, of its type, with a value).' },
  { id: 'subscription.id-supplied', class: 'conformance', stage: 'body', code: 'MSG_RESOURCE_ID_FAIL', source: 'docs/specification.md §1.4',
    checks: 'No client-assigned id.', compatible: 'enforce' },
  { id: 'subscription.meta-supplied', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'No meta.versionId or meta.lastUpdated on create.', compatible: 'report',
    evidence: `Cohort Manager sets meta.lastUpdated on every create (${COHORT_MANAGER}).` },
  { id: 'subscription.status', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'status is requested.', compatible: 'enforce' },
  { id: 'subscription.reason', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'reason is present.', compatible: 'enforce' },
  { id: 'subscription.contact', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'Every contact is use work, system url, value the ODS directory URL of an ODS code.', compatible: 'enforce' },
  { id: 'subscription.contact-ods', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'Every contact names an ODS code registered for the requesting ASID.' },
  { id: 'subscription.channel-type', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'channel.type is message.', compatible: 'enforce' },
  { id: 'subscription.mailbox', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'channel.endpoint is a MESH mailbox registered for the ASID, of contact[0]\'s ODS code (standalone core: a mailbox id).' },
  { id: 'subscription.end-future', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.4',
    checks: 'end, when present, lies in the future.', compatible: 'enforce' },
  { id: 'subscription.type-allowed', class: 'security', stage: 'body', code: 'ACCESS_DENIED', source: 'docs/specification.md §5.4',
    checks: 'Explicit or generic is allowed by the ASID\'s NEMS_SUBS_TYPE category bag.' },
  { id: 'subscription.mailbox-workflow', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.8',
    checks: 'Every known event code subscribed to is a workflow the mailbox accepts.', compatible: 'enforce' },
  { id: 'criteria.syntax', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.5',
    checks: 'criteria is present and readable: the prefix, name=value components of known names, explicit xor generic, cardinalities.' },
  { id: 'criteria.nhs-number-system', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §9.7',
    checks: 'Patient.identifier uses an accepted NHS-number system (the number is traced either way).', compatible: 'enforce',
    strictReading: 'Only `http://fhir.nhs.net/Id/nhs-number`, the one NEMS documents.',
    compatibleReading: 'Also `https://fhir.nhs.uk/Id/nhs-number`, the current system of every other NHS API.',
    evidence: `Cohort Manager configures https://fhir.nhs.uk/Id/nhs-number for every environment (${COHORT_MANAGER}, ManageNemsSubscriptionConfig.cs).` },
  { id: 'criteria.event-code', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.4',
    checks: 'Every MessageHeader.event is a known EventType-1 code.', compatible: 'report',
    evidence: `The PRM script subscribed with the retired name pds-change-gp-1 (${PRM_SCRIPT}; docs/specification.md §2.9).` },
  { id: 'criteria.rule-type', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.5',
    checks: 'subscriptionRuleType is one of the documented rule types.', compatible: 'report',
    evidence: `The PRM script used subscriptionRuleType=HSS (${PRM_SCRIPT}).` },
  { id: 'criteria.service-type', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.5',
    checks: 'serviceType is GP, CHO, UHV or EPCHR.', compatible: 'enforce' },
  { id: 'criteria.age', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.5',
    checks: 'Patient.age is one or two prefixed bounds of whole years leaving a non-empty range.', compatible: 'enforce' },
  { id: 'criteria.gp-registration', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.5',
    checks: 'GPRegistration is RegisteredOnly or UnregisteredOnly, and not with a GP-based rule type.', compatible: 'enforce' },
  { id: 'criteria.organisation-code', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.5',
    checks: 'Organization.identifier is a code (a country code for COUNTRYCODE).', compatible: 'enforce' },
  { id: 'criteria.tag', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §1.5',
    checks: 'tag is at most 100 of letters, digits and - _ | ,.', compatible: 'enforce' },
  // -- publish --------------------------------------------------------------------------------------------------
  { id: 'event.structure', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.3',
    checks: 'A FHIR message Bundle: entries of one resource each, the MessageHeader first and only once.' },
  { id: 'event.code', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.4',
    checks: 'MessageHeader.event is a publishable EventType-1 code, the event the InteractionID names (and the ASID is registered for).' },
  { id: 'event.header-id', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.3',
    checks: 'MessageHeader.id is a UUID.', compatible: 'enforce' },
  { id: 'event.header-elements', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.3',
    checks: 'MessageHeader source, responsible and focus are present once each.', compatible: 'enforce' },
  { id: 'event.message-event-type', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.5',
    checks: 'The messageEventType extension is new, update or delete, as the event type allows.', compatible: 'enforce' },
  { id: 'event.routing-demographics', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.3',
    checks: 'Routing demographics carry one NHS number, and (but for a minimal screening delete) one name and one birthDateTime to compare with PDS.' },
  { id: 'event.name-use', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.3',
    checks: 'The routing name\'s use, when given, is official.', compatible: 'enforce' },
  { id: 'event.nhs-numbers', class: 'security', stage: 'body', code: 'INVALID_RESOURCE', source: 'docs/specification.md §2.10',
    checks: 'Every NHS-number identifier has one value, and the message carries at most 32 of them.' },
  { id: 'fhir.datetime-format', class: 'conformance', stage: 'body', code: 'INVALID_RESOURCE', source: 'https://hl7.org/fhir/STU3/datatypes.html#dateTime',
    checks: 'Every FHIR date, dateTime and instant matches the STU3 expression and is a real calendar date.', compatible: 'report',
    evidence: `The NEMS guide's own nipe-outcome-1-update example has timestamp +58:00 (${IG}); a publisher copying it still reaches NEMS.` },
  // -- NHS numbers and PDS --------------------------------------------------------------------------------------
  { id: 'nhs-number.valid', class: 'security', stage: 'nhs-numbers', code: 'INVALID_NHS_NUMBER', source: 'docs/specification.md §6.3',
    checks: 'Every NHS number is 10 digits passing modulus 11 (and not one repeated digit).' },
  { id: 'limits.nhs-numbers', class: 'security', stage: 'nhs-numbers', code: 'INVALID_REQUEST_MESSAGE', source: 'docs/specification.md §6.1',
    checks: 'At most 16 distinct NHS numbers per request (bounds the PDS work).' },
  { id: 'pds.traced', class: 'security', stage: 'nhs-numbers', code: 'PATIENT_NOT_FOUND', source: 'docs/specification.md §6.1',
    checks: 'PDS holds a record for every NHS number.', otherAnswers: '400 INVALID_NHS_NUMBER with pds.policy.notFound' },
  { id: 'pds.superseded', class: 'security', stage: 'nhs-numbers', code: 'INVALID_NHS_NUMBER', source: 'docs/specification.md §6.1',
    checks: 'No NHS number PDS has superseded (pds.policy.superseded allow counts it as traced).' },
  { id: 'pds.invalidated', class: 'security', stage: 'nhs-numbers', code: 'INVALID_NHS_NUMBER', source: 'docs/specification.md §6.1',
    checks: 'No NHS number whose PDS record is invalidated (pds.policy.invalidated allow counts it as traced).' },
  { id: 'pds.invalid-nhs-number', class: 'security', stage: 'nhs-numbers', code: 'INVALID_NHS_NUMBER', source: 'docs/specification.md §6.2',
    checks: 'PDS does not call the NHS number invalid (PDS 400).' },
  { id: 'pds.restricted', class: 'security', stage: 'nhs-numbers', code: 'NO_PATIENT_CONSENT', source: 'docs/specification.md §2.2',
    checks: 'No event published (or, with pds.policy.restrictedOnSubscribe, subscription made) for a restricted (S-flag) patient.' },
  { id: 'pds.demographics-match', class: 'security', stage: 'nhs-numbers', code: 'INVALID_PATIENT_DEMOGRAPHICS', source: 'docs/specification.md §6.1',
    checks: 'Routing name and birthDateTime match the PDS record (pds.policy.demographicsMismatch, demographicsFields).' },
  { id: 'pds.available', class: 'security', stage: 'nhs-numbers', code: 'SERVICE_UNAVAILABLE', source: 'docs/specification.md §6.2',
    checks: 'PDS answered in time (fail closed: 503 with Retry-After).' },
  // -- the gateway itself -----------------------------------------------------------------------------------------
  { id: 'upstream.reachable', class: 'security', stage: 'upstream', code: 'BAD_GATEWAY', source: 'docs/specification.md §3.2',
    checks: 'The upstream NEMS accepted the forwarded request.', otherAnswers: '504 GATEWAY_TIMEOUT when it does not answer in time' },
  { id: 'gateway.internal', class: 'security', stage: 'edge', code: 'INTERNAL_SERVER_ERROR', source: 'docs/specification.md §3.2',
    checks: 'The gateway processed the request (a stage ran without what an earlier stage provides, or a bug): fail closed.' },
] as const satisfies readonly RuleDefinition[];

export type RuleId = (typeof RULES)[number]['id'];
type ByClass<C extends RuleClass> = Extract<(typeof RULES)[number], { class: C }>['id'];
export type SecurityRuleId = ByClass<'security'>;
export type ConformanceRuleId = ByClass<'conformance'>;

const BY_ID: ReadonlyMap<string, RuleDefinition> = new Map(RULES.map((rule) => [rule.id, rule]));

export const RULE_IDS: readonly RuleId[] = RULES.map((rule) => rule.id);
export const CONFORMANCE_RULE_IDS = RULES.filter((rule) => rule.class === 'conformance').map((rule) => rule.id) as readonly ConformanceRuleId[];
export const SECURITY_RULE_IDS = RULES.filter((rule) => rule.class === 'security').map((rule) => rule.id) as readonly SecurityRuleId[];

export function ruleDefinition(id: RuleId): RuleDefinition {
  return BY_ID.get(id)!;
}

export function isRuleId(id: string): id is RuleId {
  return BY_ID.has(id);
}

/** The status a rule answers with (the catalogue code's), unless a violation overrides it. */
export function ruleStatus(id: RuleId): number {
  return SPINE_CODES[ruleDefinition(id).code].status;
}

/** What a profile does with a rule before mode and per-rule settings: security always enforces. */
export function profileAction(id: RuleId, profile: Profile): RuleAction {
  const rule = ruleDefinition(id);
  if (rule.class === 'security' || profile === 'strict') return 'enforce';
  return rule.compatible ?? 'enforce';
}
