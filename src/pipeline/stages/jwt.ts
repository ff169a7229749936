// JWT stage: the Spine Core bearer token (docs/specification.md §4) checked against the route and the headers stage's
// findings (fromASID, its registration). Every failure is 400 MISSING_OR_INVALID_HEADER naming the claim, never
// its value (docs/specification.md §3.3), except a bad requesting_patient NHS number (400 INVALID_NHS_NUMBER).
//
// Order: size cap → decoded-token cache (a hit goes straight to the per-operation rule) → three base64url
// sections → header `alg` → decode (unsigned) or verify (signed) with jose → claim shapes → mandatory claims →
// claim values. Decisions where the sources leave room (docs/specification.md §9):
// - `alg: none` is taken only for operations in `nems.jwt.unsignedOperations`, and only with an empty signature.
//   Any other alg needs `nems.jwt.signed.enabled` and one of `signed.algorithms`; HS* is always refused (a shared
//   secret cannot identify one client). A failed signed check never falls back to the unsigned path.
// - JWKS that cannot be fetched → 503 SERVICE_UNAVAILABLE: the gateway failed closed, not the client.
// - `scope` is read as an RFC 6749 space-separated list that must hold exactly one distinct scope, the route's:
//   NEMS fixes one scope per operation (docs/specification.md §4.4) and the issue asks for "exactly", so extra scopes are refused.
// - `reason_for_request`: required when `requireReasonForRequest`; whenever present it must be one of
//   `allowedReasonsForRequest` (so the list stays meaningful when the claim is optional).
// - `requesting_system` must use the pipe form `…/accredited-system|<ASID>` every example uses (docs/specification.md §9.5).
// - `requesting_patient` takes `http://fhir.nhs.net/Id/nhs-number|` (Spine Core) and the current
//   `https://fhir.nhs.uk/Id/nhs-number|` (docs/specification.md §9.7: unknown which NEMS takes; the number itself is checked either way).
// - Both organisation spellings present with different values is refused in every `organisationClaim` mode.
// - Object-valued requesting_* / requested_* claims (GP Connect style, docs/specification.md §4.5) are refused.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  UnsecuredJWT,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose';
import type { Config } from '../../config/schema.js';
import { bearerScheme } from '../../nems/authorization.js';
import { ACCREDITED_SYSTEM, isAsid, isOdsCode, LEGACY_NHS_NUMBER_SYSTEM, NHS_NUMBER_SYSTEM, ODS_ORGANIZATION_SYSTEM } from '../../nems/identifiers.js';
import { nhsNumberProblem } from '../../nems/nhs-number.js';
import type { NemsOperation } from '../../nems/operations.js';
import type { ConformanceRuleId, RuleId } from '../../rules/catalogue.js';
import { RulePolicy, SPINE_CORE_REASONS_FOR_REQUEST, type RuleReports } from '../../rules/policy.js';
import { PASS, reject, type RequestContext, type SpineClaims, type Stage, type StageResult } from '../types.js';

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const JWKS_TIMEOUT_MS = 3_000;
const JWKS_MAX_BYTES = 256 * 1024;

const MANDATORY_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat'] as const;
/** Claim names that may appear in diagnostics when jose reports them; anything else is reported generically. */
const NAMEABLE_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'typ']);

type Failure = { readonly ok: false; readonly result: StageResult };
type Ok<T> = { readonly ok: true; readonly value: T };

function invalidHeader(rule: RuleId, diagnostics: string): Failure {
  return { ok: false, result: reject(rule, diagnostics) };
}
const missingDiagnostics = (claim: string): string => `The mandatory claim ${claim} is missing from the JWT`;
const invalidDiagnostics = (claim: string, problem = 'is invalid'): string => `The JWT claim ${claim} ${problem}`;
const missingClaim = (rule: RuleId, claim: string): Failure => invalidHeader(rule, missingDiagnostics(claim));
const invalidClaim = (rule: RuleId, claim: string, problem = 'is invalid'): Failure => invalidHeader(rule, invalidDiagnostics(claim, problem));
/** The rule a jose claim failure breaks. */
const JOSE_CLAIM_RULES: Readonly<Record<string, RuleId>> = { exp: 'jwt.exp', iat: 'jwt.iat', nbf: 'jwt.iat', iss: 'jwt.iss', sub: 'jwt.sub', aud: 'jwt.aud' };

