// A MESH API client (https://digital.nhs.uk/developer/api-catalogue/message-exchange-for-social-care-and-health-api;
// headers and flow as NHSDigital/mesh-client sends them): handshake, send with chunks, tracking by local id, inbox,
// download (every chunk) and acknowledge. mTLS through an undici Agent; every request has one deadline; every body
// read is capped. Failures are MeshError: `retryable` says whether trying again may succeed, `ambiguous` whether a
// send may have been accepted although no message id came back (the caller checks tracking before sending again).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform, release } from 'node:os';
import type { Agent, request as undiciRequest } from 'undici';
import type { MeshDeliveryConfig } from '../config/schema.js';
import { meshAuthorizationNow } from './auth.js';

export const MESH_V2_JSON = 'application/vnd.mesh.v2+json';
const CLIENT_VERSION = 'nems-gateway-mesh-client==1';
const MAX_JSON_BYTES = 1024 * 1024;
const MAX_INBOX_PAGES = 50;

export class MeshError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
    readonly ambiguous = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MeshError';
  }
}

export interface MeshCredentials {
  readonly mailboxId: string;
  readonly password: string;
  readonly sharedKey: string;
}

export interface MeshClientSettings {
  readonly url: string;
  readonly tls?: MeshDeliveryConfig['tls'];
  readonly timeoutMs: number;
  /** Cap on a downloaded chunk (the largest chunk a sender may use). */
  readonly maxChunkBytes: number;
}

export interface SendHeaders {
  readonly to: string;
  readonly workflowId: string;
  readonly localId?: string;
  readonly subject?: string;
  readonly partnerId?: string;
  readonly fileName?: string;
  /** Content type of the whole message (mex-Content-Type). */
  readonly contentType?: string;
}

