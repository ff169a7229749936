// Shared rate limits (issue 14 point 3) through the real command line: two gateway processes, one of them with two
// cluster workers, on one real redis-server. They share one budget exactly; Redis killed mid-run makes them fall
// back to their local buckets (rateLimits.onStoreError: local) with no 5xx, counted and shown in /readyz; when
// Redis returns they share one budget again. Redis sees bucket keys and counts only: no NHS number, no token.
import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, spineCodeOf, startCountingUpstream, createPki, type CountingUpstream, type Pki } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { EXPLICIT_SUBSCRIPTION_XML } from '../helpers/bodies.js';
import { adminGet, eventually, metricSum } from '../helpers/ops-admin.js';
import { startCli, writeCliConfig, type CliProcess } from '../helpers/ops-cli.js';
import { redisServerTool, startTestRedis, type TestRedis } from '../helpers/redis-server.js';

const GP_SYSTEM_ASID = '200000000101';
const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const BURST = 6;
const KEY_PREFIX = 'nems-e2e:rl:';

interface Gateway {
  readonly name: string;
  readonly cli: CliProcess;
  readonly port: number;
  readonly adminPort: number;
}

let pki: Pki;
let upstream: CountingUpstream;
let redis: TestRedis;
const cleanups: Array<() => void> = [];
let a: Gateway;
let b: Gateway;

async function startGateway(name: string, workers: number): Promise<Gateway> {
  const config = writeCliConfig(pki, {
    upstreamUrl: upstream.url,
    workers,
    patch: (raw) => {
      raw.rateLimits = {
        enabled: true,
        store: 'redis',
        onStoreError: 'local',
        redis: { url: redis.url, keyPrefix: KEY_PREFIX, commandTimeoutMs: 500, connectTimeoutMs: 1000, retryIntervalMs: 200 },
        default: { ratePerSecond: 100, burst: 100 },
        // gp-system reads: a burst of 6, refilling one token every 1000 s (none during the test).
        perAsid: { [GP_SYSTEM_ASID]: { read: { ratePerSecond: 0.001, burst: BURST } } },
      };
    },
  });
  cleanups.push(() => rmSync(config.dir, { recursive: true, force: true }));
  const cli = startCli(config.file);
  cleanups.push(() => cli.kill());
  let adminPort: number;
  if (workers > 1) {
    adminPort = (await cli.waitForLog((l) => l.msg === 'NEMS gateway primary started', 'primary started')).adminPort as number;
    await cli.waitForLog((l) => l.msg === 'all workers listening', 'all workers listening', 20_000);
  } else {
    adminPort = (await cli.waitForLog((l) => l.msg.startsWith('admin listener'), 'admin listener')).port as number;
  }
  const port = (await cli.waitForLog((l) => l.msg === 'NEMS gateway listening (mTLS)', 'listening')).port as number;
  return { name, cli, port, adminPort };
}

const read = (gateway: Gateway) =>
  send(pki, gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });

/** Reads sent alternately to a and b, one new connection each (so a's two workers take turns). */
async function alternateReads(n: number) {
  const results = [];
  for (let i = 0; i < n; i++) results.push(await read(i % 2 === 0 ? a : b));
  return results;
}

const metricsOf = async (gateway: Gateway) => (await adminGet(gateway.adminPort, '/metrics')).text;
const readyzOf = async (gateway: Gateway) => {
  const res = await adminGet(gateway.adminPort, '/readyz');
  return { status: res.status, store: (JSON.parse(res.text) as { checks: Record<string, { ok: boolean; reason: string }> }).checks['rate-limit-store'] };
};

