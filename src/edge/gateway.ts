// The mTLS edge: terminates TLS (OpenSSL verifies chain and CRL) and adapts node:https to the request lifecycle
// (pipeline/request-lifecycle.ts): it builds the inbound request (method, target, headers, body source, the
// connection's peer facts), runs it, then forwards or writes the rejection, and records the metrics and the audit
// line. Data flows one way: edge → identity → pipeline → upstream → edge.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { SpineCode } from '../fhir/errors.js';
import { outcomeContentType, outcomeMedia, renderOperationOutcome } from '../fhir/operation-outcome.js';
import { pickRequestId } from '../nems/identifiers.js';
import { REDACT_PATHS } from '../observability/logger.js';
import { traceContextFor } from '../observability/trace-context.js';
import { renderRejection, type Decision, type LifecycleStage, type RenderedRejection, type RequestLifecycle } from '../pipeline/request-lifecycle.js';
import { violation, type InboundRequest } from '../pipeline/types.js';
import { UpstreamError, type Upstream } from '../upstream/types.js';
import type { ConnectionAdmission } from './admission.js';
import { createConnectionGuard, endAfterFlush } from './connection-guard.js';
import { framingRejection } from './request-framing.js';
import { peerFacts } from './peer-identity.js';
import { readBody } from './read-body.js';
import { loadEdgeTls, type EdgeTlsMaterial } from './tls.js';
import { NOOP_OBSERVER, type EdgeObserver, type RequestRecord, type RouteLabel } from './observer.js';

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
  /** Decides every request; it holds the registry, the stages and the clock. */
  readonly lifecycle: RequestLifecycle;
  readonly upstream: Upstream;
  readonly logger: Logger;
  readonly observer?: EdgeObserver;
  /** TLS material already loaded and validated (else loaded here). */
  readonly tls?: EdgeTlsMaterial;
  /** Checks on the connection's client certificate before each request (revoked since the handshake, key size, OCSP). */
  readonly admit?: ConnectionAdmission;
}

