// A raw mTLS client for tests where the exact bytes on the wire matter: pipelined requests in one write, stray
// bytes after a request, odd request lines, duplicate headers. It records everything the gateway sends until the
// gateway closes the connection (or the client's deadline passes) and splits it into HTTP responses.
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { ClientName, Pki } from './e2e.js';

export interface RawResponse {
  readonly statusLine: string;
  readonly status: number;
  /** Lower-case names; repeated headers joined with ', '. */
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface RawExchange {
  /** Every byte the gateway sent, as latin1 text. */
  readonly text: string;
  readonly responses: RawResponse[];
  /** The gateway closed the connection (FIN or reset) before the client's deadline. */
  readonly closedByGateway: boolean;
  /** The connection ended with a reset rather than a clean close. */
  readonly reset: boolean;
}

export interface RawOptions {
  readonly client?: ClientName;
  /** Give up waiting for the gateway to close after this long (the exchange still resolves). */
  readonly timeoutMs?: number;
  /** Pause between writes when `writes` has more than one element. */
  readonly gapMs?: number;
  /** Close the client side once this many complete responses have arrived. */
  readonly stopAfterResponses?: number;
}

/** Opens an mTLS connection, sends each element of `writes` as one write, collects the answer until close. */
export function rawExchange(pki: Pki, port: number, writes: ReadonlyArray<string | Buffer>, opts: RawOptions = {}): Promise<RawExchange> {
  const client = opts.client ?? 'gp-system';
  return new Promise<RawExchange>((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({
      host: '127.0.0.1', port, servername: 'localhost', ca: pki.read('ca.pem'),
      ...(client === 'none' ? {} : { cert: pki.read(`${client}.pem`), key: pki.read(`${client}-key.pem`) }),
    });
    const chunks: Buffer[] = [];
    let reset = false;
    let done = false;
    const finish = (closedByGateway: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ text, responses: splitResponses(text), closedByGateway, reset });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 5000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (opts.stopAfterResponses !== undefined && splitResponses(Buffer.concat(chunks).toString('latin1')).length >= opts.stopAfterResponses) finish(false);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reset = true;
      else if (chunks.length === 0 && !socket.authorized) return reject(err);
    });
    socket.on('close', () => finish(true));
    socket.once('secureConnect', async () => {
      for (let i = 0; i < writes.length; i++) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        if (socket.destroyed) return;
        socket.write(writes[i]!);
      }
    });
  });
}

/** Splits a byte stream into complete HTTP/1.1 responses (Content-Length or chunked bodies; 1xx have none). */
export function splitResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const lines = text.slice(at, headEnd).split('\r\n');
    const statusLine = lines[0]!;
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let bodyStart = headEnd + 4;
    let body = '';
    if (status >= 100 && status < 200) {
      body = '';
    } else if (headers['transfer-encoding']?.includes('chunked')) {
      let p = bodyStart;
      for (;;) {
        const lineEnd = text.indexOf('\r\n', p);
        if (lineEnd === -1) return out;
        const size = parseInt(text.slice(p, lineEnd), 16);
        if (Number.isNaN(size)) return out;
        if (size === 0) {
          bodyStart = lineEnd + 4;
          break;
        }
        if (lineEnd + 2 + size > text.length) return out;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        p = lineEnd + 2 + size + 2;
      }
      out.push({ statusLine, status, headers, body });
      at = bodyStart;
      continue;
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (bodyStart + length > text.length) break;
      body = text.slice(bodyStart, bodyStart + length);
      bodyStart += length;
    }
    out.push({ statusLine, status, headers, body });
    at = bodyStart;
  }
  return out;
}

/** One request as HTTP/1.1 text: request line, headers in the given order and spelling, body with its length. */
export function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string> | ReadonlyArray<readonly [string, string]>,
  body?: string | Buffer,
  version = 'HTTP/1.1',
): Buffer {
  const pairs = Array.isArray(headers) ? [...(headers as ReadonlyArray<readonly [string, string]>)] : Object.entries(headers);
  const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
  if (!pairs.some(([n]) => n.toLowerCase() === 'host')) pairs.unshift(['Host', 'localhost']);
  if (bytes && !pairs.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) pairs.push(['Content-Length', String(bytes.length)]);
  const head = `${method} ${path} ${version}\r\n${pairs.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return bytes ? Buffer.concat([Buffer.from(head, 'latin1'), bytes]) : Buffer.from(head, 'latin1');
}
