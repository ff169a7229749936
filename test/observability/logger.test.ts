// The one redaction list (issue 2 point 9): Authorization headers, JWTs, NHS numbers, certificates and keys never
// reach the log, whether they come as a known field, an unknown field, a message or an error's text.
import { describe, expect, it } from 'vitest';
import { REDACTED, REDACT_PATHS, createLogger, scrubLogLine } from '../../src/observability/logger.js';
import { mintSpineJwt } from '../../src/cli/jwt.js';

const JWT = mintSpineJwt({ asid: '200000000101', ods: 'A83627', scope: 'patient/Subscription.read' });
const SIGNED_LOOKING_JWT = `${JWT}c2lnbmF0dXJlLWJ5dGVz`;
const NHS_NUMBER = '9912003888';
const INVALID_NHS_NUMBER = '9912003880';
const CERT_PEM = '-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n';

/** A logger writing into an array, at `level`. */
function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (s: string) => void lines.push(s) });
  return {
    logger,
    lines,
    text: () => lines.join(''),
    objects: () => lines.map((l) => JSON.parse(l) as Record<string, any>),
  };
}

function assertClean(text: string): void {
  for (const secret of [JWT.slice(0, 40), NHS_NUMBER, INVALID_NHS_NUMBER, 'Bearer', 'bearer', '-----BEGIN', 'MIIDdzCCAl', 'MIIEvQIBAD', 'eyJ']) {
    expect(text).not.toContain(secret);
  }
}

describe('the redaction list censors known fields', () => {
  it.each([
    ['an Authorization header (lower case)', { headers: { authorization: `Bearer ${JWT}` } }, ['headers', 'authorization']],
    ['an Authorization header (as sent)', { headers: { Authorization: `Bearer ${JWT}` } }, ['headers', 'Authorization']],
    ['a request’s Authorization header', { req: { headers: { authorization: `Bearer ${JWT}` } } }, ['req', 'headers', 'authorization']],
    ['a bare authorization field', { authorization: `Bearer ${JWT}` }, ['authorization']],
    ['a token', { token: JWT }, ['token']],
    ['a nested jwt', { claims: { jwt: JWT } }, ['claims', 'jwt']],
    ['an NHS number field', { nhsNumber: NHS_NUMBER }, ['nhsNumber']],
    ['a nested NHS number field', { patient: { nhsNumber: NHS_NUMBER } }, ['patient', 'nhsNumber']],
    ['an NHS number list', { nhsNumbers: [NHS_NUMBER, INVALID_NHS_NUMBER] }, ['nhsNumbers']],
    ['a requesting_patient claim', { claims: { requesting_patient: NHS_NUMBER } }, ['claims', 'requesting_patient']],
    ['subscription criteria', { criteria: `/Bundle?Patient.identifier=http://fhir.nhs.net/Id/nhs-number|${NHS_NUMBER}` }, ['criteria']],
    ['a body', { body: `<value value="${NHS_NUMBER}"/>` }, ['body']],
    ['a certificate', { cert: CERT_PEM }, ['cert']],
    ['a key', { tls: { key: KEY_PEM } }, ['tls', 'key']],
    ['a private key', { privateKey: KEY_PEM }, ['privateKey']],
    ['a PDS API key', { pds: { apiKey: 'k3y-s3cr3t-value' } }, ['pds', 'apiKey']],
  ])('%s', (_name, object, path) => {
    const { logger, objects, text } = capture();
    logger.info(object, 'something happened');
    let value: any = objects()[0];
    for (const key of path) value = value[key];
    expect(value).toBe(REDACTED);
    assertClean(text());
    expect(text()).not.toContain('k3y-s3cr3t-value');
  });

  it('lists each field once in both header spellings', () => {
    expect(new Set(REDACT_PATHS).size).toBe(REDACT_PATHS.length);
    expect(REDACT_PATHS).toEqual(expect.arrayContaining(['headers.authorization', 'headers.Authorization', 'nhsNumber', 'cert', 'key']));
  });
});

