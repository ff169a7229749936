// Modulus 11 (docs/specification.md §6.3) checked against an independent formulation, with fast-check.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidNhsNumber, nhsNumberProblem } from '../../src/nems/nhs-number.js';

/**
 * Independent formulation: weight every digit (including the check digit, weight 1) by its distance from the right
 * plus one: 10..1. A number is valid iff that sum is ≡ 0 (mod 11). A check digit of "10" can never satisfy it.
 */
function independentlyValid(value: string): boolean {
  if (!/^[0-9]{10}$/.test(value)) return false;
  let total = 0;
  for (let i = 0; i < 10; i++) total += Number(value[i]) * (10 - i);
  return total % 11 === 0;
}

/** The check digit for a 9-digit prefix by trying every candidate; undefined when none exists (check = 10). */
function checkDigitBySearch(prefix: string): number | undefined {
  for (let d = 0; d <= 9; d++) if (independentlyValid(prefix + d)) return d;
  return undefined;
}

const digit = fc.integer({ min: 0, max: 9 });
const prefix9 = fc.array(digit, { minLength: 9, maxLength: 9 }).map((ds) => ds.join(''));
/** Valid numbers generated independently of the implementation. */
const validNumber = prefix9
  .filter((p) => checkDigitBySearch(p) !== undefined)
  .map((p) => p + String(checkDigitBySearch(p)));

describe('NHS number modulus 11 (docs/specification.md §6.3)', () => {
  it('agrees with the independent formulation for every candidate check digit of random 9-digit prefixes', () => {
    fc.assert(
      fc.property(prefix9, (p) => {
        for (let d = 0; d <= 9; d++) {
          const candidate = p + d;
          expect(nhsNumberProblem(candidate, false) === undefined).toBe(independentlyValid(candidate));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts every independently generated valid number', () => {
    fc.assert(fc.property(validNumber, (n) => nhsNumberProblem(n, false) === undefined), { numRuns: 2000 });
  });

  it('rejects (400 INVALID_NHS_NUMBER territory) every one-digit change of a valid number', () => {
    fc.assert(
      fc.property(validNumber, fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 9 }), (n, position, delta) => {
        const changed = n.slice(0, position) + String((Number(n[position]) + delta) % 10) + n.slice(position + 1);
        // Only a change landing on another valid number could pass; with a prime modulus that never happens.
        expect(independentlyValid(changed)).toBe(false);
        expect(nhsNumberProblem(changed, false)).toBe('check-digit');
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects every transposition of two different adjacent digits of a valid number', () => {
    fc.assert(
      fc.property(validNumber, fc.integer({ min: 0, max: 8 }), (n, i) => {
        fc.pre(n[i] !== n[i + 1]);
        const swapped = n.slice(0, i) + n[i + 1] + n[i] + n.slice(i + 2);
        expect(isValidNhsNumber(swapped, false)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('reports a format problem for anything that is not exactly 10 ASCII digits', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 14 }).filter((s) => !/^[0-9]{10}$/.test(s)), (s) => nhsNumberProblem(s, false) === 'format'),
      { numRuns: 1000 },
    );
    for (const s of ['', '991200388', '99120038881', '991200388A', '9912 03888', '９９１２００３８８８', '-912003888']) {
      expect(nhsNumberProblem(s, false)).toBe('format');
    }
  });

  it.each([
    ['9000000009', undefined],
    ['9434765919', undefined],
    ['9912003888', undefined],
    ['9000000000', 'check-digit'],
    ['6101231234', 'check-digit'],
    ['1234567890', 'check-digit'],
  ] as const)('matches the worked example %s → %s', (n, expected) => {
    expect(nhsNumberProblem(n, false)).toBe(expected);
    expect(independentlyValid(n)).toBe(expected === undefined);
  });

  it('accepts the other numbers the digest verified valid and rejects the ones it verified invalid', () => {
    for (const n of ['9000000017', '9000000025', '9000000033', '9000000084', '9111231130', '9303712862', '5900005879',
      '9693632109', '9732110317', '9733162868', '4010232137', '1234567881']) {
      expect(nhsNumberProblem(n, false), n).toBeUndefined();
    }
    for (const n of ['1112223330', '9000000001']) expect(nhsNumberProblem(n, false), n).toBe('check-digit');
  });

  it('rejects single-repeated-digit numbers only when the local policy asks for it', () => {
    for (let d = 0; d <= 9; d++) {
      const n = String(d).repeat(10);
      if (!independentlyValid(n)) {
        expect(nhsNumberProblem(n, true)).toBe('check-digit');
        continue;
      }
      expect(nhsNumberProblem(n, false)).toBeUndefined();
      expect(nhsNumberProblem(n, true)).toBe('repeated-digit');
    }
    expect(nhsNumberProblem('0000000000', true)).toBe('repeated-digit');
    expect(nhsNumberProblem('9999999999', true)).toBe('repeated-digit');
  });
});
