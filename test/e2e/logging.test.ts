// Request logging end to end (issue 2 point 9): a real gateway over mTLS whose pino logger writes into a capture
// stream at level info. One line per request with its id, endpoint, ASID, method, route, status, Spine code on
// rejection and durations; and no NHS number, token, `Bearer` or PEM anywhere in what was written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { createPki, send, spineCodeOf, startTestApp, testConfig, type ClientResponse, type Pki } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';

const EXAMPLES = join(PROJECT_ROOT, 'docs', 'examples');
const SUBSCRIPTION_XML = readFileSync(join(EXAMPLES, 'subscription-explicit.xml'), 'utf8');
const EVENT_XML = readFileSync(join(EXAMPLES, 'vaccinations-1-new.xml'));
const REQUEST_MESSAGES = new Set(['request forwarded', 'request rejected', 'upstream failure']);

interface Sent {
  readonly id: string;
  readonly res: ClientResponse;
  readonly tokens: string[];
}

let pki: Pki;
let app: RunningApp;
const lines: string[] = [];
const sent: Record<string, Sent> = {};

async function run(name: string, request: Parameters<typeof send>[2]): Promise<void> {
  const id = `log-test-${name}`;
  const headers = { ...(request.headers as Record<string, string>), 'X-Request-ID': id };
  const tokens = Object.values(headers).filter((v) => v.startsWith('Bearer ')).map((v) => v.slice(7));
  sent[name] = { id, res: await send(pki, app.gateway.port, { ...request, headers }), tokens };
}

function requestLines(): Record<string, any>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, any>).filter((o) => REQUEST_MESSAGES.has(o.msg));
}

beforeAll(async () => {
  pki = createPki();
  const config = testConfig(pki, { patch: (raw) => { raw.logging.level = 'info'; } });
  app = await startTestApp(config, { logLines: lines });

  await run('create', {
    client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body: SUBSCRIPTION_XML,
    headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
  });
  const id = /Subscription\/([0-9a-f]{32})/.exec(String(sent.create!.res.headers.location))?.[1] ?? 'missing';
  await run('read', { client: 'gp-system', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'read') });
  await run('publish', {
    client: 'child-health', method: 'POST', path: '/STU3/Events/1/$process-message', body: EVENT_XML,
    headers: nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml' }),
  });
  await run('badNhsNumber', {
    client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body: SUBSCRIPTION_XML.replace('9912003888', '9912003880'),
    headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
  });
  const badJwt = { ...nemsHeaders('gp-system', 'read'), Authorization: `Bearer ${nemsHeaders('child-health', 'read').Authorization!.slice(7)}` };
  await run('badJwt', { client: 'gp-system', path: `/STU3/Subscription/${id}`, headers: badJwt });
  await run('garbledJwt', { client: 'gp-system', path: `/STU3/Subscription/${id}`, headers: { ...nemsHeaders('gp-system', 'read'), Authorization: 'Bearer eyJhbGciOiJub25lIn0.bm90IGpzb24.' } });
  await run('unregistered', { client: 'unregistered', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'read') });
  // Let the asynchronous delivery of the published event (and anything it logs) finish.
  await new Promise((r) => setTimeout(r, 300));
});

afterAll(async () => {
  await app?.stop();
  pki?.cleanup();
});