interface LocalKey {
  readonly key: KeyObject;
  readonly alg: string;
  readonly kid?: string;
}

/** Reads the configured PEM keys once, at start-up; a bad file is a configuration error. */
function loadLocalKeys(config: Config): LocalKey[] {
  return config.nems.jwt.signed.keys.map((entry, i) => {
    let key: KeyObject;
    try {
      key = createPublicKey(readFileSync(entry.path, 'utf8'));
    } catch {
      throw new Error(`nems.jwt.signed.keys[${i}].path: not a readable PEM public key or certificate`);
    }
    return { key, alg: entry.alg, ...(entry.kid !== undefined ? { kid: entry.kid } : {}) };
  });
}

/** fetch for the JWKS that refuses bodies larger than JWKS_MAX_BYTES before jose parses them. */
async function cappedFetch(url: string, init: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > JWKS_MAX_BYTES) {
      await reader.cancel();
      throw new Error('JWKS response too large');
    }
    chunks.push(value);
  }
  return new Response(Buffer.concat(chunks), { status: response.status, headers: response.headers });
}

const MAX_CACHED_TOKEN_LENGTH = 2048;

/**
 * Unsigned tokens jose has decoded, keyed by the exact token string (as Envoy's jwt_authn `jwt_cache_config`):
 * decoding is a pure function of the token, so a hit skips it. What depends on the clock is re-checked on every
 * hit exactly as jose checks it (`exp`, `nbf` with the skew); a token that fails that is dropped and decoded again,
 * so jose reports the failure. Only successes are kept, only tokens with a numeric `exp` and at most
 * MAX_TOKEN_LENGTH characters, and at most `capacity` of them (the oldest goes first). Signed tokens are never
 * cached: their verification depends on keys that rotate.
 */
export class DecodedTokenCache {
  /**
   * A client with a valid certificate can mint unsigned tokens at will; with this cap the cache holds at most
   * `capacity` × a few KB (Spine tokens are well under 1 KB), whatever is sent.
   */
  static readonly MAX_TOKEN_LENGTH = MAX_CACHED_TOKEN_LENGTH;
  readonly #entries = new Map<string, JWTPayload>();
  constructor(private readonly capacity: number) {}

  get(token: string, nowMs: number, skewSeconds: number): JWTPayload | undefined {
    const payload = this.#entries.get(token);
    if (payload === undefined) return undefined;
    const now = Math.floor(nowMs / 1000);
    const { exp, nbf } = payload;
    if ((exp as number) <= now - skewSeconds || (typeof nbf === 'number' && nbf > now + skewSeconds)) {
      this.#entries.delete(token);
      return undefined;
    }
    return payload;
  }

  set(token: string, payload: JWTPayload): void {
    if (this.capacity === 0 || token.length > MAX_CACHED_TOKEN_LENGTH) return;
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) return;
    if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(token, Object.freeze(payload));
  }

  get size(): number {
    return this.#entries.size;
  }
}

type VerifyOutcome = Ok<JWTPayload> | Failure;
type Decoded = Ok<{ readonly payload: JWTPayload; readonly signed: boolean }>;

