// The JWT stage's decoding and claim checks (src/pipeline/stages/jwt.ts, with jose), on the example endpoints and
// every operation. Inputs are Spine tokens built as `nems-gateway jwt` builds them, then edited: claims removed,
// retyped, repeated in the JSON text, times around the skew and lifetime limits, scope lists, both organisation
// spellings, user and patient identifiers; headers with other algs, duplicated alg, crit; signatures on `none`;
// section counts, padding and base64 alphabets, the Bearer scheme's spelling; tokens at and just over
// maxTokenBytes; then mutated as header bytes.
// Contract: the unsigned path answers synchronously and never throws; with the decoded-token cache or without it
// the answer is the same, on a first and a repeated call; a refusal is 400 MISSING_OR_INVALID_HEADER (or
// INVALID_NHS_NUMBER for requesting_patient) and never quotes the token or a claim; a pass is re-checked here
// from the token's own bytes against every Spine Core rule the stage documents; a token straight from the
// builder passes.
import fc from 'fast-check';
import { configSchema, type Config } from '../../../src/config/schema.js';
import { ACCREDITED_SYSTEM, LEGACY_NHS_NUMBER_SYSTEM, NHS_NUMBER_SYSTEM, ODS_ORGANIZATION_SYSTEM } from '../../../src/nems/identifiers.js';
import { ROUTES } from '../../../src/pipeline/routes.js';
import type { NemsOperation } from '../../../src/nems/operations.js';
import { createJwtStage } from '../../../src/pipeline/stages/jwt.js';
import type { RequestContext, Stage, StageResult } from '../../../src/pipeline/types.js';
import { EXAMPLE_ENDPOINTS, EXAMPLE_IDENTITIES, type ExampleEndpointName } from '../../helpers/endpoints.js';
import { CANARY, excerpt, expectNoCanary, expectThat, printedAs, type CapProbe, type FuzzTarget } from '../harness.js';
import { mutateText, mutationsArbitrary, type Mutation } from '../mutate.js';
import { oracleNhsNumber, validNhsNumber } from './nhs-number.js';

/** The request time every fuzzed token is judged at. */
const NOW_MS = Date.UTC(2025, 0, 30, 12, 0, 0);
const NOW = NOW_MS / 1000;

function config(cacheSize: number): Config {
  return configSchema.parse({
    server: { tls: { cert: '/x/cert.pem', key: '/x/key.pem', ca: '/x/ca.pem' } },
    registry: { path: '/x/registry.yaml' },
    nems: { jwt: { decodedTokenCacheSize: cacheSize } },
    // The oracle below is Spine Core to the letter: the strict profile, every JWT rule enforced.
    policy: { profile: 'strict' },
  });
}

const CONFIG = config(1000);
const RULES = CONFIG.nems.jwt;

// ---------------------------------------------------------------------------------------------------------------
// Generation.

type Claims = [name: string, json: string][];

function baseClaims(op: NemsOperation, endpoint: ExampleEndpointName): Claims {
  const { asid, ods } = EXAMPLE_IDENTITIES[endpoint];
  const system = `${ACCREDITED_SYSTEM}|${asid}`;
  const claims: Record<string, unknown> = {
    iss: 'https://nems-gateway.test/fuzz',
    sub: system,
    aud: 'https://clinicals.spineservices.nhs.uk',
    exp: NOW + 300,
    iat: NOW,
    reason_for_request: 'directcare',
    scope: ROUTES.find((r) => r.operation === op)!.scope,
    requesting_system: system,
    requesting_organisation: `${ODS_ORGANIZATION_SYSTEM}|${ods}`,
  };
  return Object.entries(claims).map(([k, v]) => [k, JSON.stringify(v)]);
}

