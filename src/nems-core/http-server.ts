// The embedded NEMS core as a plain HTTP server (`nems-gateway core`), so it can sit behind the gateway over HTTP as
// Spine would, plus the `mailbox` command that lists or follows a MESH-style outbox folder.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from '../cli/args.js';
import { configPathFromEnv, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LocalPdsStore } from '../pds/local-store.js';
import { createNemsCore, type CoreResponse, type NemsCore } from './core.js';
import { patientDirectoryFromLocalPds } from './embedded-upstream-factory.js';
import { listMailbox, MAILBOX_ID_PATTERN, tailMailbox, type MailboxMessage } from './outbox.js';

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
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBodyBytes) {
      return send(res, core.errorResponse('PAYLOAD_TOO_LARGE', `The request body exceeds ${maxBodyBytes} bytes`, request), true);
    }
    const body = await readBody(req, maxBodyBytes);
    if (body === 'too-large') {
      return send(res, core.errorResponse('PAYLOAD_TOO_LARGE', `The request body exceeds ${maxBodyBytes} bytes`, request), true);
    }
    const response = await core.handle({ method: req.method ?? 'GET', ...request, ...(body.length > 0 ? { body } : {}) });
    send(res, response, false);
  } catch {
    // The client went away or sent a broken body: nothing sensible can be answered.
    res.destroy();
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        resolveBody('too-large');
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (!done) resolveBody(Buffer.concat(chunks, size));
    });
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('aborted')));
  });
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
function tryLoadConfig(options: Record<string, string | true>, required: boolean): Config | undefined {
  const explicit = typeof options.config === 'string' ? options.config : undefined;
  try {
    return loadConfig(configPathFromEnv(explicit)).config;
  } catch (err) {
    if (required || explicit) throw err;
    return undefined;
  }
}

function dataDirFrom(options: Record<string, string | true>, config: Config | undefined): string | undefined {
  if (typeof options['data-dir'] === 'string') return resolve(options['data-dir']);
  return config?.core.dataDir;
}

/**
 * `nems-gateway core [--port N] [--host H] [--data-dir D] [--base-url U] [--config F]`. The config file (if
 * readable) supplies the data directory, lifecycle table, path prefix and local PDS data. Returns -1 once
 * listening (keep running); SIGINT/SIGTERM close the server and the store.
 */
export async function runCoreCommand(argv: string[]): Promise<number> {
  let options: Record<string, string | true>;
  let config: Config | undefined;
  try {
    options = parseArgs(argv).options;
    config = tryLoadConfig(options, false);
  } catch (err) {
    process.stderr.write(`nems-gateway core: ${(err as Error).message}\n`);
    return 2;
  }
  const host = typeof options.host === 'string' ? options.host : '127.0.0.1';
  const port = typeof options.port === 'string' ? Number(options.port) : 9000;
  // Not 0: Location headers carry the port, so it must be known before the core is built.
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write('nems-gateway core: --port must be 1-65535\n');
    return 2;
  }
  const dataDir = dataDirFrom(options, config);
  if (!dataDir) {
    process.stderr.write('nems-gateway core: no configuration found; pass --data-dir D (or --config F)\n');
    return 2;
  }
  const pathPrefix = config?.nems.pathPrefix ?? '/STU3';
  let local: LocalPdsStore | undefined;
  if (config?.pds.kind === 'local') local = await LocalPdsStore.open(config.pds.local.path);
  // Spine's Location names Spine's own host; the standalone core names its own address unless told otherwise.
  const explicitBaseUrl = typeof options['base-url'] === 'string' ? options['base-url'] : undefined;
  const core = createNemsCore({
    dataDir,
    baseUrl: explicitBaseUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}${pathPrefix}`,
    pathPrefix,
    ...(config
      ? {
          lifecycle: config.core.lifecycle, maxPublishBytes: config.nems.publishMaxBytes, maxSubscriptionBytes: config.nems.subscriptionMaxBytes,
          deliveryLeaseMs: config.core.deliveryLeaseMs, deliverySweepMs: config.core.deliverySweepMs,
        }
      : {}),
    ...(local ? { patientDirectory: patientDirectoryFromLocalPds(local) } : {}),
  });
  let running: RunningCoreServer;
  try {
    running = await startCoreServer({ core, host, port });
  } catch (err) {
    await core.close();
    process.stderr.write(`nems-gateway core: cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? 'error'})\n`);
    return 1;
  }
  process.stdout.write(`NEMS core listening on ${running.url}${pathPrefix} (data ${dataDir})\n`);
  const stop = () => {
    void running.close().then(() => core.close()).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}

export function formatMailboxLine(message: MailboxMessage): string {
  const c = message.control;
  return `${c.timestamp}  ${c.messageId}  ${c.workflowId}  Mex-Partnerid=${c.mexPartnerId ?? '-'}  ${c.eventCode}`;
}

/**
 * `nems-gateway mailbox <id> [--follow] [--data-dir D] [--config F]`: one line per delivered message (time,
 * message id, workflow id, Mex-Partnerid, event code). With --follow, keeps printing new ones until interrupted.
 */
export async function runMailboxCommand(argv: string[]): Promise<number> {
  let options: Record<string, string | true>;
  let positionals: string[];
  let dataDir: string | undefined;
  try {
    ({ options, positionals } = parseArgs(argv, ['follow']));
    dataDir = dataDirFrom(options, typeof options['data-dir'] === 'string' ? undefined : tryLoadConfig(options, false));
  } catch (err) {
    process.stderr.write(`nems-gateway mailbox: ${(err as Error).message}\n`);
    return 2;
  }
  const mailboxId = positionals[0];
  if (!mailboxId || positionals.length !== 1 || !MAILBOX_ID_PATTERN.test(mailboxId)) {
    process.stderr.write('usage: nems-gateway mailbox <mailbox-id> [--follow] [--data-dir D]\n');
    return 2;
  }
  if (!dataDir) {
    process.stderr.write('nems-gateway mailbox: no configuration found; pass --data-dir D (or --config F)\n');
    return 2;
  }
  const existing = listMailbox(dataDir, mailboxId);
  for (const message of existing) process.stdout.write(`${formatMailboxLine(message)}\n`);
  if (options.follow !== true) {
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
