// SDS FHIR R4 API client (NHSDigital/spine-directory-service-api): GET /Device and GET /Endpoint keyed by ODS code
// and InteractionID, every page followed, each search under one deadline. Any failure — a status other than 200,
// a malformed or oversized page, a `next` link off the base URL, more pages than allowed, fewer entries than
// Bundle.total — fails the whole search: the registry never installs a partial answer.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Agent, request as undiciRequest } from 'undici';
import type { SdsRegistryConfig } from '../config/schema.js';
import { Deadline, readPrivateKey, TokenSource, type HttpResponse } from '../pds/fhir-client.js';
import { createApiAgent, transportFailure } from '../net/api-agent.js';
import { PdsUnavailableError } from '../pds/types.js';
import { readDevicePage, readEndpointPage, SDS_SYSTEMS, SdsAnswerError, type BundlePage, type SdsDevice, type SdsMhs } from './sds-join.js';

export type SdsFailureReason = 'timeout' | 'unreachable' | 'bad-response' | 'auth' | 'throttled' | 'partial';

export class SdsUnavailableError extends Error {
  constructor(readonly reason: SdsFailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SdsUnavailableError';
  }
}

/** What the registry needs from SDS; the client below, or a stand-in in unit tests. */
export interface SdsSource {
  searchDevices(odsCode: string, interactionId: string, signal?: AbortSignal): Promise<SdsDevice[]>;
  searchEndpoints(odsCode: string, interactionId: string, signal?: AbortSignal): Promise<SdsMhs[]>;
  close(): Promise<void>;
}

export interface SdsClientOptions {
  readonly now?: () => number;
  /** PEM private key for application-restricted auth; read from auth.privateKeyPath when absent. */
  readonly privateKeyPem?: string;
  /** API key; read from auth.apiKeyFile when absent. */
  readonly apiKey?: string;
}

const MAX_API_KEY_CHARS = 512;

export class SdsFhirClient implements SdsSource {
  private readonly agent: Agent;
  private readonly request: typeof undiciRequest;
  private readonly base: URL;
  /** The base URL without a trailing slash. */
  private readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly tokens: TokenSource | undefined;

