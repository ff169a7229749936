// The real binary against the project's doubles, as the README's local steps run it: `nems-gateway demo` with the
// endpoint registry read from the SDS double (registry.kind sds) and events delivered through the MESH double over
// mTLS (core.delivery mesh), then `nems-gateway mailbox --mesh` reading an inbox on the MESH API.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/mesh/client.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { runCli, writeShippedConfig, type CliResult } from '../cli/run-cli.js';
import { startMeshDouble, type MeshDouble } from '../doubles/mesh-double.js';
import { startSdsDouble, type SdsData, type SdsDouble } from '../doubles/sds-double.js';
import { createPki, type Pki } from '../helpers/e2e.js';

const SHARED_KEY = 'cli-shared-key';

let pki: Pki;
let dir: string;
let sds: SdsDouble;
let mesh: MeshDouble;
let configFile: string;
let demo: CliResult;

beforeAll(async () => {
  pki = createPki();
  dir = mkdtempSync(join(tmpdir(), 'nems-cli-doubles-'));
  for (const [name, value] of [['sds-apikey', 'cli-key'], ['core-password', 'core-pw'], ['gp-password', 'gp-pw'], ['shared-key', SHARED_KEY]]) {
    writeFileSync(join(dir, name!), `${value}\n`);
  }
  copyFileSync(join(PROJECT_ROOT, 'config', 'sds-overlay.yaml'), join(dir, 'sds-overlay.yaml'));
  sds = await startSdsDouble({ apiKey: 'cli-key', data: JSON.parse(readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'sds', 'example-records.json'), 'utf8')) as SdsData });
  mesh = await startMeshDouble({
    sharedKey: SHARED_KEY,
    mailboxes: [{ id: 'NEMSCORE01', password: 'core-pw' }, { id: 'A83627MB001', password: 'gp-pw' }, { id: 'RX3EPMB001', password: 'x' }],
    tls: { key: pki.read('server-key.pem'), cert: pki.read('server.pem'), ca: pki.read('ca.pem') },
  });
  configFile = writeShippedConfig(pki, join(dir, 'gateway.yaml'), (raw) => {
    raw.registry = { kind: 'sds', path: join(dir, 'sds-overlay.yaml'), sds: { baseUrl: sds.url, auth: { kind: 'api-key', apiKeyFile: join(dir, 'sds-apikey') } } };
    raw.core.delivery = 'mesh';
    raw.core.mesh = {
      url: mesh.url.replace('127.0.0.1', 'localhost'), mailboxId: 'NEMSCORE01',
      passwordFile: join(dir, 'core-password'), sharedKeyFile: join(dir, 'shared-key'),
      tls: { ca: pki.file('ca.pem'), cert: pki.file('child-health.pem'), key: pki.file('child-health-key.pem') },
      pollIntervalMs: 100,
    };
  });
  demo = await runCli(['demo', '--certs', pki.dir, '--config', configFile, '--mailbox-password-file', join(dir, 'gp-password')], { timeoutMs: 40_000 });
}, 60_000);

afterAll(async () => {
  await sds?.close();
  await mesh?.close();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nems-gateway with registry.kind sds and core.delivery mesh', () => {
  it('runs the demo to the end: registry from SDS, the event delivered through MESH', () => {
    expect(demo.stderr).toBe('');
    expect(demo.stdout).toContain('✔ the event arrived in the MESH inbox, byte for byte');
    expect(demo.stdout).toContain('✔ an unregistered certificate gets 403 ACCESS_DENIED');
    expect(demo.stdout).toContain('demo passed');
    expect(demo.code).toBe(0);
    expect(sds.requests.some((r) => r.url.startsWith('/Device?'))).toBe(true);
    // The demo's reader acknowledged the message.
    expect(mesh.inbox('A83627MB001')).toEqual([]);
  });

  it('`mailbox --mesh` lists, saves and acknowledges what waits in a MESH inbox', async () => {
    const sender = new MeshClient({ url: mesh.url.replace('127.0.0.1', 'localhost'), timeoutMs: 2000, maxChunkBytes: 1 << 20, tls: { ca: pki.file('ca.pem'), cert: pki.file('child-health.pem'), key: pki.file('child-health-key.pem') } },
      { mailboxId: 'NEMSCORE01', password: 'core-pw', sharedKey: SHARED_KEY });
    let id: string;
    try {
      id = await sender.sendFirstChunk({ to: 'A83627MB001', workflowId: 'VACCINATIONS_1', localId: 'cli-local-1' }, Buffer.from('<Bundle/>'), 1);
    } finally {
      await sender.close();
    }
    const saveDir = join(dir, 'saved');
    const listed = await runCli(['mailbox', 'A83627MB001', '--mesh', '--password-file', join(dir, 'gp-password'), '--config', configFile, '--save', saveDir, '--ack']);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id}  VACCINATIONS_1  mex-LocalID=cli-local-1  mex-PartnerID=-  9 bytes  1 chunk\\(s\\)$`, 'm'));
    expect(readFileSync(join(saveDir, `${id}.xml`), 'utf8')).toBe('<Bundle/>');
    expect(mesh.inbox('A83627MB001')).toEqual([]);
    const empty = await runCli(['mailbox', 'A83627MB001', '--mesh', '--password-file', join(dir, 'gp-password'), '--config', configFile]);
    expect(empty.code).toBe(0);
    expect(empty.stderr).toContain('no messages');
  });
});
