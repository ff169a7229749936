// fhir/mime.ts: the one list of FHIR MIME types (docs/specification.md §7) and its Content-Type / Accept / _format parsers.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DEFAULT_FHIR_MIME_TYPE,
  FHIR_MIME_TYPES,
  FHIR_XML_MIME_TYPES,
  matchFhirMimeType,
  negotiateAccept,
  parseAccept,
  parseFormatParameter,
  parseMediaType,
  preferredErrorFormat,
  preferredErrorMedia,
  responseMedia,
} from '../../src/fhir/mime.js';

describe('the FHIR MIME type list (docs/specification.md §7)', () => {
  it('holds the 8 subscription types, 4 of them XML for publish, with the XML default first', () => {
    expect(FHIR_MIME_TYPES.map((t) => t.spelling).sort()).toEqual(
      [
        'application/fhir+json',
        'application/fhir+json;charset=utf-8',
        'application/fhir+xml',
        'application/fhir+xml;charset=utf-8',
        'application/json+fhir',
        'application/json+fhir;charset=utf-8',
        'application/xml+fhir',
        'application/xml+fhir;charset=utf-8',
      ].sort(),
    );
    expect(FHIR_XML_MIME_TYPES.map((t) => t.spelling)).toHaveLength(4);
    expect(FHIR_XML_MIME_TYPES.every((t) => t.format === 'xml')).toBe(true);
    expect(FHIR_MIME_TYPES[0]!.spelling).toBe(DEFAULT_FHIR_MIME_TYPE);
    expect(DEFAULT_FHIR_MIME_TYPE).toBe('application/xml+fhir;charset=utf-8');
  });
});

describe('parseMediaType', () => {
  it('lower-cases type, subtype and parameter names and unquotes values', () => {
    const media = parseMediaType(' Application/FHIR+XML ;  Charset="UTF-8"');
    expect(media?.type).toBe('application');
    expect(media?.subtype).toBe('fhir+xml');
    expect([...media!.params]).toEqual([['charset', 'UTF-8']]);
  });

  it('reads quoted strings with escapes and tolerates empty parameters', () => {
    expect(parseMediaType('text/plain;a="x\\"y";;b=c')?.params.get('a')).toBe('x"y');
    expect(parseMediaType('application/fhir+xml;')?.params.size).toBe(0);
  });

  it.each([
    ['', 'empty'],
    ['application', 'no subtype'],
    ['application/', 'empty subtype'],
    ['/fhir+xml', 'empty type'],
    ['application/fhir+xml;charset', 'parameter without value'],
    ['application/fhir+xml;charset="utf-8', 'unterminated quoted string'],
    ['application/fhir+xml charset=utf-8', 'missing semicolon'],
    ['application/fhir+xml;charset=utf-8;charset=utf-8', 'duplicate parameter'],
    ['application/fhir xml', 'space in subtype'],
    ['application/fhir+xml;a="\u0001"', 'control character in quoted string'],
    // Found by the fuzz (test/fuzz): a backslash let a control character into a quoted string (RFC 9110 §5.6.4).
    ['application/fhir+xml;a="\\\u0017"', 'escaped control character in quoted string'],
    ['application/fhir+xml;a="\\\u007f"', 'escaped DEL in quoted string'],
  ])('rejects %j (%s)', (value) => {
    expect(parseMediaType(value)).toBeUndefined();
  });

  it('refuses oversized values without parsing them', () => {
    expect(parseMediaType(`application/fhir+xml;x=${'a'.repeat(5000)}`)).toBeUndefined();
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (value) => {
        parseMediaType(value);
        parseAccept(value);
        parseFormatParameter(value);
        negotiateAccept(value, 'fhir');
      }),
      { numRuns: 500 },
    );
  });
});

describe('matchFhirMimeType (Content-Type)', () => {
  it('accepts each of the 8 spellings for the subscription API and only the 4 XML ones for publish', () => {
    for (const type of FHIR_MIME_TYPES) {
      expect(matchFhirMimeType(type.spelling, 'fhir')?.spelling).toBe(type.spelling);
      expect(matchFhirMimeType(type.spelling, 'fhir-xml')?.spelling).toBe(type.format === 'xml' ? type.spelling : undefined);
    }
  });

  it('is case- and whitespace-insensitive and maps to the canonical spelling', () => {
    expect(matchFhirMimeType('APPLICATION/JSON+FHIR ; CHARSET=utf-8')?.spelling).toBe('application/json+fhir;charset=utf-8');
    expect(matchFhirMimeType('application/fhir+xml;charset="utf-8"')?.spelling).toBe('application/fhir+xml;charset=utf-8');
  });

  it.each(['application/xml', 'application/json', 'text/xml', 'application/fhir+xml;charset=iso-8859-1', 'application/fhir+xml;charset=utf8', 'application/fhir+xml;fhirVersion=3.0', '*/*'])(
    'does not accept %s',
    (value) => {
      expect(matchFhirMimeType(value)).toBeUndefined();
    },
  );
});

