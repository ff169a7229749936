import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { patientDirectoryFromLocalPds } from '../../src/nems-core/embedded-upstream-factory.js';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.js';
import { LocalPdsStore } from '../../src/pds/local-store.js';
import { EmbeddedUpstream } from '../../src/upstream/embedded.js';
import { createRequest, GP, openCore, subscriptionXml, tempDataDir } from './helpers.js';

let dataDir: { dir: string; cleanup: () => void };
let upstream: EmbeddedUpstream;
let server: Server;
let port: number;

beforeEach(async () => {
  dataDir = tempDataDir();
  upstream = new EmbeddedUpstream(openCore(dataDir.dir));
  // A stand-in for the gateway edge: reads the body, then hands the request to the Upstream.
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void upstream.forward(
        { requestId: 'req-1', method: req.method!, url: req.url!, headers: req.headers, ...(body.length ? { body } : {}) },
        req,
        res,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await upstream.close();
  dataDir.cleanup();
});

function send(r: { method: string; url: string; headers: Record<string, string>; body?: Buffer }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: r.url, method: r.method, headers: r.headers, timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(r.body);
  });
}

describe('EmbeddedUpstream (the core behind the Upstream interface)', () => {
  it('relays the core status and end-to-end headers to the client: 201 with Location and ETag', async () => {
    const response = await send(createRequest(GP, subscriptionXml()));
    expect(response.status).toBe(201);
    expect(response.headers['location']).toMatch(/\/Subscription\/[0-9a-f]{32}$/);
    expect(response.headers['etag']).toBe('W/"1"');
  });

  it('uses the gateway request id as the OperationOutcome id: 404 NO_RECORD_FOUND', async () => {
    const response = await send({ method: 'GET', url: '/STU3/Nothing', headers: {} });
    expect(response.status).toBe(404);
    expect(response.body).toContain('<id value="req-1"/>');
    expect(response.body).toContain('NO_RECORD_FOUND');
  });

  it('is ready while the store is open and not after close()', async () => {
    expect((await upstream.ready()).ok).toBe(true);
    await upstream.close();
    expect((await upstream.ready()).ok).toBe(false);
  });
});

describe('patientDirectoryFromLocalPds', () => {
  it('gives GP, postcode and birth date of traced patients and nothing for unknown ones', async () => {
    const local = await LocalPdsStore.open(join(PROJECT_ROOT, 'config', 'pds-local.yaml'));
    const directory = patientDirectoryFromLocalPds(local);
    expect(directory.lookupPatient('9912003888')).toEqual({ gpOdsCode: 'A83627', postcode: 'LS1 4HR' });
    expect(directory.lookupPatient('9000000009')).toEqual({ gpOdsCode: 'Y12345', postcode: 'LS1 6AE', birthDate: '2010-10-22' });
    expect(directory.lookupPatient('9111231130')).toBeUndefined();
  });
});
