// The one Spine ErrorOrWarning catalogue (docs/specification.md §3.2). Every rejection the gateway or the embedded core
// produces names a code from this table; the HTTP status, severity, issue type and display come from here only.

export const SPINE_CODE_SYSTEM = 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1';
export const SPINE_OO_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/Spine-OperationOutcome-1';

export type IssueSeverity = 'fatal' | 'error' | 'warning' | 'information';

export interface SpineCodeEntry {
  readonly status: number;
  readonly severity: IssueSeverity;
  /** FHIR issue-type code (http://hl7.org/fhir/issue-type). */
  readonly issueType: string;
  readonly display: string;
}

export const SPINE_CODES = {
  // Transport, identity and authorisation
  ACCESS_DENIED: { status: 403, severity: 'error', issueType: 'forbidden', display: 'Access denied' },
  ACCESS_DENIED_SSL: { status: 403, severity: 'error', issueType: 'forbidden', display: 'SSL Protocol or Cipher requirements not met' },
  ASID_CHECK_FAILED: { status: 403, severity: 'error', issueType: 'forbidden', display: 'The sender or receiver ASID is not authorised for this interaction' },
  MISSING_OR_INVALID_HEADER: { status: 400, severity: 'error', issueType: 'structure', display: 'There is a required header missing or invalid' },
  TOO_MANY_REQUESTS: { status: 429, severity: 'error', issueType: 'throttled', display: 'Too many requests' },

  // Request line and payload
  BAD_REQUEST: { status: 400, severity: 'error', issueType: 'invalid', display: 'Bad request' },
  NOT_IMPLEMENTED: { status: 501, severity: 'error', issueType: 'not-supported', display: 'Not implemented' },
  NO_RECORD_FOUND: { status: 404, severity: 'error', issueType: 'not-found', display: 'No record found' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, severity: 'error', issueType: 'invalid', display: 'Unsupported Media Type' },
  NOT_ACCEPTABLE: { status: 406, severity: 'error', issueType: 'not-supported', display: 'Not Acceptable' },
  PAYLOAD_TOO_LARGE: { status: 413, severity: 'error', issueType: 'too-long', display: 'Request entity too large' },
  INVALID_REQUEST_MESSAGE: { status: 400, severity: 'error', issueType: 'value', display: 'Invalid Request Message' },
  MESSAGE_NOT_WELL_FORMED: { status: 400, severity: 'error', issueType: 'structure', display: 'Message not well formed' },
  INVALID_RESOURCE: { status: 422, severity: 'error', issueType: 'invalid', display: 'Invalid validation of resource' },
  INVALID_PARAMETER: { status: 422, severity: 'error', issueType: 'invalid', display: 'Invalid parameter' },
  INVALID_ELEMENT: { status: 400, severity: 'error', issueType: 'value', display: 'Invalid element' },
  INVALID_CODE_SYSTEM: { status: 400, severity: 'error', issueType: 'code-invalid', display: 'Invalid code system' },
  INVALID_CODE_VALUE: { status: 400, severity: 'error', issueType: 'code-invalid', display: 'Invalid code value' },
  INVALID_IDENTIFIER_SYSTEM: { status: 400, severity: 'error', issueType: 'value', display: 'Invalid identifier system' },
  INVALID_IDENTIFIER_VALUE: { status: 400, severity: 'error', issueType: 'value', display: 'Invalid identifier value' },
  MSG_RESOURCE_ID_FAIL: { status: 405, severity: 'error', issueType: 'forbidden', display: 'Client is not allowed to assign an id' },
  DUPLICATE_REJECTED: { status: 422, severity: 'error', issueType: 'duplicate', display: 'Create would lead to creation of a duplicate resource' },

  // Patients and PDS
  INVALID_NHS_NUMBER: { status: 400, severity: 'error', issueType: 'value', display: 'NHS number invalid' },
  INVALID_PATIENT_DEMOGRAPHICS: { status: 400, severity: 'error', issueType: 'business-rule', display: 'Invalid patient demographics' },
  PATIENT_NOT_FOUND: { status: 404, severity: 'error', issueType: 'not-found', display: 'Patient record not found' },
  ORGANISATION_NOT_FOUND: { status: 404, severity: 'error', issueType: 'not-found', display: 'Organisation record not found' },
  NO_PATIENT_CONSENT: { status: 403, severity: 'error', issueType: 'forbidden', display: 'Patient has not provided consent to share data' },

  // Event-type lifecycle (docs/specification.md §2.6)
  DEPRECATED: { status: 200, severity: 'information', issueType: 'informational', display: 'The operation being performed has been deprecated' },
  NO_LONGER_SUPPORTED: { status: 400, severity: 'error', issueType: 'not-supported', display: 'Event message type is no longer supported' },
  WITHDRAWN: { status: 400, severity: 'error', issueType: 'invalid', display: 'Event message type has been withdrawn.' },

  // Upstream and gateway faults
  BAD_GATEWAY: { status: 502, severity: 'error', issueType: 'transient', display: 'Bad gateway: the NEMS service could not be reached' },
  GATEWAY_TIMEOUT: { status: 504, severity: 'error', issueType: 'transient', display: 'Gateway timeout: the NEMS service did not answer in time' },
  SERVICE_UNAVAILABLE: { status: 503, severity: 'error', issueType: 'transient', display: 'Service unavailable' },
  INTERNAL_SERVER_ERROR: { status: 500, severity: 'error', issueType: 'exception', display: 'Internal server error' },
} as const satisfies Record<string, SpineCodeEntry>;

export type SpineCode = keyof typeof SPINE_CODES;

export function spineCode(code: SpineCode): SpineCodeEntry {
  return SPINE_CODES[code];
}

export function isSpineCode(value: string): value is SpineCode {
  return Object.prototype.hasOwnProperty.call(SPINE_CODES, value);
}
