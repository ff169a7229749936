// Upstream readiness: the TCP reachability probe the HTTP forwarders use, and the admin listener's time-boxing
// of readiness checks, so a hung dependency makes /readyz answer 503 with a reason instead of hanging.
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { readiness, startAdmin, type ReadinessCheck } from '../../src/edge/admin.js';
import { tcpReachable } from '../../src/upstream/reachability.js';

async function listening(): Promise<{ url: URL; close: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('tcpReachable', () => {
  it('is ok when the upstream accepts a connection', async () => {
    const server = await listening();
    try {
      expect(await tcpReachable(server.url, 1000)).toEqual({ ok: true, reason: `${server.url.host} reachable` });
    } finally {
      await server.close();
    }
  });

  it('is not ok, with the error code, when the connection is refused', async () => {
    const server = await listening();
    await server.close();
    expect(await tcpReachable(server.url, 1000)).toEqual({ ok: false, reason: `${server.url.host} unreachable (ECONNREFUSED)` });
  });

  it('uses the URL’s port for https too', async () => {
    const server = await listening();
    try {
      const https = new URL(server.url.href.replace('http:', 'https:'));
      expect((await tcpReachable(https, 1000)).ok).toBe(true);
    } finally {
      await server.close();
    }
  });
});

const never: ReadinessCheck = { name: 'upstream', check: () => new Promise(() => {}) };
const fine: ReadinessCheck = { name: 'listening', check: async () => ({ ok: true, reason: 'port 1' }) };
const broken: ReadinessCheck = { name: 'pds', check: async () => { throw new Error('PDS token endpoint refused'); } };

describe('readiness() time-boxing', () => {
  it('reports a hung check as not ready with a reason, within the time box', async () => {
    const started = Date.now();
    const report = await readiness([fine, never], 150);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(report).toEqual({
      ready: false,
      checks: { listening: { ok: true, reason: 'port 1' }, upstream: { ok: false, reason: 'no answer within 150 ms' } },
    });
  });

  it('reports a check that throws as not ready with its message', async () => {
    expect(await readiness([fine, broken], 150)).toEqual({
      ready: false,
      checks: { listening: { ok: true, reason: 'port 1' }, pds: { ok: false, reason: 'PDS token endpoint refused' } },
    });
  });

  it('is ready when every check is', async () => {
    expect(await readiness([fine], 150)).toEqual({ ready: true, checks: { listening: { ok: true, reason: 'port 1' } } });
  });

  it('makes /readyz answer 503 with the reason, not hang, when a check hangs', async () => {
    const admin = await startAdmin({
      host: '127.0.0.1', port: 0, checks: [fine, never], checkTimeoutMs: 150,
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
    });
    try {
      const started = Date.now();
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = get({ host: '127.0.0.1', port: admin.port, path: '/readyz', agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        });
        req.setTimeout(3000, () => req.destroy(new Error('readyz hung')));
        req.on('error', reject);
      });
      expect(Date.now() - started).toBeLessThan(1500);
      expect(status).toBe(503);
      expect(JSON.parse(body)).toMatchObject({ ready: false, checks: { upstream: { ok: false, reason: 'no answer within 150 ms' } } });
    } finally {
      await admin.close();
    }
  });
});
