// Certificate and CRL readers (src/edge/cert-info.ts). Inputs are X.509 certificates and CRLs assembled here as
// DER with chosen dates (UTCTime and GeneralizedTime, years 0001–9999, with and without nextUpdate, revoked
// entries and extensions; the signature is never checked by these readers, so none is made), in DER or PEM
// (line widths, CRLF, text around and between blocks, several blocks), then mutated as DER bytes or as PEM text.
// Contract: the only throw is CertInfoError with a documented reason; a date returned is a real date; an intact
// certificate or CRL gives exactly its notAfter / nextUpdate (none when the CRL has none), and a bundle its
// earliest.
// The `trust` work may add a CRL parser of its own: give it a reader entry in READERS and it is fuzzed the same way.
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { MAX_PEM_BLOCKS } from '../../../src/edge/pki.js';
import { bundleEarliestNotAfter, CertInfoError, certificateNotAfter, crlBundleEarliestNextUpdate, crlNextUpdate, type CertInfoFailure } from '../../../src/edge/cert-info.js';
import { excerpt, expectThat, printedAs, type CapProbe, type FuzzTarget } from '../harness.js';
import { applyMutations, mutateText, mutationsArbitrary, type Mutation } from '../mutate.js';

// ---------------------------------------------------------------------------------------------------------------
// A minimal DER writer.

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const oid = (bytes: number[]) => tlv(0x06, Buffer.from(bytes));
const integer = (n: number) => tlv(0x02, Buffer.from([n & 0x7f]));
const ECDSA_SHA256 = seq(oid([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
const NAME = seq(tlv(0x31, seq(oid([0x55, 0x04, 0x03]), tlv(0x0c, Buffer.from('NEMS fuzz CA')))));
const SIGNATURE = tlv(0x03, Buffer.concat([Buffer.from([0]), seq(integer(1), integer(1))]));
let spki: Buffer | undefined;
function subjectPublicKeyInfo(): Buffer {
  spki ??= generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  return spki;
}

/** A Time as RFC 5280 writes it: UTCTime for 1950–2049, GeneralizedTime otherwise (or when `generalized`). */
function time(ms: number, generalized: boolean): Buffer {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, '0');
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  if (!generalized && year >= 1950 && year <= 2049) return tlv(0x17, Buffer.from(`${two(year % 100)}${rest}`, 'latin1'));
  return tlv(0x18, Buffer.from(`${String(year).padStart(4, '0')}${rest}`, 'latin1'));
}

/** A certificate (unsigned: the readers never check a signature) with the given validity. */
export function certificateDer(notBefore: number, notAfter: number, generalized: boolean): Buffer {
  const tbs = seq(tlv(0xa0, integer(2)), integer(1), ECDSA_SHA256, NAME, seq(time(notBefore, false), time(notAfter, generalized)), NAME, subjectPublicKeyInfo());
  return seq(tbs, ECDSA_SHA256, SIGNATURE);
}

function crlDer(thisUpdate: number, nextUpdate: number | undefined, generalized: boolean, version: boolean, revoked: number, extensions: boolean): Buffer {
  const entries = Array.from({ length: revoked }, (_, i) => seq(integer(i + 2), time(thisUpdate, false)));
  const tbs = seq(
    ...(version ? [integer(1)] : []),
    ECDSA_SHA256,
    NAME,
    time(thisUpdate, false),
    ...(nextUpdate !== undefined ? [time(nextUpdate, generalized)] : []),
    ...(revoked > 0 ? [seq(...entries)] : []),
    ...(extensions ? [tlv(0xa0, seq(seq(oid([0x55, 0x1d, 0x14]), tlv(0x04, integer(7)))))] : []),
  );
  return seq(tbs, ECDSA_SHA256, SIGNATURE);
}

export function pem(label: string, der: Buffer, width: number, lineEnd: string): string {
  const body = der.toString('base64');
  const lines = width === 0 ? [body] : body.match(new RegExp(`.{1,${width}}`, 'g')) ?? [''];
  return `-----BEGIN ${label}-----${lineEnd}${lines.join(lineEnd)}${lineEnd}-----END ${label}-----${lineEnd}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Generation.

export type CertReader = 'certificate' | 'bundle' | 'crl' | 'crl-bundle';

export interface CertInput {
  readonly reader: CertReader;
  readonly data: Buffer | string;
  /** ms of the date the reader must return, null for "none" (a CRL without nextUpdate); absent once mutated. */
  readonly expected?: number | null;
  /** An intact CRL the trust reader must refuse as malformed: not RFC 5280 CRL material (see conformingCrl). */
  readonly refused?: true;
}

/**
 * What the CRL reader takes (edge/pki.ts): RFC 5280 requires nextUpdate of conforming issuers (RFC 5280 §5.1.2.5), and the
 * reader refuses a CRL that lists revoked entries or extensions without one; CRL dates are UTCTime from 1950 (RFC 5280 §5.1.2.4), so a
 * date before 1950 is refused too; and a CRL with extensions must say it is v2 (RFC 5280 §5.1.2.1).
 */
function conformingCrl(d: { readonly nextUpdate?: number | undefined; readonly revoked: number; readonly version: boolean; readonly extensions: boolean }): boolean {
  if (d.extensions && !d.version) return false;
  // Without nextUpdate only the barest CRL is read (no entries, no extensions: the schema reader cannot place them).
  if (d.nextUpdate === undefined) return d.revoked === 0 && !d.extensions;
  return new Date(d.nextUpdate).getUTCFullYear() >= 1950;
}

const READERS: Readonly<Record<CertReader, (data: Buffer | string) => Date | undefined>> = {
  certificate: certificateNotAfter,
  bundle: bundleEarliestNotAfter,
  crl: crlNextUpdate,
  'crl-bundle': crlBundleEarliestNextUpdate,
};

const FAILURES: ReadonlySet<CertInfoFailure> = new Set<CertInfoFailure>(['no-certificate', 'malformed-certificate', 'no-crl', 'malformed-crl', 'too-large']);

/** Whole seconds in years 1–9999 (mostly 1950–2100, where real material lives). */
const instant = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: Date.UTC(1950, 0, 1) / 1000, max: Date.UTC(2100, 0, 1) / 1000 }) },
  { weight: 1, arbitrary: fc.integer({ min: Date.parse('0001-01-01T00:00:00Z') / 1000, max: Date.parse('9999-12-31T23:59:59Z') / 1000 }) },
).map((s) => s * 1000);

const document = fc.record({
  notAfter: instant,
  nextUpdate: fc.option(instant, { nil: undefined, freq: 5 }),
  generalized: fc.boolean(),
  version: fc.boolean(),
  revoked: fc.nat({ max: 3 }),
  extensions: fc.boolean(),
});

const PEM_TOKENS = ['-----BEGIN CERTIFICATE-----', '-----END CERTIFICATE-----', '-----BEGIN X509 CRL-----', '-----END X509 CRL-----', '=', '\n', '\r\n', ' ', '!', 'A', '/', '+', '-----'];

export const certInputArbitrary: fc.Arbitrary<CertInput> = fc
  .record({
    reader: fc.constantFrom<CertReader>('certificate', 'bundle', 'crl', 'crl-bundle'),
    documents: fc.array(document, { minLength: 1, maxLength: 3 }),
    form: fc.constantFrom('pem-text', 'pem-bytes', 'der'),
    width: fc.constantFrom(64, 76, 0),
    lineEnd: fc.constantFrom('\n', '\r\n'),
    junk: fc.constantFrom('', 'Certificate:\n    Data: x\n', '# bundle\n', '\u00e9\u0000'),
    derMutations: fc.oneof({ weight: 3, arbitrary: fc.constant([] as Mutation[]) }, { weight: 2, arbitrary: mutationsArbitrary(0, 0, 2) }),
    textMutations: fc.oneof({ weight: 4, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: mutationsArbitrary(PEM_TOKENS.length, 1, 2) }),
  })
  .map(({ reader, documents, form, width, lineEnd, junk, derMutations, textMutations }) => {
    const crl = reader === 'crl' || reader === 'crl-bundle';
    const label = crl ? 'X509 CRL' : 'CERTIFICATE';
    // The single readers take the first block; the bundle readers every block.
    const used = reader === 'bundle' || reader === 'crl-bundle' ? documents : documents.slice(0, 1);
    const ders = documents.map((d) =>
      applyMutations(
        crl ? crlDer(Date.UTC(2024, 0, 1), d.nextUpdate, d.generalized, d.version, d.revoked, d.extensions) : certificateDer(Date.UTC(2024, 0, 1), d.notAfter, d.generalized),
        derMutations,
        [],
        [],
      ),
    );
    let data: Buffer | string;
    if (form === 'der') data = ders[0]!;
    else {
      const text = `${junk}${ders.map((der) => pem(label, der, width, lineEnd)).join(junk)}`;
      data = form === 'pem-text' ? text : Buffer.from(text, 'latin1');
    }
    if (textMutations.length > 0) {
      data = typeof data === 'string' ? mutateText(data, textMutations, PEM_TOKENS, [data], 'latin1') : applyMutations(data, textMutations, PEM_TOKENS.map((t) => Buffer.from(t)), []);
    }
    // Certificates are read from PEM only (a DER certificate is "no certificate"); CRLs from PEM or DER.
    const intact = derMutations.length === 0 && textMutations.length === 0 && (crl || form !== 'der');
    let expected: number | null | undefined;
    // The CRL readers parse every PEM block (one malformed block refuses the file), though the single one returns the first's date.
    const refused = intact && crl && (form === 'der' ? documents.slice(0, 1) : documents).some((d) => !conformingCrl(d));
    if (intact && !refused) {
      const dates = (form === 'der' ? used.slice(0, 1) : used).map((d) => (crl ? d.nextUpdate : d.notAfter));
      const known = dates.filter((d): d is number => d !== undefined);
      expected = known.length === 0 ? null : Math.min(...known);
    }
    const input: CertInput = { reader, data, ...(expected !== undefined ? { expected } : {}), ...(refused ? { refused: true as const } : {}) };
    return printedAs(input, () => `{ reader: ${reader}, expected: ${refused ? 'refused' : expected === undefined ? 'any' : expected === null ? 'none' : new Date(expected).toISOString()}, data: ${excerpt(typeof data === 'string' ? data : data.toString('base64'), 600)} }`);
  });

// ---------------------------------------------------------------------------------------------------------------
// The contract.

type CertOutput = { readonly date: Date | undefined } | { readonly failure: CertInfoFailure; readonly message: string };

function runCert(input: CertInput): CertOutput {
  try {
    return { date: READERS[input.reader](input.data) };
  } catch (error) {
    // The documented refusal; anything else propagates and counts as a crash.
    if (error instanceof CertInfoError) return { failure: error.reason, message: error.message };
    throw error;
  }
}

function checkCert(input: CertInput, out: CertOutput): void {
  const crl = input.reader === 'crl' || input.reader === 'crl-bundle';
  if ('failure' in out) {
    expectThat(FAILURES.has(out.failure), `undocumented CertInfoError reason ${out.failure}`);
    expectThat(input.expected === undefined, `an intact ${crl ? 'CRL' : 'certificate'} was refused: ${out.failure} (${out.message})`);
    if (input.refused) expectThat(out.failure === 'malformed-crl', `a non-conforming CRL was refused as ${out.failure}, not malformed-crl`);
    return;
  }
  expectThat(!input.refused, 'a CRL that is not RFC 5280 material (entries or extensions without nextUpdate, a date before 1950, extensions in v1) was read');
  expectThat(out.date !== undefined || crl, 'a certificate reader returned no date');
  if (out.date !== undefined) expectThat(Number.isFinite(out.date.getTime()), 'returned an invalid Date');
  if (input.expected === undefined) return;
  const got = out.date === undefined ? null : out.date.getTime();
  expectThat(got === input.expected, `read ${got === null ? 'none' : new Date(got).toISOString()}, the document says ${input.expected === null ? 'none' : new Date(input.expected).toISOString()}`);
}

export const certTarget: FuzzTarget<CertInput, CertOutput> = {
  name: 'cert',
  covers: 'src/edge/cert-info.ts (certificate notAfter, CRL nextUpdate, PEM bundles)',
  arbitrary: certInputArbitrary,
  run: runCert,
  check: checkCert,
  classify: (out) => ('failure' in out ? `refused: ${out.failure}` : out.date ? 'read a date' : 'no nextUpdate'),
  show: (input) => (typeof input.data === 'string' ? `${input.reader}\n${input.data}` : input.data),
  capProbes: (): CapProbe<CertInput>[] => {
    const at = Date.UTC(2030, 0, 1);
    const block = pem('CERTIFICATE', certificateDer(Date.UTC(2024, 0, 1), at, false), 64, '\n');
    const crlBlock = pem('X509 CRL', crlDer(Date.UTC(2024, 0, 1), at, false, true, 0, false), 64, '\n');
    return [
      { name: `${MAX_PEM_BLOCKS} certificates (MAX_PEM_BLOCKS)`, input: { reader: 'bundle', data: block.repeat(MAX_PEM_BLOCKS), expected: at }, heavy: true },
      { name: `${MAX_PEM_BLOCKS + 1} certificates`, input: { reader: 'bundle', data: block.repeat(MAX_PEM_BLOCKS + 1) }, heavy: true },
      { name: `a CRL bundle of ${MAX_PEM_BLOCKS} CRLs`, input: { reader: 'crl-bundle', data: crlBlock.repeat(MAX_PEM_BLOCKS), expected: at }, heavy: true },
      { name: `a CRL bundle of ${MAX_PEM_BLOCKS + 1} CRLs`, input: { reader: 'crl-bundle', data: crlBlock.repeat(MAX_PEM_BLOCKS + 1) }, heavy: true },
    ];
  },
  ciRuns: 600,
};
