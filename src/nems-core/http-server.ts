// The embedded NEMS core as a plain HTTP server (`nems-gateway core`), so it can sit behind the gateway over HTTP as
// Spine would, plus the `mailbox` command that lists or follows a MESH-style outbox folder.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { readCommandArgs, usageError, type CommandSpec, type OptionSpecs } from '../cli/args.js';
import { configPathFromEnv, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LocalPdsStore } from '../pds/local-store.js';
import { readBody } from '../edge/read-body.js';
import { isPayloadTooLarge } from '../pipeline/types.js';
import { RulePolicy } from '../rules/policy.js';
import { createNemsCore, type CoreResponse, type NemsCore } from './core.js';
import { patientDirectoryFromLocalPds } from './embedded-upstream-factory.js';
import { isMailboxId } from '../nems/identifiers.js';
import { meshDeliveryHook } from './mesh-outbox.js';
import { listMailbox, tailMailbox, type MailboxMessage } from './outbox.js';

export interface CoreServerOptions {
  readonly core: NemsCore;
  readonly host: string;
  /** 0 for an ephemeral port. */
  readonly port: number;
  /** Body cap; the core's largest (publish, 3 MB) by default. */
  readonly maxBodyBytes?: number;
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly keepAliveTimeoutMs?: number;
}

export interface RunningCoreServer {
  readonly server: Server;
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  /** Stops listening and closes connections; the core itself stays open (its owner closes it). */
  close(): Promise<void>;
}

export async function startCoreServer(options: CoreServerOptions): Promise<RunningCoreServer> {
  const { core } = options;
  const maxBodyBytes = options.maxBodyBytes ?? core.maxBodyBytes;
  const server = createServer(
    {
      maxHeaderSize: 16_384,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    },
    (req, res) => {
      void serve(core, maxBodyBytes, req, res);
    },
  );
  server.maxHeadersCount = 100;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    server,
    port,
    url: `http://${hostForUrl}:${port}`,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}

async function serve(core: NemsCore, maxBodyBytes: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const request = { url: req.url ?? '/', headers: req.headers };
  try {
    const body = await readBody(req, maxBodyBytes);
    const response = await core.handle({ method: req.method ?? 'GET', ...request, ...(body.length > 0 ? { body } : {}) });
    send(res, response, false);
  } catch (err) {
    if (isPayloadTooLarge(err)) {
      return send(res, core.errorResponse('PAYLOAD_TOO_LARGE', `The request body exceeds ${maxBodyBytes} bytes`, request), true);
    }
    // The client went away or sent a broken body: nothing sensible can be answered.
    res.destroy();
  }
}

function send(res: ServerResponse, response: CoreResponse, closeConnection: boolean): void {
  if (res.headersSent || res.destroyed) return;
  // After an over-long body the rest of it is still on the socket: close rather than read it.
  res.writeHead(response.status, closeConnection ? { ...response.headers, connection: 'close' } : response.headers);
  res.end(response.body);
}

// ---------------------------------------------------------------------------------------------------------------
// Commands

/** Config when one can be loaded (for the data directory, lifecycle table and local PDS); undefined otherwise. */
function tryLoadConfig(explicit: string | undefined): Config | undefined {
  try {
    return loadConfig(configPathFromEnv(explicit)).config;
  } catch (err) {
    if (explicit) throw err;
    return undefined;
  }
}

function dataDirFrom(dataDirOption: string | undefined, config: Config | undefined): string | undefined {
  if (dataDirOption !== undefined) return resolve(dataDirOption);
  return config?.core.dataDir;
}

export const CORE_COMMAND = {
  name: 'core',
  usage: `usage: nems-gateway core [--port N] [--host H] [--data-dir D] [--base-url U] [--config F]

Runs the embedded reference NEMS core as a plain HTTP server (put the gateway in front of it with
upstream.kind: http). Runs until SIGTERM or SIGINT.

options:
  --port N        port to listen on, 1-65535 (default 9000)
  --host H        address to listen on (default 127.0.0.1)
  --data-dir D    the core's SQLite store and MESH outbox (default: core.dataDir of the configuration)
  --base-url U    base URL for Location headers (default http://H:N plus the configuration's nems.pathPrefix)
  --config F      configuration for the data folder, event lifecycle table, path prefix and local PDS data
                  (default: $NEMS_GATEWAY_CONFIG, else config/gateway.yaml when readable)
  -h, --help      print this help
`,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    'base-url': { type: 'string' },
    config: { type: 'string' },
  },
} as const satisfies CommandSpec<OptionSpecs>;

/**
 * `nems-gateway core`. The config file (if readable) supplies the data directory, lifecycle table, path prefix and
 * local PDS data. Returns -1 once listening (keep running); SIGINT/SIGTERM close the server and the store.
 */