describe('request log lines', () => {
  it('the requests had their expected outcomes (201, 200, 202, 400 INVALID_NHS_NUMBER, 400 MISSING_OR_INVALID_HEADER ×2, 403 ACCESS_DENIED)', () => {
    expect(sent.create!.res.status).toBe(201);
    expect(sent.read!.res.status).toBe(200);
    expect(sent.publish!.res.status).toBe(202);
    expect([sent.badNhsNumber!.res.status, spineCodeOf(sent.badNhsNumber!.res.text)]).toEqual([400, 'INVALID_NHS_NUMBER']);
    expect([sent.badJwt!.res.status, spineCodeOf(sent.badJwt!.res.text)]).toEqual([400, 'MISSING_OR_INVALID_HEADER']);
    expect([sent.garbledJwt!.res.status, spineCodeOf(sent.garbledJwt!.res.text)]).toEqual([400, 'MISSING_OR_INVALID_HEADER']);
    expect([sent.unregistered!.res.status, spineCodeOf(sent.unregistered!.res.text)]).toEqual([403, 'ACCESS_DENIED']);
  });

  it('writes exactly one request line per request (the embedded core may add its own lines under the same id)', () => {
    const byId = new Map<string, number>();
    for (const line of requestLines()) byId.set(line.requestId, (byId.get(line.requestId) ?? 0) + 1);
    expect(Object.fromEntries(byId)).toEqual(Object.fromEntries(Object.values(sent).map((s) => [s.id, 1])));
  });

  const lineFor = (name: string) => requestLines().find((l) => l.requestId === sent[name]!.id)!;

  it.each([
    ['create', 'create', 'POST', 201],
    ['read', 'read', 'GET', 200],
    ['publish', 'publish', 'POST', 202],
  ] as const)('a forwarded %s carries requestId, endpoint, asid, method, route, status, totalMs and upstreamMs', (name, route, method, status) => {
    const line = lineFor(name);
    const client = name === 'publish' ? { endpoint: 'child-health.example.nhs.uk', asid: '200000000102' } : { endpoint: 'gp-system.example.nhs.uk', asid: '200000000101' };
    expect(line).toMatchObject({ level: 'info', msg: 'request forwarded', requestId: sent[name]!.id, ...client, method, route, status });
    expect(line.code).toBeUndefined();
    expect(line.totalMs).toBeTypeOf('number');
    expect(line.upstreamMs).toBeTypeOf('number');
    expect(line.upstreamMs).toBeLessThanOrEqual(line.totalMs);
  });

  it.each([
    ['badNhsNumber', 'create', 'POST', 400, 'INVALID_NHS_NUMBER'],
    ['badJwt', 'read', 'GET', 400, 'MISSING_OR_INVALID_HEADER'],
    ['garbledJwt', 'read', 'GET', 400, 'MISSING_OR_INVALID_HEADER'],
  ] as const)('a rejected request (%s) carries the Spine code and no upstream time', (name, route, method, status, code) => {
    const line = lineFor(name);
    expect(line).toMatchObject({
      msg: 'request rejected', requestId: sent[name]!.id, endpoint: 'gp-system.example.nhs.uk', asid: '200000000101', method, route, status, code,
    });
    expect(line.totalMs).toBeTypeOf('number');
    expect(line.upstreamMs).toBeUndefined();
  });

  it('an unregistered certificate is logged as 403 ACCESS_DENIED with why, and no endpoint or ASID', () => {
    const line = lineFor('unregistered');
    expect(line).toMatchObject({ msg: 'request rejected', method: 'GET', status: 403, code: 'ACCESS_DENIED', identity: 'unregistered-fqdn' });
    expect(line.endpoint).toBeUndefined();
    expect(line.asid).toBeUndefined();
  });
});

describe('nothing sensitive in the log', () => {
  it('no NHS number (valid or not), no token, no "Bearer", no PEM anywhere in the captured output', () => {
    const text = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(Object.keys(sent).length);
    for (const forbidden of ['9912003888', '9912003880', 'Bearer', 'bearer', '-----BEGIN', 'eyJ']) expect(text).not.toContain(forbidden);
    for (const { tokens } of Object.values(sent)) for (const token of tokens) expect(text).not.toContain(token);
    // The certificate material the gateway loaded is not in the log either.
    for (const file of ['server.pem', 'server-key.pem', 'gp-system.pem']) {
      const body = pki.read(file).toString().split('\n')[1]!;
      expect(text).not.toContain(body);
    }
  });
});