/** Maps a jose error to a rejection that names at most a claim, never a value or the library message. */
function fromJoseError(error: unknown, remote = false): Failure {
  if (error instanceof joseErrors.JWTExpired) return invalidClaim('jwt.exp', 'exp', 'shows the token has expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return NAMEABLE_CLAIMS.has(error.claim) ? invalidClaim(JOSE_CLAIM_RULES[error.claim] ?? 'jwt.structure', error.claim) : invalidHeader('jwt.structure', 'The JWT claims are invalid');
  }
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) return keysUnavailable();
  // jose raises the generic error for a JWKS endpoint that answers non-200 or non-JSON.
  if (remote && error instanceof joseErrors.JOSEError && error.code === 'ERR_JOSE_GENERIC') return keysUnavailable();
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return invalidHeader('jwt.signature', 'The Authorization header JWT signature could not be verified');
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return invalidHeader('jwt.signature', 'The Authorization header JWT is not signed by a configured key');
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported) {
    return invalidHeader('jwt.algorithm', 'The JWT header alg is not accepted');
  }
  if (error instanceof joseErrors.JOSEError || !remote) return invalidHeader('jwt.structure', 'The Authorization header JWT is not well formed');
  // Network failures while fetching the JWKS surface as plain errors.
  return keysUnavailable();
}

function keysUnavailable(): Failure {
  return { ok: false, result: reject('jwt.signing-keys', 'The JWT signing keys could not be fetched') };
}

