// The YAML endpoint registry (issue 2 point 4): the local stand-in for SDS. Parsing, every validation error,
// certificate → endpoint resolution (SAN, CN, case, fingerprint pins, ambiguity) and hot reload.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FileEndpointRegistry, RegistryError, loadRegistryFile, normaliseFingerprint, parseRegistry, resolveEndpoint,
} from '../../src/identity/file-registry.js';
import type { Endpoint, PeerCertificateIdentity } from '../../src/identity/types.js';
import { ALL_WORKFLOW_IDS } from '../../src/nems/events.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { SUBSCRIPTION_INTERACTIONS, publishInteractionId } from '../../src/nems/interactions.js';

const SHIPPED = join(PROJECT_ROOT, 'config', 'endpoints.yaml');
const FP_A = 'AB'.repeat(32);
const FP_B = 'CD'.repeat(32);

interface RawRegistry {
  endpoints: Record<string, any>[];
}

/** A fresh copy of the shipped registry document, to break one thing at a time. */
function shippedDocument(): RawRegistry {
  return parseYaml(readFileSync(SHIPPED, 'utf8')) as RawRegistry;
}

function problemsOf(raw: unknown): string[] {
  try {
    parseRegistry(raw, '/etc/nems/endpoints.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(RegistryError);
    return [...(err as RegistryError).problems];
  }
  throw new Error('the registry parsed but should have been refused');
}

function peer(p: Partial<PeerCertificateIdentity>): PeerCertificateIdentity {
  return { dnsNames: [], fingerprint256: FP_A, ...p };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nems-registry-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the shipped config/endpoints.yaml', () => {
  const endpoints = loadRegistryFile(SHIPPED);
  const byFqdn = new Map(endpoints.map((e) => [e.fqdn, e]));

  it('registers gp-system (ASID 200000000101, ODS A83627, mailbox A83627MB001, explicit only, subscription interactions)', () => {
    const gp = byFqdn.get('gp-system.example.nhs.uk')!.asids.get('200000000101')!;
    expect(gp.odsCodes).toEqual(['A83627']);
    expect(gp.subscriptionTypes).toEqual(['explicit']);
    expect([...gp.interactions].sort()).toEqual(Object.values(SUBSCRIPTION_INTERACTIONS).sort());
    expect(gp.mailboxes).toEqual([{ id: 'A83627MB001', odsCode: 'A83627', workflowIds: ALL_WORKFLOW_IDS }]);
  });

  it('registers child-health (ASID 200000000102, ODS RX3EP, mailbox RX3EPMB001, explicit and generic, the five publish interactions)', () => {
    const ch = byFqdn.get('child-health.example.nhs.uk')!.asids.get('200000000102')!;
    expect(ch.odsCodes).toEqual(['RX3EP']);
    expect(ch.subscriptionTypes).toEqual(['explicit', 'generic']);
    for (const code of ['Bloodspottestoutcome', 'Newbornhearing', 'Nipeoutcome', 'Professionalcontacts', 'Vaccinations']) {
      expect(ch.interactions).toContain(publishInteractionId(code));
    }
    expect(ch.mailboxes).toEqual([{ id: 'RX3EPMB001', odsCode: 'RX3EP', workflowIds: ALL_WORKFLOW_IDS }]);
    expect(ALL_WORKFLOW_IDS).toHaveLength(10);
  });

  it('has exactly those two endpoints, unpinned', () => {
    expect(endpoints.map((e) => e.fqdn)).toEqual(['gp-system.example.nhs.uk', 'child-health.example.nhs.uk']);
    expect(endpoints.every((e) => e.fingerprints.length === 0)).toBe(true);
  });
});

