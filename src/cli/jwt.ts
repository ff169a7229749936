// `nems-gateway jwt`: prints an unsigned Spine Core JWT (spec digest §4.1–4.4) for local testing, the kind a
// NEMS client builds per request: header {"alg":"none","typ":"JWT"}, empty signature, trailing `.` kept.
import {
  ACCREDITED_SYSTEM,
  isAsid,
  isOdsCode,
  LEGACY_NHS_NUMBER_SYSTEM,
  ODS_ORGANIZATION_SYSTEM,
  SDS_ROLE_PROFILE_SYSTEM,
} from '../nems/identifiers.js';
/** Spine Core's example `aud` (the NEMS nhsMhsEndPoint host). */
export const DEFAULT_AUDIENCE = 'https://clinicals.spineservices.nhs.uk';
export const DEFAULT_LIFETIME_SECONDS = 300;
/** Self-issued tokens name the client system as issuer (§4.1); this one says it is a test token. */
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
  /** British spelling by default (NEMS pages, §4.4). */
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
`;

export interface CommandIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const STDIO: CommandIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

const FLAGS = new Set(['--asid', '--ods', '--scope', '--patient', '--user', '--lifetime', '--aud', '--org-claim']);
const ORG_CLAIMS: readonly OrganisationClaimSpelling[] = ['requesting_organisation', 'requesting_organization', 'both'];

/** Runs `nems-gateway jwt`; returns the exit code (0 printed, 2 usage error). */
export function runJwtCommand(argv: readonly string[], io: CommandIo = STDIO): number {
  const usageError = (problem: string): number => {
    io.err(`nems-gateway jwt: ${problem}\n${JWT_USAGE}`);
    return 2;
  };
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      io.out(JWT_USAGE);
      return 0;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (!FLAGS.has(flag)) return usageError(`unknown argument '${arg}'`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') return usageError(`${flag} needs a value`);
    if (values.has(flag)) return usageError(`${flag} given twice`);
    values.set(flag, value);
  }

  const asid = values.get('--asid');
  const ods = values.get('--ods');
  const scope = values.get('--scope');
  if (!asid || !ods || !scope) return usageError('--asid, --ods and --scope are required');
  if (!isAsid(asid)) return usageError('--asid must be a 12-digit ASID');
  if (!isOdsCode(ods)) return usageError('--ods must be an ODS code (1 to 9 letters or digits)');
  const lifetimeText = values.get('--lifetime');
  const lifetimeSeconds = lifetimeText === undefined ? undefined : Number(lifetimeText);
  if (lifetimeSeconds !== undefined && (!Number.isSafeInteger(lifetimeSeconds) || lifetimeSeconds <= 0)) {
    return usageError('--lifetime must be a positive whole number of seconds');
  }
  const aud = values.get('--aud');
  if (aud !== undefined && !URL.canParse(aud)) return usageError('--aud must be a URL');
  const orgClaim = values.get('--org-claim');
  if (orgClaim !== undefined && !ORG_CLAIMS.includes(orgClaim as OrganisationClaimSpelling)) {
    return usageError('--org-claim must be requesting_organisation, requesting_organization or both');
  }
  const patient = values.get('--patient');
  const user = values.get('--user');

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
