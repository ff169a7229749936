// SDS FHIR R4 API answers → the registry model. Pure functions: the Bundle readers refuse anything not shaped as
// the published API describes it (NHSDigital/spine-directory-service-api specification/), and the joiner turns
// accredited systems (Device: ASID, party key, nhsAsSvcIA, owner) and MHS records (Endpoint: FQDN, party key) into
// certificate FQDN → ASIDs → ODS codes and interactions (docs/specification.md §5.3–5.5).
import { asidSchema, fqdn as fqdnSchema, odsCode as odsSchema } from './file-registry.js';
import type { SdsOverlay } from './sds-overlay.js';
import type { AsidRegistration, Endpoint } from './types.js';

export const SDS_SYSTEMS = {
  ods: 'https://fhir.nhs.uk/Id/ods-organization-code',
  interaction: 'https://fhir.nhs.uk/Id/nhsServiceInteractionId',
  partyKey: 'https://fhir.nhs.uk/Id/nhsMhsPartyKey',
  asid: 'https://fhir.nhs.uk/Id/nhsSpineASID',
  fqdn: 'https://fhir.nhs.uk/Id/nhsMhsFQDN',
} as const;
export const SDS_INTERACTION_EXTENSION = 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId';

/** One accredited system record (nhsAs) as one search returned it. */
export interface SdsDevice {
  readonly asid: string;
  readonly partyKey?: string;
  /** nhsAsSvcIA: every interaction the system is assured for. */
  readonly interactions: readonly string[];
  /** nhsAsClient (Device.owner): the client ODS code. */
  readonly ownerOds?: string;
  /** nhsIDCode: the organisation the search asked for (SDS filters on it; the Device does not repeat it). */
  readonly queriedOds: string;
}

/** One MHS record (nhsMhs) as one search returned it. */
export interface SdsMhs {
  readonly fqdn: string;
  readonly partyKey: string;
  readonly managingOds?: string;
}

export class SdsAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SdsAnswerError';
  }
}

const ASID = { test: (v: string) => asidSchema.safeParse(v).success };
const ODS = { test: (v: string) => odsSchema.safeParse(v).success };
const FQDN = { test: (v: string) => fqdnSchema.safeParse(v).success };
/** SDS party keys: `<ODS>-<digits>` or Spine's own (`YES-0000806`). */
const PARTY_KEY = /^[A-Za-z0-9-]{1,64}$/;
/** Any printable value: SDS holds ebXML service names too (even with stray commas); only NEMS ones are granted. */
const INTERACTION = /^[\x21-\x7e]{1,300}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface BundlePage<T> {
  readonly items: T[];
  /** FHIR paging: the `next` link, when the server has more. */
  readonly next?: string;
  readonly total?: number;
}

/** A searchset Bundle's entries of one resource type, and its `next` link. Anything else is refused. */
function readBundle(body: unknown, resourceType: 'Device' | 'Endpoint'): { resources: Record<string, unknown>[]; next?: string; total?: number } {
  if (!isObject(body) || body.resourceType !== 'Bundle') throw new SdsAnswerError(`SDS ${resourceType} search did not answer a Bundle`);
  if (body.type !== 'searchset') throw new SdsAnswerError(`SDS ${resourceType} Bundle is not a searchset`);
  let total: number | undefined;
  if (body.total !== undefined) {
    if (typeof body.total !== 'number' || !Number.isInteger(body.total) || body.total < 0) throw new SdsAnswerError(`SDS ${resourceType} Bundle.total is malformed`);
    total = body.total;
  }
  let next: string | undefined;
  if (body.link !== undefined) {
    if (!Array.isArray(body.link)) throw new SdsAnswerError(`SDS ${resourceType} Bundle.link is malformed`);
    for (const link of body.link) {
      if (!isObject(link) || typeof link.relation !== 'string' || typeof link.url !== 'string') throw new SdsAnswerError(`SDS ${resourceType} Bundle.link is malformed`);
      if (link.relation === 'next') next = link.url;
    }
  }
  const entries = body.entry === undefined ? [] : body.entry;
  if (!Array.isArray(entries)) throw new SdsAnswerError(`SDS ${resourceType} Bundle.entry is malformed`);
  const resources = entries.map((entry) => {
    const resource = isObject(entry) ? entry.resource : undefined;
    if (!isObject(resource) || resource.resourceType !== resourceType) throw new SdsAnswerError(`SDS ${resourceType} Bundle holds an entry that is not a ${resourceType}`);
    return resource;
  });
  return { resources, ...(next !== undefined ? { next } : {}), ...(total !== undefined ? { total } : {}) };
}

