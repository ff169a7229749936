// The two HTTP forwarding engines (undici, http-proxy) as units: a plain node:http front server calls forward()
// against a real loopback upstream. Faithful bytes and headers, hop-by-hop headers dropped, per-ASID upstream
// client certificates, keep-alive reuse, and the failure kinds the edge turns into 502/504.
import { randomBytes } from 'node:crypto';
import { Agent, createServer, request, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamConfig } from '../../src/config/schema.js';
import type { AsidRegistration } from '../../src/identity/types.js';
import { createHttpForwarder } from '../../src/upstream/index.js';
import { UpstreamError, headersToDrop, type ForwardResult, type Upstream } from '../../src/upstream/types.js';
import { createPki, type Pki } from '../helpers/e2e.js';

// ---------------------------------------------------------------------------------------------------------------
// A loopback upstream that records what it receives and answers by path.

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
  clientCn?: string;
}

interface TestUpstream {
  readonly url: string;
  readonly seen: Seen[];
  /** TCP connections accepted so far, and currently open. */
  readonly connections: () => { total: number; open: number };
  /** Requests the upstream is holding without answering (path /hang), how many were closed, and their sockets. */
  readonly hanging: () => { held: number; closed: number; socketsClosed: number };
  close(): Promise<void>;
}

const RESPONSE_BODY = randomBytes(64 * 1024);

function handler(seen: Seen[], hang: { held: number; closed: number; socketsClosed: number }) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const peer = (req.socket as TLSSocket).getPeerCertificate?.();
      seen.push({
        method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks),
        ...(peer?.subject ? { clientCn: String(peer.subject.CN) } : {}),
      });
      const path = req.url!.split('?')[0];
      if (path === '/hang') {
        hang.held++;
        res.once('close', () => hang.closed++);
        req.socket.once('close', () => hang.socketsClosed++);
        return;
      }
      if (path === '/cut') {
        res.writeHead(200, { 'content-length': 1000 });
        res.write('partial');
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      if (path === '/close') {
        res.writeHead(200, { connection: 'close', 'content-length': 2 });
        res.end('ok');
        return;
      }
      res.writeHead(203, 'Non-Authoritative', [
        ['Content-Type', 'application/octet-stream'],
        ['X-Custom', 'kept'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['Connection', 'X-Resp-Hop'],
        ['X-Resp-Hop', 'secret-of-the-hop'],
        ['Keep-Alive', 'timeout=99'],
        ['Proxy-Authenticate', 'Basic realm="upstream"'],
        ['Content-Length', String(RESPONSE_BODY.length)],
      ].flat());
      res.end(RESPONSE_BODY);
    });
  };
}

