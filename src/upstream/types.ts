// One Upstream interface for every NEMS core the gateway can talk to: a remote NEMS over HTTP(S) (Spine, or
// `nems-gateway core` on another host) or the embedded reference core in-process. The pipeline never knows which.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AsidRegistration } from '../identity/types.js';

export interface ForwardRequest {
  readonly requestId: string;
  readonly method: string;
  /** Path and query exactly as the client sent them. */
  readonly url: string;
  /** Headers to send upstream: the client's minus hop-by-hop and gateway-owned ones, plus the gateway's own. */
  readonly headers: OutgoingHttpHeaders;
  /** The client's body bytes, read once by the pipeline; undefined for requests without a body. */
  readonly body?: Buffer;
  /** The registered ASID the request was authorised for (selects a per-ASID upstream client certificate). */
  readonly asid?: AsidRegistration;
}

export interface ForwardResult {
  readonly status: number;
  /** Milliseconds from dispatch to the response being fully written to the client. */
  readonly upstreamMs: number;
}

export type UpstreamFailureKind = 'unreachable' | 'timeout' | 'aborted';

/** Thrown (rejected) by forward() when no upstream response could be relayed to the client. */
export class UpstreamError extends Error {
  constructor(readonly kind: UpstreamFailureKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

export interface UpstreamReadiness {
  readonly ok: boolean;
  readonly reason: string;
}

export interface Upstream {
  readonly kind: string;
  /**
   * Sends the request and relays the response to `res` (status, end-to-end headers, body), resolving once the
   * response is complete. Rejects with UpstreamError before anything was written when the upstream cannot be
   * reached or times out, so the edge can answer 502/504. `clientRequest` is the client's message, used only to
   * watch for the client going away (the upstream request must then be destroyed).
   */
  forward(request: ForwardRequest, clientRequest: IncomingMessage, res: ServerResponse): Promise<ForwardResult>;
  ready(): Promise<UpstreamReadiness>;
  close(): Promise<void>;
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction, plus any header named in Connection.
 * `expect` is dropped because the gateway has already answered 100-continue and holds the whole body.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'expect', 'http2-settings',
]);

/** Returns the set of header names to drop from a message: hop-by-hop ones plus those listed in Connection. */
export function headersToDrop(connectionHeader: string | string[] | undefined): Set<string> {
  const drop = new Set(HOP_BY_HOP_HEADERS);
  const values = Array.isArray(connectionHeader) ? connectionHeader : connectionHeader ? [connectionHeader] : [];
  for (const value of values) {
    for (const token of value.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) drop.add(name);
    }
  }
  return drop;
}

/**
 * The request headers a forwarder may send: the edge has already removed hop-by-hop headers, but a forwarder never
 * relies on that (defence in depth). Returns the same object when there is nothing to drop (the usual case).
 */
export function endToEndRequestHeaders(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  let drop: Set<string> | undefined;
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(lower)) {
      drop ??= headersToDrop(headerValue(headers, 'connection'));
      break;
    }
  }
  if (!drop) return headers;
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!drop.has(name.toLowerCase())) out[name] = value;
  return out;
}

function headerValue(headers: OutgoingHttpHeaders, lowerName: string): string | string[] | undefined {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === lowerName) return typeof value === 'number' ? String(value) : value;
  }
  return undefined;
}
