// Metric label vocabularies. Every label value the gateway emits comes from one of these bounded sets, so no
// label can ever carry an NHS number, a JWT, an unregistered FQDN or any other value a client controls.
import { isSpineCode, type SpineCode } from '../fhir/errors.js';
import type { PdsResult } from '../pds/types.js';
import { STAGE_NAMES } from '../pipeline/types.js';
import { isAsid } from '../nems/identifiers.js';
import { NEMS_OPERATIONS } from '../nems/operations.js';
import type { UpstreamFailureKind } from '../upstream/types.js';
import { IDENTITY_REJECTION_REASONS } from '../identity/types.js';
import { RULE_IDS } from '../rules/catalogue.js';

/** What any label value outside its allow-list becomes. */
export const OTHER = 'other';
export type Other = typeof OTHER;

export const ROUTE_LABELS = [...NEMS_OPERATIONS, 'unmatched'] as const;
export type RouteLabel = (typeof ROUTE_LABELS)[number];

export const OUTCOME_LABELS = ['forwarded', 'rejected', 'upstream_error'] as const;
export type OutcomeLabel = (typeof OUTCOME_LABELS)[number];

export const STATUS_CLASS_LABELS = ['2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClassLabel = (typeof STATUS_CLASS_LABELS)[number];

/** Pipeline stages plus 'edge', for rejections the edge makes before or after the pipeline (404 path, 502/504). */
export const STAGE_LABELS = [...STAGE_NAMES, 'edge'] as const;
export type StageLabel = (typeof STAGE_LABELS)[number];

export const OPERATION_LABELS = NEMS_OPERATIONS;

/** The rule catalogue's ids (rules/catalogue.ts), and the actions a fired rule can have taken. */
export const RULE_LABELS = RULE_IDS;
export const RULE_ACTION_LABELS = ['enforce', 'report'] as const;

export const UPSTREAM_ERROR_LABELS = ['unreachable', 'timeout', 'aborted'] as const satisfies readonly UpstreamFailureKind[];

export const PDS_RESULT_LABELS = [
  'traced', 'restricted', 'not-found', 'superseded', 'invalidated', 'invalid', 'unavailable',
] as const satisfies readonly (PdsResult | 'unavailable')[];
export const PDS_CACHE_LABELS = ['hit', 'miss', 'coalesced'] as const;

export const TLS_FAILURE_REASONS = [
  'no_certificate', 'unknown_ca', 'expired', 'revoked', 'protocol', 'timeout', 'other',
] as const;
export type TlsFailureReason = (typeof TLS_FAILURE_REASONS)[number];

export const IDENTITY_REJECTION_LABELS = IDENTITY_REJECTION_REASONS;
export type IdentityRejectionReason = (typeof IDENTITY_REJECTION_LABELS)[number];

/** Components that can be reloaded at run time (SIGHUP or file change). */
export const RELOAD_COMPONENT_LABELS = ['config', 'registry', 'certificate', 'crl', 'pds-data'] as const;
export type ReloadComponent = (typeof RELOAD_COMPONENT_LABELS)[number];

/** Why client-trust material (CA bundle, CRL) was refused: src/edge/trust-material.ts gives these reasons. */
export const TRUST_REFUSAL_REASONS = [
  'ca-unreadable', 'ca-unusable', 'crl-required', 'crl-unreadable', 'crl-unknown-issuer', 'crl-signature',
  'crl-not-yet-valid', 'crl-no-next-update', 'crl-expired', 'ca-without-crl', 'crl-older',
] as const;
export type TrustRefusalReason = (typeof TRUST_REFUSAL_REASONS)[number];
/** Where refused trust material came from, and what the revocation fetchers saw. */
export const TRUST_REFUSAL_LABELS = TRUST_REFUSAL_REASONS;
export const TRUST_SOURCE_LABELS = ['reload', 'distribution-point'] as const;
export const CRL_FETCH_LABELS = ['updated', 'unchanged', 'failed', 'refused'] as const;
export const OCSP_STATUS_LABELS = ['good', 'revoked', 'unknown', 'unavailable'] as const;
export const OCSP_CACHE_LABELS = ['hit', 'miss'] as const;

/** Fixed certificate labels; upstream client certificates add `upstream_client:default|<registered ASID>`. */
export const FIXED_CERTIFICATE_LABELS = ['server', 'ca', 'crl_next_update'] as const;
export type FixedCertificateLabel = (typeof FIXED_CERTIFICATE_LABELS)[number];

/** Returns `value` when it is in `allowed`, else 'other'. */
export function allowListed<T extends string>(allowed: readonly T[], value: unknown): T | Other {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value) ? (value as T) : OTHER;
}

/** A Spine code from the catalogue (a bounded set), else 'other'. */
export function spineCodeLabel(code: unknown): SpineCode | Other {
  return typeof code === 'string' && isSpineCode(code) ? code : OTHER;
}

export function statusClassLabel(status: number): StatusClassLabel | Other {
  if (!Number.isInteger(status) || status < 200 || status > 599) return OTHER;
  return STATUS_CLASS_LABELS[Math.floor(status / 100) - 2]!;
}

/** `upstream_client:<asid>` when the ASID is a 12-digit ASID the caller says is registered. */
export function upstreamClientCertificateLabel(asid: string): string | undefined {
  return isAsid(asid) ? `upstream_client:${asid}` : undefined;
}
