// The gateway configuration schema: one typed, validated Config. Paths in the file are relative to the
// config file's folder and are resolved by the loader (load.ts), never here.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const asid = z.string().regex(/^\d{12}$/, 'must be a 12-digit ASID');
const positiveMs = z.number().int().positive();
/** Every URL the gateway dials or advertises is HTTP(S); `ftp:` or `file:` would only fail later and obscurely. */
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const tlsFiles = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  /** CA bundle that client certificates must chain to. */
  ca: z.string().min(1),
  /** PEM CRL(s) signed by the CA; optional but strongly recommended. */
  crl: z.string().min(1).optional(),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** OpenSSL cipher list; the Node default when absent. */
  ciphers: z.string().min(1).optional(),
});

const serverSchema = z.strictObject({
  host: host.default('127.0.0.1'),
  port: port.default(8443),
  tls: tlsFiles,
  limits: z
    .strictObject({
      maxHeaderBytes: z.number().int().min(1024).max(1_048_576).default(16_384),
      /** Default body cap for routes without their own. */
      maxBodyBytes: z.number().int().positive().default(1_048_576),
      headersTimeoutMs: positiveMs.default(10_000),
      requestTimeoutMs: positiveMs.default(30_000),
      keepAliveTimeoutMs: positiveMs.default(5_000),
      /** Time a TLS handshake may take before the socket is destroyed. */
      handshakeTimeoutMs: positiveMs.default(10_000),
      maxConnections: z.number().int().positive().default(10_000),
    })
    .prefault({}),
});

const adminSchema = z
  .strictObject({
    host: host.default('127.0.0.1'),
    port: port.default(9464),
    enabled: z.boolean().default(true),
  })
  .prefault({});

const jwtSchema = z
  .strictObject({
    /** Operations that take Spine's unsigned (alg none) tokens. Spine Core today: all of them. */
    unsignedOperations: z.array(z.enum(['create', 'read', 'delete', 'publish'])).default(['create', 'read', 'delete', 'publish']),
    signed: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** PEM public keys (SPKI) or certificates, with the algorithm each is for. */
        keys: z.array(z.strictObject({ path: z.string().min(1), alg: z.string().min(1), kid: z.string().optional() })).default([]),
        jwksUrl: httpUrl.optional(),
        issuers: z.array(z.string()).default([]),
        algorithms: z.array(z.string()).default(['RS256', 'RS512', 'ES256', 'PS256']),
      })
      .prefault({}),
    clockSkewSeconds: z.number().int().min(0).max(3600).default(60),
    maxLifetimeSeconds: z.number().int().positive().max(86_400).default(300),
    maxTokenBytes: z.number().int().min(256).max(65_536).default(8192),
    /**
     * Unsigned tokens decoded by jose are kept, keyed by the exact token, until they expire (Envoy's jwt_authn
     * cache): a client that reuses its token is not decoded again. Time and claim checks still run per request.
     * 0 turns the cache off.
     */
    decodedTokenCacheSize: z.number().int().min(0).max(100_000).default(1000),
    /** Which spelling of requesting_organisation is accepted (§9.4). */
    organisationClaim: z.enum(['either', 'requesting_organisation', 'requesting_organization']).default('either'),
    requireReasonForRequest: z.boolean().default(true),
    allowedReasonsForRequest: z.array(z.string().min(1)).default(['directcare']),
    /** When set, `aud` must be one of these; when empty, `aud` must only be present. */
    audiences: z.array(z.string()).default([]),
  })
  .prefault({});

