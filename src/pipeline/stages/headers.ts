// Headers stage: the Spine headers every NEMS request carries (docs/specification.md §1.3, §2.1, §3.3) and the ASID
// checks against the endpoint the client certificate resolved to (docs/specification.md §5).
//
// Decisions:
// - fromASID, toASID, InteractionID and Authorization must each appear exactly once (names case-insensitive,
//   counted on the raw headers because Node silently keeps the first Authorization and joins the others).
//   Missing, repeated or malformed → 400 MISSING_OR_INVALID_HEADER naming the header, never its value.
// - Rule headers.authorization-scheme (conformance): strict takes `Bearer` written exactly so (every Spine example
//   does); compatible takes any case, as RFC 7235 §2.1 makes schemes case-insensitive. Reported or off, the token
//   after the scheme is still the one the jwt stage reads.
// - An InteractionID of another operation, or one the gateway does not know → 400 MISSING_OR_INVALID_HEADER
//   (Spine Core: "InteractionID ≠ request", docs/specification.md §3.2).
// - fromASID not registered for the certificate's endpoint (headers.from-asid), toASID not a configured NEMS ASID
//   (headers.to-asid: nems.toAsid or nems.toAsids; conformance), or the ASID not registered for the InteractionID
//   (headers.asid-interaction) → 403 ASID_CHECK_FAILED ("sender or receiver ASID is not authorised for this
//   interaction", docs/specification.md §3.2). All 400 checks run before any 403 check. A reported toASID is used for nothing later: the
//   upstream request carries the client's headers unchanged.
// - Legacy publish InteractionIDs (docs/specification.md §2.1 history, §9.22) are accepted only with
//   `nems.acceptLegacyPublishInteractionIds`; ctx.interactionId then holds the current form, which is also
//   what the ASID registration is checked against.
import type { Config } from '../../config/schema.js';
import { BEARER_SCHEME, bearerScheme } from '../../nems/authorization.js';
import { isAsid } from '../../nems/identifiers.js';
import { resolveInteraction } from '../../nems/interactions.js';
import { RulePolicy } from '../../rules/policy.js';
import { PASS, reject, type RequestContext, type Stage, type StageResult } from '../types.js';

/** Header names as the NEMS pages write them, for diagnostics. */
const REQUIRED_HEADERS = ['fromASID', 'toASID', 'InteractionID', 'Authorization'] as const;
type RequiredHeader = (typeof REQUIRED_HEADERS)[number];

/**
 * The required headers in one pass over the raw name/value list (names compared case-insensitively, lower-cased
 * only when the length could match): how often each appears and its first value.
 */
function requiredHeaderValues(rawHeaders: readonly string[]): { readonly counts: number[]; readonly values: (string | undefined)[] } {
  const counts = [0, 0, 0, 0];
  const values: (string | undefined)[] = [undefined, undefined, undefined, undefined];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (!REQUIRED_LENGTHS.has(name.length)) continue;
    const index = REQUIRED_LOWER.indexOf(name.toLowerCase());
    if (index === -1) continue;
    if (counts[index]++ === 0) values[index] = rawHeaders[i + 1]!;
  }
  return { counts, values };
}

const REQUIRED_LOWER: readonly string[] = REQUIRED_HEADERS.map((h) => h.toLowerCase());
const REQUIRED_LENGTHS: ReadonlySet<number> = new Set(REQUIRED_HEADERS.map((h) => h.length));

function invalid(rule: 'headers.required' | 'headers.asid-format' | 'headers.bearer-token' | 'headers.interaction-id', header: RequiredHeader, problem: string): StageResult {
  return reject(rule, `The ${header} header ${problem}`);
}

export function createHeadersStage(config: Config, policy: RulePolicy = RulePolicy.fromConfig(config)): Stage {
  const nemsAsids: ReadonlySet<string> = new Set([config.nems.toAsid, ...config.nems.toAsids]);
  const acceptLegacy = config.nems.acceptLegacyPublishInteractionIds;
  const bearerAnyCase = policy.readings.bearerAnyCase;
  return {
    name: 'headers',
    run(ctx: RequestContext): StageResult {
      const route = ctx.route;
      if (!route) return reject('gateway.internal', 'The headers stage ran before the route stage');

      const found = requiredHeaderValues(ctx.rawHeaders);
      const values = {} as Record<RequiredHeader, string>;
      for (const [index, header] of REQUIRED_HEADERS.entries()) {
        if (found.counts[index] === 0) return invalid('headers.required', header, 'must be supplied');
        if (found.counts[index]! > 1) return invalid('headers.required', header, 'must be supplied exactly once');
        values[header] = found.values[index]!.trim();
      }

      if (!isAsid(values.fromASID)) return invalid('headers.asid-format', 'fromASID', 'must be a 12-digit ASID');
      if (!isAsid(values.toASID)) return invalid('headers.asid-format', 'toASID', 'must be a 12-digit ASID');

      const authorization = values.Authorization;
      const space = authorization.indexOf(' ');
      const scheme = space < 0 ? authorization : authorization.slice(0, space);
      const token = space < 0 ? '' : authorization.slice(space + 1);
      const spelling = bearerScheme(scheme);
      if (spelling !== 'exact') {
        if (spelling === 'not-bearer') return invalid('headers.bearer-token', 'Authorization', `must use the ${BEARER_SCHEME} scheme`);
        if (!bearerAnyCase) {
          const refused = policy.fire(ctx, 'headers.authorization-scheme', `The Authorization header must use the ${BEARER_SCHEME} scheme, written exactly so`);
          if (refused) return { ok: false, rejection: refused };
        }
      }
      if (token === '' || /\s/.test(token)) return invalid('headers.bearer-token', 'Authorization', 'must carry one bearer token');

      const interaction = resolveInteraction(route.interactionId, values.InteractionID, acceptLegacy);
      if (!interaction) return invalid('headers.interaction-id', 'InteractionID', 'does not name the requested NEMS operation');

      const registration = ctx.endpoint.asids.get(values.fromASID);
      if (!registration) {
        return reject('headers.from-asid', "The fromASID header is not an ASID registered for the client certificate's endpoint");
      }
      if (!nemsAsids.has(values.toASID)) {
        const refused = policy.fire(ctx, 'headers.to-asid', 'The toASID header is not the NEMS ASID');
        if (refused) return { ok: false, rejection: refused };
      }
      const sentId = values.InteractionID;
      if (!registration.interactions.includes(interaction.interactionId) && !registration.interactions.includes(sentId)) {
        return reject('headers.asid-interaction', 'The fromASID is not registered for the InteractionID');
      }

      ctx.fromAsid = values.fromASID;
      ctx.asidRegistration = registration;
      ctx.interactionId = interaction.interactionId;
      if (interaction.publishEventType) ctx.publishEventType = interaction.publishEventType;
      ctx.audit['fromAsid'] = values.fromASID;
      if (interaction.legacy) ctx.audit['legacyInteractionId'] = true;
      return PASS;
    },
  };
}
