// A loopback stand-in for the MESH API, owned by this project. Routes, status codes, error words and mex-* headers
// follow NHSDigital/mesh-sandbox (commit 422c7d9: routers/, handlers/outbox.py, handlers/inbox.py,
// handlers/tracking.py, common/constants.py, views/error.py) and the MESH API documentation: handshake, send (with
// chunks), tracking by local id and by message id, inbox, download (206 for further chunks), acknowledge, and the
// NHSMESH HMAC-SHA256 Authorization check with the shared key. For tests: queued faults (a status instead of the
// answer, or "accept then answer 5xx"), a down mode, optional mTLS, and a record of every request.
// By hand: `node dist/test/doubles/mesh-double.js [--port 8700] [--mailboxes F] [--shared-key-file F] [--tls-dir D]`.
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseMeshAuthorization } from '../../src/mesh/auth.js';
import { optionReader } from './cli-options.js';

export interface MeshDoubleMailbox {
  readonly id: string;
  readonly password: string;
}

export interface StoredMeshMessage {
  readonly messageId: string;
  readonly sender: string;
  readonly recipient: string;
  readonly workflowId: string;
  readonly localId?: string;
  readonly subject?: string;
  readonly partnerId?: string;
  readonly fileName?: string;
  readonly contentType?: string;
  readonly totalChunks: number;
  readonly chunks: Buffer[];
  status: 'uploading' | 'accepted' | 'acknowledged';
  readonly createdAt: string;
}

export interface MeshFault {
  readonly method?: string;
  /** Matched against the path below /messageexchange/{mailbox}, e.g. /^\/outbox$/ */
  readonly path?: RegExp;
  readonly status?: number;
  /** Do the work (e.g. accept the message), then answer `status` anyway: the client cannot know it succeeded. */
  readonly afterSuccess?: boolean;
  /** Destroy the connection without answering. */
  readonly reset?: boolean;
}

export interface MeshDoubleOptions {
  readonly mailboxes: readonly MeshDoubleMailbox[];
  readonly sharedKey: string;
  readonly host?: string;
  readonly port?: number;
  /** Serve HTTPS and require a client certificate chaining to `ca`. */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer; readonly ca: Buffer };
}

export interface MeshDouble {
  readonly url: string;
  readonly port: number;
  readonly messages: Map<string, StoredMeshMessage>;
  readonly faults: MeshFault[];
  readonly requests: Array<{ method: string; path: string; headers: IncomingMessage['headers']; bodyBytes: number; clientCertCn?: string }>;
  down: boolean;
  /** Messages in `mailbox`'s inbox (accepted, not acknowledged). */
  inbox(mailbox: string): StoredMeshMessage[];
  close(): Promise<void>;
}

const V2 = 'application/vnd.mesh.v2+json';
const MAX_BODY = 110 * 1024 * 1024;

class MeshHttpError extends Error {
  constructor(readonly status: number, readonly event = '', readonly code = '', readonly description = '', readonly messageId?: string) {
    super(description || String(status));
  }
}