describe('parseAccept', () => {
  it('reads q-values and keeps media-type parameters before q', () => {
    const ranges = parseAccept('application/fhir+xml;charset=utf-8;q=0.5, */*;q=0.001, application/*')!;
    expect(ranges.map((r) => [r.type, r.subtype, r.q, r.index])).toEqual([
      ['application', 'fhir+xml', 0.5, 0],
      ['*', '*', 0.001, 1],
      ['application', '*', 1, 2],
    ]);
    expect(ranges[0]!.params.get('charset')).toBe('utf-8');
  });

  it('skips malformed elements (q above 1, four decimals, */xml) and empty list elements', () => {
    const ranges = parseAccept('a/b;q=1.5, c/d;q=0.0001, */xml, , e/f')!;
    expect(ranges.map((r) => r.subtype)).toEqual(['f']);
    expect(parseAccept('garbage')).toBeUndefined();
  });

  it('does not split on a comma inside a quoted string', () => {
    expect(parseAccept('a/b;x="1,2", c/d')!.map((r) => r.subtype)).toEqual(['b', 'd']);
  });
});

describe('negotiateAccept', () => {
  const chosen = (accept: string, family: 'fhir' | 'fhir-xml' = 'fhir') => {
    const result = negotiateAccept(accept, family);
    return result.ok ? `${result.type.spelling}${result.explicit ? '' : ' (wildcard)'}` : 'none';
  };

  it('chooses the named type, the highest weight, and the default for wildcards', () => {
    expect(chosen('application/fhir+json')).toBe('application/fhir+json');
    expect(chosen('application/fhir+xml;charset=utf-8')).toBe('application/fhir+xml;charset=utf-8');
    expect(chosen('application/fhir+xml;q=0.5, application/fhir+json')).toBe('application/fhir+json');
    expect(chosen('*/*')).toBe(`${DEFAULT_FHIR_MIME_TYPE} (wildcard)`);
    expect(chosen('application/*')).toBe(`${DEFAULT_FHIR_MIME_TYPE} (wildcard)`);
    expect(chosen('application/fhir+json;q=0.2, */*;q=0.5')).toBe(`${DEFAULT_FHIR_MIME_TYPE} (wildcard)`);
  });

  it('prefers the client order on equal weights, and a named type over a wildcard', () => {
    expect(chosen('application/fhir+json, application/fhir+xml')).toBe('application/fhir+json');
    expect(chosen('application/fhir+xml, application/fhir+json')).toBe('application/fhir+xml');
    expect(chosen('*/*, application/fhir+json')).toBe('application/fhir+json');
  });

  it('lets q=0 exclude a type even when a wildcard would allow it', () => {
    expect(chosen('application/xml+fhir;q=0, */*')).toBe('application/fhir+xml;charset=utf-8 (wildcard)');
    expect(chosen('*/*;q=0')).toBe('none');
    expect(chosen('application/fhir+json;q=0')).toBe('none');
    expect(chosen('application/fhir+json;charset=utf-8;q=0, application/fhir+json')).toBe('application/fhir+json');
  });

  it('refuses non-FHIR types and charsets other than utf-8', () => {
    expect(chosen('application/json')).toBe('none');
    expect(chosen('application/fhir+xml;charset=iso-8859-1')).toBe('none');
  });

  it('offers publish the XML types only', () => {
    expect(chosen('application/fhir+json', 'fhir-xml')).toBe('none');
    expect(chosen('application/fhir+json, */*;q=0.1', 'fhir-xml')).toBe(`${DEFAULT_FHIR_MIME_TYPE} (wildcard)`);
  });
});

describe('parseFormatParameter (_format)', () => {
  it.each([
    ['xml', 'xml', undefined],
    ['text/xml', 'xml', undefined],
    ['application/xml', 'xml', undefined],
    ['JSON', 'json', undefined],
    ['application/json', 'json', undefined],
    ['application/fhir+json', 'json', 'application/fhir+json'],
    ['application/fhir json', 'json', 'application/fhir+json'],
    ['application/xml+fhir;charset=utf-8', 'xml', 'application/xml+fhir;charset=utf-8'],
  ])('reads %j as %s', (value, format, spelling) => {
    const parsed = parseFormatParameter(value);
    expect(parsed?.format).toBe(format);
    expect(parsed?.fhirType?.spelling).toBe(spelling);
  });

  it.each(['html', 'turtle', '', 'application/fhir+xml;charset=latin1'])('refuses %j', (value) => {
    expect(parseFormatParameter(value)).toBeUndefined();
  });
});

