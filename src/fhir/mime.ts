// The one list of FHIR MIME types NEMS accepts (docs/specification.md §7), with the Content-Type, Accept and `_format`
// parsers that decide against it. Parsers are bounded and never throw: hostile headers yield `undefined`.
import type { IncomingHttpHeaders } from 'node:http';
import { outcomeMedia, type FhirFormat, type OutcomeMedia } from './operation-outcome.js';

/** Which MIME types a route takes (route table `mime`): all 8 FHIR types, or the 4 XML ones (publish). */
export type MimeFamily = 'fhir' | 'fhir-xml';

export interface FhirMimeType {
  /** The spelling as the NEMS pages write it; forwarded when config asks for canonical spelling. */
  readonly spelling: string;
  /** Lower-case `type/subtype`. */
  readonly essence: string;
  /** Whether the spelling carries `;charset=utf-8`. */
  readonly charset: boolean;
  readonly format: FhirFormat;
}

/** What NEMS assumes when no MIME type is given (docs/specification.md §7); the gateway forwards it explicitly. */
export const DEFAULT_FHIR_MIME_TYPE = 'application/xml+fhir;charset=utf-8';
/** What a `_format=json` (no FHIR spelling) is forwarded as, mirroring the XML default's style. */
export const DEFAULT_FHIR_JSON_MIME_TYPE = 'application/json+fhir;charset=utf-8';

function fhirType(essence: string, charset: boolean, format: FhirFormat): FhirMimeType {
  return { spelling: charset ? `${essence};charset=utf-8` : essence, essence, charset, format };
}

/** The 8 types of docs/specification.md §7. Order matters only as the last tie-break in Accept negotiation: the default comes first. */
export const FHIR_MIME_TYPES: readonly FhirMimeType[] = [
  fhirType('application/xml+fhir', true, 'xml'),
  fhirType('application/xml+fhir', false, 'xml'),
  fhirType('application/fhir+xml', true, 'xml'),
  fhirType('application/fhir+xml', false, 'xml'),
  fhirType('application/json+fhir', true, 'json'),
  fhirType('application/json+fhir', false, 'json'),
  fhirType('application/fhir+json', true, 'json'),
  fhirType('application/fhir+json', false, 'json'),
];

/** The 4 XML types the Publication API takes (docs/specification.md §2.1, §7). */
export const FHIR_XML_MIME_TYPES: readonly FhirMimeType[] = FHIR_MIME_TYPES.filter((t) => t.format === 'xml');

export function mimeTypesFor(family: MimeFamily): readonly FhirMimeType[] {
  return family === 'fhir-xml' ? FHIR_XML_MIME_TYPES : FHIR_MIME_TYPES;
}

export function defaultMimeTypeFor(format: FhirFormat): string {
  return format === 'json' ? DEFAULT_FHIR_JSON_MIME_TYPE : DEFAULT_FHIR_MIME_TYPE;
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 9110 media-type grammar: type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] )

/** Longest Content-Type or Accept value the parsers look at; real clients send tens of bytes. */
export const MAX_MIME_HEADER_LENGTH = 4096;
/** Most Accept elements considered; more is not a real client. */
const MAX_ACCEPT_ELEMENTS = 64;

export interface MediaType {
  /** Lower-case. */
  readonly type: string;
  /** Lower-case. */
  readonly subtype: string;
  /** Lower-case parameter names; values unquoted, case kept. */
  readonly params: ReadonlyMap<string, string>;
}

export interface MediaRange extends MediaType {
  /** Weight 0..1 (q parameter; 1 when absent). */
  readonly q: number;
  /** Position in the Accept header, for tie-breaks. */
  readonly index: number;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

class Cursor {
  pos = 0;
  constructor(readonly text: string) {}
  get done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(): string {
    return this.text[this.pos] ?? '';
  }
  skipOws(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
  token(): string | undefined {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.peek())) this.pos++;
    return this.pos > start ? this.text.slice(start, this.pos) : undefined;
  }
  quotedString(): string | undefined {
    if (this.peek() !== '"') return undefined;
    this.pos++;
    let out = '';
    while (!this.done) {
      let c = this.text[this.pos++]!;
      if (c === '"') return out;
      if (c === '\\') {
        // quoted-pair: a backslash and the character it escapes, itself no control character either.
        if (this.done) return undefined;
        c = this.text[this.pos++]!;
      }
      // qdtext excludes control characters other than HTAB.
      const code = c.charCodeAt(0);
      if ((code < 0x20 && c !== '\t') || code === 0x7f) return undefined;
      out += c;
    }
    return undefined;
  }
}