async function startUpstream(tls?: { pki: Pki }): Promise<TestUpstream> {
  const seen: Seen[] = [];
  const hang = { held: 0, closed: 0, socketsClosed: 0 };
  const server: Server = tls
    ? (createHttpsServer({
        cert: tls.pki.read('server.pem'), key: tls.pki.read('server-key.pem'), ca: tls.pki.read('ca.pem'),
        requestCert: true, rejectUnauthorized: true,
      }, handler(seen, hang)) as unknown as Server)
    : createServer(handler(seen, hang));
  const sockets = new Set<Socket>();
  let total = 0;
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    total++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    connections: () => ({ total, open: sockets.size }),
    hanging: () => ({ ...hang }),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// A front server doing what the edge does around forward(): read the body, build the headers, map failures.

type Outcome = { ok: true; result: ForwardResult } | { ok: false; error: UpstreamError };

interface Front {
  readonly port: number;
  readonly outcomes: Outcome[];
  close(): Promise<void>;
}

async function startFront(
  upstream: Upstream,
  opts: { asid?: (req: IncomingMessage) => AsidRegistration | undefined; rawHeaders?: boolean } = {},
): Promise<Front> {
  const outcomes: Outcome[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // The edge's filtering, unless a test wants to hand the forwarder hop-by-hop headers itself.
      const drop = opts.rawHeaders ? new Set<string>() : headersToDrop(req.headers.connection);
      const headers: OutgoingHttpHeaders = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i]!.toLowerCase();
        if (drop.has(name) || name === 'host' || name === 'content-length') continue;
        const value = req.rawHeaders[i + 1]!;
        const existing = headers[name];
        headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [String(existing)]), value];
      }
      if (body.length) headers['content-length'] = String(body.length);
      const asid = opts.asid?.(req);
      upstream
        .forward({ requestId: 'req-1', method: req.method!, url: req.url!, headers, ...(body.length ? { body } : {}), ...(asid ? { asid } : {}) }, req, res)
        .then(
          (result) => outcomes.push({ ok: true, result }),
          (error: UpstreamError) => {
            outcomes.push({ ok: false, error });
            if (!res.headersSent && !res.destroyed) res.writeHead(error.kind === 'timeout' ? 504 : 502).end(error.kind);
          },
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    outcomes,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

function call(
  port: number,
  opts: { method?: string; path?: string; headers?: [string, string][]; body?: Buffer; agent?: Agent | false; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // Raw pairs so duplicates reach the wire; Node adds no Host header to a raw list.
    const headers = [['Host', `127.0.0.1:${port}`], ...(opts.headers ?? [])].flat();
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 5000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function forwarderConfig(engine: UpstreamConfig['engine'], url: string, patch: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { kind: 'http', url, engine, connectTimeoutMs: 1000, timeoutMs: 2000, maxSockets: 8, ...patch };
}

// ---------------------------------------------------------------------------------------------------------------

let pki: Pki;
beforeAll(() => {
  pki = createPki();
});
afterAll(() => pki?.cleanup());

describe.each(['undici', 'http-proxy'] as const)('the %s forwarder', (engine) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(patch: Partial<UpstreamConfig> = {}, frontOpts: Parameters<typeof startFront>[1] = {}, upstreamUrl?: string) {
    const upstream = await startUpstream();
    cleanups.push(() => upstream.close());
    const forwarder = createHttpForwarder(forwarderConfig(engine, upstreamUrl ?? upstream.url, patch));
    cleanups.push(() => forwarder.close());
    const front = await startFront(forwarder, frontOpts);
    cleanups.push(() => front.close());
    return { upstream, forwarder, front };
  }

  it('is the engine the config names', async () => {
    const { forwarder } = await setup();
    expect(forwarder.kind).toBe(`http:${engine}`);
  });

  it('passes method, path and query, end-to-end headers (duplicates too) and the body bytes to the upstream', async () => {
    const { upstream, front } = await setup();
    const body = randomBytes(200 * 1024);
    const res = await call(front.port, {
      method: 'POST', path: '/STU3/Subscription?_format=xml&x=%2F', body,
      headers: [['Content-Type', 'application/fhir+xml'], ['X-Multi', 'one'], ['X-Multi', 'two'], ['fromASID', '200000000101']],
    });
    expect(res.status).toBe(203);
    const [seen] = upstream.seen;
    expect(seen!.method).toBe('POST');
    expect(seen!.url).toBe('/STU3/Subscription?_format=xml&x=%2F');
    expect(seen!.body.equals(body)).toBe(true);
    expect(seen!.headers['content-type']).toBe('application/fhir+xml');
    expect(seen!.headers['content-length']).toBe(String(body.length));
    expect(seen!.headers.fromasid).toBe('200000000101');
    expect(seen!.headers['x-multi']).toBe('one, two');
    expect(seen!.headers.host).toBe(new URL(upstream.url).host);
  });

  it('returns status, end-to-end response headers and the response body byte for byte', async () => {
    const { front, forwarder } = await setup();
    const res = await call(front.port);
    expect(res.status).toBe(203);
    expect(res.body.equals(RESPONSE_BODY)).toBe(true);
    expect(res.headers['x-custom']).toBe('kept');
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(front.outcomes).toEqual([{ ok: true, result: { status: 203, upstreamMs: expect.any(Number) } }]);
    expect(forwarder.kind).toMatch(/^http:/);
  });

  it('drops hop-by-hop response headers and every header the upstream named in Connection', async () => {
    const { front } = await setup();
    const res = await call(front.port);
    expect(res.headers['x-resp-hop']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    expect(res.headers['keep-alive']).not.toBe('timeout=99');
    expect(res.rawHeaders.join('\n')).not.toContain('secret-of-the-hop');
  });

  // The upstream's own Connection header is hop-by-hop: it never reaches the client (nor closes its connection).
  it('does not relay the upstream’s Connection header itself', async () => {
    const { front } = await setup();
    const res = await call(front.port);
    expect(String(res.headers.connection ?? '')).not.toMatch(/x-resp-hop/i);
  });

  it('keeps the client’s connection alive when the upstream answers Connection: close', async () => {
    const { front } = await setup();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    const res = await call(front.port, { path: '/close', agent });
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('keep-alive');
  });

  // Contract: ForwardRequest.headers already lack hop-by-hop headers (the edge removes them); the forwarders drop
  // them again anyway (defence in depth).
  it('drops hop-by-hop request headers handed to it (defence in depth)', async () => {
    const { upstream, front } = await setup({}, { rawHeaders: true });
    const res = await call(front.port, {
      headers: [['Connection', 'X-Req-Hop'], ['X-Req-Hop', '1'], ['Keep-Alive', 'timeout=5'], ['TE', 'trailers'], ['Proxy-Authorization', 'Basic eA=='], ['X-End', 'kept']],
    });
    expect(res.status).toBe(203);
    const headers = upstream.seen[0]!.headers;
    expect(headers['x-end']).toBe('kept');
    for (const name of ['x-req-hop', 'te', 'proxy-authorization']) expect(headers[name]).toBeUndefined();
    expect(headers['keep-alive']).toBeUndefined();
  });

  it('reuses upstream connections (keep-alive): the upstream sees fewer sockets than requests', async () => {
    const { upstream, front } = await setup();
    for (let i = 0; i < 6; i++) expect((await call(front.port, { path: `/r${i}` })).status).toBe(203);
    expect(upstream.seen).toHaveLength(6);
    expect(upstream.connections().total).toBeLessThanOrEqual(2);
  });

  it('rejects with UpstreamError("timeout") when the upstream does not answer within timeoutMs, and closes that request', async () => {
    const { upstream, front } = await setup({ timeoutMs: 300 });
    const started = Date.now();
    const res = await call(front.port, { path: '/hang' });
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(front.outcomes[0]).toMatchObject({ ok: false, error: { kind: 'timeout' } });
    expect(front.outcomes[0]!.ok === false && front.outcomes[0]!.error).toBeInstanceOf(UpstreamError);
    await until(() => upstream.hanging().closed === 1, 'the upstream request to be closed');
  });

  it('rejects with UpstreamError("unreachable") when the connection is refused', async () => {
    const closed = await startUpstream();
    const url = closed.url;
    await closed.close();
    const { front } = await setup({}, {}, url);
    const res = await call(front.port);
    expect(res.status).toBe(502);
    expect(front.outcomes[0]).toMatchObject({ ok: false, error: { kind: 'unreachable' } });
  });

  it('destroys the upstream request when the client goes away after sending its whole body', async () => {
    const { upstream, front } = await setup();
    const req = request({ host: '127.0.0.1', port: front.port, method: 'POST', path: '/hang', agent: false, headers: { 'content-length': '5' } });
    req.on('error', () => {});
    req.end('hello');
    await until(() => upstream.hanging().held === 1, 'the upstream to receive the request');
    req.destroy();
    await until(() => upstream.hanging().closed === 1, 'the upstream request to be destroyed');
    await until(() => front.outcomes.length === 1, 'forward() to settle');
    expect(front.outcomes[0]).toMatchObject({ ok: false, error: { kind: 'aborted' } });
    await until(() => upstream.hanging().socketsClosed === 1, 'the socket that carried it to be closed');
  });

  // When the upstream dies after the response head but before anything was written to the client (both engines
  // collect responses up to 64 KB first), forward() rejects without writing, so the edge can still answer 502 (D15).
  it('rejects "unreachable" without writing anything when the upstream dies mid-response before the client saw any of it', async () => {
    const { front } = await setup();
    const res = await call(front.port, { path: '/cut', timeoutMs: 1500 });
    expect(res.status).toBe(502);
    await until(() => front.outcomes.length === 1, 'forward() to settle');
    expect(front.outcomes[0]).toMatchObject({ ok: false, error: { kind: 'unreachable' } });
  });

  it('is ready when the upstream accepts connections and not when it refuses them', async () => {
    const { forwarder } = await setup();
    expect(await forwarder.ready()).toMatchObject({ ok: true });
    const closed = await startUpstream();
    await closed.close();
    const down = createHttpForwarder(forwarderConfig(engine, closed.url));
    cleanups.push(() => down.close());
    expect(await down.ready()).toMatchObject({ ok: false, reason: expect.stringContaining('unreachable') });
  });

  describe('over https with client certificates', () => {
    const registration = (asid: string, client?: string): AsidRegistration => ({
      asid, odsCodes: ['X1'], interactions: [], subscriptionTypes: [], mailboxes: [],
      ...(client ? { upstreamClientCertificate: { cert: pki.file(`${client}.pem`), key: pki.file(`${client}-key.pem`) } } : {}),
    });

    it('presents the per-ASID certificate for that ASID and the gateway’s own for every other request', async () => {
      const upstream = await startUpstream({ pki });
      cleanups.push(() => upstream.close());
      const forwarder = createHttpForwarder(forwarderConfig(engine, upstream.url, {
        tls: { ca: pki.file('ca.pem'), cert: pki.file('unregistered.pem'), key: pki.file('unregistered-key.pem') },
      }));
      cleanups.push(() => forwarder.close());
      const byHeader: Record<string, AsidRegistration> = {
        '200000000102': registration('200000000102', 'child-health'),
        '200000000101': registration('200000000101'),
      };
      const front = await startFront(forwarder, { asid: (req) => byHeader[String(req.headers.fromasid)] });
      cleanups.push(() => front.close());

      for (const asid of ['200000000102', '200000000101', 'none', '200000000102']) {
        expect((await call(front.port, { path: `/${asid}`, headers: [['fromASID', asid]] })).status).toBe(203);
      }
      expect(upstream.seen.map((s) => [s.url, s.clientCn])).toEqual([
        ['/200000000102', 'child-health.example.nhs.uk'],
        ['/200000000101', 'unregistered.example.nhs.uk'],
        ['/none', 'unregistered.example.nhs.uk'],
        ['/200000000102', 'child-health.example.nhs.uk'],
      ]);
      // One kept-alive connection per certificate.
      expect(upstream.connections().total).toBe(2);
    });

    it('fails as unreachable (never sends) when the upstream’s certificate is not from the configured CA', async () => {
      const upstream = await startUpstream({ pki });
      cleanups.push(() => upstream.close());
      const forwarder = createHttpForwarder(forwarderConfig(engine, upstream.url, {
        tls: { ca: pki.file('untrusted-ca.pem'), cert: pki.file('unregistered.pem'), key: pki.file('unregistered-key.pem') },
      }));
      cleanups.push(() => forwarder.close());
      const front = await startFront(forwarder);
      cleanups.push(() => front.close());
      expect((await call(front.port)).status).toBe(502);
      expect(front.outcomes[0]).toMatchObject({ ok: false, error: { kind: 'unreachable' } });
      expect(upstream.seen).toHaveLength(0);
    });
  });
});
