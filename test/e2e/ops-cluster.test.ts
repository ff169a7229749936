// Worker-per-core mode (issue 6 point 7) through the real command line: `lifecycle.workers: 2`, one mTLS port
// shared by both workers, one admin port on the primary serving metrics aggregated across them. The issue-3
// policy suite must give the same outcomes as a single process; the embedded core must behave as one service
// whichever worker takes each request; SIGTERM to the primary must drain and stop everything with exit 0.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPolicyCases } from '../pipeline/policy-cases.js';
import { send, spineCodeOf, type Pki, usePkiAndUpstream } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { EXPLICIT_SUBSCRIPTION, explicitCriteria, subscriptionXml, VACCINATION_PUBLISH_XML } from '../helpers/bodies.js';
import { adminGet, eventually, metricSum, promtool, promtoolCheckMetrics } from '../helpers/ops-admin.js';
import { CLI_ENTRY, startCli, writeCliConfig, type CliProcess } from '../helpers/ops-cli.js';
import { expectedOutcome, runPolicyCase } from '../helpers/ops-policy.js';

interface Cluster {
  readonly cli: CliProcess;
  readonly port: number;
  readonly adminPort: number;
  readonly dataDir: string;
}

/** Starts the CLI with two workers and waits until the primary reports both listening. */
async function startCluster(pki: Pki, upstreamUrl: string | undefined, cleanups: Array<() => void>): Promise<Cluster> {
  const config = writeCliConfig(pki, {
    upstreamUrl: upstreamUrl ?? 'http://127.0.0.1:9',
    workers: 2,
    ...(upstreamUrl ? {} : { patch: (raw) => { raw.upstream = { kind: 'embedded' }; } }),
  });
  cleanups.push(() => rmSync(config.dir, { recursive: true, force: true }));
  const cli = startCli(config.file);
  cleanups.push(() => cli.kill());
  const primary = await cli.waitForLog((l) => l.msg === 'NEMS gateway primary started', 'primary started');
  await cli.waitForLog((l) => l.msg === 'all workers listening', 'all workers listening', 20_000);
  // Workers write their own log lines to the shared stdout, not necessarily before the primary's.
  const listening = () => cli.logs.filter((l) => l.msg === 'NEMS gateway listening (mTLS)');
  await eventually(() => new Set(listening().map((l) => l.worker)).size === 2, 'both workers to log listening');
  // node:cluster gives every worker the same port for listen(0).
  expect(new Set(listening().map((l) => l.port)).size).toBe(1);
  return { cli, port: listening()[0]!.port as number, adminPort: primary.adminPort as number, dataDir: join(config.dir, 'data') };
}

/** Which workers logged a request line since log index `from`. */
const workersThatServed = (cli: CliProcess, from = 0) =>
  new Set(cli.logs.slice(from).filter((l) => l.msg.startsWith('request ') || l.msg === 'upstream failure').map((l) => l.worker));

const { pki, upstream } = usePkiAndUpstream();
const cleanups: Array<() => void> = [];
afterAll(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
});

