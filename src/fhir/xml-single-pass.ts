// The single-pass XML engine: one linear scan that both refuses what is not allowed (no DTD, no entities, no
// processing instructions, no CDATA, bounded depth, element count and attribute size) and builds the tree.
// The default (`nems.xmlParser: single-pass`): ~55 µs per 8 KB publish against ~355 µs for fast-xml-parser, held to
// exactly fast-xml-parser's trees and failures by test/fhir/xml-equivalence.test.ts and the XML fuzz (test/fuzz).
import {
  ATTRIBUTE_ENTITY_PROBLEM, checkCharacterData, decodeXmlText, fail, isReservedName, normaliseAttributeWhitespace, scanAttributes, scanName, skipSpace,
  skipXmlDeclaration,
  type XmlLimits, type XmlParseFailure, type XmlParseResult,
} from './xml-model.js';

/**
 * Names fast-xml-parser (the parser this module used before) renamed with a `__` prefix; kept so every tree is
 * exactly what it was. FHIR never uses them.
 */
const PREFIXED_NAMES = new Set(['hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__']);
const NOT_WHITESPACE = /[^ \t\r\n]/;

/** Builds the tree of an already decoded document. */
export function parseDecodedXmlSinglePass(text: string, lim: XmlLimits): XmlParseResult {
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
  /** The document's first entity problem, shared by every tag. */
  readonly problem: { entity?: string };
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
  const afterDeclaration = skipXmlDeclaration(text);
  if (typeof afterDeclaration !== 'number') return afterDeclaration;
  i = afterDeclaration;

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
        const segment = text.slice(i, textEnd);
        const refused = checkCharacterData(segment, problem);
        if (refused) return refused;
        pending += normaliseLineEnds(segment);
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
    if (isReservedName(name)) return fail('forbidden-name', 'element name is reserved');
    elements++;
    if (elements > lim.maxElements) return fail('too-many-elements', `more than ${lim.maxElements} elements`);
    const parent = open.length > 0 ? open[open.length - 1] : undefined;
    if (parent) flush(parent);
    const tag: ScannedTag = { attributes: undefined, problem };
    const tagEnd = scanAttributes(text, nameEnd, lim, tag, addAttribute);
    if (typeof tagEnd !== 'number') return tagEnd;
    // An empty element counts as a level too (root = 1).
    if (names.length + 1 > lim.maxDepth) return fail('too-deep', `elements nested deeper than ${lim.maxDepth}`);
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
    i = tagEnd;
  }
  if (root === undefined) return fail('not-well-formed', 'no root element');
  if (names.length > 0) return fail('not-well-formed', 'unclosed element');
  if (problem.entity !== undefined) return fail('entity', problem.entity);
  return { ok: true, root };
}

// Looked up only for names of a length the set holds: hashing every fresh name string showed in profiles.
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



/** scanAttributes' callback: trimmed, whitespace-normalised, entity-decoded value into the tag's map. */
function addAttribute(tag: ScannedTag, name: string, raw: string): void {
  const decoded = decodeXmlText(normaliseAttributeWhitespace(raw.trim()));
  if (decoded === undefined) tag.problem.entity ??= ATTRIBUTE_ENTITY_PROBLEM;
  (tag.attributes ??= new Map()).set(publicName(name), decoded ?? '');
}

