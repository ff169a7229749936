// MIME (src/fhir/mime.ts): Content-Type matching, Accept negotiation, `_format` and the early error-format guess.
// Inputs are media types and Accept lists built from the RFC 9110 grammar around the 8 FHIR types (case, optional
// white space, parameters quoted or not, q-values, wildcards, lists up to just over 64 elements and values up to
// just over 4096 characters), then mutated as header bytes (Latin-1, as Node hands them over).
// Contract: nothing throws; Content-Type matching agrees with an independent reading of the grammar written here
// (the FHIR essence, no parameter but one charset=utf-8); a parsed media type written back parses the same; a
// negotiated type is in the route's family and not excluded by q=0; values over the caps are refused.
import fc from 'fast-check';
import {
  FHIR_MIME_TYPES, MAX_MIME_HEADER_LENGTH, matchFhirMimeType, mimeTypesFor, negotiateAccept, parseAccept, parseFormatParameter, parseMediaType,
  preferredErrorFormat, type AcceptNegotiation, type FhirMimeType, type FormatParameter, type MediaRange, type MediaType, type MimeFamily,
} from '../../../src/fhir/mime.js';
import { CANARY, excerpt, expectThat, printedAs, type CapProbe, type FuzzTarget } from '../harness.js';
import { mutateText, mutationsArbitrary, type Mutation } from '../mutate.js';

// ---------------------------------------------------------------------------------------------------------------
// Generation.

const ESSENCES = [
  'application/fhir+xml', 'application/xml+fhir', 'application/fhir+json', 'application/json+fhir', 'application/xml', 'application/json',
  'text/xml', 'application/*', '*/*', '*/fhir+xml', 'text/*', 'multipart/form-data', 'application/fhir+xml+x', 'application/fhir', 'application/fhir%2Bxml',
];
const PARAMETERS = [
  ['charset', 'utf-8'], ['charset', 'UTF-8'], ['Charset', 'Utf-8'], ['charset', 'utf8'], ['charset', 'iso-8859-1'], ['charset', ''],
  ['q', '0'], ['q', '0.5'], ['q', '1'], ['q', '1.000'], ['q', '1.0001'], ['q', '0.0001'], ['q', '-1'], ['q', '.5'], ['Q', '0'],
  ['fhirVersion', '3.0'], ['boundary', 'x,y'], ['a', CANARY], ['charset', 'utf-8;q=0'], ['profile', 'https://x/y,z'],
] as const;
const OWS = fc.constantFrom('', '', ' ', '\t', '  ');

/** Flips the case of characters picked by `mask`. */
function recase(text: string, mask: number): string {
  return [...text].map((c, i) => ((mask >>> (i % 31)) & 1 ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c)).join('');
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

const parameter = fc
  .record({ p: fc.nat({ max: PARAMETERS.length - 1 }), quoted: fc.boolean(), before: OWS, after: OWS, empty: fc.nat({ max: 9 }) })
  .map(({ p, quoted, before, after, empty }) => {
    const [name, value] = PARAMETERS[p]!;
    // A value that is not a token must be quoted to be well formed; sometimes it is not, on purpose.
    const written = quoted || (value === '' ? empty > 3 : /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(value) && empty > 1) ? quote(value) : value;
    return `${before};${empty === 0 ? ';' : ''}${after}${name}=${written}`;
  });

const mediaType = fc
  .record({
    // Mostly one of the four FHIR essences (the first four), so matching gets past the type to the parameters.
    essence: fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 3 }) }, { weight: 2, arbitrary: fc.nat({ max: ESSENCES.length - 1 }) }),
    mask: fc.nat(),
    lead: OWS,
    params: fc.oneof({ weight: 2, arbitrary: fc.constant([] as string[]) }, { weight: 3, arbitrary: fc.array(parameter, { minLength: 1, maxLength: 3 }) }),
    trail: OWS,
  })
  .map(({ essence, mask, lead, params, trail }) => `${lead}${recase(ESSENCES[essence]!, mask % 4 === 0 ? mask : 0)}${params.join('')}${trail}`);