const CLAIM_NAMES = [
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'reason_for_request', 'scope', 'requesting_system', 'requesting_organisation',
  'requesting_organization', 'requesting_user', 'requesting_patient', 'requested_record', '__proto__', 'constructor',
];
const CLAIM_VALUES = [
  '""', '" "', `"${CANARY}"`, 'null', 'true', '0', '-1', '1.5', '1e21', '9007199254740993', '[]', '[""]', '["a",1]', '{}', `{"resourceType":"Patient"}`,
  '"directcare"', '"DirectCare"', '"patient/Subscription.read"', '"patient/Subscription.write"', '"patient/Bundle.write"',
  '"patient/Subscription.read patient/Subscription.read"', '"patient/Subscription.read patient/Bundle.write"', '" patient/Bundle.write "',
  `"${ACCREDITED_SYSTEM}|200000000101"`, `"${ACCREDITED_SYSTEM}|200000000102"`, `"${ACCREDITED_SYSTEM}/200000000102"`, `"${ACCREDITED_SYSTEM}|2000000001020"`,
  `"${ODS_ORGANIZATION_SYSTEM}|A83627"`, `"${ODS_ORGANIZATION_SYSTEM}|RX3EP"`, `"${ODS_ORGANIZATION_SYSTEM}|rx3ep"`, `"${ODS_ORGANIZATION_SYSTEM}|"`,
  '"https://fhir.nhs.uk/Id/sds-role-profile-id|fakeRoleId"', '"https://fhir.nhs.uk/Id/sds-role-profile-id|a|b"', '"x |y"',
  `"${LEGACY_NHS_NUMBER_SYSTEM}|9434765919"`, `"${NHS_NUMBER_SYSTEM}|9434765919"`, `"${NHS_NUMBER_SYSTEM}|9434765918"`, `"${LEGACY_NHS_NUMBER_SYSTEM}|1111111111"`,
  `"${LEGACY_NHS_NUMBER_SYSTEM}|${CANARY}"`, '"\\u0000"', '"\\ud800"',
];
const TIME_OFFSETS = [-100_000, -361, -301, -61, -60, -59, -1, 0, 1, 59, 60, 61, 239, 240, 241, 299, 300, 301, 360, 361];
const HEADERS = [
  '{"alg":"none","typ":"JWT"}', '{"alg":"none"}', '{"typ":"JWT","alg":"none"}', '{"alg":"None"}', '{"alg":"NONE"}', '{"alg":"HS256"}', '{"alg":"hs256"}',
  '{"alg":"RS256"}', '{"alg":"ES256"}', '{"alg":""}', '{"alg":null}', '{}', '[]', '"none"', 'null', '{"alg":"HS256","alg":"none"}',
  '{"alg":"none","alg":"HS256"}', '{"alg":"none","crit":["exp"]}', '{"alg":"none","b64":false}', '{"alg":"none","kid":"../../x"}', '{"alg":"none"',
  `{"alg":"none","x":"${CANARY}"}`,
];

type ClaimEdit =
  | { readonly op: 'remove' | 'repeat'; readonly claim: number }
  | { readonly op: 'set'; readonly claim: number; readonly value: number }
  | { readonly op: 'time'; readonly claim: 'exp' | 'iat' | 'nbf'; readonly offset: number }
  | { readonly op: 'patient'; readonly seed: number; readonly legacy: boolean }
  | { readonly op: 'both-organisation-spellings'; readonly same: boolean };

const claimEdit: fc.Arbitrary<ClaimEdit> = fc.oneof(
  fc.record({ op: fc.constantFrom('remove' as const, 'repeat' as const), claim: fc.nat({ max: CLAIM_NAMES.length - 1 }) }),
  fc.record({ op: fc.constant('set' as const), claim: fc.nat({ max: CLAIM_NAMES.length - 1 }), value: fc.nat({ max: CLAIM_VALUES.length - 1 }) }),
  fc.record({ op: fc.constant('time' as const), claim: fc.constantFrom('exp' as const, 'iat' as const, 'nbf' as const), offset: fc.nat({ max: TIME_OFFSETS.length - 1 }) }),
  fc.record({ op: fc.constant('patient' as const), seed: fc.nat({ max: 999_999_999 }), legacy: fc.boolean() }),
  fc.record({ op: fc.constant('both-organisation-spellings' as const), same: fc.boolean() }),
);

