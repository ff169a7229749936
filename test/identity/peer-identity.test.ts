// What the edge reads from a verified client certificate (src/edge/peer-identity.ts): subject CN, SAN dNSNames —
// including Node's quoted SAN form (CVE-2021-44532), which must never turn one odd name into two — and the SHA-256
// fingerprint; the peer facts read once per connection, and the endpoint they resolve to, resolved once per
// connection and again after a registry reload (src/identity/endpoint-resolver.ts).
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { findExternalTool } from '../observability/helpers/external-tool.js';
import { certificateIdentity, peerCertificate, peerFacts, peerIdentity, peerLeaf } from '../../src/edge/peer-identity.js';
import { EndpointResolver } from '../../src/identity/endpoint-resolver.js';
import type { Endpoint, EndpointLookup, EndpointRegistry, PeerCertificateIdentity } from '../../src/identity/types.js';

const keys = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });

type AltName = string | { type: number; value?: string; ip?: string };

/** A self-signed certificate with the given CN and SAN entries (strings are dNSNames). */
function certificate(cn: string | undefined, altNames: AltName[]): X509Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const subject = [{ name: 'countryName', value: 'GB' }, ...(cn === undefined ? [] : [{ name: 'commonName', value: cn }])];
  cert.setSubject(subject);
  cert.setIssuer([{ name: 'commonName', value: 'Test CA' }]);
  if (altNames.length) {
    cert.setExtensions([{ name: 'subjectAltName', altNames: altNames.map((n) => (typeof n === 'string' ? { type: 2, value: n } : n)) }]);
  }
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return new X509Certificate(forge.pki.certificateToPem(cert));
}

const openssl = findExternalTool('openssl', 'apt-get install openssl');

