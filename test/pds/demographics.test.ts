// What "the routing demographics match the PDS record" means (docs/specification.md §6.1, §2.10.4): src/pds/demographics.ts.
import { describe, expect, it } from 'vitest';
import { DEMOGRAPHICS_FIELDS, demographicsMismatch, normaliseName, type DemographicsField } from '../../src/pds/demographics.js';
import type { SubmittedDemographics } from '../../src/pipeline/types.js';
import type { PdsDemographics } from '../../src/pds/types.js';

const ALL = new Set(DEMOGRAPHICS_FIELDS);
const RECORD: PdsDemographics = { names: [{ family: 'DAWKINS', given: ['Jack', 'Thomas'] }], birthDate: '2017-10-02' };

function sent(over: Partial<SubmittedDemographics> = {}): SubmittedDemographics {
  return { element: 'routing', family: 'DAWKINS', given: ['Jack'], birthDateTime: '2017-10-02T12:00:00+00:00', ...over };
}

describe('demographicsMismatch', () => {
  it('matches the NEMS example demographics against the same PDS record', () => {
    expect(demographicsMismatch(sent(), RECORD, ALL)).toBeUndefined();
  });

  it.each<[string, Partial<SubmittedDemographics>, 'name' | 'birth-date' | undefined]>([
    ['another family name', { family: 'SMITH' }, 'name'],
    ['the family name in another case, with an apostrophe or hyphen', { family: "Daw'kins" }, undefined],
    ['a second given name of the record as the first given', { given: ['Thomas'] }, undefined],
    ['a given name the record does not hold', { given: ['John'] }, 'name'],
    ['no given name where PDS has some', { given: [] }, 'name'],
    ['no family name where PDS has one', { family: undefined }, 'name'],
    ['an empty family name', { family: '' }, 'name'],
    ['another birth date', { birthDateTime: '2019-10-12T12:00:00+00:00' }, 'birth-date'],
    ['the same date written with another time and zone (the date as written counts)', { birthDateTime: '2017-10-02T23:30:00-05:00' }, undefined],
    ['a date without a time', { birthDateTime: '2017-10-02' }, undefined],
    ['a year only (compared at year precision)', { birthDateTime: '2017' }, undefined],
    ['a wrong year only', { birthDateTime: '2016' }, 'birth-date'],
    ['no birth date where PDS has one', { birthDateTime: undefined }, 'birth-date'],
  ])('%s → %s', (_label, over, expected) => {
    expect(demographicsMismatch(sent(over), RECORD, ALL)).toBe(expected);
  });

  it('checks the birth date before the name, so the first mismatch is reported', () => {
    expect(demographicsMismatch(sent({ family: 'SMITH', birthDateTime: '1900-01-01' }), RECORD, ALL)).toBe('birth-date');
  });

  it('compares nothing PDS did not give: no record, no names, no birth date', () => {
    const odd = sent({ family: 'SMITH', given: ['Ann'], birthDateTime: '1900-01-01' });
    expect(demographicsMismatch(odd, undefined, ALL)).toBeUndefined();
    expect(demographicsMismatch(odd, {}, ALL)).toBeUndefined();
    expect(demographicsMismatch(odd, { names: [{ family: 'SMITH', given: [] }] }, ALL)).toBeUndefined();
    expect(demographicsMismatch(odd, { names: [{ given: ['Ann'] }] }, ALL)).toBeUndefined();
  });

  it('never passes a name it cannot compare: PDS holds names but none is current (all use=old or ended) → name mismatch', () => {
    // The client reads such a record as names: [] (src/pds/fhir-client.ts); any sent name, even the old one, fails.
    expect(demographicsMismatch(sent(), { names: [] }, ALL)).toBe('name');
    expect(demographicsMismatch(sent(), { names: [], birthDate: '2017-10-02' }, ALL)).toBe('name');
    expect(demographicsMismatch(sent({ family: undefined, given: [] }), { names: [] }, ALL)).toBe('name');
    // Only when neither name part is compared (configuration) does it not matter.
    expect(demographicsMismatch(sent(), { names: [] }, new Set<DemographicsField>(['birthDate']))).toBeUndefined();
  });

  it('matches when any current PDS name fits, each name taken as a whole', () => {
    const record: PdsDemographics = { names: [{ family: 'JONES', given: ['Ann'] }, { family: 'SMITH', given: ['Beth'] }] };
    expect(demographicsMismatch(sent({ family: 'SMITH', given: ['Beth'], birthDateTime: undefined }), record, ALL)).toBeUndefined();
    // Family of one name with the given name of another is not a match.
    expect(demographicsMismatch(sent({ family: 'SMITH', given: ['Ann'], birthDateTime: undefined }), record, ALL)).toBe('name');
  });

  it.each<[DemographicsField[], Partial<SubmittedDemographics>, 'name' | 'birth-date' | undefined]>([
    [['family'], { given: ['John'], birthDateTime: '1900-01-01' }, undefined],
    [['family'], { family: 'SMITH' }, 'name'],
    [['given'], { family: 'SMITH' }, undefined],
    [['given'], { given: ['John'] }, 'name'],
    [['birthDate'], { family: 'SMITH', given: ['John'] }, undefined],
    [['birthDate'], { birthDateTime: '1900-01-01' }, 'birth-date'],
    [['family', 'birthDate'], { given: ['John'] }, undefined],
  ])('compares only the configured fields %j', (fields, over, expected) => {
    expect(demographicsMismatch(sent(over), RECORD, new Set(fields))).toBe(expected);
  });
});

describe('normaliseName', () => {
  it.each([
    ["O'Brien", 'OBRIEN'],
    ['Smith-Jones', 'SMITHJONES'],
    ['smith jones', 'SMITHJONES'],
    ['Zoë', 'ZOE'],
    ['Ó Briain', 'OBRIAIN'],
    ['St. John', 'STJOHN'],
    ['Ｓｍｉｔｈ', 'SMITH'],
    ['  ', ''],
  ])('%j → %j', (input, expected) => {
    expect(normaliseName(input)).toBe(expected);
  });
});
