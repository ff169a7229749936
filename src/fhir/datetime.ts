// FHIR STU3 date, dateTime and instant (https://hl7.org/fhir/STU3/datatypes.html), judged by the STU3 regular
// expressions and as real calendar dates: the one place the gateway, the event-message rules and the embedded core
// decide whether a date is valid. Rule id: `fhir.datetime-format`.
//
// STU3 "Dates SHALL be valid dates": the regular expressions alone accept 2017-02-30 and day 00, so each date is
// also checked against the calendar (leap years included). A time needs seconds and, per STU3 dateTime, a timezone
// when it has hours and minutes; offsets run from -14:00 to +14:00 as the expressions allow (+14:30 and the +58:00
// of one NEMS example are refused). Years run 0001–9999 (the instant expression's range; the dateTime expression's
// leading minus names no date a NEMS message can carry). A leap second (:60) passes, as the expressions allow.

export type FhirTemporalType = 'date' | 'dateTime' | 'instant';

// The STU3 expressions, anchored, with the year range of `instant` and capture groups for the calendar check.
const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const MONTH = '(0[1-9]|1[0-2])';
const DAY = '(0[0-9]|[1-2][0-9]|3[0-1])';
const TIME = '([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9]|60)(\\.[0-9]+)?';
const ZONE = '(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';

const DATE_PATTERN = new RegExp(`^${YEAR}(-${MONTH}(-${DAY})?)?$`);
const DATE_TIME_PATTERN = new RegExp(`^${YEAR}(-${MONTH}(-${DAY}(T${TIME}${ZONE})?)?)?$`);
const INSTANT_PATTERN = new RegExp(`^${YEAR}-${MONTH}-${DAY}T${TIME}${ZONE}$`);

const PATTERNS: Record<FhirTemporalType, RegExp> = { date: DATE_PATTERN, dateTime: DATE_TIME_PATTERN, instant: INSTANT_PATTERN };

const DESCRIPTIONS: Record<FhirTemporalType, string> = {
  date: 'a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date)',
  dateTime: 'a FHIR dateTime (a real calendar date; a time needs seconds and a timezone from -14:00 to +14:00)',
  instant: 'a FHIR instant (a real calendar date and a time with seconds and a timezone from -14:00 to +14:00)',
};

/** What a value must be, in words, for diagnostics (never quotes the value). */
export function describeFhirTemporal(type: FhirTemporalType): string {
  return DESCRIPTIONS[type];
}

/** True when `value` is a valid FHIR STU3 value of `type`: the STU3 expression, then a real calendar date. */
export function isFhirTemporal(type: FhirTemporalType, value: string): boolean {
  if (value.length > 64 || !PATTERNS[type].test(value)) return false;
  // Every form starts YYYY[-MM[-DD]]; only a full date needs the calendar.
  if (value.length < 10) return true;
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const day = Number(value.slice(8, 10));
  return day >= 1 && day <= daysInMonth(year, month);
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** A valid FHIR instant as milliseconds since the epoch; undefined when it is not one. */
export function parseFhirInstant(value: string): number | undefined {
  if (!isFhirTemporal('instant', value)) return undefined;
  const m = INSTANT_TIME.exec(value)!;
  const [, y, mo, d, h, mi, s, fraction, zone] = m;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  // A leap second (:60) is the first instant of the next minute.
  date.setUTCHours(Number(h), Number(mi), Number(s), fraction ? Math.floor(Number(`0${fraction}`) * 1000) : 0);
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    offsetMinutes = (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6))) * (zone!.startsWith('-') ? -1 : 1);
  }
  return date.getTime() - offsetMinutes * 60_000;
}
const INSTANT_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// -----------------------------------------------------------------------------------------------------------------
// Which elements of a FHIR XML document hold a date, dateTime or instant. The gateway has no StructureDefinitions,
// so it goes by the element names the STU3 resources in NEMS messages use, and by shape: any `value` written as a
// date with a time (YYYY-MM-DDThh…) is a dateTime or instant, whatever its element is called.

const INSTANT_ELEMENTS = new Set(['timestamp', 'lastUpdated', 'issued', 'valueInstant']);
const DATE_ELEMENTS = new Set(['birthDate', 'valueDate', 'expirationDate', 'assertedDate']);
const DATE_TIME_ELEMENTS = new Set([
  'date', 'start', 'end', 'sent', 'recorded', 'created', 'authoredOn', 'occurrenceDateTime', 'valueDateTime',
  'effectiveDateTime', 'performedDateTime', 'deceasedDateTime', 'onsetDateTime', 'abatementDateTime', 'birthDateTime',
]);
const DATE_WITH_TIME_SHAPE = /^\d{4}-\d{2}-\d{2}T/;

/** The FHIR type an element's `value` attribute holds, when it holds a date of some kind; undefined otherwise. */
export function temporalTypeOfElement(elementName: string, value: string): FhirTemporalType | undefined {
  if (INSTANT_ELEMENTS.has(elementName)) return 'instant';
  if (DATE_ELEMENTS.has(elementName)) return 'date';
  if (DATE_TIME_ELEMENTS.has(elementName)) return 'dateTime';
  return DATE_WITH_TIME_SHAPE.test(value) ? 'dateTime' : undefined;
}
