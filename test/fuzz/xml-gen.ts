// Structure-aware XML generation for the fuzz targets: real NEMS documents (the example events, the Subscription
// and publish bodies) and small grammar-made documents, edited as trees (duplicate, drop, move, rename elements;
// repeat, add and spoil attributes; entities, comments, processing instructions, CDATA, DOCTYPE; nesting,
// fan-out, attribute counts, name and value lengths just over the caps in force), written out in varied but
// legal styles (quotes, white space, line ends, declarations, byte-order mark), then mutated as bytes.
import fc from 'fast-check';
import { DEFAULT_XML_LIMITS, parseFhirXml, type XmlElement, type XmlLimits, type XmlParserEngine } from '../../src/fhir/xml.js';
import { EXPLICIT_SUBSCRIPTION_XML, GENERIC_SUBSCRIPTION, subscriptionXml, vaccinationPublishXml } from '../helpers/bodies.js';
import { nemsExampleFiles, readNemsExample } from '../helpers/nems-examples.js';
import { CANARY, excerpt, printedAs } from './harness.js';
import { applyMutations, mutationsArbitrary, type Mutation } from './mutate.js';

export interface GenElement {
  readonly kind: 'element';
  name: string;
  /** Attribute values as written in the document (already escaped). */
  attributes: [string, string][];
  children: GenNode[];
}
export type GenNode = GenElement | { readonly kind: 'text' | 'raw'; readonly raw: string };

/** Escapes an attribute value so that it parses back to exactly `value` (edge white space survives trimming). */
export function escapeAttribute(value: string): string {
  let out = value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
  out = out.replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`);
  // JavaScript's trim() (what both engines apply) removes more than XML white space: keep edges as references.
  out = out.replace(/^\s+|\s+$/gu, (edge) => [...edge].map((c) => `&#x${c.codePointAt(0)!.toString(16)};`).join(''));
  return out;
}

export function fromTree(el: XmlElement): GenElement {
  const children: GenNode[] = el.text === '' ? [] : [{ kind: 'text', raw: el.text }];
  for (const child of el.children) children.push(fromTree(child));
  return { kind: 'element', name: el.name, attributes: [...el.attributes].map(([n, v]) => [n, escapeAttribute(v)]), children };
}