const nemsSchema = z
  .strictObject({
    toAsid: asid.default('200000000306'),
    pathPrefix: z.string().regex(/^(\/[A-Za-z0-9._-]+)*$/, 'must be empty or like /STU3').default('/STU3'),
    publishMaxBytes: z.number().int().positive().default(3 * 1024 * 1024),
    subscriptionMaxBytes: z.number().int().positive().default(256 * 1024),
    /** Accept the pre-2020 publish InteractionID forms (`<event-code>.Write`, `.write:1`) (§2.1, §9.22). */
    acceptLegacyPublishInteractionIds: z.boolean().default(false),
    /** XML engine: the single-pass parser (default; one parser on the hostile path), or fast-xml-parser after a pre-scan (same trees, ~8x the CPU). */
    xmlParser: z.enum(['fast-xml-parser', 'single-pass']).default('single-pass'),
    /** Forward accepted MIME types in their canonical spelling instead of as sent (§7). */
    canonicaliseMime: z.boolean().default(false),
    /** Reject NHS numbers made of one repeated digit, which pass modulus 11 (§6.3 caveat). */
    rejectRepeatedDigitNhsNumbers: z.boolean().default(true),
    jwt: jwtSchema,
  })
  .prefault({});

const upstreamTls = z.strictObject({
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  servername: z.string().min(1).optional(),
});

const upstreamSchema = z
  .strictObject({
    /** embedded: the in-process reference NEMS core; http: a remote NEMS (Spine, or `nems-gateway core`); echo: a loopback echo. */
    kind: z.enum(['embedded', 'http', 'echo']).default('embedded'),
    url: httpUrl.optional(),
    /** Forwarding engine for kind http. */
    engine: z.enum(['http-proxy', 'undici']).default('undici'),
    connectTimeoutMs: positiveMs.default(5_000),
    timeoutMs: positiveMs.default(30_000),
    maxSockets: z.number().int().positive().default(64),
    tls: upstreamTls.optional(),
  })
  .prefault({})
  .check((ctx) => {
    if (ctx.value.kind === 'http' && !ctx.value.url) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['url'], message: 'is required when kind is http' });
    }
  });

const pdsOutcomeAction = z.enum(['allow', 'reject']);

const pdsSchema = z
  .strictObject({
    kind: z.enum(['local', 'fhir']).default('local'),
    local: z.strictObject({ path: z.string().min(1) }).default({ path: 'pds-local.yaml' }),
    fhir: z
      .strictObject({
        baseUrl: httpUrl,
        timeoutMs: positiveMs.default(3_000),
        auth: z
          .discriminatedUnion('kind', [
            z.strictObject({ kind: z.literal('none') }),
            z.strictObject({
              kind: z.literal('application-restricted'),
              tokenUrl: httpUrl,
              apiKey: z.string().min(1),
              privateKeyPath: z.string().min(1),
              kid: z.string().min(1),
              tokenLifetimeSeconds: z.number().int().min(30).max(300).default(300),
            }),
          ])
          .default({ kind: 'none' }),
        endUserOrganisationOds: z.string().optional(),
      })
      .optional(),
    cache: z
      .strictObject({
        maxEntries: z.number().int().positive().default(100_000),
        positiveTtlSeconds: z.number().int().min(0).default(300),
        negativeTtlSeconds: z.number().int().min(0).default(30),
      })
      .prefault({}),
    /** What each PDS outcome gets, per operation kind (§6.2, §9.18). */
    policy: z
      .strictObject({
        notFound: z.enum(['PATIENT_NOT_FOUND', 'INVALID_NHS_NUMBER']).default('PATIENT_NOT_FOUND'),
        superseded: pdsOutcomeAction.default('reject'),
        invalidated: pdsOutcomeAction.default('reject'),
        restrictedOnPublish: pdsOutcomeAction.default('reject'),
        restrictedOnSubscribe: pdsOutcomeAction.default('allow'),
        /** Routing demographics (name, birthDateTime) of a publish that differ from the PDS record (§6.1, §2.10.4). */
        demographicsMismatch: pdsOutcomeAction.default('reject'),
        /** Which parts are compared; a part the PDS record lacks is never compared. */
        demographicsFields: z
          .array(z.enum(['family', 'given', 'birthDate']))
          .min(1)
          .default(['family', 'given', 'birthDate'])
          .refine((fields) => new Set(fields).size === fields.length, 'must not repeat a field'),
        /** HTTP status when PDS cannot answer (unreachable, slow, garbage). Fail closed. */
        unavailableStatus: z.union([z.literal(503), z.literal(502), z.literal(504)]).default(503),
      })
      .prefault({}),
  })
  .prefault({})
  .check((ctx) => {
    if (ctx.value.kind === 'fhir' && !ctx.value.fhir) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['fhir'], message: 'is required when kind is fhir' });
    }
  });

