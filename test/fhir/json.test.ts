import { describe, expect, it } from 'vitest';
import { parseFhirJson, type JsonParseFailureReason, type JsonParseResult } from '../../src/fhir/json.js';
import { EXPLICIT_SUBSCRIPTION_JSON } from '../helpers/bodies.js';

const MB = 1024 * 1024;
const CAP = 3 * MB;

function parse(json: string | Buffer, cap = CAP): JsonParseResult {
  return parseFhirJson(typeof json === 'string' ? Buffer.from(json, 'utf8') : json, cap);
}

function reasonOf(result: JsonParseResult): JsonParseFailureReason | 'ok' {
  return result.ok ? 'ok' : result.reason;
}

describe('parseFhirJson: valid FHIR JSON', () => {
  it('parses the example explicit Subscription', () => {
    const result = parse(EXPLICIT_SUBSCRIPTION_JSON);
    expect(result.ok).toBe(true);
    expect(result.ok && (result.value as { resourceType: string }).resourceType).toBe('Subscription');
  });

  it('tolerates a UTF-8 byte-order mark and escaped characters in strings', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":"x\\"}{[:","b":[1,{"c":"\\u00e9"}]}')]);
    const result = parse(body);
    expect(result.ok && result.value).toEqual({ a: 'x"}{[:', b: [1, { c: 'é' }] });
  });

  it('allows the same key in different objects', () => {
    expect(reasonOf(parse('{"a":{"id":"1"},"b":{"id":"2"},"c":[{"id":"3"},{"id":"4"}]}'))).toBe('ok');
  });
});

describe('parseFhirJson: malformed or hostile JSON is refused (400 BAD_REQUEST or INVALID_REQUEST_MESSAGE at the body stage: bodyFailureCode)', () => {
  const deep = 10_000;
  const cases: [string, string | Buffer, JsonParseFailureReason][] = [
    ['syntax error', '{"a":}', 'syntax'],
    ['trailing comma', '{"a":1,}', 'syntax'],
    ['unterminated string', '{"a":"x', 'syntax'],
    ['unbalanced brackets', '{"a":[1}', 'syntax'],
    ['empty body', '', 'empty'],
    ['__proto__ key', '{"__proto__":{"polluted":true}}', 'forbidden-key'],
    ['escaped __proto__ key', '{"\\u005f_proto__":{"polluted":true}}', 'forbidden-key'],
    ['constructor key', '{"a":{"constructor":{"prototype":{}}}}', 'forbidden-key'],
    ['duplicate key (smuggling a second status)', '{"status":"requested","status":"active"}', 'duplicate-key'],
    ['duplicate key spelt with an escape', '{"status":"requested","st\\u0061tus":"active"}', 'duplicate-key'],
    ['10k-deep arrays', `${'['.repeat(deep)}${']'.repeat(deep)}`, 'too-deep'],
    ['10k-deep objects', `${'{"a":'.repeat(deep)}1${'}'.repeat(deep)}`, 'too-deep'],
    ['too many keys', `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":0`).join(',')}}`, 'too-many-keys'],
    ['non-UTF-8 bytes', Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 'encoding'],
    ['UTF-16LE bytes', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"a":1}', 'utf16le')]), 'encoding'],
  ];
  it.each(cases)('%s → refused in < 500 ms, heap growth < 50 MB', (_name, payload, reason) => {
    const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    const result = parseFhirJson(body, CAP);
    const ms = performance.now() - started;
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / MB;
    expect(reasonOf(result)).toBe(reason);
    expect(ms).toBeLessThan(500);
    expect(heapMb).toBeLessThan(50);
  });

  it('refuses a body larger than the cap', () => {
    expect(reasonOf(parse(`{"a":"${'x'.repeat(2048)}"}`, 1024))).toBe('too-large');
  });

  it('never quotes the document in its failure detail', () => {
    const result = parse('{"nhs":"9912003888",}');
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain('9912003888');
  });
});
