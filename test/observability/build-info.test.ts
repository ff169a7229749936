// Operator conveniences: `nems-gateway --version`, nems_gateway_build_info and nems_gateway_config_info.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFingerprint } from '../../src/config/fingerprint.js';
import { configSchema } from '../../src/config/schema.js';
import { readBuildInfo, versionLine } from '../../src/observability/build-info.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { runCli } from '../cli/run-cli.js';
import { metricLabels, metricSum } from '../helpers/ops-admin.js';

const PACKAGE_VERSION = (await import('../../package.json', { with: { type: 'json' } })).default.version;

function folderWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nems-build-info-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('build info', () => {
  it('reads the package version and the revision the image build recorded', () => {
    const dir = folderWith({ 'package.json': '{"version":"1.2.3"}', 'build-info.json': '{"revision":"0123456789abcdef0123456789abcdef01234567"}' });
    try {
      expect(readBuildInfo(dir)).toEqual({ version: '1.2.3', revision: '0123456789abcdef0123456789abcdef01234567', nodeVersion: process.version });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('says unknown for a missing build-info.json and for values that are not a version or a commit', () => {
    const dir = folderWith({ 'package.json': '{"version":"1.2.3\\"} 1\\n"}', 'build-info.json': '{"revision":"main; rm -rf"}' });
    try {
      expect(readBuildInfo(dir)).toMatchObject({ version: 'unknown', revision: 'unknown' });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('nems-gateway --version prints the package version, revision and Node.js version, exit 0', async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`nems-gateway ${PACKAGE_VERSION} (revision unknown, node ${process.version})\n`);
    expect(versionLine()).toBe(result.stdout.trim());
  });

  it('exposes nems_gateway_build_info{version,revision,node_version} 1', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const text = (await metrics.render()).body;
    expect(metricLabels(text, 'nems_gateway_build_info')).toEqual([{ version: PACKAGE_VERSION, revision: 'unknown', node_version: process.version }]);
    expect(metricSum(text, 'nems_gateway_build_info')).toBe(1);
  });
});

describe('config info', () => {
  const base = { server: { tls: { cert: 'c', key: 'k', ca: 'a' } }, registry: { path: 'r' } };

  it('fingerprints the effective configuration: key order does not matter, a changed value does', () => {
    const one = configFingerprint(configSchema.parse({ ...base, nems: { toAsid: '200000000306', pathPrefix: '/STU3' } }));
    const reordered = configFingerprint(configSchema.parse({ nems: { pathPrefix: '/STU3', toAsid: '200000000306' }, registry: { path: 'r' }, server: base.server }));
    const changed = configFingerprint(configSchema.parse({ ...base, nems: { toAsid: '200000000307' } }));
    expect(one).toMatch(/^[0-9a-f]{16}$/);
    expect(reordered).toBe(one);
    expect(changed).not.toBe(one);
  });

  it('exposes nems_gateway_config_info{hash} 1 for the configuration in force only', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configLoaded('0123456789abcdef');
    metrics.configLoaded('fedcba9876543210');
    const text = (await metrics.render()).body;
    expect(metricLabels(text, 'nems_gateway_config_info')).toEqual([{ hash: 'fedcba9876543210' }]);
    metrics.configLoaded('not a hash');
    expect(metricLabels((await metrics.render()).body, 'nems_gateway_config_info')).toEqual([{ hash: 'other' }]);
  });
});
