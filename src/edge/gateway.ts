// The mTLS edge: terminates TLS (OpenSSL verifies chain and CRL), resolves the client certificate to a
// registered endpoint once per connection, runs the pipeline, forwards what passes and answers everything else
// with a Spine OperationOutcome. Data flows one way: edge → identity → pipeline → upstream → edge.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { SPINE_CODES, type SpineCode } from '../fhir/errors.js';
import { preferredErrorFormat } from '../fhir/mime.js';
import { outcomeContentType, renderOperationOutcome, type FhirFormat } from '../fhir/operation-outcome.js';
import type { EndpointRegistry } from '../identity/types.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Rejection, RequestContext, RequestSource, StageName } from '../pipeline/types.js';
import { REDACT_PATHS } from '../observability/logger.js';
import { HOP_BY_HOP_HEADERS, headersToDrop, UpstreamError, type Upstream } from '../upstream/types.js';
import { connectionIdentity } from './peer-identity.js';
import { createConnectionGuard, endAfterFlush } from './connection-guard.js';
import { isGatewayOwnedHeader } from './gateway-owned-headers.js';
import { framingRejection } from './request-framing.js';
import { loadEdgeTls } from './tls.js';
import { NOOP_OBSERVER, type EdgeObserver, type RouteLabel } from './observer.js';

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request line is flat (every value a string, number or boolean the gateway wrote), so it is censored with the
 * top-level form of every redact path. pino runs a wildcard path's redactor on every field of every line, which
 * made this one line cost ~40 µs; top-level paths cost nothing for the fields they do not name.
 */
const REQUEST_LINE_REDACT_PATHS: readonly string[] = [...new Set(REDACT_PATHS.map((path) => path.slice(path.lastIndexOf('.') + 1)))];

/** One audit line per request: field names are fixed by the gateway, values never objects. */
type RequestLine = Record<string, string | number | boolean>;

export interface GatewayOptions {
  readonly config: Config;
  readonly registry: EndpointRegistry;
  readonly pipeline: Pipeline;
  readonly upstream: Upstream;
  readonly logger: Logger;
  readonly observer?: EdgeObserver;
  readonly now?: () => number;
}

export interface RunningGateway {
  readonly server: Server;
  readonly port: number;
  readonly host: string;
  /** Re-reads server certificate, key, CA bundle and CRL; live connections keep their context. Throws on a bad file. */
  reloadTls(): void;
  readonly draining: boolean;
  /** Stops accepting, lets in-flight requests finish until the deadline, then closes every connection. */
  drain(deadlineMs: number): Promise<void>;
  /** Requests currently in flight. */
  readonly inFlight: number;
}

class PayloadTooLargeError extends Error {
  readonly code = 'PAYLOAD_TOO_LARGE';
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { config, registry, pipeline, upstream, logger } = options;
  const observer = options.observer ?? NOOP_OBSERVER;
  const now = options.now ?? Date.now;
  const limits = config.server.limits;
  const tls = loadEdgeTls(config);
  let draining = false;
  let inFlight = 0;
  const requestLog = logger.child({}, { redact: { paths: [...REQUEST_LINE_REDACT_PATHS], censor: '[REDACTED]' } });
  // One request at a time per connection and nothing after a rejection (see connection-guard.ts).
  const guard = createConnectionGuard({ onRefused: (reason) => logger.debug({ event: 'request_refused', reason }, 'request on a closing connection ignored') });

