// `nems-gateway core --port N` as a standalone HTTP NEMS behind the gateway, the way Spine would sit: the gateway
// forwards over HTTP to the core process, which stores the subscription and delivers the published event.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { listMailbox } from '../../src/nems-core/outbox.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { createPki, send, startTestApp, testConfig, type Pki } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';

const CLI = join(PROJECT_ROOT, 'dist', 'src', 'main.js');
const EXAMPLES = join(PROJECT_ROOT, 'docs', 'examples');

/** A free loopback port (the core needs a real port up front: its Location headers carry it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

let pki: Pki;
let dataDir: string;
let core: ChildProcess;
let app: RunningApp;

beforeAll(async () => {
  pki = createPki();
  dataDir = mkdtempSync(join(tmpdir(), 'nems-core-cli-'));
  const port = await freePort();
  core = spawn(process.execPath, [CLI, 'core', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    core.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('NEMS core listening')) resolve();
    });
    core.once('exit', (code) => reject(new Error(`core exited ${code}`)));
    setTimeout(() => reject(new Error('core did not start')), 15_000).unref();
  });
  app = await startTestApp(testConfig(pki, { upstreamUrl: `http://127.0.0.1:${port}` }));
});
afterAll(async () => {
  await app?.stop();
  if (core && core.exitCode === null) {
    await new Promise<void>((resolve) => {
      core.once('exit', () => resolve());
      core.kill('SIGTERM');
    });
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  pki?.cleanup();
});

it('creates, reads, delivers a published event to the mailbox and deletes, through the gateway to the core process', async () => {
  const port = app.gateway.port;
  const created = await send(pki, port, {
    client: 'gp-system', method: 'POST', path: '/STU3/Subscription', body: readFileSync(join(EXAMPLES, 'subscription-explicit.xml')),
    headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
  });
  expect(created.status).toBe(201);
  const id = /\/Subscription\/([0-9a-f]{32})$/.exec(String(created.headers.location))?.[1];
  expect(id).toBeDefined();

  const read = await send(pki, port, { client: 'gp-system', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'read', { accept: 'application/fhir+json' }) });
  expect(read.status).toBe(200);
  expect(JSON.parse(read.text)).toMatchObject({ resourceType: 'Subscription', id, status: 'active' });

  const event = readFileSync(join(EXAMPLES, 'vaccinations-1-new.xml'));
  const published = await send(pki, port, {
    client: 'child-health', method: 'POST', path: '/STU3/Events/1/$process-message', body: event,
    headers: nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml' }),
  });
  expect(published.status).toBe(202);
  let delivered = listMailbox(dataDir, 'A83627MB001');
  for (let i = 0; i < 100 && delivered.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    delivered = listMailbox(dataDir, 'A83627MB001');
  }
  expect(delivered).toHaveLength(1);
  expect(delivered[0]!.control).toMatchObject({ workflowId: 'VACCINATIONS_1', subscriptionIds: [id] });
  expect(readFileSync(delivered[0]!.xmlPath).equals(event)).toBe(true);

  const deleted = await send(pki, port, { client: 'gp-system', method: 'DELETE', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'delete') });
  expect(deleted.status).toBe(200);
  const gone = await send(pki, port, { client: 'gp-system', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'read') });
  expect(gone.status).toBe(404);
});