export function createJwtStage(config: Config, policy: RulePolicy = RulePolicy.fromConfig(config)): Stage {
  const jwt = config.nems.jwt;
  const claimRules = compileClaimRules(config, policy);
  const unsignedOperations: ReadonlySet<NemsOperation> = new Set(jwt.unsignedOperations);
  const skew = jwt.clockSkewSeconds;
  const localKeys = jwt.signed.enabled ? loadLocalKeys(config) : [];
  const remoteKeys =
    jwt.signed.enabled && jwt.signed.jwksUrl
      ? createRemoteJWKSet(new URL(jwt.signed.jwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS, [customFetch]: cappedFetch })
      : undefined;
  const signedAlgorithms = jwt.signed.algorithms.filter((alg) => !/^HS/i.test(alg) && alg !== 'none');

  /** Signed path: local keys matching alg (and kid when given) first, then the JWKS. Never the unsigned path. */
  async function verifySigned(token: string, header: ProtectedHeaderParameters, now: number): Promise<VerifyOutcome> {
    const options = { algorithms: signedAlgorithms, currentDate: new Date(now), clockTolerance: skew };
    const candidates = localKeys.filter((k) => k.alg === header.alg && (header.kid === undefined || k.kid === header.kid));
    let failure: Failure | undefined;
    for (const candidate of candidates) {
      try {
        return { ok: true, value: (await jwtVerify(token, candidate.key, options)).payload };
      } catch (error) {
        failure = fromJoseError(error);
        // Only a signature mismatch is worth trying the next key for; a claim failure is final.
        if (!(error instanceof joseErrors.JWSSignatureVerificationFailed)) return failure;
      }
    }
    if (remoteKeys) {
      try {
        return { ok: true, value: (await jwtVerify(token, remoteKeys, options)).payload };
      } catch (error) {
        return fromJoseError(error, true);
      }
    }
    return failure ?? invalidHeader('jwt.signature', 'The Authorization header JWT is not signed by a configured key');
  }

  const cache = new DecodedTokenCache(jwt.decodedTokenCacheSize);

  /** The unsigned path is synchronous (the hot path); only signed verification awaits. */
  function decode(token: string, operation: NemsOperation, now: number): Decoded | Failure | Promise<Decoded | Failure> {
    // A cached token had the 3 sections and was decoded by jose as `alg: none` with an empty signature: only the
    // per-request rules remain.
    const cached = cache.get(token, now, skew);
    if (cached) {
      if (!unsignedOperations.has(operation)) return invalidHeader('jwt.algorithm', 'The JWT must be signed for this operation');
      return { ok: true, value: { payload: cached, signed: false } };
    }
    if (!JWT_SHAPE.test(token)) return invalidHeader('jwt.structure', 'The Authorization header JWT must have the 3 sections');
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return invalidHeader('jwt.structure', 'The JWT header is not valid');
    }
    const alg = header.alg;
    if (typeof alg !== 'string' || alg === '') return invalidHeader('jwt.structure', 'The JWT header alg is missing');
    if (/^HS/i.test(alg)) return invalidHeader('jwt.algorithm', 'The JWT header alg is not accepted: symmetric algorithms are refused');
    if (alg === 'none') {
      if (!token.endsWith('.')) return invalidHeader('jwt.algorithm', 'The JWT header alg is none but the token carries a signature');
      if (!unsignedOperations.has(operation)) return invalidHeader('jwt.algorithm', 'The JWT must be signed for this operation');
      try {
        const { payload } = UnsecuredJWT.decode(token, { currentDate: new Date(now), clockTolerance: skew });
        cache.set(token, payload);
        return { ok: true, value: { payload, signed: false } };
      } catch (error) {
        return fromJoseError(error);
      }
    }
    if (!jwt.signed.enabled) return invalidHeader('jwt.algorithm', 'The JWT header alg is not accepted: only unsigned Spine tokens are taken');
    if (!signedAlgorithms.includes(alg)) return invalidHeader('jwt.algorithm', 'The JWT header alg is not accepted');
    if (token.endsWith('.')) return invalidHeader('jwt.signature', 'The JWT signature is missing');
    return verifySigned(token, header, now).then((verified) =>
      verified.ok ? { ok: true, value: { payload: verified.value, signed: true } } : verified,
    );
  }

  function accept(ctx: RequestContext, decoded: Decoded | Failure): StageResult {
    if (!decoded.ok) return decoded.result;
    const { payload, signed } = decoded.value;
    const checked = checkClaims(payload, {
      rules: claimRules,
      reports: ctx,
      routeScope: ctx.route!.scope,
      fromAsid: ctx.fromAsid!,
      odsCodes: ctx.asidRegistration!.odsCodes,
      nowSeconds: Math.floor(ctx.receivedAt / 1000),
      signed,
    });
    if (!checked.ok) return checked.result;
    ctx.claims = checked.value;
    if (checked.value.requestingPatientNhsNumber !== undefined) {
      ctx.nhsNumbers.push({
        value: checked.value.requestingPatientNhsNumber,
        source: 'jwt-requesting-patient',
        element: 'Authorization JWT requesting_patient',
      });
    }
    ctx.audit['jwtSigned'] = signed;
    return PASS;
  }

  return {
    name: 'jwt',
    run(ctx: RequestContext): StageResult | Promise<StageResult> {
      if (!ctx.route || !ctx.fromAsid || !ctx.asidRegistration) {
        return reject('gateway.internal', 'The jwt stage ran before the route and headers stages');
      }
      // The headers stage judged the scheme (headers.authorization-scheme); any spelling of Bearer it let past is read.
      const authorization = ctx.headers.authorization;
      const space = typeof authorization === 'string' ? authorization.indexOf(' ') : -1;
      if (space < 0 || bearerScheme(authorization!.slice(0, space)) === 'not-bearer') {
        return reject('headers.bearer-token', 'The Authorization header must be supplied');
      }
      const token = authorization!.slice(space + 1).trim();
      // Cap before any decoding: the token is attacker-controlled. (A string of n characters is at most 3n bytes.)
      if (token.length > jwt.maxTokenBytes || (token.length * 3 > jwt.maxTokenBytes && Buffer.byteLength(token, 'utf8') > jwt.maxTokenBytes)) {
        return reject('jwt.size', 'The Authorization header JWT exceeds the maximum size');
      }
      const decoded = decode(token, ctx.route.operation, ctx.receivedAt);
      return decoded instanceof Promise ? decoded.then((d) => accept(ctx, d)) : accept(ctx, decoded);
    },
  };
}