const acceptList = fc
  .tuple(fc.array(mediaType, { minLength: 1, maxLength: 8 }), fc.constantFrom(',', ', ', ' ,', ',,', ',\t'), fc.nat({ max: 20 }))
  .map(([types, separator, pad]) => {
    // Now and then, a list padded to around the 64-element cap.
    const padded = pad === 0 ? [...types, ...Array.from({ length: 60 }, (_, i) => `x/y${i}`)] : types;
    return padded.join(separator);
  });

export interface MimeInput {
  readonly kind: 'content-type' | 'accept' | 'format' | 'error-format';
  readonly value: string;
  readonly family: MimeFamily;
}

const MIME_TOKENS = [';', ',', '"', '\\', '=', '/', '*', ' ', '\t', 'q=0', 'charset=utf-8', '\u0000', '\u007f', '\u00ff', '+', '%'];

export const mimeInputArbitrary: fc.Arbitrary<MimeInput> = fc
  .record({
    kind: fc.constantFrom('content-type' as const, 'accept' as const, 'format' as const, 'error-format' as const),
    single: mediaType,
    list: acceptList,
    family: fc.constantFrom<MimeFamily>('fhir', 'fhir-xml'),
    short: fc.constantFrom('xml', 'json', 'text/xml', 'application/json', 'XML', ' json ', 'application/fhir xml', 'application/xml fhir'),
    useShort: fc.boolean(),
    length: fc.oneof({ weight: 20, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -1, max: 1 }) }),
    mutations: fc.oneof({ weight: 2, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: mutationsArbitrary(MIME_TOKENS.length, 1, 2) }),
  })
  .map(({ kind, single, list, family, short, useShort, length, mutations }) => {
    let value = kind === 'accept' || kind === 'error-format' ? list : kind === 'format' && useShort ? short : single;
    if (length !== 0) {
      // Pad with a parameter so the value is exactly the cap (+ length).
      const cap = kind === 'format' ? 256 : MAX_MIME_HEADER_LENGTH;
      const pad = cap + length - value.length - ';x='.length;
      if (pad > 0) value = `${value};x=${'a'.repeat(pad)}`;
    }
    if (mutations.length > 0) value = mutateText(value, mutations, MIME_TOKENS, [value], 'latin1');
    const input: MimeInput = { kind, value, family };
    return printedAs(input, () => `{ kind: ${kind}, family: ${family}, value: ${excerpt(value, 400)} }`);
  });

// ---------------------------------------------------------------------------------------------------------------
// An independent reading of a Content-Type (RFC 9110 §8.3.1) for the FHIR list.

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = '"(?:[^"\\\\\\u0000-\\u0008\\u000a-\\u001f\\u007f]|\\\\[\\s\\S])*"';
const MEDIA_TYPE = new RegExp(`^[ \\t]*(${TOKEN})/(${TOKEN})((?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?)*)[ \\t]*$`);
const PARAMETER = new RegExp(`(${TOKEN})=(${TOKEN}|${QUOTED})`, 'g');

export function oracleContentType(value: string, family: MimeFamily): FhirMimeType | undefined {
  if (value.length > MAX_MIME_HEADER_LENGTH) return undefined;
  const m = MEDIA_TYPE.exec(value);
  if (!m) return undefined;
  const essence = `${m[1]!.toLowerCase()}/${m[2]!.toLowerCase()}`;
  const names = new Set<string>();
  let charset = false;
  for (const p of m[3]!.matchAll(PARAMETER)) {
    const name = p[1]!.toLowerCase();
    if (names.has(name)) return undefined;
    names.add(name);
    const raw = p[2]!;
    const v = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\([\s\S])/g, '$1') : raw;
    if (name !== 'charset' || v.toLowerCase() !== 'utf-8') return undefined;
    charset = true;
  }
  return mimeTypesFor(family).find((t) => t.essence === essence && t.charset === charset);
}

