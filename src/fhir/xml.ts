// Safe FHIR XML parsing (spec digest §2.3, issue 4 point 1). Every body is hostile: the bytes are capped, decoded
// as strict UTF-8 and scanned in one linear pass that refuses what is not allowed (no DTD, no entities, no
// processing instructions, bounded depth, element count and attribute size) and builds a small typed tree with
// ordered children and decoded attribute values. No general-purpose XML parser is involved: the pass that checks
// the document is the one that reads it (fast-xml-parser after a pre-scan cost ~450 µs per 8 KB publish; this ~40).

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

/**
 * Names that would reach JavaScript object keys in a naive tree builder; FHIR never uses them. (`#text` and `:@`,
 * refused before, cannot be scanned as names at all.)
 */
const FORBIDDEN_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
/**
 * Names fast-xml-parser (the parser this module used before) renamed with a `__` prefix; kept so every tree is
 * exactly what it was. FHIR never uses them.
 */
const PREFIXED_NAMES = new Set(['hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__']);
/** Characters XML 1.0 forbids anywhere (C0 controls except tab/LF/CR, and the two non-characters). */
const ILLEGAL_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
const XML_DECLARATION =
  /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]{0,39})\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/;
const NOT_WHITESPACE = /[^ \t\r\n]/;

/**
 * Parses a FHIR XML body. Never throws; hostile input fails fast with bounded memory.
 * A UTF-8 byte-order mark is accepted and ignored; any other encoding is refused.
 */
export function parseFhirXml(body: Buffer, maxBytes: number, limits?: Partial<XmlLimits>): XmlParseResult {
  const lim: XmlLimits = limits ? { ...DEFAULT_XML_LIMITS, ...limits } : DEFAULT_XML_LIMITS;
  if (body.length > maxBytes) return fail('too-large', `body exceeds ${maxBytes} bytes`);
  if (body.length === 0) return fail('empty', 'body is empty');
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return fail('encoding', 'body is not valid UTF-8');
  }
  if (ILLEGAL_CHARS.test(text)) return fail('encoding', 'body contains characters XML does not allow (wrong encoding?)');
  return buildDocument(text, lim);
}

/** An element while it is being built. */
interface Building {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: Building[];
  text: string;
}

/** What scanAttributes found: the attribute map, created only when the tag has attributes. */
interface ScannedTag {
  attributes: Map<string, string> | undefined;
}

const NO_ATTRIBUTES: ReadonlyMap<string, string> = new Map();
const NO_CHILDREN: Building[] = Object.freeze([]) as unknown as Building[];

/**
 * One linear pass over the document that both refuses what is not allowed (no DTD, no entities, no processing
 * instructions, no CDATA, bounded depth, element count and attribute size, strict well-formedness) and builds the
 * tree. A structural failure anywhere wins over an entity problem found earlier (the entity check used to run on
 * the finished tree), so entity problems are remembered and reported only once the whole document is known good.
 */
function buildDocument(text: string, lim: XmlLimits): XmlParseResult {
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

  const names: string[] = [];
  const open: Building[] = [];
  let root: Building | undefined;
  let elements = 0;
  /** Character data since the last tag (comments skipped, not ending it), with line ends normalised. */
  let pending = '';
  const problem: { entity?: string } = {};

  /** Character data belongs to the element it is directly inside, trimmed; whitespace-only data is dropped. */
  const flush = (into: Building): void => {
    if (pending === '') return;
    const value = pending.trim();
    pending = '';
    if (value === '') return;
    if (problem.entity === undefined && BAD_TEXT_REFERENCE.test(value)) problem.entity = 'text has an undefined or malformed entity reference';
    into.text += value;
  };

  while (i < len) {
    const lt = text.indexOf('<', i);
    const textEnd = lt === -1 ? len : lt;
    if (textEnd > i) {
      if (names.length === 0) {
        // Character data outside the root element must be whitespace.
        if (NOT_WHITESPACE.test(text.slice(i, textEnd))) return fail('not-well-formed', 'text outside the root element');
      } else if (pending !== '' || !isWhitespace(text, i, textEnd)) {
        // Leading white space would be trimmed anyway: indentation between tags costs no string.
        pending += normaliseLineEnds(text.slice(i, textEnd));
      }
    }
    if (lt === -1) break;
    i = lt;
    const next = text.charCodeAt(i + 1);
    if (next === 0x21 /* ! */ && text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end === -1) return fail('not-well-formed', 'unterminated comment');
      i = end + 3;
      continue;
    }
    // Local policy: FHIR never needs CDATA, and refusing it keeps entity decoding unambiguous.
    if (next === 0x21 /* ! */) {
      if (text.startsWith('<![CDATA[', i)) return fail('cdata', 'CDATA sections are not accepted');
      // <!DOCTYPE, <!ENTITY, <!ELEMENT, <!ATTLIST, <!NOTATION or anything else: no DTDs, ever.
      return fail('dtd', 'document type declarations and entity definitions are not allowed');
    }
    if (next === 0x3f /* ? */) return fail('processing-instruction', 'processing instructions are not allowed');
    if (next === 0x2f /* / */) {
      const nameEnd = scanName(text, i + 2, lim.maxNameChars);
      if (nameEnd <= i + 2) return fail('not-well-formed', 'malformed closing tag');
      const name = text.slice(i + 2, nameEnd);
      const j = skipSpace(text, nameEnd);
      if (text.charCodeAt(j) !== 0x3e /* > */) return fail('not-well-formed', 'malformed closing tag');
      if (names.pop() !== name) return fail('not-well-formed', 'closing tag does not match the open element');
      flush(open.pop()!);
      i = j + 1;
      continue;
    }
    // Opening or empty-element tag.
    if (names.length === 0 && root !== undefined) return fail('not-well-formed', 'more than one root element');
    const nameEnd = scanName(text, i + 1, lim.maxNameChars);
    if (nameEnd === -1) return fail('forbidden-name', 'element name is too long');
    if (nameEnd === i + 1) return fail('not-well-formed', 'malformed start tag');
    const name = text.slice(i + 1, nameEnd);
    if (isForbiddenName(name)) return fail('forbidden-name', 'element name is reserved');
    elements++;
    if (elements > lim.maxElements) return fail('too-many-elements', `more than ${lim.maxElements} elements`);
    const parent = open.length > 0 ? open[open.length - 1] : undefined;
    if (parent) flush(parent);
    const tag: ScannedTag = { attributes: undefined };
    const tagEnd = scanAttributes(text, nameEnd, lim, tag, problem);
    if (typeof tagEnd !== 'number') return tagEnd;
    const empty = text.charCodeAt(tagEnd - 2) === 0x2f; /* `/>` */
    // Most FHIR elements are `<x value=".."/>` or attribute-less containers: they share the empty collections.
    const element: Building = {
      name: publicName(name),
      attributes: tag.attributes ?? NO_ATTRIBUTES,
      children: empty ? NO_CHILDREN : [],
      text: '',
    };
    if (parent) parent.children.push(element);
    else root = element;
    if (empty) {
      i = tagEnd;
      continue;
    }
    names.push(name);
    open.push(element);
    if (names.length > lim.maxDepth) return fail('too-deep', `elements nested deeper than ${lim.maxDepth}`);
    i = tagEnd;
  }
  if (root === undefined) return fail('not-well-formed', 'no root element');
  if (names.length > 0) return fail('not-well-formed', 'unclosed element');
  if (problem.entity !== undefined) return fail('entity', problem.entity);
  return { ok: true, root };
}