export async function startMeshDouble(options: MeshDoubleOptions): Promise<MeshDouble> {
  const mailboxes = new Map(options.mailboxes.map((m) => [m.id.toUpperCase(), m]));
  const usedNonces = new Set<string>();
  const sockets = new Set<Socket>();
  const state: MeshDouble = {
    url: '',
    port: 0,
    messages: new Map(),
    faults: [],
    requests: [],
    down: false,
    inbox: (mailbox) => [...state.messages.values()].filter((m) => m.recipient === mailbox.toUpperCase() && m.status === 'accepted'),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => void handle(req, res).catch(() => {
    if (!res.headersSent) res.writeHead(500).end();
  });
  const server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert, ca: options.tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, handler)
    : createHttpServer(handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://mesh.invalid');
    const peer = (req.socket as { getPeerCertificate?: () => { subject?: { CN?: string } } }).getPeerCertificate?.();
    state.requests.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, bodyBytes: body.length, ...(peer?.subject?.CN ? { clientCertCn: peer.subject.CN } : {}) });
    if (state.down) return void req.socket.destroy();
    if (url.pathname === '/health' || url.pathname === '/messageexchange/_ping') return json(res, 200, { status: 'healthy' });
    const match = /^\/messageexchange\/([^/]+)(\/.*)?$/.exec(url.pathname);
    const sub = match?.[2] ?? '';
    const fault = takeFault(req.method ?? '', sub);
    if (fault?.reset) return void req.socket.destroy();
    if (fault && !fault.afterSuccess) return errorResponse(res, req, new MeshHttpError(fault.status ?? 500));
    try {
      if (!match) throw new MeshHttpError(404);
      const mailbox = authorise(decodeURIComponent(match[1]!).toUpperCase(), req.headers.authorization);
      const answer = route(req, url, mailbox, sub, body);
      if (fault?.afterSuccess) return errorResponse(res, req, new MeshHttpError(fault.status ?? 500));
      answer(res);
    } catch (err) {
      if (err instanceof MeshHttpError) return errorResponse(res, req, err);
      throw err;
    }
  }

  function takeFault(method: string, sub: string): MeshFault | undefined {
    const i = state.faults.findIndex((f) => (!f.method || f.method === method) && (!f.path || f.path.test(sub)));
    return i === -1 ? undefined : state.faults.splice(i, 1)[0];
  }

  /** messaging._validate_auth_token: scheme, mailbox match, HMAC with the mailbox password and shared key. */
  function authorise(mailboxId: string, header: string | undefined): MeshDoubleMailbox {
    if (!header?.trim()) throw new MeshHttpError(403, '', '', 'Error reading from Authorization header');
    const parts = parseMeshAuthorization(header);
    if (!parts) throw new MeshHttpError(403, '', '', 'Error reading from Authorization header');
    if (parts.mailboxId.toUpperCase() !== mailboxId) throw new MeshHttpError(403, '', '', 'Mailbox id does not match token');
    const mailbox = mailboxes.get(mailboxId);
    if (!mailbox) throw new MeshHttpError(403, '', '', 'No mailbox matched');
    const expected = createHmac('sha256', options.sharedKey)
      .update(`${parts.mailboxId}:${parts.nonce}:${parts.nonceCount}:${mailbox.password}:${parts.timestamp}`)
      .digest('hex');
    if (expected !== parts.hash.toLowerCase()) throw new MeshHttpError(403, '', '', 'Invalid Authentication Token');
    const nonceKey = `${parts.mailboxId}:${parts.nonce}:${parts.nonceCount}`;
    if (usedNonces.has(nonceKey)) throw new MeshHttpError(403, '', '', 'Error Duplicated Authentication Token');
    usedNonces.add(nonceKey);
    return mailbox;
  }

  function route(req: IncomingMessage, url: URL, mailbox: MeshDoubleMailbox, sub: string, body: Buffer): (res: ServerResponse) => void {
    const method = req.method;
    const me = mailbox.id.toUpperCase();
    const v2 = (req.headers.accept ?? '').includes('vnd.mesh.v2');
    let m: RegExpExecArray | null;
    if (sub === '' && method === 'POST') return (res) => (v2 ? empty(res, 200) : json(res, 200, { mailboxId: me }));
    if (sub === '/outbox' && method === 'POST') {
      const to = header(req, 'mex-to');
      if (!to) throw new MeshHttpError(400, 'SEND', '08', 'TO_DTS missing');
      const workflowId = header(req, 'mex-workflowid');
      if (!workflowId) throw new MeshHttpError(400, '', '', 'mex-WorkflowID header required');
      const encoding = header(req, 'content-encoding');
      if (encoding && encoding !== 'gzip') throw new MeshHttpError(422, 'SEND', 'UnsupportedContentEncoding', 'Unsupported content encoding');
      const range = chunkRange(header(req, 'mex-chunk-range'), 1);
      if (!range) throw new MeshHttpError(417, 'SEND', 'InvalidHeaderChunks', 'Invalid chunk values sent in mex-Chunk-Range header');
      if (!mailboxes.has(to.toUpperCase())) throw new MeshHttpError(417, 'SEND', '12', 'Unregistered to address');
      if (body.length === 0) throw new MeshHttpError(417, 'SEND', '02', 'Data file is missing or inaccessible.');
      const messageId = `${new Date().toISOString().replace(/[-:TZ.]/g, '')}_${randomUUID().slice(0, 6).toUpperCase()}`;
      const optional = (name: string) => header(req, name) || undefined;
      const localId = optional('mex-localid'); const subject = optional('mex-subject'); const partnerId = optional('mex-partnerid');
      const fileName = optional('mex-filename'); const contentType = optional('mex-content-type');
      state.messages.set(messageId, {
        messageId, sender: me, recipient: to.toUpperCase(), workflowId,
        ...(localId ? { localId } : {}), ...(subject ? { subject } : {}), ...(partnerId ? { partnerId } : {}),
        ...(fileName ? { fileName } : {}), ...(contentType ? { contentType } : {}),
        totalChunks: range.total, chunks: [body], status: range.total < 2 ? 'accepted' : 'uploading', createdAt: new Date().toISOString(),
      });
      return (res) => json(res, 202, v2 ? { message_id: messageId } : { messageID: messageId }, v2 ? V2 : 'application/json');
    }
    if ((m = /^\/outbox\/([^/]+)\/(\d+)$/.exec(sub)) && method === 'POST') {
      const messageId = decodeURIComponent(m[1]!).toUpperCase();
      const n = Number(m[2]);
      const range = chunkRange(header(req, 'mex-chunk-range'), n);
      if (!range) throw new MeshHttpError(417, 'SEND', 'InvalidHeaderChunks', 'Invalid chunk values sent in mex-Chunk-Range header', messageId);
      const message = state.messages.get(messageId);
      if (!message) throw new MeshHttpError(404);
      if (message.sender !== me) throw new MeshHttpError(403);
      if (message.status !== 'uploading') throw new MeshHttpError(423, '', '', '', messageId);
      if (n > message.totalChunks) throw new MeshHttpError(406, '', '', '', messageId);
      message.chunks[n - 1] = body;
      if (n === message.totalChunks && message.chunks.filter(Boolean).length === message.totalChunks) message.status = 'accepted';
      return (res) => (v2 ? empty(res, 202) : json(res, 202, { messageID: messageId, blockID: n }));
    }
    if ((m = /^\/outbox\/tracking\/([^/]+)$/.exec(sub)) && method === 'GET') {
      const localId = decodeURIComponent(m[1]!);
      const found = [...state.messages.values()].filter((msg) => msg.sender === me && msg.localId === localId);
      if (found.length === 0) throw new MeshHttpError(404);
      if (found.length > 1) throw new MeshHttpError(300);
      return (res) => json(res, 200, trackingV1(found[0]!));
    }
    if (sub === '/outbox/tracking' && method === 'GET') {
      const message = state.messages.get((url.searchParams.get('messageID') ?? '').toUpperCase());
      if (!message || message.sender !== me) throw new MeshHttpError(404);
      return (res) => json(res, 200, v2 ? trackingV2(message) : trackingV1(message), v2 ? V2 : 'application/json');
    }
    if (sub === '/inbox' && method === 'GET') {
      const ids = state.inbox(me).map((msg) => msg.messageId);
      return (res) => json(res, 200, v2 ? { messages: ids, approx_inbox_count: ids.length, links: { self: `/messageexchange/${me}/inbox` } } : { messages: ids }, v2 ? V2 : 'application/json');
    }
    if ((m = /^\/inbox\/([^/]+)(?:\/(\d+))?$/.exec(sub)) && method === 'GET') {
      const message = state.messages.get(decodeURIComponent(m[1]!).toUpperCase());
      const n = m[2] ? Number(m[2]) : 1;
      if (!message) throw new MeshHttpError(404, 'RECEIVE', '20', 'Message does not exist');
      if (message.recipient !== me) throw new MeshHttpError(403);
      if (message.status === 'acknowledged') throw new MeshHttpError(410, 'SEND', 'Message already accepted', 'Message no longer available for download');
      if (message.status !== 'accepted' || n < 1 || n > message.totalChunks) throw new MeshHttpError(404, 'RECEIVE', '20', 'Message does not exist');
      return (res) => {
        const chunk = message.chunks[n - 1]!;
        const headers: Record<string, string> = {
          'content-type': message.totalChunks === 1 && message.contentType ? message.contentType : 'application/octet-stream',
          'content-length': String(chunk.length),
          'mex-From': message.sender, 'mex-To': message.recipient, 'mex-WorkflowID': message.workflowId,
          'mex-Chunk-Range': `${n}:${message.totalChunks}`, 'mex-Total-Chunks': String(message.totalChunks),
          'mex-AddressType': 'ALL', 'mex-FileName': message.fileName ?? `${message.messageId}.dat`, 'mex-Version': '1.0',
          'mex-MessageType': 'DATA', 'mex-MessageID': message.messageId,
          ...(message.localId ? { 'mex-LocalID': message.localId } : {}),
          ...(message.partnerId ? { 'mex-PartnerID': message.partnerId } : {}),
          ...(message.subject ? { 'mex-Subject': message.subject } : {}),
          ...(message.contentType ? { 'mex-Content-Type': message.contentType } : {}),
        };
        res.writeHead(n >= message.totalChunks ? 200 : 206, headers);
        res.end(chunk);
      };
    }
    if ((m = /^\/inbox\/([^/]+)\/status\/acknowledged$/.exec(sub)) && method === 'PUT') {
      const message = state.messages.get(decodeURIComponent(m[1]!).toUpperCase());
      if (!message) throw new MeshHttpError(404, 'RECEIVE', '20', 'Message does not exist');
      if (message.recipient !== me) throw new MeshHttpError(403);
      if (message.status === 'accepted') message.status = 'acknowledged';
      return (res) => (v2 ? empty(res, 200) : json(res, 200, { messageId: message.messageId }));
    }
    throw new MeshHttpError(404);
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(state, { port, url: `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${port}` });
  return state;
}