export interface RunningGateway {
  readonly server: Server;
  readonly port: number;
  readonly host: string;
  /** Puts new TLS material in force (default: re-read the files); live connections keep their context. Throws on a bad file. */
  reloadTls(material?: EdgeTlsMaterial): void;
  readonly draining: boolean;
  /** Stops accepting, lets in-flight requests finish until the deadline, then closes every connection. */
  drain(deadlineMs: number): Promise<void>;
  /** Requests currently in flight. */
  readonly inFlight: number;
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { config, lifecycle, upstream, logger } = options;
  const observer = options.observer ?? NOOP_OBSERVER;
  const limits = config.server.limits;
  const tls = options.tls ?? loadEdgeTls(config);
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
    const admission = options.admit?.(req.socket as TLSSocket);
    // Its certificate was revoked after the handshake: nothing more is served. The connection guard starts a request
    // only once the response before it is written, so nothing is owed on this connection any more: close it.
    if (admission === 'ignore') {
      req.socket.destroy();
      return;
    }
    const started = performance.now();
    inFlight++;
    const requestDone = observer.requestStarted();
    const requestId = pickRequestId(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    if (draining) res.setHeader('connection', 'close');
    const trace = traceContextFor(req.headers);
    const log: RequestLine = { requestId, traceId: trace.traceId, method: req.method ?? 'GET' };
    let route: RouteLabel = 'unmatched';
    let finished = false;
    let rules: RequestRecord['rules'];
    try {
      const inbound = inboundRequest(req, res, requestId, expectContinue, trace.forwardHeaders);
      // A request line or head the gateway does not take (HTTP version, Host count, Connection naming a checked
      // header), then the connection's admission (client key size, OCSP).
      const framing = framingRejection(req);
      const refusal = framing ? undefined : admission instanceof Promise ? await admission : admission;
      const edgeRejection = framing ?? refusal?.rejection;
      if (edgeRejection) {
        if (refusal) log.admission = refusal.reason;
        log.rule = edgeRejection.rule;
        rules = { enforced: edgeRejection.rule };
        sendRejection(res, lifecycle.refuse(inbound, edgeRejection));
        finish('rejected', { code: edgeRejection.code, stage: 'edge' });
        return;
      }
      const decision = await lifecycle.run(inbound);
      route = recordDecision(decision, log);
      rules = ruleFacts(decision);
      if (decision.action === 'reject') {
        if (decision.identity) observer.identityRejected(decision.identity);
        sendRejection(res, decision);
        finish('rejected', { code: decision.code, stage: decision.stage });
        return;
      }

      const upstreamStarted = performance.now();
      try {
        const result = await upstream.forward(decision, req, res);
        log.upstreamMs = round(result.upstreamMs);
        finish('forwarded', undefined, result.upstreamMs / 1000);
      } catch (err) {
        const upstreamSeconds = (performance.now() - upstreamStarted) / 1000;
        if (!(err instanceof UpstreamError)) throw err;
        log.upstreamError = err.kind;
        if (err.kind !== 'aborted' && !res.headersSent) {
          const code: SpineCode = err.kind === 'timeout' ? 'GATEWAY_TIMEOUT' : 'BAD_GATEWAY';
          const diagnostics = code === 'GATEWAY_TIMEOUT' ? 'The NEMS service did not answer in time' : 'The NEMS service could not be reached';
          sendRejection(res, lifecycle.reject(decision.ctx, violation('upstream.reachable', diagnostics, { code }), 'edge'));
          log.code = code;
          log.rule = 'upstream.reachable';
          rules = { ...rules, enforced: 'upstream.reachable' };
        }
        finish('upstream_error', undefined, upstreamSeconds, err.kind);
      }
    } catch (err) {
      // A bug, never a client's fault: answer 500 without internals, log the detail for operators.
      logger.error({ requestId, err }, 'unexpected error handling request');
      if (!res.headersSent) {
        sendRejection(res, renderRejection(requestId, violation('gateway.internal', 'The gateway could not process the request'), outcomeMedia('xml')));
      } else {
        res.destroy();
      }
      finish('rejected', { code: 'INTERNAL_SERVER_ERROR', stage: 'edge' });
    }

    function finish(
      outcome: 'forwarded' | 'rejected' | 'upstream_error',
      rejection?: { code: SpineCode; stage: LifecycleStage },
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
        ...(rules ? { rules } : {}),
      });
      requestLog.info(log, outcome === 'forwarded' ? 'request forwarded' : outcome === 'rejected' ? 'request rejected' : 'upstream failure');
    }
  }

  /** The socket-free view of a node:https request; reading its body answers `Expect: 100-continue` first. */
  function inboundRequest(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    expectContinue: boolean,
    edgeHeaders: Readonly<Record<string, string>>,
  ): InboundRequest {
    let continueSent = false;
    return {
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      peer: peerFacts(req.socket as TLSSocket),
      requestId,
      edgeHeaders,
      readBody: (limit) => {
        if (expectContinue && !continueSent) {
          continueSent = true;
          res.writeContinue();
        }
        return readBody(req, limit);
      },
    };
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
    reloadTls(material) {
      server.setSecureContext((material ?? loadEdgeTls(config)).options);
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

/** The audit facts of a decision, onto the request line; returns the route label for the metrics. */
function recordDecision(decision: Decision, log: RequestLine): RouteLabel {
  const ctx = decision.ctx;
  if (!ctx) {
    if (decision.action === 'reject' && decision.identity) log.identity = decision.identity;
    return 'unmatched';
  }
  log.endpoint = ctx.endpoint.fqdn;
  const route: RouteLabel = ctx.operation ?? 'unmatched';
  log.route = route;
  if (ctx.fromAsid) log.asid = ctx.fromAsid;
  Object.assign(log, ctx.audit);
  // The conformance rules reported on the way (policy report): listed on the audit line, comma-separated.
  if (ctx.reported) log.reportedRules = ctx.reported.join(',');
  if (decision.action === 'reject') {
    log.stage = decision.stage;
    log.rule = decision.rule;
  }
  return route;
}

/** The rules a decision enforced or reported, for the rule-violation metric; undefined when none fired. */
function ruleFacts(decision: Decision): RequestRecord['rules'] {
  const reported = decision.ctx?.reported;
  if (decision.action === 'reject') return { enforced: decision.rule, ...(reported ? { reported } : {}) };
  return reported ? { reported } : undefined;
}

function sendRejection(res: ServerResponse, rejection: RenderedRejection): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // One request per rejection: nothing after it on this connection is read as a request (connection-guard.ts), and an
  // unread body is never drained.
  res.writeHead(rejection.status, { ...rejection.headers, connection: 'close' });
  res.end(rejection.body);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
