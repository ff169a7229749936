// A short, stable hash of the effective configuration (file + environment overrides, validated, paths resolved),
// shown as nems_gateway_config_info{hash} so replicas running different configurations stand out on a dashboard.
// Object keys are sorted first, so the same settings written in another order hash the same.
import { createHash } from 'node:crypto';
import type { Config } from './schema.js';

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/** 16 hex digits of SHA-256 over the canonical JSON: enough to tell configurations apart, reveals no value. */
export function configFingerprint(config: Config): string {
  return createHash('sha256').update(JSON.stringify(canonical(config))).digest('hex').slice(0, 16);
}