function identifiers(resource: Record<string, unknown>, what: string): Array<{ system: string; value: string }> {
  if (resource.identifier === undefined) return [];
  if (!Array.isArray(resource.identifier)) throw new SdsAnswerError(`SDS ${what}.identifier is malformed`);
  return resource.identifier.map((id) => {
    if (!isObject(id) || typeof id.system !== 'string' || typeof id.value !== 'string') throw new SdsAnswerError(`SDS ${what}.identifier is malformed`);
    return { system: id.system, value: id.value };
  });
}

/** The single value of one identifier system; two different values are refused (LDAP would not hold them). */
function single(ids: Array<{ system: string; value: string }>, system: string, what: string): string | undefined {
  const values = [...new Set(ids.filter((i) => i.system === system).map((i) => i.value))];
  if (values.length > 1) throw new SdsAnswerError(`SDS ${what} carries more than one ${system}`);
  return values[0];
}

function interactionExtensions(resource: Record<string, unknown>, what: string): string[] {
  if (resource.extension === undefined) return [];
  if (!Array.isArray(resource.extension)) throw new SdsAnswerError(`SDS ${what}.extension is malformed`);
  const out: string[] = [];
  for (const ext of resource.extension) {
    if (!isObject(ext) || typeof ext.url !== 'string') throw new SdsAnswerError(`SDS ${what}.extension is malformed`);
    if (ext.url !== SDS_INTERACTION_EXTENSION) continue;
    const identifier = isObject(ext.valueReference) ? ext.valueReference.identifier : undefined;
    if (!isObject(identifier) || identifier.system !== SDS_SYSTEMS.interaction || typeof identifier.value !== 'string' || !INTERACTION.test(identifier.value)) {
      throw new SdsAnswerError(`SDS ${what} has a malformed NhsServiceInteractionId extension`);
    }
    out.push(identifier.value);
  }
  return out;
}

function odsReference(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  const identifier = isObject(value) ? value.identifier : undefined;
  if (!isObject(identifier) || identifier.system !== SDS_SYSTEMS.ods || typeof identifier.value !== 'string' || !ODS.test(identifier.value)) {
    throw new SdsAnswerError(`SDS ${what} is not an ODS organisation reference`);
  }
  return identifier.value;
}

/** One page of a /Device search (accredited systems of `queriedOds`). */
export function readDevicePage(body: unknown, queriedOds: string): BundlePage<SdsDevice> {
  const bundle = readBundle(body, 'Device');
  const items = bundle.resources.map((device) => {
    const ids = identifiers(device, 'Device');
    const asid = single(ids, SDS_SYSTEMS.asid, 'Device');
    if (!asid || !ASID.test(asid)) throw new SdsAnswerError('SDS Device has no 12-digit nhsSpineASID');
    const partyKey = single(ids, SDS_SYSTEMS.partyKey, 'Device');
    if (partyKey !== undefined && !PARTY_KEY.test(partyKey)) throw new SdsAnswerError('SDS Device has a malformed party key');
    const ownerOds = odsReference(device.owner, 'Device.owner');
    return {
      asid,
      ...(partyKey !== undefined ? { partyKey } : {}),
      interactions: interactionExtensions(device, 'Device'),
      ...(ownerOds !== undefined ? { ownerOds } : {}),
      queriedOds,
    };
  });
  return { items, ...(bundle.next !== undefined ? { next: bundle.next } : {}), ...(bundle.total !== undefined ? { total: bundle.total } : {}) };
}

/** One page of an /Endpoint search (MHS records). Records without an FQDN or party key cannot name a certificate. */
export function readEndpointPage(body: unknown): BundlePage<SdsMhs> {
  const bundle = readBundle(body, 'Endpoint');
  const items: SdsMhs[] = [];
  for (const endpoint of bundle.resources) {
    if (endpoint.status !== undefined && endpoint.status !== 'active') continue;
    const ids = identifiers(endpoint, 'Endpoint');
    const fqdn = single(ids, SDS_SYSTEMS.fqdn, 'Endpoint');
    const partyKey = single(ids, SDS_SYSTEMS.partyKey, 'Endpoint');
    if (fqdn === undefined || partyKey === undefined) continue;
    if (!FQDN.test(fqdn)) throw new SdsAnswerError('SDS Endpoint has a malformed nhsMhsFQDN');
    if (!PARTY_KEY.test(partyKey)) throw new SdsAnswerError('SDS Endpoint has a malformed party key');
    // The Endpoint's interaction extension is not read: the search already filtered on it, and the API maps a
    // multi-valued nhsMhsSvcIA into one extension whose value is a list (fhir_json_mapper.py).
    const managingOds = odsReference(endpoint.managingOrganization, 'Endpoint.managingOrganization');
    items.push({ fqdn: fqdn.toLowerCase(), partyKey, ...(managingOds !== undefined ? { managingOds } : {}) });
  }
  return { items, ...(bundle.next !== undefined ? { next: bundle.next } : {}), ...(bundle.total !== undefined ? { total: bundle.total } : {}) };
}