describe('parsing', () => {
  it('lower-cases FQDNs, normalises fingerprint pins to upper-case hex without colons', () => {
    const doc = shippedDocument();
    doc.endpoints[0]!.fqdn = 'GP-System.Example.NHS.uk';
    doc.endpoints[0]!.fingerprints = [FP_A.toLowerCase().match(/../g)!.join(':'), FP_B];
    const [gp] = parseRegistry(doc, '/etc/nems/endpoints.yaml');
    expect(gp!.fqdn).toBe('gp-system.example.nhs.uk');
    expect(gp!.fingerprints).toEqual([FP_A, FP_B]);
  });

  it('maps the legacy workflow ID PDS_RECORD_CHANGE_1 to PDSRECORDCHANGE_1', () => {
    const doc = shippedDocument();
    doc.endpoints[0]!.asids[0].mailboxes[0].workflowIds = ['PDS_RECORD_CHANGE_1'];
    const [gp] = parseRegistry(doc, '/etc/nems/endpoints.yaml');
    expect(gp!.asids.get('200000000101')!.mailboxes[0]!.workflowIds).toEqual(['PDSRECORDCHANGE_1']);
  });

  it('accepts the legacy publish InteractionIDs of real events (docs/specification.md §2.1 history)', () => {
    const doc = shippedDocument();
    doc.endpoints[1]!.asids[0].interactions.push(
      'urn:nhs:names:services:events:vaccinations-1.Write',
      'urn:nhs:names:services:events:Vaccinations.write:1',
      'urn:nhs:names:services:events:vaccinations-1.write:2',
    );
    expect(() => parseRegistry(doc, '/etc/nems/endpoints.yaml')).not.toThrow();
  });

  it('resolves upstreamClientCertificate paths against the registry file’s folder', () => {
    const doc = shippedDocument();
    doc.endpoints[0]!.asids[0].upstreamClientCertificate = { cert: 'upstream/gp.pem', key: '/abs/gp-key.pem' };
    const [gp] = parseRegistry(doc, '/etc/nems/endpoints.yaml');
    expect(gp!.asids.get('200000000101')!.upstreamClientCertificate).toEqual({ cert: '/etc/nems/upstream/gp.pem', key: '/abs/gp-key.pem' });
    expect(parseRegistry(shippedDocument(), '/etc/nems/endpoints.yaml')[0]!.asids.get('200000000101')!.upstreamClientCertificate).toBeUndefined();
  });

  it('defaults subscriptionTypes, mailboxes and workflowIds to empty', () => {
    const [e] = parseRegistry(
      { endpoints: [{ fqdn: 'min.example.nhs.uk', asids: [{ asid: '200000000999', odsCodes: ['X1'], interactions: [] }] }] },
      '/x/endpoints.yaml',
    );
    expect(e!.asids.get('200000000999')).toMatchObject({ subscriptionTypes: [], mailboxes: [] });
  });
});

