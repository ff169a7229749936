// NEMS identifiers: the naming systems Spine uses and the shape of every identifier a NEMS request carries
// (docs/specification.md §5.1, §8; Spine Core https://developer.nhs.uk/apis/spine-core/), grouped by identifier.
// Each is defined here once; the stages, the registry loader, the config schema and the embedded core import it.
// The NHS number's own format and check digit are in nhs-number.ts.
import { randomUUID } from 'node:crypto';

// ---- ASID (Accredited System ID) ------------------------------------------------------------------------------

/** ASIDs in the JWT requesting_system claim. */
export const ACCREDITED_SYSTEM = 'https://fhir.nhs.uk/Id/accredited-system';
/** 12 digits in every Spine example (docs/specification.md §5.1). */
export const ASID_PATTERN = /^\d{12}$/;

export function isAsid(value: string): boolean {
  return ASID_PATTERN.test(value);
}

// ---- ODS code -------------------------------------------------------------------------------------------------

export const ODS_ORGANIZATION_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
/** A Subscription's contact names its organisation by this URL plus the ODS code (docs/specification.md §1.4). */
export const ODS_ORGANIZATION_URL_PREFIX = 'https://directory.spineservices.nhs.uk/STU3/Organization/';
/**
 * "1 to 9 alphanumeric characters" (NHS Digital guidance, docs/specification.md §8). ICB, local authority and ONS
 * country codes in generic subscription criteria have the same shape.
 */
export const ODS_CODE_PATTERN = /^[A-Za-z0-9]{1,9}$/;

export function isOdsCode(value: string): boolean {
  return ODS_CODE_PATTERN.test(value);
}

/** An ODS code as ODS publishes it, upper case: the registry stores codes so, and every comparison is exact. */
export function isCanonicalOdsCode(value: string): boolean {
  return ODS_CODE_PATTERN.test(value) && value === value.toUpperCase();
}

// ---- NHS number and SDS user systems --------------------------------------------------------------------------

/** NHS number identifier system of events, PDS and Patient resources (docs/specification.md §8). */
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
/** The older NHS number system that subscription criteria and the JWT requesting_patient claim use (docs/specification.md §1.5, §9.7). */
export const LEGACY_NHS_NUMBER_SYSTEM = 'http://fhir.nhs.net/Id/nhs-number';
/** SDS role profile ids in the JWT requesting_user claim. */
export const SDS_ROLE_PROFILE_SYSTEM = 'https://fhir.nhs.uk/Id/sds-role-profile-id';

// ---- MESH mailbox id ------------------------------------------------------------------------------------------

/**
 * NEMS defines no format (docs/specification.md §8, the one example is `Mailbox1234`): letters, digits, `_` and
 * `-`, starting with a letter or digit, up to 64, so an id is always a safe file name.
 */
export const MAILBOX_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function isMailboxId(value: string): boolean {
  return MAILBOX_ID_PATTERN.test(value);
}

// ---- Subscription id ------------------------------------------------------------------------------------------

/**
 * A FHIR logical id as a subscription path segment: NEMS issues 32 lower-case hex digits, 2018 issued a hyphenated
 * UUID (docs/specification.md §1.2). Anything else is not a subscription address.
 */
export const SUBSCRIPTION_ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
/** The logical ids NEMS issues today, and so the embedded core: 32 lower-case hex digits. */
export const ISSUED_SUBSCRIPTION_ID_PATTERN = /^[0-9a-f]{32}$/;

// ---- Request id -----------------------------------------------------------------------------------------------

/** An X-Request-ID the gateway and the core take from a client (else they make a UUID): 1–128 safe characters. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id to answer and forward with: the client's X-Request-ID when it is one value of the safe shape, else a new UUID. */
export function pickRequestId(value: unknown): string {
  return typeof value === 'string' && REQUEST_ID_PATTERN.test(value) ? value : randomUUID();
}
