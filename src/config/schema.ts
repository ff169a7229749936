// The gateway configuration schema: one typed, validated Config. Paths in the file are relative to the
// config file's folder and are resolved by the loader (load.ts), never here.
// Every key is documented here, once, with `.describe()`: docs/configuration.md is generated from these
// descriptions (`npm run docs:config`; src/config/reference.ts) and a test fails when it is stale or a key has none.
import { z } from 'zod';
import { ASID_PATTERN } from '../nems/identifiers.js';
import { NEMS_OPERATIONS } from '../nems/operations.js';
import { CONFORMANCE_RULE_IDS, PROFILES, RULE_ACTIONS } from '../rules/catalogue.js';

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const asid = z.string().regex(ASID_PATTERN, 'must be a 12-digit ASID');
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
    cert: z.string().min(1).describe('The gateway\'s server certificate (PEM), with any intermediates after it.'),
    key: z.string().min(1).describe('The private key of the server certificate (PEM).'),
    ca: z.string().min(1).describe('CA bundle (PEM) that client certificates must chain to: only clients it issued can connect.'),
    crl: z.string().min(1).optional()
      .describe('PEM (or DER) CRL file with a current CRL of every CA in server.tls.ca; required unless revocation is none or distribution points supply them.'),
    revocation: z.enum(['crl', 'none']).default('crl')
      .describe('crl: client certificates are checked against current CRLs, and start-up/reload refuse missing, unreadable, foreign or expired ones; none turns revocation off explicitly.'),
    crlGraceSeconds: z.number().int().min(0).max(86_400).default(0)
      .describe('Seconds past a CRL\'s nextUpdate it is still loaded and reported ready; OpenSSL itself refuses that CA\'s clients from nextUpdate on, so keep it 0 unless clocks differ.'),
    crlDistributionPoints: crlDistributionPoints.describe('Fetching CRLs from their CA\'s distribution points over HTTP, kept current on a schedule.'),
    ocsp: ocspSchema.describe('OCSP checking of client certificates (RFC 6960), with a cache.'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted from clients; TLSv1.3 when every client supports it.'),
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
  host: host.default('127.0.0.1').describe('Address the mTLS listener binds (0.0.0.0 or :: for every interface).'),
  port: port.default(8443).describe('Port of the mTLS listener that NEMS clients connect to (0: any free port).'),
  tls: tlsFiles.describe('Server certificate, and the CA and CRL that client certificates are verified against (by OpenSSL).'),
  limits: z
    .strictObject({
      maxHeaderBytes: z.number().int().min(1024).max(1_048_576).default(16_384).describe('Largest request head (request line and headers) in bytes; larger is refused with 413.'),
      maxBodyBytes: z.number().int().positive().default(1_048_576).describe('Body cap in bytes for requests other than create and publish (which have nems.subscriptionMaxBytes and nems.publishMaxBytes).'),
      headersTimeoutMs: positiveMs.default(10_000).describe('Milliseconds a client has to send the whole request head; slow clients get 408.'),
      requestTimeoutMs: positiveMs.default(30_000).describe('Milliseconds a client has to send the whole request, body included.'),
      keepAliveTimeoutMs: positiveMs.default(5_000).describe('Milliseconds an idle keep-alive connection is kept open.'),
      handshakeTimeoutMs: positiveMs.default(10_000).describe('Milliseconds a TLS handshake may take before the socket is destroyed.'),
      maxConnections: z.number().int().positive().default(10_000).describe('Most concurrent client connections per process; more are closed at accept.'),
    })
    .prefault({})
    .describe('Size and time limits on client connections and requests.'),
});

const adminSchema = z
  .strictObject({
    host: host.default('127.0.0.1').describe('Address of the plain-HTTP admin listener; keep it off the client network.'),
    port: port.default(9464).describe('Port of the admin listener (/metrics, /healthz, /readyz); must differ from server.port.'),
    enabled: z.boolean().default(true).describe('Serve the admin listener at all.'),
  })
  .prefault({});

