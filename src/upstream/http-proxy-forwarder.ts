// The http-proxy forwarding engine (the owner's original choice), kept for its semantics tests and comparison.
// Known http-proxy defects handled here: (1) it leaks the upstream request when the client goes away after the
// request body was complete, so we destroy it ourselves on response 'close'; (2) it skips its 'proxyReq' event for
// `Expect: 100-continue`, so every header is computed before proxy.web() and never in that event.
// The response is relayed by this file (selfHandleResponse), as the undici engine does: collected up to
// BUFFER_LIMIT and written at once, streamed beyond, so an upstream that fails part-way through a response the
// client has not seen yet is still a 502 rather than a cut connection. Node's HTTP client skips interim (1xx)
// answers itself.
import { Agent as HttpAgent, type IncomingMessage, type ServerResponse, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type httpProxy from 'http-proxy';
import type { UpstreamConfig } from '../config/schema.js';
import { tcpReachable } from './reachability.js';
import { endToEndResponseHeaders } from './response-headers.js';
import { endToEndRequestHeaders, UpstreamError, type ForwardRequest, type ForwardResult, type Upstream, type UpstreamReadiness } from './types.js';

const PROXY_REQ = Symbol('nems.proxyReq');
const RELAY = Symbol('nems.relay');
type TrackedRequest = IncomingMessage & { [PROXY_REQ]?: ClientRequest; [RELAY]?: (proxyRes: IncomingMessage) => void };

/** Responses up to this size are collected and written to the client at once (as in the undici engine). */
const BUFFER_LIMIT = 64 * 1024;

export class HttpProxyForwarder implements Upstream {
  readonly kind = 'http:http-proxy';
  readonly #target: URL;
  readonly #proxy: httpProxy;
  readonly #agents = new Map<string, HttpAgent>();

  constructor(private readonly config: UpstreamConfig) {
    if (!config.url) throw new Error('upstream.url is required for the HTTP forwarder');
    this.#target = new URL(config.url);
    // Loaded on first use, not at import: the default engine (undici) never pays for it.
    const { createProxyServer } = createRequire(import.meta.url)('http-proxy') as typeof httpProxy;
    this.#proxy = createProxyServer({ xfwd: false, changeOrigin: true, ws: false, selfHandleResponse: true });
    // Used only to find the upstream request for cancellation; never for headers (see file comment).
    this.#proxy.on('proxyReq', (proxyReq, req) => {
      (req as TrackedRequest)[PROXY_REQ] = proxyReq;
    });
    this.#proxy.on('proxyRes', (proxyRes, req) => (req as TrackedRequest)[RELAY]?.(proxyRes));
  }

  #agent(request: ForwardRequest): HttpAgent {
    const clientCert = request.asid?.upstreamClientCertificate;
    const key = clientCert ? `asid:${request.asid!.asid}` : 'default';
    let agent = this.#agents.get(key);
    if (!agent) {
      const common = { keepAlive: true, maxSockets: this.config.maxSockets, timeout: this.config.timeoutMs };
      if (this.#target.protocol === 'https:') {
        const tls = this.config.tls;
        const certPath = clientCert?.cert ?? tls?.cert;
        const keyPath = clientCert?.key ?? tls?.key;
        agent = new HttpsAgent({
          ...common,
          ...(tls?.ca ? { ca: readFileSync(tls.ca) } : {}),
          ...(certPath ? { cert: readFileSync(certPath) } : {}),
          ...(keyPath ? { key: readFileSync(keyPath) } : {}),
          ...(tls?.servername ? { servername: tls.servername } : {}),
          minVersion: 'TLSv1.2',
          rejectUnauthorized: true,
        });
      } else {
        agent = new HttpAgent(common);
      }
      this.#agents.set(key, agent);
    }
    return agent;
  }

  forward(request: ForwardRequest, clientRequest: IncomingMessage, res: ServerResponse): Promise<ForwardResult> {
    const started = performance.now();
    // The client left while the request was being checked: nothing goes upstream (its 'close' has already fired).
    if (res.destroyed) return Promise.reject(new UpstreamError('aborted', 'client went away'));
    const tracked = clientRequest as TrackedRequest;
    return new Promise<ForwardResult>((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        res.off('close', onClose);
        tracked[RELAY] = undefined;
        fn();
      };
      /** The upstream failed: a 502/504 while nothing was written to the client, else the client's connection ends. */
      const failed = (err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          settle(() => reject(new UpstreamError('aborted', 'upstream response interrupted', { cause: err })));
          return;
        }
        const kind = timedOut ? 'timeout' : 'unreachable';
        settle(() => reject(new UpstreamError(kind, kind === 'timeout' ? 'upstream did not answer in time' : 'upstream unreachable', { cause: err })));
      };
      tracked[RELAY] = (proxyRes) => {
        const status = proxyRes.statusCode ?? 502;
        const headers = endToEndResponseHeaders(proxyRes.headers);
        let chunks: Buffer[] | undefined = [];
        let size = 0;
        proxyRes.on('error', () => undefined); // reported through 'close' below
        proxyRes.on('data', (chunk: Buffer) => {
          if (chunks) {
            chunks.push(chunk);
            size += chunk.length;
            if (size <= BUFFER_LIMIT) return;
            res.writeHead(status, headers);
            for (const c of chunks) res.write(c);
            chunks = undefined;
            return;
          }
          if (!res.write(chunk)) {
            proxyRes.pause();
            res.once('drain', () => proxyRes.resume());
          }
        });
        proxyRes.once('end', () => {
          if (!chunks) {
            res.end();
            return;
          }
          res.cork(); // head and body in one write (see undici-forwarder.ts)
          res.writeHead(status, headers);
          res.end(chunks.length === 1 ? chunks[0] : chunks.length === 0 ? undefined : Buffer.concat(chunks, size));
        });
        proxyRes.once('close', () => {
          if (!proxyRes.complete) failed(new Error('upstream response interrupted'));
        });
      };
      const onClose = () => {
        // http-proxy only aborts on the request's 'aborted'; a client leaving after its body is done leaks the
        // upstream socket unless we destroy the upstream request here.
        tracked[PROXY_REQ]?.destroy();
        if (res.writableFinished) settle(() => resolve({ status: res.statusCode, upstreamMs: performance.now() - started }));
        else settle(() => reject(new UpstreamError('aborted', 'client went away')));
      };
      const timer = setTimeout(() => {
        timedOut = true;
        tracked[PROXY_REQ]?.destroy();
      }, this.config.timeoutMs);
      res.once('close', onClose);
      res.once('finish', () => settle(() => resolve({ status: res.statusCode, upstreamMs: performance.now() - started })));

      // The forwarded headers replace the incoming ones wholesale; http-proxy copies req.headers verbatim.
      clientRequest.headers = { ...endToEndRequestHeaders(request.headers) } as IncomingMessage['headers'];
      clientRequest.url = request.url;
      clientRequest.method = request.method;
      this.#proxy.web(
        clientRequest,
        res,
        {
          target: this.#target.href.replace(/\/$/, ''),
          agent: this.#agent(request),
          buffer: Readable.from(request.body ? [request.body] : []),
          proxyTimeout: this.config.timeoutMs + 1000,
        },
        (err) => failed(err),
      );
    });
  }

  ready(): Promise<UpstreamReadiness> {
    return tcpReachable(this.#target, this.config.connectTimeoutMs);
  }

  async close(): Promise<void> {
    this.#proxy.close();
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}
