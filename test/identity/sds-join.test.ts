import { describe, expect, it } from 'vitest';
import { joinSdsRegistry, readDevicePage, readEndpointPage, type SdsDevice, type SdsMhs } from '../../src/identity/sds-join.js';
import { parseSdsOverlay } from '../../src/identity/sds-overlay.js';
import { ALL_INTERACTION_IDS, SUBSCRIPTION_INTERACTIONS } from '../../src/nems/interactions.js';

const CREATE = SUBSCRIPTION_INTERACTIONS.create;
const READ = SUBSCRIPTION_INTERACTIONS.read;
const allowed = new Set(ALL_INTERACTION_IDS);

const overlay = parseSdsOverlay({
  odsCodes: ['A83627'],
  endpoints: [{ fqdn: 'GP-System.example.nhs.uk', fingerprints: ['ab'.repeat(32)] }],
  asids: [{ asid: '200000000101', subscriptionTypes: ['explicit'], mailboxes: [{ id: 'A83627MB001', odsCode: 'A83627' }, { id: 'OTHERMB', odsCode: 'B12345' }] }],
}, '/tmp/overlay.yaml');

const device = (over: Partial<SdsDevice> = {}): SdsDevice => ({
  asid: '200000000101', partyKey: 'A83627-0000101', interactions: [CREATE, READ, 'urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1'],
  ownerOds: 'A83627', queriedOds: 'A83627', ...over,
});
const mhs = (over: Partial<SdsMhs> = {}): SdsMhs => ({ fqdn: 'gp-system.example.nhs.uk', partyKey: 'A83627-0000101', ...over });

describe('joining SDS accredited systems and MHS records', () => {
  it('maps certificate FQDN → ASID → ODS codes and NEMS interactions, with the overlay mailboxes, category bag and pins', () => {
    const { endpoints, problems } = joinSdsRegistry({ devices: [device(), device({ queriedOds: 'A83627' })], mhs: [mhs()], overlay, allowedInteractions: allowed });
    expect(endpoints).toHaveLength(1);
    const endpoint = endpoints[0]!;
    expect(endpoint.fqdn).toBe('gp-system.example.nhs.uk');
    expect(endpoint.fingerprints).toEqual(['AB'.repeat(32)]);
    const asid = endpoint.asids.get('200000000101')!;
    expect(asid.odsCodes).toEqual(['A83627']);
    // Only NEMS interactions: the GP Connect one SDS also lists is not granted.
    expect(asid.interactions).toEqual([READ, CREATE].sort());
    expect(asid.subscriptionTypes).toEqual(['explicit']);
    // A mailbox for an ODS code SDS does not list for the ASID is left out, not trusted.
    expect(asid.mailboxes.map((m) => m.id)).toEqual(['A83627MB001']);
    expect(problems.some((p) => p.includes('OTHERMB'))).toBe(true);
  });

  it('adds nhsAsClient to the searched nhsIDCode', () => {
    const { endpoints } = joinSdsRegistry({ devices: [device({ ownerOds: 'Y12345' })], mhs: [mhs()], overlay, allowedInteractions: allowed });
    expect(endpoints[0]!.asids.get('200000000101')!.odsCodes).toEqual(['A83627', 'Y12345']);
  });

  it('leaves out a party key that names two FQDNs, and an ASID seen with two party keys', () => {
    const twoFqdns = joinSdsRegistry({ devices: [device()], mhs: [mhs(), mhs({ fqdn: 'other.example.nhs.uk' })], overlay, allowedInteractions: allowed });
    expect(twoFqdns.endpoints).toEqual([]);
    const twoKeys = joinSdsRegistry({ devices: [device(), device({ partyKey: 'A83627-0000999' })], mhs: [mhs(), mhs({ partyKey: 'A83627-0000999' })], overlay, allowedInteractions: allowed });
    expect(twoKeys.endpoints).toEqual([]);
  });

  it('grants nothing to an ASID without an MHS FQDN, without NEMS interactions, or only in the overlay', () => {
    expect(joinSdsRegistry({ devices: [device()], mhs: [], overlay, allowedInteractions: allowed }).endpoints).toEqual([]);
    expect(joinSdsRegistry({ devices: [device({ interactions: ['urn:nhs:names:services:psis:REPC_IN150016UK05'] })], mhs: [mhs()], overlay, allowedInteractions: allowed }).endpoints).toEqual([]);
    const onlyOverlay = joinSdsRegistry({ devices: [], mhs: [mhs()], overlay, allowedInteractions: allowed });
    expect(onlyOverlay.endpoints).toEqual([]);
    expect(onlyOverlay.problems).toContain('overlay ASID 200000000101 was not returned by SDS; it grants nothing');
  });

  it('grants only the interactions the registry is configured to look up', () => {
    const { endpoints } = joinSdsRegistry({ devices: [device()], mhs: [mhs()], overlay, allowedInteractions: new Set([READ]) });
    expect(endpoints[0]!.asids.get('200000000101')!.interactions).toEqual([READ]);
  });
});