interface ParsedElement {
  readonly type: string;
  readonly subtype: string;
  readonly params: [string, string][];
}

/** Parses one media type or media range; `undefined` when malformed. Parameter order is kept. */
function parseElement(text: string): ParsedElement | undefined {
  const c = new Cursor(text);
  c.skipOws();
  const type = c.token();
  if (!type || c.peek() !== '/') return undefined;
  c.pos++;
  const subtype = c.token();
  if (!subtype) return undefined;
  const params: [string, string][] = [];
  c.skipOws();
  while (!c.done) {
    if (c.peek() !== ';') return undefined;
    c.pos++;
    c.skipOws();
    // RFC 9110 allows empty parameters (`type/sub;` or `;;`).
    if (c.done || c.peek() === ';') continue;
    const name = c.token();
    if (!name || c.peek() !== '=') return undefined;
    c.pos++;
    const value = c.peek() === '"' ? c.quotedString() : c.token();
    if (value === undefined) return undefined;
    params.push([name.toLowerCase(), value]);
    c.skipOws();
  }
  return { type: type.toLowerCase(), subtype: subtype.toLowerCase(), params };
}

/** Parses a Content-Type value. Duplicate parameter names make it malformed. */
export function parseMediaType(value: string): MediaType | undefined {
  if (value.length > MAX_MIME_HEADER_LENGTH) return undefined;
  const parsed = parseElement(value);
  if (!parsed) return undefined;
  const params = new Map<string, string>();
  for (const [name, v] of parsed.params) {
    if (params.has(name)) return undefined;
    params.set(name, v);
  }
  return { type: parsed.type, subtype: parsed.subtype, params };
}

/** Splits a list header on commas outside quoted strings. */
function splitList(value: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}

const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Parses an Accept header into media ranges. Malformed elements are skipped (RFC 9110 lets a recipient ignore
 * what it cannot parse); `undefined` when nothing usable is left or the header is oversized.
 */
