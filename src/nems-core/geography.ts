// Reference data the generic subscription rules need (docs/specification.md §1.5): GP practice → ICB sub-location ("CCG"),
// and postcode area/district/sector → ICB sub-location, Local Authority and country. NEMS uses national tables;
// the embedded core takes small configurable ones. The defaults are illustrative, not authoritative.

export interface PostcodeAreaCodes {
  /** ICB sub-location (rule names still say CCG), for CHO_POSTCODE_CCG. */
  readonly icb?: string;
  /** Local Authority code, for UHV_POSTCODE_LACODE. */
  readonly localAuthority?: string;
  /** ONS country code (E92000001 …), for COUNTRYCODE. */
  readonly country?: string;
}

export interface GeographyTables {
  /** Registered GP practice ODS code → parent ICB sub-location, for CHO_GP_CCG. */
  readonly gpToIcb: Readonly<Record<string, string>>;
  /**
   * Keyed by postcode area (`LS`), district (`LS1`) or sector (`LS1 4`); the most specific key that defines a
   * field wins, so a country can be given once per area and an LA per district.
   */
  readonly postcodes: Readonly<Record<string, PostcodeAreaCodes>>;
}

export const DEFAULT_GEOGRAPHY: GeographyTables = {
  gpToIcb: { A83627: '16C', E82025: '06N', Y12345: '15F' },
  postcodes: {
    LS: { icb: '15F', localAuthority: 'E08000035', country: 'E92000001' },
    EX: { icb: '15N', country: 'E92000001' },
    EX2: { localAuthority: 'E07000041' },
    CF: { localAuthority: 'W06000015', country: 'W92000004' },
    EH: { country: 'S92000003' },
    BT: { country: 'N92000002' },
    JE: { country: 'L93000001' },
    GY: { country: 'L93000001' },
    IM: { country: 'M83000003' },
  },
};

const UK_POSTCODE = /^([A-Z]{1,2})([0-9][A-Z0-9]?) ?([0-9])([A-Z]{2})$/;

/** Upper-cases a UK postcode and puts one space before the inward code; undefined when it is not one. */
export function normalisePostcode(postcode: string): string | undefined {
  const compact = postcode.toUpperCase().replace(/\s+/g, '');
  const m = UK_POSTCODE.exec(compact);
  return m ? `${m[1]}${m[2]} ${m[3]}${m[4]}` : undefined;
}

/** The code covering `postcode` for one field, from the most specific table key (sector, district, area). */
export function postcodeCode(tables: GeographyTables, postcode: string, field: keyof PostcodeAreaCodes): string | undefined {
  const normal = normalisePostcode(postcode);
  if (!normal) return undefined;
  const m = UK_POSTCODE.exec(normal.replace(' ', ''))!;
  const keys = [`${m[1]}${m[2]} ${m[3]}`, `${m[1]}${m[2]}`, m[1]!];
  for (const key of keys) {
    const entry = lookupKey(tables.postcodes, key);
    if (entry?.[field]) return entry[field];
  }
  return undefined;
}

function lookupKey(table: Readonly<Record<string, PostcodeAreaCodes>>, key: string): PostcodeAreaCodes | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

export function gpParentIcb(tables: GeographyTables, gpOdsCode: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(tables.gpToIcb, gpOdsCode) ? tables.gpToIcb[gpOdsCode] : undefined;
}
