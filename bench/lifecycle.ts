// `npm run bench:lifecycle`: the CPU the gateway's own request path costs, without sockets — the request lifecycle
// (certificate → endpoint, every stage, the forward plan) run in-process on the benchmark's three requests with the
// shipped configuration (config/gateway.yaml: compatible profile, local PDS data with its cache, JWT cache on). TLS,
// HTTP parsing and forwarding are left out: they are Node's and undici's, measured end to end by `npm run bench`
// and against nginx. Repeatable within a few percent where the end-to-end figures move ±30 % on a shared machine,
// so it is the measure used to judge a change to the request path (docs/benchmark.md).
import { loadConfig } from '../src/config/load.js';
import { DEFAULT_CONFIG_PATH } from '../src/paths.js';
import { openEndpointRegistry } from '../src/identity/open-registry.js';
import { createLogger } from '../src/observability/logger.js';
import { openPdsLookup } from '../src/pds/index.js';
import { RequestLifecycle } from '../src/pipeline/request-lifecycle.js';
import { createStages } from '../src/pipeline/stages/index.js';
import { EXAMPLE_ENDPOINTS } from '../test/helpers/endpoints.js';
import { inboundRequest, peerOf } from '../test/helpers/inject.js';
import { buildScenarios, SCENARIO_NAMES, type ScenarioName } from './scenarios.js';

const ROUNDS = 5;
const OPS: Readonly<Record<ScenarioName, number>> = { get: 60_000, create: 30_000, publish: 10_000 };

async function main(): Promise<number> {
  const only = process.argv.slice(2).filter((a) => SCENARIO_NAMES.includes(a as ScenarioName)) as ScenarioName[];
  const { config } = loadConfig(DEFAULT_CONFIG_PATH);
  const logger = createLogger('silent');
  const registry = await openEndpointRegistry(config, { logger });
  const pds = await openPdsLookup(config, { logger });
  const lifecycle = new RequestLifecycle({ config, registry, stages: createStages(config, { pds: pds.lookup }) });
  const scenarios = buildScenarios();
  const rows: string[] = [];
  for (const name of only.length ? only : SCENARIO_NAMES) {
    const scenario = scenarios[name];
    const endpoint = EXAMPLE_ENDPOINTS[scenario.client];
    const peer = peerOf(endpoint);
    const headers = Object.entries(scenario.request.headers).map(([k, v]) => [k, String(v)] as const);
    const body = scenario.request.body === undefined ? undefined : Buffer.from(scenario.request.body);
    const make = () => inboundRequest({ method: scenario.request.method, target: scenario.request.path, headers, ...(body ? { body } : {}), endpoint: peer });
    // The decision must be a forward, or the figure measures a rejection.
    const first = await lifecycle.run(make());
    if (first.action !== 'forward') throw new Error(`${name}: the lifecycle refused the benchmark request (${first.code} ${first.diagnostics})`);
    const perOp: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const inbound = Array.from({ length: OPS[name] }, make);
      global.gc?.();
      const before = process.cpuUsage();
      for (const request of inbound) await lifecycle.run(request);
      const used = process.cpuUsage(before);
      perOp.push((used.user + used.system) / OPS[name]);
    }
    perOp.sort((a, b) => a - b);
    rows.push(`${name.padEnd(8)} ${perOp[0]!.toFixed(1).padStart(7)} µs  (median ${perOp[Math.floor(ROUNDS / 2)]!.toFixed(1)}, ${OPS[name]} requests × ${ROUNDS})`);
  }
  await pds.lookup.close();
  await registry.close?.();
  process.stdout.write(`lifecycle CPU per request (best of ${ROUNDS} rounds, shipped config; node ${process.version})\n${rows.join('\n')}\n`);
  return 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