describe('the redaction list recognises secrets wherever they are', () => {
  it.each([
    ['a JWT in the message', () => [{}, `token was ${JWT}`]],
    ['a signed-looking JWT in an unlisted field', () => [{ detail: SIGNED_LOOKING_JWT }, 'x']],
    ['Bearer credentials in an unlisted header', () => [{ upstreamHeaders: { 'x-authorisation': `Bearer ${JWT}` } }, 'x']],
    ['an NHS number in the message', () => [{}, `patient ${NHS_NUMBER} not found`]],
    ['an invalid NHS number in an unlisted field', () => [{ value: INVALID_NHS_NUMBER }, 'x']],
    ['an NHS number as a JSON number', () => [{ count: Number(NHS_NUMBER) }, 'x']],
    ['an NHS number deep in an object', () => [{ a: { b: { c: { subject: `nhs-number|${NHS_NUMBER}` } } } }, 'x']],
    ['an NHS number written 3-3-4', () => [{ note: '991 200 3888 and 991-200-3880' }, 'x']],
    ['a certificate in an unlisted field', () => [{ material: CERT_PEM }, 'x']],
    ['a private key in the message', () => [{}, `loaded ${KEY_PEM}`]],
  ] as [string, () => [Record<string, unknown>, string]][])('%s', (_name, args) => {
    const { logger, text, objects } = capture();
    const [object, message] = args();
    logger.info(object, message);
    assertClean(text());
    expect(text()).toContain(REDACTED);
    expect(() => objects()).not.toThrow();
  });

  it('in an error’s message and stack', () => {
    const { logger, text, objects } = capture();
    logger.error({ err: new Error(`rejected ${NHS_NUMBER} with Bearer ${JWT}`) }, 'unexpected error');
    assertClean(text());
    expect(objects()[0]!.err.message).toBe(`rejected ${REDACTED} with ${REDACTED}`);
  });

  it('in a child logger’s bindings', () => {
    const { logger, text } = capture();
    logger.child({ subject: NHS_NUMBER, credential: `Bearer ${JWT}` }).warn('bound');
    assertClean(text());
  });

  it('keeps the line valid JSON when the PEM sits beside escaped quotes', () => {
    const line = scrubLogLine(JSON.stringify({ msg: `a "quoted" ${CERT_PEM} "b"`, n: 1234567890, neg: -1234567890 }));
    const parsed = JSON.parse(line);
    expect(parsed.msg).toBe(`a "quoted" ${REDACTED}`);
    expect(parsed.n).toBe(REDACTED);
    expect(parsed.neg).toBe(-1234567890);
  });
});

describe('ordinary request lines pass unchanged', () => {
  it('keeps request ids, 12-digit ASIDs, durations, hex ids, timestamps and levels', () => {
    const { logger, objects } = capture();
    const line = {
      requestId: '0f8e2b1c-9a7d-4c3b-8e21-1234567890ab', endpoint: 'gp-system.example.nhs.uk', asid: '200000000101',
      method: 'POST', route: 'create', status: 201, totalMs: 12.34, upstreamMs: 1234567.89, subscriptionId: 'ab12345678901234567890123456cdef',
      bytes: 31457280,
    };
    logger.info(line, 'request forwarded');
    const [written] = objects();
    expect(written).toMatchObject({ ...line, level: 'info', msg: 'request forwarded', service: 'nems-gateway' });
    expect(written!.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('leaves a line without candidates as the very same string', () => {
    const line = '{"level":"info","msg":"NEMS gateway listening (mTLS)","port":8443}\n';
    expect(scrubLogLine(line)).toBe(line);
  });

  it('honours the level', () => {
    const { logger, lines } = capture('warn');
    logger.info('quiet');
    logger.warn('loud');
    expect(lines).toHaveLength(1);
  });
});
