// The connection guard over a plain node:http server and raw TCP clients: one request at a time per connection,
// bounded queue, nothing started after a closing response, and no raw error written over an owed response.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_QUEUED_REQUESTS, createConnectionGuard, endAfterFlush, type RefusalReason } from '../../src/edge/connection-guard.js';
import { splitResponses } from '../helpers/raw-client.js';

interface Harness {
  readonly port: number;
  readonly started: string[];
  readonly refused: RefusalReason[];
  maxConcurrent: number;
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function start(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Harness> {
  const harness: Harness = { port: 0, started: [], refused: [], maxConcurrent: 0 };
  let running = 0;
  const guard = createConnectionGuard({ onRefused: (reason) => harness.refused.push(reason) });
  server = createServer((req, res) =>
    guard.admit(req, res, () => {
      harness.started.push(req.url!);
      running++;
      harness.maxConcurrent = Math.max(harness.maxConcurrent, running);
      res.once('finish', () => running--);
      answer(req, res);
    }),
  );
  server.on('clientError', (_err: Error, socket: Socket) => {
    if (!guard.mayAnswerClientError(socket)) return;
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 3\r\n\r\nraw');
    endAfterFlush(socket);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return Object.assign(harness, { port: (server!.address() as AddressInfo).port });
}

/** Writes `bytes` in one go and reads until the server closes (or 3 s). */
function exchange(port: number, bytes: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, 3000);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(bytes);
  });
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
const later = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) =>
  setTimeout(() => res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body), 5);

describe('connection guard', () => {
  it('runs pipelined requests one at a time, in order', async () => {
    const h = await start((req, res) => later(res, 200, req.url!));
    const { text } = await exchange(h.port, get('/1') + get('/2') + get('/3', 'Connection: close\r\n'));
    expect(splitResponses(text).map((r) => r.body)).toEqual(['/1', '/2', '/3']);
    expect(h.started).toEqual(['/1', '/2', '/3']);
    expect(h.maxConcurrent).toBe(1);
  });

  it('starts nothing after a response that says Connection: close', async () => {
    const h = await start((req, res) => later(res, req.url === '/bad' ? 400 : 200, 'x', req.url === '/bad' ? { connection: 'close' } : {}));
    const { text, closed } = await exchange(h.port, get('/ok') + get('/bad') + get('/after') + get('/after2'));
    expect(splitResponses(text).map((r) => r.status)).toEqual([200, 400]);
    expect(closed).toBe(true);
    expect(h.started).toEqual(['/ok', '/bad']);
    expect(h.refused.length).toBeGreaterThanOrEqual(1);
  });

  it('starts nothing after a request that ends the connection (HTTP/1.0, Connection: close)', async () => {
    const h = await start((req, res) => later(res, 200, req.url!));
    const ten = await exchange(h.port, `GET /ten HTTP/1.0\r\n\r\n${get('/after')}`);
    expect(splitResponses(ten.text).map((r) => r.body)).toEqual(['/ten']);
    const close = await exchange(h.port, get('/close', 'Connection: close\r\n') + get('/after'));
    expect(splitResponses(close.text).map((r) => r.body)).toEqual(['/close']);
    expect(h.started).toEqual(['/ten', '/close']);
  });

  it('answers the owed request, not a raw error, when garbage follows it, then closes', async () => {
    const h = await start((req, res) => later(res, 200, req.url!));
    const { text, closed } = await exchange(h.port, `${get('/real')}NOT HTTP\r\n\r\n${get('/after')}`);
    expect(text).not.toContain('raw');
    expect(splitResponses(text).map((r) => r.body)).toEqual(['/real']);
    expect(splitResponses(text)[0]!.headers.connection).toBe('close');
    expect(closed).toBe(true);
    expect(h.started).toEqual(['/real']);
  });

  it('writes the raw error when nothing is owed on the connection', async () => {
    const h = await start((req, res) => later(res, 200, req.url!));
    const { text, closed } = await exchange(h.port, 'NOT HTTP\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(closed).toBe(true);
    expect(h.started).toEqual([]);
  });

  it(`closes a connection that pipelines more than ${MAX_QUEUED_REQUESTS} requests behind the one in progress`, async () => {
    const h = await start((req, res) => later(res, 200, req.url!));
    const many = Array.from({ length: MAX_QUEUED_REQUESTS + 5 }, (_, i) => get(`/${i}`)).join('');
    const { text, closed } = await exchange(h.port, many);
    expect(closed).toBe(true);
    expect(splitResponses(text).map((r) => r.body)).toEqual(['/0']);
    expect(h.started).toEqual(['/0']);
    expect(h.refused).toContain('queue-full');
  });
});
