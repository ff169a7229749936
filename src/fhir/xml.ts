// Safe FHIR XML parsing (spec digest §2.3, issue 4 point 1). Every body is hostile: the bytes are capped, decoded
// as strict UTF-8 and pre-scanned in one linear pass (no DTD, no entities, no processing instructions, bounded
// depth, element count and attribute size) before fast-xml-parser builds a tree with entity processing off.
// The tree is then normalised into a small typed model with ordered children and decoded attribute values.
import { XMLParser } from 'fast-xml-parser';

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

type Failure = Extract<XmlParseResult, { ok: false }>;

function fail(reason: XmlParseFailureReason, detail: string): Failure {
  return { ok: false, reason, detail };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Names that would reach JavaScript object keys inside the parser; FHIR never uses them. */
const FORBIDDEN_NAMES = new Set(['__proto__', 'constructor', 'prototype', '#text', ':@']);
/** ASCII XML names only: FHIR and xhtml need nothing else, and it keeps the scan simple. */
const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_.:-]/;
/** Characters XML 1.0 forbids anywhere (C0 controls except tab/LF/CR, and the two non-characters). */
const ILLEGAL_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
const XML_DECLARATION =
  /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]{0,39})\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
  allowBooleanAttributes: false,
  removeNSPrefix: false,
  // The pre-scan already enforces the real cap; this is a second fence.
  maxNestedTags: 1024,
});

/**
 * Parses a FHIR XML body. Never throws; hostile input fails fast in the pre-scan with bounded memory.
 * A UTF-8 byte-order mark is accepted and ignored; any other encoding is refused.
 */
export function parseFhirXml(body: Buffer, maxBytes: number, limits: Partial<XmlLimits> = {}): XmlParseResult {
  const lim: XmlLimits = { ...DEFAULT_XML_LIMITS, ...limits };
  if (body.length > maxBytes) return fail('too-large', `body exceeds ${maxBytes} bytes`);
  if (body.length === 0) return fail('empty', 'body is empty');
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return fail('encoding', 'body is not valid UTF-8');
  }
  if (ILLEGAL_CHARS.test(text)) return fail('encoding', 'body contains characters XML does not allow (wrong encoding?)');
  const scanned = preScan(text, lim);
  if (scanned) return scanned;
  let raw: unknown;
  try {
    raw = parser.parse(text);
  } catch {
    return fail('not-well-formed', 'XML is not well formed');
  }
  return normaliseDocument(raw);
}

/** One linear pass over the document: rejects what must never reach the parser. Returns undefined when clean. */
function preScan(text: string, lim: XmlLimits): Failure | undefined {
  const len = text.length;
  let i = 0;
  const declaration = XML_DECLARATION.exec(text);
  if (declaration) {
    const encoding = declaration[3];
    if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
      return fail('encoding', 'XML declaration names an encoding other than UTF-8');
    }
    i = declaration[0].length;
  } else if (text.startsWith('<?xml') && /^<\?xml[ \t\r\n?]/.test(text)) {
    return fail('not-well-formed', 'XML declaration is malformed');
  }

  const stack: string[] = [];
  let elements = 0;
  let rootSeen = false;
  while (i < len) {
    const lt = text.indexOf('<', i);
    const textEnd = lt === -1 ? len : lt;
    // Character data outside the root element must be whitespace.
    if (stack.length === 0 && textEnd > i && /[^ \t\r\n]/.test(text.slice(i, textEnd))) {
      return fail('not-well-formed', 'text outside the root element');
    }
    if (lt === -1) break;
    i = lt;
    const next = text.charCodeAt(i + 1);
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end === -1) return fail('not-well-formed', 'unterminated comment');
      i = end + 3;
      continue;
    }
    // Local policy: FHIR never needs CDATA, and refusing it keeps entity decoding unambiguous.
    if (text.startsWith('<![CDATA[', i)) return fail('cdata', 'CDATA sections are not accepted');
    if (next === 0x21 /* ! */) {
      // <!DOCTYPE, <!ENTITY, <!ELEMENT, <!ATTLIST, <!NOTATION or anything else: no DTDs, ever.
      return fail('dtd', 'document type declarations and entity definitions are not allowed');
    }
    if (next === 0x3f /* ? */) return fail('processing-instruction', 'processing instructions are not allowed');
    if (next === 0x2f /* / */) {
      const nameEnd = scanName(text, i + 2, lim.maxNameChars);
      if (nameEnd <= i + 2) return fail('not-well-formed', 'malformed closing tag');
      const name = text.slice(i + 2, nameEnd);
      let j = skipSpace(text, nameEnd);
      if (text.charCodeAt(j) !== 0x3e /* > */) return fail('not-well-formed', 'malformed closing tag');
      if (stack.pop() !== name) return fail('not-well-formed', 'closing tag does not match the open element');
      i = j + 1;
      continue;
    }
    // Opening or empty-element tag.
    if (stack.length === 0 && rootSeen) return fail('not-well-formed', 'more than one root element');
    const nameEnd = scanName(text, i + 1, lim.maxNameChars);
    if (nameEnd === -1) return fail('forbidden-name', 'element name is too long');
    if (nameEnd === i + 1) return fail('not-well-formed', 'malformed start tag');
    const name = text.slice(i + 1, nameEnd);
    if (FORBIDDEN_NAMES.has(name)) return fail('forbidden-name', 'element name is reserved');
    elements++;
    if (elements > lim.maxElements) return fail('too-many-elements', `more than ${lim.maxElements} elements`);
    const tagEnd = scanAttributes(text, nameEnd, lim);
    if (typeof tagEnd !== 'number') return tagEnd;
    rootSeen = true;
    if (text.charCodeAt(tagEnd - 2) === 0x2f /* / */) {
      i = tagEnd;
      continue;
    }
    stack.push(name);
    if (stack.length > lim.maxDepth) return fail('too-deep', `elements nested deeper than ${lim.maxDepth}`);
    i = tagEnd;
  }
  if (!rootSeen) return fail('not-well-formed', 'no root element');
  if (stack.length > 0) return fail('not-well-formed', 'unclosed element');
  return undefined;
}