export function parseAccept(value: string): MediaRange[] | undefined {
  if (value.length > MAX_MIME_HEADER_LENGTH) return undefined;
  const ranges: MediaRange[] = [];
  const elements = splitList(value);
  if (elements.length > MAX_ACCEPT_ELEMENTS) return undefined;
  elements.forEach((element, index) => {
    if (element.trim() === '') return;
    const parsed = parseElement(element);
    if (!parsed) return;
    // `*/subtype` is not a media range.
    if (parsed.type === '*' && parsed.subtype !== '*') return;
    const params = new Map<string, string>();
    let q = 1;
    for (const [name, v] of parsed.params) {
      // `q` separates media-type parameters from the weight; anything after it is an ignored extension.
      if (name === 'q') {
        if (!QVALUE.test(v)) return;
        q = Number(v);
        break;
      }
      if (params.has(name)) return;
      params.set(name, v);
    }
    ranges.push({ type: parsed.type, subtype: parsed.subtype, params, q, index });
  });
  return ranges.length > 0 ? ranges : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Matching against the FHIR list

/** The only parameter an accepted FHIR type may carry is `charset=utf-8` (case-insensitive value). */
function charsetOf(params: ReadonlyMap<string, string>): 'none' | 'utf-8' | 'other' {
  let charset: 'none' | 'utf-8' | 'other' = 'none';
  for (const [name, value] of params) {
    if (name !== 'charset' || value.toLowerCase() !== 'utf-8') return 'other';
    charset = 'utf-8';
  }
  return charset;
}

/**
 * The accepted FHIR type a Content-Type value names, or `undefined` (unsupported or malformed). Case and
 * whitespace are not significant; a charset other than utf-8 or any other parameter is unsupported.
 */
export function matchFhirMimeType(value: string, family: MimeFamily = 'fhir'): FhirMimeType | undefined {
  return memoised(contentTypeMemo, family, value, matchFhirMimeTypeUncached);
}

function matchFhirMimeTypeUncached(value: string, family: MimeFamily): FhirMimeType | undefined {
  const media = parseMediaType(value);
  if (!media) return undefined;
  const charset = charsetOf(media.params);
  if (charset === 'other') return undefined;
  const essence = `${media.type}/${media.subtype}`;
  return mimeTypesFor(family).find((t) => t.essence === essence && t.charset === (charset === 'utf-8'));
}

/** How specifically a range names a candidate (RFC 9110 §12.5.1: the most specific range sets the weight). */
function specificity(range: MediaRange, candidate: FhirMimeType): number {
  const charset = charsetOf(range.params);
  if (charset === 'other') return 0;
  const [type, subtype] = candidate.essence.split('/') as [string, string];
  if (range.type === '*' && range.subtype === '*') return 1;
  if (range.type === type && range.subtype === '*') return 2;
  if (range.type !== type || range.subtype !== subtype) return 0;
  if (charset === 'utf-8') return candidate.charset ? 4 : 0;
  // A bare type names its own spelling most closely, and its charset sibling too.
  return candidate.charset ? 3 : 4;
}

export type AcceptNegotiation =
  | {
      readonly ok: true;
      readonly type: FhirMimeType;
      /** True when the client named the chosen type; false when only a wildcard (`*\/*`, `application/*`) matched. */
      readonly explicit: boolean;
    }
  | { readonly ok: false };

/**
 * Chooses the response type from an Accept value: highest weight wins, q=0 excludes, then the more specific
 * range, then the client's order, then the table order (default first).
 */
export function negotiateAccept(accept: string, family: MimeFamily): AcceptNegotiation {
  return memoised(acceptMemo, family, accept, negotiateAcceptUncached);
}

function negotiateAcceptUncached(accept: string, family: MimeFamily): AcceptNegotiation {
  const ranges = parseAccept(accept);
  if (!ranges) return { ok: false };
  let best: { type: FhirMimeType; q: number; spec: number; index: number } | undefined;
  // Candidates are visited in table order, so a full tie keeps the earlier one (the default first).
  for (const candidate of mimeTypesFor(family)) {
    let determining: MediaRange | undefined;
    let determiningSpec = 0;
    for (const range of ranges) {
      const spec = specificity(range, candidate);
      if (spec > determiningSpec) {
        determining = range;
        determiningSpec = spec;
      }
    }
    if (!determining || determining.q <= 0) continue;
    const entry = { type: candidate, q: determining.q, spec: determiningSpec, index: determining.index };
    if (
      !best ||
      entry.q > best.q ||
      (entry.q === best.q && (entry.spec > best.spec || (entry.spec === best.spec && entry.index < best.index)))
    ) {
      best = entry;
    }
  }
  if (!best) return { ok: false };
  return { ok: true, type: best.type, explicit: best.spec >= 3 };
}

// ---------------------------------------------------------------------------------------------------------------
// Memoisation: clients send the same few Content-Type and Accept values on every request, and both decisions are
// pure functions of (value, family). Results are immutable and shared. Bounded: short values only, and the table
// is emptied when full, so hostile variety costs one parse per request, as without it.

const MEMO_MAX_ENTRIES = 256;
const MEMO_MAX_VALUE_LENGTH = 256;
const contentTypeMemo: Record<MimeFamily, Map<string, FhirMimeType | undefined>> = { fhir: new Map(), 'fhir-xml': new Map() };
const acceptMemo: Record<MimeFamily, Map<string, AcceptNegotiation>> = { fhir: new Map(), 'fhir-xml': new Map() };

function memoised<T>(
  memo: Record<MimeFamily, Map<string, T>>,
  family: MimeFamily,
  value: string,
  compute: (value: string, family: MimeFamily) => T,
): T {
  if (value.length > MEMO_MAX_VALUE_LENGTH) return compute(value, family);
  const table = memo[family];
  const cached = table.get(value);
  if (cached !== undefined || table.has(value)) return cached as T;
  const result = compute(value, family);
  if (table.size >= MEMO_MAX_ENTRIES) table.clear();
  table.set(value, typeof result === 'object' && result !== null ? Object.freeze(result) : result);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// _format (docs/specification.md §7: wins over Accept)

export interface FormatParameter {
  readonly format: FhirFormat;
  /** Set when `_format` named one of the 8 FHIR types rather than a short form (`xml`, `application/json`). */
  readonly fhirType?: FhirMimeType;
}

const SHORT_FORMATS: Readonly<Record<string, FhirFormat>> = {
  xml: 'xml',
  'text/xml': 'xml',
  'application/xml': 'xml',
  json: 'json',
  'application/json': 'json',
};

/**
 * Reads a `_format` value. A `+` left unencoded in the query arrives as a space (`application/fhir json`),
 * so a space inside the type/subtype is read back as `+`.
 */
export function parseFormatParameter(value: string): FormatParameter | undefined {
  if (value.length > 256) return undefined;
  const trimmed = value.trim().replace(/^(application\/(?:fhir|xml|json)) (xml|json|fhir)\b/i, '$1+$2');
  const short = SHORT_FORMATS[trimmed.toLowerCase()];
  if (short) return { format: short };
  const fhir = matchFhirMimeType(trimmed, 'fhir');
  return fhir ? { format: fhir.format, fhirType: fhir } : undefined;
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * A cheap guess at the format for a rejection raised before the MIME stage ran. Never throws; JSON only when
 * `_format` or Accept clearly asks for a JSON FHIR type, else XML (the NEMS default).
 */
export function preferredErrorFormat(
  headers: IncomingHttpHeaders | Readonly<Record<string, string | string[] | undefined>>,
  query?: URLSearchParams | string,
): FhirFormat {
  return preferredErrorMedia(headers, query).format;
}

/**
 * preferredErrorFormat with the Content-Type to label it with: the FHIR type the client named, when it named one
 * in that format (rule `mime.response-type`), else the default spelling. Never throws.
 */
export function preferredErrorMedia(
  headers: IncomingHttpHeaders | Readonly<Record<string, string | string[] | undefined>>,
  query?: URLSearchParams | string,
): OutcomeMedia {
  try {
    const params = typeof query === 'string' ? new URLSearchParams(query.slice(0, 2048)) : query;
    const raw = headers['accept'];
    const accept = Array.isArray(raw) ? raw.join(', ') : raw;
    const format = params?.get('_format');
    return responseMedia(typeof accept === 'string' ? accept : undefined, format ?? undefined, true);
  } catch {
    return outcomeMedia('xml');
  }
}

/**
 * The response format and its label from Accept and `_format` (`_format` wins, docs/specification.md §7), as the MIME stage decides them:
 * XML unless JSON was asked for, labelled with the FHIR type Accept negotiated or `_format` named when it is of that
 * format (rule `mime.response-type`). `explicitJsonOnly` (rejections raised before the MIME stage): a JSON answer
 * only for an explicitly named JSON type, never for a wildcard.
 */
export function responseMedia(accept: string | undefined, format: string | undefined, explicitJsonOnly = false): OutcomeMedia {
  const negotiated = accept !== undefined && accept.length <= MAX_MIME_HEADER_LENGTH ? negotiateAccept(accept, 'fhir') : undefined;
  const chosen = negotiated?.ok ? negotiated.type : undefined;
  if (format !== undefined) {
    const requested = parseFormatParameter(format);
    if (!requested) return outcomeMedia('xml');
    return outcomeMedia(requested.format, requested.fhirType ?? (chosen?.format === requested.format ? chosen : undefined));
  }
  if (!chosen) return outcomeMedia('xml');
  if (explicitJsonOnly && !(negotiated?.ok && negotiated.explicit)) return outcomeMedia('xml', chosen);
  return outcomeMedia(chosen.format, chosen);
}