export function clone(node: GenElement): GenElement {
  return {
    kind: 'element',
    name: node.name,
    attributes: node.attributes.map(([n, v]) => [n, v]),
    children: node.children.map((c) => (c.kind === 'element' ? clone(c) : c)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The corpus.

function parseOrThrow(xml: string | Buffer): GenElement {
  const parsed = parseFhirXml(typeof xml === 'string' ? Buffer.from(xml) : xml, 8 * 1024 * 1024, undefined, 'single-pass');
  if (!parsed.ok) throw new Error(`fuzz corpus document does not parse: ${parsed.reason}`);
  return fromTree(parsed.root);
}

let corpusCache: { readonly name: string; readonly tree: GenElement }[] | undefined;

/** Every NEMS example event, the Subscription bodies and the ~8 KB publish: the starting points. */
export function xmlCorpus(): readonly { readonly name: string; readonly tree: GenElement }[] {
  corpusCache ??= [
    ...nemsExampleFiles().map((file) => ({ name: file, tree: parseOrThrow(readNemsExample(file)) })),
    { name: 'explicit-subscription', tree: parseOrThrow(EXPLICIT_SUBSCRIPTION_XML) },
    { name: 'generic-subscription', tree: parseOrThrow(subscriptionXml(GENERIC_SUBSCRIPTION)) },
    { name: 'vaccination-publish', tree: parseOrThrow(vaccinationPublishXml()) },
  ];
  return corpusCache;
}

let donorCache: Buffer[] | undefined;
function donors(): Buffer[] {
  donorCache ??= xmlCorpus().map((c) => Buffer.from(serialise(c.tree, CANONICAL_STYLE)));
  return donorCache;
}

// ---------------------------------------------------------------------------------------------------------------
// Dictionaries.

export const NAMES = [
  'a', 'b', 'entry', 'resource', 'Bundle', 'MessageHeader', 'Patient', 'identifier', 'system', 'value', 'extension',
  'x:y', 'fhir:Bundle', '_p', 'a.b', 'a-b', 'div', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__',
  '__proto__', 'constructor', 'prototype', '__toString', 'xmlns', 'xml', '#text', ':@', '1a', '-a', '', 'a b', 'é',
];
const ATTRIBUTE_NAMES = ['value', 'url', 'xmlns', 'id', 'v', 'xmlns:x', 'x:v', 'toString', 'constructor', '__proto__', 'a.b', '_', 'é', '1'];
const VALUE_PIECES = [
  '', ' ', '\n', '\r\n', '\r', '\t', 'text', '&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#10;', '&#x41;', '&#32;',
  '&#0;', '&#xD800;', '&#x110000;', '&#65', '&nbsp;', '&', '&#;', '&#x;', '&amp', '>', '"', "'", '\u00a0', '\u2028',
  '\ufeff', 'é', '😀', ';', '#', CANARY, '9912003888', 'https://fhir.nhs.uk/Id/nhs-number', '2018-09-04T11:16:15',
  '2018-09-04T11:16:15+00:00', ']]>', '-->', '<',
];
const RAW_NODES = [
  '<!-- comment -->', '<!---->', '<!-- a -- b -->', '<!-- unterminated', '<?pi x?>', '<?xml version="1.0"?>',
  '<![CDATA[x]]>', '<!DOCTYPE x>', '<!ENTITY e "x">', '<!ELEMENT a ANY>', '&e;', '&amp;', '&#x1F600;', '&#xFFFE;', '</>',
  '<>', '< a/>', '<a/ >', '<a x="1"x="2"/>', '<a x=1/>', '<a x/>', '</entry>', '<entry>', ']]>', '>', CANARY,
];

/** Tokens for byte-level insertion. */
export const XML_TOKENS = [...new Set([...VALUE_PIECES, ...RAW_NODES, '<', '>', '/', '=', '"', "'", ' ', '</a>', '<a>', '/>', '<?', '?>', '<!', '<!--', '-->'])];

// ---------------------------------------------------------------------------------------------------------------
// Tree edits.

type Cap = 'depth' | 'elements' | 'attributes' | 'name' | 'value';
export type TreeEdit =
  | { readonly op: 'duplicate'; readonly node: number; readonly times: number }
  | { readonly op: 'drop' | 'attr-dup'; readonly node: number }
  | { readonly op: 'move'; readonly node: number; readonly to: number }
  | { readonly op: 'rename'; readonly node: number; readonly name: number }
  | { readonly op: 'attr-add'; readonly node: number; readonly name: number; readonly value: readonly number[] }
  | { readonly op: 'attr-value' | 'text'; readonly node: number; readonly value: readonly number[] }
  | { readonly op: 'raw'; readonly node: number; readonly raw: number }
  | { readonly op: 'cap'; readonly node: number; readonly cap: Cap; readonly delta: number };

const node = fc.noBias(fc.nat({ max: 0x7fffffff }));
const valuePieces = fc.array(fc.nat({ max: VALUE_PIECES.length - 1 }), { minLength: 1, maxLength: 5 });

export const treeEditArbitrary: fc.Arbitrary<TreeEdit> = fc.oneof(
  fc.record({ op: fc.constant('duplicate' as const), node, times: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 40 })) }),
  fc.record({ op: fc.constantFrom('drop' as const, 'attr-dup' as const), node }),
  fc.record({ op: fc.constant('move' as const), node, to: node }),
  fc.record({ op: fc.constant('rename' as const), node, name: fc.nat({ max: NAMES.length - 1 }) }),
  fc.record({ op: fc.constant('attr-add' as const), node, name: fc.nat({ max: ATTRIBUTE_NAMES.length - 1 }), value: valuePieces }),
  fc.record({ op: fc.constantFrom('attr-value' as const, 'text' as const), node, value: valuePieces }),
  fc.record({ op: fc.constant('raw' as const), node, raw: fc.nat({ max: RAW_NODES.length - 1 }) }),
  fc.record({
    op: fc.constant('cap' as const),
    node,
    cap: fc.constantFrom<Cap>('depth', 'elements', 'attributes', 'name', 'value'),
    delta: fc.integer({ min: -1, max: 2 }),
  }),
);

/** Elements in document order. */
function elements(root: GenElement): GenElement[] {
  const out: GenElement[] = [];
  const walk = (el: GenElement): void => {
    out.push(el);
    for (const c of el.children) if (c.kind === 'element') walk(c);
  };
  walk(root);
  return out;
}