export interface JoinInput {
  readonly devices: readonly SdsDevice[];
  readonly mhs: readonly SdsMhs[];
  readonly overlay: SdsOverlay;
  /** Interactions an ASID may be granted: the NEMS ones the registry looks up. */
  readonly allowedInteractions: ReadonlySet<string>;
}

export interface JoinResult {
  readonly endpoints: Endpoint[];
  /** Records left out, each narrowing access (never widening it); for the log. */
  readonly problems: string[];
}

/**
 * Joins on the MHS party key: FQDN ← party key → ASIDs. A party key naming two FQDNs, or an ASID seen with two party
 * keys, is ambiguous and left out whole. ODS codes are the searched nhsIDCode(s) plus nhsAsClient; interactions are
 * nhsAsSvcIA ∩ `allowedInteractions`. The overlay adds mailboxes (only for an ODS code the ASID acts for), the
 * category bag and pins; an overlay ASID SDS did not return grants nothing.
 */
export function joinSdsRegistry(input: JoinInput): JoinResult {
  const problems: string[] = [];
  const fqdnByPartyKey = new Map<string, string>();
  const conflictedKeys = new Set<string>();
  for (const m of input.mhs) {
    const known = fqdnByPartyKey.get(m.partyKey);
    if (known !== undefined && known !== m.fqdn) conflictedKeys.add(m.partyKey);
    else fqdnByPartyKey.set(m.partyKey, m.fqdn);
  }
  for (const key of conflictedKeys) {
    problems.push(`party key ${key} names more than one FQDN in SDS; its systems are left out`);
    fqdnByPartyKey.delete(key);
  }

  interface Merged { partyKeys: Set<string>; ods: Set<string>; interactions: Set<string> }
  const byAsid = new Map<string, Merged>();
  for (const d of input.devices) {
    const merged = byAsid.get(d.asid) ?? { partyKeys: new Set<string>(), ods: new Set<string>(), interactions: new Set<string>() };
    if (d.partyKey !== undefined) merged.partyKeys.add(d.partyKey);
    merged.ods.add(d.queriedOds);
    if (d.ownerOds !== undefined) merged.ods.add(d.ownerOds);
    for (const i of d.interactions) if (input.allowedInteractions.has(i)) merged.interactions.add(i);
    byAsid.set(d.asid, merged);
  }

  const asidsByFqdn = new Map<string, Map<string, AsidRegistration>>();
  for (const [asid, merged] of [...byAsid].sort(([a], [b]) => a.localeCompare(b))) {
    if (merged.partyKeys.size !== 1) {
      problems.push(merged.partyKeys.size === 0 ? `ASID ${asid} has no party key in SDS; left out` : `ASID ${asid} has more than one party key in SDS; left out`);
      continue;
    }
    const partyKey = [...merged.partyKeys][0]!;
    const fqdn = fqdnByPartyKey.get(partyKey);
    if (fqdn === undefined) {
      if (!conflictedKeys.has(partyKey)) problems.push(`ASID ${asid}: no MHS record with an FQDN for party key ${partyKey}; left out`);
      continue;
    }
    if (merged.interactions.size === 0) continue;
    const odsCodes = [...merged.ods].sort();
    const extra = input.overlay.asids.get(asid);
    const mailboxes = (extra?.mailboxes ?? []).filter((m) => {
      if (odsCodes.includes(m.odsCode)) return true;
      problems.push(`ASID ${asid}: overlay mailbox ${m.id} is for ${m.odsCode}, which SDS does not list for the ASID; mailbox left out`);
      return false;
    });
    const registration: AsidRegistration = {
      asid,
      odsCodes,
      interactions: [...merged.interactions].sort(),
      subscriptionTypes: extra?.subscriptionTypes ?? [],
      mailboxes,
      ...(extra?.upstreamClientCertificate ? { upstreamClientCertificate: extra.upstreamClientCertificate } : {}),
    };
    const asids = asidsByFqdn.get(fqdn) ?? new Map<string, AsidRegistration>();
    asids.set(asid, registration);
    asidsByFqdn.set(fqdn, asids);
  }
  for (const asid of input.overlay.asids.keys()) {
    if (!byAsid.has(asid)) problems.push(`overlay ASID ${asid} was not returned by SDS; it grants nothing`);
  }
  const endpoints: Endpoint[] = [...asidsByFqdn]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([fqdn, asids]) => ({ fqdn, fingerprints: input.overlay.pins.get(fqdn) ?? [], asids }));
  return { endpoints, problems };
}