const jwtSchema = z
  .strictObject({
    unsignedOperations: z
      .array(z.enum(NEMS_OPERATIONS))
      .default([...NEMS_OPERATIONS])
      .describe('Operations that take Spine\'s unsigned (alg none, empty signature) tokens; Spine Core today: all of them. Remove one once its clients sign.'),
    signed: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Accept signed tokens, verified against keys or jwksUrl (never HS*, never a fallback to unsigned).'),
        keys: z
          .array(
            z.strictObject({
              path: z.string().min(1).describe('PEM public key (SPKI) or certificate.'),
              alg: z.string().min(1).describe('The JWS algorithm this key verifies, e.g. RS256.'),
              kid: z.string().optional().describe('Key id; when set, only tokens naming this kid use the key.'),
            }),
          )
          .default([])
          .describe('Local verification keys, each with the algorithm it is for.'),
        jwksUrl: httpUrl.optional().describe('JWKS endpoint to fetch verification keys from; unreachable answers 503.'),
        issuers: z.array(z.string()).default([]).describe('When set, a signed token\'s iss must be one of these.'),
        algorithms: z.array(z.string()).default(['RS256', 'RS512', 'ES256', 'PS256']).describe('JWS algorithms accepted on signed tokens.'),
      })
      .prefault({})
      .describe('Signed Spine tokens (off: Spine Core uses unsigned ones).'),
    clockSkewSeconds: z.number().int().min(0).max(3600).default(60).describe('Seconds of clock difference allowed when checking exp and iat.'),
    maxLifetimeSeconds: z.number().int().positive().max(86_400).default(300).describe('Largest exp − iat in seconds (Spine Core: 5 minutes).'),
    maxTokenBytes: z.number().int().min(256).max(65_536).default(8192).describe('Largest token in bytes, checked before any decoding.'),
    decodedTokenCacheSize: z
      .number()
      .int()
      .min(0)
      .max(100_000)
      .default(1000)
      .describe('Unsigned tokens kept decoded, by exact token, until they expire (as Envoy\'s jwt_authn cache); time and claim checks still run per request. 0 turns the cache off.'),
    organisationClaim: z
      .enum(['either', 'requesting_organisation', 'requesting_organization'])
      .default('either')
      .describe('Which spelling of the organisation claim is accepted (docs/specification.md §9.4).'),
    requireReasonForRequest: z.boolean().default(true).describe('Refuse tokens without reason_for_request.'),
    allowedReasonsForRequest: z.array(z.string().min(1)).default(['directcare']).describe('Accepted reason_for_request values.'),
    audiences: z.array(z.string()).default([]).describe('When set, aud must be one of these; when empty, aud need only be present.'),
  })
  .prefault({});

const nemsSchema = z
  .strictObject({
    toAsid: asid.default('200000000306').describe('The NEMS ASID every request\'s toASID must name (rule headers.to-asid). The default is the INT one; set it per environment.'),
    toAsids: z.array(asid).max(32).default([])
      .describe('Further NEMS ASIDs toASID may name besides toAsid (e.g. the ASID another environment\'s clients are built with); empty: toAsid alone.'),
    pathPrefix: z
      .string()
      .regex(/^(\/[A-Za-z0-9._-]+)*$/, 'must be empty or like /STU3')
      .default('/STU3')
      .describe('Path prefix of every NEMS route, as on Spine.'),
    publishMaxBytes: z.number().int().positive().default(3 * 1024 * 1024).describe('Largest publish body in bytes (NEMS: 3 MB).'),
    subscriptionMaxBytes: z.number().int().positive().default(256 * 1024).describe('Largest subscription-create body in bytes.'),
    acceptLegacyPublishInteractionIds: z
      .boolean()
      .default(false)
      .describe('Also accept the pre-2020 publish InteractionID forms (…:events:vaccinations-1.Write, .write:1) for clients not yet moved.'),
    xmlParser: z
      .enum(['fast-xml-parser', 'single-pass'])
      .default('single-pass')
      .describe('XML engine: single-pass (one parser on the hostile path), or fast-xml-parser after the safety pre-scan (~8× the CPU; same trees and refusals, shown by the differential fuzz; the test oracle).'),
    canonicaliseMime: z.boolean().default(false).describe('Forward accepted MIME types in their canonical spelling rather than as the client sent them.'),
    rejectRepeatedDigitNhsNumbers: z.boolean().default(true).describe('Refuse NHS numbers of one repeated digit (they pass modulus 11 but are never issued).'),
    jwt: jwtSchema.describe('The Spine JWT in Authorization: Bearer.'),
  })
  .prefault({});

