// A real upstream process for end-to-end tests: records every request it receives (method, url, headers, body
// bytes as base64, and whether the request arrived complete) and how many sockets are open. Control endpoints
// live under /__test/ and are not counted. Prints `listening <port>` on stdout. Loopback only; an optional first
// argument is the port to listen on (so a test can stop it and start it again at the same address).
//
// Behaviour per request:
//   x-test-delay-ms: N     answer after N ms
//   x-test-hang: 1         never answer
//   x-test-fault: <kind>   misbehave (the fault matrix of issue 13):
//     reset-before         reset the connection once the request is read, without a byte of answer
//     reset-during         send the head and 1 KB of a 4 KB body, then reset (the gateway still buffers it)
//     reset-streaming      send the head and 200 KB of a 400 KB body, then reset (the gateway is streaming it)
//     garbage-status       answer with a status line that is not HTTP
//     oversized-headers    answer with 64 KB of response headers
//     interim-100          an unsolicited `100 Continue` before the answer
//     interim-many         `100 Continue`, `102 Processing` and `103 Early Hints` before the answer
//     slow-body            a 1 MB answer in 16 KB pieces, one every 50 ms
import { createServer } from 'node:http';

const received = [];
let openSockets = 0;
/** Answers that were cut off before they were fully written (the gateway went away, or the upstream reset). */
let cut = 0;

const ANSWER_HEADERS = {
  'keep-alive': 'timeout=30',
  'x-upstream-custom': 'kept',
  connection: 'keep-alive, x-upstream-hop',
  'x-upstream-hop': 'must-be-removed',
};

function faulty(kind, req, res, answer) {
  const socket = req.socket;
  switch (kind) {
    case 'reset-before':
      socket.resetAndDestroy();
      return true;
    case 'reset-during':
    case 'reset-streaming': {
      const [sent, total] = kind === 'reset-during' ? [1024, 4096] : [200 * 1024, 400 * 1024];
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      res.write(Buffer.alloc(sent, 0x61), () => setTimeout(() => socket.resetAndDestroy(), 20));
      return true;
    }
    case 'garbage-status':
      socket.end('HTTP/1.1 2x0 Garbage\r\nContent-Length: 2\r\n\r\nok');
      return true;
    case 'oversized-headers':
      res.writeHead(200, { 'x-oversized': 'a'.repeat(64 * 1024), 'content-length': 2 });
      res.end('ok');
      return true;
    case 'interim-100':
      res.writeContinue();
      setTimeout(answer, 10);
      return true;
    case 'interim-many':
      res.writeContinue();
      res.writeProcessing();
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      setTimeout(answer, 10);
      return true;
    case 'slow-body': {
      const piece = Buffer.alloc(16 * 1024, 0x62);
      let left = 64;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': piece.length * left });
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        res.write(piece);
        if (--left === 0) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      res.once('close', () => clearInterval(timer));
      return true;
    }
    default:
      return false;
  }
}

const server = createServer((req, res) => {
  if (req.url.startsWith('/__test/')) {
    if (req.url === '/__test/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ count: received.length, openSockets: openSockets - 1, cut, received }));
      return;
    }
    if (req.url === '/__test/reset') {
      received.length = 0;
      cut = 0;
      res.writeHead(204).end();
      return;
    }
  }
  res.once('close', () => {
    if (!res.writableFinished) cut++;
  });
  const chunks = [];
  const record = (complete) => {
    const body = Buffer.concat(chunks);
    received.push({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: body.toString('base64'), complete });
    return body;
  };
  req.on('data', (c) => chunks.push(c));
  // A request cut off before its end is recorded too, so a test can tell "nothing" from "part of it".
  req.on('close', () => {
    if (!req.complete) record(false);
  });
  req.on('end', () => {
    const body = record(true);
    if (req.headers['x-test-hang']) return;
    const delay = Number(req.headers['x-test-delay-ms'] ?? 0);
    const answer = () => {
      const reply = body.length ? body : Buffer.from(`<Subscription xmlns="http://hl7.org/fhir"><id value="echo"/></Subscription>`);
      res.writeHead(req.method === 'POST' ? 201 : 200, {
        'content-type': req.headers['content-type'] ?? 'application/xml+fhir;charset=utf-8',
        'content-length': reply.length,
        'x-upstream-seen-request-id': req.headers['x-request-id'] ?? '',
        ...ANSWER_HEADERS,
      });
      res.end(reply);
    };
    const fault = req.headers['x-test-fault'];
    if (fault && faulty(String(fault), req, res, answer)) return;
    if (delay > 0) setTimeout(answer, Math.min(delay, 60_000)); else answer();
  });
});
server.on('connection', (socket) => {
  openSockets++;
  socket.on('close', () => openSockets--);
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