describe('preferredErrorFormat', () => {
  it('answers JSON only when _format or Accept clearly asks for a JSON FHIR type', () => {
    expect(preferredErrorFormat({ accept: 'application/fhir+json' })).toBe('json');
    expect(preferredErrorFormat({}, new URLSearchParams('_format=json'))).toBe('json');
    expect(preferredErrorFormat({}, '_format=application/fhir%2Bjson')).toBe('json');
    expect(preferredErrorFormat({ accept: 'application/fhir+json' }, '_format=xml')).toBe('xml');
    expect(preferredErrorFormat({ accept: ['application/fhir+json', '*/*;q=0.1'] })).toBe('json');
  });

  it('falls back to XML for no preference, wildcards, plain JSON, garbage and oversized headers', () => {
    expect(preferredErrorFormat({})).toBe('xml');
    expect(preferredErrorFormat({ accept: '*/*' })).toBe('xml');
    expect(preferredErrorFormat({ accept: 'application/json' })).toBe('xml');
    expect(preferredErrorFormat({ accept: ';;;,,,"' })).toBe('xml');
    expect(preferredErrorFormat({ accept: `application/fhir+json;x=${'a'.repeat(10_000)}` })).toBe('xml');
    expect(preferredErrorFormat({ 'content-type': 'application/fhir+json' })).toBe('xml');
    expect(preferredErrorFormat({}, '_format=nonsense')).toBe('xml');
  });
});

describe('mime.response-type: a response is labelled with the FHIR type the client asked for', () => {
  it('echoes the one of the 8 types Accept names, in its own spelling', () => {
    expect(responseMedia('application/fhir+json', undefined)).toEqual({ format: 'json', contentType: 'application/fhir+json' });
    expect(responseMedia('application/fhir+json;charset=utf-8', undefined)).toEqual({ format: 'json', contentType: 'application/fhir+json;charset=utf-8' });
    expect(responseMedia('application/json+fhir', undefined)).toEqual({ format: 'json', contentType: 'application/json+fhir' });
    expect(responseMedia('application/fhir+xml', undefined)).toEqual({ format: 'xml', contentType: 'application/fhir+xml' });
    expect(responseMedia('application/fhir+xml;q=0.5, application/fhir+json', undefined)).toEqual({ format: 'json', contentType: 'application/fhir+json' });
  });

  it('lets _format win, echoing the type it names, else the Accept type of that format, else the default spelling', () => {
    expect(responseMedia('application/json+fhir', 'application/fhir+json')).toEqual({ format: 'json', contentType: 'application/fhir+json' });
    expect(responseMedia('application/fhir+json', 'json')).toEqual({ format: 'json', contentType: 'application/fhir+json' });
    expect(responseMedia('application/fhir+json', 'xml')).toEqual({ format: 'xml', contentType: 'application/xml+fhir;charset=utf-8' });
    expect(responseMedia(undefined, 'json')).toEqual({ format: 'json', contentType: 'application/json+fhir;charset=utf-8' });
  });

  it('uses the NEMS default spelling for no preference, a wildcard or garbage', () => {
    for (const accept of [undefined, '*/*', 'text/html', ';;;']) {
      expect(responseMedia(accept, undefined)).toEqual({ format: 'xml', contentType: 'application/xml+fhir;charset=utf-8' });
    }
  });

  it('before the MIME stage ran, echoes an explicitly named type only (preferredErrorMedia)', () => {
    expect(preferredErrorMedia({ accept: 'application/fhir+json' })).toEqual({ format: 'json', contentType: 'application/fhir+json' });
    expect(preferredErrorMedia({}, '_format=application/fhir%2Bjson;charset=utf-8')).toEqual({ format: 'json', contentType: 'application/fhir+json;charset=utf-8' });
    expect(preferredErrorMedia({ accept: '*/*' })).toEqual({ format: 'xml', contentType: 'application/xml+fhir;charset=utf-8' });
    expect(preferredErrorMedia({ accept: `application/fhir+json;x=${'a'.repeat(10_000)}` })).toEqual({ format: 'xml', contentType: 'application/xml+fhir;charset=utf-8' });
  });
});
