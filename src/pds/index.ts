// Picks the PDS lookup the config names (local traced-number store or PDS FHIR API) and puts the cache in front.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { CachedPdsLookup } from './cache.js';
import { PdsFhirClient } from './fhir-client.js';
import { LocalPdsStore } from './local-store.js';
import type { PdsLookup, PdsObserver } from './types.js';

export interface PdsHandle {
  /** What the nhs-numbers stage uses: the cached lookup. */
  readonly lookup: PdsLookup;
  /** The cache itself, for invalidate(). */
  readonly cache: CachedPdsLookup;
  /** Present when pds.kind is local: reload() it on SIGHUP or file change (the cache notices the new generation). */
  readonly local?: LocalPdsStore;
}

/**
 * Builds the lookup without I/O beyond reading the PDS private key. A local store starts unloaded (lookups fail
 * closed with PdsUnavailableError) until `local.reload()` resolves; `openPdsLookup` does both.
 */
export function createPdsLookup(config: Config, opts: { observer?: PdsObserver; logger?: Logger } = {}): PdsHandle {
  const pds = config.pds;
  const cacheOptions = { ...pds.cache, ...(opts.observer ? { observer: opts.observer } : {}) };
  if (pds.kind === 'fhir') {
    if (!pds.fhir) throw new Error('pds.fhir is required when pds.kind is fhir');
    const client = new PdsFhirClient(pds.fhir, opts.logger ? { logger: opts.logger } : {});
    const cache = new CachedPdsLookup(client, cacheOptions);
    return { lookup: cache, cache };
  }
  const local = new LocalPdsStore(pds.local.path);
  const cache = new CachedPdsLookup(local, { ...cacheOptions, generation: () => local.generation });
  return { lookup: cache, cache, local };
}

/** createPdsLookup, then loads the local store; rejects with a message naming the bad entry if it cannot. */
export async function openPdsLookup(config: Config, opts: { observer?: PdsObserver; logger?: Logger } = {}): Promise<PdsHandle> {
  const handle = createPdsLookup(config, opts);
  await handle.local?.reload();
  return handle;
}

export { CachedPdsLookup } from './cache.js';
export { PdsFhirClient } from './fhir-client.js';
export { LocalPdsStore, LocalPdsStoreError } from './local-store.js';