const upstreamTls = z.strictObject({
  ca: z.string().min(1).optional().describe('CA bundle (PEM) the upstream\'s certificate must chain to; Node\'s default CAs when absent.'),
  cert: z.string().min(1).optional().describe('Client certificate (PEM) the gateway presents upstream, unless the ASID has its own in the registry.'),
  key: z.string().min(1).optional().describe('Private key (PEM) of that client certificate.'),
  servername: z.string().min(1).optional().describe('TLS server name to send and verify, when upstream.url names an address rather than the certificate\'s host.'),
});

const upstreamSchema = z
  .strictObject({
    kind: z
      .enum(['embedded', 'http', 'echo'])
      .default('embedded')
      .describe('embedded: the in-process reference NEMS core; http: a remote NEMS (Spine, or nems-gateway core); echo: a loopback echo server.'),
    url: httpUrl.optional().describe('Base URL of the remote NEMS; required when kind is http.'),
    engine: z.enum(['http-proxy', 'undici']).default('undici').describe('Forwarding engine for kind http: undici (faster) or http-proxy.'),
    connectTimeoutMs: positiveMs.default(5_000).describe('Milliseconds to connect to the upstream; past it the client gets 502.'),
    timeoutMs: positiveMs.default(30_000).describe('Milliseconds the upstream has to answer; past it the client gets 504.'),
    maxSockets: z.number().int().positive().default(64).describe('Most connections kept to the upstream per client certificate.'),
    tls: upstreamTls.optional().describe('TLS to the upstream (mTLS to Spine).'),
  })
  .prefault({})
  .check((ctx) => {
    if (ctx.value.kind === 'http' && !ctx.value.url) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['url'], message: 'is required when kind is http' });
    }
  });

/** NHS API platform application-restricted auth: a signed JWT client assertion exchanged for a bearer token (PDS, SDS). */
const applicationRestrictedAuth = z.strictObject({
  kind: z.literal('application-restricted').describe('NHS API platform application-restricted access (signed client assertion).'),
  tokenUrl: httpUrl.describe('The platform\'s OAuth token endpoint.'),
  apiKey: z.string().min(1).describe('The application\'s API key (client id).'),
  privateKeyPath: z.string().min(1).describe('RS512 private key (PEM) that signs the client assertion.'),
  kid: z.string().min(1).describe('Key id of that key as registered with the platform.'),
  tokenLifetimeSeconds: z
    .number()
    .int()
    .min(30)
    .max(300)
    .default(300)
    .describe('Lifetime of the client assertion in seconds (platform maximum 300); lower it when clocks drift.'),
});

const pdsOutcomeAction = z.enum(['allow', 'reject']);

