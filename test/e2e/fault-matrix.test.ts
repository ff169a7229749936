// The fault matrix (issue 13, point 4): the gateway as operators run it (`nems-gateway start`, its own process),
// a recording upstream process that injects faults (test/helpers/counting-upstream.mjs) and a fake PDS FHIR API.
// Each case asserts the answer the client gets, that the upstream saw nothing or the whole request (never part of
// one), that nems_gateway_requests_in_flight and the gateway process's open file descriptors return to their
// baseline, and that the gateway serves normally once the fault has cleared.
//
// File descriptors are counted in /proc/<pid>/fd of the gateway process. Every connection the gateway keeps to the
// upstream or to PDS is one descriptor, and both pools may legitimately grow or shrink, so the baseline compared is
// `descriptors − upstream connections − PDS connections` (each side counts its own connections).
import { readdirSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPLICIT_SUBSCRIPTION_XML, EXAMPLE_NHS_NUMBER } from '../helpers/bodies.js';
import { createPki, send, spineCodeOf, startCountingUpstream, type CountingUpstream, type Pki } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { adminGet, eventually, metricSum } from '../helpers/ops-admin.js';
import { startCliGateway, writeCliConfig, type CliProcess } from '../helpers/ops-cli.js';
import { rawExchange, rawRequest } from '../helpers/raw-client.js';
import { json, patient, startFakePds, type FakePds, type PatientHandler } from '../pds/fake-pds-server.js';

const READ_PATH = '/STU3/Subscription/abc';
const CREATE_PATH = '/STU3/Subscription';
const UPSTREAM_TIMEOUT_MS = 1000;
const PDS_TIMEOUT_MS = 500;
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;

let pki: Pki;
let upstream: CountingUpstream;
let upstreamPort: number;
let pds: FakePds;
let pdsPort: number;
let gateway: { cli: CliProcess; port: number; adminPort: number };
let baseline: number;

const tracedPatient = (res: Parameters<typeof json>[0]) => json(res, 200, patient(EXAMPLE_NHS_NUMBER));

beforeAll(async () => {
  if (process.platform !== 'linux') throw new Error('the fault matrix counts descriptors in /proc/<pid>/fd (Linux)');
  pki = createPki();
  upstream = await startCountingUpstream();
  upstreamPort = upstream.port;
  pds = await startFakePds();
  pdsPort = Number(new URL(pds.baseUrl).port);
  pds.patients.set(EXAMPLE_NHS_NUMBER, tracedPatient);
  const { file } = writeCliConfig(pki, {
    upstreamUrl: upstream.url,
    patch: (raw) => {
      raw.server.limits = { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS };
      raw.upstream.timeoutMs = UPSTREAM_TIMEOUT_MS;
      raw.upstream.connectTimeoutMs = 500;
      // Every create traces its NHS number at the fake PDS: nothing is cached.
      raw.pds = { kind: 'fhir', fhir: { baseUrl: pds.baseUrl, timeoutMs: PDS_TIMEOUT_MS, auth: { kind: 'none' } }, cache: { positiveTtlSeconds: 0, negativeTtlSeconds: 0 } };
    },
  });
  gateway = await startCliGateway(file);
  // Warm up every path once (TLS, upstream pool, PDS client), then take the baseline.
  expect((await read()).status).toBe(200);
  expect((await create()).status).toBe(201);
  await eventually(async () => (await inFlight()) === 0, 'no request in flight after warm-up');
  baseline = await steadyDescriptors();
}, 60_000);

afterAll(async () => {
  gateway?.cli.kill();
  await gateway?.cli.exited;
  await upstream?.stop();
  await pds?.close();
  pki?.cleanup();
});

function read(extra: Record<string, string> = {}) {
  return send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), ...extra } });
}

function create(extra: Record<string, string> = {}) {
  return send(pki, gateway.port, {
    client: 'gp-system', method: 'POST', path: CREATE_PATH, body: EXPLICIT_SUBSCRIPTION_XML,
    headers: { ...nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), ...extra },
  });
}

async function inFlight(): Promise<number> {
  return metricSum((await adminGet(gateway.adminPort, '/metrics')).text, 'nems_gateway_requests_in_flight');
}

async function upstreamConnections(): Promise<number> {
  try {
    return (await upstream.stats()).openSockets;
  } catch {
    return 0; // the upstream is down: it holds no connection
  }
}

function pdsConnections(): Promise<number> {
  return new Promise((resolve) => pds.server.getConnections((err, count) => resolve(err ? 0 : count)));
}

