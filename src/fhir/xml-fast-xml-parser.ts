// The fast-xml-parser engine (`nems.xmlParser: fast-xml-parser`; the test oracle for the default single-pass
// engine): a linear pre-scan that refuses what must never reach a parser (DTD, entities, processing instructions,
// CDATA, excess depth, element count or attribute size), then fast-xml-parser with entity processing off, then
// normalisation into the typed tree.
import { createRequire } from 'node:module';
import type { XMLParser as XMLParserClass } from 'fast-xml-parser';
import {
  ATTRIBUTE_ENTITY_PROBLEM, BAD_TEXT_REFERENCE, TEXT_ENTITY_PROBLEM, checkAttributeValue, checkCharacterData, decodeXmlText, fail, isReservedName, normaliseAttributeWhitespace, scanAttributes,
  scanName, skipSpace, skipXmlDeclaration,
  type XmlElement, type XmlLimits, type XmlParseFailure, type XmlParseResult,
} from './xml-model.js';

/**
 * Built on first use: the default engine is single-pass, and loading fast-xml-parser costs ~4 MB of RSS a gateway
 * that never parses with it should not pay.
 */
let parser: XMLParserClass | undefined;
function xmlParser(): XMLParserClass {
  if (parser) return parser;
  const { XMLParser } = createRequire(import.meta.url)('fast-xml-parser') as typeof import('fast-xml-parser');
  parser = new XMLParser(PARSER_OPTIONS);
  return parser;
}

const PARSER_OPTIONS: ConstructorParameters<typeof XMLParserClass>[0] = {
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
  // No callbacks read the path, so skip building a path string per tag and attribute (about 13% of its time).
  jPath: false,
};

/** Parses an already decoded document (see decodeXmlBody). Never throws. */
export function parseDecodedXmlWithFastXmlParser(text: string, lim: XmlLimits): XmlParseResult {
  const scanned = preScan(text, lim);
  if (scanned) return scanned;
  let raw: unknown;
  try {
    raw = xmlParser().parse(text);
  } catch {
    return fail('not-well-formed', 'XML is not well formed');
  }
  return normaliseDocument(raw);
}

/** One linear pass over the document: rejects what must never reach the parser. Returns undefined when clean. */
function preScan(text: string, lim: XmlLimits): XmlParseFailure | undefined {
  const len = text.length;
  let i = 0;
  const afterDeclaration = skipXmlDeclaration(text);
  if (typeof afterDeclaration !== 'number') return afterDeclaration;
  i = afterDeclaration;

  const stack: string[] = [];
  let elements = 0;
  let rootSeen = false;
  // The first entity problem, reported only if the structure is good (as the single-pass engine does).
  const problem: { entity?: string } = {};
  while (i < len) {
    const lt = text.indexOf('<', i);
    const textEnd = lt === -1 ? len : lt;
    if (textEnd > i) {
      const segment = text.slice(i, textEnd);
      // Character data outside the root element must be whitespace.
      if (stack.length === 0 && /[^ \t\r\n]/.test(segment)) return fail('not-well-formed', 'text outside the root element');
      const refused = checkCharacterData(segment, problem);
      if (refused) return refused;
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
    if (isReservedName(name)) return fail('forbidden-name', 'element name is reserved');
    elements++;
    if (elements > lim.maxElements) return fail('too-many-elements', `more than ${lim.maxElements} elements`);
    const tagEnd = scanAttributes(text, nameEnd, lim, problem, checkAttributeValue);
    if (typeof tagEnd !== 'number') return tagEnd;
    rootSeen = true;
    // An empty element counts as a level too (root = 1).
    if (stack.length + 1 > lim.maxDepth) return fail('too-deep', `elements nested deeper than ${lim.maxDepth}`);
    if (text.charCodeAt(tagEnd - 2) === 0x2f /* / */) {
      i = tagEnd;
      continue;
    }
    stack.push(name);
    i = tagEnd;
  }
  if (!rootSeen) return fail('not-well-formed', 'no root element');
  if (stack.length > 0) return fail('not-well-formed', 'unclosed element');
  if (problem.entity !== undefined) return fail('entity', problem.entity);
  return undefined;
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
      if (decoded === undefined) return ATTRIBUTE_ENTITY_PROBLEM;
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
        if (BAD_TEXT_REFERENCE.test(raw)) return TEXT_ENTITY_PROBLEM;
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
