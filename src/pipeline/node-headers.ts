// `req.headers` as node:http builds it from raw name/value pairs, for requests that never came through node:http
// (replay, in-process tests): names lower-cased, a repeat joined with ', ', or dropped for the headers Node keeps
// only the first of.
import type { IncomingHttpHeaders } from 'node:http';

/** Headers Node keeps only the first of when repeated (node:http `matchKnownFields`). */
const FIRST_WINS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer',
  'retry-after', 'server', 'user-agent',
]);

export function nodeHeaders(raw: readonly (readonly [string, string])[]): IncomingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const [name, value] of raw) {
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) headers[key] = value;
    else if (!FIRST_WINS.has(key)) headers[key] = `${existing}, ${value}`;
  }
  return headers;
}
