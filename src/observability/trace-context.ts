// W3C Trace Context (https://www.w3.org/TR/trace-context/): the gateway joins the client's trace when its
// `traceparent` is valid and starts a new one otherwise (never a rejection: tracing must not change what a client
// sees). As an intermediary it forwards the same trace id with its own span id as the new parent (Trace Context §3.2.2.3), and
// `tracestate` unchanged only with a trace it could parse (Trace Context §3.3: without a valid traceparent tracestate is dropped).
import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface TraceContext {
  /** 32 lowercase hex digits; in the request log line. */
  readonly traceId: string;
  /** This hop's span id (16 hex digits), the parent-id sent upstream. */
  readonly spanId: string;
  /** The client's span id when the trace was joined. */
  readonly parentId?: string;
  /** False when the gateway started the trace (no traceparent, or an invalid one). */
  readonly joined: boolean;
  /** Headers for the upstream request: `traceparent`, and `tracestate` when the client's trace was joined. */
  readonly forwardHeaders: Readonly<Record<string, string>>;
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** version "-" trace-id "-" parent-id "-" trace-flags; for version 00 nothing may follow (Trace Context §3.2.4). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
/** tracestate is at most 32 list members of at most 256 characters (Trace Context §3.3.1); a generous byte cap before forwarding. */
const MAX_TRACESTATE_BYTES = 8192;
/** Printable ASCII without DEL; tracestate is forwarded, so nothing a header cannot carry. */
const TRACESTATE_CHARS = /^[\x20-\x7e]*$/;

interface ParsedParent {
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: string;
}

/** Parses one traceparent value; undefined when it is not one this gateway may join. */
export function parseTraceparent(value: string): ParsedParent | undefined {
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff') return undefined;
  // Version 00 has exactly four fields; a later version may append fields, which a version-00 reader ignores.
  if (version === '00' && rest !== undefined) return undefined;
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_SPAN_ID) return undefined;
  return { traceId, parentId, flags };
}

/**
 * Ids come from a pool of random bytes refilled 4 KB at a time: one randomBytes() call per id (two per request) cost
 * ~6 % of the gateway's CPU on a keep-alive GET. W3C ids need to be random, not secret.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;

function newId(bytes: number, zero: string): string {
  let id: string;
  do {
    if (poolOffset + bytes > POOL_BYTES) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    id = pool.toString('hex', poolOffset, poolOffset + bytes);
    poolOffset += bytes;
  } while (id === zero);
  return id;
}

/** The trace this request belongs to: the client's (exactly one valid traceparent header) or a new one. */
export function traceContextFor(headers: IncomingHttpHeaders): TraceContext {
  const header = headers['traceparent'];
  // Node joins repeated headers of unknown names with ", ": two traceparents are never one valid value.
  const parent = typeof header === 'string' ? parseTraceparent(header) : undefined;
  const spanId = newId(8, ZERO_SPAN_ID);
  if (!parent) {
    const traceId = newId(16, ZERO_TRACE_ID);
    // Flags 00: not sampled; the gateway records no spans of its own, it only carries the trace on.
    return { traceId, spanId, joined: false, forwardHeaders: { traceparent: `00-${traceId}-${spanId}-00` } };
  }
  // Only the sampled bit is defined for version 00; other bits are cleared when forwarding as version 00 (Trace Context §3.2.2.5).
  const flags = (parseInt(parent.flags, 16) & 0x01).toString(16).padStart(2, '0');
  const forwardHeaders: Record<string, string> = { traceparent: `00-${parent.traceId}-${spanId}-${flags}` };
  const state = headers['tracestate'];
  const joinedState = Array.isArray(state) ? state.join(',') : state;
  if (joinedState !== undefined && joinedState.length <= MAX_TRACESTATE_BYTES && TRACESTATE_CHARS.test(joinedState) && joinedState.trim() !== '') {
    forwardHeaders['tracestate'] = joinedState;
  }
  return { traceId: parent.traceId, spanId, parentId: parent.parentId, joined: true, forwardHeaders };
}
