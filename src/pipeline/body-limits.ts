// The request-body byte cap per NEMS operation (docs/specification.md §2.1: publish 3 MB; §8: no stated subscription cap),
// shared by the read-body and body stages so both enforce the same number.
import type { Config } from '../config/schema.js';
import type { NemsOperation } from '../nems/operations.js';

/** Publish: nems.publishMaxBytes; create: nems.subscriptionMaxBytes; anything else: server.limits.maxBodyBytes. */
export function bodyLimitFor(config: Config, operation: NemsOperation | undefined): number {
  if (operation === 'publish') return config.nems.publishMaxBytes;
  if (operation === 'create') return config.nems.subscriptionMaxBytes;
  return config.server.limits.maxBodyBytes;
}
