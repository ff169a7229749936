import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient, MeshError } from '../../src/mesh/client.js';
import { createPki, type Pki } from '../helpers/e2e.js';
import { startMeshDouble, type MeshDouble } from '../doubles/mesh-double.js';

const SHARED_KEY = 'TestKey';
const MAILBOXES = [{ id: 'NEMSCORE01', password: 'sender-pw' }, { id: 'A83627MB001', password: 'gp-pw' }];

let mesh: MeshDouble;
const clients: MeshClient[] = [];
const client = (mailboxId = 'NEMSCORE01', password = 'sender-pw', url = mesh.url, tls?: ConstructorParameters<typeof MeshClient>[0]['tls']) => {
  const c = new MeshClient({ url, timeoutMs: 2000, maxChunkBytes: 1024 * 1024, ...(tls ? { tls } : {}) }, { mailboxId, password, sharedKey: SHARED_KEY });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  mesh = await startMeshDouble({ mailboxes: MAILBOXES, sharedKey: SHARED_KEY });
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  mesh.faults.length = 0;
});
afterAll(async () => {
  await mesh.close();
});

describe('MESH client against the MESH double', () => {
  it('handshakes, sends with the mex-* headers, and the recipient lists, downloads and acknowledges', async () => {
    const sender = client();
    await sender.handshake();
    const body = Buffer.from('<Bundle xmlns="http://hl7.org/fhir"/>');
    const id = await sender.sendFirstChunk({ to: 'A83627MB001', workflowId: 'VACCINATIONS_1', localId: 'local-1', partnerId: 'sub|tag', contentType: 'application/fhir+xml', fileName: 'local-1.xml' }, body, 1);
    const sent = mesh.requests.at(-1)!;
    expect(sent.path).toBe('/messageexchange/NEMSCORE01/outbox');
    expect(sent.headers['mex-to']).toBe('A83627MB001');
    expect(sent.headers['mex-workflowid']).toBe('VACCINATIONS_1');
    expect(sent.headers['mex-localid']).toBe('local-1');
    expect(sent.headers['mex-chunk-range']).toBe('1:1');
    expect(sent.headers.accept).toBe('application/vnd.mesh.v2+json');
    expect(sent.headers.authorization).toMatch(/^NHSMESH NEMSCORE01:[0-9a-f-]{36}:0:\d{12}:[0-9a-f]{64}$/);

    const recipient = client('A83627MB001', 'gp-pw');
    expect(await recipient.listInbox()).toEqual([id]);
    const downloaded = await recipient.download(id);
    expect(downloaded.body.equals(body)).toBe(true);
    expect(downloaded.headers['mex-workflowid']).toBe('VACCINATIONS_1');
    expect(downloaded.headers['mex-partnerid']).toBe('sub|tag');
    await recipient.acknowledge(id);
    expect(await recipient.listInbox()).toEqual([]);
  });

  it('sends and downloads a message in chunks (206 then 200)', async () => {
    const sender = client();
    const body = Buffer.alloc(2500, 'x');
    const id = await sender.sendFirstChunk({ to: 'A83627MB001', workflowId: 'VACCINATIONS_1', localId: 'chunked-1' }, body.subarray(0, 1000), 3);
    expect(await client('A83627MB001', 'gp-pw').listInbox()).not.toContain(id);
    await sender.sendChunk(id, 2, 3, body.subarray(1000, 2000));
    await sender.sendChunk(id, 3, 3, body.subarray(2000));
    const recipient = client('A83627MB001', 'gp-pw');
    const downloaded = await recipient.download(id);
    expect(downloaded.chunks).toBe(3);
    expect(downloaded.body.equals(body)).toBe(true);
    await recipient.acknowledge(id);
  });

  it('finds a sent message by its local id, and answers undefined for one never sent', async () => {
    const sender = client();
    const id = await sender.sendFirstChunk({ to: 'A83627MB001', workflowId: 'VACCINATIONS_1', localId: 'tracked-1' }, Buffer.from('x'), 1);
    expect(await sender.trackByLocalId('tracked-1')).toMatchObject({ messageId: id });
    expect(await sender.trackByLocalId('never-sent')).toBeUndefined();
    await client('A83627MB001', 'gp-pw').acknowledge(id);
  });

  it('classifies MESH\'s error answers: bad credentials and an unregistered recipient are final, 5xx is retried and may hide a success', async () => {
    await expect(client('NEMSCORE01', 'wrong').handshake()).rejects.toMatchObject({ status: 403, retryable: false });
    const sender = client();
    const unregistered = sender.sendFirstChunk({ to: 'NOBODY01', workflowId: 'VACCINATIONS_1' }, Buffer.from('x'), 1);
    await expect(unregistered).rejects.toMatchObject({ status: 417, retryable: false });
    await expect(unregistered).rejects.toThrow(/Unregistered to address/);
    mesh.faults.push({ method: 'POST', path: /^\/outbox$/, status: 503 });
    await expect(sender.sendFirstChunk({ to: 'A83627MB001', workflowId: 'VACCINATIONS_1' }, Buffer.from('x'), 1)).rejects.toMatchObject({ status: 503, retryable: true, ambiguous: true });
    mesh.faults.push({ reset: true });
    await expect(sender.handshake()).rejects.toBeInstanceOf(MeshError);
  });

  describe('over mTLS', () => {
    let pki: Pki;
    let tlsMesh: MeshDouble;
    beforeAll(async () => {
      pki = createPki();
      tlsMesh = await startMeshDouble({ mailboxes: MAILBOXES, sharedKey: SHARED_KEY, tls: { key: pki.read('server-key.pem'), cert: pki.read('server.pem'), ca: pki.read('ca.pem') } });
    });
    afterAll(async () => {
      await tlsMesh.close();
      pki.cleanup();
    });

    it('presents the client certificate and verifies the server against the configured CA', async () => {
      const url = tlsMesh.url.replace('127.0.0.1', 'localhost');
      await client('NEMSCORE01', 'sender-pw', url, { ca: pki.file('ca.pem'), cert: pki.file('gp-system.pem'), key: pki.file('gp-system-key.pem') }).handshake();
      expect(tlsMesh.requests.at(-1)!.clientCertCn).toBe('gp-system.example.nhs.uk');
      // No client certificate: the TLS handshake fails (MESH requires mTLS).
      await expect(client('NEMSCORE01', 'sender-pw', url, { ca: pki.file('ca.pem') }).handshake()).rejects.toBeInstanceOf(MeshError);
    });
  });
});
