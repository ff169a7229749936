// The two XML engines against each other: the single-pass parser must give exactly the tree (or the failure
// reason and detail) of the pre-scan + fast-xml-parser engine for every input. Inputs are the real NEMS example
// events, the test bodies, hand-picked awkward cases, and the fuzz generators of test/fuzz (small grammar-made
// documents, and NEMS documents edited as trees, written in varied styles and mutated as bytes). `npm run fuzz`
// runs the same comparison (comparableXml) on a million generated documents.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseFhirXml } from '../../src/fhir/xml.js';
import { nemsExampleFiles, readNemsExample } from '../helpers/nems-examples.js';
import { EXPLICIT_SUBSCRIPTION_XML, vaccinationPublishXml } from '../helpers/bodies.js';
import { comparableXml } from '../fuzz/targets/xml.js';
import { grammarXmlArbitrary, nemsXmlArbitrary, type XmlInput } from '../fuzz/xml-gen.js';

const CAP = 3 * 1024 * 1024;

function expectSame(xml: string | Buffer): void {
  const body = typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml;
  expect(comparableXml(parseFhirXml(body, CAP, undefined, 'single-pass'))).toEqual(comparableXml(parseFhirXml(body, CAP, undefined, 'fast-xml-parser')));
}

function expectSameForInput(input: XmlInput): void {
  const single = parseFhirXml(input.body, input.maxBytes, input.limits, 'single-pass');
  const fast = parseFhirXml(input.body, input.maxBytes, input.limits, 'fast-xml-parser');
  expect(comparableXml(single)).toEqual(comparableXml(fast));
}

describe('the single-pass engine gives exactly the tree (or failure) of the fast-xml-parser engine', () => {
  it('for every NEMS example event and the test bodies', () => {
    for (const file of nemsExampleFiles()) expectSame(readNemsExample(file));
    expectSame(vaccinationPublishXml());
    expectSame(EXPLICIT_SUBSCRIPTION_XML);
  });

  it.each([
    ['text split by child elements and comments', '<a> x <b/> y <!-- c --> z\r\n w </a>'],
    ['CR LF and lone CR in text and attributes', '<a v="1\r\n2\r3\t4 ">x\r\ny\rz</a>'],
    ['a CR before a comment and a LF after it', '<a>p\r<!-- c -->\nq</a>'],
    ['attribute values trimmed, references kept', '<a v="  &#32;x&#10;  "/>'],
    ['non-ASCII whitespace trimmed like JavaScript trim', '<a v="\u00a0x\u2028">\u00a0y\u00a0</a>'],
    ['names fast-xml-parser renamed', '<toString valueOf="1"><hasOwnProperty/></toString>'],
    ['entity problems after a structural one', '<a v="&bad;"><b></a>'],
    ['an entity problem in text before one in an attribute', '<a>&bad;<b v="&worse;"/></a>'],
    ['closing tag with white space', '<a><b></b   ></a >'],
    ['single-quoted values holding double quotes', `<a v='say "hi"' w="it's"/>`],
    ['greater-than in values and text', '<a v="x>y">1 > 0</a>'],
    ['empty root', '<Bundle/>'],
    ['declaration with standalone', '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<a/>\n'],
  ])('%s', (_name, xml) => {
    expectSame(xml);
  });

  it('for small grammar-made documents, some damaged (property)', () => {
    fc.assert(fc.property(grammarXmlArbitrary, expectSameForInput), { numRuns: 3000 });
  });

  it('for NEMS documents edited as trees, written in varied styles and mutated as bytes, under varied caps (property)', () => {
    fc.assert(fc.property(nemsXmlArbitrary, expectSameForInput), { seed: 0x584d4c, numRuns: 1000 });
  });
});