function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  return typeof value === 'string' ? value.trim() : '';
}

/** handlers/outbox.get_chunk_range */
function chunkRange(value: string, requestChunk: number): { n: number; total: number } | undefined {
  if (!value) return requestChunk === 1 ? { n: 1, total: 1 } : undefined;
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const total = Number(m[2]);
  if (!(n > 0 && n <= total) || n !== requestChunk) return undefined;
  return { n, total };
}

/** views/tracking.create_tracking_response, model 1 (also the only model of the deprecated by-local-id route). */
function trackingV1(message: StoredMeshMessage): Record<string, unknown> {
  return {
    addressType: 'ALL', chunkCount: message.totalChunks, dtsId: message.messageId, messageId: message.messageId,
    fileName: message.fileName ?? `${message.messageId}.dat`, fileSize: message.chunks.reduce((n, c) => n + (c?.length ?? 0), 0),
    localId: message.localId, messageType: 'Data', partnerId: message.partnerId ?? '', recipient: message.recipient, sender: message.sender,
    status: message.status[0]!.toUpperCase() + message.status.slice(1), statusSuccess: 'SUCCESS', subject: message.subject,
    uploadTimestamp: message.createdAt.replace(/[-:T]/g, '').slice(0, 14), workflowId: message.workflowId,
  };
}

