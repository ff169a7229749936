// PDS FHIR R4 API client (docs/specification.md §6.2): GET {base}/Patient/{nhsNumber}, validated strictly, failing closed.
// Optional NHS API platform application-restricted auth: a signed JWT client assertion exchanged for a bearer token.
//
// Outcome mapping (200 = PDS answered with a Patient):
//   200, id ≠ requested                     → superseded (PDS silently returns the newer record)
//   200, meta.security R or V               → restricted (S-flag; V is treated as at least restricted)
//   200, meta.security REDACTED             → invalidated (docs/specification.md §9.18: the nearest FHIR reading of the 'I' flag)
//   200, meta.security with an unknown code → restricted (fail towards the more careful handling)
//   200, otherwise                          → traced (gpOdsCode from generalPractitioner[0], home postcode)
//   traced and restricted also carry the current names and birthDate, for the routing demographics check
//   404 INVALIDATED_RESOURCE → invalidated; 404 RESOURCE_NOT_FOUND → not-found; 400 INVALID_RESOURCE_ID → invalid
//   (PDS: "Invalid NHS number"; the stage answers 400 INVALID_NHS_NUMBER, as Spine Core's table has it)
//   any other 404/400 (e.g. a wrong base URL answered by the API gateway) → PdsUnavailableError('bad-response')
//   401/403 → 'auth'; 429 → 'throttled'; 408, 5xx, 3xx, garbage, oversized → 'bad-response';
//   overall deadline (timeoutMs, token included) → 'timeout'; connection failures → 'unreachable'.
import { createPrivateKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, importPKCS8 } from 'jose';
import type { Logger } from 'pino';
import type { Agent, request as undiciRequest } from 'undici';
import type { PdsConfig } from '../config/schema.js';
import { createApiAgent, transportFailure } from '../net/api-agent.js';
import { isCanonicalOdsCode, REQUEST_ID_PATTERN } from '../nems/identifiers.js';
import { NHS_NUMBER_PATTERN } from '../nems/nhs-number.js';
import { PdsUnavailableError, type PdsDemographics, type PdsLookup, type PdsName, type PdsOutcome } from './types.js';

export type PdsFhirConfig = NonNullable<PdsConfig['fhir']>;
type AppRestrictedAuth = Extract<PdsFhirConfig['auth'], { kind: 'application-restricted' }>;

export interface PdsFhirClientOptions {
  readonly logger?: Logger;
  /** Milliseconds since the epoch; injectable so token expiry can be tested without waiting. */
  readonly now?: () => number;
  /** Cap on any PDS or token response body. */
  readonly maxBodyBytes?: number;
  /** After a failure, /readyz reports not ready for this long unless a later call succeeds. */
  readonly readyFailureWindowMs?: number;
  /** PEM private key; read from auth.privateKeyPath when absent. */
  readonly privateKeyPem?: string;
}

export const DEFAULT_PDS_MAX_BODY_BYTES = 1024 * 1024;
const CONFIDENTIALITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const MAX_TOKEN_CHARS = 8192;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface HttpResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** One deadline for a whole logical lookup (token included). `service` names the remote in the timeout error. */
export class Deadline {
  readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  expired = false;

  constructor(ms: number, service = 'PDS') {
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(new PdsUnavailableError('timeout', `${service} did not answer within ${ms} ms`));
    }, ms);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Races a promise we do not own (e.g. a shared token refresh) against this deadline. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    return new Promise<T>((resolve, rejectPromise) => {
      const onAbort = (): void => rejectPromise(this.signal.reason);
      this.signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => { this.signal.removeEventListener('abort', onAbort); resolve(value); },
        (err: unknown) => { this.signal.removeEventListener('abort', onAbort); rejectPromise(err); },
      );
    });
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

export class PdsFhirClient implements PdsLookup {
  private readonly agent: Agent;
  private readonly request: typeof undiciRequest;
  private readonly baseUrl: string;
  private readonly now: () => number;
  private readonly maxBodyBytes: number;
  private readonly readyFailureWindowMs: number;
  private readonly tokens: TokenSource | undefined;
  private lastSuccessAt: number | undefined;
  private lastFailure: { at: number; reason: PdsUnavailableError['reason'] } | undefined;

