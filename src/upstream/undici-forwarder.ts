// The fast forwarding engine: undici 7 Pool with keep-alive, one pool per upstream client certificate.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool, errors as undiciErrors } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { tcpReachable } from './reachability.js';
import { endToEndResponseHeaders } from './response-headers.js';
import { UpstreamError, type ForwardRequest, type ForwardResult, type Upstream, type UpstreamReadiness } from './types.js';

export class UndiciForwarder implements Upstream {
  readonly kind = 'http:undici';
  readonly #origin: URL;
  readonly #basePath: string;
  readonly #pools = new Map<string, Pool>();

  constructor(private readonly config: UpstreamConfig) {
    if (!config.url) throw new Error('upstream.url is required for the HTTP forwarder');
    this.#origin = new URL(config.url);
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
      pool = new Pool(this.#origin.origin, {
        connections: this.config.maxSockets,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connectTimeout: this.config.connectTimeoutMs,
        headersTimeout: this.config.timeoutMs,
        bodyTimeout: this.config.timeoutMs,
        ...(this.#origin.protocol === 'https:'
          ? {
              connect: {
                ...(tls?.ca ? { ca: readFileSync(tls.ca) } : {}),
                ...(certPath ? { cert: readFileSync(certPath) } : {}),
                ...(keyPath ? { key: readFileSync(keyPath) } : {}),
                ...(tls?.servername ? { servername: tls.servername } : {}),
                minVersion: 'TLSv1.2' as const,
                rejectUnauthorized: true,
              },
            }
          : {}),
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async forward(request: ForwardRequest, clientRequest: IncomingMessage, res: ServerResponse): Promise<ForwardResult> {
    const started = performance.now();
    const abort = new AbortController();
    // The client going away (before the response is complete) must take the upstream request with it.
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    clientRequest.once('error', onClose);
    try {
      const response = await this.#pool(request).request({
        method: request.method as 'GET',
        path: this.#basePath + request.url,
        headers: { ...request.headers, host: this.#origin.host } as Record<string, string>,
        body: request.body ?? null,
        signal: abort.signal,
      });
      res.writeHead(response.statusCode, endToEndResponseHeaders(response.headers));
      await pipeline(response.body, res);
      return { status: response.statusCode, upstreamMs: performance.now() - started };
    } catch (err) {
      if (res.headersSent) {
        // Part of the response is already on the wire: the only honest signal left is to cut the connection.
        res.destroy();
        throw new UpstreamError('aborted', 'upstream response interrupted', { cause: err });
      }
      throw toUpstreamError(err, abort.signal.aborted);
    } finally {
      res.off('close', onClose);
      clientRequest.off('error', onClose);
    }
  }

  ready(): Promise<UpstreamReadiness> {
    return tcpReachable(this.#origin, this.config.connectTimeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.destroy()));
    this.#pools.clear();
  }
}

function toUpstreamError(err: unknown, clientAborted: boolean): UpstreamError {
  if (clientAborted) return new UpstreamError('aborted', 'client went away', { cause: err });
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new UpstreamError('timeout', 'upstream did not answer in time', { cause: err });
  }
  return new UpstreamError('unreachable', 'upstream unreachable', { cause: err });
}
