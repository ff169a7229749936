// Issue 16 point 3: optional OCSP checking of client certificates, against a real responder (`openssl ocsp`, an
// independent implementation) run by this test on loopback over the example PKI. Answers are cached; a revoked
// answer is 403 ACCESS_DENIED; when the responder cannot answer, hard-fail gives 503 and soft-fail lets the request
// on; every status is counted and /readyz shows the checker.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { send, spineCodeOf, startCountingUpstream, startTestApp, testConfig, type ClientName, type CountingUpstream } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { adminGet, eventually, metricSum } from '../helpers/ops-admin.js';
import { createOpsPki, type OpsPki } from '../helpers/ops-files.js';
import { findExternalTool } from '../observability/helpers/external-tool.js';

const openssl = findExternalTool('openssl', 'apt-get install openssl');
const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const GP_FQDN = 'gp-system.example.nhs.uk';

/** openssl's CA database line for one certificate: V(alid) or R(evoked). */
function indexLine(pki: OpsPki, name: string, status: 'V' | 'R'): string {
  const x509 = new X509Certificate(pki.read(`${name}.pem`));
  const stamp = (date: Date) => date.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  const revokedAt = status === 'R' ? stamp(new Date(Date.now() - 60_000)) : '';
  const subject = `/${x509.subject.split('\n').join('/')}`;
  return [status, stamp(new Date(x509.validTo)), revokedAt, x509.serialNumber.toUpperCase(), 'unknown', subject].join('\t');
}

interface Responder {
  readonly url: string;
  /** Rewrites the responder's database (read on every request). */
  setIndex(entries: Record<string, 'V' | 'R'>): void;
  /** While down, every request gets 503 (an OCSP responder's tryLater would be answered the same way). */
  down: boolean;
  stop(): Promise<void>;
}

/**
 * An OCSP responder for the example CA on 127.0.0.1: each POSTed request goes to `openssl ocsp -reqin … -respout …`
 * (openssl builds and signs the answer from its index file, with the CA's key), and the answer is sent back.
 */