  constructor(
    private readonly config: PdsFhirConfig,
    private readonly options: PdsFhirClientOptions = {},
  ) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, '');
    this.now = options.now ?? Date.now;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_PDS_MAX_BODY_BYTES;
    this.readyFailureWindowMs = options.readyFailureWindowMs ?? 30_000;
    ({ agent: this.agent, request: this.request } = createApiAgent({
      timeoutMs: config.timeoutMs,
      connections: 16,
      maxBodyBytes: this.maxBodyBytes,
    }));
    if (config.auth.kind === 'application-restricted') {
      const pem = options.privateKeyPem ?? readPrivateKey(config.auth.privateKeyPath);
      this.tokens = new TokenSource(config.auth, pem, this.now, config.timeoutMs, (url, init, deadline) => this.send(url, init, deadline));
    }
  }

  async lookup(nhsNumber: string, requestId: string): Promise<PdsOutcome> {
    // The stage pre-checks numbers; anything else would only earn PDS's 400 INVALID_RESOURCE_ID.
    if (!NHS_NUMBER_PATTERN.test(nhsNumber)) return { result: 'invalid' };
    const pdsRequestId = randomUUID();
    const deadline = new Deadline(this.config.timeoutMs);
    try {
      const outcome = await this.lookupWithin(nhsNumber, requestId, pdsRequestId, deadline);
      this.lastSuccessAt = this.now();
      return outcome;
    } catch (err) {
      const failure = err instanceof PdsUnavailableError ? err : new PdsUnavailableError('bad-response', 'PDS lookup failed', { cause: err });
      this.lastFailure = { at: this.now(), reason: failure.reason };
      this.options.logger?.warn({ pdsRequestId, reason: failure.reason }, 'PDS lookup failed');
      throw failure;
    } finally {
      deadline.clear();
    }
  }

  ready(): Promise<{ ok: boolean; reason: string }> {
    const failure = this.lastFailure;
    const failingNow = failure && failure.at >= (this.lastSuccessAt ?? -Infinity) && this.now() - failure.at < this.readyFailureWindowMs;
    if (failingNow) return Promise.resolve({ ok: false, reason: `PDS FHIR API: last call failed (${failure.reason})` });
    if (this.lastSuccessAt === undefined) return Promise.resolve({ ok: true, reason: 'PDS FHIR API: no call made yet' });
    return Promise.resolve({ ok: true, reason: 'PDS FHIR API: last call succeeded' });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async lookupWithin(nhsNumber: string, requestId: string, pdsRequestId: string, deadline: Deadline): Promise<PdsOutcome> {
    const headers: Record<string, string> = {
      accept: 'application/fhir+json',
      'x-request-id': pdsRequestId,
    };
    if (REQUEST_ID_PATTERN.test(requestId)) headers['x-correlation-id'] = requestId;
    if (this.config.endUserOrganisationOds) headers['nhsd-end-user-organisation-ods'] = this.config.endUserOrganisationOds;
    if (this.tokens) headers.authorization = `Bearer ${await deadline.race(this.tokens.get())}`;

    const response = await this.send(`${this.baseUrl}/Patient/${nhsNumber}`, { method: 'GET', headers }, deadline);
    switch (response.status) {
      case 200:
        return patientOutcome(nhsNumber, parseJsonBody(response));
      case 404: {
        const codes = outcomeCodes(parseJsonBody(response));
        if (codes.includes('INVALIDATED_RESOURCE')) return { result: 'invalidated' };
        if (codes.includes('RESOURCE_NOT_FOUND')) return { result: 'not-found' };
        throw new PdsUnavailableError('bad-response', 'PDS answered 404 without a recognised OperationOutcome code');
      }
      case 400: {
        const codes = outcomeCodes(parseJsonBody(response));
        if (codes.includes('INVALID_RESOURCE_ID')) return { result: 'invalid' };
        throw new PdsUnavailableError('bad-response', 'PDS rejected the request as malformed (400)');
      }
      case 401:
      case 403:
        this.tokens?.invalidate();
        throw new PdsUnavailableError('auth', `PDS refused the credentials (${response.status})`);
      case 429:
        throw new PdsUnavailableError('throttled', 'PDS rate limit exceeded (429)');
      default:
        throw new PdsUnavailableError('bad-response', `PDS answered with unexpected status ${response.status}`);
    }
  }

  /** One HTTP exchange with a capped body; every failure becomes a PdsUnavailableError. */
  private async send(
    url: string,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
    deadline: Deadline,
  ): Promise<HttpResponse> {
    if (deadline.signal.aborted) throw deadline.signal.reason;
    try {
      const response = await this.request(url, {
        dispatcher: this.agent,
        method: init.method,
        headers: init.headers,
        body: init.body,
        signal: deadline.signal,
      });
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.maxBodyBytes) {
        response.body.destroy();
        throw new PdsUnavailableError('bad-response', 'PDS response body is too large');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        size += buffer.length;
        if (size > this.maxBodyBytes) {
          response.body.destroy();
          throw new PdsUnavailableError('bad-response', 'PDS response body is too large');
        }
        chunks.push(buffer);
      }
      const contentType = response.headers['content-type'];
      return { status: response.statusCode, contentType: typeof contentType === 'string' ? contentType : '', body: Buffer.concat(chunks) };
    } catch (err) {
      throw classifyTransportError(err, deadline);
    }
  }
}