/** Elements of a comma-separated header list (commas inside quoted strings do not count). */
function listElements(value: string): number {
  return value.replace(/"(?:[^"\\]|\\[\s\S])*"?/g, '').split(',').length;
}

const MAX_ACCEPT_ELEMENTS = 64;

// ---------------------------------------------------------------------------------------------------------------
// The contract.

type MimeOutput =
  | { readonly kind: 'content-type'; readonly match: FhirMimeType | undefined; readonly again: FhirMimeType | undefined; readonly other: FhirMimeType | undefined; readonly media: MediaType | undefined }
  | { readonly kind: 'accept'; readonly ranges: MediaRange[] | undefined; readonly negotiated: AcceptNegotiation }
  | { readonly kind: 'format'; readonly format: FormatParameter | undefined }
  | { readonly kind: 'error-format'; readonly byAccept: string; readonly byQuery: string };

function writeMediaType(m: MediaType): string {
  return `${m.type}/${m.subtype}${[...m.params].map(([n, v]) => `;${n}=${quote(v)}`).join('')}`;
}

function runMime(input: MimeInput): MimeOutput {
  switch (input.kind) {
    case 'content-type':
      return {
        kind: 'content-type',
        match: matchFhirMimeType(input.value, input.family),
        // Memoised: a second call must give the same answer.
        again: matchFhirMimeType(input.value, input.family),
        other: matchFhirMimeType(input.value, input.family === 'fhir' ? 'fhir-xml' : 'fhir'),
        media: parseMediaType(input.value),
      };
    case 'accept':
      return { kind: 'accept', ranges: parseAccept(input.value), negotiated: negotiateAccept(input.value, input.family) };
    case 'format':
      return { kind: 'format', format: parseFormatParameter(input.value) };
    case 'error-format':
      return {
        kind: 'error-format',
        byAccept: preferredErrorFormat({ accept: input.value }),
        byQuery: preferredErrorFormat({ accept: input.value }, `_format=${encodeURIComponent(input.value)}&x=1`),
      };
  }
}

function checkMime(input: MimeInput, out: MimeOutput): void {
  switch (out.kind) {
    case 'content-type': {
      const expected = oracleContentType(input.value, input.family);
      expectThat(out.match === expected, `Content-Type match ${out.match?.spelling ?? 'none'} but the grammar says ${expected?.spelling ?? 'none'}`);
      expectThat(out.again === out.match, 'a second (memoised) match differs from the first');
      if (out.match && input.family === 'fhir-xml') expectThat(out.other === out.match, 'an XML type accepted for publish is not accepted for subscriptions');
      if (input.value.length > MAX_MIME_HEADER_LENGTH) expectThat(out.media === undefined, 'a media type over the length cap was parsed');
      // Written back with every value quoted, a value near the length cap may go over it.
      if (out.media && writeMediaType(out.media).length <= MAX_MIME_HEADER_LENGTH) {
        const again = parseMediaType(writeMediaType(out.media));
        expectThat(again !== undefined && writeMediaType(again) === writeMediaType(out.media), 'a parsed media type written back does not parse the same');
        expectThat(out.media.type === out.media.type.toLowerCase() && out.media.subtype === out.media.subtype.toLowerCase(), 'type or subtype not lower-cased');
      }
      return;
    }
    case 'accept': {
      if (input.value.length > MAX_MIME_HEADER_LENGTH) expectThat(out.ranges === undefined && !out.negotiated.ok, 'an Accept over the length cap was used');
      if (listElements(input.value) > MAX_ACCEPT_ELEMENTS) expectThat(out.ranges === undefined && !out.negotiated.ok, 'an Accept over the element cap was used');
      for (const r of out.ranges ?? []) {
        expectThat(r.q >= 0 && r.q <= 1, 'a q-value outside 0..1');
        expectThat(!(r.type === '*' && r.subtype !== '*'), 'accepted a */subtype range');
      }
      if (out.negotiated.ok) {
        const chosen = out.negotiated.type;
        expectThat(mimeTypesFor(input.family).includes(chosen), 'negotiated a type outside the route family');
        const ranges = out.ranges ?? [];
        const [type, subtype] = chosen.essence.split('/');
        const naming = ranges.filter((r) => (r.type === '*' || r.type === type) && (r.subtype === '*' || r.subtype === subtype));
        expectThat(naming.some((r) => r.q > 0), 'negotiated a type no range with q > 0 names');
        // The most specific range naming the chosen type decides its weight (RFC 9110 §12.5.1): one with
        // charset=utf-8 for a charset spelling, else the bare type; the first of equals.
        const bare = naming.filter((r) => r.type === type && r.subtype === subtype && r.params.size === 0);
        const withCharset = naming.filter((r) => r.type === type && r.subtype === subtype && r.params.size === 1 && r.params.get('charset')?.toLowerCase() === 'utf-8');
        const deciding = (chosen.charset && withCharset.length > 0 ? withCharset : bare)[0];
        expectThat(deciding === undefined || deciding.q > 0, 'negotiated a type the client excluded with q=0');
        if (out.negotiated.explicit) expectThat(ranges.some((r) => r.type === type && r.subtype === subtype), 'explicit negotiation without a range naming the type');
      }
      return;
    }
    case 'format':
      if (input.value.length > 256) expectThat(out.format === undefined, 'a _format over 256 characters was read');
      if (out.format) {
        expectThat(out.format.format === 'xml' || out.format.format === 'json', 'a _format outside xml/json');
        if (out.format.fhirType) {
          expectThat(FHIR_MIME_TYPES.includes(out.format.fhirType) && out.format.fhirType.format === out.format.format, '_format type and format disagree');
        }
      }
      return;
    case 'error-format':
      expectThat(['xml', 'json'].includes(out.byAccept) && ['xml', 'json'].includes(out.byQuery), 'error format outside xml/json');
      return;
  }
}

