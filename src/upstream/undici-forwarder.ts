// The fast forwarding engine: undici 7 Pool with keep-alive, one pool per upstream client certificate.
// Requests go through the low-level dispatch() handler API rather than request(): no AbortController, no body
// stream and no stream pipeline per request (together about a fifth of the gateway's CPU per request). Responses up
// to BUFFER_LIMIT bytes are relayed in one write (one TLS record and one syscall to the client); larger ones
// stream with backpressure.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { buildConnector, Dispatcher, Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { dropInterimResponses } from './interim-responses.js';
import { tcpReachable } from './reachability.js';
import { endToEndResponseHeaders } from './response-headers.js';
import { HOP_BY_HOP_HEADERS, endToEndRequestHeaders, headersToDrop, UpstreamError, type ForwardRequest, type ForwardResult, type Upstream, type UpstreamReadiness } from './types.js';

type Undici = typeof import('undici');
let undici: Undici | undefined;
/**
 * undici's public entry, loaded when the first forwarder is built rather than at import: a gateway on the embedded
 * core never pays its memory (about 9 MB of RSS more than its Pool file alone; README "Performance").
 */
function loadUndici(): Undici {
  return (undici ??= createRequire(import.meta.url)('undici') as Undici);
}

/** Responses up to this size are collected and written to the client at once. */
const BUFFER_LIMIT = 64 * 1024;

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestStart']>>[0];

export class UndiciForwarder implements Upstream {
  readonly kind = 'http:undici';
  readonly #origin: URL;
  readonly #host: string;
  readonly #basePath: string;
  readonly #pools = new Map<string, Pool>();

  constructor(private readonly config: UpstreamConfig) {
    if (!config.url) throw new Error('upstream.url is required for the HTTP forwarder');
    this.#origin = new URL(config.url);
    this.#host = this.#origin.host;
    this.#basePath = this.#origin.pathname.replace(/\/$/, '');
  }

