// Which upstream response headers reach the client: everything end-to-end, nothing hop-by-hop.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { headersToDrop } from './types.js';

export function endToEndResponseHeaders(upstream: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const drop = headersToDrop(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (drop.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}
