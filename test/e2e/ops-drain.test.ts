// Graceful drain and SIGHUP through the real command line (issue 6 points 4 and 5): `nems-gateway start` as a
// child process, ephemeral ports read from its JSON logs, signals sent as an operator (or Kubernetes) would.
import { once } from 'node:events';
import { Agent } from 'node:https';
import { connect as netConnect, createServer, type AddressInfo } from 'node:net';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { send, usePkiAndUpstream } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { adminGet, eventually, metricSum } from '../helpers/ops-admin.js';
import { startCli, startCliGateway, writeCliConfig, type CliProcess } from '../helpers/ops-cli.js';
import { replaceFile } from '../helpers/ops-files.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';

const { pki, upstream } = usePkiAndUpstream();
const cleanups: Array<() => void> = [];
afterAll(() => {
  for (const cleanup of cleanups) cleanup();
});

/** A TCP connection attempt: 'refused' when nothing listens any more. */
function tcpProbe(port: number): Promise<'connected' | 'refused' | string> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : err.code ?? 'error'));
  });
}

const slowRead = (port: number, delayMs: number, agent?: Agent) =>
  send(pki, port, {
    client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-delay-ms': String(delayMs) },
    ...(agent ? { agent } : {}),
  }).catch((err: NodeJS.ErrnoException) => err);

describe('nems-gateway start: SIGHUP reloads, SIGTERM drains', () => {
  let cli: CliProcess;
  let port: number;
  let adminPort: number;
  let registry: string;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nems-ops-drain-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    registry = join(dir, 'endpoints.yaml');
    copyFileSync(join(PROJECT_ROOT, 'config', 'endpoints.yaml'), registry);
    const config = writeCliConfig(pki, { upstreamUrl: upstream.url, registryPath: registry, drainDeadlineMs: 5000 });
    cleanups.push(() => rmSync(config.dir, { recursive: true, force: true }));
    ({ cli, port, adminPort } = await startCliGateway(config.file));
    cleanups.push(() => cli.kill());
  });

  it('serves requests and answers /readyz 200', async () => {
    expect((await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);
    expect((await adminGet(adminPort, '/readyz')).status).toBe(200);
  });

  it('SIGHUP with a bad registry file: refused, logged, counted; still ready and serving; SIGHUP again once fixed', async () => {
    const good = readFileSync(registry);
    replaceFile(registry, 'endpoints: [');
    cli.child.kill('SIGHUP');
    const finished = await cli.waitForLog((l) => l.msg === 'reload finished', 'reload finished');
    expect(finished).toMatchObject({ ok: false, components: ['tls', 'registry', 'pds'] });
    const refused = cli.logs.find((l) => l.msg.startsWith('reload refused'));
    expect(refused).toMatchObject({ level: 'error', component: 'registry' });
    const metrics = (await adminGet(adminPort, '/metrics')).text;
    expect(metricSum(metrics, 'nems_gateway_reloads_total', { component: 'registry', result: 'failure' })).toBe(1);
    // A SIGHUP reloads everything: the untouched certificate and PDS data reload successfully.
    expect(metricSum(metrics, 'nems_gateway_reloads_total', { component: 'certificate', result: 'success' })).toBe(1);
    expect(metricSum(metrics, 'nems_gateway_reloads_total', { component: 'pds-data', result: 'success' })).toBe(1);
    const ready = await adminGet(adminPort, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text).checks.config.reason).toContain('refused for registry');
    expect((await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).status).toBe(200);

    replaceFile(registry, good);
    cli.child.kill('SIGHUP');
    await eventually(async () => metricSum((await adminGet(adminPort, '/metrics')).text, 'nems_gateway_reloads_total', { component: 'registry', result: 'success' }) === 1, 'the registry reload');
    expect(JSON.parse((await adminGet(adminPort, '/readyz')).text).checks.config).toEqual({ ok: true, reason: 'valid' });
  });

  it('SIGTERM: /readyz fails, new connections are refused, in-flight requests complete with 200, idle keep-alive connections close, exit 0', async () => {
    await upstream.reset();
    // An idle keep-alive connection, and three requests the upstream holds for 1.5 s.
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    let idleSocket: TLSSocket | undefined;
    keepAlive.on('free', (s: TLSSocket) => {
      idleSocket = s;
    });
    expect((await send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read'), agent: keepAlive })).status).toBe(200);
    const idleClosed = once(idleSocket!, 'close');
    const inFlight = [slowRead(port, 1500), slowRead(port, 1500), slowRead(port, 1500)];
    await eventually(async () => (await upstream.stats()).count === 4, 'the slow requests to reach the upstream');

    const signalledAt = Date.now();
    cli.child.kill('SIGTERM');
    await cli.waitForLog((l) => l.msg === 'draining', 'draining');
    const ready = await adminGet(adminPort, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text).checks.listening).toEqual({ ok: false, reason: 'draining' });
    expect(await tcpProbe(port)).toBe('refused');
    await expect(send(pki, port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await idleClosed;
    expect(Date.now() - signalledAt).toBeLessThan(1000);

    const answers = await Promise.all(inFlight);
    for (const answer of answers) expect(answer).toMatchObject({ status: 200 });
    const exit = await cli.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(5000);
    expect(cli.logs.some((l) => l.msg === 'stopped')).toBe(true);
    keepAlive.destroy();
  });
});

describe('nems-gateway start: the drain deadline', () => {
  it('cuts a request still running at drainDeadlineMs and exits 0 (even with a connection that never finished its handshake)', async () => {
    const config = writeCliConfig(pki, { upstreamUrl: upstream.url, drainDeadlineMs: 600 });
    cleanups.push(() => rmSync(config.dir, { recursive: true, force: true }));
    const { cli, port } = await startCliGateway(config.file);
    cleanups.push(() => cli.kill());
    await upstream.reset();
    const hung = send(pki, port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-hang': '1' } })
      .catch((err: NodeJS.ErrnoException) => err);
    // A TCP connection that never says anything (no TLS ClientHello).
    const silent = netConnect({ host: '127.0.0.1', port });
    silent.on('error', () => {});
    await once(silent, 'connect');
    await eventually(async () => (await upstream.stats()).count === 1, 'the hung request to reach the upstream');

    const signalledAt = Date.now();
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    const elapsed = Date.now() - signalledAt;
    expect(elapsed).toBeGreaterThanOrEqual(550);
    expect(elapsed).toBeLessThan(3000);
    const answer = await hung;
    expect(answer).toBeInstanceOf(Error);
    silent.destroy();
  });
});

describe('nems-gateway start: start-up failure', () => {
  it('exits 1 with the reason when the admin port is taken, closing the mTLS port it had opened', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const config = writeCliConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => { raw.admin.port = (taken.address() as AddressInfo).port; } });
    cleanups.push(() => rmSync(config.dir, { recursive: true, force: true }));
    const cli = startCli(config.file);
    cleanups.push(() => cli.kill());
    try {
      expect(await cli.exited).toEqual({ code: 1, signal: null });
      expect(cli.logs.find((l) => l.msg === 'start-up failed')).toMatchObject({ level: 'fatal', problem: expect.stringContaining('EADDRINUSE') });
    } finally {
      taken.close();
    }
  });
});
