// Counters and histograms for the per-request path, updated through series bound once per label set.
// prom-client hashes the label object on every inc()/observe() (its labels() children do too), which was most of the
// metrics' cost per request. These families keep each label set's values in a plain object the caller binds once;
// at scrape time they answer prom-client's registry with the same MetricObject shape prom-client's own Counter and
// Histogram produce, so exposition, the cluster aggregator and promtool see no difference.
import type { Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;
interface MetricValue {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}
interface MetricObject {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: MetricValue[];
  readonly aggregator: 'sum';
}

interface FamilyOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

abstract class BoundFamily<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  abstract readonly type: 'counter' | 'histogram';
  readonly #labelNames: readonly L[];
  #series = new Map<string, { readonly labels: Labels; readonly series: S }>();

  constructor(opts: FamilyOptions<L>) {
    this.name = opts.name;
    this.help = opts.help;
    this.#labelNames = opts.labelNames;
    for (const registry of opts.registers) registry.registerMetric(this as never);
  }

  /** The series for one label set, created on first use; keep it and update it directly. */
  bind(labels: Readonly<Record<L, string>>): S {
    const key = this.#labelNames.map((n) => labels[n]).join('\u0000');
    let entry = this.#series.get(key);
    if (!entry) {
      const own: Record<string, string> = {};
      for (const n of this.#labelNames) own[n] = labels[n];
      entry = { labels: Object.freeze(own), series: this.create() };
      this.#series.set(key, entry);
    }
    return entry.series;
  }

  protected abstract create(): S;
  protected abstract values(labels: Labels, series: S): MetricValue[];
  protected abstract clear(series: S): void;

  /** prom-client's registry calls this on every scrape (and the cluster worker for the aggregator). */
  async get(): Promise<MetricObject> {
    const values: MetricValue[] = [];
    for (const { labels, series } of this.#series.values()) values.push(...this.values(labels, series));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Registry.resetMetrics(): zeroes every series in place, so bound series stay valid. */
  reset(): void {
    for (const { series } of this.#series.values()) this.clear(series);
  }
}

export interface BoundCounter {
  value: number;
}

export class BoundCounterFamily<L extends string> extends BoundFamily<L, BoundCounter> {
  readonly type = 'counter' as const;
  protected create(): BoundCounter {
    return { value: 0 };
  }
  protected values(labels: Labels, series: BoundCounter): MetricValue[] {
    return [{ labels: { ...labels }, value: series.value }];
  }
  protected clear(series: BoundCounter): void {
    series.value = 0;
  }
}

/** One histogram series: call observe(seconds). */
export interface BoundHistogram {
  observe(value: number): void;
}

class HistogramSeries implements BoundHistogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export class BoundHistogramFamily<L extends string> extends BoundFamily<L, BoundHistogram> {
  readonly type = 'histogram' as const;
  readonly #bounds: readonly number[];

  constructor(opts: FamilyOptions<L> & { readonly buckets: readonly number[] }) {
    super(opts);
    this.#bounds = [...opts.buckets].sort((a, b) => a - b);
  }

  protected create(): BoundHistogram {
    return new HistogramSeries(this.#bounds);
  }

  /** Cumulative buckets, +Inf, sum, count: what prom-client's Histogram reports for one label set. */
  protected values(labels: Labels, series: BoundHistogram): MetricValue[] {
    const s = series as HistogramSeries;
    const out: MetricValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += s.counts[i]!;
      out.push({ labels: { le: this.#bounds[i]!, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    out.push({ labels: { le: '+Inf', ...labels }, value: s.count, metricName: `${this.name}_bucket` });
    out.push({ labels: { ...labels }, value: s.sum, metricName: `${this.name}_sum` });
    out.push({ labels: { ...labels }, value: s.count, metricName: `${this.name}_count` });
    return out;
  }

  protected clear(series: BoundHistogram): void {
    const s = series as HistogramSeries;
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }
}