/** Returns the index after an ASCII XML name starting at `start` (== start when none), or -1 when too long. */
function scanName(text: string, start: number, maxChars: number): number {
  if (!NAME_START.test(text.charAt(start))) return start;
  let j = start + 1;
  while (j < text.length && NAME_CHAR.test(text.charAt(j))) {
    if (j - start >= maxChars) return -1;
    j++;
  }
  return j;
}

function skipSpace(text: string, j: number): number {
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    j++;
  }
  return j;
}

/** Scans `name="value"` pairs up to `>` or `/>`; returns the index after the tag, or a failure. */
function scanAttributes(text: string, from: number, lim: XmlLimits): number | Failure {
  const seen = new Set<string>();
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
    const name = text.slice(afterSpace, nameEnd);
    if (FORBIDDEN_NAMES.has(name)) return fail('forbidden-name', 'attribute name is reserved');
    if (seen.has(name)) return fail('not-well-formed', 'repeated attribute');
    seen.add(name);
    if (seen.size > lim.maxAttributesPerElement) return fail('too-many-attributes', `more than ${lim.maxAttributesPerElement} attributes on one element`);
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
    j = close + 1;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Normalising fast-xml-parser's preserveOrder output into XmlElement.

type OrderedNode = Record<string, unknown>;

function normaliseDocument(raw: unknown): XmlParseResult {
  if (!Array.isArray(raw)) return fail('not-well-formed', 'XML is not well formed');
  const roots: XmlElement[] = [];
  for (const node of raw) {
    const el = normaliseNode(node);
    if (el === 'text') continue;
    if (typeof el === 'string') return fail('entity', el);
    roots.push(el);
  }
  if (roots.length !== 1) return fail('not-well-formed', 'document must have exactly one root element');
  return { ok: true, root: roots[0]! };
}

/** Returns the element, 'text' for a text node, or a problem description. Depth is bounded by the pre-scan. */
function normaliseNode(node: unknown): XmlElement | 'text' | string {
  if (typeof node !== 'object' || node === null) return 'unexpected parser output';
  const record = node as OrderedNode;
  if (Object.prototype.hasOwnProperty.call(record, '#text')) return 'text';
  const name = Object.keys(record).find((k) => k !== ':@');
  if (name === undefined) return 'unexpected parser output';
  const attributes = new Map<string, string>();
  const rawAttrs = record[':@'];
  if (rawAttrs && typeof rawAttrs === 'object') {
    for (const [key, value] of Object.entries(rawAttrs as Record<string, unknown>)) {
      const decoded = decodeXmlText(normaliseAttributeWhitespace(String(value)));
      if (decoded === undefined) return 'attribute value has an undefined or malformed entity reference';
      attributes.set(key, decoded);
    }
  }
  const children: XmlElement[] = [];
  let text = '';
  const rawChildren = record[name];
  if (Array.isArray(rawChildren)) {
    for (const child of rawChildren) {
      if (child && typeof child === 'object' && Object.prototype.hasOwnProperty.call(child, '#text')) {
        const raw = String((child as OrderedNode)['#text']);
        if (BAD_TEXT_REFERENCE.test(raw)) return 'text has an undefined or malformed entity reference';
        text += raw;
        continue;
      }
      const el = normaliseNode(child);
      if (el === 'text') continue;
      if (typeof el === 'string') return el;
      children.push(el);
    }
  }
  return { name, attributes, children, text };
}

/** XML attribute-value normalisation: literal tab, CR and LF become spaces (character references survive). */
function normaliseAttributeWhitespace(value: string): string {
  return value.replace(/\r\n|[\t\n\r]/g, ' ');
}

/** An `&` that does not start a predefined entity or a numeric character reference (tested, never replaced). */
const BAD_TEXT_REFERENCE = /&(?!(?:#x[0-9A-Fa-f]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos);)/;

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
function fromCodePoint(cp: number): string | undefined {
  const legal =
    cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
  return legal ? String.fromCodePoint(cp) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Small accessors for walking FHIR XML, where primitives are `<name value="..."/>`.

/** Every child element with this name, in document order. */
export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/** The first child element with this name. */
export function firstChild(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

/** The `value` attribute of the first child with this name (a FHIR primitive). */
export function childValue(el: XmlElement, name: string): string | undefined {
  return firstChild(el, name)?.attributes.get('value');
}

/** `extension` children whose `url` attribute equals `url`. */
export function extensionsByUrl(el: XmlElement, url: string): XmlElement[] {
  return el.children.filter((c) => c.name === 'extension' && c.attributes.get('url') === url);
}

/** The only element child of a FHIR `resource` wrapper (its name is the resource type), or undefined. */
export function resourceOf(wrapper: XmlElement | undefined): XmlElement | undefined {
  if (!wrapper || wrapper.children.length !== 1) return undefined;
  return wrapper.children[0];
}

/** True when the element declares the FHIR namespace as its default and uses no prefix. */
export function inFhirNamespace(el: XmlElement): boolean {
  return !el.name.includes(':') && el.attributes.get('xmlns') === FHIR_XML_NAMESPACE;
}
