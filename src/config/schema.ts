// The gateway configuration schema: one typed, validated Config. Paths in the file are relative to the
// config file's folder and are resolved by the loader (load.ts), never here.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const asid = z.string().regex(/^\d{12}$/, 'must be a 12-digit ASID');
const positiveMs = z.number().int().positive();
/** Every URL the gateway dials or advertises is HTTP(S); `ftp:` or `file:` would only fail later and obscurely. */
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

/**
 * The edge's default TLS 1.2 cipher list (issue 13 D13): ECDHE key exchange (forward secrecy) with AEAD ciphers
 * only; TLS 1.3 keeps OpenSSL's suites, which are all AEAD with forward secrecy. No CBC, no static RSA.
 */
export const EDGE_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

const crlDistributionPoints = z
  .strictObject({
    urls: z.array(httpUrl).max(32).default([])
      .describe('CRL distribution points to fetch (HTTP(S), each serving one DER or PEM CRL of a configured CA); empty = off. Use them instead of, or besides, server.tls.crl.'),
    cacheDir: z.string().min(1).default('../data/crl-cache')
      .describe('Folder keeping the last good copy of each fetched CRL, so a restart while a distribution point is down still has it.'),
    refreshIntervalSeconds: z.number().int().min(1).max(86_400).default(3600)
      .describe('Longest time between two fetches of one distribution point, in seconds; lower it to pick up revocations sooner.'),
    refreshMarginSeconds: z.number().int().min(0).max(604_800).default(3600)
      .describe('Fetch again at least this many seconds before the CRL in force reaches its nextUpdate.'),
    retrySeconds: z.number().int().min(1).max(3600).default(60)
      .describe('Wait after a failed or refused fetch before trying again, in seconds.'),
    timeoutMs: positiveMs.max(60_000).default(5000)
      .describe('Time allowed for one fetch (connect, headers and body), in milliseconds.'),
    maxBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(16 * 1024 * 1024)
      .describe('Largest CRL accepted from a distribution point, in bytes (a big CA\'s full CRL runs to megabytes).'),
  })
  .prefault({});

const ocspSchema = z
  .strictObject({
    enabled: z.boolean().default(false)
      .describe('Also ask an OCSP responder (RFC 6960) about each client certificate, per connection, with a cache.'),
    policy: z.enum(['hard-fail', 'soft-fail']).default('hard-fail')
      .describe('When the responder cannot answer: hard-fail answers 503 SERVICE_UNAVAILABLE; soft-fail lets the request on (counted). A revoked answer is always 403.'),
    responderUrl: httpUrl.optional()
      .describe('Responder to ask for every client certificate; default: the certificate\'s own Authority Information Access OCSP URL.'),
    timeoutMs: positiveMs.max(30_000).default(3000)
      .describe('Time allowed for one OCSP exchange, in milliseconds.'),
    maxCacheSeconds: z.number().int().min(0).max(86_400).default(3600)
      .describe('Longest a good or revoked answer is reused, in seconds (never past the answer\'s own nextUpdate).'),
    failureCacheSeconds: z.number().int().min(0).max(3600).default(10)
      .describe('How long a failed exchange is remembered before the responder is asked again, in seconds.'),
    maxEntries: z.number().int().min(1).max(1_000_000).default(10_000)
      .describe('Most certificates whose OCSP answer is cached.'),
  })
  .prefault({});

