// Drives the real request lifecycle (src/pipeline/request-lifecycle.ts) in-process, without sockets: Fastify's
// inject() for this gateway. A request is plain data (method, target, raw header pairs, body bytes, which example
// endpoint's certificate sent it); the answer is the lifecycle's decision. The end-to-end suites send the same
// requests over real TLS.
import { configSchema, type Config } from '../../src/config/schema.js';
import { resolveEndpoint } from '../../src/identity/file-registry.js';
import type { Endpoint, EndpointRegistry, PeerFacts } from '../../src/identity/types.js';
import type { PdsLookup } from '../../src/pds/types.js';
import { createRequestContext } from '../../src/pipeline/context.js';
import { nodeHeaders } from '../../src/pipeline/node-headers.js';
import { RequestLifecycle, type Decision, type ForwardDecision } from '../../src/pipeline/request-lifecycle.js';
import { createStages, type StageDeps } from '../../src/pipeline/stages/index.js';
import { PASS, PayloadTooLargeError, STAGE_NAMES, type InboundRequest, type RequestContext, type StageName, type StageSet } from '../../src/pipeline/types.js';
import { EXAMPLE_ENDPOINTS, type ExampleEndpointName } from './endpoints.js';

/**
 * A Config with every `nems` default (the policy table's assumption) plus optional overrides, under
 * `policy.profile: strict` (the guide to the letter, which the tables were written against) unless `rest.policy` says.
 */
export function policyConfig(nems: Record<string, unknown> = {}, rest: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    server: { tls: { cert: '/x/cert.pem', key: '/x/key.pem', ca: '/x/ca.pem' } },
    registry: { path: '/x/registry.yaml' },
    nems,
    policy: { profile: 'strict' },
    ...rest,
  });
}

/** Builds `req.headers` from raw pairs as Node does (src/pipeline/node-headers.ts). */
export { nodeHeaders };

export interface InjectRequest {
  readonly method: string;
  /** The request target exactly as sent: path plus any query string. */
  readonly target: string;
  /** Raw name/value pairs in order. Content-Length is added for a body, as a client would. */
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: Buffer;
  /** Whose client certificate sent it (default gp-system); or the peer facts themselves. */
  readonly endpoint?: ExampleEndpointName | PeerFacts;
  readonly requestId?: string;
}

/** The peer facts of a verified certificate naming this endpoint (CN = SAN = FQDN, as Spine issues them). */
export function peerOf(endpoint: Endpoint): PeerFacts {
  return {
    certificate: { subjectCn: endpoint.fqdn, dnsNames: [endpoint.fqdn], fingerprint256: 'AB'.repeat(32) },
    remoteAddress: '127.0.0.1',
  };
}

/** The socket-free inbound request the edge would build; its body source refuses more than `limit` as the edge does. */
export function inboundRequest(r: InjectRequest): InboundRequest {
  const raw: [string, string][] = (r.headers ?? []).map(([name, value]) => [name, value.trim()]);
  if (r.body && !raw.some(([name]) => name.toLowerCase() === 'content-length')) raw.push(['Content-Length', String(r.body.length)]);
  const endpoint = r.endpoint ?? 'gp-system';
  const body = r.body ?? Buffer.alloc(0);
  return {
    method: r.method,
    target: r.target,
    headers: nodeHeaders(raw),
    rawHeaders: raw.flat(),
    peer: typeof endpoint === 'string' ? peerOf(EXAMPLE_ENDPOINTS[endpoint]) : endpoint,
    requestId: r.requestId ?? 'inject-request',
    readBody: (limit) => (body.length > limit ? Promise.reject(new PayloadTooLargeError('body over limit')) : Promise.resolve(body)),
  };
}

/** An in-memory endpoint registry (the example endpoints by default), resolving as the file registry does. */
export function registryOf(endpoints: readonly Endpoint[] = Object.values(EXAMPLE_ENDPOINTS)): EndpointRegistry {
  const byFqdn = new Map(endpoints.map((e) => [e.fqdn, e]));
  return { generation: 1, resolve: (peer) => resolveEndpoint(byFqdn, peer), endpoints: () => endpoints };
}

/** A PDS double that traces every number: for tests of the rules before the nhs-numbers stage. */
export const TRACE_EVERY_NUMBER: PdsLookup = {
  lookup: () => Promise.resolve({ result: 'traced', restricted: false }),
  ready: () => Promise.resolve({ ok: true, reason: 'test double' }),
  close: () => Promise.resolve(),
};

export interface TestLifecycleOptions {
  readonly pds?: PdsLookup;
  /** Run only these stages (route always runs): the others pass, as a filter chain with only the filter under test. */
  readonly only?: readonly StageName[];
  readonly endpoints?: readonly Endpoint[];
  /** Gateway clock in ms (each request's receivedAt). */
  readonly now?: () => number;
  readonly stageDeps?: Partial<StageDeps>;
}

/** The lifecycle the gateway runs, with the stages createStages builds from `config`. */
export function testLifecycle(config: Config, o: TestLifecycleOptions = {}): RequestLifecycle {
  const all = createStages(config, { pds: o.pds ?? TRACE_EVERY_NUMBER, ...o.stageDeps });
  const only = o.only;
  const stages: StageSet = only
    ? (Object.fromEntries(STAGE_NAMES.map((name) => [name, name === 'route' || only.includes(name) ? all[name] : { name, run: () => PASS }])) as StageSet)
    : all;
  return new RequestLifecycle({ config, registry: registryOf(o.endpoints), stages, ...(o.now ? { now: o.now } : {}) });
}

export function inject(lifecycle: RequestLifecycle, r: InjectRequest): Promise<Decision> {
  return lifecycle.run(inboundRequest(r));
}

/** `pass`, or `<status> <code>` (with the diagnostics when asked), for compact assertions. */
export function summary(decision: Decision, withDiagnostics = false): string {
  if (decision.action === 'forward') return 'pass';
  return `${decision.status} ${decision.code}${withDiagnostics ? ` ${decision.diagnostics}` : ''}`;
}

/** A header as the upstream receives it: looked up case-insensitively, repeats joined as Node joins them. */
export function forwardedHeader(decision: ForwardDecision, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(decision.headers)) {
    if (key.toLowerCase() !== lower || value === undefined) continue;
    return Array.isArray(value) ? value.join(', ') : String(value);
  }
  return undefined;
}

/** The context the lifecycle makes for a request, for unit tests of one stage (the one factory). */
export function contextFor(r: InjectRequest, receivedAt: number, endpoint?: Endpoint): RequestContext {
  const inbound = inboundRequest(r);
  const named = typeof r.endpoint === 'string' ? EXAMPLE_ENDPOINTS[r.endpoint] : EXAMPLE_ENDPOINTS['gp-system'];
  return createRequestContext(inbound, endpoint ?? named, receivedAt);
}