describe('every validation error names the entry and the problem', () => {
  const cases: [string, (doc: RawRegistry) => void, string | RegExp][] = [
    ['a duplicate FQDN (case-insensitive)', (d) => { d.endpoints[1]!.fqdn = 'GP-SYSTEM.example.nhs.uk'; }, "endpoints.1.fqdn: 'gp-system.example.nhs.uk' is registered twice"],
    ['a duplicate ASID across endpoints', (d) => { d.endpoints[1]!.asids[0].asid = '200000000101'; }, 'endpoints.1.asids.0.asid: 200000000101 is registered twice'],
    ['a duplicate ASID within an endpoint', (d) => { d.endpoints[0]!.asids.push({ ...d.endpoints[0]!.asids[0], mailboxes: [] }); }, 'endpoints.0.asids.1.asid: 200000000101 is registered twice'],
    ['a mailbox registered twice', (d) => { d.endpoints[1]!.asids[0].mailboxes[0].id = 'a83627mb001'; d.endpoints[1]!.asids[0].mailboxes[0].odsCode = 'RX3EP'; }, 'endpoints.1.asids.0.mailboxes.0.id: a83627mb001 is registered twice'],
    ['an unknown interaction', (d) => { d.endpoints[0]!.asids[0].interactions.push('urn:nhs:names:services:clinicals-sync:SubscriptionsApiPut'); }, 'endpoints.0.asids.0.interactions.3: is not a NEMS InteractionID'],
    ['a legacy-looking publish interaction for an event that does not exist', (d) => { d.endpoints[1]!.asids[0].interactions.push('urn:nhs:names:services:events:Vacinations.Write'); }, 'endpoints.1.asids.0.interactions.8: is not a NEMS InteractionID'],
    ['an unknown workflow ID', (d) => { d.endpoints[0]!.asids[0].mailboxes[0].workflowIds = ['VACCINATIONS_1', 'VACCINATION_1']; }, 'endpoints.0.asids.0.mailboxes.0.workflowIds.1: is not a NEMS workflow ID'],
    ["a mailbox ODS code that is not one of the ASID's", (d) => { d.endpoints[0]!.asids[0].mailboxes[0].odsCode = 'RX3EP'; }, "endpoints.0.asids.0.mailboxes.0.odsCode: RX3EP is not one of the ASID's odsCodes"],
    ['a fingerprint that is not SHA-256', (d) => { d.endpoints[0]!.fingerprints = ['AB:CD:EF']; }, 'endpoints.0.fingerprints.0: must be a SHA-256 fingerprint (64 hex digits)'],
    ['a SHA-1 fingerprint', (d) => { d.endpoints[0]!.fingerprints = ['AB'.repeat(20)]; }, 'endpoints.0.fingerprints.0: must be a SHA-256 fingerprint (64 hex digits)'],
    ['a fingerprint with non-hex digits', (d) => { d.endpoints[0]!.fingerprints = ['ZZ'.repeat(32)]; }, 'endpoints.0.fingerprints.0: must be a SHA-256 fingerprint (64 hex digits)'],
    ['an FQDN that is not a DNS name', (d) => { d.endpoints[0]!.fqdn = 'gp system'; }, 'endpoints.0.fqdn: must be a DNS name'],
    ['a wildcard FQDN', (d) => { d.endpoints[0]!.fqdn = '*.example.nhs.uk'; }, 'endpoints.0.fqdn: must be a DNS name'],
    ['an ASID that is not 12 digits', (d) => { d.endpoints[0]!.asids[0].asid = '2000001'; }, 'endpoints.0.asids.0.asid: must be a 12-digit ASID'],
    ['a lower-case ODS code', (d) => { d.endpoints[0]!.asids[0].odsCodes = ['a83627']; }, /^endpoints\.0\.asids\.0\.odsCodes\.0: must be an ODS code/],
    ['an ASID without ODS codes', (d) => { d.endpoints[0]!.asids[0].odsCodes = []; }, /^endpoints\.0\.asids\.0\.odsCodes: /],
    ['an endpoint without ASIDs', (d) => { d.endpoints[0]!.asids = []; }, /^endpoints\.0\.asids: /],
    ['an unknown subscription type', (d) => { d.endpoints[0]!.asids[0].subscriptionTypes = ['implicit']; }, /^endpoints\.0\.asids\.0\.subscriptionTypes\.0: Invalid option/],
    ['an unknown key', (d) => { d.endpoints[0]!.asids[0].mailbox = 'A83627MB001'; }, /^endpoints\.0\.asids\.0: Unrecognized key: "mailbox"/],
    ['an upstream client certificate without its key', (d) => { d.endpoints[0]!.asids[0].upstreamClientCertificate = { cert: 'c.pem' }; }, /^endpoints\.0\.asids\.0\.upstreamClientCertificate\.key: /],
  ];

  it.each(cases)('%s', (_name, breakIt, expected) => {
    const doc = shippedDocument();
    breakIt(doc);
    const problems = problemsOf(doc);
    expect(problems).toHaveLength(1);
    if (typeof expected === 'string') expect(problems[0]).toBe(expected);
    else expect(problems[0]).toMatch(expected);
  });

  it('reports every cross-check problem at once, with the file name in the message', () => {
    const doc = shippedDocument();
    doc.endpoints[1]!.fqdn = 'gp-system.example.nhs.uk';
    doc.endpoints[1]!.asids[0].asid = '200000000101';
    try {
      parseRegistry(doc, '/etc/nems/endpoints.yaml');
      expect.unreachable('should have thrown');
    } catch (err) {
      expect((err as RegistryError).problems).toHaveLength(2);
      expect((err as Error).message).toMatch(/^\/etc\/nems\/endpoints\.yaml: invalid endpoint registry:\n {2}- endpoints\.1\.fqdn/);
    }
  });

  it.each([
    ['not a mapping', [1, 2]],
    ['no endpoints list', {}],
    ['endpoints not a list', { endpoints: 'gp-system' }],
  ])('a document with %s', (_name, raw) => {
    expect(problemsOf(raw)[0]).toMatch(/^(\(root\)|endpoints): /);
  });

  it('a missing file or bad YAML is a RegistryError naming the file', () => {
    expect(() => loadRegistryFile(join(dir, 'missing.yaml'))).toThrow(RegistryError);
    expect(() => loadRegistryFile(join(dir, 'missing.yaml'))).toThrow(/missing\.yaml: invalid endpoint registry:\n {2}- cannot read file \(ENOENT\)/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'endpoints:\n  - fqdn: a.example\n  fqdn: b\n');
    expect(() => loadRegistryFile(bad)).toThrow(/YAML syntax: .*line \d+, column \d+/);
  });
});

