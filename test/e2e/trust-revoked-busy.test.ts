// Issue 13 D4: a client kept its busy keep-alive connection after a CRL reload revoked its certificate (22
// requests served in the next 8 s); idle connections were already closed. After a reload that revokes it, a
// connection serves no new request: the response in progress may finish, then the connection closes.
import { once } from 'node:events';
import { Agent } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { send, useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { eventually } from '../helpers/ops-admin.js';
import { createOpsPki, replaceFile } from '../helpers/ops-files.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
/** Upper bound on the busy loop, whatever happens (the loop normally ends when the connection closes). */
const MAX_REQUESTS = 400;
const WATCH_AFTER_RELOAD_MS = 3000;

const { pki, upstream, app } = useTestGateway({ makePki: createOpsPki });

describe('a busy keep-alive connection whose certificate a CRL reload revokes (D4)', () => {
  it('serves no request sent after the reload: the one in progress finishes, then the connection closes', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<TLSSocket>();
    agent.on('free', (socket: TLSSocket) => sockets.add(socket));
    let sequence = 0;
    let stopping = false;
    const outcomes: Array<{ seq: number; status?: number; error?: string }> = [];
    // Back to back on one connection, each answer delayed 40 ms upstream: there is nearly always a request in progress.
    const loop = (async () => {
      while (!stopping && sequence < MAX_REQUESTS) {
        const seq = ++sequence;
        try {
          const res = await send(pki, app.gateway.port, {
            client: 'gp-system', path: READ_PATH, agent,
            headers: { ...nemsHeaders('gp-system', 'read'), 'x-test-delay-ms': '40', 'x-test-seq': String(seq) },
          });
          outcomes.push({ seq, status: res.status });
        } catch (err) {
          outcomes.push({ seq, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
          // The gateway closed the revoked connection: a client would now try a new one, which OpenSSL refuses.
          break;
        }
      }
    })();
    await eventually(() => outcomes.length >= 5, 'five requests on the busy connection');
    expect(sockets.size).toBe(1);
    const busySocket = [...sockets][0]!;
    const closed = once(busySocket, 'close');

    replaceFile(pki.file('crl.pem'), pki.crlRevoking(['revoked', 'gp-system'], 2));
    const startedBeforeReload = sequence;
    expect(await app.reload(['tls'])).toEqual({ ok: true, failures: [] });
    const startedBeforeReloadDone = sequence;

    const watch = setTimeout(() => {
      stopping = true;
    }, WATCH_AFTER_RELOAD_MS);
    await loop;
    clearTimeout(watch);
    stopping = true;
    agent.destroy();

    const seen = (await upstream.stats()).received
      .filter((r) => r.headers['x-test-seq'] !== undefined)
      .map((r) => Number(r.headers['x-test-seq']));
    const servedAfterReload = seen.filter((seq) => seq > startedBeforeReloadDone);
    expect(servedAfterReload, `requests sent after the reload reached the upstream (reload began after #${startedBeforeReload})`).toEqual([]);
    // At most the one request in progress while the reload ran was answered after it.
    const answeredAfter = outcomes.filter((o) => o.seq > startedBeforeReload && o.status !== undefined);
    expect(answeredAfter.length).toBeLessThanOrEqual(startedBeforeReloadDone - startedBeforeReload);
    expect(await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 2000))])).toBe('closed');
    // The busy connection was the only one: no new connection for gp-system passed the handshake.
    expect(sockets.size).toBe(1);
  });
});

describe('a pipelining client whose certificate a CRL reload revokes (D4)', () => {
  it('keeps no request in the pipeline alive: nothing sent after the reload reaches the upstream', async () => {
    // This client keeps two requests outstanding at all times, so its connection is never idle.
    const socket = tlsConnect({
      host: '127.0.0.1', port: app.gateway.port, servername: 'localhost', ca: pki.read('ca.pem'),
      cert: pki.read('child-health.pem'), key: pki.read('child-health-key.pem'),
    });
    await once(socket, 'secureConnect');
    const headers = nemsHeaders('child-health', 'read');
    let sequence = 0;
    const request = () => {
      const seq = ++sequence;
      const lines = Object.entries({ ...headers, 'x-test-delay-ms': '40', 'x-request-id': `seq-${seq}` }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(`GET ${READ_PATH} HTTP/1.1\r\nHost: localhost\r\n${lines}\r\n`);
    };
    const answered: number[] = [];
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      for (const match of received.matchAll(/x-request-id: seq-(\d+)\r\n/gi)) {
        answered.push(Number(match[1]));
        if (sequence < MAX_REQUESTS) request();
      }
      received = received.slice(received.lastIndexOf('x-request-id: seq-') + 1);
    });
    socket.on('error', () => undefined);
    const closed = once(socket, 'close');
    request();
    request();
    await eventually(() => answered.length >= 5, 'five pipelined answers');

    replaceFile(pki.file('crl.pem'), pki.crlRevoking(['revoked', 'gp-system', 'child-health'], 3));
    const startedBeforeReload = sequence;
    expect(await app.reload(['tls'])).toEqual({ ok: true, failures: [] });
    const startedBeforeReloadDone = sequence;
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), WATCH_AFTER_RELOAD_MS))]);
    socket.destroy();

    const seen = (await upstream.stats()).received
      .map((r) => /^seq-(\d+)$/.exec(String(r.headers['x-request-id']))?.[1])
      .filter((seq): seq is string => seq !== undefined)
      .map(Number);
    expect(seen.filter((seq) => seq > startedBeforeReloadDone), `requests sent after the reload reached the upstream (reload began after #${startedBeforeReload})`).toEqual([]);
    expect(answered.filter((seq) => seq > startedBeforeReloadDone)).toEqual([]);
    expect(outcome).toBe('closed');
  });
});
