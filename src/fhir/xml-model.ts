// The FHIR XML model shared by both parsing engines (xml-fast-xml-parser.ts, xml-single-pass.ts): the tree type,
// limits, failure reasons, the strict UTF-8 decode every body gets first, and entity decoding for attribute values.

import { decodeBodyText } from './body-text.js';

export const FHIR_XML_NAMESPACE = 'http://hl7.org/fhir';

/** One XML element: name, decoded attributes, child elements in document order, and its own character data. */
export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /**
   * Character data directly inside this element, with entity references NOT decoded (use decodeXmlText).
   * FHIR only uses it in narrative xhtml, so decoding it eagerly would be work for nothing on a 3 MB body.
   */
  readonly text: string;
}

export interface XmlLimits {
  /** Deepest element nesting accepted (root = 1). FHIR event Bundles need ~12; narrative xhtml a few more. */
  readonly maxDepth: number;
  /** Total elements in the document. */
  readonly maxElements: number;
  /** Longest raw attribute value, in characters. */
  readonly maxAttributeValueChars: number;
  /** Attributes on one element. */
  readonly maxAttributesPerElement: number;
  /** Longest element or attribute name. */
  readonly maxNameChars: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = Object.freeze({
  maxDepth: 64,
  maxElements: 150_000,
  maxAttributeValueChars: 65_536,
  maxAttributesPerElement: 32,
  maxNameChars: 128,
});

export type XmlParseFailureReason =
  | 'too-large'
  | 'empty'
  | 'encoding'
  | 'dtd'
  | 'processing-instruction'
  | 'too-deep'
  | 'too-many-elements'
  | 'attribute-too-long'
  | 'too-many-attributes'
  | 'forbidden-name'
  | 'entity'
  | 'cdata'
  | 'not-well-formed';

export type XmlParseResult =
  | { readonly ok: true; readonly root: XmlElement }
  /** `detail` is gateway-written and never quotes the document. */
  | { readonly ok: false; readonly reason: XmlParseFailureReason; readonly detail: string };


export type XmlParseFailure = Extract<XmlParseResult, { ok: false }>;

export function fail(reason: XmlParseFailureReason, detail: string): XmlParseFailure {
  return { ok: false, reason, detail };
}

/** Characters XML 1.0 forbids anywhere (C0 controls except tab/LF/CR, and the two non-characters). */
const ILLEGAL_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

/** The byte cap, then strict UTF-8 and the characters XML forbids: what every engine checks before reading. */
export function decodeXmlBody(body: Buffer, maxBytes: number): { ok: true; text: string } | XmlParseFailure {
  const decoded = decodeBodyText(body, maxBytes);
  if (!decoded.ok) return decoded;
  const text = decoded.text;
  if (ILLEGAL_CHARS.test(text)) return fail('encoding', 'body contains characters XML does not allow (wrong encoding?)');
  return { ok: true, text };
}

const XML_DECLARATION =
  /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]{0,39})\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/;

/** XML attribute-value normalisation: literal tab, CR and LF become spaces (character references survive). */
export function normaliseAttributeWhitespace(value: string): string {
  return LITERAL_WHITESPACE.test(value) ? value.replace(/\r\n|[\t\n\r]/g, ' ') : value;
}

const LITERAL_WHITESPACE = /[\t\n\r]/;

/** An `&` that does not start a predefined entity or a numeric character reference (tested, never replaced). */
export const BAD_TEXT_REFERENCE = /&(?!(?:#x[0-9A-Fa-f]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos);)/;

export const TEXT_ENTITY_PROBLEM = 'text has an undefined or malformed entity reference';
export const ATTRIBUTE_ENTITY_PROBLEM = 'attribute value has an undefined or malformed entity reference';

/**
 * The checks on one run of character data between two pieces of markup, as both engines make them: `]]>` may not
 * appear (XML 1.0 docs/specification.md §2.4), a failure returned at once; every `&` must start a reference to a character XML allows,
 * else the document's first entity problem is remembered (reported only once the structure is known good). Each
 * run is checked on its own, never joined with the next: a reference cannot span a comment.
 */
export function checkCharacterData(segment: string, problem: { entity?: string }): XmlParseFailure | undefined {
  if (segment.includes(']]>')) return fail('not-well-formed', "']]>' in character data");
  if (problem.entity === undefined && segment.includes('&') && !referencesAreWellFormed(segment)) problem.entity = TEXT_ENTITY_PROBLEM;
  return undefined;
}

const NUMERIC_REFERENCE = /&#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}));/g;

/** decodeXmlText(value) !== undefined, without building the decoded text (character data stays undecoded). */
function referencesAreWellFormed(value: string): boolean {
  if (BAD_TEXT_REFERENCE.test(value)) return false;
  if (!value.includes('&#')) return true;
  NUMERIC_REFERENCE.lastIndex = 0;
  for (let m = NUMERIC_REFERENCE.exec(value); m !== null; m = NUMERIC_REFERENCE.exec(value)) {
    if (!isXmlChar(m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]))) return false;
  }
  return true;
}

/** The attribute check both engines make: its value, whitespace-normalised and trimmed, must decode. */
export function checkAttributeValue(problem: { entity?: string }, _name: string, raw: string): void {
  if (problem.entity === undefined && raw.includes('&') && decodeXmlText(normaliseAttributeWhitespace(raw.trim())) === undefined) {
    problem.entity = ATTRIBUTE_ENTITY_PROBLEM;
  }
}

const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Decodes the five predefined entities and numeric character references. Any other `&` (an undefined entity,
 * or a bare ampersand) makes the document not well formed, so the result is undefined.
 */
