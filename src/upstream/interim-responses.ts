// Interim (1xx) responses an upstream sends before its answer, removed from the upstream socket before undici's
// parser sees them. RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses received prior to a
// final response, even if the client does not expect one"; a proxy may discard those it did not ask for. undici's
// HTTP/1.1 client destroys the connection on any `100 Continue` it did not ask for (SocketError "bad response",
// nodejs/undici#197, wontfix), which would turn an upstream's harmless 100 into a 502 after the request had been
// delivered. The gateway never sends `Expect` upstream (it answers 100-continue itself and forwards whole bodies),
// so no 1xx is ever solicited and each one can be dropped.
//
// How: the forwarder writes each request (head and buffered body) in one tick and runs one request at a time per
// connection (pipelining 1), so the first bytes that arrive after a write are the start of that request's response.
// Until a final status line has been seen, complete interim heads (`HTTP/1.x 1xx …\r\n…\r\n\r\n`, 101 excepted) are
// dropped; everything from the final status line on passes untouched. Bounded: an interim head larger than
// MAX_INTERIM_HEAD_BYTES is passed on as it is, for the parser to refuse.
import type { Socket } from 'node:net';

export const MAX_INTERIM_HEAD_BYTES = 16 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n');
/** `HTTP/1.1 1` is 10 bytes; the third status digit and the space follow. */
const PREFIX = Buffer.from('HTTP/1.');

type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean;

/**
 * Installs the filter on a freshly connected upstream socket. It wraps the socket's own `push` (where Node hands
 * received bytes to the stream, decrypted for TLS) and `write` (which marks the start of a new exchange).
 */
export function dropInterimResponses(socket: Socket): void {
  const push: Push = socket.push.bind(socket);
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let awaitingFinal = false;
  let held: Buffer | undefined;

  socket.write = ((...args: unknown[]) => {
    awaitingFinal = true;
    return write(...args);
  }) as Socket['write'];

  socket.push = ((chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (!awaitingFinal || !Buffer.isBuffer(chunk)) {
      if (chunk === null && held) {
        push(held);
        held = undefined;
      }
      return push(chunk, encoding);
    }
    let data = held ? Buffer.concat([held, chunk]) : chunk;
    held = undefined;
    for (;;) {
      const verdict = classify(data);
      if (verdict === 'need-more') {
        if (data.length > MAX_INTERIM_HEAD_BYTES) break;
        held = data;
        return true;
      }
      if (verdict === 'final') break;
      const end = data.indexOf(HEAD_END);
      if (end === -1 ? data.length > MAX_INTERIM_HEAD_BYTES : end + HEAD_END.length > MAX_INTERIM_HEAD_BYTES) break;
      if (end === -1) {
        held = data;
        return true;
      }
      data = data.subarray(end + HEAD_END.length);
      if (data.length === 0) return true;
    }
    awaitingFinal = false;
    return push(data);
  }) as Socket['push'];
}

/** What the start of a response is: an interim head to drop, the final answer, or too short to tell. */
function classify(data: Buffer): 'interim' | 'final' | 'need-more' {
  const known = Math.min(data.length, PREFIX.length);
  if (data.compare(PREFIX, 0, known, 0, known) !== 0) return 'final';
  if (data.length < 13) return 'need-more';
  // `HTTP/1.x SDD `: byte 7 the minor version, 8 a space, 9–11 the status code.
  if (data[8] !== 0x20 || data[9] !== 0x31) return 'final';
  if (data[10] === 0x30 && data[11] === 0x31) return 'final'; // 101 Switching Protocols is not interim here
  return 'interim';
}