describe('resolve(): certificate → endpoint', () => {
  const endpoints: Endpoint[] = parseRegistry(
    {
      endpoints: [
        { fqdn: 'gp-system.example.nhs.uk', asids: [{ asid: '200000000101', odsCodes: ['A83627'], interactions: [] }] },
        { fqdn: 'child-health.example.nhs.uk', asids: [{ asid: '200000000102', odsCodes: ['RX3EP'], interactions: [] }] },
        { fqdn: 'pinned.example.nhs.uk', fingerprints: [FP_A.match(/../g)!.join(':'), FP_B.toLowerCase()], asids: [{ asid: '200000000103', odsCodes: ['X1'], interactions: [] }] },
      ],
    },
    '/x/endpoints.yaml',
  );
  const byFqdn = new Map(endpoints.map((e) => [e.fqdn, e]));
  const fqdnOf = (p: PeerCertificateIdentity) => {
    const r = resolveEndpoint(byFqdn, p);
    return r.ok ? r.endpoint.fqdn : r.reason;
  };

  it('finds the endpoint by SAN dNSName', () => {
    expect(fqdnOf(peer({ dnsNames: ['gp-system.example.nhs.uk'] }))).toBe('gp-system.example.nhs.uk');
  });

  it('finds the endpoint by subject CN when the certificate has no SAN dNSName', () => {
    expect(fqdnOf(peer({ subjectCn: 'child-health.example.nhs.uk' }))).toBe('child-health.example.nhs.uk');
  });

  it('ignores the CN when SAN dNSNames are present (RFC 6125)', () => {
    expect(fqdnOf(peer({ subjectCn: 'gp-system.example.nhs.uk', dnsNames: ['other.example.nhs.uk'] }))).toBe('unregistered-fqdn');
  });

  it('denies a registered SAN whose certificate CN names something else (Spine: CN = FQDN)', () => {
    expect(fqdnOf(peer({ subjectCn: 'Some Client', dnsNames: ['gp-system.example.nhs.uk'] }))).toBe('cn-mismatch');
    expect(fqdnOf(peer({ subjectCn: 'child-health.example.nhs.uk', dnsNames: ['gp-system.example.nhs.uk'] }))).toBe('cn-mismatch');
    expect(fqdnOf(peer({ subjectCn: 'GP-System.example.nhs.uk', dnsNames: ['gp-system.example.nhs.uk'] }))).toBe('gp-system.example.nhs.uk');
  });

  it('matches names case-insensitively', () => {
    expect(fqdnOf(peer({ dnsNames: ['GP-SYSTEM.Example.NHS.UK'] }))).toBe('gp-system.example.nhs.uk');
    expect(fqdnOf(peer({ subjectCn: 'Child-Health.example.nhs.uk' }))).toBe('child-health.example.nhs.uk');
  });

  it('finds the one registered name among several SANs', () => {
    expect(fqdnOf(peer({ dnsNames: ['www.example.org', 'gp-system.example.nhs.uk'] }))).toBe('gp-system.example.nhs.uk');
    expect(fqdnOf(peer({ dnsNames: ['gp-system.example.nhs.uk', 'GP-SYSTEM.example.nhs.uk'] }))).toBe('gp-system.example.nhs.uk');
  });

  it('denies a certificate whose SANs name two different endpoints (ambiguous)', () => {
    expect(fqdnOf(peer({ dnsNames: ['gp-system.example.nhs.uk', 'child-health.example.nhs.uk'] }))).toBe('unregistered-fqdn');
  });

  it('denies unregistered names, near misses and wildcards', () => {
    for (const name of ['unregistered.example.nhs.uk', 'gp-system.example.nhs.uk.', 'x.gp-system.example.nhs.uk', '*.example.nhs.uk', '']) {
      expect(fqdnOf(peer({ dnsNames: [name] }))).toBe('unregistered-fqdn');
    }
  });

  it('has no identity without SAN dNSName or CN', () => {
    expect(fqdnOf(peer({}))).toBe('no-identity');
  });

  it('accepts a pinned endpoint only with a pinned fingerprint', () => {
    expect(fqdnOf(peer({ dnsNames: ['pinned.example.nhs.uk'], fingerprint256: FP_A }))).toBe('pinned.example.nhs.uk');
    expect(fqdnOf(peer({ dnsNames: ['pinned.example.nhs.uk'], fingerprint256: FP_B }))).toBe('pinned.example.nhs.uk');
    expect(fqdnOf(peer({ dnsNames: ['pinned.example.nhs.uk'], fingerprint256: 'EF'.repeat(32) }))).toBe('fingerprint-mismatch');
  });

  it('compares the peer fingerprint in the edge’s form (upper-case hex, no colons)', () => {
    expect(normaliseFingerprint('ab:cd:ef')).toBe('ABCDEF');
    expect(fqdnOf(peer({ dnsNames: ['pinned.example.nhs.uk'], fingerprint256: normaliseFingerprint(FP_A.toLowerCase().match(/../g)!.join(':')) }))).toBe('pinned.example.nhs.uk');
  });
});