describe.skipIf(redisServerTool.skip)('rate limits shared on Redis by two gateway processes', () => {
  beforeAll(async () => {
    pki = createPki();
    upstream = await startCountingUpstream();
    redis = await startTestRedis();
    a = await startGateway('a', 2);
    b = await startGateway('b', 1);
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) cleanup();
    await redis?.stop();
    await upstream?.stop();
    pki?.cleanup();
  });

  it('shares one budget exactly: 6 reads pass across both gateways (and a\'s two workers), the 7th and 8th are 429 with X-Rate-Limit-*', async () => {
    const client = new Redis(redis.url);
    const monitor = await client.monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args.join(' ')));
    try {
      const logMark = a.cli.logs.length;
      const results = await alternateReads(BURST + 2);
      expect(results.map((r) => r.status)).toEqual([...Array<number>(BURST).fill(200), 429, 429]);
      for (const limited of results.slice(BURST)) {
        expect(spineCodeOf(limited.text)).toBe('TOO_MANY_REQUESTS');
        expect(limited.headers['x-rate-limit-limit']).toBe(String(BURST));
        expect(limited.headers['x-rate-limit-remaining']).toBe('0');
        // Seconds until a token, on Redis's clock: 1000 (1 / 0.001) less the whole seconds since the bucket emptied.
        expect(Number(limited.headers['x-rate-limit-reset'])).toBeGreaterThan(980);
        expect(Number(limited.headers['x-rate-limit-reset'])).toBeLessThanOrEqual(1000);
        expect(limited.headers['retry-after']).toBe(limited.headers['x-rate-limit-reset']);
      }
      expect((await upstream.stats()).count).toBe(BURST);
      // Both of a's workers served (node:cluster hands new connections round-robin): three processes, one budget.
      await eventually(() => a.cli.logs.slice(logMark).filter((l) => l.msg.startsWith('request ')).length >= 4, 'a\'s request lines', 5000);
      expect(new Set(a.cli.logs.slice(logMark).filter((l) => l.msg.startsWith('request ')).map((l) => l.worker)).size).toBe(2);

      // A create carries an NHS number in its body and a JWT in Authorization: neither reaches Redis.
      const created = await send(pki, b.port, {
        client: 'gp-system', method: 'POST', path: '/STU3/Subscription',
        headers: { ...nemsHeaders('gp-system', 'create'), 'Content-Type': 'application/fhir+xml' }, body: EXPLICIT_SUBSCRIPTION_XML,
      });
      expect(created.status).toBe(201);
      await eventually(() => commands.some((c) => c.includes(`${GP_SYSTEM_ASID} create`)), 'the create\'s bucket call');
      const bucketCalls = commands.filter((c) => /^(evalsha|eval) /i.test(c));
      expect(bucketCalls.length).toBeGreaterThanOrEqual(BURST + 3);
      // EVALSHA <sha> (or, once, EVAL <script>) 1 <prefix><ASID> <operation> <ratePerSecond> <burst>: nothing else.
      for (const call of bucketCalls) expect(call).toMatch(new RegExp(` 1 ${KEY_PREFIX}${GP_SYSTEM_ASID} (read|create) [0-9.]+ [0-9]+$`));
      const everything = commands.join('\n');
      expect(everything).not.toMatch(/eyJ|Bearer|9912003888/);
    } finally {
      monitor.disconnect();
      client.disconnect();
    }
  });

  it('falls back to local buckets when Redis is killed: no 5xx, counted, shown in /readyz; shares one budget again when it returns', async () => {
    await redis.kill();
    const during = await alternateReads(6);
    for (const response of during) expect(response.status).toBeLessThan(500);
    // Each process now decides alone, from a fresh local bucket: the exhausted shared budget no longer applies.
    expect(during.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    for (const gateway of [a, b]) {
      const ready = await readyzOf(gateway);
      expect(ready.status).toBe(200);
      expect(ready.store?.reason).toMatch(/falling back to onStoreError local/);
      const metrics = await metricsOf(gateway);
      expect(metricSum(metrics, 'nems_gateway_rate_limit_store_fallbacks_total', { policy: 'local' })).toBeGreaterThan(0);
      expect(metricSum(metrics, 'nems_gateway_rate_limit_store_available')).toBe(0);
    }

    await redis.restart();
    // Every process (a's primary and both workers, b) reconnects on its own retry timer.
    for (const gateway of [a, b]) {
      await eventually(async () => /buckets shared/.test((await readyzOf(gateway)).store?.reason ?? ''), `${gateway.name} /readyz to report Redis`, 10_000, 100);
      await eventually(async () => metricSum(await metricsOf(gateway), 'nems_gateway_rate_limit_store_available') === 1, `${gateway.name}'s workers to reconnect`, 10_000, 100);
    }
    // The restarted Redis is empty: one fresh shared bucket, exactly BURST reads across both gateways.
    const after = await alternateReads(BURST + 2);
    expect(after.map((r) => r.status)).toEqual([...Array<number>(BURST).fill(200), 429, 429]);
  });
});
