// What this build is, for `nems-gateway --version` and the nems_gateway_build_info gauge (as Prometheus' own
// prometheus_build_info): the package version, the source revision when the image build recorded one
// (build-info.json beside package.json, written by deploy/image/build.mjs) and the Node.js version running it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../paths.js';

export interface BuildInfo {
  readonly version: string;
  /** Git commit the image was built from, or 'unknown' (a checkout run with npm start). */
  readonly revision: string;
  readonly nodeVersion: string;
}

const VERSION = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
const REVISION = /^[0-9a-f]{7,40}$/;

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Read once per process; values that do not look like a version or a commit become 'unknown' (they end up in labels). */
export function readBuildInfo(root: string = PROJECT_ROOT): BuildInfo {
  const version = readJson(join(root, 'package.json'))?.['version'];
  const revision = readJson(join(root, 'build-info.json'))?.['revision'];
  return {
    version: typeof version === 'string' && VERSION.test(version) ? version : 'unknown',
    revision: typeof revision === 'string' && REVISION.test(revision) ? revision : 'unknown',
    nodeVersion: process.version,
  };
}

let cached: BuildInfo | undefined;
export function buildInfo(): BuildInfo {
  return (cached ??= readBuildInfo());
}

/** The line `nems-gateway --version` prints. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `nems-gateway ${info.version} (revision ${info.revision}, node ${info.nodeVersion})`;
}
