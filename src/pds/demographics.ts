// Demographics matching (docs/specification.md §6.1, §2.3, §2.10.4): the name and birthDateTime in a published event's routing
// demographics must match the PDS record of its NHS number. This is the one definition of "match"; the nhs-numbers
// stage decides what a mismatch earns (400 INVALID_PATIENT_DEMOGRAPHICS by default).
//
// Decisions (the sources give no algorithm; PDS's own traces are fuzzier than this):
// - Names compare after Unicode compatibility decomposition, with accents, case and everything that is not a letter
//   removed: "O'Brien" = "OBRIEN", "Smith-Jones" = "SMITH JONES", "Zoë" = "ZOE".
// - The name matches when some current PDS name has the same family name and lists the first given name sent
//   among its given names. A part PDS has and the request leaves out is a mismatch; a part PDS does not have is
//   not compared. A name that cannot be compared is never a pass: when PDS holds names but none is current (all
//   `use: old` or ended; `names: []`), the sent name is a mismatch (rule `pds.demographics-match`); a record whose
//   names PDS sent unreadable never gets here (the client fails it closed, 503).
// - The birth date compares the date as written in the birthDateTime (the part before `T`, no time-zone shift)
//   with PDS's birthDate, at the precision of the less precise of the two.
// - Each of family / given / birthDate can be left out of the comparison (pds.policy.demographicsFields).
import type { SubmittedDemographics } from '../pipeline/types.js';
import type { PdsDemographics, PdsName } from './types.js';

export type DemographicsField = 'family' | 'given' | 'birthDate';
export const DEMOGRAPHICS_FIELDS: readonly DemographicsField[] = ['family', 'given', 'birthDate'];

/** Which part failed; diagnostics name the part, never the values. */
export type DemographicsMismatch = 'name' | 'birth-date';

/** The first part that does not match the PDS record, or undefined when everything compared matches. */
export function demographicsMismatch(
  submitted: SubmittedDemographics,
  record: PdsDemographics | undefined,
  fields: ReadonlySet<DemographicsField>,
): DemographicsMismatch | undefined {
  if (!record) return undefined;
  if (fields.has('birthDate') && record.birthDate !== undefined) {
    if (submitted.birthDateTime === undefined || !sameDate(datePart(submitted.birthDateTime), record.birthDate)) return 'birth-date';
  }
  const family = fields.has('family');
  const given = fields.has('given');
  // pds.demographics-match: an empty list (names held, none current) matches nothing.
  if ((family || given) && record.names !== undefined) {
    const sent = { family: submitted.family === undefined ? undefined : normaliseName(submitted.family), given: submitted.given[0] === undefined ? undefined : normaliseName(submitted.given[0]) };
    if (!record.names.some((name) => nameMatches(sent, name, family, given))) return 'name';
  }
  return undefined;
}

function nameMatches(sent: { family: string | undefined; given: string | undefined }, name: PdsName, family: boolean, given: boolean): boolean {
  if (family && name.family !== undefined) {
    if (sent.family === undefined || sent.family === '' || normaliseName(name.family) !== sent.family) return false;
  }
  if (given && name.given.length > 0) {
    if (sent.given === undefined || sent.given === '' || !name.given.some((g) => normaliseName(g) === sent.given)) return false;
  }
  return true;
}

/** Upper-case letters only: accents, apostrophes, hyphens, spaces and dots do not count. */
export function normaliseName(name: string): string {
  // ASCII fast path: most names are plain letters.
  if (/^[A-Za-z' .-]*$/.test(name)) return name.replace(/[' .-]/g, '').toUpperCase();
  return name.normalize('NFKD').replace(/\p{M}/gu, '').toUpperCase().replace(/[^\p{L}]/gu, '');
}

function datePart(dateTime: string): string {
  const t = dateTime.indexOf('T');
  return t === -1 ? dateTime : dateTime.slice(0, t);
}

/** Equal at the precision of the less precise date (YYYY, YYYY-MM or YYYY-MM-DD). */
function sameDate(a: string, b: string): boolean {
  const n = Math.min(a.length, b.length);
  if (n < 4) return false;
  return a.slice(0, n) === b.slice(0, n);
}
