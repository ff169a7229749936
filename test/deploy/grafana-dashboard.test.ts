import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import {
  aggregatedExposition, expositionNames, metricsInExpression, metricsWithEverySample, promtool, runPromtool,
} from './helpers.js';

const DASHBOARD = resolve(import.meta.dirname, '../../deploy/grafana/nems-gateway-dashboard.json');

interface Panel {
  type: string;
  id: number;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Array<{ expr: string; refId: string }>;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; schemaVersion: number; panels: Panel[] };
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Grafana's template variables, replaced by what they stand for so promtool can parse the expression. */
function asPromQl(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*');
}

describe('Grafana dashboard', () => {
  it('is valid dashboard JSON with a uid, unique panel ids and panels inside the 24-column grid', () => {
    expect(dashboard.uid).toBe('nems-gateway');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
    expect(queries.length).toBeGreaterThan(20);
  });

  it('references only metrics the gateway exports', async () => {
    const { families, samples } = expositionNames(await aggregatedExposition(metricsWithEverySample()));
    for (const { panel, expr } of queries) {
      const names = metricsInExpression(expr);
      expect(names.length, panel).toBeGreaterThan(0);
      for (const name of names) expect(families.has(name) || samples.has(name), `${panel}: ${name}`).toBe(true);
    }
  });

  it('shows request rate, latency, rejections by code, upstream, PDS cache ratio, TLS failures, connections, certificate days and reloads', () => {
    const all = queries.map((q) => q.expr).join('\n');
    for (const needed of [
      'nems_gateway_requests_total', 'nems_gateway_request_duration_seconds_bucket', 'sum by (code) (rate(nems_gateway_rejections_total',
      'nems_gateway_upstream_duration_seconds_bucket', 'nems_gateway_upstream_errors_total', 'cache=~"hit|coalesced"',
      'nems_gateway_tls_handshake_failures_total', 'nems_gateway_tls_connections_active', 'nems_gateway_certificate_expiry_remaining_seconds',
      'nems_gateway_reloads_total',
    ]) expect(all).toContain(needed);
  });

  it.skipIf(promtool.skip)('every panel query parses as PromQL (promtool check rules on them as recording rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nems-dashboard-'));
    try {
      const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: asPromQl(q.expr) }));
      const file = join(dir, 'dashboard-queries.yml');
      writeFileSync(file, toYaml({ groups: [{ name: 'dashboard', rules }] }));
      const run = runPromtool(['check', 'rules', file]);
      expect(run.output).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(run.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
