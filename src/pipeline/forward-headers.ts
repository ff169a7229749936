// The headers a passing request is forwarded with: the client's, minus hop-by-hop and gateway-owned ones, plus the
// stages' overrides (ctx.forwardHeaders) and the gateway's own (X-Request-ID, Forwarded, X-Forwarded-Client-Cert).
// Moved here from edge/gateway.ts so the socket-free lifecycle can decide them.
import type { OutgoingHttpHeaders } from 'node:http';
import { HOP_BY_HOP_HEADERS, headersToDrop } from '../upstream/types.js';
import { isGatewayOwnedHeader } from './gateway-owned-headers.js';
import type { InboundRequest, RequestContext } from './types.js';

export function forwardHeaders(inbound: InboundRequest, ctx: RequestContext, body: Buffer | undefined): OutgoingHttpHeaders {
  const drop = dropSetFor(inbound.headers.connection);
  const out: OutgoingHttpHeaders = {};
  const raw = inbound.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (drop.has(lower) || isGatewayOwnedHeader(name) || lower in ctx.forwardHeaders) continue;
    const existing = out[name];
    out[name] = existing === undefined ? raw[i + 1]! : Array.isArray(existing) ? [...existing, raw[i + 1]!] : [String(existing), raw[i + 1]!];
  }
  Object.assign(out, ctx.forwardHeaders);
  out['x-request-id'] = inbound.requestId;
  out.forwarded = `for=${forwardedNode(inbound.peer.remoteAddress)};proto=https`;
  const fingerprint256 = inbound.peer.certificate?.fingerprint256;
  if (fingerprint256 !== undefined) {
    // Envoy's XFCC format: the verified certificate's hash and registered DNS name.
    out['x-forwarded-client-cert'] = `Hash=${fingerprint256.toLowerCase()};DNS=${ctx.endpoint.fqdn}`;
  }
  if (body) out['content-length'] = String(body.length);
  return out;
}

function forwardedNode(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.includes(':') ? `"[${address}]"` : address;
}

/** Drop sets by Connection value (clients send `keep-alive` on every request): computed once each, bounded. */
const dropSets = new Map<string, ReadonlySet<string>>();

function dropSetFor(connection: string | undefined): ReadonlySet<string> {
  if (connection === undefined) return HOP_BY_HOP_HEADERS;
  let drop = dropSets.get(connection);
  if (drop === undefined) {
    drop = headersToDrop(connection);
    if (connection.length > 256) return drop;
    if (dropSets.size >= 32) dropSets.clear();
    dropSets.set(connection, drop);
  }
  return drop;
}
