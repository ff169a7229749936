// Certificate → registered endpoint for the request lifecycle, resolved once per TLS connection and registry
// version: the edge makes one PeerFacts object per connection, so it is the cache key, and a registry reload
// (generation bump) resolves it again.
import type { EndpointLookup, EndpointRegistry, PeerFacts } from './types.js';

interface Resolved {
  readonly generation: number;
  readonly lookup: EndpointLookup;
}

const NO_IDENTITY: EndpointLookup = Object.freeze({ ok: false, reason: 'no-identity' });

export class EndpointResolver {
  readonly #resolved = new WeakMap<PeerFacts, Resolved>();

  constructor(private readonly registry: EndpointRegistry) {}

  /** A peer without a verified certificate has no identity; the registry is not asked. */
  resolve(peer: PeerFacts): EndpointLookup {
    const registry = this.registry;
    const cached = this.#resolved.get(peer);
    if (cached && cached.generation === registry.generation) return cached.lookup;
    const lookup = peer.certificate ? registry.resolve(peer.certificate) : NO_IDENTITY;
    this.#resolved.set(peer, { generation: registry.generation, lookup });
    return lookup;
  }
}
