// The gateway under test, in its own process so its CPU and memory can be measured apart from the load generator:
// config/gateway.yaml with the documented environment overrides (ephemeral ports, upstream URL, log level), the
// benchmark's certificates, and the forwarding engine named on the command line. stdout (the log) is whatever the
// parent connected (the benchmark uses /dev/null). Talks to the parent over IPC.
import { join } from 'node:path';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { createLogger, stdoutDestination } from '../src/observability/logger.js';
import { DEFAULT_CONFIG_PATH } from '../src/paths.js';

export type GatewayChildMessage =
  | { readonly type: 'ready'; readonly port: number; readonly logLevel: string; readonly engine: string }
  | { readonly type: 'usage'; readonly userMicros: number; readonly systemMicros: number; readonly rssBytes: number; readonly inFlight: number; readonly inFlightMetric: number }
  | { readonly type: 'failed'; readonly problem: string };

async function main(): Promise<void> {
  const [pkiDir, engine, xmlParser = 'single-pass'] = process.argv.slice(2);
  if (xmlParser !== 'fast-xml-parser' && xmlParser !== 'single-pass') throw new Error('xml parser must be fast-xml-parser or single-pass');
  if (!pkiDir || (engine !== 'undici' && engine !== 'http-proxy')) throw new Error('usage: gateway-child <pki-dir> <undici|http-proxy>');
  const loaded = loadConfig(process.env.NEMS_GATEWAY_CONFIG ?? DEFAULT_CONFIG_PATH).config;
  const config: Config = {
    ...loaded,
    server: {
      ...loaded.server,
      tls: {
        ...loaded.server.tls,
        cert: join(pkiDir, 'server.pem'),
        key: join(pkiDir, 'server-key.pem'),
        ca: join(pkiDir, 'ca.pem'),
        crl: join(pkiDir, 'crl.pem'),
      },
    },
    upstream: { ...loaded.upstream, engine },
    nems: { ...loaded.nems, xmlParser },
  };
  const logger = createLogger(config.logging.level, stdoutDestination(config.logging));
  const app = await startApp({ config, logger });
  const send = (msg: GatewayChildMessage) => process.send?.(msg);
  send({ type: 'ready', port: app.gateway.port, logLevel: config.logging.level, engine });
  process.on('message', (msg: { type?: string }) => {
    if (msg?.type === 'usage') {
      const cpu = process.cpuUsage();
      const rssBytes = process.memoryUsage.rss();
      // Requests in flight as the gateway counts them and as /metrics reports them (nems_gateway_requests_in_flight).
      void app.metrics.render().then((exposition) => {
        const inFlightMetric = Number(/^nems_gateway_requests_in_flight (\d+)/m.exec(exposition.body)?.[1] ?? NaN);
        send({ type: 'usage', userMicros: cpu.user, systemMicros: cpu.system, rssBytes, inFlight: app.gateway.inFlight, inFlightMetric });
      });
    } else if (msg?.type === 'stop') {
      // A clean exit, so that --cpu-prof writes its profile.
      void app.stop().finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => void app.stop().finally(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.send?.({ type: 'failed', problem: (err as Error).message } satisfies GatewayChildMessage);
  process.exit(1);
});