const tlsFiles = z
  .strictObject({
    cert: z.string().min(1),
    key: z.string().min(1),
    /** CA bundle that client certificates must chain to. */
    ca: z.string().min(1),
    crl: z.string().min(1).optional()
      .describe('PEM (or DER) CRL file with a current CRL of every CA in server.tls.ca; required unless revocation is none or distribution points supply them.'),
    revocation: z.enum(['crl', 'none']).default('crl')
      .describe('crl: client certificates are checked against current CRLs, and start-up/reload refuse missing, unreadable, foreign or expired ones; none turns revocation off explicitly.'),
    crlGraceSeconds: z.number().int().min(0).max(86_400).default(0)
      .describe('Seconds past a CRL\'s nextUpdate it is still loaded and reported ready; OpenSSL itself refuses that CA\'s clients from nextUpdate on, so keep it 0 unless clocks differ.'),
    crlDistributionPoints,
    ocsp: ocspSchema,
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    ciphers: z.string().min(1).default(EDGE_TLS12_CIPHERS)
      .describe('OpenSSL TLS 1.2 cipher list (TLS 1.3 suites are OpenSSL\'s); the default allows only ECDHE with AEAD ciphers.'),
    clientKeyMinimum: z
      .strictObject({
        rsaBits: z.number().int().min(1024).max(16_384).default(2048).describe('Smallest RSA client key accepted, in bits.'),
        ecBits: z.number().int().min(224).max(521).default(256).describe('Smallest elliptic-curve client key accepted, in bits (256 = P-256).'),
      })
      .prefault({})
      .describe('Client certificate keys below these sizes get 403 ACCESS_DENIED (Ed25519/Ed448 always pass; DSA never).'),
  })
  .check((ctx) => {
    const tls = ctx.value;
    if (tls.revocation === 'none' && (tls.crl || tls.crlDistributionPoints.urls.length || tls.ocsp.enabled)) {
      ctx.issues.push({ code: 'custom', input: tls, path: ['revocation'], message: 'is none, yet crl, crlDistributionPoints or ocsp is configured' });
    }
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
    /** XML engine: fast-xml-parser after a pre-scan (default), or the ~8x cheaper single-pass parser (same trees). */
    xmlParser: z.enum(['fast-xml-parser', 'single-pass']).default('fast-xml-parser'),
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

/** NHS API platform application-restricted auth: a signed JWT client assertion exchanged for a bearer token (PDS, SDS). */
const applicationRestrictedAuth = z.strictObject({
  kind: z.literal('application-restricted'),
  tokenUrl: httpUrl,
  apiKey: z.string().min(1),
  privateKeyPath: z.string().min(1),
  kid: z.string().min(1),
  tokenLifetimeSeconds: z.number().int().min(30).max(300).default(300),
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
            applicationRestrictedAuth,
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

const meshDeliverySchema = z.strictObject({
  url: httpUrl.describe('MESH API base URL (the part before /messageexchange), e.g. https://msg.intspineservices.nhs.uk'),
  mailboxId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be a MESH mailbox id').describe('The core\'s own MESH mailbox, which sends every event'),
  passwordFile: z.string().min(1).describe('File holding the sending mailbox\'s password (never inline in the YAML)'),
  sharedKeyFile: z.string().min(1).describe('File holding the MESH environment shared key used in the NHSMESH HMAC-SHA256 Authorization header'),
  tls: z
    .strictObject({
      ca: z.string().min(1).optional().describe('CA bundle the MESH server certificate must chain to (default: Node\'s roots)'),
      cert: z.string().min(1).optional().describe('Client certificate presented to MESH (mTLS)'),
      key: z.string().min(1).optional().describe('Private key of the client certificate'),
      servername: z.string().min(1).optional().describe('TLS server name to verify when it differs from the URL host'),
    })
    .optional()
    .describe('mTLS to the MESH API; required by the real MESH, optional for a local double over http'),
  maxChunkBytes: z.number().int().min(1024).max(100 * 1024 * 1024).default(20 * 1024 * 1024)
    .describe('Messages larger than this are sent in chunks of this many bytes (MESH allows up to 100 MB per chunk)'),
  timeoutMs: positiveMs.default(30_000).describe('Deadline (ms) for one MESH request'),
  maxAttempts: z.number().int().min(1).max(1000).default(20).describe('Send attempts per message before it is parked as failed (visible in metrics and logs)'),
  initialBackoffMs: positiveMs.default(1_000).describe('Wait before the first retry (ms); doubled after each failure, with jitter'),
  maxBackoffMs: positiveMs.default(300_000).describe('Longest wait between retries (ms)'),
  pollIntervalMs: positiveMs.default(5_000).describe('How often the sender looks for messages whose retry time has come (new messages are sent at once)'),
});

const coreSchema = z
  .strictObject({
    dataDir: z.string().min(1).default('../data'),
    /** Base URL used in Location headers; default: the gateway's own https://localhost:<server.port><pathPrefix>. */
    baseUrl: httpUrl.optional(),
    /** Event-type lifecycle table (§2.6): code -> state and an optional info text for warnings. */
    lifecycle: z
      .record(z.string(), z.strictObject({ state: lifecycleState, since: z.string().optional(), info: z.string().optional() }))
      .default({}),
    delivery: z.enum(['folder', 'mesh']).default('folder')
      .describe('Where matched events go: `folder` writes MESH-style files under dataDir/mesh; `mesh` sends them through the MESH API (core.mesh)'),
    mesh: meshDeliverySchema.optional().describe('The MESH API the core sends events through (delivery mesh) and `nems-gateway mailbox --mesh` reads'),
  })
  .prefault({})
  .check((ctx) => {
    if (ctx.value.delivery === 'mesh' && !ctx.value.mesh) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['mesh'], message: 'is required when delivery is mesh' });
    }
  });

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