async function startResponder(pki: OpsPki, entries: Record<string, 'V' | 'R'>): Promise<Responder> {
  // Several example certificates share a subject (gp-system's FQDN): openssl's database must allow that.
  writeFileSync(pki.file('ocsp-index.txt.attr'), 'unique_subject = no\n');
  const setIndex = (next: Record<string, 'V' | 'R'>) =>
    writeFileSync(pki.file('ocsp-index.txt'), `${Object.entries(next).map(([name, status]) => indexLine(pki, name, status)).join('\n')}\n`);
  setIndex(entries);
  let sequence = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (responder.down || req.method !== 'POST') {
        res.writeHead(503).end();
        return;
      }
      const n = ++sequence;
      writeFileSync(pki.file(`ocsp-req-${n}.der`), Buffer.concat(chunks));
      execFile(openssl.require(), [
        'ocsp', '-index', 'ocsp-index.txt', '-CA', 'ca.pem', '-rsigner', 'ca.pem', '-rkey', 'ca-key.pem', '-nmin', '5',
        '-reqin', `ocsp-req-${n}.der`, '-respout', `ocsp-resp-${n}.der`,
      ], { cwd: pki.dir, timeout: 10_000 }, (err) => {
        if (err) {
          res.writeHead(500).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(readFileSync(pki.file(`ocsp-resp-${n}.der`)));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const responder: Responder = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    setIndex,
    down: false,
    stop: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
  return responder;
}

describe.skipIf(openssl.skip)('OCSP checking of client certificates (openssl ocsp responder)', () => {
  let pki: OpsPki;
  let upstream: CountingUpstream;
  let responder: Responder;
  let hard: RunningApp;
  let soft: RunningApp;
  const read = (app: RunningApp, client: string, headersFor: 'gp-system' | 'child-health' = 'gp-system') =>
    send(pki, app.gateway.port, { client: client as ClientName, path: READ_PATH, headers: nemsHeaders(headersFor, 'read') });
  const checks = async (app: RunningApp, status: string, cache: string) =>
    metricSum((await app.metrics.render()).body, 'nems_gateway_ocsp_checks_total', { status, cache });

  beforeAll(async () => {
    openssl.require();
    pki = createOpsPki();
    // Not in the responder's index: the responder answers "unknown" for it.
    pki.issueClient('gp-unlisted', GP_FQDN);
    pki.issueClient('gp-second', GP_FQDN);
    upstream = await startCountingUpstream();
    // child-health is revoked at the responder only (the CRL does not list it): OCSP is what refuses it.
    responder = await startResponder(pki, { 'gp-system': 'V', 'gp-second': 'V', 'child-health': 'R' });
    const ocspConfig = (policy: string) => testConfig(pki, {
      upstreamUrl: upstream.url,
      patch: (raw) => {
        raw.server.tls.ocsp = { enabled: true, policy, responderUrl: responder.url, timeoutMs: 2000, maxCacheSeconds: 60, failureCacheSeconds: 0 };
      },
    });
    hard = await startTestApp(ocspConfig('hard-fail'));
    soft = await startTestApp(ocspConfig('soft-fail'));
  });
  afterAll(async () => {
    await hard?.stop();
    await soft?.stop();
    await responder?.stop();
    await upstream?.stop();
    pki?.cleanup();
  });

  it('serves a certificate the responder says is good, asking once and answering later requests from the cache', async () => {
    expect((await read(hard, 'gp-system')).status).toBe(200);
    expect((await read(hard, 'gp-system')).status).toBe(200);
    expect(await checks(hard, 'good', 'miss')).toBe(1);
    expect(await checks(hard, 'good', 'hit')).toBeGreaterThanOrEqual(1);
    const ready = JSON.parse((await adminGet(hard.admin!.port, '/readyz')).text);
    expect(ready.checks.revocation.reason).toMatch(/OCSP: policy hard-fail; 1 answer\(s\) verified/);
  });

  it('answers 403 ACCESS_DENIED for a certificate the responder says is revoked (the CRL does not list it), in both policies', async () => {
    for (const app of [hard, soft]) {
      const revoked = await read(app, 'child-health', 'child-health');
      expect(revoked.status).toBe(403);
      expect(spineCodeOf(revoked.text)).toBe('ACCESS_DENIED');
      expect(revoked.text).toContain('The client certificate has been revoked');
      expect(await checks(app, 'revoked', 'miss')).toBe(1);
    }
    expect((await upstream.stats()).received.filter((r) => String(r.headers['x-forwarded-client-cert']).includes('child-health'))).toEqual([]);
  });

  it('refuses a certificate the responder does not know under hard-fail (403), lets it on under soft-fail', async () => {
    const unknownHard = await read(hard, 'gp-unlisted');
    expect([unknownHard.status, spineCodeOf(unknownHard.text)]).toEqual([403, 'ACCESS_DENIED']);
    expect((await read(soft, 'gp-unlisted')).status).toBe(200);
    expect(await checks(hard, 'unknown', 'miss')).toBe(1);
    expect(await checks(soft, 'unknown', 'miss')).toBe(1);
  });

  it('when the responder is down: hard-fail answers 503 SERVICE_UNAVAILABLE, soft-fail serves; cached answers still count', async () => {
    responder.down = true;
    const down = await read(hard, 'gp-second');
    expect([down.status, spineCodeOf(down.text)]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    expect(down.headers['retry-after']).toBe('5');
    expect((await read(soft, 'gp-second')).status).toBe(200);
    expect(await checks(hard, 'unavailable', 'miss')).toBeGreaterThanOrEqual(1);
    expect(await checks(soft, 'unavailable', 'miss')).toBeGreaterThanOrEqual(1);
    // gp-system's good answer is still cached (maxCacheSeconds 60, the answer's nextUpdate 5 minutes away).
    expect((await read(hard, 'gp-system')).status).toBe(200);
    const ready = JSON.parse((await adminGet(hard.admin!.port, '/readyz')).text);
    expect(ready.checks.revocation.reason).toMatch(/OCSP: policy hard-fail; .*last failure at .*: responder answered HTTP 503/);
    responder.down = false;
  });

  it('picks up a revocation at the responder once the cached answer expires, also on a busy keep-alive connection', async () => {
    const { Agent } = await import('node:https');
    const short = await startTestApp(testConfig(pki, {
      upstreamUrl: upstream.url,
      patch: (raw) => {
        raw.server.tls.ocsp = { enabled: true, responderUrl: responder.url, maxCacheSeconds: 1, failureCacheSeconds: 0 };
      },
    }));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const onConnection = () => send(pki, short.gateway.port, { client: 'gp-second' as ClientName, path: READ_PATH, headers: nemsHeaders('gp-system', 'read'), agent });
      expect((await onConnection()).status).toBe(200);
      responder.setIndex({ 'gp-system': 'V', 'gp-second': 'R', 'child-health': 'R' });
      await eventually(async () => (await onConnection()).status === 403, 'the revoked answer to reach the kept-alive connection', 10_000, 200);
    } finally {
      agent.destroy();
      await short.stop();
    }
  });
});
