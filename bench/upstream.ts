// Loopback stand-in for NEMS used by the benchmark: answers like NEMS would (200 with a small Subscription for a
// read, 201 with a Location for a create, 202 for a publish) after reading the whole body. Runs in its own process
// so its CPU is never counted as the gateway's. Reports its port over IPC; exits when the parent says so or goes.
import { createServer } from 'node:http';

const SUBSCRIPTION_XML = Buffer.from(
  '<Subscription xmlns="http://hl7.org/fhir"><id value="8f3d2c1b0a9e4d7c6b5a4f3e2d1c0b9a"/><status value="active"/>' +
    '<channel><type value="message"/><endpoint value="A83627MB001"/></channel></Subscription>',
);

const server = createServer((req, res) => {
  // Drain the body before answering, as a real server would.
  req.on('data', () => {});
  req.on('end', () => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/fhir+xml;charset=utf-8', 'content-length': SUBSCRIPTION_XML.length });
      res.end(SUBSCRIPTION_XML);
    } else if (req.method === 'POST' && req.url?.endsWith('/Subscription')) {
      res.writeHead(201, { location: 'https://localhost/STU3/Subscription/8f3d2c1b0a9e4d7c6b5a4f3e2d1c0b9a', 'content-length': 0 });
      res.end();
    } else if (req.method === 'POST') {
      res.writeHead(202, { 'content-length': 0 });
      res.end();
    } else {
      res.writeHead(204);
      res.end();
    }
  });
});
// Keep upstream connections open for the whole run so the gateway's pool is measured warm.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