/**
 * Fetches and caches NHS API platform application-restricted access tokens; concurrent callers share one refresh.
 * Shared by every NHS API client (PDS, SDS): `keySetting` names the config key in key errors, `service` the remote.
 */
export class TokenSource {
  private cached: { token: string; refreshAt: number } | undefined;
  private refreshing: Promise<string> | undefined;
  private signingKey: ReturnType<typeof importPKCS8> | undefined;
  private readonly pkcs8: string;

  constructor(
    private readonly auth: AppRestrictedAuth,
    privateKeyPem: string,
    private readonly now: () => number,
    private readonly timeoutMs: number,
    private readonly send: (url: string, init: { method: 'POST'; headers: Record<string, string>; body: string }, deadline: Deadline) => Promise<HttpResponse>,
    keySetting = 'pds.fhir.auth.privateKeyPath',
    private readonly service = 'PDS',
  ) {
    this.pkcs8 = toPkcs8(privateKeyPem, keySetting);
  }

  get(): Promise<string> {
    const cached = this.cached;
    if (cached && cached.refreshAt > this.now()) return Promise.resolve(cached.token);
    if (!this.refreshing) {
      this.refreshing = this.fetchToken().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    const assertion = await this.assertion();
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion,
    }).toString();
    // Its own deadline: a shared refresh may outlive the lookup that started it.
    const deadline = new Deadline(this.timeoutMs, `${this.service} token endpoint`);
    let response: HttpResponse;
    try {
      response = await this.send(this.auth.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
      }, deadline);
    } finally {
      deadline.clear();
    }
    if (response.status === 429) throw new PdsUnavailableError('throttled', 'token endpoint rate limit exceeded (429)');
    if (response.status >= 400 && response.status < 500) throw new PdsUnavailableError('auth', `token endpoint refused the client assertion (${response.status})`);
    if (response.status !== 200) throw new PdsUnavailableError('bad-response', `token endpoint answered with unexpected status ${response.status}`);
    const { token, expiresInSeconds } = parseTokenResponse(response);
    // Refresh a little before expiry so a token never expires in flight.
    const marginMs = Math.min(30_000, (expiresInSeconds * 1000) / 4);
    this.cached = { token, refreshAt: this.now() + expiresInSeconds * 1000 - marginMs };
    return token;
  }

  private async assertion(): Promise<string> {
    this.signingKey ??= importPKCS8(this.pkcs8, 'RS512');
    const key = await this.signingKey;
    const nowSeconds = Math.floor(this.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'RS512', typ: 'JWT', kid: this.auth.kid })
      .setIssuer(this.auth.apiKey)
      .setSubject(this.auth.apiKey)
      .setAudience(this.auth.tokenUrl)
      .setJti(randomUUID())
      .setExpirationTime(nowSeconds + Math.min(this.auth.tokenLifetimeSeconds, 300))
      .sign(key);
  }
}