const pdsSchema = z
  .strictObject({
    kind: z.enum(['local', 'fhir']).default('local').describe('Where NHS numbers are traced: local (a YAML file of traced numbers) or fhir (the PDS FHIR R4 API).'),
    local: z
      .strictObject({ path: z.string().min(1).describe('The local PDS data file (format documented in config/pds-local.yaml); hot-reloaded.') })
      .default({ path: 'pds-local.yaml' })
      .describe('Local PDS data, for kind local.'),
    fhir: z
      .strictObject({
        baseUrl: httpUrl.describe('PDS FHIR API base URL; the gateway calls GET {baseUrl}/Patient/{nhsNumber}.'),
        timeoutMs: positiveMs.default(3_000).describe('Milliseconds a PDS call may take; past it the request gets 503.'),
        auth: z
          .discriminatedUnion('kind', [
            z.strictObject({ kind: z.literal('none').describe('No authentication (the PDS sandbox).') }),
            applicationRestrictedAuth,
          ])
          .default({ kind: 'none' })
          .describe('How the gateway authenticates to PDS.'),
        endUserOrganisationOds: z.string().optional().describe('ODS code sent as NHSD-End-User-Organisation-ODS, when the platform asks for one.'),
      })
      .optional()
      .describe('The PDS FHIR API, for kind fhir.'),
    cache: z
      .strictObject({
        maxEntries: z.number().int().positive().default(100_000).describe('Most PDS outcomes kept (least recently used go first).'),
        positiveTtlSeconds: z.number().int().min(0).default(300).describe('Seconds a traced (or restricted) outcome is reused; 0 traces on every call.'),
        negativeTtlSeconds: z.number().int().min(0).default(30).describe('Seconds a not-found, superseded or invalidated outcome is reused; 0 keeps none.'),
      })
      .prefault({})
      .describe('Cache in front of PDS (PDS allows about 5 calls a second per application); unavailable answers are never cached.'),
    policy: z
      .strictObject({
        notFound: z.enum(['PATIENT_NOT_FOUND', 'INVALID_NHS_NUMBER']).default('PATIENT_NOT_FOUND').describe('The Spine code for an NHS number PDS does not hold.'),
        superseded: pdsOutcomeAction.default('reject').describe('An NHS number PDS has replaced with another: reject (400 INVALID_NHS_NUMBER) or allow.'),
        invalidated: pdsOutcomeAction.default('reject').describe('An NHS number whose record PDS invalidated: reject (400 INVALID_NHS_NUMBER) or allow.'),
        restrictedOnPublish: pdsOutcomeAction.default('reject').describe('Publishing an event for a restricted (S-flag) patient: reject (403 NO_PATIENT_CONSENT) or allow.'),
        restrictedOnSubscribe: pdsOutcomeAction.default('allow').describe('Subscribing to a restricted (S-flag) patient: allow or reject (403 NO_PATIENT_CONSENT).'),
        demographicsMismatch: pdsOutcomeAction
          .default('reject')
          .describe('A publish whose routing demographics (name, birthDateTime) differ from the PDS record: reject (400 INVALID_PATIENT_DEMOGRAPHICS) or allow.'),
        demographicsFields: z
          .array(z.enum(['family', 'given', 'birthDate']))
          .min(1)
          .default(['family', 'given', 'birthDate'])
          .refine((fields) => new Set(fields).size === fields.length, 'must not repeat a field')
          .describe('Which routing-demographics parts are compared with the PDS record; a part the record lacks is never compared.'),
      })
      .prefault({})
      .describe('What each PDS outcome gets, per operation (docs/specification.md §6).'),
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
    dataDir: z.string().min(1).default('../data').describe('Folder of the embedded core\'s SQLite store and MESH-style outbox.'),
    baseUrl: httpUrl.optional().describe('Base URL in Location headers; default the gateway\'s own https://localhost:<server.port><nems.pathPrefix>.'),
    lifecycle: z
      .record(
        z.string(),
        z.strictObject({
          state: lifecycleState.describe('active, deprecated (warned), no-longer-supported (no new subscriptions) or withdrawn (refused).'),
          since: z.string().optional().describe('Date the state began, quoted in the warning or error.'),
          info: z.string().optional().describe('Text added to the warning or error, e.g. what to use instead.'),
        }),
      )
      .default({})
      .describe('Event-type lifecycle table, by event code (e.g. vaccinations-1); codes absent are active.'),
    delivery: z.enum(['folder', 'mesh']).default('folder')
      .describe('Where matched events go: `folder` writes MESH-style files under dataDir/mesh; `mesh` sends them through the MESH API (core.mesh)'),
    mesh: meshDeliverySchema.optional().describe('The MESH API the core sends events through (delivery mesh) and `nems-gateway mailbox --mesh` reads'),
    deliveryLeaseMs: z.number().int().min(1000).max(3_600_000).default(60_000)
      .describe('Milliseconds a process holds its claim on delivering an accepted event; after a crash another process (or the restart) takes the delivery over once it expires. Longer than the slowest delivery.'),
    deliverySweepMs: z.number().int().min(100).max(600_000).default(5_000)
      .describe('Milliseconds between the delivery loop\'s own looks for events whose claim expired (a crashed process) or that another process sharing core.dataDir accepted; lower delivers those sooner.'),
  })
  .prefault({})
  .check((ctx) => {
    if (ctx.value.delivery === 'mesh' && !ctx.value.mesh) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['mesh'], message: 'is required when delivery is mesh' });
    }
  });