function applyClaimEdit(claims: Claims, edit: ClaimEdit): void {
  const set = (name: string, json: string) => {
    const at = claims.findIndex(([n]) => n === name);
    if (at >= 0) claims[at] = [name, json];
    else claims.push([name, json]);
  };
  switch (edit.op) {
    case 'remove': {
      const name = CLAIM_NAMES[edit.claim]!;
      claims.splice(0, claims.length, ...claims.filter(([n]) => n !== name));
      break;
    }
    case 'repeat': {
      // The same claim name twice in the JSON text (RFC 7519 §4: JSON.parse keeps the last).
      const found = claims.find(([n]) => n === CLAIM_NAMES[edit.claim]);
      if (found) claims.push([found[0], CLAIM_VALUES[edit.claim % CLAIM_VALUES.length]!]);
      break;
    }
    case 'set':
      set(CLAIM_NAMES[edit.claim]!, CLAIM_VALUES[edit.value]!);
      break;
    case 'time':
      set(edit.claim, String(NOW + TIME_OFFSETS[edit.offset]!));
      break;
    case 'patient':
      set('requesting_patient', JSON.stringify(`${edit.legacy ? LEGACY_NHS_NUMBER_SYSTEM : NHS_NUMBER_SYSTEM}|${validNhsNumber(edit.seed)}`));
      break;
    case 'both-organisation-spellings': {
      const organisation = claims.find(([n]) => n === 'requesting_organisation')?.[1] ?? `"${ODS_ORGANIZATION_SYSTEM}|RX3EP"`;
      set('requesting_organization', edit.same ? organisation : `"${ODS_ORGANIZATION_SYSTEM}|A83627"`);
      break;
    }
  }
}

type TokenShape = 'three' | 'signature' | 'two' | 'four' | 'padding' | 'base64' | 'space' | 'scheme-lower' | 'scheme-double-space' | 'scheme-tab' | 'no-scheme';

const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

function authorizationFor(header: string, claims: Claims, shape: TokenShape): string {
  const payload = `{${claims.map(([n, v]) => `${JSON.stringify(n)}:${v}`).join(',')}}`;
  const h = b64url(header);
  const p = b64url(payload);
  const token = {
    three: `${h}.${p}.`,
    signature: `${h}.${p}.c2lnbmF0dXJl`,
    two: `${h}.${p}`,
    four: `${h}.${p}..`,
    padding: `${Buffer.from(header).toString('base64')}.${Buffer.from(payload).toString('base64')}.`,
    base64: `${h}.${p.replace(/-/g, '+').replace(/_/g, '/')}.`,
    space: ` ${h}.${p}. `,
    'scheme-lower': `${h}.${p}.`,
    'scheme-double-space': ` ${h}.${p}.`,
    'scheme-tab': `${h}.${p}.`,
    'no-scheme': `${h}.${p}.`,
  }[shape];
  const scheme = shape === 'scheme-lower' ? 'bearer ' : shape === 'scheme-tab' ? 'Bearer\t' : shape === 'no-scheme' ? '' : 'Bearer ';
  return `${scheme}${token}`;
}

export interface JwtInput {
  readonly op: NemsOperation;
  readonly endpoint: ExampleEndpointName;
  readonly authorization: string;
  /** Straight from the token builder: must pass. */
  readonly valid: boolean;
}

const JWT_TOKENS = ['.', '=', '+', '/', ' ', '\t', 'eyJ', 'A', '_', '-', '\u00e9', '\u0000', 'Bearer '];
const OPERATIONS: NemsOperation[] = ['create', 'read', 'delete', 'publish'];

