// The 1xx filter on an upstream socket: interim heads before the final answer are dropped however they are split
// across reads; the final answer, and anything in it that looks like a status line, passes untouched.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_INTERIM_HEAD_BYTES, dropInterimResponses } from '../../src/upstream/interim-responses.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A raw upstream that answers each request with `pieces`, one write per piece (a few ms apart), then closes. */
async function exchange(pieces: readonly string[], requests = 1): Promise<string> {
  server = createServer((socket: Socket) => {
    let seen = 0;
    socket.on('data', async () => {
      // One answer per request, in order: the answers of a kept-alive connection never interleave.
      if (++seen > requests) return;
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 3));
      }
      if (seen === requests) socket.end();
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  dropInterimResponses(client);
  let received = '';
  client.on('data', (c: Buffer) => (received += c.toString('latin1')));
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await new Promise<void>((resolve) => client.once('connect', resolve));
  for (let i = 0; i < requests; i++) {
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 5 + pieces.length * 5));
  }
  await closed;
  return received;
}

const FINAL = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

describe('dropInterimResponses', () => {
  it('drops a 100 Continue sent before the answer', async () => {
    expect(await exchange(['HTTP/1.1 100 Continue\r\n\r\n', FINAL])).toBe(FINAL);
  });

  it('drops 100, 102 and 103 (with headers) sent in one piece with the answer', async () => {
    expect(await exchange([`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n${FINAL}`])).toBe(FINAL);
  });

  it('drops an interim head split byte by byte', async () => {
    expect(await exchange([...'HTTP/1.1 100 Continue\r\n\r\n', FINAL])).toBe(FINAL);
  });

  it('passes the final answer untouched, including a body that looks like an interim head', async () => {
    const tricky = 'HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n';
    expect(await exchange([tricky.slice(0, 40), tricky.slice(40)])).toBe(tricky);
  });

  it('passes 101 and non-HTTP bytes on for the parser to judge', async () => {
    expect(await exchange(['HTTP/1.1 101 Switching Protocols\r\n\r\n'])).toBe('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    expect(await exchange(['garbage\r\n\r\n'])).toBe('garbage\r\n\r\n');
  });

  it('passes an interim head larger than the bound on as it is', async () => {
    const huge = `HTTP/1.1 100 Continue\r\nX-Big: ${'a'.repeat(MAX_INTERIM_HEAD_BYTES)}\r\n\r\n`;
    const received = await exchange([huge]);
    expect(received.length).toBe(huge.length);
    expect(received === huge).toBe(true);
  });

  it('filters again at the start of every exchange on a kept-alive connection', async () => {
    expect(await exchange(['HTTP/1.1 100 Continue\r\n\r\n', FINAL], 2)).toBe(FINAL + FINAL);
  });
});
