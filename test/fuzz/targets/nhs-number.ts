// NHS numbers (src/fhir/nhs-number.ts) against an independent modulus-11 reading written here (NHS Data
// Dictionary: weights 10..2, check digit 11 − (sum mod 11), 11 → 0, 10 → invalid), with and without the local
// repeated-digit policy. Inputs are valid numbers, then one digit changed, two swapped, lengths 9 and 11, spaces
// and hyphens as printed on letters, other scripts' digits, repeated digits, and byte mutations.
// (Where numbers are found in a request — criteria, event messages, the JWT — is fuzzed with those parsers.)
import fc from 'fast-check';
import { nhsNumberProblem, isValidNhsNumber, type NhsNumberProblem } from '../../../src/nems/nhs-number.js';
import { excerpt, expectThat, printedAs, type FuzzTarget } from '../harness.js';
import { mutateText, mutationsArbitrary, type Mutation } from '../mutate.js';

/** The check digit of nine digits, or undefined when it would be 10 (no valid number has those nine digits). */
export function checkDigit(nine: string): number | undefined {
  const sum = [...nine].reduce((total, d, i) => total + Number(d) * (10 - i), 0);
  const check = (11 - (sum % 11)) % 11;
  return check === 10 ? undefined : check;
}

export function oracleNhsNumber(value: string, rejectRepeated: boolean): NhsNumberProblem | undefined {
  if (!/^[0-9]{10}$/.test(value)) return 'format';
  if (checkDigit(value.slice(0, 9)) !== Number(value[9])) return 'check-digit';
  if (rejectRepeated && new Set(value).size === 1) return 'repeated-digit';
  return undefined;
}

/** A valid NHS number from nine digits (bumping the ninth until a check digit exists). */
export function validNhsNumber(seed: number): string {
  let n = seed % 1_000_000_000;
  for (;;) {
    const nine = String(n).padStart(9, '0');
    const check = checkDigit(nine);
    if (check !== undefined) return `${nine}${check}`;
    n = (n + 1) % 1_000_000_000;
  }
}

type Edit = 'none' | 'change-digit' | 'swap' | 'drop' | 'add' | 'spaces' | 'hyphens' | 'arabic-indic' | 'fullwidth' | 'pad' | 'repeated' | 'sign';

const DIGIT_SETS = { 'arabic-indic': 0x0660, fullwidth: 0xff10 } as const;

function edit(number: string, how: Edit, at: number, digit: number): string {
  const i = at % number.length;
  switch (how) {
    case 'none':
      return number;
    case 'change-digit':
      return `${number.slice(0, i)}${(Number(number[i]) + 1 + (digit % 9)) % 10}${number.slice(i + 1)}`;
    case 'swap': {
      const j = Math.min(i + 1, number.length - 1);
      const d = [...number];
      [d[i], d[j]] = [d[j]!, d[i]!];
      return d.join('');
    }
    case 'drop':
      return number.slice(0, i) + number.slice(i + 1);
    case 'add':
      return number.slice(0, i) + String(digit % 10) + number.slice(i);
    case 'spaces':
      return `${number.slice(0, 3)} ${number.slice(3, 6)} ${number.slice(6)}`;
    case 'hyphens':
      return `${number.slice(0, 3)}-${number.slice(3, 6)}-${number.slice(6)}`;
    case 'arabic-indic':
    case 'fullwidth':
      return [...number].map((d) => String.fromCharCode(DIGIT_SETS[how] + Number(d))).join('');
    case 'pad':
      return [' ', '\t', '0', '+', '\u00a0'][digit % 5] + number;
    case 'repeated':
      return String(digit % 10).repeat(10);
    case 'sign':
      return `-${number.slice(1)}`;
  }
}

export interface NhsNumberInput {
  readonly value: string;
}

const TOKENS = ['0', '9', ' ', '-', '\u0000', '٠', '０', '.', 'e', 'x'];

export const nhsNumberInputArbitrary: fc.Arbitrary<NhsNumberInput> = fc
  .record({
    seed: fc.nat({ max: 999_999_999 }),
    how: fc.constantFrom<Edit>('none', 'none', 'change-digit', 'swap', 'drop', 'add', 'spaces', 'hyphens', 'arabic-indic', 'fullwidth', 'pad', 'repeated', 'sign'),
    at: fc.nat({ max: 9 }),
    digit: fc.nat({ max: 99 }),
    mutations: fc.oneof({ weight: 4, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: mutationsArbitrary(TOKENS.length, 1, 2) }),
  })
  .map(({ seed, how, at, digit, mutations }) => {
    const base = edit(validNhsNumber(seed), how, at, digit);
    const value = mutations.length > 0 ? mutateText(base, mutations, TOKENS, [base]) : base;
    return printedAs({ value }, () => excerpt(value));
  });

interface NhsNumberOutput {
  readonly strict: NhsNumberProblem | undefined;
  readonly lenient: NhsNumberProblem | undefined;
  readonly valid: boolean;
}

export const nhsNumberTarget: FuzzTarget<NhsNumberInput, NhsNumberOutput> = {
  name: 'nhs-number',
  covers: 'src/fhir/nhs-number.ts',
  arbitrary: nhsNumberInputArbitrary,
  run: ({ value }) => ({ strict: nhsNumberProblem(value, true), lenient: nhsNumberProblem(value, false), valid: isValidNhsNumber(value) }),
  check: ({ value }, out) => {
    expectThat(out.strict === oracleNhsNumber(value, true), `problem ${out.strict ?? 'none'}, modulus 11 says ${oracleNhsNumber(value, true) ?? 'none'}`);
    expectThat(out.lenient === oracleNhsNumber(value, false), `problem without the repeated-digit policy ${out.lenient ?? 'none'}, modulus 11 says ${oracleNhsNumber(value, false) ?? 'none'}`);
    expectThat(out.valid === (out.strict === undefined), 'isValidNhsNumber disagrees with nhsNumberProblem');
  },
  show: ({ value }) => value,
  classify: (out) => out.strict ?? 'valid',
  capProbes: () => [
    { name: '10 digits, valid', input: { value: '9434765919' } },
    { name: '11 digits', input: { value: '94347659190' } },
    { name: '9 digits', input: { value: '943476591' } },
    { name: 'check digit would be 10', input: { value: '0000000060' } },
  ],
  ciRuns: 2000,
};
