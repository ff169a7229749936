// Operations test helpers: the admin listener over plain HTTP, a small Prometheus text parser, promtool, and a
// TLS handshake probe that reports what OpenSSL decided (and which certificate the server presented).
import { spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { findExternalTool } from '../observability/helpers/external-tool.js';
import type { ClientName, Pki } from './e2e.js';

export interface AdminResponse {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly text: string;
}

/** GET on the admin listener (127.0.0.1). Rejects when nothing listens (e.g. ECONNREFUSED). */
export function adminGet(port: number, path: string, timeoutMs = 5000): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('admin request timed out')));
    req.on('error', reject);
    req.end();
  });
}

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the samples of a text exposition (enough for prom-client output: no timestamps, simple escapes). */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  return parseSamples(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Label sets of the samples named `name`. */
export function metricLabels(text: string, name: string): Array<Readonly<Record<string, string>>> {
  return parseSamples(text).filter((s) => s.name === name).map((s) => s.labels);
}

export const promtool = findExternalTool('promtool', 'apt-get install --no-install-recommends prometheus');

/** `promtool check metrics` on the exposition (stdin): status and whatever it printed. */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  const run = spawnSync(promtool.require(), ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, output: `${run.stdout ?? ''}${run.stderr ?? ''}` };
}

export interface HandshakeResult {
  /** True when the server accepted the client certificate (a request could be sent). */
  readonly ok: boolean;
  /** Serial number (hex, upper case, no leading zeros) of the certificate the server presented. */
  readonly serverSerial?: string;
  readonly error?: string;
}

/**
 * Opens one TLS connection with the named client certificate and reports whether the server accepted it. With
 * TLS 1.3 the server's verdict on the client certificate arrives after the client's handshake completes, so the
 * probe writes a request and waits for the answer or the alert.
 */
export function handshake(pki: Pki, port: number, client: ClientName, timeoutMs = 5000): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    let serverSerial: string | undefined;
    let settled = false;
    const done = (result: HandshakeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const socket = tlsConnect({
      host: '127.0.0.1', port, servername: 'localhost', ca: pki.read('ca.pem'),
      ...(client === 'none' ? {} : { cert: pki.read(`${client}.pem`), key: pki.read(`${client}-key.pem`) }),
    });
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs);
    socket.once('secureConnect', () => {
      serverSerial = socket.getPeerX509Certificate()?.serialNumber.toUpperCase().replace(/^0+/, '');
      // A request on the now-open connection: an HTTP answer means the server accepted us.
      socket.write('GET /__probe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.once('data', () => done({ ok: true, ...(serverSerial ? { serverSerial } : {}) }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, ...(serverSerial ? { serverSerial } : {}), error: err.code ?? err.message }));
    socket.once('close', () => done({ ok: false, ...(serverSerial ? { serverSerial } : {}), error: 'closed' }));
  });
}

/** Polls `fn` until it returns true (bounded). */
export async function eventually(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000, stepMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A loopback port with nothing listening on it (bound, then released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
