import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  aggregatedExposition, expositionNames, metricsInExpression, metricsWithEverySample, promtool, runPromtool,
} from './helpers.js';

const DEPLOY = resolve(import.meta.dirname, '../../deploy');
const ALERTS = resolve(DEPLOY, 'prometheus/alerts.yml');

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>;
}

describe.skipIf(promtool.skip)('Prometheus: promtool accepts the metrics and the alert rules', () => {
  it('promtool check metrics passes on a scrape with a sample of every gateway metric', async () => {
    const metrics = metricsWithEverySample();
    const { body: text } = await metrics.render();
    const { families, samples } = expositionNames(text);
    for (const family of [...families].filter((f) => f.startsWith('nems_gateway_'))) {
      expect([...samples].some((s) => s === family || s.startsWith(`${family}_`)), `${family} has a sample`).toBe(true);
    }
    const run = runPromtool(['check', 'metrics'], text);
    expect(run.output).toBe('');
    expect(run.status).toBe(0);
  });

  it('promtool check metrics passes on the cluster-aggregated scrape too', async () => {
    const run = runPromtool(['check', 'metrics'], await aggregatedExposition(metricsWithEverySample()));
    expect(run.output).toBe('');
    expect(run.status).toBe(0);
  });

  it('promtool check rules passes on deploy/prometheus/alerts.yml', () => {
    const run = runPromtool(['check', 'rules', ALERTS]);
    expect(run.output).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });

  it('the alert unit tests pass (promtool test rules deploy/prometheus/alerts.test.yml)', () => {
    const run = runPromtool(['test', 'rules', 'alerts.test.yml'], undefined, resolve(DEPLOY, 'prometheus'));
    expect(run.output).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });
});

describe('Prometheus alert rules cover the operator needs and use only real metrics', () => {
  const rules = (parseYaml(readFileSync(ALERTS, 'utf8')) as RuleFile).groups.flatMap((g) => g.rules);

  it('every metric an alert expression names exists in a gateway scrape', async () => {
    const { families, samples } = expositionNames(await aggregatedExposition(metricsWithEverySample()));
    for (const rule of rules) {
      for (const name of metricsInExpression(rule.expr)) expect(families.has(name) || samples.has(name), `${rule.alert}: ${name}`).toBe(true);
    }
  });

  it('alerts on certificate and CRL expiry within 14 days, 5xx rate, rejection spikes, PDS failures, upstream latency and reload failures', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('NemsGatewayCertificateExpiringSoon')?.expr).toContain('< 14 * 86400');
    expect(byName.get('NemsGatewayCrlNextUpdateWithin14Days')?.expr).toContain('< 14 * 86400');
    expect(byName.get('NemsGatewayHigh5xxRate')?.expr).toContain('status_class="5xx"');
    expect(byName.get('NemsGatewayRejectionSpike')?.expr).toContain('by (instance, code)');
    expect(byName.get('NemsGatewayPdsFailures')?.expr).toContain('result="unavailable"');
    expect(byName.get('NemsGatewayUpstreamLatencyHigh')?.expr).toContain('histogram_quantile(0.99');
    expect(byName.get('NemsGatewayReloadFailed')?.expr).toContain('nems_gateway_reload_last_failed');
    for (const rule of rules) {
      expect(rule.labels?.['severity'], rule.alert).toMatch(/^(info|warning|critical)$/);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
    }
  });
});
