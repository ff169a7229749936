// createUpstream picks the Upstream that config.upstream.kind names (http, echo, embedded); redactUrl keeps
// credentials out of logs; endToEndResponseHeaders decides which upstream response headers reach the client;
// the loopback echo server answers with what it received.
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { startEchoServer } from '../../src/upstream/echo-server.js';
import { createHttpForwarder, createUpstream, redactUrl, type UpstreamHandle } from '../../src/upstream/index.js';
import { endToEndResponseHeaders } from '../../src/upstream/response-headers.js';
import type { Upstream } from '../../src/upstream/types.js';

function config(upstream: Record<string, unknown>): Config {
  return parseConfig({ server: { tls: { cert: 'c.pem', key: 'k.pem', ca: 'ca.pem' } }, registry: { path: 'r.yaml' }, upstream }, '/x/gateway.yaml');
}

function captureLogger() {
  const lines: string[] = [];
  return { logger: createLogger('info', { write: (s: string) => void lines.push(s) }), lines };
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

function httpCall(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A front server relaying every request through `upstream.forward`. */
async function through(upstream: Upstream, fn: (url: string) => Promise<void>): Promise<void> {
  const front = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { ...(req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {}), ...(body.length ? { 'content-length': String(body.length) } : {}) };
      upstream.forward({ requestId: 'r', method: req.method!, url: req.url!, headers, ...(body.length ? { body } : {}) }, req, res).catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  try {
    await fn(`http://127.0.0.1:${(front.address() as AddressInfo).port}`);
  } finally {
    await new Promise<void>((resolve) => {
      front.close(() => resolve());
      front.closeAllConnections();
    });
  }
}

describe('createUpstream', () => {
  it.each([
    ['undici', 'http:undici'],
    ['http-proxy', 'http:http-proxy'],
  ] as const)('kind http with engine %s forwards with that engine and logs the URL without credentials', async (engine, kind) => {
    const { logger, lines } = captureLogger();
    const handle = await createUpstream(config({ kind: 'http', engine, url: 'https://svc:s3cret@nems.example:4443/base?apikey=abc' }), logger);
    try {
      expect(handle.upstream.kind).toBe(kind);
      const logged = JSON.parse(lines.find((l) => l.includes('forwarding to a remote NEMS'))!);
      expect(logged).toMatchObject({ upstream: 'https://nems.example:4443/base', engine });
      expect(lines.join('')).not.toMatch(/s3cret|apikey|abc/);
    } finally {
      await handle.close();
    }
  });

  it('kind echo starts a loopback echo server and forwards to it; close() stops both', async () => {
    const { logger, lines } = captureLogger();
    const handle: UpstreamHandle = await createUpstream(config({ kind: 'echo' }), logger);
    const echoUrl = JSON.parse(lines.find((l) => l.includes('loopback echo'))!).upstream as string;
    expect(echoUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(handle.upstream.kind).toBe('http:undici');
    expect(await handle.upstream.ready()).toMatchObject({ ok: true });
    await through(handle.upstream, async (url) => {
      const res = await httpCall(`${url}/STU3/Subscription`, { method: 'POST', headers: { 'content-type': 'application/fhir+xml' }, body: Buffer.from('<Subscription/>') });
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('<Subscription/>');
      expect(res.headers['content-type']).toBe('application/fhir+xml');
    });
    await handle.close();
    await expect(httpCall(echoUrl)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('kind embedded uses the embedded core factory, and refuses without one', async () => {
    const { logger } = captureLogger();
    const fake: UpstreamHandle = { upstream: { kind: 'embedded' } as Upstream, close: async () => {} };
    expect(await createUpstream(config({ kind: 'embedded' }), logger, async () => fake)).toBe(fake);
    await expect(createUpstream(config({ kind: 'embedded' }), logger)).rejects.toThrow(/embedded NEMS core/);
  });

  it('createHttpForwarder refuses a config without a url', () => {
    expect(() => createHttpForwarder({ kind: 'http', engine: 'undici', connectTimeoutMs: 1, timeoutMs: 1, maxSockets: 1 })).toThrow(/upstream\.url/);
    expect(() => createHttpForwarder({ kind: 'http', engine: 'http-proxy', connectTimeoutMs: 1, timeoutMs: 1, maxSockets: 1 })).toThrow(/upstream\.url/);
  });
});

describe('redactUrl', () => {
  it.each([
    ['https://user:pass@msg.int.spine2.ncrs.nhs.uk/path?apikey=k#frag', 'https://msg.int.spine2.ncrs.nhs.uk/path'],
    ['http://127.0.0.1:9000', 'http://127.0.0.1:9000/'],
    ['https://token@nems.example', 'https://nems.example/'],
    ['not a url', '[invalid url]'],
  ])('%s → %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});

describe('endToEndResponseHeaders', () => {
  it('drops every hop-by-hop header and keeps end-to-end ones, lower-cased', () => {
    const out = endToEndResponseHeaders({
      'Content-Type': 'application/fhir+xml', ETag: 'W/"1"', Location: '/STU3/Subscription/abc',
      connection: 'keep-alive', 'keep-alive': 'timeout=5', 'proxy-authenticate': 'Basic', 'proxy-connection': 'x',
      te: 'trailers', trailer: 'x-checksum', 'transfer-encoding': 'chunked', upgrade: 'h2c',
    });
    expect(out).toEqual({ 'content-type': 'application/fhir+xml', etag: 'W/"1"', location: '/STU3/Subscription/abc' });
  });

  it('drops the headers named in Connection, whatever their case and spacing', () => {
    expect(endToEndResponseHeaders({ connection: ' X-Hop ,x-other,,', 'x-hop': '1', 'X-Other': '2', 'x-kept': '3' })).toEqual({ 'x-kept': '3' });
  });

  it('keeps repeated headers as lists and skips undefined values', () => {
    expect(endToEndResponseHeaders({ 'set-cookie': ['a=1', 'b=2'], 'x-missing': undefined })).toEqual({ 'set-cookie': ['a=1', 'b=2'] });
  });
});

describe('the loopback echo server', () => {
  it('answers a request with a body with that body, its content type and the method', async () => {
    const echo = await startEchoServer();
    try {
      const body = Buffer.from([0, 1, 2, 255, 254]);
      const res = await httpCall(`${echo.url}/x`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body });
      expect(res.status).toBe(200);
      expect(res.body.equals(body)).toBe(true);
      expect(res.headers['x-echo-method']).toBe('PUT');
      expect(res.headers['content-length']).toBe('5');
    } finally {
      await echo.close();
    }
  });

  it('answers a request without a body with a JSON summary of method, url and headers', async () => {
    const echo = await startEchoServer('127.0.0.1', 0);
    try {
      const res = await httpCall(`${echo.url}/STU3/Subscription/abc?_format=json`, { headers: { 'x-request-id': 'r-1' } });
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body.toString())).toMatchObject({ method: 'GET', url: '/STU3/Subscription/abc?_format=json', headers: { 'x-request-id': 'r-1' } });
    } finally {
      await echo.close();
    }
  });

  it('closes promptly even with a kept-alive connection open', async () => {
    const echo = await startEchoServer();
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      request(`${echo.url}/`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject).end();
    });
    const started = Date.now();
    await echo.close();
    expect(Date.now() - started).toBeLessThan(1000);
    agent.destroy();
  });
});