describe('reading SDS Bundles as the published API shapes them', () => {
  // specification/components/examples/DeviceBundle.json + Device.json (NHSDigital/spine-directory-service-api dc9c89d)
  const publishedDevice = {
    resourceType: 'Device', id: '0E512499-E65C-4AE9-BEEC-224917FCDE94',
    identifier: [{ system: 'https://fhir.nhs.uk/Id/nhsSpineASID', value: '200000000985' }, { system: 'https://fhir.nhs.uk/Id/nhsMhsPartyKey', value: 'A20047-821870' }],
    extension: [
      { url: 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-ManufacturingOrganisation', valueReference: { identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'A20047' } } },
      { url: 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId', valueReference: { identifier: { system: 'https://fhir.nhs.uk/Id/nhsServiceInteractionId', value: 'urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord' } } },
    ],
    owner: { identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'A20047' } },
  };
  const bundle = (resource: unknown, extra: Record<string, unknown> = {}) => ({
    resourceType: 'Bundle', id: '9A05D8C6-587D-4CD7-B360-C5560961C01F', type: 'searchset', total: 1,
    link: [{ relation: 'self', url: 'https://int.api.service.nhs.uk/spine-directory/FHIR/R4/Device?x' }],
    entry: [{ fullUrl: 'https://int.api.service.nhs.uk/spine-directory/FHIR/R4/Device/1', resource, search: { mode: 'match' } }],
    ...extra,
  });

  it('reads the published Device example', () => {
    const page = readDevicePage(bundle(publishedDevice), 'A20047');
    expect(page.items).toEqual([{ asid: '200000000985', partyKey: 'A20047-821870', interactions: ['urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord'], ownerOds: 'A20047', queriedOds: 'A20047' }]);
    expect(page.total).toBe(1);
    expect(page.next).toBeUndefined();
  });

  it('reads the published Endpoint example (FQDN and party key)', () => {
    const endpoint = {
      resourceType: 'Endpoint', id: '08CE3BFB-5055-422B-9AE5-80DF6F4E1C61', status: 'active', address: 'https://msg.int.spine2.ncrs.nhs.uk/reliablemessaging/reliablerequest',
      managingOrganization: { identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'YES' } },
      identifier: [
        { system: 'https://fhir.nhs.uk/Id/nhsMhsFQDN', value: 'msg.int.spine2.ncrs.nhs.uk' }, { system: 'https://fhir.nhs.uk/Id/nhsMhsPartyKey', value: 'YES-0000806' },
        { system: 'https://fhir.nhs.uk/Id/nhsMhsCPAId', value: 'S20001A000182' }, { system: 'https://fhir.nhs.uk/Id/nhsMHSId', value: 'S20001A000182' },
      ],
    };
    expect(readEndpointPage(bundle(endpoint)).items).toEqual([{ fqdn: 'msg.int.spine2.ncrs.nhs.uk', partyKey: 'YES-0000806', managingOds: 'YES' }]);
  });

  it('refuses what is not a searchset of the asked resource, or a Device without a 12-digit ASID', () => {
    expect(() => readDevicePage({ resourceType: 'OperationOutcome' }, 'A1')).toThrow(/Bundle/);
    expect(() => readDevicePage(bundle(publishedDevice, { type: 'collection' }), 'A1')).toThrow(/searchset/);
    expect(() => readDevicePage(bundle({ resourceType: 'Endpoint' }), 'A1')).toThrow(/not a Device/);
    expect(() => readDevicePage(bundle({ ...publishedDevice, identifier: [] }), 'A1')).toThrow(/ASID/);
    expect(() => readDevicePage(bundle({ ...publishedDevice, identifier: [...publishedDevice.identifier, { system: 'https://fhir.nhs.uk/Id/nhsSpineASID', value: '200000000986' }] }), 'A1')).toThrow(/more than one/);
  });

  it('returns the next link of a paged Bundle', () => {
    const page = readDevicePage(bundle(publishedDevice, { link: [{ relation: 'self', url: 's' }, { relation: 'next', url: 'https://x/Device?page=2' }] }), 'A1');
    expect(page.next).toBe('https://x/Device?page=2');
  });
});