export interface DownloadedMessage {
  readonly messageId: string;
  /** The mex-* headers of the first chunk, names lower-case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly chunks: number;
}

interface Exchange {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** Reads the MESH secrets from the files config names (never inline in the YAML). */
export function readMeshCredentials(mesh: Pick<MeshDeliveryConfig, 'mailboxId' | 'passwordFile' | 'sharedKeyFile'>, passwordFile = mesh.passwordFile, mailboxId = mesh.mailboxId): MeshCredentials {
  const read = (path: string, setting: string) => {
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new Error(`${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
  };
  return { mailboxId, password: read(passwordFile, 'core.mesh.passwordFile'), sharedKey: read(mesh.sharedKeyFile, 'core.mesh.sharedKeyFile') };
}

export class MeshClient {
  private readonly agent: Agent;
  private readonly request: typeof undiciRequest;
  private readonly base: string;

  constructor(private readonly settings: MeshClientSettings, private readonly credentials: MeshCredentials, private readonly now: () => number = Date.now) {
    this.base = settings.url.replace(/\/+$/, '');
    const undici = createRequire(import.meta.url)('undici') as { Agent: typeof Agent; request: typeof undiciRequest };
    this.request = undici.request;
    const tls = settings.tls;
    this.agent = new undici.Agent({
      connect: {
        timeout: settings.timeoutMs,
        ...(tls?.ca ? { ca: readFileSync(tls.ca) } : {}),
        ...(tls?.cert ? { cert: readFileSync(tls.cert) } : {}),
        ...(tls?.key ? { key: readFileSync(tls.key) } : {}),
        ...(tls?.servername ? { servername: tls.servername } : {}),
        minVersion: 'TLSv1.2',
      },
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 10_000,
      connections: 4,
      maxResponseSize: Math.max(settings.maxChunkBytes, MAX_JSON_BYTES) + 1024,
    });
  }

  get mailboxId(): string {
    return this.credentials.mailboxId;
  }

  private get mailboxUrl(): string {
    return `${this.base}/messageexchange/${encodeURIComponent(this.credentials.mailboxId)}`;
  }

  /** POST /messageexchange/{mailbox}: the MESH "authenticate" handshake, with the client's mex-* description. */
  async handshake(): Promise<void> {
    const res = await this.exchange('POST', this.mailboxUrl, {
      'mex-ClientVersion': CLIENT_VERSION, 'mex-OSName': platform(), 'mex-OSVersion': release(), 'mex-OSArchitecture': arch(), 'mex-JavaVersion': 'N/A',
    });
    expectStatus(res, [200], 'handshake');
  }

  /** POST /outbox: the first (or only) chunk. Returns the MESH message id. */
  async sendFirstChunk(headers: SendHeaders, chunk: Buffer, totalChunks: number): Promise<string> {
    const h: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'mex-To': headers.to,
      'mex-WorkflowID': headers.workflowId,
      'mex-Chunk-Range': `1:${totalChunks}`,
      ...(headers.localId ? { 'mex-LocalID': headers.localId } : {}),
      ...(headers.subject ? { 'mex-Subject': headers.subject } : {}),
      ...(headers.partnerId ? { 'mex-PartnerID': headers.partnerId } : {}),
      ...(headers.fileName ? { 'mex-FileName': headers.fileName } : {}),
      ...(headers.contentType ? { 'mex-Content-Type': headers.contentType } : {}),
    };
    let res: Exchange;
    try {
      res = await this.exchange('POST', `${this.mailboxUrl}/outbox`, h, chunk);
    } catch (err) {
      // The request may have reached MESH: a retry must first ask tracking whether it was accepted.
      const e = err as MeshError;
      throw new MeshError(e.message, e.status, e.retryable, e.retryable && !isRefused(e), { cause: err });
    }
    if (res.status >= 500) throw new MeshError(`MESH send answered ${res.status}`, res.status, true, true);
    expectStatus(res, [200, 202], 'send');
    const body = json(res, 'send');
    const id = typeof body.message_id === 'string' ? body.message_id : typeof body.messageID === 'string' ? body.messageID : undefined;
    if (!id || !/^[A-Za-z0-9_-]{1,100}$/.test(id)) throw new MeshError('MESH send answered without a message id', res.status, true, true);
    return id;
  }

  /** POST /outbox/{messageId}/{n}: chunk 2 and later (idempotent per chunk number: safe to retry). */
  async sendChunk(messageId: string, chunkNumber: number, totalChunks: number, chunk: Buffer): Promise<void> {
    const res = await this.exchange('POST', `${this.mailboxUrl}/outbox/${encodeURIComponent(messageId)}/${chunkNumber}`, {
      'content-type': 'application/octet-stream', 'mex-Chunk-Range': `${chunkNumber}:${totalChunks}`,
    }, chunk);
    expectStatus(res, [200, 202], `chunk ${chunkNumber}`);
  }

  /** GET /outbox/tracking/{localId}: the message MESH accepted with this local id, if any (404: none). */
  async trackByLocalId(localId: string): Promise<{ messageId: string; status?: string } | undefined> {
    const res = await this.exchange('GET', `${this.mailboxUrl}/outbox/tracking/${encodeURIComponent(localId)}`, {});
    if (res.status === 404) return undefined;
    expectStatus(res, [200], 'tracking');
    const body = json(res, 'tracking');
    const messageId = typeof body.messageId === 'string' ? body.messageId : typeof body.message_id === 'string' ? body.message_id : undefined;
    if (!messageId) throw new MeshError('MESH tracking answered without a message id', res.status, true);
    return { messageId, ...(typeof body.status === 'string' ? { status: body.status } : {}) };
  }

  /** GET /inbox: every message id waiting, following links.next (bounded). */
  async listInbox(): Promise<string[]> {
    const ids: string[] = [];
    let url: string | undefined = `${this.mailboxUrl}/inbox`;
    for (let page = 0; url && page < MAX_INBOX_PAGES; page++) {
      const res = await this.exchange('GET', url, {});
      expectStatus(res, [200], 'inbox');
      const body = json(res, 'inbox');
      if (!Array.isArray(body.messages) || !body.messages.every((m) => typeof m === 'string')) throw new MeshError('MESH inbox answer is malformed', res.status, true);
      ids.push(...(body.messages as string[]));
      const links = body.links as Record<string, unknown> | undefined;
      const next = links && typeof links.next === 'string' ? links.next : undefined;
      url = next ? new URL(next, `${this.base}/`).href : undefined;
      if (url && new URL(url).origin !== new URL(this.base).origin) throw new MeshError('MESH inbox next link leaves the MESH base URL', res.status, false);
    }
    return ids;
  }

  /** GET /inbox/{id} and, when it answers 206, every further chunk GET /inbox/{id}/{n}. */
  async download(messageId: string): Promise<DownloadedMessage> {
    const first = await this.exchange('GET', `${this.mailboxUrl}/inbox/${encodeURIComponent(messageId)}`, {});
    expectStatus(first, [200, 206], 'download');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(first.headers)) {
      if (name.toLowerCase().startsWith('mex-') && typeof value === 'string') headers[name.toLowerCase()] = value;
    }
    const range = /^(\d+):(\d+)$/.exec(headers['mex-chunk-range'] ?? '1:1');
    const total = range ? Number(range[2]) : 1;
    if (!Number.isInteger(total) || total < 1 || total > 10_000) throw new MeshError('MESH download has a malformed mex-Chunk-Range', first.status, false);
    const parts = [first.body];
    for (let n = 2; n <= total; n++) {
      const chunk = await this.exchange('GET', `${this.mailboxUrl}/inbox/${encodeURIComponent(messageId)}/${n}`, {});
      expectStatus(chunk, [200, 206], `download chunk ${n}`);
      parts.push(chunk.body);
    }
    return { messageId, headers, body: Buffer.concat(parts), chunks: total };
  }

  /** PUT /inbox/{id}/status/acknowledged: removes the message from the inbox. */
  async acknowledge(messageId: string): Promise<void> {
    const res = await this.exchange('PUT', `${this.mailboxUrl}/inbox/${encodeURIComponent(messageId)}/status/acknowledged`, {});
    expectStatus(res, [200], 'acknowledge');
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async exchange(method: 'GET' | 'POST' | 'PUT', url: string, headers: Record<string, string>, body?: Buffer): Promise<Exchange> {
    const signal = AbortSignal.timeout(this.settings.timeoutMs);
    try {
      const res = await this.request(url, {
        dispatcher: this.agent,
        method,
        headers: {
          accept: MESH_V2_JSON,
          authorization: meshAuthorizationNow(this.credentials, this.now()),
          'user-agent': CLIENT_VERSION,
          ...headers,
          ...(body ? { 'content-length': String(body.length) } : {}),
        },
        ...(body ? { body } : {}),
        signal,
      });
      const data = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body: data };
    } catch (err) {
      if (err instanceof MeshError) throw err;
      const code = (err as { code?: unknown }).code;
      if (signal.aborted) throw new MeshError(`MESH did not answer within ${this.settings.timeoutMs} ms`, undefined, true, false, { cause: err });
      if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') throw new MeshError('MESH response body is too large', undefined, false, false, { cause: err });
      throw new MeshError(`MESH could not be reached (${typeof code === 'string' ? code : 'error'})`, undefined, true, false, { cause: err });
    }
  }
}

function isRefused(err: MeshError): boolean {
  return /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(err.message);
}

/** 429, 408 and 5xx are worth retrying; any other unexpected status is MESH refusing the request. */
function expectStatus(res: Exchange, ok: readonly number[], what: string): void {
  if (ok.includes(res.status)) return;
  const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
  throw new MeshError(`MESH ${what} answered ${res.status}${errorDetail(res)}`, res.status, retryable);
}

/** The MESH error code and description (v1 errorCode/errorDescription, v2 detail[0]) for the log; nothing else. */
function errorDetail(res: Exchange): string {
  try {
    const body = JSON.parse(res.body.subarray(0, 4096).toString('utf8')) as Record<string, unknown>;
    const detail = Array.isArray(body.detail) ? (body.detail[0] as Record<string, unknown> | undefined) : undefined;
    const code = detail?.code ?? body.errorCode;
    const text = detail?.msg ?? body.errorDescription;
    return typeof code === 'string' || typeof text === 'string' ? ` (${String(code ?? '')} ${String(text ?? '')})`.replace(/[^\x20-\x7e]/g, '').slice(0, 200) : '';
  } catch {
    return '';
  }
}

function json(res: Exchange, what: string): Record<string, unknown> {
  if (res.body.length > MAX_JSON_BYTES) throw new MeshError(`MESH ${what} answer is too large`, res.status, false);
  try {
    const body = JSON.parse(res.body.toString('utf8')) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object');
    return body as Record<string, unknown>;
  } catch (err) {
    throw new MeshError(`MESH ${what} answer is not JSON`, res.status, true, false, { cause: err });
  }
}
