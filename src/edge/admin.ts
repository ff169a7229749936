// The admin listener (default 127.0.0.1:9464), separate from the mTLS port: /metrics, /healthz, /readyz.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<{ ok: boolean; reason: string }>;
}

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly checks: readonly ReadinessCheck[];
  /** Checks are time-boxed so a hung dependency makes /readyz fail, not hang. */
  readonly checkTimeoutMs?: number;
}

export interface RunningAdmin {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdmin(options: AdminOptions): Promise<RunningAdmin> {
  const timeoutMs = options.checkTimeoutMs ?? 2000;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"status":"alive"}\n');
      return;
    }
    if (path === '/readyz') {
      void readiness(options.checks, timeoutMs).then((report) => {
        res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(`${JSON.stringify(report)}\n`);
      });
      return;
    }
    if (path === '/metrics') {
      options.metrics().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export async function readiness(checks: readonly ReadinessCheck[], timeoutMs: number): Promise<{ ready: boolean; checks: Record<string, { ok: boolean; reason: string }> }> {
  const results = await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<{ ok: boolean; reason: string }>((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
      });
      try {
        const result = await Promise.race([c.check().catch((err: Error) => ({ ok: false, reason: err.message })), timeout]);
        return [c.name, result] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ready: results.every(([, r]) => r.ok), checks: Object.fromEntries(results) };
}