/** views/tracking.create_tracking_response, model 2 (Accept: application/vnd.mesh.v2+json). */
function trackingV2(message: StoredMeshMessage): Record<string, unknown> {
  return {
    message_id: message.messageId, local_id: message.localId, workflow_id: message.workflowId, filename: message.fileName,
    upload_timestamp: message.createdAt, recipient: message.recipient, status: message.status, status_success: true,
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new Error('too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function empty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'content-length': '0' });
  res.end();
}

/** views/error.get_error_response: v1 errorEvent/errorCode/errorDescription, v2 detail[]; a bare status otherwise. */
function errorResponse(res: ServerResponse, req: IncomingMessage, err: MeshHttpError): void {
  if (!err.description) {
    if (err.status === 403) return empty(res, 403);
    return json(res, err.status, { internal_id: randomUUID(), message: 'An internal error occurred.\n\nPlease contact support.' });
  }
  const v2 = (req.headers.accept ?? '').includes('vnd.mesh.v2');
  if (v2) {
    return json(res, err.status, { ...(err.messageId ? { message_id: err.messageId } : {}), internal_id: randomUUID(), detail: [{ event: err.event, code: err.code, msg: err.description }] }, V2);
  }
  json(res, err.status, { ...(err.messageId ? { messageID: err.messageId } : {}), errorEvent: err.event, errorCode: err.code, errorDescription: err.description });
}

// ------------------------------------------------------------------------------------------------ by hand

async function main(argv: string[]): Promise<void> {
  const option = optionReader(argv);
  const mailboxesFile = option('mailboxes') ?? fileURLToPath(new URL('../../../test/fixtures/mesh/example-mailboxes.json', import.meta.url));
  const sharedKeyFile = option('shared-key-file');
  const tlsDir = option('tls-dir');
  const double = await startMeshDouble({
    mailboxes: JSON.parse(readFileSync(mailboxesFile, 'utf8')) as MeshDoubleMailbox[],
    sharedKey: sharedKeyFile ? readFileSync(sharedKeyFile, 'utf8').replace(/\r?\n$/, '') : 'TestKey',
    port: Number(option('port') ?? 8700),
    ...(tlsDir ? { tls: { key: readFileSync(join(tlsDir, 'server-key.pem')), cert: readFileSync(join(tlsDir, 'server.pem')), ca: readFileSync(join(tlsDir, 'ca.pem')) } } : {}),
  });
  process.stdout.write(`MESH double listening on ${double.url} (mailboxes: ${mailboxesFile})\n`);
  const stop = () => void double.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void main(process.argv.slice(2));