export const jwtInputArbitrary: fc.Arbitrary<JwtInput> = fc
  .record({
    op: fc.constantFrom(...OPERATIONS),
    endpoint: fc.constantFrom<ExampleEndpointName>('gp-system', 'child-health'),
    header: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat({ max: HEADERS.length - 1 }) }),
    edits: fc.oneof({ weight: 1, arbitrary: fc.constant([] as ClaimEdit[]) }, { weight: 3, arbitrary: fc.array(claimEdit, { minLength: 1, maxLength: 3 }) }),
    shape: fc.oneof(
      { weight: 12, arbitrary: fc.constant<TokenShape>('three') },
      { weight: 1, arbitrary: fc.constantFrom<TokenShape>('signature', 'two', 'four', 'padding', 'base64', 'space', 'scheme-lower', 'scheme-double-space', 'scheme-tab', 'no-scheme') },
    ),
    size: fc.oneof({ weight: 30, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: -1, max: 1 }) }),
    mutations: fc.oneof({ weight: 3, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: mutationsArbitrary(JWT_TOKENS.length, 1, 2) }),
  })
  .map(({ op, endpoint, header, edits, shape, size, mutations }) => {
    const claims = baseClaims(op, endpoint);
    for (const edit of edits) applyClaimEdit(claims, edit);
    if (size !== undefined) {
      // A padding claim sized so the token is maxTokenBytes + size characters (base64url: 4 per 3 bytes).
      const without = authorizationFor(HEADERS[header]!, claims, shape).length - 'Bearer '.length;
      const room = RULES.maxTokenBytes + size - without - Math.ceil((',"pad":""'.length * 4) / 3);
      if (room > 0) claims.push(['pad', JSON.stringify('p'.repeat(Math.floor((room * 3) / 4)))]);
    }
    const written = authorizationFor(HEADERS[header]!, claims, shape);
    const authorization = mutations.length > 0 ? mutateText(written, mutations, JWT_TOKENS, [written], 'latin1') : written;
    const input: JwtInput = { op, endpoint, authorization, valid: header === 0 && edits.length === 0 && shape === 'three' && size === undefined && mutations.length === 0 };
    return printedAs(input, () => `{ op: ${op}, endpoint: ${endpoint}, valid: ${input.valid}, authorization: ${excerpt(authorization, 1200)} }`);
  });

// ---------------------------------------------------------------------------------------------------------------
// Running the stage.

const cachedStage = createJwtStage(CONFIG);
const uncachedStage = createJwtStage(config(0));

function contextFor(input: JwtInput): RequestContext {
  const endpoint = EXAMPLE_ENDPOINTS[input.endpoint];
  const { asid } = EXAMPLE_IDENTITIES[input.endpoint];
  const route = ROUTES.find((r) => r.operation === input.op)!;
  return {
    requestId: 'fuzz',
    method: route.method,
    path: '/STU3/fuzz',
    query: new URLSearchParams(),
    headers: { authorization: input.authorization },
    rawHeaders: ['Authorization', input.authorization],
    endpoint,
    source: { readBody: () => Promise.resolve(Buffer.alloc(0)) },
    receivedAt: NOW_MS,
    route,
    operation: input.op,
    fromAsid: asid,
    asidRegistration: endpoint.asids.get(asid)!,
    nhsNumbers: [],
    forwardHeaders: {},
    audit: {},
  };
}

interface JwtRun {
  readonly result: StageResult | Promise<StageResult>;
  readonly ctx: RequestContext;
}

interface JwtOutput {
  readonly uncached: JwtRun;
  readonly first: JwtRun;
  readonly repeated: JwtRun;
}

function runStage(stage: Stage, input: JwtInput): JwtRun {
  const ctx = contextFor(input);
  return { result: stage.run(ctx), ctx };
}

// ---------------------------------------------------------------------------------------------------------------
// The contract.

function verdict(run: JwtRun): string {
  expectThat(!(run.result instanceof Promise), 'the unsigned-only stage answered asynchronously');
  const result = run.result as StageResult;
  return result.ok ? 'pass' : `${result.rejection.code} ${result.rejection.diagnostics}`;
}

function decodeSection(section: string): unknown {
  return JSON.parse(Buffer.from(section, 'base64url').toString('utf8')) as unknown;
}

