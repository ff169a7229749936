// One request at a time per connection, and nothing after the last one.
//
// Node's HTTP server parses every request in a chunk and emits each at once, even while an earlier response on the
// same connection is still owed: it only queues the responses. A pipelined request behind one the gateway rejects
// (or behind one that ends the connection: `Connection: close`, HTTP/1.0) would therefore already be running when
// the rejection goes out, and its response would never be written (the socket closes after the rejection), so it
// would stay in flight forever. The guard sits between the server's `request` events and the edge's handler:
//   - a connection runs one request at a time; later ones wait (bounded) until the response before them is done;
//   - a request that ends the connection, a response that ends it (every rejection says `Connection: close`), a
//     parse error or a timeout marks the connection closing: nothing queued or still to come on it is started or
//     counted, and once the response in progress is written the connection is ended;
//   - a parse error or timeout on a connection that still owes a response is never answered with a raw error over
//     it (that would put bytes before, or inside, the real answer): the owed response finishes, then the connection
//     closes. Only when nothing is owed, or the owed request is the one that failed before any answer started, may
//     the edge write its raw error.
// HTTP/1.1 allows a server to close after any response and leave pipelined requests unanswered (RFC 9112 §9.3.2,
// docs/specification.md §9.6); clients retry them on a new connection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Requests that may wait behind the one in progress on a connection; more marks the connection closing. */
export const MAX_QUEUED_REQUESTS = 32;

export type RefusalReason = 'after-close' | 'queue-full';

export interface ConnectionGuard {
  /**
   * Starts `start` now, later (after the responses before it on the connection), or never (the connection is
   * closing). Call from the server's `request`, `checkContinue` and `checkExpectation` listeners.
   */
  admit(req: IncomingMessage, res: ServerResponse, start: () => void): void;
  /**
   * From the server's `clientError` listener: true when the edge may write its raw error answer and close now;
   * false when a response is still owed on the socket (the guard closes the connection after it instead).
   */
  mayAnswerClientError(socket: Socket): boolean;
}

interface ConnectionState {
  /** The response of the request in progress, and that request. */
  active: ServerResponse | undefined;
  activeRequest: IncomingMessage | undefined;
  readonly queue: Array<() => void>;
  closing: boolean;
}

export function createConnectionGuard(options: { onRefused?: (reason: RefusalReason) => void } = {}): ConnectionGuard {
  const states = new WeakMap<Socket, ConnectionState>();

  const stateOf = (socket: Socket): ConnectionState => {
    let state = states.get(socket);
    if (!state) {
      const created: ConnectionState = { active: undefined, activeRequest: undefined, queue: [], closing: false };
      socket.once('close', () => markClosing(created));
      states.set(socket, created);
      state = created;
    }
    return state;
  };

  const refuse = (reason: RefusalReason) => options.onRefused?.(reason);

  /** Nothing more starts on the connection; requests waiting behind the one in progress are dropped. */
  function markClosing(state: ConnectionState): void {
    state.closing = true;
    const dropped = state.queue.length;
    state.queue.length = 0;
    for (let i = 0; i < dropped; i++) refuse('after-close');
  }

  function run(state: ConnectionState, socket: Socket, req: IncomingMessage, res: ServerResponse, start: () => void): void {
    state.active = res;
    state.activeRequest = req;
    if (requestEndsConnection(req)) markClosing(state);
    res.once('close', () => settle(state, socket, res));
    start();
  }

  function settle(state: ConnectionState, socket: Socket, res: ServerResponse): void {
    if (state.active !== res) return;
    state.active = undefined;
    state.activeRequest = undefined;
    // Node has already ended the socket when the response said `Connection: close` (every rejection does), or the
    // client went away; either way nothing more may start on it.
    if (socket.destroyed || socket.writableEnded) markClosing(state);
    if (state.closing) {
      endAfterFlush(socket);
      return;
    }
    state.queue.shift()?.();
  }

  return {
    admit(req, res, start) {
      const socket = req.socket;
      const state = stateOf(socket);
      if (state.closing || socket.destroyed) {
        refuse('after-close');
        return;
      }
      if (state.active) {
        if (state.queue.length >= MAX_QUEUED_REQUESTS) {
          markClosing(state);
          refuse('queue-full');
          return;
        }
        state.queue.push(() => {
          if (state.closing || socket.destroyed) refuse('after-close');
          else run(state, socket, req, res, start);
        });
        return;
      }
      run(state, socket, req, res, start);
    },

    mayAnswerClientError(socket) {
      const state = states.get(socket);
      if (!state) return true;
      markClosing(state);
      const owed = state.active;
      if (!owed) return true;
      // The request in progress is complete (the error is in bytes after it) or its answer has begun: that answer
      // is the client's; it finishes, then settle() ends the connection.
      if (owed.headersSent || state.activeRequest?.complete) {
        if (!owed.headersSent) owed.setHeader('connection', 'close');
        return false;
      }
      // The failing bytes belong to the request in progress and nothing of its answer was sent: the raw error is
      // that answer (its handler sees the connection close and writes nothing more).
      return true;
    },
  };
}

/** HTTP/1.0 without `Connection: keep-alive`, or any request with `Connection: close` (RFC 9112 §9.3). */
export function requestEndsConnection(req: IncomingMessage): boolean {
  const connection = req.headers.connection;
  const tokens = connection ? connection.toLowerCase().split(',').map((t) => t.trim()) : [];
  if (tokens.includes('close')) return true;
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && !tokens.includes('keep-alive');
}

/**
 * Ends the connection once everything written to it is flushed, then destroys it (what Node does after a
 * `Connection: close` response), so a client that never closes its side cannot hold the socket.
 */
export function endAfterFlush(socket: Socket): void {
  if (socket.destroyed) return;
  if (!socket.writableEnded) socket.end();
  if (socket.writableFinished) socket.destroy();
  else socket.once('finish', () => socket.destroy());
}