const lifecycleState = z.enum(['active', 'deprecated', 'no-longer-supported', 'withdrawn']);

const coreSchema = z
  .strictObject({
    dataDir: z.string().min(1).default('../data'),
    /** Base URL used in Location headers; default: the gateway's own https://localhost:<server.port><pathPrefix>. */
    baseUrl: httpUrl.optional(),
    /** Event-type lifecycle table (§2.6): code -> state and an optional info text for warnings. */
    lifecycle: z
      .record(z.string(), z.strictObject({ state: lifecycleState, since: z.string().optional(), info: z.string().optional() }))
      .default({}),
  })
  .prefault({});

const rateLimitRule = z.strictObject({
  /** Sustained requests per second. */
  ratePerSecond: z.number().positive(),
  /** Bucket size (burst). */
  burst: z.number().int().positive(),
});

const rateLimitSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    default: rateLimitRule.default({ ratePerSecond: 50, burst: 100 }),
    /** Per ASID, optionally per operation: { "200000000101": { default: {...}, publish: {...} } } */
    perAsid: z.record(z.string(), z.partialRecord(z.enum(['default', 'create', 'read', 'delete', 'publish']), rateLimitRule)).default({}),
  })
  .prefault({});

export const configSchema = z.strictObject({
  server: serverSchema,
  admin: adminSchema,
  nems: nemsSchema,
  registry: z.strictObject({ kind: z.literal('file').default('file'), path: z.string().min(1) }),
  upstream: upstreamSchema,
  pds: pdsSchema,
  core: coreSchema,
  rateLimits: rateLimitSchema,
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** stdout is written in batches of up to this many bytes (0: every line at once); see stdoutDestination. */
      bufferBytes: z.number().int().min(0).max(16_000).default(4096),
      /** Buffered lines are written at least this often, and on exit. */
      flushIntervalMs: z.number().int().min(10).max(60_000).default(1000),
    })
    .prefault({}),
  lifecycle: z
    .strictObject({
      drainDeadlineMs: positiveMs.default(10_000),
      /** On SIGTERM, /readyz fails this long before the listener closes (time for load balancers to notice). */
      readinessGraceMs: z.number().int().min(0).max(120_000).default(0),
      /** Watch certificate, CRL, registry and PDS files and reload on change (SIGHUP always reloads). */
      watchFiles: z.boolean().default(true),
      /** Worker processes: 1 for a single process, 0 for one per CPU core. */
      workers: z.number().int().min(0).max(64).default(1),
    })
    .prefault({}),
  runtime: z
    .strictObject({
      /**
       * V8's old-generation growth between full collections, in percent over the live size (V8 flag
       * --heap-growing-percent). V8 picks up to 300 on a machine with this much memory, so a request-heavy process
       * piles up ~35 MB of dead objects before it collects; 50 keeps that to a few MB at no measurable CPU cost.
       * 0 leaves V8's own choice. Applies to the whole process (every worker sets its own).
       */
      heapGrowingPercent: z.number().int().min(0).max(400).default(50),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type RateLimitRule = z.infer<typeof rateLimitRule>;
export type JwtConfig = Config['nems']['jwt'];
export type PdsConfig = Config['pds'];
export type UpstreamConfig = Config['upstream'];
export type LifecycleState = z.infer<typeof lifecycleState>;
