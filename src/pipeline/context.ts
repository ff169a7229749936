// The one place a RequestContext is made: from an inbound request and the endpoint its client certificate
// resolved to. The lifecycle calls it for every request; unit tests of a single stage call it too.
import type { Endpoint } from '../identity/types.js';
import type { InboundRequest, RequestContext } from './types.js';

export function createRequestContext(inbound: InboundRequest, endpoint: Endpoint, receivedAt: number): RequestContext {
  const target = inbound.target;
  const q = target.indexOf('?');
  return {
    requestId: inbound.requestId,
    method: inbound.method,
    path: q === -1 ? target : target.slice(0, q),
    query: new URLSearchParams(q === -1 ? '' : target.slice(q + 1)),
    headers: inbound.headers,
    rawHeaders: inbound.rawHeaders,
    endpoint,
    source: inbound,
    receivedAt,
    nhsNumbers: [],
    forwardHeaders: inbound.edgeHeaders ? { ...inbound.edgeHeaders } : {},
    audit: {},
  };
}
