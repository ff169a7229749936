// Readiness probe for a remote upstream or PDS: can a TCP connection be opened within the deadline?
import { connect } from 'node:net';

export function tcpReachable(url: URL, timeoutMs: number): Promise<{ ok: boolean; reason: string }> {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean, reason: string) => {
      socket.destroy();
      resolve({ ok, reason });
    };
    socket.setTimeout(timeoutMs, () => done(false, `${url.host} did not accept a connection within ${timeoutMs} ms`));
    socket.once('connect', () => done(true, `${url.host} reachable`));
    socket.once('error', (err: NodeJS.ErrnoException) => done(false, `${url.host} unreachable (${err.code ?? 'error'})`));
  });
}
