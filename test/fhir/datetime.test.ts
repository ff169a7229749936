// FHIR STU3 date, dateTime and instant (rule fhir.datetime-format): the STU3 regular expressions, then real
// calendar dates (leap years), offsets within ±14:00, seconds required with a time.
import { describe, expect, it } from 'vitest';
import { daysInMonth, isFhirTemporal, parseFhirInstant, temporalTypeOfElement } from '../../src/fhir/datetime.js';

describe('FHIR dateTime', () => {
  it.each([
    '2017', '2017-02', '2017-02-14', '2016-02-29', '2000-02-29', '2017-02-14T15:00:00Z', '2017-02-14T15:00:00+00:00',
    '2017-02-14T15:00:00.123+01:00', '2017-02-14T15:00:00-00:00', '2017-02-14T15:00:00+14:00', '2017-02-14T15:00:00-14:00',
    '2017-02-14T15:00:00+13:59', '2017-02-14T15:00:00+05:30', '2016-12-31T23:59:60Z', '0001-01-01', '9999-12-31T23:59:59Z',
  ])('accepts %s', (value) => {
    expect(isFhirTemporal('dateTime', value)).toBe(true);
  });

  it.each([
    ['an offset beyond 14:00 (the NEMS nipe example)', '2017-11-01T16:02:04+58:00'],
    ['+14:30', '2017-02-14T15:00:00+14:30'],
    ['-15:00', '2017-02-14T15:00:00-15:00'],
    ['30 February', '2017-02-30'],
    ['29 February of a common year', '2019-02-29'],
    ['29 February 1900 (not a leap year)', '1900-02-29'],
    ['31 April', '2017-04-31T10:00:00Z'],
    ['day 00', '2017-02-00'],
    ['month 13', '2017-13'],
    ['a time without seconds', '2017-02-14T15:00+00:00'],
    ['a time without a timezone', '2017-02-14T15:00:00'],
    ['hour 24', '2017-02-14T24:00:00Z'],
    ['minute 60', '2017-02-14T15:60:00Z'],
    ['an offset without a colon', '2017-02-14T15:00:00+0100'],
    ['year 0000', '0000-01-01'],
    ['a negative year', '-2017'],
    ['a lower-case t', '2017-02-14t15:00:00Z'],
    ['a space for T', '2017-02-14 15:00:00Z'],
    ['a trailing newline', '2017-02-14\n'],
    ['an empty value', ''],
    ['a very long fraction', `2017-02-14T15:00:00.${'1'.repeat(80)}Z`],
  ])('refuses %s', (_name, value) => {
    expect(isFhirTemporal('dateTime', value)).toBe(false);
  });
});

describe('FHIR date and instant', () => {
  it('date: no time at all', () => {
    expect(isFhirTemporal('date', '2017-10-02')).toBe(true);
    expect(isFhirTemporal('date', '2017-10')).toBe(true);
    expect(isFhirTemporal('date', '2017-10-02T12:00:00Z')).toBe(false);
    expect(isFhirTemporal('date', '2017-02-29')).toBe(false);
  });

  it('instant: a full date and time with seconds and a timezone, nothing less', () => {
    expect(isFhirTemporal('instant', '2017-11-01T16:02:05+00:00')).toBe(true);
    expect(isFhirTemporal('instant', '2017-11-01T16:02:05.5Z')).toBe(true);
    expect(isFhirTemporal('instant', '2017-11-01')).toBe(false);
    expect(isFhirTemporal('instant', '2017-11-01T16:02Z')).toBe(false);
    expect(isFhirTemporal('instant', '2017-11-01T16:02:05')).toBe(false);
    expect(isFhirTemporal('instant', '2017-11-01T16:02:04+58:00')).toBe(false);
  });

  it('parses an instant to the epoch, applying the offset', () => {
    expect(parseFhirInstant('2030-01-01T00:00:00Z')).toBe(Date.UTC(2030, 0, 1));
    expect(parseFhirInstant('2030-01-01T01:30:00+01:30')).toBe(Date.UTC(2030, 0, 1));
    expect(parseFhirInstant('2029-12-31T10:00:00-14:00')).toBe(Date.UTC(2030, 0, 1));
    expect(parseFhirInstant('2030-01-01T00:00:00.250Z')).toBe(Date.UTC(2030, 0, 1) + 250);
    expect(parseFhirInstant('2016-12-31T23:59:60Z')).toBe(Date.UTC(2017, 0, 1));
    expect(parseFhirInstant('2030-02-30T00:00:00Z')).toBeUndefined();
    expect(parseFhirInstant('2030-01-01T00:00:00+14:30')).toBeUndefined();
    expect(parseFhirInstant('2030-01-01')).toBeUndefined();
  });

  it('knows the length of every month, leap years included', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((m) => daysInMonth(2023, m))).toEqual([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
    expect([2024, 2000, 1900, 2100].map((y) => daysInMonth(y, 2))).toEqual([29, 29, 28, 28]);
  });
});

describe('which elements hold a date', () => {
  it('goes by element name, and by shape for any value written as a date with a time', () => {
    expect(temporalTypeOfElement('timestamp', 'x')).toBe('instant');
    expect(temporalTypeOfElement('lastUpdated', 'x')).toBe('instant');
    expect(temporalTypeOfElement('birthDate', 'x')).toBe('date');
    expect(temporalTypeOfElement('valueDateTime', 'x')).toBe('dateTime');
    expect(temporalTypeOfElement('value', '2017-02-14T10:00')).toBe('dateTime');
    // A telephone number, a code or an identifier is not a date, whatever its digits.
    expect(temporalTypeOfElement('value', '0191-1231234')).toBeUndefined();
    expect(temporalTypeOfElement('code', '2017')).toBeUndefined();
  });
});
