// Picks the endpoint registry config.registry.kind names: the YAML file, or SDS plus the local overlay.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { FileEndpointRegistry } from './file-registry.js';
import type { EndpointRegistry } from './types.js';

export interface OpenedRegistry extends EndpointRegistry {
  /** Re-reads the registry file (kind file) or the overlay (kind sds); throws and keeps the one in force on error. */
  reload(): void;
  /** Readiness for /readyz (kind sds: a copy younger than maxStaleMs is in force). */
  ready?(): Promise<{ ok: boolean; reason: string }>;
  close?(): Promise<void>;
}

export async function openEndpointRegistry(config: Config, opts: { logger?: Logger; metricsRegistry?: Registry } = {}): Promise<OpenedRegistry> {
  if (config.registry.kind === 'file') return new FileEndpointRegistry(config.registry.path);
  const { SdsEndpointRegistry } = await import('./sds-registry.js');
  const registry = new SdsEndpointRegistry(config.registry, {
    ...(opts.logger ? { logger: opts.logger.child({ component: 'sds-registry' }) } : {}),
    ...(opts.metricsRegistry ? { metricsRegistry: opts.metricsRegistry } : {}),
  });
  await registry.start();
  return registry;
}