  constructor(private readonly config: SdsRegistryConfig, options: SdsClientOptions = {}) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, '');
    this.base = new URL(this.baseUrl);
    ({ agent: this.agent, request: this.request } = createApiAgent({
      timeoutMs: config.timeoutMs,
      connections: config.concurrency,
      maxBodyBytes: config.maxBodyBytes,
    }));
    const auth = config.auth;
    if (auth.kind === 'api-key') {
      this.apiKey = options.apiKey ?? readSecret(auth.apiKeyFile, 'registry.sds.auth.apiKeyFile');
      if (!/^[\x21-\x7e]+$/.test(this.apiKey) || this.apiKey.length > MAX_API_KEY_CHARS) throw new Error('registry.sds.auth.apiKeyFile: not a usable API key');
    } else {
      const keySetting = 'registry.sds.auth.privateKeyPath';
      const pem = options.privateKeyPem ?? readPrivateKey(auth.privateKeyPath, keySetting);
      this.tokens = new TokenSource(auth, pem, options.now ?? Date.now, config.timeoutMs, (url, init, deadline) => this.send(url, init, deadline), keySetting, 'SDS');
    }
  }

  searchDevices(odsCode: string, interactionId: string, signal?: AbortSignal): Promise<SdsDevice[]> {
    return this.search('Device', odsCode, interactionId, (body) => readDevicePage(body, odsCode), signal);
  }

  searchEndpoints(odsCode: string, interactionId: string, signal?: AbortSignal): Promise<SdsMhs[]> {
    return this.search('Endpoint', odsCode, interactionId, (body) => readEndpointPage(body), signal);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async search<T>(
    resource: 'Device' | 'Endpoint',
    odsCode: string,
    interactionId: string,
    readPage: (body: unknown) => BundlePage<T>,
    signal?: AbortSignal,
  ): Promise<T[]> {
    const deadline = new Deadline(this.config.timeoutMs, 'SDS');
    const onAbort = () => deadline.controller.abort(new SdsUnavailableError('partial', 'SDS refresh abandoned'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const query = new URLSearchParams();
      query.append('organization', `${SDS_SYSTEMS.ods}|${odsCode}`);
      query.append('identifier', `${SDS_SYSTEMS.interaction}|${interactionId}`);
      let url = `${this.baseUrl}/${resource}?${query.toString()}`;
      const items: T[] = [];
      let total: number | undefined;
      for (let page = 1; ; page++) {
        const response = await this.send(url, { method: 'GET', headers: await this.headers(deadline) }, deadline);
        const parsed = readPage(this.checkedJson(response, resource));
        items.push(...parsed.items);
        total = parsed.total ?? total;
        if (parsed.next === undefined) break;
        if (page >= this.config.maxPages) throw new SdsUnavailableError('partial', `SDS ${resource} search has more than ${this.config.maxPages} pages`);
        url = this.sameOrigin(parsed.next, resource);
      }
      // Resources an Endpoint search skips (no FQDN, inactive) are still counted by Bundle.total, so only Device
      // searches can be held to it exactly.
      if (resource === 'Device' && total !== undefined && total !== items.length) {
        throw new SdsUnavailableError('partial', `SDS Device search announced ${total} entries and delivered ${items.length}`);
      }
      return items;
    } catch (err) {
      throw classify(err, deadline);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      deadline.clear();
    }
  }

  private async headers(deadline: Deadline): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: 'application/fhir+json', 'x-correlation-id': randomUUID() };
    if (this.apiKey !== undefined) headers.apikey = this.apiKey;
    if (this.tokens) headers.authorization = `Bearer ${await deadline.race(this.tokens.get())}`;
    return headers;
  }

  /** A `next` link must stay under the configured base URL: the API key is never sent anywhere else. */
  private sameOrigin(next: string, resource: string): string {
    let url: URL;
    try {
      url = new URL(next, `${this.baseUrl}/`);
    } catch {
      throw new SdsUnavailableError('bad-response', `SDS ${resource} Bundle has a malformed next link`);
    }
    if (url.origin !== this.base.origin || !url.pathname.startsWith(`${this.base.pathname.replace(/\/+$/, '')}/${resource}`)) {
      throw new SdsUnavailableError('bad-response', `SDS ${resource} Bundle next link leaves the SDS base URL`);
    }
    return url.href;
  }

  private checkedJson(response: HttpResponse, resource: string): unknown {
    switch (response.status) {
      case 200:
        break;
      case 401:
      case 403:
        this.tokens?.invalidate();
        throw new SdsUnavailableError('auth', `SDS refused the credentials (${response.status})`);
      case 429:
        throw new SdsUnavailableError('throttled', 'SDS rate limit exceeded (429)');
      default:
        throw new SdsUnavailableError('bad-response', `SDS ${resource} search answered ${response.status}`);
    }
    if (!/^application\/(fhir\+)?json\b/i.test(response.contentType)) throw new SdsUnavailableError('bad-response', `SDS ${resource} search answered without a JSON body`);
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(response.body));
    } catch (err) {
      throw new SdsUnavailableError('bad-response', `SDS ${resource} search answered malformed JSON`, { cause: err });
    }
  }

  private async send(url: string, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, deadline: Deadline): Promise<HttpResponse> {
    if (deadline.signal.aborted) throw deadline.signal.reason;
    // The agent's maxResponseSize caps every body (UND_ERR_RES_EXCEEDED_MAX_SIZE).
    const response = await this.request(url, { dispatcher: this.agent, method: init.method, headers: init.headers, body: init.body, signal: deadline.signal });
    const body = Buffer.from(await response.body.arrayBuffer());
    const contentType = response.headers['content-type'];
    return { status: response.statusCode, contentType: typeof contentType === 'string' ? contentType : '', body };
  }
}

function readSecret(path: string, setting: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

function classify(err: unknown, deadline: Deadline): SdsUnavailableError {
  if (err instanceof SdsUnavailableError) return err;
  if (deadline.signal.aborted && deadline.signal.reason instanceof SdsUnavailableError) return deadline.signal.reason;
  if (deadline.expired) return new SdsUnavailableError('timeout', 'SDS did not answer in time', { cause: err });
  if (err instanceof SdsAnswerError) return new SdsUnavailableError('bad-response', err.message, { cause: err });
  if (err instanceof PdsUnavailableError) {
    // The shared token source speaks in PDS's terms; its reasons are the same.
    const reason = err.reason === 'timeout' || err.reason === 'auth' || err.reason === 'throttled' || err.reason === 'unreachable' ? err.reason : 'bad-response';
    return new SdsUnavailableError(reason, err.message, { cause: err });
  }
  const failure = transportFailure('SDS', err);
  return new SdsUnavailableError(failure.reason, failure.message, { cause: err });
}