/** The claim rules of one configuration and policy, compiled once. */
export interface ClaimRules {
  readonly jwt: Config['nems']['jwt'];
  readonly policy: RulePolicy;
  readonly rejectRepeatedDigitNhsNumbers: boolean;
  /** jwt.reason-for-request: the accepted values (configured, plus Spine Core's three under compatible). */
  readonly reasons: ReadonlySet<string>;
  /** jwt.scope under compatible: a space-separated list holding the route's scope. */
  readonly scopeList: boolean;
}

export function compileClaimRules(config: Config, policy: RulePolicy = RulePolicy.fromConfig(config)): ClaimRules {
  const jwt = config.nems.jwt;
  const reasons = new Set(jwt.allowedReasonsForRequest);
  if (policy.readings.spineCoreReasons) for (const reason of SPINE_CORE_REASONS_FOR_REQUEST) reasons.add(reason);
  return { jwt, policy, rejectRepeatedDigitNhsNumbers: config.nems.rejectRepeatedDigitNhsNumbers, reasons, scopeList: policy.readings.scopeList };
}

interface ClaimContext {
  readonly rules: ClaimRules;
  /** Where reported conformance rules are recorded (the request context). */
  readonly reports: RuleReports;
  readonly routeScope: string;
  readonly fromAsid: string;
  readonly odsCodes: readonly string[];
  readonly nowSeconds: number;
  readonly signed: boolean;
}

const ORGANISATION_SPELLINGS = ['requesting_organisation', 'requesting_organization'] as const;

/** `<system>|<value>` with the given system; the value, or undefined when the shape is wrong. */
function identifierValue(claim: unknown, systems: readonly string[]): string | undefined {
  if (typeof claim !== 'string') return undefined;
  const bar = claim.indexOf('|');
  if (bar < 0 || !systems.includes(claim.slice(0, bar))) return undefined;
  return claim.slice(bar + 1);
}

function has(payload: JWTPayload, claim: string): boolean {
  return Object.prototype.hasOwnProperty.call(payload, claim) && payload[claim] !== undefined && payload[claim] !== null;
}

/** A conformance rule of the claims fired: the failure when it enforces, undefined when reported or off. */
function conformClaim(c: ClaimContext, rule: ConformanceRuleId, diagnostics: string): Failure | undefined {
  const refused = c.rules.policy.fire(c.reports, rule, diagnostics);
  return refused ? { ok: false, result: { ok: false, rejection: refused } } : undefined;
}

/**
 * Every Spine Core claim rule of docs/specification.md §4.2–4.4, in a fixed order so the first problem is always the same one. Security
 * rules return at once; a conformance rule that reports (or is off) is recorded and the checks carry on, each later
 * check reading only what it can rely on (a missing organisation claim is no ODS code; an unreadable iss or sub is
 * an empty string in the claims passed on).
 */