// Both sets are looked up only for names of a length they hold: hashing every fresh name string showed in profiles.
function isForbiddenName(name: string): boolean {
  return (name.length === 9 || name.length === 11) && FORBIDDEN_NAMES.has(name);
}

function publicName(name: string): string {
  return name.length >= 7 && PREFIXED_NAMES.has(name) ? `__${name}` : name;
}

/** XML end-of-line handling: CR LF and lone CR become LF. */
function normaliseLineEnds(value: string): string {
  return value.includes('\r') ? value.replace(/\r\n?/g, '\n') : value;
}

const NEXT_NOT_WHITESPACE = /[^ \t\r\n]/g;

/** True when text[from, to) is only space, tab, CR and LF (a regex scan: far cheaper than a charCodeAt loop). */
function isWhitespace(text: string, from: number, to: number): boolean {
  NEXT_NOT_WHITESPACE.lastIndex = from;
  // Bounded: text[to] is '<' or the end of the text, so the scan never runs past `to`.
  return !NEXT_NOT_WHITESPACE.test(text) || NEXT_NOT_WHITESPACE.lastIndex - 1 >= to;
}

function isNameStart(c: number): boolean {
  // A-Z, a-z, _
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

function isNameChar(c: number): boolean {
  // A-Z, a-z, 0-9, _ . : -
  return isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x3a || c === 0x2d;
}

/** Returns the index after an ASCII XML name starting at `start` (== start when none), or -1 when too long. */
function scanName(text: string, start: number, maxChars: number): number {
  if (!isNameStart(text.charCodeAt(start))) return start;
  let j = start + 1;
  while (j < text.length && isNameChar(text.charCodeAt(j))) {
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

/**
 * Scans `name="value"` pairs up to `>` or `/>` into `attributes` (values trimmed, whitespace-normalised and
 * entity-decoded); returns the index after the tag, or a failure. An undefined entity is noted in `problem`.
 */
function scanAttributes(text: string, from: number, lim: XmlLimits, tag: ScannedTag, problem: { entity?: string }): number | Failure {
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
    if (isForbiddenName(name)) return fail('forbidden-name', 'attribute name is reserved');
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
    const raw = text.slice(k + 1, close);
    if (raw.includes('<')) return fail('not-well-formed', "'<' inside an attribute value");
    const decoded = decodeXmlText(normaliseAttributeWhitespace(raw.trim()));
    if (decoded === undefined) problem.entity ??= 'attribute value has an undefined or malformed entity reference';
    (tag.attributes ??= new Map()).set(publicName(name), decoded ?? '');
    j = close + 1;
  }
}

/** XML attribute-value normalisation: literal tab, CR and LF become spaces (character references survive). */
function normaliseAttributeWhitespace(value: string): string {
  return LITERAL_WHITESPACE.test(value) ? value.replace(/\r\n|[\t\n\r]/g, ' ') : value;
}

const LITERAL_WHITESPACE = /[\t\n\r]/;

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
