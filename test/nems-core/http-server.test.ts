import { request as httpRequest } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { NemsCore } from '../../src/nems-core/core.js';
import { runMailboxCommand, startCoreServer, type RunningCoreServer } from '../../src/nems-core/http-server.js';
import { listMailbox } from '../../src/nems-core/outbox.js';
import {
  CHO, createRequest, deleteRequest, explicitCriteria, GP, openCore, outcomeCodes, publishRequest, readRequest,
  subscriptionJson, subscriptionXml, tempDataDir, vaccinationEvent,
} from './helpers.js';

let dataDir: { dir: string; cleanup: () => void };
let core: NemsCore;
let server: RunningCoreServer;

beforeEach(async () => {
  dataDir = tempDataDir();
  core = openCore(dataDir.dir);
  server = await startCoreServer({ core, host: '127.0.0.1', port: 0 });
});

afterEach(async () => {
  await server.close();
  await core.close();
  dataDir.cleanup();
});

interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** One HTTP/1.1 request to the core server on loopback. */
function send(r: { method: string; url: string; headers: Record<string, string>; body?: Buffer }): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${r.url}`, { method: r.method, headers: r.headers, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(r.body);
  });
}

const codes = (r: HttpResult) => outcomeCodes({ status: r.status, headers: r.headers, body: r.body });

describe('the core over HTTP (nems-gateway core)', () => {
  it('creates (201 + Location), reads as XML and JSON (200), deletes (200) and then answers 404 NO_RECORD_FOUND', async () => {
    const created = await send(createRequest(GP, subscriptionXml()));
    expect(created.status).toBe(201);
    expect(created.headers['etag']).toBe('W/"1"');
    const id = created.headers['location']!.split('/').pop()!;
    expect(id).toMatch(/^[0-9a-f]{32}$/);

    const xml = await send(readRequest(GP, id));
    expect(xml.status).toBe(200);
    expect(xml.headers['content-type']).toBe('application/xml+fhir;charset=utf-8');
    expect(xml.body.toString()).toContain('<status value="active"/>');
    const json = await send(readRequest(GP, id, 'application/fhir+json'));
    expect(JSON.parse(json.body.toString())).toMatchObject({ id, status: 'active' });

    expect((await send(readRequest(CHO, id))).status).toBe(404);
    expect((await send(deleteRequest(GP, id))).status).toBe(200);
    const gone = await send(readRequest(GP, id));
    expect(gone.status).toBe(404);
    expect(codes(gone)[0]?.code).toBe('NO_RECORD_FOUND');
  });

  it('accepts a JSON create and a publish (202), and delivers the event to the mailbox', async () => {
    expect((await send(createRequest(GP, subscriptionJson({ criteria: explicitCriteria({ tag: 'gp1' }) }), 'application/fhir+json'))).status).toBe(201);
    const published = await send(publishRequest(CHO, vaccinationEvent()));
    expect(published.status).toBe(202);
    await core.idle();
    const [message] = listMailbox(dataDir.dir, GP.mailbox);
    expect(message?.control.mexPartnerId).toMatch(/^[0-9a-f]{32}\|gp1$/);
  });

  it('answers a declared body over the cap with 413 PAYLOAD_TOO_LARGE before reading it', async () => {
    const request = publishRequest(CHO, Buffer.alloc(0));
    const response = await new Promise<HttpResult>((resolve, reject) => {
      const req = httpRequest(`${server.url}${request.url}`, {
        method: 'POST',
        headers: { ...request.headers, 'Content-Length': String(3 * 1024 * 1024 + 10) },
        timeout: 5_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks) });
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.flushHeaders(); // the body is never sent: the server must answer from the header alone
    });
    expect(response.status).toBe(413);
    expect(response.headers['connection']).toBe('close');
    expect(codes(response)[0]?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(core.stats().publications).toBe(0);
  });

  it('answers an unknown path with 404 NO_RECORD_FOUND', async () => {
    const response = await send({ method: 'GET', url: '/STU3/Unknown', headers: {} });
    expect(response.status).toBe(404);
    expect(codes(response)[0]?.code).toBe('NO_RECORD_FOUND');
  });

  it('handles 20 parallel creates over HTTP, each with its own id', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => send(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: `p${i}` }) })))));
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(new Set(results.map((r) => r.headers['location'])).size).toBe(20);
    expect(core.stats().subscriptions).toBe(20);
  });

  it('stores one of 10 identical parallel creates; the other 9 get 422 DUPLICATE_REJECTED naming it', async () => {
    const before = core.stats().subscriptions;
    const results = await Promise.all(Array.from({ length: 10 }, () => send(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'same' }) })))));
    const created = results.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    const id = String(created[0]!.headers['location']).split('/').pop();
    for (const r of results.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(422);
      expect(r.body?.toString()).toContain(`subscription already exists : ${id}`);
    }
    expect(core.stats().subscriptions).toBe(before + 1);
  });
});

describe('nems-gateway mailbox', () => {
  it('prints one line per delivered message: time, message id, workflow id, Mex-Partnerid, event code', async () => {
    await send(createRequest(GP, subscriptionXml({ criteria: explicitCriteria({ tag: 'demo' }) })));
    await send(publishRequest(CHO, vaccinationEvent()));
    await core.idle();
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      expect(await runMailboxCommand([GP.mailbox, '--data-dir', dataDir.dir])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\S+ {2}\d{17}_[0-9A-F]{12} {2}VACCINATIONS_1 {2}Mex-Partnerid=[0-9a-f]{32}\|demo {2}vaccinations-1\n$/);
  });

  it('refuses a mailbox id that is not a plain name: exit 2', async () => {
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runMailboxCommand(['../x', '--data-dir', dataDir.dir])).toBe(2);
    } finally {
      spy.mockRestore();
    }
  });
});