const rateLimitRule = z.strictObject({
  ratePerSecond: z.number().positive().describe('Sustained requests per second.'),
  burst: z.number().int().positive().describe('Bucket size: requests allowed at once after a quiet spell.'),
});

const redisStoreSchema = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
    .describe('Redis holding the shared buckets, redis://host:6379/0 or rediss:// for TLS; put no password here, use passwordFile.'),
  passwordFile: z.string().min(1).optional().describe('File holding the Redis AUTH password (e.g. a mounted Kubernetes Secret); read at start-up.'),
  username: z.string().min(1).optional().describe('Redis ACL user name (Redis 6+); the password comes from passwordFile.'),
  ca: z.string().min(1).optional().describe('PEM CA bundle trusted for rediss:// (default: the system CAs).'),
  keyPrefix: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 : _ . -')
    .default('nems-gateway:rl:')
    .describe('Prefix of every bucket key; gateways sharing one budget must use the same prefix, separate deployments different ones.'),
  commandTimeoutMs: z
    .number().int().min(5).max(5000).default(100)
    .describe('Longest one rate-limit call to Redis may take (ms) before the request is decided by onStoreError; it adds to every request while Redis is slow.'),
  connectTimeoutMs: positiveMs.max(60_000).default(2000).describe('Longest a (re)connection to Redis may take (ms).'),
  retryIntervalMs: positiveMs.max(60_000).default(1000).describe('Pause between reconnection attempts while Redis is away (ms); decisions fall back meanwhile.'),
});

const rateLimitSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Turn rate limiting on (429 TOO_MANY_REQUESTS when a bucket is empty).'),
    default: rateLimitRule.default({ ratePerSecond: 50, burst: 100 }).describe('The bucket of every ASID and operation not named in perAsid.'),
    perAsid: z
      .record(z.string(), z.partialRecord(z.enum(['default', ...NEMS_OPERATIONS]), rateLimitRule))
      .default({})
      .describe('Buckets per ASID, optionally per operation, e.g. { "200000000101": { default: {…}, publish: {…} } }.'),
    store: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe('Where the buckets live: memory (each process and replica its own budget) or redis (one budget shared by every worker and replica).'),
    onStoreError: z
      .enum(['local', 'allow', 'deny'])
      .default('local')
      .describe("When Redis does not answer in time: local (this process's own buckets, same rules), allow (pass unlimited) or deny (429)."),
    redis: redisStoreSchema.optional().describe('The shared store, required when store is redis.'),
  })
  .prefault({})
  .check((ctx) => {
    if (ctx.value.store === 'redis' && !ctx.value.redis) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['redis'], message: 'is required when store is redis' });
    }
  });

