// The local overlay of the SDS-backed registry (registry.kind sds, registry.path): the NEMS-specific parts SDS does
// not hold — which organisations to read, MESH mailboxes and their workflow ids, the NEMS_SUBS_TYPE category bag,
// certificate pins and upstream client certificates (docs/specification.md §5.4, §5.5).
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { LEGACY_WORKFLOW_ALIASES } from '../nems/events.js';
import { asidSchema, fingerprint, fqdn, mailboxSchema, normaliseFingerprint, odsCode, readRegistryYaml, RegistryError } from './file-registry.js';
import type { MeshMailbox, SubscriptionType, UpstreamClientCertificate } from './types.js';

const overlaySchema = z.strictObject({
  /** ODS codes (nhsIDCode) whose accredited systems and MHS records are read from SDS. */
  odsCodes: z.array(odsCode).min(1),
  /** Optional SHA-256 pins per endpoint FQDN. */
  endpoints: z.array(z.strictObject({ fqdn, fingerprints: z.array(fingerprint).min(1) })).default([]),
  asids: z
    .array(
      z.strictObject({
        asid: asidSchema,
        subscriptionTypes: z.array(z.enum(['explicit', 'generic'])).default([]),
        mailboxes: z.array(mailboxSchema).default([]),
        upstreamClientCertificate: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
      }),
    )
    .default([]),
});

export interface OverlayAsid {
  readonly subscriptionTypes: readonly SubscriptionType[];
  readonly mailboxes: readonly MeshMailbox[];
  readonly upstreamClientCertificate?: UpstreamClientCertificate;
}

export interface SdsOverlay {
  readonly odsCodes: readonly string[];
  /** Lower-case FQDN → upper-case hex fingerprints. */
  readonly pins: ReadonlyMap<string, readonly string[]>;
  readonly asids: ReadonlyMap<string, OverlayAsid>;
}

/** Parses and cross-checks an overlay document; throws RegistryError naming each bad entry. */
export function parseSdsOverlay(raw: unknown, file: string): SdsOverlay {
  const result = overlaySchema.safeParse(raw);
  if (!result.success) {
    throw new RegistryError(file, result.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`));
  }
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const problems: string[] = [];
  const pins = new Map<string, string[]>();
  result.data.endpoints.forEach((e, i) => {
    const name = e.fqdn.toLowerCase();
    if (pins.has(name)) problems.push(`endpoints.${i}.fqdn: '${name}' is listed twice`);
    pins.set(name, e.fingerprints.map(normaliseFingerprint));
  });
  const asids = new Map<string, OverlayAsid>();
  // A MESH mailbox belongs to one organisation: two ASIDs naming it would let one deliver into the other's.
  const seenMailbox = new Set<string>();
  result.data.asids.forEach((a, j) => {
    if (asids.has(a.asid)) problems.push(`asids.${j}.asid: ${a.asid} is listed twice`);
    a.mailboxes.forEach((m, k) => {
      if (seenMailbox.has(m.id.toUpperCase())) problems.push(`asids.${j}.mailboxes.${k}.id: ${m.id} is listed twice`);
      seenMailbox.add(m.id.toUpperCase());
    });
    asids.set(a.asid, {
      subscriptionTypes: a.subscriptionTypes,
      mailboxes: a.mailboxes.map((m) => ({ ...m, workflowIds: m.workflowIds.map((w) => LEGACY_WORKFLOW_ALIASES[w] ?? w) })),
      ...(a.upstreamClientCertificate
        ? { upstreamClientCertificate: { cert: abs(a.upstreamClientCertificate.cert), key: abs(a.upstreamClientCertificate.key) } }
        : {}),
    });
  });
  if (problems.length) throw new RegistryError(file, problems);
  return { odsCodes: [...new Set(result.data.odsCodes)], pins, asids };
}

export function loadSdsOverlay(file: string): SdsOverlay {
  return readRegistryYaml(file, parseSdsOverlay);
}
