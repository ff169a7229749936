// `nems-gateway jwt`: prints an unsigned Spine Core JWT (docs/specification.md §4.1–4.4) for local testing, the kind a
// NEMS client builds per request: header {"alg":"none","typ":"JWT"}, empty signature, trailing `.` kept.
import {
  ACCREDITED_SYSTEM,
  isAsid,
  isOdsCode,
  LEGACY_NHS_NUMBER_SYSTEM,
  ODS_ORGANIZATION_SYSTEM,
  SDS_ROLE_PROFILE_SYSTEM,
} from '../nems/identifiers.js';
import { readCommandArgs, STDIO, usageError, type CommandIo, type CommandSpec, type OptionSpecs } from './args.js';
/** Spine Core's example `aud` (the NEMS nhsMhsEndPoint host). */
export const DEFAULT_AUDIENCE = 'https://clinicals.spineservices.nhs.uk';
export const DEFAULT_LIFETIME_SECONDS = 300;
/** Self-issued tokens name the client system as issuer (docs/specification.md §4.1); this one says it is a test token. */
export const TEST_ISSUER = 'https://nems-gateway.test/jwt-command';

export type OrganisationClaimSpelling = 'requesting_organisation' | 'requesting_organization' | 'both';

export interface MintSpineJwtOptions {
  readonly asid: string;
  readonly ods: string;
  readonly scope: string;
  /** NHS number, or a full `system|number` identifier. */
  readonly patient?: string;
  /** SDS role profile id, or a full `system|id` identifier; becomes `sub` when present. */
  readonly user?: string;
  readonly lifetimeSeconds?: number;
  readonly audience?: string;
  readonly issuer?: string;
  readonly reasonForRequest?: string;
  /** Milliseconds since the epoch; defaults to Date.now(). */
  readonly now?: number;
  /** British spelling by default (NEMS pages, docs/specification.md §4.4). */
  readonly organisationClaim?: OrganisationClaimSpelling;
}

function base64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json), 'utf8').toString('base64url');
}

function identifier(system: string, value: string): string {
  return value.includes('|') ? value : `${system}|${value}`;
}

/** An unsigned Spine JWT whose claims satisfy every rule the gateway's jwt stage checks. */
export function mintSpineJwt(opts: MintSpineJwtOptions): string {
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const requestingSystem = identifier(ACCREDITED_SYSTEM, opts.asid);
  const requestingUser = opts.user !== undefined ? identifier(SDS_ROLE_PROFILE_SYSTEM, opts.user) : undefined;
  const organisation = identifier(ODS_ORGANIZATION_SYSTEM, opts.ods);
  const spelling = opts.organisationClaim ?? 'requesting_organisation';
  const payload: Record<string, string | number> = {
    iss: opts.issuer ?? TEST_ISSUER,
    sub: requestingUser ?? requestingSystem,
    aud: opts.audience ?? DEFAULT_AUDIENCE,
    exp: iat + (opts.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS),
    iat,
    reason_for_request: opts.reasonForRequest ?? 'directcare',
    scope: opts.scope,
    requesting_system: requestingSystem,
  };
  if (spelling !== 'requesting_organization') payload['requesting_organisation'] = organisation;
  if (spelling !== 'requesting_organisation') payload['requesting_organization'] = organisation;
  if (requestingUser !== undefined) payload['requesting_user'] = requestingUser;
  if (opts.patient !== undefined) payload['requesting_patient'] = identifier(LEGACY_NHS_NUMBER_SYSTEM, opts.patient);
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(payload)}.`;
}

export const JWT_USAGE = `usage: nems-gateway jwt --asid A --ods O --scope S [--patient N] [--user U] [--lifetime s] [--aud URL]
                        [--org-claim requesting_organisation|requesting_organization|both]

Prints an unsigned Spine JWT for local testing. Scopes: patient/Subscription.write (create, delete),
patient/Subscription.read (read), patient/Bundle.write (publish).

options:
  --asid A          the client's ASID (12 digits): requesting_system, and sub unless --user
  --ods O           the client's ODS code: requesting_organisation
  --scope S         the operation's scope
  --patient N       requesting_patient: an NHS number or a full system|value identifier
  --user U          requesting_user (and sub): an SDS role profile id or a full system|value identifier
  --lifetime s      seconds from iat to exp (default ${DEFAULT_LIFETIME_SECONDS})
  --aud URL         aud (default ${DEFAULT_AUDIENCE})
  --org-claim C     which organisation claim spelling to write (default requesting_organisation)
  -h, --help        print this help
`;

export const JWT_COMMAND = {
  name: 'jwt',
  usage: JWT_USAGE,
  options: {
    asid: { type: 'string' },
    ods: { type: 'string' },
    scope: { type: 'string' },
    patient: { type: 'string' },
    user: { type: 'string' },
    lifetime: { type: 'string' },
    aud: { type: 'string' },
    'org-claim': { type: 'string' },
  },
} as const satisfies CommandSpec<OptionSpecs>;

const ORG_CLAIMS: readonly OrganisationClaimSpelling[] = ['requesting_organisation', 'requesting_organization', 'both'];

/** Runs `nems-gateway jwt`; returns the exit code (0 printed, 2 usage error). */
export function runJwtCommand(argv: readonly string[], io: CommandIo = STDIO): number {
  const args = readCommandArgs(JWT_COMMAND, argv, io);
  if (typeof args === 'number') return args;
  const usage = (problem: string) => usageError(JWT_COMMAND, problem, io);
  const { asid, ods, scope, patient, user, aud, lifetime, 'org-claim': orgClaim } = args.values;
  if (!asid || !ods || !scope) return usage('--asid, --ods and --scope are required');
  if (!isAsid(asid)) return usage('--asid must be a 12-digit ASID');
  if (!isOdsCode(ods)) return usage('--ods must be an ODS code (1 to 9 letters or digits)');
  const lifetimeSeconds = lifetime === undefined ? undefined : Number(lifetime);
  if (lifetimeSeconds !== undefined && (!Number.isSafeInteger(lifetimeSeconds) || lifetimeSeconds <= 0)) {
    return usage('--lifetime must be a positive whole number of seconds');
  }
  if (aud !== undefined && !URL.canParse(aud)) return usage('--aud must be a URL');
  if (orgClaim !== undefined && !ORG_CLAIMS.includes(orgClaim as OrganisationClaimSpelling)) {
    return usage('--org-claim must be requesting_organisation, requesting_organization or both');
  }

  io.out(
    `${mintSpineJwt({
      asid,
      ods,
      scope,
      ...(patient !== undefined ? { patient } : {}),
      ...(user !== undefined ? { user } : {}),
      ...(lifetimeSeconds !== undefined ? { lifetimeSeconds } : {}),
      ...(aud !== undefined ? { audience: aud } : {}),
      ...(orgClaim !== undefined ? { organisationClaim: orgClaim as OrganisationClaimSpelling } : {}),
    })}\n`,
  );
  return 0;
}
