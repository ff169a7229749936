// The embedded core delivering through MESH (core.delivery mesh) to the project's MESH double over mTLS: a publish
// through the gateway reaches the subscriber's inbox exactly once, after a 5xx, across a restart that lost MESH's
// answer, and in chunks when it is larger than maxChunkBytes.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { MeshClient } from '../../src/mesh/client.js';
import { STORE_FILE_NAME } from '../../src/nems-core/store.js';
import { createPki, send, startTestApp, testConfig, type Pki } from '../helpers/e2e.js';
import { EXAMPLE, nemsHeaders } from '../helpers/nems-requests.js';
import { eventually } from '../helpers/ops-admin.js';
import { startMeshDouble, type MeshDouble } from '../doubles/mesh-double.js';

const SHARED_KEY = 'e2e-shared-key';
const GP_MAILBOX = EXAMPLE['gp-system'].mailbox.toUpperCase();
const SUBSCRIPTION = readFileSync(join(PROJECT_ROOT, 'docs', 'examples', 'subscription-explicit.xml'));
const EVENT = readFileSync(join(PROJECT_ROOT, 'docs', 'examples', 'vaccinations-1-new.xml'));

let pki: Pki;
let mesh: MeshDouble;
let dir: string;
let dataDir: string;
let app: RunningApp | undefined;

async function startGateway(mesh: Record<string, unknown> = {}): Promise<RunningApp> {
  app = await startTestApp(testConfig(pki, {
    dataDir,
    patch: (raw) => {
      raw.core.delivery = 'mesh';
      raw.core.mesh = {
        url: mesh.url ?? meshUrl(), mailboxId: 'NEMSCORE01',
        passwordFile: join(dir, 'mesh-password'), sharedKeyFile: join(dir, 'mesh-shared-key'),
        tls: { ca: pki.file('ca.pem'), cert: pki.file('child-health.pem'), key: pki.file('child-health-key.pem') },
        initialBackoffMs: 100, maxBackoffMs: 400, pollIntervalMs: 50, timeoutMs: 2000,
        ...mesh,
      };
    },
  }));
  return app;
}

const meshUrl = () => mesh.url.replace('127.0.0.1', 'localhost');

async function publish(): Promise<void> {
  const res = await send(pki, app!.gateway.port, {
    client: 'child-health', method: 'POST', path: '/STU3/Events/1/$process-message',
    headers: { ...nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml' }) }, body: EVENT,
  });
  expect(res.status).toBe(202);
}

/** The core's own record (the SQLite store is the source of truth), read beside the running gateway. */
function outboxStates(): string[] {
  const db = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true });
  try {
    return db.prepare<[], { state: string }>('SELECT state FROM mesh_outbox').all().map((r) => r.state);
  } finally {
    db.close();
  }
}

function outboxPosts(): number {
  return mesh.requests.filter((r) => r.method === 'POST' && r.path === '/messageexchange/NEMSCORE01/outbox').length;
}

beforeAll(async () => {
  pki = createPki();
  dir = mkdtempSync(join(tmpdir(), 'nems-mesh-e2e-'));
  dataDir = join(dir, 'data');
  writeFileSync(join(dir, 'mesh-password'), 'core-password\n');
  writeFileSync(join(dir, 'mesh-shared-key'), `${SHARED_KEY}\n`);
  mesh = await startMeshDouble({
    sharedKey: SHARED_KEY,
    mailboxes: [{ id: 'NEMSCORE01', password: 'core-password' }, { id: GP_MAILBOX, password: 'gp-password' }],
    tls: { key: pki.read('server-key.pem'), cert: pki.read('server.pem'), ca: pki.read('ca.pem') },
  });
  await startGateway();
  const created = await send(pki, app!.gateway.port, {
    client: 'gp-system', method: 'POST', path: '/STU3/Subscription',
    headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }), body: SUBSCRIPTION,
  });
  expect(created.status).toBe(201);
}, 30_000);

