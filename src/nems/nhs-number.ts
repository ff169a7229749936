// NHS number format and modulus-11 check digit (docs/specification.md §6.3, NHS Data Dictionary).

/** Ten digits: the format alone, for places that must not judge the check digit (e.g. a PDS record's own id). */
export const NHS_NUMBER_PATTERN = /^\d{10}$/;

const WEIGHTS = [10, 9, 8, 7, 6, 5, 4, 3, 2] as const;

export type NhsNumberProblem = 'format' | 'check-digit' | 'repeated-digit';

/**
 * Returns undefined for a valid NHS number, else what is wrong with it. `rejectRepeatedDigits` applies the local
 * policy against numbers like 0000000000 and 9999999999, which pass modulus 11 but are never issued.
 */
export function nhsNumberProblem(value: string, rejectRepeatedDigits = true): NhsNumberProblem | undefined {
  if (value.length !== 10) return 'format';
  let sum = 0;
  for (let i = 0; i < 9; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return 'format';
    sum += digit * WEIGHTS[i]!;
  }
  const last = value.charCodeAt(9) - 48;
  if (last < 0 || last > 9) return 'format';
  let check = 11 - (sum % 11);
  if (check === 11) check = 0;
  if (check === 10 || check !== last) return 'check-digit';
  if (rejectRepeatedDigits && /^(\d)\1{9}$/.test(value)) return 'repeated-digit';
  return undefined;
}

export function isValidNhsNumber(value: string, rejectRepeatedDigits = true): boolean {
  return nhsNumberProblem(value, rejectRepeatedDigits) === undefined;
}
