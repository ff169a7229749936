// Metrics across `node:cluster` workers: the primary asks every worker for its registry over IPC and serves one
// aggregated exposition on the admin port, merging values with each metric's `aggregator` (sum, min, max…).
//
// prom-client's own AggregatorRegistry.clusterMetrics() is not used for the collection: it only answers in a
// worker that has itself constructed an AggregatorRegistry, it queries workers that never set metrics up (and
// then fails the scrape after a fixed 5 s), it cannot merge the primary's registry, and it keeps the worker's
// registries in module state. Its static `aggregate()` does the merging here.
import cluster from 'node:cluster';
import { AggregatorRegistry, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

const REQUEST = 'nems-gateway:metrics-request';
const RESPONSE = 'nems-gateway:metrics-response';
/** A worker announces that it answers metrics requests (on attach, and in reply to HELLO). */
const READY = 'nems-gateway:metrics-ready';
const HELLO = 'nems-gateway:metrics-hello';

type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

interface MetricsRequest { readonly type: typeof REQUEST; readonly id: number }
interface MetricsResponse { readonly type: typeof RESPONSE; readonly id: number; readonly metrics?: WorkerMetrics; readonly error?: string }

/** The part of a cluster Worker the primary uses. */
export interface ClusterWorkerLike {
  readonly id: number;
  isConnected(): boolean;
  send(message: unknown): boolean;
}

/** The part of `node:cluster` (primary side) the aggregator uses; injectable for tests. */
export interface ClusterPrimaryLike {
  readonly workers?: NodeJS.Dict<ClusterWorkerLike>;
  on(event: 'message', listener: (worker: ClusterWorkerLike, message: unknown) => void): unknown;
  on(event: 'exit', listener: (worker: ClusterWorkerLike) => void): unknown;
  off(event: 'message', listener: (worker: ClusterWorkerLike, message: unknown) => void): unknown;
  off(event: 'exit', listener: (worker: ClusterWorkerLike) => void): unknown;
}

/** The part of a worker's `process` the worker side uses; injectable for tests. */
export interface WorkerChannelLike {
  send?: (message: unknown) => boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

export interface ClusterMetricsAggregatorOptions {
  /** The primary's own registry (its process metrics, anything it counts), merged with the workers'. */
  readonly primaryRegistry?: Registry;
  /** How long a scrape waits for every ready worker. Default 3000 ms. */
  readonly timeoutMs?: number;
  /** Prefix of the `cluster_workers_reporting` gauge. Default `nems_gateway_`. */
  readonly prefix?: string;
  readonly cluster?: ClusterPrimaryLike;
}

export interface ClusterMetricsAggregator {
  readonly contentType: string;
  /**
   * Aggregated metrics of the primary registry and every worker that has attached. Rejects when a ready worker
   * does not answer within the timeout: a failed scrape is better than sums that silently drop a worker.
   */
  metrics(): Promise<string>;
  /** Number of workers currently known to answer metrics requests. */
  readyWorkers(): number;
  /** Stops listening; pending scrapes reject. */
  close(): void;
}

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

interface PendingScrape {
  readonly waiting: Set<number>;
  readonly results: WorkerMetrics[];
  readonly resolve: (results: WorkerMetrics[]) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** For the cluster primary: serves the workers' metrics, aggregated, from the one admin port. */
export function createClusterMetricsAggregator(opts: ClusterMetricsAggregatorOptions = {}): ClusterMetricsAggregator {
  const primary: ClusterPrimaryLike = opts.cluster ?? (cluster as unknown as ClusterPrimaryLike);
  const timeoutMs = opts.timeoutMs ?? 3000;
  const prefix = opts.prefix ?? 'nems_gateway_';
  const ready = new Set<number>();
  const pending = new Map<number, PendingScrape>();
  let nextId = 1;
  let closed = false;

  const settleIfDone = (id: number, scrape: PendingScrape) => {
    if (scrape.waiting.size > 0) return;
    clearTimeout(scrape.timer);
    pending.delete(id);
    scrape.resolve(scrape.results);
  };

  const onMessage = (worker: ClusterWorkerLike, message: unknown) => {
    if (isMessage<{ type: typeof READY }>(message, READY)) {
      ready.add(worker.id);
      return;
    }
    if (!isMessage<MetricsResponse>(message, RESPONSE)) return;
    const scrape = pending.get(message.id);
    if (!scrape || !scrape.waiting.delete(worker.id)) return;
    if (message.error !== undefined || !Array.isArray(message.metrics)) {
      clearTimeout(scrape.timer);
      pending.delete(message.id);
      scrape.reject(new Error(`worker ${worker.id} could not collect its metrics`));
      return;
    }
    scrape.results.push(message.metrics);
    settleIfDone(message.id, scrape);
  };

  // A worker that exits stops counting: pending scrapes no longer wait for it.
  const onExit = (worker: ClusterWorkerLike) => {
    ready.delete(worker.id);
    for (const [id, scrape] of pending) if (scrape.waiting.delete(worker.id)) settleIfDone(id, scrape);
  };

  primary.on('message', onMessage);
  primary.on('exit', onExit);
  // Workers forked before the aggregator existed announce themselves again.
  for (const worker of Object.values(primary.workers ?? {})) if (worker?.isConnected()) worker.send({ type: HELLO });

  const collectFromWorkers = (): Promise<WorkerMetrics[]> => {
    const id = nextId++;
    const targets = Object.values(primary.workers ?? {}).filter(
      (w): w is ClusterWorkerLike => w !== undefined && ready.has(w.id) && w.isConnected(),
    );
    return new Promise((resolve, reject) => {
      const scrape: PendingScrape = {
        waiting: new Set(targets.map((w) => w.id)),
        results: [],
        resolve,
        reject,
        timer: setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${scrape.waiting.size} worker(s) did not report metrics within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      pending.set(id, scrape);
      const request: MetricsRequest = { type: REQUEST, id };
      for (const worker of targets) {
        try {
          worker.send(request);
        } catch {
          scrape.waiting.delete(worker.id); // the channel closed between the check and the send
        }
      }
      settleIfDone(id, scrape);
    });
  };

  return {
    contentType: Registry.PROMETHEUS_CONTENT_TYPE,
    async metrics() {
      if (closed) throw new Error('cluster metrics aggregator is closed');
      const [workers, own] = await Promise.all([
        collectFromWorkers(),
        opts.primaryRegistry ? opts.primaryRegistry.getMetricsAsJSON() : Promise.resolve(undefined),
      ]);
      const aggregated = AggregatorRegistry.aggregate(own ? [own, ...workers] : workers);
      const reporting = new Gauge({
        name: `${prefix}cluster_workers_reporting`,
        help: 'Cluster workers whose metrics are included in this scrape.',
        registers: [],
      });
      reporting.set(workers.length);
      aggregated.registerMetric(reporting);
      return aggregated.metrics();
    },
    readyWorkers: () => ready.size,
    close() {
      if (closed) return;
      closed = true;
      primary.off('message', onMessage);
      primary.off('exit', onExit);
      for (const [id, scrape] of pending) {
        clearTimeout(scrape.timer);
        pending.delete(id);
        scrape.reject(new Error('cluster metrics aggregator closed'));
      }
    },
  };
}

/**
 * For a cluster worker: answers the primary's metrics requests from `registry`. Returns a function that
 * detaches. Without an explicit channel it uses `process`, and only in a `node:cluster` worker: any other process
 * (a single-process gateway, or one started with an IPC channel by a supervisor) gets a no-op.
 */
export function attachClusterMetricsWorker(registry: Registry, channel?: WorkerChannelLike): () => void {
  const ipc = channel ?? (cluster.isWorker ? (process as WorkerChannelLike) : undefined);
  const send = ipc?.send?.bind(ipc);
  if (!ipc || !send) return () => {};
  const trySend = (message: unknown) => {
    try {
      send(message);
    } catch {
      // The primary went away; nothing to report to.
    }
  };
  const onMessage = (message: unknown) => {
    if (isMessage<{ type: typeof HELLO }>(message, HELLO)) {
      trySend({ type: READY });
      return;
    }
    if (!isMessage<MetricsRequest>(message, REQUEST) || typeof message.id !== 'number') return;
    const id = message.id;
    registry.getMetricsAsJSON().then(
      (metrics) => trySend({ type: RESPONSE, id, metrics } satisfies MetricsResponse),
      () => trySend({ type: RESPONSE, id, error: 'collect failed' } satisfies MetricsResponse),
    );
  };
  ipc.on('message', onMessage);
  trySend({ type: READY });
  return () => ipc.off('message', onMessage);
}
