// Resolves the verified client certificate to a registered endpoint once per TLS connection (not per request).
import type { TLSSocket } from 'node:tls';
import type { EndpointLookup, EndpointRegistry, PeerCertificateIdentity } from '../identity/types.js';

interface CachedIdentity {
  readonly generation: number;
  readonly lookup: EndpointLookup;
  readonly peer?: PeerCertificateIdentity;
}

const cache = new WeakMap<TLSSocket, CachedIdentity>();

/** Reads CN, SAN dNSNames and the SHA-256 fingerprint of the peer's leaf certificate. */
export function peerIdentity(socket: TLSSocket): PeerCertificateIdentity | undefined {
  const x509 = socket.getPeerX509Certificate();
  if (!x509) return undefined;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x509.subject)?.[1];
  const dnsNames: string[] = [];
  for (const entry of splitSubjectAltName(x509.subjectAltName ?? '')) {
    if (entry.startsWith('DNS:')) dnsNames.push(entry.slice(4));
  }
  return { subjectCn: cn, dnsNames, fingerprint256: x509.fingerprint256.replace(/:/g, '') };
}

/** Node quotes SAN entries containing separators (JSON string syntax); split on ', ' outside quotes. */
function splitSubjectAltName(value: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted && c === '\\') {
      // An escape inside a quoted name: keep it and the character it escapes (which may be a quote or backslash).
      current += c + (value[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (!quoted && c === ',' && value[i + 1] === ' ') {
      out.push(current);
      current = '';
      i++;
      continue;
    }
    current += c;
  }
  if (current) out.push(current);
  return out.map((e) => {
    const colon = e.indexOf(':');
    const v = e.slice(colon + 1);
    return v.startsWith('"') ? `${e.slice(0, colon + 1)}${safeJson(v)}` : e;
  });
}

function safeJson(v: string): string {
  try {
    const parsed: unknown = JSON.parse(v);
    return typeof parsed === 'string' ? parsed : '';
  } catch {
    return '';
  }
}

export function connectionIdentity(socket: TLSSocket, registry: EndpointRegistry): CachedIdentity {
  const cached = cache.get(socket);
  if (cached && cached.generation === registry.generation) return cached;
  const peer = socket.authorized ? peerIdentity(socket) : undefined;
  const lookup: EndpointLookup = peer ? registry.resolve(peer) : { ok: false, reason: 'no-identity' };
  const fresh = { generation: registry.generation, lookup, ...(peer ? { peer } : {}) };
  cache.set(socket, fresh);
  return fresh;
}
