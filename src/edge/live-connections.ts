// The edge's live connections, followed through server events (the edge itself is unchanged).
// Revocation: OpenSSL checks the CRL only during a handshake, so a keep-alive connection
// opened before a CRL update would otherwise keep serving a now-revoked certificate for as long as the client
// keeps it busy. After every CRL reload the edge closes such connections: at once when idle, after the response
// in progress otherwise. Matching is exact: the CRL's issuer Name (DER bytes) and the certificate serial.
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** Upper bound on a CRL file examined here (the TLS context has already accepted it). */
const MAX_CRL_BYTES = 16 * 1024 * 1024;

interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || contentStart + bytes > limit) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[contentStart + i]!;
    contentStart += bytes;
  }
  const end = contentStart + length;
  if (end > limit) throw new Error('truncated DER');
  return { tag, start: offset, contentStart, end };
}

/** The INTEGER's content in hex without sign-padding zero bytes (how both sides spell a serial). */
function integerHex(der: Uint8Array, tlv: Tlv): string {
  let i = tlv.contentStart;
  while (i < tlv.end - 1 && der[i] === 0) i++;
  return Buffer.from(der.subarray(i, tlv.end)).toString('hex');
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;

/** Revoked serials by issuer Name (DER hex) for every CRL in a PEM bundle. Unreadable CRLs are skipped. */
export function revokedSerials(crlPem: string): Map<string, Set<string>> {
  const byIssuer = new Map<string, Set<string>>();
  if (crlPem.length > MAX_CRL_BYTES) return byIssuer;
  for (const block of crlPem.matchAll(/-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g)) {
    const der = Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64');
    try {
      const list = readTlv(der, 0, der.length);
      const tbs = readTlv(der, list.contentStart, list.end);
      let at = tbs.contentStart;
      let item = readTlv(der, at, tbs.end);
      if (item.tag === INTEGER) item = readTlv(der, (at = item.end), tbs.end); // version
      const issuerTlv = readTlv(der, (at = item.end), tbs.end); // after the signature algorithm
      const issuer = der.subarray(issuerTlv.start, issuerTlv.end).toString('hex');
      const serials = byIssuer.get(issuer) ?? new Set<string>();
      byIssuer.set(issuer, serials);
      at = readTlv(der, issuerTlv.end, tbs.end).end; // thisUpdate
      while (at < tbs.end) {
        const next = readTlv(der, at, tbs.end);
        at = next.end;
        if (next.tag !== SEQUENCE) continue; // nextUpdate, or the [0] extensions
        for (let entryAt = next.contentStart; entryAt < next.end;) {
          const entry = readTlv(der, entryAt, next.end);
          entryAt = entry.end;
          const serial = readTlv(der, entry.contentStart, entry.end);
          if (serial.tag === INTEGER) serials.add(integerHex(der, serial));
        }
      }
    } catch {
      // OpenSSL accepted the file; anything this reader cannot follow simply revokes nothing live.
    }
  }
  return byIssuer;
}

/** Issuer Name (DER hex) and serial (hex) of a DER certificate. */
export function issuerAndSerial(der: Uint8Array): { issuer: string; serial: string } {
  const cert = readTlv(der, 0, der.length);
  const tbs = readTlv(der, cert.contentStart, cert.end);
  let item = readTlv(der, tbs.contentStart, tbs.end);
  if (item.tag === 0xa0) item = readTlv(der, item.end, tbs.end); // [0] version
  const serial = integerHex(der, item);
  const algorithm = readTlv(der, item.end, tbs.end);
  const issuer = readTlv(der, algorithm.end, tbs.end);
  return { issuer: Buffer.from(der.subarray(issuer.start, issuer.end)).toString('hex'), serial };
}

export interface LiveConnections {
  /** Open TLS connections on the edge (handshake completed). */
  readonly size: number;
  /** Closes connections whose client certificate the CRL bundle revokes; returns how many were affected. */
  closeRevoked(crlPem: string): number;
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
  const closeAfterResponse = new WeakSet<TLSSocket>();

  const close = (socket: TLSSocket) => {
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const count = busy.get(socket);
      if (count === undefined) return; // the connection has already gone
      const left = Math.max(0, count - 1);
      busy.set(socket, left);
      if (left === 0 && closeAfterResponse.has(socket)) close(socket);
    });
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
    closeRevoked(crlPem) {
      const revoked = revokedSerials(crlPem);
      if (revoked.size === 0) return 0;
      let affected = 0;
      for (const [socket, requests] of busy) {
        const peer = socket.getPeerX509Certificate();
        if (!peer) continue;
        let id: { issuer: string; serial: string };
        try {
          id = issuerAndSerial(peer.raw);
        } catch {
          continue;
        }
        if (!revoked.get(id.issuer)?.has(id.serial)) continue;
        affected++;
        if (requests === 0) close(socket);
        else closeAfterResponse.add(socket);
      }
      return affected;
    },
    destroyAll() {
      const open = raw.size;
      for (const socket of raw) socket.destroy();
      for (const socket of busy.keys()) socket.destroy();
      return open;
    },
  };
}