const sdsRegistrySchema = z.strictObject({
  baseUrl: httpUrl.describe('SDS FHIR R4 API base URL, e.g. https://int.api.service.nhs.uk/spine-directory/FHIR/R4'),
  auth: z
    .discriminatedUnion('kind', [
      z.strictObject({
        kind: z.literal('api-key'),
        apiKeyFile: z.string().min(1).describe('File holding the NHS API platform API key sent as the `apikey` header (the SDS FHIR API security pattern); never put the key in the YAML'),
      }),
      applicationRestrictedAuth,
    ])
    .describe('How the gateway authenticates to SDS: `api-key` (SDS FHIR API pattern) or `application-restricted` (signed JWT, as for PDS)'),
  interactions: z.array(z.string().min(1)).min(1).optional()
    .describe('NEMS InteractionIDs to look up per ODS code (one /Device and one /Endpoint search each); default every NEMS InteractionID'),
  refreshIntervalMs: positiveMs.default(300_000).describe('How often the registry is rebuilt from SDS, in ms; shorter notices SDS changes sooner at the cost of more SDS calls'),
  retryIntervalMs: positiveMs.default(30_000).describe('After a failed refresh, the next attempt comes this soon (ms), never later than refreshIntervalMs'),
  maxStaleMs: positiveMs.default(3_600_000).describe('Age (ms) past which the last good copy is no longer used: the gateway denies every client and /readyz fails until SDS answers again'),
  timeoutMs: positiveMs.default(10_000).describe('Deadline (ms) for one SDS search, every page and the token included; a timeout fails the whole refresh'),
  maxPages: z.number().int().min(1).max(100).default(20).describe('Most Bundle pages followed for one search; more is treated as a failed refresh, never as a partial answer'),
  maxBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024).describe('Cap on one SDS response body, in bytes; a larger answer fails the refresh'),
  concurrency: z.number().int().min(1).max(16).default(4).describe('SDS searches in flight at once during a refresh'),
});

const registrySchema = z
  .strictObject({
    kind: z.enum(['file', 'sds']).default('file').describe('file: endpoints read from the YAML registry at `path`; sds: endpoints, ASIDs, ODS codes and interactions read from the SDS FHIR API, with the NEMS-only parts from the overlay at `path`'),
    path: z.string().min(1).describe('kind file: the endpoint registry YAML; kind sds: the overlay YAML (ODS codes to read, mailboxes, workflow ids, category bag, pins)'),
    sds: sdsRegistrySchema.optional().describe('The SDS FHIR API the registry is read from (kind sds)'),
  })
  .check((ctx) => {
    if (ctx.value.kind === 'sds' && !ctx.value.sds) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['sds'], message: 'is required when kind is sds' });
    }
  });

export const configSchema = z.strictObject({
  server: serverSchema,
  admin: adminSchema,
  nems: nemsSchema,
  registry: registrySchema,
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
export type SdsRegistryConfig = z.infer<typeof sdsRegistrySchema>;
export type MeshDeliveryConfig = z.infer<typeof meshDeliverySchema>;