  #pool(request: ForwardRequest): Pool {
    const clientCert = request.asid?.upstreamClientCertificate;
    const key = clientCert ? `asid:${request.asid!.asid}` : 'default';
    let pool = this.#pools.get(key);
    if (!pool) {
      const tls = this.config.tls;
      const certPath = clientCert?.cert ?? tls?.cert;
      const keyPath = clientCert?.key ?? tls?.key;
      const { Pool: UndiciPool, buildConnector: buildUndiciConnector } = loadUndici();
      // undici's own connector, with every new socket passed through the 1xx filter (interim-responses.ts).
      const connector = buildUndiciConnector({
        timeout: this.config.connectTimeoutMs,
        ...(this.#origin.protocol === 'https:'
          ? {
              ...(tls?.ca ? { ca: readFileSync(tls.ca) } : {}),
              ...(certPath ? { cert: readFileSync(certPath) } : {}),
              ...(keyPath ? { key: readFileSync(keyPath) } : {}),
              ...(tls?.servername ? { servername: tls.servername } : {}),
              minVersion: 'TLSv1.2' as const,
              rejectUnauthorized: true,
            }
          : {}),
      });
      pool = new UndiciPool(this.#origin.origin, {
        connections: this.config.maxSockets,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.config.timeoutMs,
        bodyTimeout: this.config.timeoutMs,
        connect: (options: buildConnector.Options, callback: buildConnector.Callback) =>
          connector(options, (...result: Parameters<buildConnector.Callback>) => {
            const socket = result[1] as Socket | null;
            if (socket) dropInterimResponses(socket);
            callback(...result);
          }),
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  forward(request: ForwardRequest, clientRequest: IncomingMessage, res: ServerResponse): Promise<ForwardResult> {
    const started = performance.now();
    // The client left while the request was being checked: nothing goes upstream (its 'close' has already fired).
    if (res.destroyed) return Promise.reject(new UpstreamError('aborted', 'client went away'));
    const headers = { ...endToEndRequestHeaders(request.headers), host: this.#host } as Record<string, string | string[]>;
    return new Promise<ForwardResult>((resolve, reject) => {
      let controller: Controller | undefined;
      let clientGone = false;
      let responseEnded = false;
      let settled = false;
      let status = 0;
      let responseHeaders: ReturnType<typeof endToEndResponseHeaders> = {};
      let chunks: Buffer[] | undefined = [];
      let buffered = 0;

      // The client going away (before the response is complete) must take the upstream request with it.
      const onClose = () => {
        if (res.writableFinished) return;
        clientGone = true;
        // Upstream done but the client left before taking all of it: nothing left to abort upstream.
        if (responseEnded) fail(new Error('client went away'));
        else controller?.abort(new Error('client went away'));
      };
      const cleanup = () => {
        res.off('close', onClose);
        clientRequest.off('error', onClose);
      };
      const succeed = () => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve({ status, upstreamMs: performance.now() - started });
      };
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        if (res.headersSent) {
          // Part of the answer has gone to the client: the only honest signal left is to end the connection short
          // of the length it was promised, which the client detects.
          res.destroy();
          reject(new UpstreamError('aborted', 'upstream response interrupted', { cause: err }));
          return;
        }
        // Nothing reached the client yet (a response under BUFFER_LIMIT is still being collected): a 502 or 504.
        chunks = undefined;
        reject(toUpstreamError(err, clientGone));
      };
      /** Switches from collecting to streaming: the head and what was collected go out now. */
      const startStreaming = () => {
        res.writeHead(status, responseHeaders);
        for (const chunk of chunks!) res.write(chunk);
        chunks = undefined;
      };

      res.once('close', onClose);
      clientRequest.once('error', onClose);

      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          if (clientGone) c.abort(new Error('client went away'));
        },
        onResponseStart(_c, statusCode, upstreamHeaders) {
          // Interim answers are never relayed (interim-responses.ts removes them before the parser; this is the rest).
          if (statusCode < 200) return;
          status = statusCode;
          responseHeaders = relayedHeaders(upstreamHeaders);
        },
        onResponseData(c, chunk) {
          if (chunks) {
            chunks.push(chunk);
            buffered += chunk.length;
            if (buffered <= BUFFER_LIMIT) return;
            startStreaming();
            return;
          }
          if (!res.write(chunk)) {
            c.pause();
            res.once('drain', () => c.resume());
          }
        },
        onResponseEnd() {
          responseEnded = true;
          if (chunks) {
            // Head and body in one write (one TLS record run, one syscall): Node writes the head on its own before a
            // Buffer body unless the socket is corked; end() uncorks it fully.
            res.cork();
            res.writeHead(status, responseHeaders);
            res.end(chunks.length === 1 ? chunks[0] : chunks.length === 0 ? undefined : Buffer.concat(chunks, buffered));
          } else {
            res.end();
          }
          // Resolved once the response is handed to the socket, as the stream pipeline did.
          if (res.writableFinished) succeed();
          else res.once('finish', succeed);
        },
        onResponseError(_c, err) {
          fail(err);
        },
      };
      try {
        this.#pool(request).dispatch(
          { method: request.method as Dispatcher.HttpMethod, path: this.#basePath + request.url, headers, body: request.body ?? null },
          handler,
        );
      } catch (err) {
        fail(err);
      }
    });
  }

  ready(): Promise<UpstreamReadiness> {
    return tcpReachable(this.#origin, this.config.connectTimeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.destroy()));
    this.#pools.clear();
  }
}

/** Drop sets by upstream Connection value: upstreams send the same one or two values on every response. */
const dropSets = new Map<string, ReadonlySet<string>>();

/**
 * endToEndResponseHeaders (the one definition of what crosses to the client) without building a new drop set for
 * every response: the set for a Connection value is computed once by headersToDrop and kept (bounded).
 */
function relayedHeaders(upstream: Record<string, string | string[] | undefined>): ReturnType<typeof endToEndResponseHeaders> {
  const connection = upstream['connection'];
  if (connection !== undefined && typeof connection !== 'string') return endToEndResponseHeaders(upstream);
  let drop = connection === undefined ? HOP_BY_HOP_HEADERS : dropSets.get(connection);
  if (drop === undefined) {
    drop = headersToDrop(connection);
    if (dropSets.size >= 32) dropSets.clear();
    if (connection!.length <= 256) dropSets.set(connection!, drop);
  }
  const out: ReturnType<typeof endToEndResponseHeaders> = {};
  for (const name of Object.keys(upstream)) {
    const value = upstream[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (!drop.has(lower)) out[lower] = value;
  }
  return out;
}

function toUpstreamError(err: unknown, clientAborted: boolean): UpstreamError {
  if (clientAborted) return new UpstreamError('aborted', 'client went away', { cause: err });
  const { HeadersTimeoutError, BodyTimeoutError } = loadUndici().errors;
  if (err instanceof HeadersTimeoutError || err instanceof BodyTimeoutError) {
    return new UpstreamError('timeout', 'upstream did not answer in time', { cause: err });
  }
  return new UpstreamError('unreachable', 'upstream unreachable', { cause: err });
}
