// The http-proxy forwarding engine (the owner's original choice), kept for its semantics tests and comparison.
// Known http-proxy defects handled here: (1) it leaks the upstream request when the client goes away after the
// request body was complete, so we destroy it ourselves on response 'close'; (2) it skips its 'proxyReq' event for
// `Expect: 100-continue`, so every header is computed before proxy.web() and never in that event.
import { Agent as HttpAgent, type IncomingMessage, type ServerResponse, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type httpProxy from 'http-proxy';
import type { UpstreamConfig } from '../config/schema.js';
import { tcpReachable } from './reachability.js';
import { endToEndRequestHeaders, headersToDrop, UpstreamError, type ForwardRequest, type ForwardResult, type Upstream, type UpstreamReadiness } from './types.js';

const PROXY_REQ = Symbol('nems.proxyReq');
type TrackedRequest = IncomingMessage & { [PROXY_REQ]?: ClientRequest };

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
    this.#proxy = createProxyServer({ xfwd: false, changeOrigin: true, ws: false, selfHandleResponse: false });
    // Used only to find the upstream request for cancellation; never for headers (see file comment).
    this.#proxy.on('proxyReq', (proxyReq, req) => {
      (req as TrackedRequest)[PROXY_REQ] = proxyReq;
    });
    this.#proxy.on('proxyRes', (proxyRes, _req, res) => {
      // Every hop-by-hop header goes, the upstream's own Connection too: http-proxy then sets the client's
      // connection header itself (keep-alive), so an upstream `Connection: close` never closes the client's socket.
      for (const name of headersToDrop(proxyRes.headers.connection)) delete proxyRes.headers[name];
      // http-proxy leaves the client waiting when the upstream dies mid-response; cut the client connection instead.
      proxyRes.once('close', () => {
        if (!proxyRes.complete) res.destroy();
      });
    });
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
    const tracked = clientRequest as TrackedRequest;
    return new Promise<ForwardResult>((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        res.off('close', onClose);
        fn();
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
        (err) => {
          if (res.headersSent) {
            res.destroy();
            settle(() => reject(new UpstreamError('aborted', 'upstream response interrupted', { cause: err })));
            return;
          }
          const kind = timedOut ? 'timeout' : 'unreachable';
          settle(() => reject(new UpstreamError(kind, kind === 'timeout' ? 'upstream did not answer in time' : 'upstream unreachable', { cause: err })));
        },
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