function parentOf(root: GenElement, target: GenElement): GenElement | undefined {
  for (const el of elements(root)) if (el.children.includes(target)) return el;
  return undefined;
}

/** Nesting level of `target` (root = 1). */
function levelOf(root: GenElement, target: GenElement): number {
  const find = (el: GenElement, level: number): number => {
    if (el === target) return level;
    for (const c of el.children) {
      if (c.kind !== 'element') continue;
      const found = find(c, level + 1);
      if (found > 0) return found;
    }
    return 0;
  };
  return find(root, 1);
}

/** Element counts past this are left to the cap probes (the 1M run keeps each input small and fast). */
const MAX_GENERATED_ELEMENTS = 20_000;

export function applyTreeEdit(root: GenElement, edit: TreeEdit, lim: XmlLimits): GenElement {
  const all = elements(root);
  const el = all[edit.node % all.length]!;
  const parent = parentOf(root, el);
  const values = (pieces: readonly number[]) => pieces.map((p) => VALUE_PIECES[p]!).join('');
  switch (edit.op) {
    case 'duplicate':
      if (parent && all.length * (edit.times + 1) < MAX_GENERATED_ELEMENTS) {
        const at = parent.children.indexOf(el);
        parent.children.splice(at, 0, ...Array.from({ length: edit.times }, () => clone(el)));
      }
      break;
    case 'drop':
      if (parent) parent.children.splice(parent.children.indexOf(el), 1);
      break;
    case 'move': {
      const to = all[edit.to % all.length]!;
      if (parent && to !== el && !elements(el).includes(to)) {
        parent.children.splice(parent.children.indexOf(el), 1);
        to.children.push(el);
      }
      break;
    }
    case 'rename':
      el.name = NAMES[edit.name]!;
      break;
    case 'attr-dup':
      if (el.attributes.length > 0) el.attributes.push([el.attributes[0]![0], el.attributes[0]![1]]);
      else el.attributes.push(['value', '1'], ['value', '2']);
      break;
    case 'attr-add':
      el.attributes.push([ATTRIBUTE_NAMES[edit.name]!, values(edit.value)]);
      break;
    case 'attr-value':
      if (el.attributes.length > 0) el.attributes[edit.node % el.attributes.length]![1] = values(edit.value);
      else el.attributes.push(['value', values(edit.value)]);
      break;
    case 'text':
      el.children.splice(edit.node % (el.children.length + 1), 0, { kind: 'text', raw: values(edit.value) });
      break;
    case 'raw':
      el.children.splice(edit.node % (el.children.length + 1), 0, { kind: 'raw', raw: RAW_NODES[edit.raw]! });
      break;
    case 'cap':
      applyCap(root, el, edit.cap, edit.delta, lim, all.length);
      break;
  }
  return root;
}