export function readPrivateKey(path: string, keySetting = 'pds.fhir.auth.privateKeyPath'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${keySetting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

/** Accepts PKCS#1 or PKCS#8 PEM (NHS onboarding uses `openssl genrsa`), insists on RSA ≥ 2048 bits. */
function toPkcs8(pem: string, keySetting: string): string {
  let key;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${keySetting}: not a PEM private key`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`${keySetting}: must be an RSA key (RS512)`);
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error(`${keySetting}: RSA key must be at least 2048 bits`);
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function classifyTransportError(err: unknown, deadline: Deadline): PdsUnavailableError {
  if (deadline.expired) return new PdsUnavailableError('timeout', 'PDS did not answer in time', { cause: err });
  if (err instanceof PdsUnavailableError) return err;
  const failure = transportFailure('PDS', err);
  return new PdsUnavailableError(failure.reason, failure.message, { cause: err });
}

function parseJsonBody(response: HttpResponse): unknown {
  if (!/^application\/(fhir\+)?json\b/i.test(response.contentType)) {
    throw new PdsUnavailableError('bad-response', `PDS answered ${response.status} without a JSON body`);
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(response.body));
  } catch (err) {
    throw new PdsUnavailableError('bad-response', `PDS answered ${response.status} with malformed JSON`, { cause: err });
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstOf(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : undefined;
}

/** Spine ErrorOrWarning codes of an OperationOutcome (first few issues only). */
function outcomeCodes(body: unknown): string[] {
  if (!isObject(body) || body.resourceType !== 'OperationOutcome' || !Array.isArray(body.issue)) return [];
  const codes: string[] = [];
  for (const issue of body.issue.slice(0, 10)) {
    const codings = isObject(issue) && isObject(issue.details) ? issue.details.coding : undefined;
    if (!Array.isArray(codings)) continue;
    for (const coding of codings.slice(0, 10)) {
      if (isObject(coding) && typeof coding.code === 'string') codes.push(coding.code);
    }
  }
  return codes;
}

function patientOutcome(requested: string, body: unknown): PdsOutcome {
  if (!isObject(body) || body.resourceType !== 'Patient') throw new PdsUnavailableError('bad-response', 'PDS 200 body is not a Patient');
  if (typeof body.id !== 'string' || !NHS_NUMBER_PATTERN.test(body.id)) throw new PdsUnavailableError('bad-response', 'PDS Patient has no 10-digit id');
  if (body.id !== requested) return { result: 'superseded' };

  const level = confidentiality(body.meta);
  if (level === 'redacted') return { result: 'invalidated' };
  const demographics = demographicsOf(body);
  if (level === 'restricted') return { result: 'restricted', restricted: true, ...(demographics ? { demographics } : {}) };
  const gpOdsCode = gpOdsCodeOf(body.generalPractitioner);
  const postcode = homePostcodeOf(body.address);
  return {
    result: 'traced',
    restricted: false,
    ...(gpOdsCode ? { gpOdsCode } : {}),
    ...(postcode ? { postcode } : {}),
    ...(demographics ? { demographics } : {}),
  };
}

/** Most names and given names read from one Patient; PDS records hold a handful. */
const MAX_NAMES = 10;
const MAX_NAME_CHARS = 200;
const FHIR_DATE = /^\d{4}(-\d{2}(-\d{2})?)?$/;

/**
 * The record's current names and birth date, for the routing demographics check. Entries that are not well-formed
 * HumanNames are skipped, and so are `use: old` names and names whose period has ended; but a record whose names
 * are all old or ended gets an empty list (no sent name matches it: the check must not fail open), and a record
 * whose names are all unreadable is not a usable answer (503). A record with no name at all, or no birth date,
 * leaves that part absent (not compared).
 */
function demographicsOf(patient: Record<string, unknown>): PdsDemographics | undefined {
  const today = new Date().toISOString().slice(0, 10);
  const names: PdsName[] = [];
  let held = 0;
  if (Array.isArray(patient.name)) {
    for (const n of patient.name.slice(0, MAX_NAMES)) {
      if (!isObject(n)) continue;
      const family = typeof n.family === 'string' && n.family.length <= MAX_NAME_CHARS && n.family.trim() !== '' ? n.family : undefined;
      const given = Array.isArray(n.given)
        ? n.given.slice(0, MAX_NAMES).filter((g): g is string => typeof g === 'string' && g.length <= MAX_NAME_CHARS && g.trim() !== '')
        : [];
      if (family === undefined && given.length === 0) continue;
      held++;
      if (n.use === 'old') continue;
      if (isObject(n.period) && typeof n.period.end === 'string' && n.period.end.slice(0, 10) < today) continue;
      names.push({ ...(family !== undefined ? { family } : {}), given });
    }
    if (patient.name.length > 0 && held === 0) throw new PdsUnavailableError('bad-response', 'PDS Patient.name holds no readable name');
  }
  const birthDate = typeof patient.birthDate === 'string' && FHIR_DATE.test(patient.birthDate) ? patient.birthDate : undefined;
  if (held === 0 && birthDate === undefined) return undefined;
  return { ...(held > 0 ? { names } : {}), ...(birthDate !== undefined ? { birthDate } : {}) };
}

function confidentiality(meta: unknown): 'unrestricted' | 'restricted' | 'redacted' {
  if (meta === undefined) return 'unrestricted';
  if (!isObject(meta)) throw new PdsUnavailableError('bad-response', 'PDS Patient.meta is malformed');
  if (meta.security === undefined) return 'unrestricted';
  if (!Array.isArray(meta.security)) throw new PdsUnavailableError('bad-response', 'PDS Patient.meta.security is malformed');
  let level: 'unrestricted' | 'restricted' | 'redacted' = 'unrestricted';
  for (const coding of meta.security.slice(0, 10)) {
    if (!isObject(coding) || typeof coding.code !== 'string') throw new PdsUnavailableError('bad-response', 'PDS Patient.meta.security is malformed');
    if (coding.system !== undefined && coding.system !== CONFIDENTIALITY_SYSTEM) continue;
    if (coding.code === 'REDACTED') return 'redacted';
    if (coding.code !== 'U') level = 'restricted';
  }
  return level;
}

function gpOdsCodeOf(generalPractitioner: unknown): string | undefined {
  const first = firstOf(generalPractitioner);
  const identifier = isObject(first) ? first.identifier : undefined;
  const value = isObject(identifier) ? identifier.value : undefined;
  return typeof value === 'string' && isCanonicalOdsCode(value) ? value : undefined;
}

function homePostcodeOf(address: unknown): string | undefined {
  if (!Array.isArray(address)) return undefined;
  const home = address.slice(0, 20).find((a) => isObject(a) && a.use === 'home');
  const postalCode = isObject(home) ? home.postalCode : undefined;
  if (typeof postalCode !== 'string') return undefined;
  const normalised = postalCode.trim().toUpperCase();
  return /^[A-Z0-9 ]{2,10}$/.test(normalised) ? normalised : undefined;
}

function parseTokenResponse(response: HttpResponse): { token: string; expiresInSeconds: number } {
  const body = parseJsonBody(response);
  if (!isObject(body)) throw new PdsUnavailableError('bad-response', 'token response is not a JSON object');
  const token = body.access_token;
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS || !/^[\x21-\x7e]+$/.test(token)) {
    throw new PdsUnavailableError('bad-response', 'token response has no usable access_token');
  }
  if (body.token_type !== undefined && (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer')) {
    throw new PdsUnavailableError('bad-response', 'token response token_type is not Bearer');
  }
  // The NHS API platform sends expires_in as a string ("599").
  const expiresIn = typeof body.expires_in === 'string' && /^\d{1,6}$/.test(body.expires_in) ? Number(body.expires_in) : body.expires_in;
  if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 86_400) {
    throw new PdsUnavailableError('bad-response', 'token response expires_in is missing or out of range');
  }
  return { token, expiresInSeconds: expiresIn };
}
