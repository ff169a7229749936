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
