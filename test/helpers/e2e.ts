// End-to-end harness: real certificates generated in the test run, a real upstream process that counts what it
// receives, the gateway started in-process on an ephemeral loopback port, and an HTTPS client with client certs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { generateExampleCertificates } from '../../certs-example/generate.js';
import { startApp, type RunningApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { PROJECT_ROOT } from '../../src/paths.js';

const UPSTREAM_SCRIPT = fileURLToPath(new URL('./counting-upstream.mjs', import.meta.url));

export type ClientName = 'gp-system' | 'child-health' | 'unregistered' | 'untrusted' | 'expired' | 'revoked' | 'none';

export interface Pki {
  readonly dir: string;
  file(name: string): string;
  read(name: string): Buffer;
  cleanup(): void;
}

export function createPki(extraClients?: Record<string, string>): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'nems-pki-'));
  generateExampleCertificates(dir, extraClients ? { extraClients } : {});
  return {
    dir,
    file: (name) => join(dir, name),
    read: (name) => readFileSync(join(dir, name)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  readonly rawHeaders: string[];
  /** base64 */
  readonly body: string;
  /** False when the request was cut off before its end (the upstream records partial requests too). */
  readonly complete: boolean;
}

export interface CountingUpstream {
  readonly url: string;
  readonly port: number;
  /** `cut`: answers that ended before they were fully written (the gateway went away, or a reset fault). */
  stats(): Promise<{ count: number; openSockets: number; cut: number; received: ReceivedRequest[] }>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the counting upstream process, on `port` when given (to bring a stopped upstream back at its address). */
export async function startCountingUpstream(port?: number): Promise<CountingUpstream> {
  const child: ChildProcess = spawn(process.execPath, [UPSTREAM_SCRIPT, ...(port ? [String(port)] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const listening = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`upstream exited ${code}`)));
    setTimeout(() => reject(new Error('upstream did not start')), 10_000).unref();
  });
  const url = `http://127.0.0.1:${listening}`;
  const control = (path: string) =>
    new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest(`${url}${path}`, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      req.end();
    });
  return {
    url,
    port: listening,
    stats: async () => JSON.parse((await control('/__test/stats')).toString()),
    reset: async () => {
      await control('/__test/reset');
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Stands for an object a `beforeAll` hook makes later: every property read goes to it (methods bound to it), so a
 * file can name it at the top level (`const { pki, upstream } = usePkiAndUpstream()`) and use it in its tests.
 * Reading it before the hook ran throws.
 */
function madeLater<T extends object>(what: string, current: () => T | undefined): T {
  return new Proxy({} as T, {
    get(_stand, property) {
      const target = current();
      if (target === undefined) throw new Error(`${what} is read before the beforeAll hook that makes it ran`);
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The PKI and counting upstream process of a file (or of a describe block). */
export interface PkiAndUpstream<P extends Pki = Pki> {
  readonly pki: P;
  readonly upstream: CountingUpstream;
}

/**
 * The set-up most end-to-end files share: a fresh PKI (`makePki`, default the example PKI) and a counting upstream
 * process, made in `beforeAll` and removed in `afterAll`. Hooks the file defines after this call run after it, and
 * their `afterAll` before it (vitest's stack order): a gateway started later is stopped before the upstream.
 */
export function usePkiAndUpstream<P extends Pki = Pki>(makePki: () => P = createPki as () => P): PkiAndUpstream<P> {
  let pki: P | undefined;
  let upstream: CountingUpstream | undefined;
  beforeAll(async () => {
    pki = makePki();
    upstream = await startCountingUpstream();
  });
  afterAll(async () => {
    await upstream?.stop();
    pki?.cleanup();
  });
  return { pki: madeLater('the PKI', () => pki), upstream: madeLater('the counting upstream', () => upstream) };
}

/** A gateway started in-process for a file (or a describe block) by useTestGateway. */
export interface TestGateway<P extends Pki = Pki> extends PkiAndUpstream<P> {
  readonly app: RunningApp;
  /** The gateway's mTLS port. */
  readonly port: number;
}

export interface TestGatewayOptions<P extends Pki> {
  /** A PKI and upstream already made for the file (usePkiAndUpstream), e.g. shared by one gateway per forwarding engine. */
  readonly shared?: PkiAndUpstream<P>;
  /** Without `shared`: makes the gateway's own PKI (default the example PKI). */
  readonly makePki?: () => P;
  /** Changes to testConfig's raw config. */
  readonly patch?: (raw: Record<string, any>) => void;
  /** Collects the gateway's log lines (the logger writes at the config's logging.level). */
  readonly logLines?: string[];
  /** Resets the upstream's record before each test. */
  readonly resetUpstreamBeforeEach?: boolean;
}

/**
 * The gateway most end-to-end files test: testConfig in front of the counting upstream, started in `beforeAll` and
 * stopped in `afterAll` of the enclosing block; its own PKI and upstream unless `shared` names the file's.
 */
export function useTestGateway<P extends Pki = Pki>(options: TestGatewayOptions<P> = {}): TestGateway<P> {
  const files = options.shared ?? usePkiAndUpstream(options.makePki);
  let app: RunningApp | undefined;
  beforeAll(async () => {
    const config = testConfig(files.pki, { upstreamUrl: files.upstream.url, ...(options.patch ? { patch: options.patch } : {}) });
    app = await startTestApp(config, options.logLines ? { logLines: options.logLines } : {});
  });
  afterAll(async () => {
    await app?.stop();
  });
  if (options.resetUpstreamBeforeEach) {
    beforeEach(async () => {
      await files.upstream.reset();
    });
  }
  const running = madeLater('the test gateway', () => app);
  return {
    pki: files.pki,
    upstream: files.upstream,
    app: running,
    get port() {
      return running.gateway.port;
    },
  };
}

/** The `server` and `admin` config of every test gateway: loopback, ephemeral ports, the generated PKI. */
export function loopbackListeners(pki: Pki): Record<string, any> {
  return {
    server: {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.file('server.pem'), key: pki.file('server-key.pem'), ca: pki.file('ca.pem'), crl: pki.file('crl.pem') },
      limits: { headersTimeoutMs: 5000, requestTimeoutMs: 10000 },
    },
    admin: { host: '127.0.0.1', port: 0 },
  };
}

/** A config for tests: ephemeral ports, generated PKI, repo registry and PDS data, silent logs, profile strict. */
export function testConfig(pki: Pki, overrides: { upstreamUrl?: string; dataDir?: string; patch?: (raw: Record<string, any>) => void } = {}): Config {
  const raw: Record<string, any> = {
    ...loopbackListeners(pki),
    registry: { path: join(PROJECT_ROOT, 'config', 'endpoints.yaml') },
    upstream: overrides.upstreamUrl
      ? { kind: 'http', url: overrides.upstreamUrl, timeoutMs: 2000, connectTimeoutMs: 1000 }
      : { kind: 'embedded' },
    pds: { kind: 'local', local: { path: join(PROJECT_ROOT, 'config', 'pds-local.yaml') } },
    core: { dataDir: overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'nems-core-')) },
    logging: { level: 'silent' },
    // readinessGraceMs defaults to 5 s (Kubernetes); tests stop at once unless they test the grace.
    lifecycle: { watchFiles: false, drainDeadlineMs: 2000, readinessGraceMs: 0 },
    // The suites were written against the guide to the letter; a test of the shipped profile patches this away.
    policy: { profile: 'strict' },
  };
  overrides.patch?.(raw);
  return parseConfig(raw, join(PROJECT_ROOT, 'config', 'gateway.yaml'));
}

/** Starts a gateway in-process with its own metrics registry; `logLines` collects what it logs. */
export async function startTestApp(config: Config, opts: { now?: () => number; logLines?: string[] } = {}): Promise<RunningApp> {
  const lines = opts.logLines;
  return startApp({
    config,
    logger: createLogger(config.logging.level, lines ? { write: (line: string) => void lines.push(line) } : undefined),
    metrics: createMetrics({ collectDefault: false }),
    ...(opts.now ? { now: opts.now } : {}),
  });
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly text: string;
}

export interface ClientRequest {
  readonly method?: string;
  readonly path: string;
  /** Either an object or raw name/value pairs (to send duplicates and exact casing). */
  readonly headers?: Record<string, string> | [string, string][];
  readonly body?: Buffer | string;
  readonly client: ClientName;
  readonly agent?: RequestOptions['agent'];
  readonly timeoutMs?: number;
}

/** One HTTPS request with the named client certificate. Rejects on TLS failure (as OpenSSL decided). */
export function send(pki: Pki, port: number, req: ClientRequest): Promise<ClientResponse> {
  const tlsOptions =
    req.client === 'none'
      ? {}
      : { cert: pki.read(`${req.client}.pem`), key: pki.read(`${req.client}-key.pem`) };
  // Raw name/value pairs (rawHeaders format) so duplicates and exact casing reach the wire as written.
  const pairs: [string, string][] = Array.isArray(req.headers) ? [...req.headers] : Object.entries(req.headers ?? {});
  const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
  if (body && !pairs.some(([h]) => h.toLowerCase() === 'content-length' || h.toLowerCase() === 'transfer-encoding')) {
    pairs.push(['content-length', String(body.length)]);
  }
  if (!pairs.some(([h]) => h.toLowerCase() === 'host')) pairs.unshift(['Host', `localhost:${port}`]);
  const headers = pairs.flat();
  return new Promise<ClientResponse>((resolve, reject) => {
    const r = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: req.method ?? 'GET',
        path: req.path,
        headers,
        ca: pki.read('ca.pem'),
        servername: 'localhost',
        agent: req.agent ?? false,
        ...tlsOptions,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, text: buf.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    r.setTimeout(req.timeoutMs ?? 10_000, () => r.destroy(new Error('client timeout')));
    r.on('error', reject);
    r.end(body);
  });
}

/** Extracts the Spine code from an OperationOutcome in XML or JSON. */
export function spineCodeOf(text: string): string | undefined {
  const xml = /<details><coding>.*?<code value="([A-Z_]+)"\/>/s.exec(text);
  if (xml) return xml[1];
  try {
    return JSON.parse(text).issue?.[0]?.details?.coding?.[0]?.code;
  } catch {
    return undefined;
  }
}
