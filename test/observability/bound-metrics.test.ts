// The bound families must be indistinguishable from prom-client's own Counter and Histogram at scrape time:
// same exposition text, same JSON for the cluster aggregator, and reset() keeping bound series usable.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounterFamily, BoundHistogramFamily } from '../../src/observability/bound-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVATIONS: ReadonlyArray<readonly [string, string, number]> = [
  ['read', '2xx', 0.0004], ['read', '2xx', 0.002], ['read', '2xx', 0.05], ['publish', '4xx', 0.3],
  ['publish', '4xx', 7], ['read', '2xx', 0.001], ['publish', '2xx', 0.01],
];

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const labelNames = ['route', 'status_class'] as const;
  const help = 'help text';
  const counter = new BoundCounterFamily({ name: 'x_requests_total', help, labelNames, registers: [ours] });
  const histogram = new BoundHistogramFamily({ name: 'x_duration_seconds', help, labelNames, buckets: BUCKETS, registers: [ours] });
  const promCounter = new Counter({ name: 'x_requests_total', help, labelNames, registers: [theirs] });
  const promHistogram = new Histogram({ name: 'x_duration_seconds', help, labelNames, buckets: BUCKETS, registers: [theirs] });
  for (const [route, status_class, seconds] of OBSERVATIONS) {
    const labels = { route, status_class };
    counter.bind(labels).value++;
    histogram.bind(labels).observe(seconds);
    promCounter.inc(labels);
    promHistogram.observe(labels, seconds);
  }
  return { ours, theirs, counter, histogram };
}

describe('bound metric families', () => {
  it('expose exactly what prom-client Counter and Histogram expose for the same observations', async () => {
    const { ours, theirs } = both();
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('x_duration_seconds_bucket{le="0.01",route="read",status_class="2xx"} 3');
    expect(text).toContain('x_requests_total{route="publish",status_class="4xx"} 2');
  });

  it('give the cluster aggregator the same JSON, so workers sum the same way', async () => {
    const a = both();
    const b = both();
    const aggregated = await AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]).metrics();
    const reference = await AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]).metrics();
    expect(aggregated).toBe(reference);
    expect(aggregated).toContain('x_requests_total{route="read",status_class="2xx"} 8');
  });

  it('bind() returns the same series for the same labels and reset() zeroes it in place', async () => {
    const { ours, counter, histogram } = both();
    const series = counter.bind({ route: 'read', status_class: '2xx' });
    expect(counter.bind({ status_class: '2xx', route: 'read' })).toBe(series);
    expect(series.value).toBe(4);
    ours.resetMetrics();
    expect(series.value).toBe(0);
    histogram.bind({ route: 'read', status_class: '2xx' }).observe(0.5);
    series.value++;
    const text = await ours.metrics();
    expect(text).toContain('x_requests_total{route="read",status_class="2xx"} 1');
    expect(text).toContain('x_duration_seconds_count{route="read",status_class="2xx"} 1');
    expect(text).toContain('x_duration_seconds_bucket{le="0.1",route="read",status_class="2xx"} 0');
  });

  it('ignores a non-finite observation rather than corrupting the sum', async () => {
    const { ours, histogram } = both();
    histogram.bind({ route: 'read', status_class: '2xx' }).observe(Number.NaN);
    expect(await ours.metrics()).toContain('x_duration_seconds_count{route="read",status_class="2xx"} 4');
  });
});