/** Every rule the stage documents, re-read from the token's bytes. */
function checkPassedToken(input: JwtInput, ctx: RequestContext): void {
  // The scheme in any case: how it must be spelt is the headers stage's rule (headers.authorization-scheme).
  expectThat(/^bearer /i.test(input.authorization), 'passed without the Bearer scheme');
  const token = input.authorization.slice('Bearer '.length).trim();
  expectThat(Buffer.byteLength(token, 'utf8') <= RULES.maxTokenBytes, 'passed a token over maxTokenBytes');
  const sections = token.split('.');
  expectThat(sections.length === 3 && sections[2] === '' && /^[A-Za-z0-9_-]+$/.test(sections[0]!) && /^[A-Za-z0-9_-]+$/.test(sections[1]!), 'passed a token that is not header.payload. (unsigned)');
  const header = decodeSection(sections[0]!) as Record<string, unknown>;
  expectThat(header !== null && typeof header === 'object' && header['alg'] === 'none', 'passed a token whose alg is not none');
  const claims = decodeSection(sections[1]!) as Record<string, unknown>;
  expectThat(claims !== null && typeof claims === 'object' && !Array.isArray(claims), 'passed a payload that is not a JSON object');
  const { iss, sub, aud, exp, iat, nbf } = claims;
  const skew = RULES.clockSkewSeconds;
  expectThat(typeof iss === 'string' && iss.trim() !== '', 'passed without a usable iss');
  expectThat(Number.isSafeInteger(exp) && Number.isSafeInteger(iat), 'passed exp/iat that are not integers');
  const e = exp as number;
  const i = iat as number;
  expectThat(e > NOW - skew && i <= NOW + skew && e > i && e - i <= RULES.maxLifetimeSeconds, 'passed a token outside its time rules');
  expectThat(nbf === undefined || (typeof nbf === 'number' && nbf <= NOW + skew), 'passed a token not yet valid (nbf)');
  const audiences = typeof aud === 'string' ? [aud] : aud;
  expectThat(Array.isArray(audiences) && audiences.length > 0 && audiences.every((a) => typeof a === 'string' && a !== ''), 'passed without a usable aud');
  expectThat(claims['reason_for_request'] === 'directcare', 'passed without reason_for_request directcare');
  const scope = claims['scope'];
  expectThat(typeof scope === 'string' && new Set(scope.split(' ').filter(Boolean)).size === 1 && scope.trim().split(/ +/).every((s) => s === ctx.route!.scope), 'passed a scope other than exactly the route scope');
  const system = `${ACCREDITED_SYSTEM}|${ctx.fromAsid}`;
  expectThat(claims['requesting_system'] === system, 'passed a requesting_system other than the fromASID');
  const organisations = ['requesting_organisation', 'requesting_organization'].filter((n) => claims[n] !== undefined && claims[n] !== null).map((n) => claims[n]);
  expectThat(organisations.length >= 1 && organisations.every((o) => o === organisations[0]), 'passed without one consistent requesting_organisation');
  const ods = String(organisations[0]).startsWith(`${ODS_ORGANIZATION_SYSTEM}|`) ? String(organisations[0]).slice(ODS_ORGANIZATION_SYSTEM.length + 1) : undefined;
  expectThat(ods !== undefined && ctx.asidRegistration!.odsCodes.includes(ods), 'passed an organisation not registered for the ASID');
  const user = claims['requesting_user'];
  expectThat(user === undefined || user === null || (typeof user === 'string' && /^[^|\s]+\|[^|]+$/.test(user)), 'passed a malformed requesting_user');
  expectThat(sub === (typeof user === 'string' ? user : system), 'passed a sub other than requesting_user / requesting_system');
  for (const [name, value] of Object.entries(claims)) {
    if (name.startsWith('requesting_') || name.startsWith('requested_')) expectThat(value === null || typeof value !== 'object', 'passed an object-valued requesting_* claim');
  }
  const patient = claims['requesting_patient'];
  if (patient !== undefined && patient !== null) {
    const number = typeof patient === 'string' ? patient.replace(/^(?:http:\/\/fhir\.nhs\.net|https:\/\/fhir\.nhs\.uk)\/Id\/nhs-number\|/, '') : undefined;
    expectThat(number !== undefined && number !== patient && oracleNhsNumber(number, CONFIG.nems.rejectRepeatedDigitNhsNumbers) === undefined, 'passed a requesting_patient that is not a valid NHS number');
    expectThat(ctx.nhsNumbers.some((n) => n.value === number && n.source === 'jwt-requesting-patient'), 'requesting_patient not handed to the nhs-numbers stage');
  } else {
    expectThat(ctx.nhsNumbers.length === 0, 'an NHS number recorded without requesting_patient');
  }
  expectThat(ctx.claims?.requestingSystemAsid === ctx.fromAsid && ctx.claims?.requestingOrganisationOds === ods, 'the claims recorded on the request differ from the token');
}