describe('FileEndpointRegistry reload', () => {
  function registryFile(doc: unknown): string {
    const file = join(dir, `endpoints-${Math.random().toString(16).slice(2)}.yaml`);
    writeFileSync(file, stringify(doc));
    return file;
  }

  it('resolves through the EndpointRegistry interface and lists its endpoints', () => {
    const registry = new FileEndpointRegistry(SHIPPED);
    expect(registry.generation).toBe(1);
    expect(registry.endpoints()).toHaveLength(2);
    const r = registry.resolve(peer({ dnsNames: ['gp-system.example.nhs.uk'] }));
    expect(r.ok && r.endpoint.asids.has('200000000101')).toBe(true);
  });

  it('refuses to start on a bad file', () => {
    const doc = shippedDocument();
    doc.endpoints[0]!.asids[0].interactions = ['nope'];
    expect(() => new FileEndpointRegistry(registryFile(doc))).toThrow(RegistryError);
  });

  it('picks up a changed file and bumps the generation', () => {
    const file = registryFile(shippedDocument());
    const registry = new FileEndpointRegistry(file);
    expect(registry.resolve(peer({ dnsNames: ['new.example.nhs.uk'] })).ok).toBe(false);
    const doc = shippedDocument();
    doc.endpoints[0]!.fqdn = 'new.example.nhs.uk';
    writeFileSync(file, stringify(doc));
    registry.reload();
    expect(registry.generation).toBe(2);
    expect(registry.resolve(peer({ dnsNames: ['new.example.nhs.uk'] })).ok).toBe(true);
    expect(registry.resolve(peer({ dnsNames: ['gp-system.example.nhs.uk'] })).ok).toBe(false);
  });

  it.each([
    ['an invalid registry', () => {
      const doc = shippedDocument();
      doc.endpoints[1]!.asids[0].asid = '200000000101';
      return stringify(doc);
    }],
    ['bad YAML', () => 'endpoints: [\n'],
    ['an empty file', () => ''],
  ])('keeps the registry in force (same generation) and throws when reloading %s', (_name, content) => {
    const file = registryFile(shippedDocument());
    const registry = new FileEndpointRegistry(file);
    writeFileSync(file, content());
    expect(() => registry.reload()).toThrow(RegistryError);
    expect(registry.generation).toBe(1);
    expect(registry.endpoints()).toHaveLength(2);
    expect(registry.resolve(peer({ dnsNames: ['gp-system.example.nhs.uk'] })).ok).toBe(true);
  });

  it('keeps the registry in force when the file disappears', () => {
    const file = registryFile(shippedDocument());
    const registry = new FileEndpointRegistry(file);
    rmSync(file);
    expect(() => registry.reload()).toThrow(/ENOENT/);
    expect(registry.resolve(peer({ dnsNames: ['child-health.example.nhs.uk'] })).ok).toBe(true);
  });
});
