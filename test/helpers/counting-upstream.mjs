// A real upstream process for end-to-end tests: records every request it receives (method, url, headers, body
// bytes as base64) and how many sockets are open. Control endpoints live under /__test/ and are not counted.
// Behaviour per request: header `x-test-delay-ms: N` delays the answer; header `x-test-hang: 1` never answers.
// Prints `listening <port>` on stdout. Loopback only.
import { createServer } from 'node:http';

const received = [];
let openSockets = 0;

const server = createServer((req, res) => {
  if (req.url.startsWith('/__test/')) {
    if (req.url === '/__test/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ count: received.length, openSockets: openSockets - 1, received }));
      return;
    }
    if (req.url === '/__test/reset') {
      received.length = 0;
      res.writeHead(204).end();
      return;
    }
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    received.push({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: body.toString('base64') });
    if (req.headers['x-test-hang']) return;
    const delay = Number(req.headers['x-test-delay-ms'] ?? 0);
    const answer = () => {
      const reply = body.length ? body : Buffer.from(`<Subscription xmlns="http://hl7.org/fhir"><id value="echo"/></Subscription>`);
      res.writeHead(req.method === 'POST' ? 201 : 200, {
        'content-type': req.headers['content-type'] ?? 'application/xml+fhir;charset=utf-8',
        'content-length': reply.length,
        'x-upstream-seen-request-id': req.headers['x-request-id'] ?? '',
        'keep-alive': 'timeout=30',
        'x-upstream-custom': 'kept',
        connection: 'keep-alive, x-upstream-hop',
        'x-upstream-hop': 'must-be-removed',
      });
      res.end(reply);
    };
    if (delay > 0) setTimeout(answer, Math.min(delay, 60_000)); else answer();
  });
});
server.on('connection', (socket) => {
  openSockets++;
  socket.on('close', () => openSockets--);
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
