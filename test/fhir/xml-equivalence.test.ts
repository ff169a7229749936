// The two XML engines against each other: the opt-in single-pass parser must give exactly the tree (or the
// failure reason) of the default pre-scan + fast-xml-parser engine for every input. Inputs are the
// real NEMS example events, the test bodies, and generated documents full of the awkward parts (entities, line
// ends, whitespace, comments, renamed names, structural mistakes).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseFhirXml, type XmlElement, type XmlParseResult } from '../../src/fhir/xml.js';
import { nemsExampleFiles, readNemsExample } from '../helpers/nems-examples.js';
import { EXPLICIT_SUBSCRIPTION_XML, vaccinationPublishXml } from '../helpers/bodies.js';

const CAP = 3 * 1024 * 1024;

type Plain = { name: string; attributes: [string, string][]; text: string; children: Plain[] };

function plain(el: XmlElement): Plain {
  return { name: el.name, attributes: [...el.attributes], text: el.text, children: el.children.map(plain) };
}

function comparable(result: XmlParseResult): unknown {
  return result.ok ? { ok: true, root: plain(result.root) } : { ok: false, reason: result.reason, detail: result.detail };
}

function expectSame(xml: string | Buffer): void {
  const body = typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml;
  expect(comparable(parseFhirXml(body, CAP, undefined, 'single-pass'))).toEqual(comparable(parseFhirXml(body, CAP, undefined, 'fast-xml-parser')));
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

  it('for generated documents (property)', () => {
    const name = fc.constantFrom('a', 'b', 'Bundle', 'entry', 'value', 'x:y', 'toString', 'valueOf', '_p', 'div');
    const piece = fc.constantFrom(
      ' ', '\n', '\r\n', '\r', '\t', 'text', '&amp;', '&lt;', '&#10;', '&#x41;', '&#0;', '&nbsp;', '&', '>', '"', "'",
      '\u00a0', 'é', '😀', ';', '#',
    );
    const chars = fc.array(piece, { maxLength: 6 }).map((p) => p.join(''));
    const attr = fc.tuple(fc.constantFrom('value', 'url', 'xmlns', 'v', 'toString', 'a:b'), chars, fc.constantFrom('"', "'"))
      .map(([n, v, q]) => ` ${n}=${q}${v.split(q).join('')}${q}`);
    const element: fc.Memo<string> = fc.memo((depth) => {
      const children = depth <= 1 ? fc.constant([] as string[]) : fc.array(fc.oneof(element(depth - 1), chars, fc.constant('<!-- c -->')), { maxLength: 4 });
      return fc.tuple(name, fc.uniqueArray(attr, { maxLength: 3, selector: (a) => a.slice(0, a.indexOf('=')) }), children, fc.boolean())
        .map(([n, attrs, kids, empty]) => (empty && kids.length === 0 ? `<${n}${attrs.join('')}/>` : `<${n}${attrs.join('')}>${kids.join('')}</${n}>`));
    });
    const mutation = fc.tuple(fc.nat(), fc.constantFrom('', '<', '>', '/', '&', '"', '<!--', '-->', '</a>', '<b>', ' ', '\r'), fc.nat({ max: 3 }));
    const document = fc.tuple(fc.boolean(), element(4), fc.array(mutation, { maxLength: 2 })).map(([decl, root, mutations]) => {
      let xml = `${decl ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ''}${root}`;
      // A few documents are damaged on purpose, so failures are compared too.
      for (const [at, insert, remove] of mutations) {
        const pos = at % (xml.length + 1);
        xml = xml.slice(0, pos) + insert + xml.slice(pos + remove);
      }
      return xml;
    });
    fc.assert(fc.property(document, (xml) => {
      expectSame(xml);
    }), { numRuns: 3000 });
  });
});