/** The gateway's open descriptors, less one per connection the upstream or PDS reports from it. */
async function descriptorsBeyondPools(): Promise<number> {
  const open = readdirSync(`/proc/${gateway.cli.child.pid}/fd`).length;
  return open - (await upstreamConnections()) - (await pdsConnections());
}

/**
 * The descriptor count once it holds still (three equal readings 100 ms apart): connections the test itself just
 * closed (a /metrics scrape, a client) take a moment to leave the gateway's table.
 */
async function steadyDescriptors(): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 60; i++) {
    readings.push(await descriptorsBeyondPools());
    const last = readings.slice(-3);
    if (last.length === 3 && last.every((n) => n === last[0])) return last[0]!;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`descriptor count never held still: ${readings.join(', ')}`);
}

/** In flight back to 0, descriptors back to the baseline, nothing partial upstream, then normal service. */
async function expectSettledAndServing(): Promise<void> {
  await eventually(async () => (await inFlight()) === 0, 'nems_gateway_requests_in_flight back to 0');
  let last = NaN;
  try {
    await eventually(async () => (last = await descriptorsBeyondPools()) === baseline, 'open descriptors back to the baseline', 8000, 50);
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${last} against ${baseline}`);
  }
  const stats = await upstream.stats();
  expect(stats.received.filter((r) => !r.complete)).toEqual([]);
  await upstream.reset();
  expect((await read()).status).toBe(200);
  expect((await create()).status).toBe(201);
  await upstream.reset();
}

/** An mTLS connection from gp-system, opened and ready. */
function openClient(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gateway.port, servername: 'localhost', ca: pki.read('ca.pem'), cert: pki.read('gp-system.pem'), key: pki.read('gp-system-key.pem') });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes `head` now, then `drip` one piece every `everyMs`, until the gateway closes; returns what it answered. */
async function drip(head: string, pieces: readonly string[], everyMs: number): Promise<string> {
  const socket = await openClient();
  let answer = '';
  socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(head);
  for (const piece of pieces) {
    if (socket.destroyed) break;
    await Promise.race([new Promise((r) => setTimeout(r, everyMs)), closed]);
    if (!socket.destroyed) socket.write(piece);
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
  socket.destroy();
  return answer;
}

describe('fault matrix: upstream faults', () => {
  it('upstream down: 502 BAD_GATEWAY; serves again once the upstream is back at its address', async () => {
    await upstream.stop();
    const res = await read();
    expect(res.status).toBe(502);
    expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
    upstream = await startCountingUpstream(upstreamPort);
    await expectSettledAndServing();
  });

  it('upstream slower than upstream.timeoutMs: 504 GATEWAY_TIMEOUT, and the upstream request is cut', async () => {
    const res = await read({ 'x-test-delay-ms': String(UPSTREAM_TIMEOUT_MS * 3) });
    expect(res.status).toBe(504);
    expect(spineCodeOf(res.text)).toBe('GATEWAY_TIMEOUT');
    await eventually(async () => (await upstream.stats()).cut === 1, 'the upstream answer cut by the gateway');
    expect((await upstream.stats()).received.map((r) => r.complete)).toEqual([true]);
    await expectSettledAndServing();
  });

  it.each([
    ['reset-before', 'a reset before any answer'],
    ['reset-during', 'a reset after 1 KB of a response'],
    ['garbage-status', 'a garbage status line'],
    ['oversized-headers', '64 KB of response headers'],
  ])('%s (%s): 502 BAD_GATEWAY', async (fault) => {
    const res = await read({ 'x-test-fault': fault });
    expect(res.status).toBe(502);
    expect(spineCodeOf(res.text)).toBe('BAD_GATEWAY');
    await expectSettledAndServing();
  });

  it('reset while the answer is already streaming to the client: the client sees a clean close short of Content-Length', async () => {
    const exchange = await rawExchange(pki, gateway.port, [rawRequest('GET', READ_PATH, { ...nemsHeaders('gp-system', 'read'), 'x-test-fault': 'reset-streaming' })]);
    const head = exchange.text.slice(0, exchange.text.indexOf('\r\n\r\n'));
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const declared = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
    expect(exchange.text.length - head.length - 4).toBeLessThan(declared);
    expect(exchange.closedByGateway).toBe(true);
    expect(exchange.reset).toBe(false);
    await expectSettledAndServing();
  });

  it('unsolicited 100, 102 and 103 before the answer: ignored, 200', async () => {
    const res = await read({ 'x-test-fault': 'interim-many' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('<id value="echo"/>');
    await expectSettledAndServing();
  });
});

describe('fault matrix: client faults', () => {
  it('client aborts during its upload: nothing reaches the upstream', async () => {
    const request = rawRequest('POST', CREATE_PATH, nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), EXPLICIT_SUBSCRIPTION_XML);
    const socket = await openClient();
    socket.on('error', () => undefined);
    socket.write(request.subarray(0, request.length - 200));
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    await eventually(async () => (await inFlight()) === 0, 'the aborted upload no longer in flight');
    expect((await upstream.stats()).count).toBe(0);
    await expectSettledAndServing();
  });

  it('client aborts during its download: the gateway cuts the upstream answer too', async () => {
    const socket = await openClient();
    socket.on('error', () => undefined);
    const firstBytes = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.write(rawRequest('GET', READ_PATH, { ...nemsHeaders('gp-system', 'read'), 'x-test-fault': 'slow-body' }));
    await firstBytes;
    socket.destroy();
    // The slow answer takes 3.2 s in all; the gateway must take it down with the client well before that.
    await eventually(async () => (await upstream.stats()).cut === 1, 'the upstream answer cut when the client left', 2000);
    expect((await upstream.stats()).received.map((r) => r.complete)).toEqual([true]);
    await expectSettledAndServing();
  });

  it('slowloris (a header byte at a time): 408 at server.limits.headersTimeoutMs, nothing forwarded', async () => {
    const started = Date.now();
    const headers = `Host: localhost\r\nfromASID: 200000000101\r\nX-Slow: ${'a'.repeat(200)}`;
    const answer = await drip(`GET ${READ_PATH} HTTP/1.1\r\n`, [...headers], 100);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(HEADERS_TIMEOUT_MS + 3000);
    expect((await upstream.stats()).count).toBe(0);
    await expectSettledAndServing();
  });

  // Two deadlines race here, both at requestTimeoutMs: Node's (a raw 408) and the read-body stage's own (400 with the
  // same reason); either way it is a BAD_REQUEST "not received in time" and the connection closes.
  it('slow body (10 bytes every 200 ms): cut at server.limits.requestTimeoutMs (408 or 400 "not received in time"), nothing forwarded', async () => {
    const request = rawRequest('POST', CREATE_PATH, nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), EXPLICIT_SUBSCRIPTION_XML);
    const headEnd = request.indexOf('\r\n\r\n') + 4;
    const body = request.subarray(headEnd).toString('latin1');
    const pieces = Array.from({ length: Math.ceil(body.length / 10) }, (_, i) => body.slice(i * 10, i * 10 + 10));
    const started = Date.now();
    const answer = await drip(request.subarray(0, headEnd).toString('latin1'), pieces, 200);
    expect(answer).toMatch(/^HTTP\/1\.1 (408|400) /);
    expect(spineCodeOf(answer)).toBe('BAD_REQUEST');
    expect(answer).toMatch(/not received in time/);
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 3000);
    expect((await upstream.stats()).count).toBe(0);
    await expectSettledAndServing();
  });
});

describe('fault matrix: PDS faults', () => {
  it('PDS down: 503 SERVICE_UNAVAILABLE, nothing forwarded; creates pass once PDS is back', async () => {
    pds.server.closeAllConnections();
    await new Promise<void>((resolve) => pds.server.close(() => resolve()));
    const res = await create();
    expect(res.status).toBe(503);
    expect(spineCodeOf(res.text)).toBe('SERVICE_UNAVAILABLE');
    expect((await upstream.stats()).count).toBe(0);
    await new Promise<void>((resolve) => pds.server.listen(pdsPort, '127.0.0.1', resolve));
    await expectSettledAndServing();
  });

  it.each([
    ['slower than pds.fhir.timeoutMs', ((res) => setTimeout(() => tracedPatient(res), PDS_TIMEOUT_MS * 4)) as PatientHandler],
    ['answering garbage', ((res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.end('{"resourceType": "Patient", "id": ');
    }) as PatientHandler],
  ])('PDS %s: 503 SERVICE_UNAVAILABLE, nothing forwarded', async (_what, answer) => {
    pds.patients.set(EXAMPLE_NHS_NUMBER, answer);
    try {
      const res = await create();
      expect(res.status).toBe(503);
      expect(spineCodeOf(res.text)).toBe('SERVICE_UNAVAILABLE');
      expect((await upstream.stats()).count).toBe(0);
    } finally {
      pds.patients.set(EXAMPLE_NHS_NUMBER, tracedPatient);
    }
    await expectSettledAndServing();
  });
});
