// Byte-level mutations, as data a fast-check arbitrary generates (so failures shrink to fewer, smaller edits):
// bit flips, byte overwrites, truncation, deletion, duplication of a range (counts up to "huge"), dictionary
// tokens, splices from another corpus member, and re-encodings (UTF-16, byte-order marks, Latin-1, invalid UTF-8).
import fc from 'fast-check';

export type Mutation =
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'byte'; readonly at: number; readonly value: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'delete'; readonly at: number; readonly length: number }
  | { readonly op: 'duplicate'; readonly at: number; readonly length: number; readonly times: number }
  | { readonly op: 'insert'; readonly at: number; readonly token: number }
  | { readonly op: 'splice'; readonly at: number; readonly donor: number; readonly from: number; readonly length: number }
  | { readonly op: 'encode'; readonly how: Encoding };

export const ENCODINGS = ['utf16le', 'utf16be', 'utf8-bom', 'utf8-double-bom', 'utf16le-bom', 'latin1', 'overlong', 'surrogate', 'nul', 'truncated-sequence'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/**
 * Mutated inputs never grow past this: a linear parser takes well under the 50 ms hang threshold for it (even
 * fast-xml-parser, ~0.3 µs a byte here). Inputs at the whole-document caps (3 MB, 150 000 elements) are cap probes.
 */
export const MAX_MUTATED_BYTES = 128 * 1024;

/** Positions are spread over the whole input: no bias toward the first bytes. */
const position = fc.noBias(fc.nat({ max: 0x7fffffff }));

export function mutationArbitrary(tokens: number, donors: number): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
    fc.record({ op: fc.constant('byte' as const), at: position, value: fc.nat({ max: 255 }) }),
    fc.record({ op: fc.constant('truncate' as const), at: position }),
    fc.record({ op: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({
      op: fc.constant('duplicate' as const),
      at: position,
      length: fc.integer({ min: 1, max: 256 }),
      // Now and then a huge count (inputs up to MAX_MUTATED_BYTES), mostly a few copies.
      times: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.integer({ min: 5, max: 5000 }) }),
    }),
    fc.record({ op: fc.constant('insert' as const), at: position, token: fc.nat({ max: Math.max(0, tokens - 1) }) }),
    fc.record({
      op: fc.constant('splice' as const),
      at: position,
      donor: fc.nat({ max: Math.max(0, donors - 1) }),
      from: position,
      length: fc.integer({ min: 1, max: 512 }),
    }),
    fc.record({ op: fc.constant('encode' as const), how: fc.constantFrom(...ENCODINGS) }),
  );
}

/** Up to `max` mutations; most inputs get one or two, so they stay close to valid. */
export function mutationsArbitrary(tokens: number, donors: number, max = 4): fc.Arbitrary<readonly Mutation[]> {
  return fc.array(mutationArbitrary(tokens, donors), { maxLength: max });
}

function reencode(input: Buffer, how: Encoding): Buffer {
  const text = input.toString('utf8');
  switch (how) {
    case 'utf16le':
      return Buffer.from(text, 'utf16le');
    case 'utf16be':
      return Buffer.from(text, 'utf16le').swap16();
    case 'utf8-bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), input]);
    case 'utf8-double-bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), input]);
    case 'utf16le-bom':
      return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    case 'latin1':
      // Non-ASCII characters as single Latin-1 bytes: invalid UTF-8 whenever there is one.
      return Buffer.from(text.replace(/[^\u0000-\u00ff]/g, '?') + '\u00e9', 'latin1');
    case 'overlong':
      return insertAt(input, input.length >> 1, Buffer.from([0xc0, 0xbc]));
    case 'surrogate':
      return insertAt(input, input.length >> 1, Buffer.from([0xed, 0xa0, 0x80]));
    case 'nul':
      return insertAt(input, input.length >> 1, Buffer.from([0x00]));
    case 'truncated-sequence':
      return Buffer.concat([input, Buffer.from([0xe2, 0x82])]);
  }
}

function insertAt(input: Buffer, at: number, bytes: Buffer): Buffer {
  return Buffer.concat([input.subarray(0, at), bytes, input.subarray(at)]);
}

/** Applies mutations in order. Positions wrap around the current length. */
export function applyMutations(input: Buffer, mutations: readonly Mutation[], tokens: readonly Buffer[], donors: readonly Buffer[]): Buffer {
  let out = input;
  for (const m of mutations) {
    const at = m.op === 'encode' ? 0 : m.at % (out.length + 1);
    switch (m.op) {
      case 'flip':
        if (out.length > 0) {
          out = Buffer.from(out);
          const i = at % out.length;
          out[i] = out[i]! ^ (1 << m.bit);
        }
        break;
      case 'byte':
        if (out.length > 0) {
          out = Buffer.from(out);
          out[at % out.length] = m.value;
        }
        break;
      case 'truncate':
        out = out.subarray(0, at);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
        break;
      case 'duplicate': {
        const range = out.subarray(at, at + m.length);
        const times = Math.min(m.times, Math.floor((MAX_MUTATED_BYTES - out.length) / Math.max(1, range.length)));
        if (times > 0) out = Buffer.concat([out.subarray(0, at), ...Array.from({ length: times + 1 }, () => range), out.subarray(at + range.length)]);
        break;
      }
      case 'insert':
        if (tokens.length > 0) out = insertAt(out, at, tokens[m.token % tokens.length]!);
        break;
      case 'splice': {
        const donor = donors.length > 0 ? donors[m.donor % donors.length]! : out;
        const from = m.from % (donor.length + 1);
        out = insertAt(out, at, donor.subarray(from, from + m.length));
        break;
      }
      case 'encode':
        out = reencode(out, m.how);
        break;
    }
    if (out.length > MAX_MUTATED_BYTES) out = out.subarray(0, MAX_MUTATED_BYTES);
  }
  return out;
}

/**
 * The same mutations on text. `utf8` for values that reach the parser as decoded document text (criteria);
 * `latin1` for HTTP header values, which Node hands over one character per byte.
 */
export function mutateText(
  input: string,
  mutations: readonly Mutation[],
  tokens: readonly string[],
  donors: readonly string[],
  encoding: 'utf8' | 'latin1' = 'utf8',
): string {
  const bytes = applyMutations(
    Buffer.from(input, 'utf8'),
    mutations,
    tokens.map((t) => Buffer.from(t, 'utf8')),
    donors.map((d) => Buffer.from(d, 'utf8')),
  );
  return bytes.toString(encoding);
}