/** Brings one measure of the document to the cap in force plus `delta` (-1, at, just over, two over). */
function applyCap(root: GenElement, el: GenElement, cap: Cap, delta: number, lim: XmlLimits, count: number): void {
  switch (cap) {
    case 'depth': {
      // Nest a chain under `el` so the document reaches maxDepth + delta.
      const wanted = lim.maxDepth + delta - levelOf(root, el);
      let chain: GenElement | undefined;
      for (let i = 0; i < wanted && i < 4096; i++) chain = { kind: 'element', name: 'd', attributes: [], children: chain ? [chain] : [] };
      if (chain) el.children.push(chain);
      break;
    }
    case 'elements': {
      const wanted = lim.maxElements + delta - count;
      if (wanted > 0 && lim.maxElements < MAX_GENERATED_ELEMENTS) {
        for (let i = 0; i < wanted; i++) el.children.push({ kind: 'element', name: 'e', attributes: [], children: [] });
      }
      break;
    }
    case 'attributes': {
      const names = new Set(el.attributes.map(([n]) => n));
      for (let i = 0; el.attributes.length < lim.maxAttributesPerElement + delta; i++) {
        if (!names.has(`a${i}`)) el.attributes.push([`a${i}`, String(i)]);
      }
      break;
    }
    case 'name':
      el.name = 'n'.repeat(Math.max(1, lim.maxNameChars + delta));
      break;
    case 'value': {
      const length = Math.max(0, lim.maxAttributeValueChars + delta);
      const value = `${CANARY}${'v'.repeat(length)}`.slice(0, length);
      if (el.attributes.length > 0) el.attributes[0]![1] = value;
      else el.attributes.push(['value', value]);
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing a tree out: every style here is legal XML, so a refusal always comes from an edit or a mutation.

export interface XmlStyle {
  readonly quote: 'double' | 'single' | 'mixed';
  readonly spaceAroundEquals: boolean;
  readonly attributeSeparator: string;
  readonly emptyElement: '/>' | ' />' | 'open-close';
  readonly lineEnd: '' | '\n' | '\r\n' | '\r' | '\n  ';
  readonly spaceInClosingTag: boolean;
  readonly declaration: number;
  readonly byteOrderMark: boolean;
}

const DECLARATIONS = [
  '',
  '<?xml version="1.0" encoding="UTF-8"?>',
  "<?xml version='1.0' encoding='utf-8'?>",
  '<?xml version="1.0"?>',
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
  '<?xml  version = "1.1"\tencoding="UTF-8" ?>',
];

export const CANONICAL_STYLE: XmlStyle = {
  quote: 'double', spaceAroundEquals: false, attributeSeparator: ' ', emptyElement: '/>', lineEnd: '', spaceInClosingTag: false, declaration: 0, byteOrderMark: false,
};

export const styleArbitrary: fc.Arbitrary<XmlStyle> = fc.record({
  quote: fc.constantFrom('double' as const, 'single' as const, 'mixed' as const),
  spaceAroundEquals: fc.boolean(),
  attributeSeparator: fc.constantFrom(' ', '  ', '\n', '\t', '\r\n'),
  emptyElement: fc.constantFrom('/>' as const, ' />' as const, 'open-close' as const),
  lineEnd: fc.constantFrom('' as const, '\n' as const, '\r\n' as const, '\r' as const, '\n  ' as const),
  spaceInClosingTag: fc.boolean(),
  declaration: fc.nat({ max: DECLARATIONS.length - 1 }),
  byteOrderMark: fc.boolean(),
});

export function serialise(root: GenElement, style: XmlStyle): string {
  const parts: string[] = [];
  if (style.byteOrderMark) parts.push('\ufeff');
  if (style.declaration > 0) parts.push(DECLARATIONS[style.declaration]!, style.lineEnd || '\n');
  let index = 0;
  const write = (el: GenElement): void => {
    parts.push('<', el.name);
    for (const [name, raw] of el.attributes) {
      // A raw value holding one quote kind is written with the other, as a writer would.
      let quote = style.quote === 'single' || (style.quote === 'mixed' && index++ % 2 === 1) ? "'" : '"';
      if (raw.includes(quote)) quote = quote === '"' ? "'" : '"';
      parts.push(style.attributeSeparator, name, style.spaceAroundEquals ? ' = ' : '=', quote, raw, quote);
    }
    if (el.children.length === 0 && style.emptyElement !== 'open-close') {
      parts.push(style.emptyElement);
    } else {
      parts.push('>');
      for (const child of el.children) {
        parts.push(style.lineEnd);
        if (child.kind === 'element') write(child);
        else parts.push(child.raw);
      }
      parts.push(style.lineEnd, '</', el.name, style.spaceInClosingTag ? ' >' : '>');
    }
  };
  write(root);
  parts.push(style.lineEnd);
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------------------------
// Small grammar-made documents (odd names, entities, comments, text everywhere), as the first equivalence test had.

const grammarName = fc.constantFrom('a', 'b', 'Bundle', 'entry', 'value', 'x:y', 'toString', 'valueOf', '_p', 'div', 'a.b-c');
const grammarChars = fc.array(fc.constantFrom(...VALUE_PIECES.filter((p) => !p.includes('<'))), { maxLength: 6 }).map((p) => p.join(''));
const grammarAttribute = fc
  .tuple(fc.constantFrom('value', 'url', 'xmlns', 'v', 'toString', 'a:b'), grammarChars, fc.constantFrom('"', "'"))
  .map(([n, v, q]) => ` ${n}=${q}${v.split(q).join('')}${q}`);
const grammarElement: fc.Memo<string> = fc.memo((depth) => {
  const children = depth <= 1 ? fc.constant([] as string[]) : fc.array(fc.oneof(grammarElement(depth - 1), grammarChars, fc.constant('<!-- c -->')), { maxLength: 4 });
  return fc
    .tuple(grammarName, fc.uniqueArray(grammarAttribute, { maxLength: 3, selector: (a) => a.slice(0, a.indexOf('=')) }), children, fc.boolean())
    .map(([n, attrs, kids, empty]) => (empty && kids.length === 0 ? `<${n}${attrs.join('')}/>` : `<${n}${attrs.join('')}>${kids.join('')}</${n}>`));
});

// ---------------------------------------------------------------------------------------------------------------
// The generated input.

export interface XmlInput {
  readonly body: Buffer;
  /** Limits passed to the parser: undefined for the defaults, else smaller caps so "just over" stays cheap. */
  readonly limits?: Partial<XmlLimits>;
  readonly maxBytes: number;
  /** Run one engine only (the runner's per-engine linear-time check); the differential needs both. */
  readonly only?: XmlParserEngine;
}

export const PUBLISH_MAX_BYTES = 3 * 1024 * 1024;

const smallLimits: fc.Arbitrary<Partial<XmlLimits> | undefined> = fc.option(
  fc.record(
    {
      maxDepth: fc.integer({ min: 1, max: 24 }),
      maxElements: fc.integer({ min: 1, max: 400 }),
      maxAttributeValueChars: fc.integer({ min: 0, max: 300 }),
      maxAttributesPerElement: fc.integer({ min: 1, max: 8 }),
      maxNameChars: fc.integer({ min: 1, max: 40 }),
    },
    { requiredKeys: [] },
  ),
  { freq: 2, nil: undefined },
);

/** How the byte cap is set: the publish cap, or a cap within a byte or two of the body's length. */
const byteCap = fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 1 }) });

