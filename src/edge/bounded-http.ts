// One HTTP(S) exchange with a time box and a byte cap, for the revocation fetchers (CRL distribution points and
// OCSP responders): both answer over plain HTTP as a rule (RFC 5280 §4.2.1.13, RFC 6960 appendix A), and both are
// hostile input until their signature is checked. No redirects are followed.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface BoundedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export class BoundedHttpError extends Error {
  constructor(readonly kind: 'timeout' | 'too-large' | 'network', message: string) {
    super(message);
    this.name = 'BoundedHttpError';
  }
}

export interface BoundedRequest {
  readonly method?: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
  /** Whole exchange: connect, request, headers and body. */
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export function boundedHttp(url: string, options: BoundedRequest): Promise<BoundedResponse> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<BoundedResponse>((resolve, reject) => {
    let settled = false;
    const fail = (err: BoundedHttpError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new BoundedHttpError('timeout', `no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    const req = send(target, {
      method: options.method ?? 'GET',
      agent: false,
      headers: { ...options.headers, ...(options.body ? { 'content-length': String(options.body.length) } : {}) },
    }, (res) => {
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > options.maxBytes) {
        fail(new BoundedHttpError('too-large', `answer declares ${declared} bytes, more than ${options.maxBytes}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) {
          fail(new BoundedHttpError('too-large', `answer exceeds ${options.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size) });
      });
      res.on('error', (err: NodeJS.ErrnoException) => fail(new BoundedHttpError('network', err.code ?? 'response error')));
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail(new BoundedHttpError('network', err.code ?? 'request error')));
    req.end(options.body);
  });
}
