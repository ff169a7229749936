// Reads a node:http request body whole under a byte cap: refused before a byte is read when Content-Length
// already says more, else as soon as more arrives. The one body reader for the gateway edge, the standalone core's
// HTTP server and the echo upstream. Rejects with PayloadTooLargeError over the cap, or an error on client abort.
import type { IncomingMessage } from 'node:http';
import { PayloadTooLargeError } from '../pipeline/types.js';

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(new PayloadTooLargeError('declared body over limit'));
  // A request whose connection has gone before its body was read never emits another event.
  if (req.destroyed && !req.readableEnded) return Promise.reject(new Error('client aborted'));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new PayloadTooLargeError('body over limit'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => onError(new Error('client aborted'));
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onClose = () => {
      if (!req.complete) onAborted();
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}