export function decodeXmlText(value: string): string | undefined {
  if (!value.includes('&')) return value;
  let bad = false;
  // One regex pass (no string-building loop): a reference, or any other '&', which is the failure case.
  const out = value.replace(/&(?:(#x[0-9A-Fa-f]{1,6}|#[0-9]{1,7}|[A-Za-z]{2,4});)?/g, (_match, ref: string | undefined) => {
    let decoded: string | undefined;
    if (ref === undefined) decoded = undefined;
    else if (ref.startsWith('#x')) decoded = fromCodePoint(parseInt(ref.slice(2), 16));
    else if (ref.startsWith('#')) decoded = fromCodePoint(parseInt(ref.slice(1), 10));
    else decoded = Object.prototype.hasOwnProperty.call(PREDEFINED, ref) ? PREDEFINED[ref] : undefined;
    if (decoded === undefined) bad = true;
    return decoded ?? '';
  });
  return bad ? undefined : out;
}

/** Only characters XML 1.0 allows: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF. */
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

function fromCodePoint(cp: number): string | undefined {
  return isXmlChar(cp) ? String.fromCodePoint(cp) : undefined;
}


/** Index after the XML declaration (0 when there is none), or a failure for a non-UTF-8 or malformed one. */
export function skipXmlDeclaration(text: string): number | XmlParseFailure {
  const declaration = XML_DECLARATION.exec(text);
  if (declaration) {
    const encoding = declaration[3];
    if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
      return fail('encoding', 'XML declaration names an encoding other than UTF-8');
    }
    return declaration[0].length;
  }
  if (text.startsWith('<?xml') && /^<\?xml[ \t\r\n?]/.test(text)) return fail('not-well-formed', 'XML declaration is malformed');
  return 0;
}

/** Index of the first character at or after `j` that is not XML white space. */
export function skipSpace(text: string, j: number): number {
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    j++;
  }
  return j;
}

// ASCII XML names only: FHIR and xhtml need nothing else, and it keeps both scans simple.
function isNameStart(c: number): boolean {
  // A-Z, a-z, _
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

function isNameChar(c: number): boolean {
  // A-Z, a-z, 0-9, _ . : -
  return isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x3a || c === 0x2d;
}

/** Returns the index after an ASCII XML name starting at `start` (== start when none), or -1 when too long. */
export function scanName(text: string, start: number, maxChars: number): number {
  if (!isNameStart(text.charCodeAt(start))) return start;
  let j = start + 1;
  while (j < text.length && isNameChar(text.charCodeAt(j))) {
    if (j - start >= maxChars) return -1;
    j++;
  }
  return j;
}

/**
 * Names that would reach JavaScript object keys in a naive tree builder (fast-xml-parser builds objects keyed by
 * them); FHIR never uses them. `#text` and `:@` cannot be scanned as names at all.
 */
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

/** True for a reserved element or attribute name. Looked up only at their lengths: hashing every name showed in profiles. */
export function isReservedName(name: string): boolean {
  return (name.length === 9 || name.length === 11) && RESERVED_NAMES.has(name);
}

/**
 * Scans `name="value"` pairs up to `>` or `/>` of a start tag, refusing what is not well formed or over the limits;
 * returns the index after the tag, or a failure. Each attribute's raw (undecoded) value goes to `onAttribute`
 * with `ctx`, when given (the single-pass engine builds its tree from them; the pre-scan only checks).
 */
export function scanAttributes<C>(
  text: string,
  from: number,
  lim: XmlLimits,
  ctx?: C,
  onAttribute?: (ctx: C, name: string, raw: string) => void,
): number | XmlParseFailure {
  const seen: string[] = [];
  let j = from;
  for (;;) {
    const afterSpace = skipSpace(text, j);
    const c = text.charCodeAt(afterSpace);
    if (c === 0x3e /* > */) return afterSpace + 1;
    if (c === 0x2f /* / */) {
      if (text.charCodeAt(afterSpace + 1) !== 0x3e) return fail('not-well-formed', 'malformed empty-element tag');
      return afterSpace + 2;
    }
    if (afterSpace === j) return fail('not-well-formed', 'attributes must be separated by white space');
    const nameEnd = scanName(text, afterSpace, lim.maxNameChars);
    if (nameEnd === -1) return fail('forbidden-name', 'attribute name is too long');
    if (nameEnd === afterSpace) return fail('not-well-formed', 'malformed attribute');
    // FHIR primitives are `<x value=".."/>`: reuse the one string rather than slicing it 200 times per message.
    const name = nameEnd - afterSpace === 5 && text.startsWith('value', afterSpace) ? 'value' : text.slice(afterSpace, nameEnd);
    if (isReservedName(name)) return fail('forbidden-name', 'attribute name is reserved');
    if (seen.includes(name)) return fail('not-well-formed', 'repeated attribute');
    seen.push(name);
    if (seen.length > lim.maxAttributesPerElement) return fail('too-many-attributes', `more than ${lim.maxAttributesPerElement} attributes on one element`);
    let k = skipSpace(text, nameEnd);
    if (text.charCodeAt(k) !== 0x3d /* = */) return fail('not-well-formed', 'attribute without a value');
    k = skipSpace(text, k + 1);
    const quote = text.charAt(k);
    if (quote !== '"' && quote !== "'") return fail('not-well-formed', 'attribute value must be quoted');
    const close = text.indexOf(quote, k + 1);
    if (close === -1) return fail('not-well-formed', 'unterminated attribute value');
    if (close - k - 1 > lim.maxAttributeValueChars) {
      return fail('attribute-too-long', `attribute value longer than ${lim.maxAttributeValueChars} characters`);
    }
    const lt = text.indexOf('<', k + 1);
    if (lt !== -1 && lt < close) return fail('not-well-formed', "'<' inside an attribute value");
    if (onAttribute) onAttribute(ctx as C, name, text.slice(k + 1, close));
    j = close + 1;
  }
}
