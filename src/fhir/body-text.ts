// The first step for every body parser (JSON and both XML engines): the byte cap before anything is read, then
// strict UTF-8 (a byte-order mark is tolerated). Each parser maps the failure into its own result type.

export interface BodyTextFailure {
  readonly ok: false;
  readonly reason: 'too-large' | 'empty' | 'encoding';
  /** Gateway-written; never quotes the body. */
  readonly detail: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function decodeBodyText(body: Buffer, maxBytes: number): { readonly ok: true; readonly text: string } | BodyTextFailure {
  if (body.length > maxBytes) return { ok: false, reason: 'too-large', detail: `body exceeds ${maxBytes} bytes` };
  if (body.length === 0) return { ok: false, reason: 'empty', detail: 'body is empty' };
  try {
    return { ok: true, text: UTF8.decode(body) };
  } catch {
    return { ok: false, reason: 'encoding', detail: 'body is not valid UTF-8' };
  }
}

/**
 * The Spine code for a body the parsers refused, by the parser's reason (XmlParseFailureReason or
 * JsonParseFailureReason). One place for the gateway's body stage and the embedded core:
 * - `body.malformed` → 400 BAD_REQUEST: content that is not well-formed XML, not JSON, or not UTF-8. Spine Core's
 *   error table (https://developer.nhs.uk/apis/spine-core/resources_error_handling.html, "Malformed request
 *   errors") names BAD_REQUEST for "malformed JSON or XML content in request body".
 * - `body.unsafe-content` → 400 INVALID_REQUEST_MESSAGE: well-formed content the gateway refuses to process (DTDs
 *   and entities, processing instructions, CDATA, depth, element, key and attribute limits, duplicate or
 *   prototype keys) and an empty body: an invalid request message rather than a malformed one.
 * - over the byte cap → 413 PAYLOAD_TOO_LARGE.
 */
export function bodyFailureCode(reason: string): 'BAD_REQUEST' | 'INVALID_REQUEST_MESSAGE' | 'PAYLOAD_TOO_LARGE' {
  if (reason === 'too-large') return 'PAYLOAD_TOO_LARGE';
  return MALFORMED_REASONS.has(reason) ? 'BAD_REQUEST' : 'INVALID_REQUEST_MESSAGE';
}

const MALFORMED_REASONS: ReadonlySet<string> = new Set(['not-well-formed', 'syntax', 'encoding']);
