import { afterEach, describe, expect, it } from 'vitest';
import cluster, { type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import {
  attachClusterMetricsWorker, createClusterMetricsAggregator, type ClusterMetricsAggregator, type ClusterPrimaryLike,
  type ClusterWorkerLike, type WorkerChannelLike,
} from '../../src/observability/cluster-metrics.js';
import { createClusterPrimaryMetrics, createMetrics, type GatewayMetrics } from '../../src/observability/metrics.js';

const P = 'nems_gateway_';

/** One metric sample from a text exposition, by name and exact label set. */
function sampleValue(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

// --- An in-memory stand-in for node:cluster: messages cross asynchronously, like IPC. ---
class FakeWorker implements ClusterWorkerLike {
  connected = true;
  /** Set to false to make the worker swallow requests (a hung worker). */
  answering = true;
  readonly channel: WorkerChannelLike & EventEmitter;
  constructor(readonly id: number, private readonly primary: FakeCluster) {
    const channel = new EventEmitter() as WorkerChannelLike & EventEmitter;
    channel.send = (message: unknown) => {
      setImmediate(() => primary.emit('message', this, message));
      return true;
    };
    this.channel = channel;
  }
  isConnected() {
    return this.connected;
  }
  send(message: unknown) {
    if (this.answering) setImmediate(() => this.channel.emit('message', message));
    return true;
  }
  exit() {
    this.connected = false;
    this.primary.emit('exit', this);
  }
}

class FakeCluster extends EventEmitter {
  readonly workers: Record<string, FakeWorker> = {};
  fork(): FakeWorker {
    const id = Object.keys(this.workers).length + 1;
    return (this.workers[String(id)] = new FakeWorker(id, this));
  }
}

const settle = () => new Promise((r) => setImmediate(r));

/** A worker-side metrics registry with a few samples recorded. */
function workerMetrics(serverExpiry: number, requests: number, reloads: number): GatewayMetrics {
  const metrics = createMetrics({ collectDefault: false, now: () => 0 });
  for (let i = 0; i < requests; i++) metrics.requestCompleted('read', 'forwarded', 200, 0.01);
  for (let i = 0; i < reloads; i++) metrics.reload('registry', true);
  metrics.setCertificateExpiry('server', new Date(serverExpiry * 1000));
  const close = metrics.tlsConnectionOpened();
  void close;
  return metrics;
}

describe('cluster metrics aggregation (in-memory cluster)', () => {
  let aggregator: ClusterMetricsAggregator | undefined;
  afterEach(() => aggregator?.close());

  it('sums counters and active connections, keeps the soonest certificate expiry and the most reloads of any worker', async () => {
    const fake = new FakeCluster();
    const primaryMetrics = createMetrics({ collectDefault: false });
    primaryMetrics.reload('config', true);
    aggregator = createClusterMetricsAggregator({ cluster: fake as unknown as ClusterPrimaryLike, primaryRegistry: primaryMetrics.registry });
    const a = fake.fork();
    const b = fake.fork();
    attachClusterMetricsWorker(workerMetrics(5000, 3, 2).registry, a.channel);
    attachClusterMetricsWorker(workerMetrics(100, 4, 2).registry, b.channel);
    await settle();
    expect(aggregator.readyWorkers()).toBe(2);

    const text = await aggregator.metrics();
    expect(sampleValue(text, `${P}requests_total`, 'route="read",outcome="forwarded",status_class="2xx"')).toBe(7);
    expect(sampleValue(text, `${P}request_duration_seconds_count`, 'route="read",outcome="forwarded",status_class="2xx"')).toBe(7);
    expect(sampleValue(text, `${P}tls_connections_active`)).toBe(2);
    expect(sampleValue(text, `${P}certificate_expiry_remaining_seconds`, 'certificate="server"')).toBe(100);
    expect(sampleValue(text, `${P}reloads_total`, 'component="registry",result="success"')).toBe(2);
    expect(sampleValue(text, `${P}reloads_total`, 'component="config",result="success"')).toBe(1);
    expect(sampleValue(text, `${P}cluster_workers_reporting`)).toBe(2);
  });

  it('does not wait for a worker that never attached its registry', async () => {
    const fake = new FakeCluster();
    aggregator = createClusterMetricsAggregator({ cluster: fake as unknown as ClusterPrimaryLike, timeoutMs: 200 });
    const attached = fake.fork();
    fake.fork(); // never attaches
    attachClusterMetricsWorker(workerMetrics(1, 1, 0).registry, attached.channel);
    await settle();
    const text = await aggregator.metrics();
    expect(sampleValue(text, `${P}cluster_workers_reporting`)).toBe(1);
  });

  it('fails the scrape when an attached worker does not answer within the timeout', async () => {
    const fake = new FakeCluster();
    aggregator = createClusterMetricsAggregator({ cluster: fake as unknown as ClusterPrimaryLike, timeoutMs: 100 });
    const hung = fake.fork();
    attachClusterMetricsWorker(workerMetrics(1, 1, 0).registry, hung.channel);
    await settle();
    hung.answering = false;
    await expect(aggregator.metrics()).rejects.toThrow(/did not report metrics within 100 ms/);
  });

  it('stops waiting for a worker that exits during a scrape', async () => {
    const fake = new FakeCluster();
    aggregator = createClusterMetricsAggregator({ cluster: fake as unknown as ClusterPrimaryLike, timeoutMs: 5000 });
    const live = fake.fork();
    const dying = fake.fork();
    attachClusterMetricsWorker(workerMetrics(1, 2, 0).registry, live.channel);
    attachClusterMetricsWorker(workerMetrics(1, 2, 0).registry, dying.channel);
    await settle();
    dying.answering = false;
    const scrape = aggregator.metrics();
    dying.exit();
    const text = await scrape;
    expect(sampleValue(text, `${P}cluster_workers_reporting`)).toBe(1);
    expect(aggregator.readyWorkers()).toBe(1);
  });

  it('finds workers that attached before the aggregator existed', async () => {
    const fake = new FakeCluster();
    const early = fake.fork();
    attachClusterMetricsWorker(workerMetrics(1, 1, 0).registry, early.channel); // its READY reaches no one
    await settle();
    aggregator = createClusterMetricsAggregator({ cluster: fake as unknown as ClusterPrimaryLike });
    await settle();
    await settle();
    expect(aggregator.readyWorkers()).toBe(1);
  });

  it('is a no-op in a process without an IPC channel', () => {
    const detach = attachClusterMetricsWorker(createMetrics({ collectDefault: false }).registry, { on: () => {}, off: () => {} });
    expect(() => detach()).not.toThrow();
  });

  it('is a no-op outside a cluster worker even when the process has an IPC channel (e.g. a supervisor)', () => {
    const sent: unknown[] = [];
    const original = process.send;
    process.send = ((message: unknown) => sent.push(message) > 0) as typeof process.send;
    try {
      createMetrics({ collectDefault: false, clusterWorker: true });
      attachClusterMetricsWorker(createMetrics({ collectDefault: false }).registry)();
    } finally {
      process.send = original;
    }
    expect(sent).toEqual([]);
  });

  it('createClusterPrimaryMetrics merges the primary\'s process metrics with the workers\' and serves the content type', async () => {
    const fake = new FakeCluster();
    const primary = createClusterPrimaryMetrics({ cluster: fake as unknown as ClusterPrimaryLike });
    try {
      attachClusterMetricsWorker(workerMetrics(50, 2, 0).registry, fake.fork().channel);
      await settle();
      const { contentType, body } = await primary.render();
      expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(sampleValue(body, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(sampleValue(body, `${P}requests_total`, 'route="read",outcome="forwarded",status_class="2xx"')).toBe(2);
      expect(primary.readyWorkers()).toBe(1);
    } finally {
      primary.close();
    }
  });
});

/**
 * Transpiles the observability modules (and what their label sets import: the error catalogue, the NEMS operation
 * list, the stage names, the identity reasons) to plain ES modules in a temp dir, so real cluster workers can load
 * them without a TypeScript loader.
 */
function transpileForWorkers(): string {
  const root = resolve(import.meta.dirname, '../..');
  const dir = mkdtempSync(join(tmpdir(), 'nems-cluster-'));
  const files = ['labels', 'tls-failure', 'cluster-metrics', 'cluster-primary', 'default-metrics', 'bound-metrics', 'build-info', 'metrics'].map((m) => `src/observability/${m}.ts`);
  const imported = ['src/fhir/errors.ts', 'src/paths.ts', 'src/pipeline/types.ts', 'src/identity/types.ts', 'src/rules/catalogue.ts', ...['identifiers', 'operations', 'interactions', 'events'].map((m) => `src/nems/${m}.ts`)];
  for (const file of [...imported, ...files]) {
    const out = ts.transpileModule(readFileSync(join(root, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    }).outputText;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file.replace(/\.ts$/, '.js')), out);
  }
  writeFileSync(join(dir, 'src/rules/catalogue.json'), readFileSync(join(root, 'src/rules/catalogue.json')));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'worker.js'), `
import { createMetrics } from './src/observability/metrics.js';
const metrics = createMetrics({ now: () => 0, clusterWorker: true });
for (let i = 0; i < Number(process.env.REQUESTS); i++) metrics.requestCompleted('publish', 'forwarded', 202, 0.02);
metrics.setCertificateExpiry('ca', new Date(Number(process.env.CA_EXPIRY_S) * 1000));
setInterval(() => {}, 60_000);
`);
  return dir;
}

describe('cluster metrics aggregation (real node:cluster workers)', () => {
  it('serves one aggregated exposition for two forked workers on the primary', async () => {
    const dir = transpileForWorkers();
    const workers: Worker[] = [];
    const aggregator = createClusterPrimaryMetrics({ timeoutMs: 5000 });
    try {
      cluster.setupPrimary({ exec: join(dir, 'worker.js'), execArgv: [], silent: true });
      workers.push(cluster.fork({ REQUESTS: '2', CA_EXPIRY_S: '900' }), cluster.fork({ REQUESTS: '5', CA_EXPIRY_S: '300' }));
      for (let i = 0; i < 100 && aggregator.readyWorkers() < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(aggregator.readyWorkers()).toBe(2);
      const { body: text } = await aggregator.render();
      expect(sampleValue(text, `${P}requests_total`, 'route="publish",outcome="forwarded",status_class="2xx"')).toBe(7);
      expect(sampleValue(text, `${P}certificate_expiry_remaining_seconds`, 'certificate="ca"')).toBe(300);
      expect(sampleValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(sampleValue(text, `${P}cluster_workers_reporting`)).toBe(2);
    } finally {
      aggregator.close();
      await Promise.all(workers.map((w) => new Promise<void>((done) => {
        if (w.isDead()) return done();
        w.once('exit', () => done());
        w.kill();
      })));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
