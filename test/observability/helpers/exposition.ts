// Reads values back out of a prom-client registry for assertions.
import type { Registry } from 'prom-client';

export interface Sample {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly metricName?: string;
}

/** Every sample of one metric (for histograms: buckets, sum and count, told apart by metricName). */
export async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const data = await metric.get();
  return data.values as Sample[];
}

/** The value of the one sample whose labels match `labels` exactly (undefined when there is none). */
export async function valueOf(registry: Registry, name: string, labels: Record<string, string> = {}, metricName?: string): Promise<number | undefined> {
  const wanted = Object.entries(labels);
  const match = (await samples(registry, name)).find(
    (s) =>
      (metricName === undefined || s.metricName === metricName) &&
      Object.keys(s.labels).filter((k) => k !== 'le' || 'le' in labels).length === wanted.length &&
      wanted.every(([k, v]) => String(s.labels[k]) === v),
  );
  return match?.value;
}

/** Every label name/value pair in a text exposition. */
export function labelPairs(exposition: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) continue;
    const open = line.indexOf('{');
    if (open < 0) continue;
    const body = line.slice(open + 1, line.lastIndexOf('}'));
    for (const match of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) pairs.push([match[1]!, match[2]!]);
  }
  return pairs;
}