function finish(text: string | Buffer, mutations: readonly Mutation[], limits: Partial<XmlLimits> | undefined, cap: number): XmlInput {
  const body = applyMutations(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, mutations, XML_TOKENS_BYTES, donors());
  const input: XmlInput = { body, ...(limits ? { limits } : {}), maxBytes: cap === 0 ? PUBLISH_MAX_BYTES : Math.max(0, body.length + cap) };
  return printedAs(input, () => `{ limits: ${JSON.stringify(limits ?? 'default')}, maxBytes: ${input.maxBytes}, body: ${excerpt(body, 2000)} }`);
}

const XML_TOKENS_BYTES = XML_TOKENS.map((t) => Buffer.from(t, 'utf8'));

/** A NEMS document, edited as a tree, written in some style, then mutated as bytes. */
export const nemsXmlArbitrary: fc.Arbitrary<XmlInput> = fc
  .record({
    base: fc.nat(),
    limits: smallLimits,
    edits: fc.array(treeEditArbitrary, { maxLength: 4 }),
    style: styleArbitrary,
    mutations: fc.oneof({ weight: 2, arbitrary: fc.constant([] as Mutation[]) }, { weight: 3, arbitrary: mutationsArbitrary(XML_TOKENS.length, 64, 3) }),
    cap: byteCap,
  })
  .map(({ base, limits, edits, style, mutations, cap }) => {
    const corpus = xmlCorpus();
    const lim: XmlLimits = { ...DEFAULT_XML_LIMITS, ...limits };
    let tree = clone(corpus[base % corpus.length]!.tree);
    for (const edit of edits) tree = applyTreeEdit(tree, edit, lim);
    return finish(serialise(tree, style), mutations, limits, cap);
  });

/** A small grammar-made document, sometimes mutated. */
export const grammarXmlArbitrary: fc.Arbitrary<XmlInput> = fc
  .record({
    declaration: fc.boolean(),
    root: grammarElement(4),
    limits: smallLimits,
    mutations: mutationsArbitrary(XML_TOKENS.length, 64, 2),
  })
  .map(({ declaration, root, limits, mutations }) => finish(`${declaration ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ''}${root}`, mutations, limits, 0));

export const xmlInputArbitrary: fc.Arbitrary<XmlInput> = fc.oneof(
  { weight: 3, arbitrary: nemsXmlArbitrary },
  { weight: 1, arbitrary: grammarXmlArbitrary },
);