/** A self-signed certificate with an elliptic-curve or Ed25519 key (node-forge makes RSA keys only). */
function selfSigned(type: 'ec' | 'ed25519', options: { namedCurve?: string }): X509Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'peer-identity-'));
  try {
    const key = type === 'ec' ? ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${options.namedCurve!}`] : ['-newkey', 'ed25519'];
    const pem = execFileSync(openssl.require(), ['req', '-x509', ...key, '-nodes', '-keyout', join(dir, 'key.pem'), '-subj', '/CN=gp-system.example.nhs.uk', '-days', '1'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    return new X509Certificate(pem);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A verified socket as the edge sees it: getPeerCertificate() gives the leaf as Node's legacy object (what
 * toLegacyObject() builds from the same OpenSSL certificate). getPeerX509Certificate() throws: on Node 20 it leaks
 * native memory per call, so the edge must never use it (src/edge/peer-identity.ts).
 */
function socketWith(x509: X509Certificate | undefined, authorized = true): TLSSocket & { readonly reads: number } {
  const socket = {
    authorized,
    remoteAddress: '127.0.0.1',
    reads: 0,
    getPeerCertificate() {
      socket.reads++;
      return x509 ? x509.toLegacyObject() : {};
    },
    getPeerX509Certificate: () => {
      throw new Error('getPeerX509Certificate leaks native memory on Node 20: use getPeerCertificate().raw');
    },
  };
  return socket as unknown as TLSSocket & { readonly reads: number };
}

/** What the lifecycle does for each request on a connection: the connection's peer facts, resolved to an endpoint. */
function connectionIdentity(socket: TLSSocket, resolver: EndpointResolver) {
  const peer = peerFacts(socket);
  return { peer: peer.certificate, lookup: resolver.resolve(peer) };
}

function identityOf(cn: string | undefined, altNames: AltName[]): PeerCertificateIdentity {
  return peerIdentity(socketWith(certificate(cn, altNames)))!;
}

describe('peerIdentity', () => {
  it('reads the subject CN, the SAN dNSNames in order and the fingerprint as upper-case hex without colons', () => {
    const x509 = certificate('gp-system.example.nhs.uk', ['gp-system.example.nhs.uk', 'alt.example.nhs.uk']);
    const id = peerIdentity(socketWith(x509))!;
    expect(id.subjectCn).toBe('gp-system.example.nhs.uk');
    expect(id.dnsNames).toEqual(['gp-system.example.nhs.uk', 'alt.example.nhs.uk']);
    expect(id.fingerprint256).toBe(x509.fingerprint256.replace(/:/g, ''));
    expect(id.fingerprint256).toMatch(/^[0-9A-F]{64}$/);
  });

  it('has no dNSNames without a SAN extension, and no CN without one in the subject', () => {
    expect(identityOf('child-health.example.nhs.uk', []).dnsNames).toEqual([]);
    expect(identityOf(undefined, ['a.example.nhs.uk']).subjectCn).toBeUndefined();
  });

  it('keeps only DNS entries: IP addresses, e-mail addresses and URIs are not endpoint names', () => {
    const id = identityOf('x', [{ type: 7, ip: '127.0.0.1' }, { type: 1, value: 'ops@example.nhs.uk' }, 'b.example.nhs.uk', { type: 6, value: 'https://gp-system.example.nhs.uk' }]);
    expect(id.dnsNames).toEqual(['b.example.nhs.uk']);
  });

  it("reads Node's quoted form of a dNSName holding a separator as ONE name, never two", () => {
    const x509 = certificate('x', ['evil.example, DNS:gp-system.example.nhs.uk']);
    expect(x509.subjectAltName).toBe('DNS:"evil.example\\u002c DNS:gp-system.example.nhs.uk"');
    expect(peerIdentity(socketWith(x509))!.dnsNames).toEqual(['evil.example, DNS:gp-system.example.nhs.uk']);
  });

  it('does not let a quoted URI smuggle a DNS name in', () => {
    const id = identityOf('x', [{ type: 6, value: 'https://a, DNS:gp-system.example.nhs.uk' }, 'real.example.nhs.uk']);
    expect(id.dnsNames).toEqual(['real.example.nhs.uk']);
  });

  it('unquotes names with quotes in them', () => {
    expect(identityOf('x', ['q"uote.example', 'b.example']).dnsNames).toEqual(['q"uote.example', 'b.example']);
  });

  it('reads a CN holding a separator as one value, never as a second CN', () => {
    expect(identityOf('a.example, CN=gp-system.example.nhs.uk', []).subjectCn).toBe('a.example, CN=gp-system.example.nhs.uk');
    // A recorded certificate (replay) is read from its printed subject, where OpenSSL escapes the separator.
    const x509 = certificate('a.example, CN=gp-system.example.nhs.uk', []);
    expect(certificateIdentity(x509).subjectCn).toBe('a.example\\, CN=gp-system.example.nhs.uk');
  });

  it('reads the same dNSNames and fingerprint from the connection as from the certificate itself (replay)', () => {
    for (const names of [['gp-system.example.nhs.uk', 'alt.example.nhs.uk'], ['evil.example, DNS:gp-system.example.nhs.uk'], ['x\\', 'b.example'], ['q"uote.example']]) {
      const x509 = certificate('gp-system.example.nhs.uk', names);
      expect(peerIdentity(socketWith(x509))).toEqual(certificateIdentity(x509));
    }
  });

  // A quoted name ending in an escaped backslash (`"x\\"`) must not swallow the names after it.
  it('reads the names after a quoted name that ends in a backslash', () => {
    const x509 = certificate('x', ['x\\', 'gp-system.example.nhs.uk']);
    expect(x509.subjectAltName).toBe('DNS:"x\\\\", DNS:gp-system.example.nhs.uk');
    expect(peerIdentity(socketWith(x509))!.dnsNames).toEqual(['x\\', 'gp-system.example.nhs.uk']);
  });

  it('is undefined when the peer sent no certificate', () => {
    expect(peerIdentity(socketWith(undefined))).toBeUndefined();
  });
});

describe('peerCertificate: the leaf read once per connection', () => {
  it('parses the certificate once, from getPeerCertificate().raw, however many times it is asked for', () => {
    const x509 = certificate('gp-system.example.nhs.uk', ['gp-system.example.nhs.uk']);
    const socket = socketWith(x509);
    const first = peerCertificate(socket);
    expect(first?.fingerprint256).toBe(x509.fingerprint256);
    expect(peerCertificate(socket)).toBe(first);
    expect(peerIdentity(socket)?.subjectCn).toBe('gp-system.example.nhs.uk');
    expect(socket.reads).toBe(1);
  });

  it.skipIf(openssl.skip)('reads the client key as node:crypto names it, without a second parse for RSA and EC keys', () => {
    const rsa = certificate('gp-system.example.nhs.uk', []);
    expect(peerLeaf(socketWith(rsa))!.key).toEqual({ asymmetricKeyType: 'rsa', asymmetricKeyDetails: { modulusLength: rsa.publicKey.asymmetricKeyDetails!.modulusLength } });
    for (const [type, options] of [['ec', { namedCurve: 'prime256v1' }], ['ec', { namedCurve: 'secp384r1' }], ['ed25519', {}]] as const) {
      const x509 = selfSigned(type, options);
      const key = peerLeaf(socketWith(x509))!.key;
      expect(key.asymmetricKeyType).toBe(x509.publicKey.asymmetricKeyType);
      expect(key.asymmetricKeyDetails?.namedCurve).toBe(x509.publicKey.asymmetricKeyDetails?.namedCurve);
    }
  });

  it('is undefined, and remembered as such, when the peer sent no certificate', () => {
    const socket = socketWith(undefined);
    expect(peerCertificate(socket)).toBeUndefined();
    expect(peerCertificate(socket)).toBeUndefined();
    expect(socket.reads).toBe(1);
  });
});

describe('peer facts and endpoint: resolved once per TLS connection', () => {
  const endpoint: Endpoint = { fqdn: 'gp-system.example.nhs.uk', fingerprints: [], asids: new Map() };

  function countingRegistry(): EndpointRegistry & { calls: number; generation: number } {
    return {
      calls: 0,
      generation: 1,
      resolve(p: PeerCertificateIdentity): EndpointLookup {
        this.calls++;
        return p.dnsNames.includes(endpoint.fqdn) ? { ok: true, endpoint } : { ok: false, reason: 'unregistered-fqdn' };
      },
      endpoints: () => [endpoint],
    };
  }

  it('resolves the certificate once for many requests on one connection', () => {
    const registry = countingRegistry();
    const resolver = new EndpointResolver(registry);
    const socket = socketWith(certificate('gp-system.example.nhs.uk', ['gp-system.example.nhs.uk']));
    for (let i = 0; i < 5; i++) expect(connectionIdentity(socket, resolver).lookup.ok).toBe(true);
    expect(registry.calls).toBe(1);
    expect(peerFacts(socket)).toBe(peerFacts(socket));
    expect(peerFacts(socket).remoteAddress).toBe('127.0.0.1');
  });

  it('resolves again after a registry reload (generation bump)', () => {
    const registry = countingRegistry();
    const resolver = new EndpointResolver(registry);
    const socket = socketWith(certificate('gp-system.example.nhs.uk', ['gp-system.example.nhs.uk']));
    connectionIdentity(socket, resolver);
    registry.generation = 2;
    connectionIdentity(socket, resolver);
    connectionIdentity(socket, resolver);
    expect(registry.calls).toBe(2);
  });

  it('has no identity (and never asks the registry) for a socket OpenSSL did not authorise', () => {
    const registry = countingRegistry();
    const identity = connectionIdentity(socketWith(certificate('gp-system.example.nhs.uk', ['gp-system.example.nhs.uk']), false), new EndpointResolver(registry));
    expect(identity.lookup).toEqual({ ok: false, reason: 'no-identity' });
    expect(identity.peer).toBeUndefined();
    expect(registry.calls).toBe(0);
  });

  it('keeps each connection’s identity apart', () => {
    const registry = countingRegistry();
    const gp = socketWith(certificate('gp-system.example.nhs.uk', ['gp-system.example.nhs.uk']));
    const other = socketWith(certificate('other.example.nhs.uk', ['other.example.nhs.uk']));
    const resolver = new EndpointResolver(registry);
    expect(connectionIdentity(gp, resolver).lookup.ok).toBe(true);
    expect(connectionIdentity(other, resolver).lookup).toEqual({ ok: false, reason: 'unregistered-fqdn' });
  });
});
