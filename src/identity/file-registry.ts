// The YAML endpoint registry (config/endpoints.yaml): certificate FQDN / fingerprint → endpoint → ASIDs.
// Implements EndpointRegistry so an SDS-backed registry can replace it without touching the request path.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ALL_WORKFLOW_IDS, LEGACY_WORKFLOW_ALIASES } from '../nems/events.js';
import { ASID_PATTERN, isCanonicalOdsCode, MAILBOX_ID_PATTERN } from '../nems/identifiers.js';
import { REGISTRABLE_INTERACTION_IDS } from '../nems/interactions.js';
import type { AsidRegistration, Endpoint, EndpointLookup, EndpointRegistry, PeerCertificateIdentity } from './types.js';

const knownWorkflowIds = new Set([...ALL_WORKFLOW_IDS, ...Object.keys(LEGACY_WORKFLOW_ALIASES)]);
/** Every InteractionID a registry may list (current and legacy publish forms); the SDS registry filters by it too. */
export const knownInteractions: ReadonlySet<string> = REGISTRABLE_INTERACTION_IDS;

export const fqdn = z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/i, 'must be a DNS name');
export const odsCode = z.string().refine(isCanonicalOdsCode, 'must be an ODS code (1 to 9 upper-case letters or digits)');
export const fingerprint = z.string().regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'must be a SHA-256 fingerprint (64 hex digits)');
export const asidSchema = z.string().regex(ASID_PATTERN, 'must be a 12-digit ASID');
export const mailboxSchema = z.strictObject({
  id: z.string().regex(MAILBOX_ID_PATTERN, 'must be a MESH mailbox id'),
  odsCode,
  workflowIds: z.array(z.string().refine((w) => knownWorkflowIds.has(w), 'is not a NEMS workflow ID')).default([]),
});

const registryFileSchema = z.strictObject({
  endpoints: z.array(
    z.strictObject({
      fqdn,
      fingerprints: z.array(fingerprint).default([]),
      asids: z
        .array(
          z.strictObject({
            asid: asidSchema,
            odsCodes: z.array(odsCode).min(1),
            interactions: z.array(z.string().refine((i) => REGISTRABLE_INTERACTION_IDS.has(i), 'is not a NEMS InteractionID')),
            subscriptionTypes: z.array(z.enum(['explicit', 'generic'])).default([]),
            mailboxes: z.array(mailboxSchema).default([]),
            upstreamClientCertificate: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
          }),
        )
        .min(1),
    }),
  ),
});

export class RegistryError extends Error {
  constructor(readonly file: string, readonly problems: readonly string[]) {
    super(`${file}: invalid endpoint registry:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RegistryError';
  }
}

export function normaliseFingerprint(value: string): string {
  return value.replace(/:/g, '').toUpperCase();
}

/** Parses and cross-checks a registry document. Throws RegistryError naming each bad entry. */
export function parseRegistry(raw: unknown, file: string): Endpoint[] {
  const result = registryFileSchema.safeParse(raw);
  if (!result.success) {
    throw new RegistryError(file, result.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`));
  }
  const base = dirname(resolve(file));
  const problems: string[] = [];
  const seenFqdn = new Set<string>();
  const seenAsid = new Set<string>();
  // A MESH mailbox belongs to one organisation: two registrations naming it would let one deliver into the other's.
  const seenMailbox = new Set<string>();
  const endpoints: Endpoint[] = result.data.endpoints.map((entry, i) => {
    const name = entry.fqdn.toLowerCase();
    if (seenFqdn.has(name)) problems.push(`endpoints.${i}.fqdn: '${name}' is registered twice`);
    seenFqdn.add(name);
    const asids = new Map<string, AsidRegistration>();
    entry.asids.forEach((a, j) => {
      if (seenAsid.has(a.asid)) problems.push(`endpoints.${i}.asids.${j}.asid: ${a.asid} is registered twice`);
      seenAsid.add(a.asid);
      a.mailboxes.forEach((m, k) => {
        if (seenMailbox.has(m.id.toUpperCase())) problems.push(`endpoints.${i}.asids.${j}.mailboxes.${k}.id: ${m.id} is registered twice`);
        seenMailbox.add(m.id.toUpperCase());
        if (!a.odsCodes.includes(m.odsCode)) {
          problems.push(`endpoints.${i}.asids.${j}.mailboxes.${k}.odsCode: ${m.odsCode} is not one of the ASID's odsCodes`);
        }
      });
      const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
      asids.set(a.asid, {
        asid: a.asid,
        odsCodes: a.odsCodes,
        interactions: a.interactions,
        subscriptionTypes: a.subscriptionTypes,
        mailboxes: a.mailboxes.map((m) => ({ ...m, workflowIds: m.workflowIds.map((w) => LEGACY_WORKFLOW_ALIASES[w] ?? w) })),
        ...(a.upstreamClientCertificate
          ? { upstreamClientCertificate: { cert: abs(a.upstreamClientCertificate.cert), key: abs(a.upstreamClientCertificate.key) } }
          : {}),
      });
    });
    return { fqdn: name, fingerprints: entry.fingerprints.map(normaliseFingerprint), asids };
  });
  if (problems.length) throw new RegistryError(file, problems);
  return endpoints;
}

