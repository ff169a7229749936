// A loopback echo upstream: answers every request with what it received. Used by `upstream.kind: echo`,
// the benchmark's direct baseline and tests that need to see exactly what the gateway forwarded.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from '../edge/read-body.js';

/** Larger than any body the gateway forwards (publish: 3 MB by default); a loopback test tool needs no tighter cap. */
const ECHO_MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface EchoServer {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

/** Body: the request body when there is one, else a JSON summary of method, url and headers. */
export async function startEchoServer(host = '127.0.0.1', port = 0): Promise<EchoServer> {
  const server = createServer((req: IncomingMessage, res) => {
    readBody(req, ECHO_MAX_BODY_BYTES).then((body) => {
      const reply = body.length
        ? body
        : Buffer.from(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
      res.writeHead(200, {
        'content-type': body.length ? (req.headers['content-type'] ?? 'application/octet-stream') : 'application/json',
        'content-length': reply.length,
        'x-echo-method': req.method ?? '',
      });
      res.end(reply);
    }, () => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
