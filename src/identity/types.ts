// The endpoint registry model: the local stand-in for SDS (docs/specification.md §5.3–5.5).

export type SubscriptionType = 'explicit' | 'generic';

export interface MeshMailbox {
  readonly id: string;
  /** The customer ODS code the mailbox belongs to (docs/specification.md §2.8). */
  readonly odsCode: string;
  /** MESH workflow IDs the mailbox accepts; empty means not restricted by the registry. */
  readonly workflowIds: readonly string[];
}

export interface UpstreamClientCertificate {
  readonly cert: string;
  readonly key: string;
}

export interface AsidRegistration {
  readonly asid: string;
  /** ODS codes this ASID acts for (nhsIdCode plus nhsAsClient). */
  readonly odsCodes: readonly string[];
  /** InteractionIDs this ASID may perform (nhsAsSvcIA). */
  readonly interactions: readonly string[];
  /** Category bag NEMS_SUBS_TYPE. */
  readonly subscriptionTypes: readonly SubscriptionType[];
  readonly mailboxes: readonly MeshMailbox[];
  /** Client certificate the gateway presents upstream on this ASID's behalf (absolute paths). */
  readonly upstreamClientCertificate?: UpstreamClientCertificate;
}

export interface Endpoint {
  /** Endpoint FQDN: the certificate CN / SAN dNSName. Lower case. */
  readonly fqdn: string;
  /** Optional SHA-256 fingerprint pins, upper-case hex without separators. Empty means not pinned. */
  readonly fingerprints: readonly string[];
  readonly asids: ReadonlyMap<string, AsidRegistration>;
}

/** What the TLS edge knows about a verified client certificate. */
export interface PeerCertificateIdentity {
  readonly subjectCn?: string;
  readonly dnsNames: readonly string[];
  /** SHA-256 of the DER certificate, upper-case hex without separators. */
  readonly fingerprint256: string;
}

/** What the TLS edge knows about the connection a request came on: facts, never the socket. */
export interface PeerFacts {
  /** The client certificate OpenSSL verified; undefined when none was verified. */
  readonly certificate?: PeerCertificateIdentity;
  /** The client's address, for the Forwarded header. */
  readonly remoteAddress?: string;
}

/** Why a client certificate resolved to no registered endpoint. */
export const IDENTITY_REJECTION_REASONS = ['unregistered-fqdn', 'cn-mismatch', 'fingerprint-mismatch', 'no-identity'] as const;
export type IdentityRejectionReason = (typeof IDENTITY_REJECTION_REASONS)[number];

export type EndpointLookup =
  | { readonly ok: true; readonly endpoint: Endpoint }
  | { readonly ok: false; readonly reason: IdentityRejectionReason };

/** Resolves a client certificate to a registered endpoint. A file registry today; SDS could implement this too. */
export interface EndpointRegistry {
  resolve(peer: PeerCertificateIdentity): EndpointLookup;
  /** Every registered endpoint (for metrics, admin and the demo). */
  endpoints(): readonly Endpoint[];
  /** Bumped on every successful reload, so per-connection identity caches can be invalidated. */
  readonly generation: number;
}
