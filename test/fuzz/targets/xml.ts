// XML: the pre-scan + fast-xml-parser engine and the single-pass engine, differentially (src/fhir/xml*.ts).
// Contract, for each engine and every input: never throws; a refusal carries one of the documented reasons and a
// detail that never quotes the document; a body over the byte cap is `too-large` and nothing else; an accepted
// tree respects every cap in force, holds no reserved name, came from a document with no DTD, entity definition,
// processing instruction, CDATA or undefined entity reference, and written out again parses to the same tree.
// Across engines: the same tree, or the same refusal (reason and detail).
import { XMLValidator } from 'fast-xml-parser';
import {
  DEFAULT_XML_LIMITS, parseFhirXml, type XmlElement, type XmlLimits, type XmlParseFailureReason, type XmlParseResult, type XmlParserEngine,
} from '../../../src/fhir/xml.js';
import { expectNoCanary, expectThat, type CapProbe, type FuzzTarget } from '../harness.js';
import { escapeAttribute, PUBLISH_MAX_BYTES, xmlInputArbitrary, type XmlInput } from '../xml-gen.js';

export const XML_FAILURE_REASONS: ReadonlySet<XmlParseFailureReason> = new Set<XmlParseFailureReason>([
  'too-large', 'empty', 'encoding', 'dtd', 'processing-instruction', 'too-deep', 'too-many-elements', 'attribute-too-long',
  'too-many-attributes', 'forbidden-name', 'entity', 'cdata', 'not-well-formed',
]);

const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);
const XML_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;

/** A result as one comparable string: the whole tree, or the reason and detail. */
export function comparableXml(result: XmlParseResult): string {
  if (!result.ok) return JSON.stringify({ ok: false, reason: result.reason, detail: result.detail });
  const plain = (el: XmlElement): unknown => [el.name, [...el.attributes], el.text, el.children.map(plain)];
  return JSON.stringify({ ok: true, root: plain(result.root) });
}

/** Writes an accepted tree back out as XML (text first, then the children). */
export function writeXml(el: XmlElement): string {
  let out = `<${el.name}`;
  for (const [name, value] of el.attributes) out += ` ${name}="${escapeAttribute(value)}"`;
  if (el.children.length === 0 && el.text === '') return `${out}/>`;
  return `${out}>${el.text}${el.children.map(writeXml).join('')}</${el.name}>`;
}

function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `at ${i}: ${JSON.stringify(a.slice(Math.max(0, i - 40), i + 60))} vs ${JSON.stringify(b.slice(Math.max(0, i - 40), i + 60))}`;
}

export interface XmlOutput {
  readonly singlePass: XmlParseResult;
  readonly fastXmlParser: XmlParseResult;
}

function parse(input: XmlInput, engine: XmlParserEngine): XmlParseResult {
  return parseFhirXml(input.body, input.maxBytes, input.limits, engine);
}

function checkTree(root: XmlElement, lim: XmlLimits, engine: string): void {
  let elements = 0;
  const walk = (el: XmlElement, depth: number): void => {
    elements++;
    expectThat(depth <= lim.maxDepth, `${engine}: accepted a tree deeper than maxDepth`);
    expectThat(XML_NAME.test(el.name), `${engine}: accepted an element name that is not an XML name`);
    expectThat(!RESERVED.has(el.name), `${engine}: accepted a reserved element name`);
    // Renamed names (`toString` → `__toString`) are the only ones allowed 2 characters over.
    expectThat(el.name.length <= lim.maxNameChars || (el.name.startsWith('__') && el.name.length <= lim.maxNameChars + 2), `${engine}: accepted an element name over maxNameChars`);
    expectThat(el.attributes.size <= lim.maxAttributesPerElement, `${engine}: accepted more attributes than maxAttributesPerElement`);
    for (const [name, value] of el.attributes) {
      expectThat(!RESERVED.has(name), `${engine}: accepted a reserved attribute name`);
      expectThat(name.length <= lim.maxNameChars + 2, `${engine}: accepted an attribute name over maxNameChars`);
      // Decoding and trimming only shorten a value, so the decoded value is within the raw cap too.
      expectThat(value.length <= lim.maxAttributeValueChars, `${engine}: accepted an attribute value over maxAttributeValueChars`);
    }
    expectThat(!el.text.includes('<'), `${engine}: text holds '<'`);
    for (const child of el.children) walk(child, depth + 1);
  };
  walk(root, 1);
  expectThat(elements <= lim.maxElements, `${engine}: accepted more elements than maxElements`);
}

