// Framing checks the edge makes before any NEMS rule, on what Node's parser lets through:
// - only HTTP/1.1 and HTTP/1.0 request lines (llhttp also accepts `HTTP/2.0` and others on this listener);
// - exactly one Host (RFC 9112 §3.2: more than one is a 400; HTTP/1.1 without one is a 400; HTTP/1.0 may omit it).
//   Node keeps the first Host and drops the rest silently, so they are counted on the raw headers;
// - `Expect` only as `100-continue` (RFC 9110 §10.1.1: anything else is a 417);
// - no header the gateway checks may be named in `Connection`: a hop-by-hop nomination would make the gateway
//   check a header and then strip it (RFC 9110 §7.6.1), so the upstream would get the request without it.
import type { IncomingMessage } from 'node:http';
import { violation, type Rejection } from '../pipeline/types.js';

/** Headers a rule of the gateway reads; naming one in `Connection` is refused. Spelt as the NEMS pages write them. */
export const CHECKED_HEADERS: readonly string[] = [
  'fromASID', 'toASID', 'InteractionID', 'Authorization', 'Content-Type', 'Accept', 'Content-Encoding',
];

const CHECKED_BY_LOWER: ReadonlyMap<string, string> = new Map(CHECKED_HEADERS.map((name) => [name.toLowerCase(), name]));

/** Node's own test for a 100-continue expectation (lib/_http_server.js). */
const CONTINUE_EXPECTATION = /(?:^|\W)100-continue(?:$|\W)/i;

/** The rejection for a request whose framing the gateway refuses, or undefined when it may go on. */
export function framingRejection(req: IncomingMessage): Rejection | undefined {
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 1 && req.httpVersionMinor !== 0)) {
    return violation('http.version', 'Only HTTP/1.1 and HTTP/1.0 requests are accepted', { status: 505 });
  }
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 4 && name.length !== 10) continue;
    const lower = name.toLowerCase();
    if (lower === 'host') {
      hosts++;
    } else if (lower === 'connection') {
      const nominated = checkedHeaderIn(raw[i + 1]!);
      if (nominated) {
        return violation('http.connection-nominates-checked-header', `The Connection header names ${nominated}, which the gateway checks and must forward`);
      }
    }
  }
  if (hosts > 1) return violation('http.host', 'The request has more than one Host header');
  if (hosts === 0 && req.httpVersionMinor === 1) return violation('http.host', 'The HTTP/1.1 request has no Host header');
  const expect = req.headers.expect;
  if (expect !== undefined && !CONTINUE_EXPECTATION.test(expect)) {
    return violation('http.expect', 'The only expectation supported is 100-continue', { status: 417 });
  }
  return undefined;
}

function checkedHeaderIn(connection: string): string | undefined {
  for (const token of connection.split(',')) {
    const name = CHECKED_BY_LOWER.get(token.trim().toLowerCase());
    if (name) return name;
  }
  return undefined;
}