export function checkClaims(payload: JWTPayload, c: ClaimContext): Ok<SpineClaims> | Failure {
  const rules = c.rules.jwt;
  // conformClaim is module-level: the hot path allocates nothing (no closure) for rules that do not fire.
  let failed: Failure | undefined;

  // GP Connect-style resource claims (docs/specification.md §4.5): a client built for another API.
  for (const name of Object.keys(payload)) {
    const value = payload[name];
    if ((name.startsWith('requesting_') || name.startsWith('requested_')) && value !== null && typeof value === 'object') {
      if ((failed = conformClaim(c, 'jwt.claim-types', invalidDiagnostics(name, 'must be a Spine Core identifier string, not a FHIR resource')))) return failed;
      break;
    }
  }

  if (!has(payload, 'iss') && (failed = conformClaim(c, 'jwt.iss', missingDiagnostics('iss')))) return failed;
  if (!has(payload, 'sub') && (failed = conformClaim(c, 'jwt.sub', missingDiagnostics('sub')))) return failed;
  if (!has(payload, 'aud') && (failed = conformClaim(c, 'jwt.aud', missingDiagnostics('aud')))) return failed;
  if (!has(payload, 'exp')) return missingClaim('jwt.exp', 'exp');
  if (!has(payload, 'iat')) return missingClaim('jwt.iat', 'iat');
  if (rules.requireReasonForRequest && !has(payload, 'reason_for_request')) {
    if ((failed = conformClaim(c, 'jwt.reason-for-request', missingDiagnostics('reason_for_request')))) return failed;
  }
  if (!has(payload, 'scope') && (failed = conformClaim(c, 'jwt.scope', missingDiagnostics('scope')))) return failed;
  if (!has(payload, 'requesting_system')) return missingClaim('jwt.requesting-system', 'requesting_system');
  const organisationClaims: readonly string[] =
    rules.organisationClaim === 'either' ? ORGANISATION_SPELLINGS : [rules.organisationClaim];
  const presentOrganisations = organisationClaims.filter((name) => has(payload, name));
  if (presentOrganisations.length === 0) {
    const name = rules.organisationClaim === 'either' ? 'requesting_organisation' : rules.organisationClaim;
    if ((failed = conformClaim(c, 'jwt.organisation-present', missingDiagnostics(name)))) return failed;
  }

  const { iss, sub, aud, exp, iat } = payload;
  if (has(payload, 'iss') && (typeof iss !== 'string' || iss.trim() === '')) {
    if ((failed = conformClaim(c, 'jwt.iss', invalidDiagnostics('iss')))) return failed;
  }
  if (c.signed && rules.signed.issuers.length > 0 && (typeof iss !== 'string' || !rules.signed.issuers.includes(iss))) {
    return invalidClaim('jwt.signed-issuer', 'iss', 'is not a configured issuer');
  }
  if (has(payload, 'sub') && (typeof sub !== 'string' || sub === '')) {
    if ((failed = conformClaim(c, 'jwt.sub', invalidDiagnostics('sub')))) return failed;
  }

  if (!Number.isSafeInteger(exp)) return invalidClaim('jwt.exp', 'exp', 'must be an integer number of seconds');
  if (!Number.isSafeInteger(iat)) return invalidClaim('jwt.iat', 'iat', 'must be an integer number of seconds');
  const expSeconds = exp as number;
  const iatSeconds = iat as number;
  if (expSeconds <= c.nowSeconds - rules.clockSkewSeconds) return invalidClaim('jwt.exp', 'exp', 'shows the token has expired');
  if (iatSeconds > c.nowSeconds + rules.clockSkewSeconds) return invalidClaim('jwt.iat', 'iat', 'is in the future');
  if (expSeconds <= iatSeconds) return invalidClaim('jwt.iat', 'exp', 'must be after iat');
  if (expSeconds - iatSeconds > rules.maxLifetimeSeconds) {
    if ((failed = conformClaim(c, 'jwt.max-lifetime', invalidDiagnostics('exp', 'gives the token a lifetime longer than allowed')))) return failed;
  }

  if (has(payload, 'aud')) {
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : undefined;
    if (!audiences || audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === '')) {
      if ((failed = conformClaim(c, 'jwt.aud', invalidDiagnostics('aud')))) return failed;
    } else if (rules.audiences.length > 0 && !audiences.some((a) => rules.audiences.includes(a))) {
      if ((failed = conformClaim(c, 'jwt.aud', invalidDiagnostics('aud', 'is not an accepted audience')))) return failed;
    }
  }

  if (has(payload, 'reason_for_request')) {
    const reason = payload['reason_for_request'];
    if (typeof reason !== 'string' || !c.rules.reasons.has(reason)) {
      if ((failed = conformClaim(c, 'jwt.reason-for-request', invalidDiagnostics('reason_for_request', 'is not an accepted reason')))) return failed;
    }
  }

  if (has(payload, 'scope')) {
    const scope = payload['scope'];
    // The usual case, the route's scope exactly, needs no splitting.
    if (typeof scope !== 'string') {
      if ((failed = conformClaim(c, 'jwt.scope', invalidDiagnostics('scope')))) return failed;
    } else if (scope !== c.routeScope) {
      const scopes = new Set(scope.split(' ').filter((s) => s !== ''));
      const holds = scopes.has(c.routeScope) && (c.rules.scopeList || scopes.size === 1);
      if (!holds && (failed = conformClaim(c, 'jwt.scope', invalidDiagnostics('scope', c.rules.scopeList ? `must hold ${c.routeScope} for this operation` : `must be exactly ${c.routeScope} for this operation`)))) return failed;
    }
  }

  const requestingSystem = payload['requesting_system'] as unknown;
  const asid = identifierValue(requestingSystem, [ACCREDITED_SYSTEM]);
  if (asid === undefined || !isAsid(asid)) return invalidClaim('jwt.requesting-system', 'requesting_system', 'is not well formed');
  if (asid !== c.fromAsid) return invalidClaim('jwt.requesting-system', 'requesting_system', 'does not match the fromASID header');

  // jwt.organisation-ods: a present organisation claim must name an ODS code of the ASID, whatever the policy.
  let ods: string | undefined;
  if (presentOrganisations.length > 0) {
    const organisations = presentOrganisations.map((name) => payload[name] as unknown);
    if (organisations.length > 1 && organisations[0] !== organisations[1]) {
      return invalidClaim('jwt.organisation-ods', 'requesting_organisation', 'is given in both spellings with different values');
    }
    const organisationName = presentOrganisations[0]!;
    ods = identifierValue(organisations[0], [ODS_ORGANIZATION_SYSTEM]);
    if (ods === undefined || !isOdsCode(ods)) return invalidClaim('jwt.organisation-ods', organisationName, 'is not well formed');
    if (!c.odsCodes.includes(ods)) return invalidClaim('jwt.organisation-ods', organisationName, 'is not associated with the requesting_system ASID');
  }

  let requestingUser: string | undefined;
  if (has(payload, 'requesting_user')) {
    const user = payload['requesting_user'];
    if (typeof user !== 'string' || !/^[^|\s]+\|[^|]+$/.test(user)) {
      if ((failed = conformClaim(c, 'jwt.requesting-user', invalidDiagnostics('requesting_user', 'is not well formed')))) return failed;
    } else {
      requestingUser = user;
    }
  }
  if (has(payload, 'sub') && sub !== (requestingUser ?? requestingSystem)) {
    if ((failed = conformClaim(c, 'jwt.sub', invalidDiagnostics('sub', requestingUser !== undefined ? 'must equal requesting_user' : 'must equal requesting_system')))) return failed;
  }

  let patient: string | undefined;
  if (has(payload, 'requesting_patient')) {
    patient = identifierValue(payload['requesting_patient'], [LEGACY_NHS_NUMBER_SYSTEM, NHS_NUMBER_SYSTEM]);
    if (patient === undefined) return invalidClaim('jwt.requesting-patient', 'requesting_patient', 'is not an NHS number identifier');
    if (nhsNumberProblem(patient, c.rules.rejectRepeatedDigitNhsNumbers) !== undefined) {
      return { ok: false, result: reject('nhs-number.valid', 'The JWT claim requesting_patient does not hold a valid NHS number') };
    }
  }

  return {
    ok: true,
    value: {
      iss: typeof iss === 'string' ? iss : '',
      sub: typeof sub === 'string' ? sub : '',
      requestingSystemAsid: asid,
      ...(ods !== undefined ? { requestingOrganisationOds: ods } : {}),
      ...(requestingUser !== undefined ? { requestingUser } : {}),
      ...(patient !== undefined ? { requestingPatientNhsNumber: patient } : {}),
      scope: c.routeScope,
      exp: expSeconds,
      iat: iatSeconds,
      signed: c.signed,
    },
  };
}