const COMMENT = /<!--[\s\S]*?-->/g;
/** A start, end or empty-element tag of a well-formed document (attribute values may hold '>'). */
const TAG = /<(?:[^>"']|"[^"]*"|'[^']*')*>/g;
const ATTRIBUTE_VALUE = /=\s*(?:"([^"]*)"|'([^']*)')/g;
const REFERENCE = /&(?:#x([0-9A-Fa-f]+)|#([0-9]+)|lt|gt|amp|quot|apos);/y;

/** XML 1.0 Char: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF. */
function xmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Every '&' starts a predefined entity or a reference to a character XML allows. */
function referencesAreGood(value: string): boolean {
  for (let at = value.indexOf('&'); at !== -1; at = value.indexOf('&', at + 1)) {
    REFERENCE.lastIndex = at;
    const m = REFERENCE.exec(value);
    if (!m) return false;
    const cp = m[1] !== undefined ? parseInt(m[1], 16) : m[2] !== undefined ? Number(m[2]) : 0x20;
    if (!xmlChar(cp)) return false;
  }
  return true;
}

/** What an accepted document can never hold, read from its bytes independently of both engines. */
function checkAcceptedDocument(input: XmlInput, engine: string): void {
  const whole = input.body.toString('utf8').replace(/^\ufeff/, '');
  // Comments and tags become a separator that cannot occur in an accepted document (NUL is refused), so each run
  // of character data is judged on its own, as XML 1.0 judges it.
  const body = whole.replace(/^<\?xml[^>]*\?>/, '').replace(COMMENT, '\u0000');
  expectThat(!body.includes('<!'), `${engine}: accepted a document with a DTD, declaration or CDATA`);
  expectThat(!body.includes('<?'), `${engine}: accepted a processing instruction`);
  const tags = body.match(TAG) ?? [];
  for (const segment of body.replace(TAG, '\u0000').split('\u0000')) {
    expectThat(!segment.includes(']]>'), `${engine}: accepted ']]>' in character data`);
    expectThat(referencesAreGood(segment), `${engine}: accepted an undefined entity, a bare '&' or a reference to a character XML forbids in text`);
  }
  for (const tag of tags) {
    for (const m of tag.matchAll(ATTRIBUTE_VALUE)) {
      expectThat(referencesAreGood(m[1] ?? m[2] ?? ''), `${engine}: accepted an undefined entity, a bare '&' or a reference to a character XML forbids in an attribute`);
    }
  }
  expectThat(!whole.includes('\ufffd') || input.body.includes(Buffer.from([0xef, 0xbf, 0xbd])), `${engine}: accepted bytes that are not UTF-8`);
  // A third reading, independent of the scan code both engines share: fast-xml-parser's own validator.
  expectThat(XMLValidator.validate(whole) === true, `${engine}: accepted a document fast-xml-parser's validator finds not well formed`);
}

function checkEngine(input: XmlInput, result: XmlParseResult, engine: XmlParserEngine): void {
  const lim: XmlLimits = { ...DEFAULT_XML_LIMITS, ...input.limits };
  if (input.body.length > input.maxBytes) {
    expectThat(!result.ok && result.reason === 'too-large', `${engine}: a body over the byte cap was not refused as too-large`);
    return;
  }
  if (!result.ok) {
    expectThat(XML_FAILURE_REASONS.has(result.reason), `${engine}: undocumented refusal reason ${String(result.reason)}`);
    expectThat(result.reason !== 'too-large', `${engine}: too-large for a body within the cap`);
    expectThat(input.body.length > 0 || result.reason === 'empty', `${engine}: an empty body was not refused as empty`);
    expectThat(typeof result.detail === 'string' && result.detail.length > 0 && result.detail.length <= 160, `${engine}: refusal detail missing or too long`);
    expectNoCanary(result.detail, `${engine} refusal detail`);
    return;
  }
  checkTree(result.root, lim, engine);
  checkAcceptedDocument(input, engine);
  // Round trip: the tree written out parses to the same tree (escaping may lengthen values and renamed names).
  const written = Buffer.from(writeXml(result.root), 'utf8');
  const again = parseFhirXml(written, Number.MAX_SAFE_INTEGER, { ...lim, maxAttributeValueChars: lim.maxAttributeValueChars * 10 + 16, maxNameChars: lim.maxNameChars + 2 }, engine);
  const before = comparableXml(result);
  const after = comparableXml(again);
  expectThat(before === after, `${engine}: the accepted tree does not survive being written out and parsed again, ${firstDifference(before, after)}`);
}

export function checkXmlOutputs(input: XmlInput, output: XmlOutput): void {
  const single = comparableXml(output.singlePass);
  const fast = comparableXml(output.fastXmlParser);
  expectThat(single === fast, `engines differ: single-pass vs fast-xml-parser ${firstDifference(single, fast)}`);
  checkEngine(input, output.singlePass, 'single-pass');
  checkEngine(input, output.fastXmlParser, 'fast-xml-parser');
}

const MB = 1024 * 1024;

function probe(name: string, text: string | Buffer, heavy = false): CapProbe<XmlInput> {
  return { name, input: { body: typeof text === 'string' ? Buffer.from(text, 'utf8') : text, maxBytes: PUBLISH_MAX_BYTES }, ...(heavy ? { heavy } : {}) };
}

/** Each default cap, at and just over. */
export function xmlCapProbes(): CapProbe<XmlInput>[] {
  const lim = DEFAULT_XML_LIMITS;
  const nested = (depth: number) => `${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}`;
  const elements = (count: number) => `<r>${'<a/>'.repeat(count - 1)}</r>`;
  const attributes = (count: number) => `<a ${Array.from({ length: count }, (_, i) => `a${i}="1"`).join(' ')}/>`;
  const value = (length: number) => `<a value="${'v'.repeat(length)}"/>`;
  const name = (length: number) => `<${'n'.repeat(length)}/>`;
  const filler = (bytes: number) => `<a>${' '.repeat(bytes - 7)}</a>`;
  return [
    probe(`depth ${lim.maxDepth}`, nested(lim.maxDepth)),
    probe(`depth ${lim.maxDepth + 1}`, nested(lim.maxDepth + 1)),
    probe(`depth ${lim.maxDepth}, the deepest empty`, `${'<a>'.repeat(lim.maxDepth - 1)}<b/>${'</a>'.repeat(lim.maxDepth - 1)}`),
    probe(`depth ${lim.maxDepth + 1}, the deepest empty`, `${'<a>'.repeat(lim.maxDepth)}<b/>${'</a>'.repeat(lim.maxDepth)}`),
    probe(`${lim.maxElements} elements`, elements(lim.maxElements), true),
    probe(`${lim.maxElements + 1} elements`, elements(lim.maxElements + 1), true),
    probe(`${lim.maxAttributesPerElement} attributes`, attributes(lim.maxAttributesPerElement)),
    probe(`${lim.maxAttributesPerElement + 1} attributes`, attributes(lim.maxAttributesPerElement + 1)),
    probe(`attribute value of ${lim.maxAttributeValueChars} characters`, value(lim.maxAttributeValueChars)),
    probe(`attribute value of ${lim.maxAttributeValueChars + 1} characters`, value(lim.maxAttributeValueChars + 1)),
    probe(`name of ${lim.maxNameChars} characters`, name(lim.maxNameChars)),
    probe(`name of ${lim.maxNameChars + 1} characters`, name(lim.maxNameChars + 1)),
    probe(`${3 * MB} bytes (publish cap)`, filler(3 * MB), true),
    probe(`${3 * MB + 1} bytes (publish cap + 1)`, filler(3 * MB + 1)),
  ];
}

/** Documents of about `bytes` bytes, each stressing one part of the scan; limits raised so they are accepted. */
export function xmlScaling(): { name: string; make(bytes: number): XmlInput }[] {
  const big: Partial<XmlLimits> = { maxElements: 10_000_000, maxAttributeValueChars: 64 * MB };
  const repeat = (unit: string, bytes: number) => unit.repeat(Math.max(1, Math.floor(bytes / unit.length)));
  const entry = '<entry><fullUrl value="urn:uuid:3ff6d789-af64-4d9c-aa1d-0087d29e9e1c"/><resource><Patient><identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9912003888"/></identifier></Patient></resource></entry>\n';
  const patterns: { name: string; text(bytes: number): string }[] = [
    { name: 'NEMS entries', text: (n) => `<Bundle xmlns="http://hl7.org/fhir">${repeat(entry, n)}</Bundle>` },
    { name: 'empty elements with attributes', text: (n) => `<r>${repeat('<a v="1" w="x"/>', n)}</r>` },
    { name: 'text', text: (n) => `<r>${repeat('text ', n)}</r>` },
    { name: 'entity references in text', text: (n) => `<r>${repeat('&amp;&#65;', n)}</r>` },
    { name: 'one attribute value', text: (n) => `<r v="${repeat('a&amp;', n)}"/>` },
    { name: 'comments', text: (n) => `<r>${repeat('<!-- c -->', n)}</r>` },
    { name: 'nesting 60 deep, repeated', text: (n) => `<r>${repeat(`${'<a>'.repeat(60)}${'</a>'.repeat(60)}`, n)}</r>` },
    { name: 'text split by elements', text: (n) => `<r>${repeat('x<b/>', n)}</r>` },
  ];
  // Each engine on its own, so a superlinear one is named.
  return (['single-pass', 'fast-xml-parser'] as const).flatMap((engine) =>
    patterns.map((p) => ({ name: `${engine}: ${p.name}`, make: (n: number): XmlInput => ({ body: Buffer.from(p.text(n), 'utf8'), limits: big, maxBytes: 64 * MB, only: engine }) })),
  );
}

export const xmlTarget: FuzzTarget<XmlInput, XmlOutput> = {
  name: 'xml',
  covers: 'src/fhir/xml.ts, xml-model.ts, xml-fast-xml-parser.ts (pre-scan + fast-xml-parser), xml-single-pass.ts',
  arbitrary: xmlInputArbitrary,
  run: (input) => {
    if (input.only) {
      const result = parse(input, input.only);
      return { singlePass: result, fastXmlParser: result };
    }
    return { singlePass: parse(input, 'single-pass'), fastXmlParser: parse(input, 'fast-xml-parser') };
  },
  check: checkXmlOutputs,
  classify: (out) => (out.singlePass.ok ? 'accepted' : `refused: ${out.singlePass.reason}`),
  show: (input) => input.body,
  capProbes: xmlCapProbes,
  scaling: xmlScaling,
  ciRuns: 1500,
};
