// Framing checks on what Node's parser lets through: HTTP version, Host count, Expect, Connection nominations.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { CHECKED_HEADERS, framingRejection } from '../../src/edge/request-framing.js';

function request(version: string, raw: string[]): IncomingMessage {
  const [major, minor] = version.split('.').map(Number);
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] ??= raw[i + 1]!;
  return { httpVersionMajor: major, httpVersionMinor: minor, rawHeaders: raw, headers } as unknown as IncomingMessage;
}

describe('framingRejection', () => {
  it('passes HTTP/1.1 with one Host and HTTP/1.0 with or without one', () => {
    expect(framingRejection(request('1.1', ['Host', 'a']))).toBeUndefined();
    expect(framingRejection(request('1.0', ['Host', 'a']))).toBeUndefined();
    expect(framingRejection(request('1.0', []))).toBeUndefined();
  });

  it.each(['2.0', '0.9', '1.2', '3.0'])('refuses HTTP/%s with 505 BAD_REQUEST', (version) => {
    expect(framingRejection(request(version, ['Host', 'a']))).toMatchObject({ code: 'BAD_REQUEST', status: 505 });
  });

  it('refuses two Host headers in any spelling, and HTTP/1.1 without Host (400 BAD_REQUEST)', () => {
    expect(framingRejection(request('1.1', ['Host', 'a', 'HOST', 'b']))).toMatchObject({ code: 'BAD_REQUEST', diagnostics: 'The request has more than one Host header' });
    expect(framingRejection(request('1.0', ['host', 'a', 'Host', 'a']))).toMatchObject({ code: 'BAD_REQUEST' });
    expect(framingRejection(request('1.1', []))).toMatchObject({ code: 'BAD_REQUEST', diagnostics: 'The HTTP/1.1 request has no Host header' });
  });

  it.each(CHECKED_HEADERS)('refuses a Connection header naming %s, in any case and position', (name) => {
    const rejection = framingRejection(request('1.1', ['Host', 'a', 'Connection', `keep-alive, ${name.toUpperCase()} `]));
    expect(rejection).toMatchObject({ code: 'BAD_REQUEST' });
    expect(rejection?.diagnostics).toContain(name);
    expect(rejection?.status).toBeUndefined();
  });

  it('lets Connection name headers the gateway does not check', () => {
    expect(framingRejection(request('1.1', ['Host', 'a', 'Connection', 'keep-alive, X-Hop, close']))).toBeUndefined();
  });

  it('refuses an expectation other than 100-continue with 417', () => {
    expect(framingRejection(request('1.1', ['Host', 'a', 'Expect', '100-continue']))).toBeUndefined();
    expect(framingRejection(request('1.1', ['Host', 'a', 'Expect', 'something-else']))).toMatchObject({ code: 'BAD_REQUEST', status: 417 });
  });
});
