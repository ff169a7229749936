// The edge's live connections, followed through server events (listeners only).
// Revocation: OpenSSL checks the CRL only during a handshake, so a keep-alive connection opened before a CRL
// update would otherwise keep serving a now-revoked certificate for as long as the client keeps it busy. After
// every new CRL the edge marks such connections revoked: from then on they serve no new request (the gateway asks
// `isRevoked` before handling one, issue 13 D4), and they close — at once when idle, after the response in
// progress otherwise. Matching is exact: the CRL's issuer Name and the certificate serial (pki.ts reads both).
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { peerCertificate } from './peer-identity.js';
import { issuerAndSerial } from './pki.js';

export interface LiveConnections {
  /** Open TLS connections on the edge (handshake completed). */
  readonly size: number;
  /**
   * Marks the connections whose client certificate `revoked` (serials by issuer Name) lists, and closes them:
   * idle ones at once, busy ones after their response. Returns how many were affected.
   */
  closeRevoked(revoked: ReadonlyMap<string, ReadonlySet<string>>): number;
  /** True once closeRevoked has marked the connection: it must serve no further request. */
  isRevoked(socket: Socket): boolean;
  /**
   * Destroys every socket still open, including those that never completed a TLS handshake (which the HTTP
   * server's closeAllConnections does not know about): the end of a drain deadline.
   */
  destroyAll(): number;
}

/** Follows the edge's connections and their requests in progress (listeners only). */
export function trackLiveConnections(server: Server): LiveConnections {
  const busy = new Map<TLSSocket, number>();
  const raw = new Set<Socket>();
  const revokedSockets = new WeakSet<Socket>();
  const peers = new WeakMap<TLSSocket, { issuer: string; serial: string } | null>();

  const close = (socket: TLSSocket) => {
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket;
    // A request read after the revocation is never served (the gateway ignores it): it does not hold the connection.
    if (revokedSockets.has(socket)) {
      if ((busy.get(socket) ?? 0) === 0) close(socket);
      return;
    }
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const count = busy.get(socket);
      if (count === undefined) return; // the connection has already gone
      const left = Math.max(0, count - 1);
      busy.set(socket, left);
      if (left === 0 && revokedSockets.has(socket)) close(socket);
    });
  };
  const peerOf = (socket: TLSSocket) => {
    if (!peers.has(socket)) {
      const certificate = peerCertificate(socket);
      let id: { issuer: string; serial: string } | null = null;
      try {
        id = certificate ? issuerAndSerial(certificate.raw) : null;
      } catch {
        id = null;
      }
      peers.set(socket, id);
    }
    return peers.get(socket) ?? undefined;
  };
  server.on('connection', (socket: Socket) => {
    raw.add(socket);
    socket.once('close', () => raw.delete(socket));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    busy.set(socket, 0);
    socket.once('close', () => busy.delete(socket));
  });
  server.on('request', onRequest);
  server.on('checkContinue', onRequest);

  return {
    get size() {
      return busy.size;
    },
    closeRevoked(revoked) {
      let affected = 0;
      for (const [socket, requests] of busy) {
        if (revokedSockets.has(socket)) continue;
        const peer = peerOf(socket);
        if (!peer || !revoked.get(peer.issuer)?.has(peer.serial)) continue;
        affected++;
        revokedSockets.add(socket);
        if (requests === 0) close(socket);
      }
      return affected;
    },
    isRevoked: (socket) => revokedSockets.has(socket),
    destroyAll() {
      const open = raw.size;
      for (const socket of raw) socket.destroy();
      for (const socket of busy.keys()) socket.destroy();
      return open;
    },
  };
}