function checkJwt(input: JwtInput, out: JwtOutput): void {
  const uncached = verdict(out.uncached);
  expectThat(verdict(out.first) === uncached, `with the decoded-token cache: ${verdict(out.first).slice(0, 120)}; without: ${uncached.slice(0, 120)}`);
  expectThat(verdict(out.repeated) === uncached, `repeated (cached) call: ${verdict(out.repeated).slice(0, 120)}; first: ${uncached.slice(0, 120)}`);
  if (input.valid) expectThat(uncached === 'pass', `refused a token straight from the builder: ${uncached}`);
  const result = out.uncached.result as StageResult;
  if (!result.ok) {
    expectThat(['MISSING_OR_INVALID_HEADER', 'INVALID_NHS_NUMBER'].includes(result.rejection.code), `undocumented code ${result.rejection.code}`);
    expectThat(result.rejection.diagnostics.length > 0 && result.rejection.diagnostics.length <= 200, 'diagnostics missing or too long');
    expectNoCanary(result.rejection.diagnostics, 'JWT diagnostics');
    const token = input.authorization.replace(/^\S*\s+/, '').trim();
    if (token.length >= 8) expectThat(!result.rejection.diagnostics.includes(token.slice(0, 8)), 'diagnostics quote the token');
    return;
  }
  checkPassedToken(input, out.uncached.ctx);
}

export const jwtTarget: FuzzTarget<JwtInput, JwtOutput> = {
  name: 'jwt',
  covers: 'src/pipeline/stages/jwt.ts (decoding with jose, DecodedTokenCache, checkClaims)',
  arbitrary: jwtInputArbitrary,
  run: (input) => ({ uncached: runStage(uncachedStage, input), first: runStage(cachedStage, input), repeated: runStage(cachedStage, input) }),
  check: checkJwt,
  classify: (out) => {
    const r = out.uncached.result as StageResult;
    return r.ok ? 'passed' : `${r.rejection.code}: ${r.rejection.diagnostics.replace(/ (?:is|must|does|shows|gives|are|exceeds|could|carries|has).*$/, '')}`;
  },
  show: (input) => `${input.op} ${input.endpoint}\n${input.authorization}`,
  capProbes: (): CapProbe<JwtInput>[] =>
    [-1, 0, 1].map((delta) => {
      const claims = baseClaims('read', 'child-health');
      const without = authorizationFor(HEADERS[0]!, claims, 'three').length;
      const target = RULES.maxTokenBytes + delta + 'Bearer '.length;
      // Grow a padding claim one character at a time until the header value is exactly the target length.
      let pad = Math.floor(((target - without) * 3) / 4) - 12;
      let authorization = '';
      for (; pad < RULES.maxTokenBytes; pad++) {
        authorization = authorizationFor(HEADERS[0]!, [...claims, ['pad', JSON.stringify('p'.repeat(pad))]], 'three');
        if (authorization.length >= target) break;
      }
      return { name: `token of ${authorization.length - 'Bearer '.length} characters (maxTokenBytes ${RULES.maxTokenBytes})`, input: { op: 'read', endpoint: 'child-health', authorization, valid: authorization.length - 'Bearer '.length <= RULES.maxTokenBytes } };
    }),
  ciRuns: 1500,
};