export async function runCoreCommand(argv: string[]): Promise<number> {
  const args = readCommandArgs(CORE_COMMAND, argv);
  if (typeof args === 'number') return args;
  const options = args.values;
  const host = options.host ?? '127.0.0.1';
  const port = options.port !== undefined ? Number(options.port) : 9000;
  // Not 0: Location headers carry the port, so it must be known before the core is built.
  if (!/^\d+$/.test(options.port ?? '9000') || port < 1 || port > 65535) return usageError(CORE_COMMAND, '--port must be 1-65535');
  if (options['base-url'] !== undefined && !URL.canParse(options['base-url'])) return usageError(CORE_COMMAND, '--base-url must be a URL');
  let config: Config | undefined;
  try {
    config = tryLoadConfig(options.config);
  } catch (err) {
    process.stderr.write(`nems-gateway core: ${(err as Error).message}\n`);
    return 2;
  }
  const dataDir = dataDirFrom(options['data-dir'], config);
  if (!dataDir) return usageError(CORE_COMMAND, 'no configuration found; pass --data-dir D (or --config F)');
  const pathPrefix = config?.nems.pathPrefix ?? '/STU3';
  let local: LocalPdsStore | undefined;
  if (config?.pds.kind === 'local') local = await LocalPdsStore.open(config.pds.local.path);
  // Spine's Location names Spine's own host; the standalone core names its own address unless told otherwise.
  const explicitBaseUrl = options['base-url'];
  const mesh = config?.core.delivery === 'mesh' ? meshDeliveryHook(dataDir, config.core.mesh!) : undefined;
  const core = createNemsCore({
    ...(mesh ? { deliver: mesh.deliver } : {}),
    dataDir,
    baseUrl: explicitBaseUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}${pathPrefix}`,
    pathPrefix,
    ...(config
      ? {
          lifecycle: config.core.lifecycle,
          maxPublishBytes: config.nems.publishMaxBytes,
          maxSubscriptionBytes: config.nems.subscriptionMaxBytes,
          acceptLegacyPublishInteractionIds: config.nems.acceptLegacyPublishInteractionIds,
          deliveryLeaseMs: config.core.deliveryLeaseMs,
          deliverySweepMs: config.core.deliverySweepMs,
          // The gateway in front of this core reports what config.policy reports: the core must not refuse it.
          policy: RulePolicy.fromConfig(config),
        }
      : {}),
    ...(local ? { patientDirectory: patientDirectoryFromLocalPds(local) } : {}),
  });
  try {
    await mesh?.open();
  } catch (err) {
    await core.close();
    process.stderr.write(`nems-gateway core: cannot open MESH delivery (${(err as Error).message})\n`);
    return 1;
  }
  let running: RunningCoreServer;
  try {
    running = await startCoreServer({ core, host, port });
  } catch (err) {
    await core.close();
    await mesh?.close();
    process.stderr.write(`nems-gateway core: cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? 'error'})\n`);
    return 1;
  }
  process.stdout.write(`NEMS core listening on ${running.url}${pathPrefix} (data ${dataDir})\n`);
  const stop = () => {
    void running.close().then(() => core.close()).then(() => mesh?.close()).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}

export function formatMailboxLine(message: MailboxMessage): string {
  const c = message.control;
  return `${c.timestamp}  ${c.messageId}  ${c.workflowId}  Mex-Partnerid=${c.mexPartnerId ?? '-'}  ${c.eventCode}`;
}

export const MAILBOX_COMMAND = {
  name: 'mailbox',
  usage: `usage: nems-gateway mailbox <mailbox-id> [--follow] [--data-dir D] [--config F]
       nems-gateway mailbox <mailbox-id> --mesh --password-file F [--ack] [--save DIR] [--config F]

Lists the messages the embedded core delivered to a MESH-style mailbox, one line each: time, message id,
workflow id, Mex-Partnerid, event code.

options:
  --follow        keep printing new messages until interrupted
  --data-dir D    the core's data folder (default: core.dataDir of the configuration)
  --config F      configuration to take core.dataDir (or core.mesh) from (default: $NEMS_GATEWAY_CONFIG, else
                  config/gateway.yaml when readable)
  --mesh          read the mailbox's inbox on the MESH API of core.mesh instead of the folder
  --password-file F  with --mesh: the mailbox's MESH password
  --save DIR      with --mesh: write each message body to DIR
  --ack           with --mesh: acknowledge each message read
  -h, --help      print this help
`,
  options: {
    follow: { type: 'boolean' }, 'data-dir': { type: 'string' }, config: { type: 'string' },
    mesh: { type: 'boolean' }, ack: { type: 'boolean' }, 'password-file': { type: 'string' }, save: { type: 'string' },
  },
  positionals: { min: 1, max: 1, name: 'mailbox-id' },
} as const satisfies CommandSpec<OptionSpecs>;

/** `nems-gateway mailbox <id>`: one line per delivered message. With --follow, keeps printing new ones until interrupted. */
export async function runMailboxCommand(argv: string[]): Promise<number> {
  const args = readCommandArgs(MAILBOX_COMMAND, argv);
  if (typeof args === 'number') return args;
  const options = args.values;
  const mailboxId = args.positionals[0]!;
  if (!isMailboxId(mailboxId)) return usageError(MAILBOX_COMMAND, `'${mailboxId}' is not a mailbox id`);
  let dataDir: string | undefined;
  try {
    dataDir = dataDirFrom(options['data-dir'], options['data-dir'] === undefined ? tryLoadConfig(options.config) : undefined);
  } catch (err) {
    process.stderr.write(`nems-gateway mailbox: ${(err as Error).message}\n`);
    return 2;
  }
  // --mesh: the mailbox's inbox on the MESH API (core.mesh), not the folder.
  if (options.mesh) return (await import('../mesh/mailbox-command.js')).runMeshMailbox(mailboxId, options, tryLoadConfig(options.config));
  if (!dataDir) return usageError(MAILBOX_COMMAND, 'no configuration found; pass --data-dir D (or --config F)');
  const existing = listMailbox(dataDir, mailboxId);
  for (const message of existing) process.stdout.write(`${formatMailboxLine(message)}\n`);
  if (!options.follow) {
    if (existing.length === 0) process.stderr.write(`mailbox ${mailboxId}: no messages\n`);
    return 0;
  }
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await tailMailbox(dataDir, mailboxId, (m) => process.stdout.write(`${formatMailboxLine(m)}\n`), abort.signal);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return 0;
}
