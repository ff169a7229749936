// The jwt stage decodes unsigned Spine tokens without jose on its hot path. It may only accept a token jose would
// accept, with the same payload (anything else falls back to jose, which then decides as before). Checked here
// against jose itself on generated tokens: odd headers (crit, b64, other algs), payloads that are not objects,
// bad base64url lengths, invalid UTF-8, a byte-order mark, and claim times either side of the clock-skew bounds.
import fc from 'fast-check';
import { decodeProtectedHeader, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { fastJsonObject, fastUnsecuredPayload } from '../../src/pipeline/stages/jwt.js';

const NOW_MS = 1_700_000_000_000;
const NOW = NOW_MS / 1000;
const SKEW = 60;

const b64 = (bytes: Buffer | string): string => Buffer.from(bytes).toString('base64url');

function joseHeader(token: string): unknown {
  try {
    return decodeProtectedHeader(token);
  } catch {
    return 'refused';
  }
}

function josePayload(token: string): unknown {
  try {
    return UnsecuredJWT.decode(token, { currentDate: new Date(NOW_MS), clockTolerance: SKEW }).payload;
  } catch {
    return 'refused';
  }
}

const section = fc.oneof(
  // JSON values, objects most of the time.
  fc.record({ alg: fc.constantFrom('none', 'RS256', 'HS256', ''), typ: fc.constantFrom('JWT', undefined), crit: fc.constantFrom(undefined, ['b64'], [], ['x']), b64: fc.constantFrom(undefined, true, false) }, { requiredKeys: [] }).map((o) => b64(JSON.stringify(o))),
  fc.record({
    iss: fc.constantFrom('https://x', 1),
    exp: fc.oneof(fc.integer({ min: NOW - 2 * SKEW, max: NOW + 2 * SKEW }), fc.constantFrom('soon', null, 1.5)),
    nbf: fc.oneof(fc.integer({ min: NOW - 2 * SKEW, max: NOW + 2 * SKEW }), fc.constantFrom('now', null)),
    iat: fc.oneof(fc.integer({ min: NOW - 400, max: NOW + 400 }), fc.constantFrom('x', null)),
    scope: fc.constant('patient/Subscription.read'),
  }, { requiredKeys: [] }).map((o) => b64(JSON.stringify(o))),
  fc.constantFrom('[]', '"s"', '1', 'null', '{"__proto__":{"a":1}}', '{}').map((j) => b64(j)),
  // Not JSON, not UTF-8, a byte-order mark, base64url lengths atob refuses.
  fc.constantFrom(b64(Buffer.from([0xff, 0xfe, 0x7b, 0x7d])), b64(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), 'e', 'eyJ', 'eyJhIjoxfQ', 'e30', 'e30A', 'e30gA', ''),
);

describe('unsigned JWT fast path (same answers as jose)', () => {
  it('decodes a header section only when jose decodes it to the same object', () => {
    fc.assert(fc.property(section, (header) => {
      const token = `${header}.e30.`;
      const fast = fastJsonObject(header);
      if (fast !== undefined) expect(joseHeader(token)).toEqual(fast);
    }), { numRuns: 2000 });
  });

  it('accepts an alg none token only when UnsecuredJWT.decode accepts it, with the same payload', () => {
    fc.assert(fc.property(section, section, fc.constantFrom('', 'sig'), (header, payload, signature) => {
      const token = `${header}.${payload}.${signature}`;
      const decodedHeader = fastJsonObject(header);
      if (decodedHeader === undefined) return;
      const fast = fastUnsecuredPayload(token, decodedHeader, NOW_MS, SKEW);
      if (fast !== undefined) expect(josePayload(token)).toEqual(fast);
    }), { numRuns: 3000 });
  });

  it('takes the ordinary Spine token (the case it exists for)', () => {
    const header = b64(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = b64(JSON.stringify({ iss: 'https://x', exp: NOW + 300, iat: NOW, scope: 'patient/Subscription.read' }));
    const token = `${header}.${payload}.`;
    expect(fastUnsecuredPayload(token, fastJsonObject(header)!, NOW_MS, SKEW)).toEqual(josePayload(token));
  });
});