export function loadRegistryFile(file: string): Endpoint[] {
  return readRegistryYaml(file, parseRegistry);
}

/** Reads a registry YAML file (this one, or the SDS registry's overlay) and hands the document to `parse`. */
export function readRegistryYaml<T>(file: string, parse: (raw: unknown, file: string) => T): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RegistryError(file, [`cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 1000 });
  } catch (err) {
    // The first line names the problem and its position; the rest quotes the file, which stays out of logs.
    throw new RegistryError(file, [`YAML syntax: ${(err as Error).message.split('\n')[0]}`]);
  }
  return parse(raw, file);
}

export class FileEndpointRegistry implements EndpointRegistry {
  #byFqdn = new Map<string, Endpoint>();
  #endpoints: readonly Endpoint[] = [];
  #generation = 0;

  constructor(readonly file: string) {
    this.#install(loadRegistryFile(file));
  }

  get generation(): number {
    return this.#generation;
  }

  /** Re-reads the file; on any problem the registry in force is kept and the error is thrown. */
  reload(): void {
    this.#install(loadRegistryFile(this.file));
  }

  #install(endpoints: Endpoint[]): void {
    this.#byFqdn = new Map(endpoints.map((e) => [e.fqdn, e]));
    this.#endpoints = endpoints;
    this.#generation++;
  }

  endpoints(): readonly Endpoint[] {
    return this.#endpoints;
  }

  resolve(peer: PeerCertificateIdentity): EndpointLookup {
    return resolveEndpoint(this.#byFqdn, peer);
  }
}

/**
 * RFC 6125: SAN dNSNames when present, else the subject CN. Two names resolving to different endpoints is
 * ambiguous and denied. Spine requires CN = FQDN (docs/specification.md §5.2, §5.5), so a certificate whose SAN names a registered
 * endpoint but whose CN names something else is denied too ('cn-mismatch').
 */
export function resolveEndpoint(byFqdn: ReadonlyMap<string, Endpoint>, peer: PeerCertificateIdentity): EndpointLookup {
  const names = peer.dnsNames.length ? peer.dnsNames : peer.subjectCn ? [peer.subjectCn] : [];
  if (!names.length) return { ok: false, reason: 'no-identity' };
  let found: Endpoint | undefined;
  for (const name of names) {
    const endpoint = byFqdn.get(name.toLowerCase());
    if (!endpoint) continue;
    if (found && found !== endpoint) return { ok: false, reason: 'unregistered-fqdn' };
    found = endpoint;
  }
  if (!found) return { ok: false, reason: 'unregistered-fqdn' };
  if (peer.subjectCn !== undefined && peer.subjectCn.toLowerCase() !== found.fqdn) return { ok: false, reason: 'cn-mismatch' };
  if (found.fingerprints.length && !found.fingerprints.includes(peer.fingerprint256)) return { ok: false, reason: 'fingerprint-mismatch' };
  return { ok: true, endpoint: found };
}