const sdsRegistrySchema = z.strictObject({
  baseUrl: httpUrl.describe('SDS FHIR R4 API base URL, e.g. https://int.api.service.nhs.uk/spine-directory/FHIR/R4'),
  auth: z
    .discriminatedUnion('kind', [
      z.strictObject({
        kind: z.literal('api-key').describe('An NHS API platform API key in the `apikey` header.'),
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

const ruleAction = z.enum(RULE_ACTIONS as ['enforce', 'report', 'off']);

const policySchema = z
  .strictObject({
    profile: z.enum(PROFILES).default('compatible')
      .describe('strict: the NEMS guide and Spine Core to the letter, every conformance rule enforced; compatible: the rules real NEMS clients break are reported, and the wider readings the sources allow are taken (README, rule catalogue).'),
    mode: z.enum(['enforce', 'report']).default('enforce')
      .describe('report: every conformance rule reports instead of enforcing (a request is forwarded unchanged and the rule ids are logged and counted); security rules still reject. Use it to measure before enforcing.'),
    rules: z.partialRecord(z.enum(CONFORMANCE_RULE_IDS), ruleAction).default({})
      .describe('Per conformance rule: enforce, report or off, over the profile and mode (e.g. { jwt.max-lifetime: enforce }). Security rules cannot be set.'),
  })
  .prefault({});

export const configSchema = z.strictObject({
  server: serverSchema.describe('The mTLS listener NEMS clients connect to.'),
  admin: adminSchema.describe('The admin listener: Prometheus metrics and health checks.'),
  nems: nemsSchema.describe('The NEMS rules the gateway enforces.'),
  policy: policySchema.describe('What each rule of the catalogue does: the profile, report mode and per-rule actions (README: rule catalogue and rollout).'),
  registry: registrySchema.describe('The endpoint registry that maps a client certificate to its Spine endpoint.'),
  upstream: upstreamSchema.describe('Where accepted requests are forwarded.'),
  pds: pdsSchema.describe('How NHS numbers are traced on PDS, and what each outcome gets.'),
  core: coreSchema.describe('The embedded reference NEMS core (upstream.kind embedded, and nems-gateway core).'),
  rateLimits: rateLimitSchema.describe('Token buckets per ASID and operation.'),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level; info writes one line per request.'),
      bufferBytes: z
        .number()
        .int()
        .min(0)
        .max(16_000)
        .default(4096)
        .describe('stdout is written in batches of up to this many bytes (0: every line at once, about 8 µs more CPU per request).'),
      flushIntervalMs: z.number().int().min(10).max(60_000).default(1000).describe('Milliseconds within which buffered lines are written (and always on exit).'),
    })
    .prefault({})
    .describe('The JSON request log on stdout.'),
  lifecycle: z
    .strictObject({
      drainDeadlineMs: positiveMs.default(10_000).describe('On SIGTERM, milliseconds in-flight requests have to finish before their sockets are closed.'),
      readinessGraceMs: z
        .number()
        .int()
        .min(0)
        .max(120_000)
        .default(5000)
        .describe('After SIGTERM, ms during which /readyz fails but the listener still serves, so Kubernetes and load balancers stop sending first; 0 on a laptop.'),
      watchFiles: z.boolean().default(true).describe('Reload certificates, CRL, registry and local PDS data when their files change (SIGHUP always reloads).'),
      workers: z.number().int().min(0).max(64).default(1).describe('Worker processes: 1 for a single process, 0 for one per CPU core.'),
    })
    .prefault({})
    .describe('Process lifecycle: reload, drain and workers.'),
  runtime: z
    .strictObject({
      heapGrowingPercent: z
        .number()
        .int()
        .min(0)
        .max(400)
        .default(50)
        .describe('V8 old-generation growth between full collections, in percent (--heap-growing-percent); 50 keeps peak RSS ~25 MB lower under load at no measurable CPU cost; 0 leaves V8\'s choice (up to 300).'),
    })
    .prefault({})
    .describe('Node.js runtime tuning, per process.'),
});

export type Config = z.infer<typeof configSchema>;
export type RateLimitRule = z.infer<typeof rateLimitRule>;
export type RedisStoreConfig = z.infer<typeof redisStoreSchema>;
export type JwtConfig = Config['nems']['jwt'];
export type PdsConfig = Config['pds'];
export type UpstreamConfig = Config['upstream'];
export type LifecycleState = z.infer<typeof lifecycleState>;
export type SdsRegistryConfig = z.infer<typeof sdsRegistrySchema>;
export type MeshDeliveryConfig = z.infer<typeof meshDeliverySchema>;