  const server = createServer(
    {
      ...tls.options,
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node enforces headersTimeout/requestTimeout only when it checks (default every 30 s): check often enough
      // that a slow client is cut off close to its deadline.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
      // Host is checked by framingRejection, which answers with an OperationOutcome through the connection guard.
      requireHostHeader: false,
    },
    (req, res) => guard.admit(req, res, () => void handle(req, res, false)),
  );
  server.maxConnections = limits.maxConnections;
  // Expect: 100-continue requests get every head check before the client is invited to send its body.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => guard.admit(req, res, () => void handle(req, res, true)));
  // Any other expectation is refused (417) by framingRejection rather than by Node outside the guard.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => guard.admit(req, res, () => void handle(req, res, false)));
  server.on('secureConnection', (socket: TLSSocket) => {
    observer.connectionOpened();
    socket.once('close', () => observer.connectionClosed());
  });
  server.on('tlsClientError', (err: Error, tlsSocket: TLSSocket) => {
    observer.tlsHandshakeFailed(err, tlsSocket);
    logger.debug({ event: 'tls_handshake_failed', code: (err as NodeJS.ErrnoException).code }, 'TLS handshake failed');
    // Node leaves the socket open after some of these (ERR_TLS_HANDSHAKE_TIMEOUT): a silent client must not hold it.
    tlsSocket.destroy();
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (guard.mayAnswerClientError(socket)) answerClientError(err, socket);
  });

  async function handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const started = performance.now();
    inFlight++;
    const requestDone = observer.requestStarted();
    const requestId = pickRequestId(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    if (draining) res.setHeader('connection', 'close');
    const log: RequestLine = { requestId, method: req.method ?? 'GET' };
    let route: RouteLabel = 'unmatched';
    let finished = false;
    try {
      const framing = framingRejection(req);
      if (framing) {
        sendRejection(req, res, requestId, framing, preferredErrorFormat(req.headers, queryOf(req.url)));
        finish('rejected', { code: framing.code, stage: 'edge' });
        return;
      }
      const identity = connectionIdentity(req.socket as TLSSocket, registry);
      if (!identity.lookup.ok) {
        log.identity = identity.lookup.reason;
        observer.identityRejected(identity.lookup.reason);
        const format = preferredErrorFormat(req.headers, queryOf(req.url));
        sendRejection(req, res, requestId, { code: 'ACCESS_DENIED', diagnostics: 'The client certificate is not registered for a Spine endpoint' }, format);
        finish('rejected', { code: 'ACCESS_DENIED', stage: 'edge' });
        return;
      }
      const endpoint = identity.lookup.endpoint;
      log.endpoint = endpoint.fqdn;
      const rawUrl = req.url ?? '/';
      const q = rawUrl.indexOf('?');
      let continueSent = false;
      const source: RequestSource = {
        readBody: (limit) => {
          if (expectContinue && !continueSent) {
            continueSent = true;
            res.writeContinue();
          }
          return readBody(req, limit);
        },
      };
      const ctx: RequestContext = {
        requestId,
        method: req.method ?? 'GET',
        path: q === -1 ? rawUrl : rawUrl.slice(0, q),
        query: new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1)),
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        endpoint,
        source,
        receivedAt: now(),
        nhsNumbers: [],
        forwardHeaders: {},
        audit: {},
      };
      const outcome = await pipeline.run(ctx);
      if (ctx.operation) route = ctx.operation;
      log.route = route;
      if (ctx.fromAsid) log.asid = ctx.fromAsid;
      Object.assign(log, ctx.audit);
      if (!outcome.ok) {
        log.stage = outcome.stage;
        sendRejection(req, res, requestId, outcome.rejection, errorFormat(ctx, outcome.rejection.code));
        finish('rejected', { code: outcome.rejection.code, stage: outcome.stage });
        return;
      }