afterAll(async () => {
  await app?.stop();
  await mesh?.close();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('embedded core delivering through the MESH API (core.delivery mesh)', () => {
  it('handshakes over mTLS with the NHSMESH header', () => {
    const handshake = mesh.requests.find((r) => r.method === 'POST' && r.path === '/messageexchange/NEMSCORE01');
    expect(handshake?.clientCertCn).toBe('child-health.example.nhs.uk');
    expect(handshake?.headers['mex-clientversion']).toBeTruthy();
  });

  it('delivers the event to the subscriber\'s mailbox exactly once, retrying after a 503', async () => {
    mesh.faults.push({ method: 'POST', path: /^\/outbox$/, status: 503 });
    const before = outboxPosts();
    await publish();
    await eventually(() => mesh.inbox(GP_MAILBOX).length === 1, 'the event in the GP inbox');
    const [message] = mesh.inbox(GP_MAILBOX);
    expect(Buffer.concat(message!.chunks).equals(EVENT)).toBe(true);
    expect(message!.workflowId).toBe('VACCINATIONS_1');
    expect(message!.sender).toBe('NEMSCORE01');
    expect(message!.localId).toMatch(/^\d{17}_[0-9A-F]{12}$/);
    // The 503 (not accepted: no message) and the retry: two POSTs, one message.
    expect(outboxPosts() - before).toBe(2);
    // The subscriber reads and acknowledges it with its own mailbox credentials.
    const reader = new MeshClient({ url: meshUrl(), timeoutMs: 2000, maxChunkBytes: 1 << 20, tls: { ca: pki.file('ca.pem'), cert: pki.file('gp-system.pem'), key: pki.file('gp-system-key.pem') } },
      { mailboxId: GP_MAILBOX, password: 'gp-password', sharedKey: SHARED_KEY });
    try {
      expect(await reader.listInbox()).toEqual([message!.messageId]);
      expect((await reader.download(message!.messageId)).body.equals(EVENT)).toBe(true);
      await reader.acknowledge(message!.messageId);
    } finally {
      await reader.close();
    }
    expect(mesh.inbox(GP_MAILBOX)).toEqual([]);
  });

  it('never sends twice across a restart when MESH accepted the message but its answer was lost', async () => {
    // MESH takes the message, then answers 500: the core cannot know. It is stopped before it retries (the retry is
    // due 1-2 s later and the schedule is kept in the store).
    await app!.stop();
    await startGateway({ initialBackoffMs: 2000, maxBackoffMs: 2000 });
    mesh.faults.push({ method: 'POST', path: /^\/outbox$/, status: 500, afterSuccess: true });
    const before = outboxPosts();
    await publish();
    await eventually(() => mesh.requests.some((r) => r.method === 'POST' && r.path.endsWith('/outbox') && r.headers['mex-to'] === GP_MAILBOX) && outboxPosts() - before === 1
      && mesh.inbox(GP_MAILBOX).length === 1, 'MESH to hold the message whose answer was lost');
    await app!.stop();
    // Restart on the same data directory: when the retry falls due, tracking finds the message and nothing is re-sent.
    const trackingBefore = mesh.requests.filter((r) => r.path.includes('/outbox/tracking/')).length;
    await startGateway();
    await eventually(() => mesh.requests.filter((r) => r.path.includes('/outbox/tracking/')).length > trackingBefore, 'the restarted sender to ask MESH tracking', 10_000);
    await eventually(() => outboxStates().every((state) => state === 'sent'), 'every outbox row to be recorded sent');
    expect(outboxPosts() - before).toBe(1);
    const inbox = mesh.inbox(GP_MAILBOX);
    expect(inbox).toHaveLength(1);
    inbox[0]!.status = 'acknowledged';
  }, 30_000);

  it('sends an event larger than maxChunkBytes in chunks, reassembled byte for byte', async () => {
    await app!.stop();
    await startGateway({ maxChunkBytes: 4096 });
    const chunkPostsBefore = mesh.requests.filter((r) => /\/outbox\/[^/]+\/\d+$/.test(r.path)).length;
    await publish();
    await eventually(() => mesh.inbox(GP_MAILBOX).length === 1, 'the chunked event in the GP inbox', 10_000);
    const [message] = mesh.inbox(GP_MAILBOX);
    expect(message!.totalChunks).toBe(Math.ceil(EVENT.length / 4096));
    expect(Buffer.concat(message!.chunks).equals(EVENT)).toBe(true);
    expect(mesh.requests.filter((r) => /\/outbox\/[^/]+\/\d+$/.test(r.path)).length - chunkPostsBefore).toBe(message!.totalChunks - 1);
    await eventually(() => outboxStates().every((state) => state === 'sent'), 'every outbox row to be recorded sent');
    expect(outboxStates()).toHaveLength(3);
    message!.status = 'acknowledged';
  }, 20_000);
});
