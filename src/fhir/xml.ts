// Safe FHIR XML parsing (docs/specification.md §2.3, issue 4 point 1). Every body is hostile: the byte cap comes first, then
// strict UTF-8, then one of two engines, each of which refuses any DTD / entity declaration, processing instruction
// and CDATA and bounds depth, element count and attribute size BEFORE building anything:
// - `single-pass` (default): one scan that checks and builds, so one parser is on the hostile path; ~8x cheaper;
// - `fast-xml-parser` (selectable, and the test oracle): a linear pre-scan, then fast-xml-parser with
//   processEntities off.
// The two give the same tree or the same refusal: test/fhir/xml-equivalence.test.ts, and a differential fuzz of a
// million generated and mutated documents (`npm run fuzz -- --parser xml`, README "Fuzzing").
import { parseDecodedXmlWithFastXmlParser } from './xml-fast-xml-parser.js';
import { DEFAULT_XML_LIMITS, FHIR_XML_NAMESPACE, decodeXmlBody, type XmlElement, type XmlLimits, type XmlParseResult } from './xml-model.js';
import { parseDecodedXmlSinglePass } from './xml-single-pass.js';

export { DEFAULT_XML_LIMITS, FHIR_XML_NAMESPACE, decodeXmlText } from './xml-model.js';
export type { XmlElement, XmlLimits, XmlParseFailureReason, XmlParseResult } from './xml-model.js';

export type XmlParserEngine = 'fast-xml-parser' | 'single-pass';
export const DEFAULT_XML_PARSER: XmlParserEngine = 'single-pass';

/**
 * Parses a FHIR XML body. Never throws; hostile input fails fast with bounded memory.
 * A UTF-8 byte-order mark is accepted and ignored; any other encoding is refused.
 */
export function parseFhirXml(body: Buffer, maxBytes: number, limits?: Partial<XmlLimits>, engine: XmlParserEngine = DEFAULT_XML_PARSER): XmlParseResult {
  const lim: XmlLimits = limits ? { ...DEFAULT_XML_LIMITS, ...limits } : DEFAULT_XML_LIMITS;
  const decoded = decodeXmlBody(body, maxBytes);
  if (!decoded.ok) return decoded;
  return engine === 'single-pass' ? parseDecodedXmlSinglePass(decoded.text, lim) : parseDecodedXmlWithFastXmlParser(decoded.text, lim);
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
