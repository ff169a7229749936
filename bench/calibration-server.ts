// Calibration for reading the benchmark on a given machine: the least a Node process can spend per request with
// the same mTLS edge and the same load. `https`: a bare node:https server (client certificates required, no
// checks, no logging) that answers a GET itself. `proxy`: the same server relaying every request to the upstream
// through an undici Pool with nothing else. The gateway can only cost more than these; the gap is what its checks,
// metrics and audit line cost. Reports its port over IPC.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { Pool, type Dispatcher } from 'undici';

const [mode, pkiDir, upstream] = process.argv.slice(2);
if ((mode !== 'https' && mode !== 'proxy') || !pkiDir) throw new Error('usage: calibration-server <https|proxy> <pki-dir> [upstream-url]');
const BODY = Buffer.from(
  '<Subscription xmlns="http://hl7.org/fhir"><id value="8f3d2c1b0a9e4d7c6b5a4f3e2d1c0b9a"/><status value="active"/>' +
    '<channel><type value="message"/><endpoint value="A83627MB001"/></channel></Subscription>',
);
const pool = mode === 'proxy' && upstream ? new Pool(upstream, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000 }) : undefined;

const server = createServer(
  {
    cert: readFileSync(join(pkiDir, 'server.pem')),
    key: readFileSync(join(pkiDir, 'server-key.pem')),
    ca: readFileSync(join(pkiDir, 'ca.pem')),
    requestCert: true,
    rejectUnauthorized: true,
  },
  (req, res) => {
    if (!pool) {
      res.writeHead(200, { 'content-type': 'application/fhir+xml;charset=utf-8', 'content-length': BODY.length });
      res.end(BODY);
      return;
    }
    const chunks: Buffer[] = [];
    let status = 502;
    let headers: Record<string, string | string[] | undefined> = {};
    const handler: Dispatcher.DispatchHandler = {
      // undici takes a handler as the current API (not the legacy one) only when it has onRequestStart.
      onRequestStart() {},
      onResponseStart(_c, statusCode, h) {
        status = statusCode;
        headers = h;
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        const body = Buffer.concat(chunks);
        res.writeHead(status, { 'content-type': headers['content-type'] ?? 'application/octet-stream', 'content-length': body.length });
        res.end(body);
      },
      onResponseError() {
        res.writeHead(502).end();
      },
    };
    pool.dispatch({ method: 'GET', path: req.url ?? '/', headers: { accept: req.headers.accept ?? '*/*' } }, handler);
  },
);
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