      let body = ctx.body;
      if (body === undefined && declaresBody(req)) {
        try {
          body = await source.readBody(limits.maxBodyBytes);
        } catch (err) {
          const code: SpineCode = err instanceof PayloadTooLargeError ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
          sendRejection(req, res, requestId, { code, diagnostics: code === 'PAYLOAD_TOO_LARGE' ? 'The request body is too large' : 'The request body could not be read' }, errorFormat(ctx, code));
          finish('rejected', { code, stage: 'edge' });
          return;
        }
      }
      const headers = forwardHeaders(req, ctx, requestId, body, identity.peer?.fingerprint256);
      const upstreamStarted = performance.now();
      try {
        const result = await upstream.forward(
          { requestId, method: ctx.method, url: rawUrl, headers, ...(body ? { body } : {}), ...(ctx.asidRegistration ? { asid: ctx.asidRegistration } : {}) },
          req,
          res,
        );
        log.upstreamMs = round(result.upstreamMs);
        finish('forwarded', undefined, result.upstreamMs / 1000);
      } catch (err) {
        const upstreamSeconds = (performance.now() - upstreamStarted) / 1000;
        if (!(err instanceof UpstreamError)) throw err;
        log.upstreamError = err.kind;
        if (err.kind !== 'aborted' && !res.headersSent) {
          const code: SpineCode = err.kind === 'timeout' ? 'GATEWAY_TIMEOUT' : 'BAD_GATEWAY';
          sendRejection(req, res, requestId, { code, diagnostics: code === 'GATEWAY_TIMEOUT' ? 'The NEMS service did not answer in time' : 'The NEMS service could not be reached' }, errorFormat(ctx, code));
          log.code = code;
        }
        finish('upstream_error', undefined, upstreamSeconds, err.kind);
      }
    } catch (err) {
      // A bug, never a client's fault: answer 500 without internals, log the detail for operators.
      logger.error({ requestId, err }, 'unexpected error handling request');
      if (!res.headersSent) {
        sendRejection(req, res, requestId, { code: 'INTERNAL_SERVER_ERROR', diagnostics: 'The gateway could not process the request' }, 'xml');
      } else {
        res.destroy();
      }
      finish('rejected', { code: 'INTERNAL_SERVER_ERROR', stage: 'edge' });
    }

    function finish(
      outcome: 'forwarded' | 'rejected' | 'upstream_error',
      rejection?: { code: SpineCode; stage: StageName | 'edge' },
      upstreamSeconds?: number,
      upstreamFailure?: UpstreamError['kind'],
    ): void {
      if (finished) return;
      finished = true;
      inFlight--;
      requestDone();
      const seconds = (performance.now() - started) / 1000;
      const status = res.statusCode;
      if (rejection) log.code = rejection.code;
      log.status = status;
      log.totalMs = round(seconds * 1000);
      observer.request({
        route, outcome, status, seconds,
        ...(upstreamSeconds !== undefined ? { upstreamSeconds } : {}),
        ...(rejection ? { rejection } : {}),
        ...(upstreamFailure ? { upstreamFailure } : {}),
      });
      requestLog.info(log, outcome === 'forwarded' ? 'request forwarded' : outcome === 'rejected' ? 'request rejected' : 'upstream failure');
    }
  }

  function forwardHeaders(
    req: IncomingMessage,
    ctx: RequestContext,
    requestId: string,
    body: Buffer | undefined,
    fingerprint256: string | undefined,
  ): OutgoingHttpHeaders {
    const drop = dropSetFor(req.headers.connection);
    const out: OutgoingHttpHeaders = {};
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (drop.has(lower) || isGatewayOwnedHeader(name) || lower in ctx.forwardHeaders) continue;
      const existing = out[name];
      out[name] = existing === undefined ? raw[i + 1]! : Array.isArray(existing) ? [...existing, raw[i + 1]!] : [String(existing), raw[i + 1]!];
    }
    Object.assign(out, ctx.forwardHeaders);
    out['x-request-id'] = requestId;
    const socket = req.socket;
    out.forwarded = `for=${forwardedNode(socket.remoteAddress)};proto=https`;
    if (fingerprint256 !== undefined) {
      // Envoy's XFCC format: the verified certificate's hash and registered DNS name.
      out['x-forwarded-client-cert'] = `Hash=${fingerprint256.toLowerCase()};DNS=${ctx.endpoint.fqdn}`;
    }
    if (body) out['content-length'] = String(body.length);
    return out;
  }

  function errorFormat(ctx: RequestContext, code: SpineCode): FhirFormat {
    // Media-type failures are answered in the XML default: the client's own format is what failed (§7).
    if (code === 'UNSUPPORTED_MEDIA_TYPE' || code === 'NOT_ACCEPTABLE') return 'xml';
    return ctx.mime?.responseFormat ?? preferredErrorFormat(ctx.headers, ctx.query);
  }

  function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code]: [number, SpineCode] =
      err.code === 'HPE_HEADER_OVERFLOW' ? [413, 'PAYLOAD_TOO_LARGE']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'BAD_REQUEST']
          : [400, 'BAD_REQUEST'];
    const diagnostics = status === 413 ? 'The request headers are too large' : status === 408 ? 'The request was not received in time' : 'The request is not well-formed HTTP';
    const id = randomUUID();
    const body = renderOperationOutcome(id, [{ code, diagnostics }], 'xml');
    const reason = status === 413 ? 'Payload Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
    observer.request({ route: 'unmatched', outcome: 'rejected', status, seconds: 0, rejection: { code, stage: 'edge' } });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${outcomeContentType('xml')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-ID: ${id}\r\nConnection: close\r\n\r\n${body}`,
    );
    endAfterFlush(socket);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  return {
    server,
    port: address.port,
    host: config.server.host,
    get draining() {
      return draining;
    },
    get inFlight() {
      return inFlight;
    },
    reloadTls() {
      server.setSecureContext(loadEdgeTls(config).options);
    },
    async drain(deadlineMs: number) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = new Promise<'deadline'>((resolve) => setTimeout(() => resolve('deadline'), deadlineMs).unref());
      const idle = (async () => {
        while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
        server.closeIdleConnections();
      })();
      await Promise.race([idle, deadline]);
      server.closeAllConnections();
      await closed;
    },
  };
}

function sendRejection(req: IncomingMessage, res: ServerResponse, requestId: string, rejection: Rejection, format: FhirFormat): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = rejection.status ?? SPINE_CODES[rejection.code].status;
  const body = renderOperationOutcome(requestId, [{ code: rejection.code, diagnostics: rejection.diagnostics }], format);
  const headers: OutgoingHttpHeaders = {
    ...rejection.headers,
    'content-type': outcomeContentType(format),
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  // One request per rejection: nothing after it on this connection is read as a request (connection-guard.ts), and an
  // unread body is never drained.
  headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(new PayloadTooLargeError('declared body over limit'));
  // A request whose connection has gone before its body was read never emits another event.
  if (req.destroyed && !req.readableEnded) return Promise.reject(new Error('client aborted'));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new PayloadTooLargeError('body over limit'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => onError(new Error('client aborted'));
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onClose = () => {
      if (!req.complete) onAborted();
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

function pickRequestId(value: string | string[] | undefined): string {
  return typeof value === 'string' && REQUEST_ID_PATTERN.test(value) ? value : randomUUID();
}

function queryOf(url: string | undefined): URLSearchParams {
  const q = url?.indexOf('?') ?? -1;
  return new URLSearchParams(q === -1 || !url ? '' : url.slice(q + 1));
}

function forwardedNode(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.includes(':') ? `"[${address}]"` : address;
}

/** Drop sets by Connection value (clients send `keep-alive` on every request): computed once each, bounded. */
const dropSets = new Map<string, ReadonlySet<string>>();

function dropSetFor(connection: string | undefined): ReadonlySet<string> {
  if (connection === undefined) return HOP_BY_HOP_HEADERS;
  let drop = dropSets.get(connection);
  if (drop === undefined) {
    drop = headersToDrop(connection);
    if (connection.length > 256) return drop;
    if (dropSets.size >= 32) dropSets.clear();
    dropSets.set(connection, drop);
  }
  return drop;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