export const mimeTarget: FuzzTarget<MimeInput, MimeOutput> = {
  name: 'mime',
  covers: 'src/fhir/mime.ts',
  arbitrary: mimeInputArbitrary,
  run: runMime,
  check: checkMime,
  classify: (out) => {
    switch (out.kind) {
      case 'content-type':
        return `content-type ${out.match ? 'matched' : 'unsupported'}`;
      case 'accept':
        return `accept ${out.negotiated.ok ? (out.negotiated.explicit ? 'explicit' : 'wildcard') : 'unsatisfiable'}`;
      case 'format':
        return `_format ${out.format?.format ?? 'unreadable'}`;
      case 'error-format':
        return `error format ${out.byAccept}`;
    }
  },
  show: (input) => `${input.kind} ${input.family}\n${input.value}`,
  capProbes: (): CapProbe<MimeInput>[] => {
    const at = (n: number) => `application/fhir+xml;x=${'a'.repeat(n - 'application/fhir+xml;x='.length)}`;
    const list = (n: number) => ['application/fhir+json', ...Array.from({ length: n - 1 }, (_, i) => `x/y${i}`)].join(',');
    return [
      { name: `Content-Type of ${MAX_MIME_HEADER_LENGTH} characters`, input: { kind: 'content-type', value: at(MAX_MIME_HEADER_LENGTH), family: 'fhir' } },
      { name: `Content-Type of ${MAX_MIME_HEADER_LENGTH + 1} characters`, input: { kind: 'content-type', value: at(MAX_MIME_HEADER_LENGTH + 1), family: 'fhir' } },
      { name: 'Accept of 64 elements', input: { kind: 'accept', value: list(64), family: 'fhir' } },
      { name: 'Accept of 65 elements', input: { kind: 'accept', value: list(65), family: 'fhir' } },
      { name: `Accept of ${MAX_MIME_HEADER_LENGTH + 1} characters`, input: { kind: 'accept', value: at(MAX_MIME_HEADER_LENGTH + 1), family: 'fhir' } },
      { name: '_format of 257 characters', input: { kind: 'format', value: at(257), family: 'fhir' } },
    ];
  },
  ciRuns: 1500,
};