describe('cluster mode (2 workers) in front of a remote upstream', () => {
  let cluster: Cluster;
  let sent = 0;

  beforeAll(async () => {
    cluster = await startCluster(pki, upstream.url, cleanups);
  });

  it('the primary answers /readyz 200 with both workers listening', async () => {
    const ready = await adminGet(cluster.adminPort, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text).checks.workers).toEqual({ ok: true, reason: '2/2 workers listening' });
  });

  it('gives every issue-3 policy case the same outcome as a single process, with both workers serving', async () => {
    const cases = buildPolicyCases(Date.now());
    expect(cases.length).toBeGreaterThanOrEqual(100);
    const mismatches: string[] = [];
    for (const c of cases) {
      const actual = await runPolicyCase(pki, cluster.port, upstream, c);
      sent++;
      const expected = expectedOutcome(c);
      const same = actual.status === expected.status && actual.forwarded === expected.forwarded &&
        (expected.code === undefined || actual.code === expected.code) && (expected.bodyIntact === undefined || actual.bodyIntact === true);
      if (!same) mismatches.push(`${c.name}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    }
    expect(mismatches).toEqual([]);
    await eventually(() => workersThatServed(cluster.cli).size === 2, 'request log lines from both workers');
    expect(workersThatServed(cluster.cli)).toEqual(new Set([1, 2]));
  });

  it('serves metrics on the primary admin port aggregated across both workers (promtool-clean)', async () => {
    const text = (await adminGet(cluster.adminPort, '/metrics')).text;
    expect(metricSum(text, 'nems_gateway_cluster_workers_reporting')).toBe(2);
    expect(metricSum(text, 'nems_gateway_requests_total')).toBe(sent);
    expect(metricSum(text, 'nems_gateway_tls_connections_total')).toBe(sent);
    expect(metricSum(text, 'nems_gateway_requests_in_flight')).toBe(0);
    // Certificate expiry is the soonest across workers, not a sum.
    const server = metricSum(text, 'nems_gateway_certificate_expiry_remaining_seconds', { certificate: 'server' });
    expect(server / 86400).toBeGreaterThan(820);
    expect(server / 86400).toBeLessThan(826);
    if (!promtool.skip) {
      const run = promtoolCheckMetrics(text);
      expect(run.output).toBe('');
      expect(run.status).toBe(0);
    }
  });

  it('SIGHUP to the primary reloads in every worker; the reload count is not double-counted', async () => {
    cluster.cli.child.kill('SIGHUP');
    await eventually(
      () => cluster.cli.logs.filter((l) => l.msg === 'reloaded' && l.component === 'registry').length === 2,
      'both workers to reload',
    );
    const text = (await adminGet(cluster.adminPort, '/metrics')).text;
    expect(metricSum(text, 'nems_gateway_reloads_total', { component: 'registry', result: 'success' })).toBe(1);
  });

  it('SIGTERM to the primary: /readyz fails, both workers drain and stop with 0, the primary exits 0', async () => {
    // The request stays in flight long enough (3 s, inside the 5 s drain deadline) for /readyz to be asked while the
    // admin listener still serves, however late a loaded machine lets the test read the primary's log.
    const inFlight = send(pki, cluster.port, {
      client: 'gp-system', path: '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c',
      headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-delay-ms': '3000' },
    }).catch((err: Error) => err);
    await eventually(async () => (await upstream.stats()).received.some((r) => r.headers['x-test-delay-ms']), 'the slow request to arrive');
    cluster.cli.child.kill('SIGTERM');
    await cluster.cli.waitForLog((l) => l.msg === 'draining workers', 'draining workers');
    expect((await adminGet(cluster.adminPort, '/readyz')).status).toBe(503);
    expect(await inFlight).toMatchObject({ status: 200 });
    expect(await cluster.cli.exited).toEqual({ code: 0, signal: null });
    const stopped = cluster.cli.logs.filter((l) => l.msg === 'worker stopped');
    expect(stopped.map((l) => l.code)).toEqual([0, 0]);
    expect(cluster.cli.logs.filter((l) => l.msg === 'stopped' && l.worker !== undefined)).toHaveLength(2);
  });
});

describe('cluster mode (2 workers) with the embedded NEMS core', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster(pki, undefined, cleanups);
  });
  afterAll(async () => {
    cluster?.cli.child.kill('SIGTERM');
    if (cluster) expect(await cluster.cli.exited).toEqual({ code: 0, signal: null });
  });

  it('creates a subscription on one worker and reads, publishes to and deletes it through either worker', async () => {
    const logFrom = cluster.cli.logs.length;
    const created = await send(pki, cluster.port, {
      client: 'gp-system', method: 'POST', path: '/STU3/Subscription',
      body: subscriptionXml({ ...EXPLICIT_SUBSCRIPTION, criteria: explicitCriteria(undefined, ['vaccinations-1']) }),
      headers: nemsHeaders('gp-system', 'create', { contentType: 'application/fhir+xml' }),
    });
    expect(created.status).toBe(201);
    const id = String(created.headers.location).split('/').pop()!;
    expect(id).toMatch(/^[0-9a-f]{32}$/);

    // New connections alternate between the workers: every one must see the subscription.
    for (let i = 0; i < 6; i++) {
      const read = await send(pki, cluster.port, { client: 'gp-system', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'read') });
      expect(read.status).toBe(200);
      expect(read.text).toContain('<status value="active"/>');
    }
    const published = await send(pki, cluster.port, {
      client: 'child-health', method: 'POST', path: '/STU3/Events/1/$process-message', body: VACCINATION_PUBLISH_XML,
      headers: nemsHeaders('child-health', 'publish', { contentType: 'application/fhir+xml' }),
    });
    expect(published.status).toBe(202);
    const mailbox = execFileSync(process.execPath, [CLI_ENTRY, 'mailbox', 'A83627MB001', '--data-dir', cluster.dataDir], { encoding: 'utf8', timeout: 10_000 });
    expect(mailbox.trim().split('\n')).toHaveLength(1);

    expect((await send(pki, cluster.port, { client: 'gp-system', method: 'DELETE', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'delete') })).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const gone = await send(pki, cluster.port, { client: 'gp-system', path: `/STU3/Subscription/${id}`, headers: nemsHeaders('gp-system', 'read') });
      expect(gone.status).toBe(404);
      expect(spineCodeOf(gone.text)).toBe('NO_RECORD_FOUND');
    }
    await eventually(() => workersThatServed(cluster.cli, logFrom).size === 2, 'request log lines from both workers');
    expect(workersThatServed(cluster.cli, logFrom)).toEqual(new Set([1, 2]));
  });
});

describe('cluster mode start-up failure', () => {
  it('stops and exits 1 when the workers cannot start (mTLS port taken) instead of re-forking forever', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const config = writeCliConfig(pki, { upstreamUrl: upstream.url, workers: 2, patch: (raw) => { raw.server.port = (taken.address() as AddressInfo).port; } });
    cleanups.push(() => rmSync(config.dir, { recursive: true, force: true }));
    const cli = startCli(config.file);
    cleanups.push(() => cli.kill());
    try {
      expect(await cli.exited).toEqual({ code: 1, signal: null });
      expect(cli.logs.some((l) => l.msg === 'worker failed to start; stopping')).toBe(true);
      expect(cli.logs.filter((l) => l.msg === 'start-up failed').length).toBeGreaterThanOrEqual(1);
    } finally {
      taken.close();
    }
  });
});
