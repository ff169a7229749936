// Subscription matching (docs/specification.md §1.5, §1.6, §2.8): which live subscriptions an event reaches, grouped into one
// delivery per MESH mailbox with its Mex-Partnerid. Pure: the store, the patient directory and the clock are inputs.
import type { AgeBound, ParsedCriteria } from '../fhir/criteria-types.js';
import { gpParentIcb, postcodeCode, type GeographyTables } from './geography.js';

/** What the local PDS data knows about a patient; the lead adapts the local PDS store to this. */
export interface PatientRecord {
  readonly gpOdsCode?: string;
  readonly postcode?: string;
  /** YYYY-MM-DD */
  readonly birthDate?: string;
}

export interface PatientDirectory {
  lookupPatient(nhsNumber: string): PatientRecord | undefined | Promise<PatientRecord | undefined>;
}

/** The facts of a published event that routing needs, taken from its MessageHeader and subject Patient. */
export interface EventFacts {
  readonly eventCode: string;
  readonly messageHeaderId?: string;
  /** Routing demographics NHS number; absent only for a birth notification without the mother's number. */
  readonly routingNhsNumber?: string;
  /** Routing demographics birthDateTime (must match PDS, so it drives Patient.age). */
  readonly routingBirthDateTime?: string;
  /** The event's own data about the routed patient, when the bundle carries a Patient for them. */
  readonly subjectPatient?: PatientRecord;
}

/** Everything known about the routed patient: the PDS record first (NEMS's source), the event's data second. */
export interface PatientFacts {
  /** True when either PDS or the event has a record of the patient (GPRegistration needs to know). */
  readonly known: boolean;
  readonly gpOdsCode?: string;
  readonly postcode?: string;
  readonly birthDate?: string;
}

export function resolvePatient(event: EventFacts, directoryRecord: PatientRecord | undefined): PatientFacts {
  const fromEvent = event.subjectPatient;
  const birth = event.routingBirthDateTime ?? directoryRecord?.birthDate ?? fromEvent?.birthDate;
  const gp = directoryRecord?.gpOdsCode ?? fromEvent?.gpOdsCode;
  const postcode = directoryRecord?.postcode ?? fromEvent?.postcode;
  return {
    known: directoryRecord !== undefined || fromEvent !== undefined,
    ...(gp ? { gpOdsCode: gp } : {}),
    ...(postcode ? { postcode } : {}),
    ...(birth ? { birthDate: birth } : {}),
  };
}

/** The subscription fields matching reads (a StoredSubscription satisfies it). */
export interface MatchableSubscription {
  readonly id: string;
  readonly ownerOds: string;
  readonly mailboxId: string;
  readonly parsed: ParsedCriteria;
  readonly endAt?: number;
  readonly createdAt: number;
}

export interface MatchContext {
  readonly event: EventFacts;
  readonly patient: PatientFacts;
  readonly geography: GeographyTables;
  readonly now: number;
}

/** Whether one subscription wants this event. Unknown data never matches a rule that needs it (fail closed). */
export function subscriptionMatches(sub: MatchableSubscription, ctx: MatchContext): boolean {
  const c = sub.parsed;
  if (sub.endAt !== undefined && sub.endAt <= ctx.now) return false;
  if (!c.eventCodes.includes(ctx.event.eventCode)) return false;
  if (c.subscriptionType === 'explicit') {
    // A birth notification without the mother's NHS number has no routing number: generic subscriptions only.
    if (!ctx.event.routingNhsNumber || c.nhsNumber !== ctx.event.routingNhsNumber) return false;
  } else if (!genericRuleMatches(sub, ctx)) {
    return false;
  }
  if (c.ages.length > 0 && !agesMatch(c.ages, ctx.patient.birthDate, ctx.now)) return false;
  if (c.gpRegistration === 'RegisteredOnly' && !ctx.patient.gpOdsCode) return false;
  if (c.gpRegistration === 'UnregisteredOnly' && (!ctx.patient.known || ctx.patient.gpOdsCode)) return false;
  // serviceType describes the subscribing service (GP, CHO, UHV, EPCHR); NEMS documents no filtering by it.
  return true;
}

function genericRuleMatches(sub: MatchableSubscription, ctx: MatchContext): boolean {
  const c = sub.parsed;
  // Organization.identifier is 0..1 for generic rules; without it the rule is about the subscriber's own ODS code.
  const code = c.organisationCode ?? sub.ownerOds;
  const { gpOdsCode, postcode } = ctx.patient;
  switch (c.ruleType) {
    case 'GP_GP_GP':
      return gpOdsCode !== undefined && gpOdsCode === code;
    case 'CHO_GP_CCG':
      return gpOdsCode !== undefined && gpParentIcb(ctx.geography, gpOdsCode) === code;
    case 'CHO_POSTCODE_CCG':
      return postcode !== undefined && postcodeCode(ctx.geography, postcode, 'icb') === code;
    case 'UHV_POSTCODE_LACODE':
      return postcode !== undefined && postcodeCode(ctx.geography, postcode, 'localAuthority') === code;
    case 'COUNTRYCODE':
      return postcode !== undefined && postcodeCode(ctx.geography, postcode, 'country') === code;
    default:
      return false;
  }
}

/** Whole years between a FHIR date/dateTime of birth (its calendar date as written) and `now` (UTC date). */
export function ageInYears(birth: string, now: number): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(birth);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const today = new Date(now);
  let age = today.getUTCFullYear() - y;
  const monthDiff = today.getUTCMonth() + 1 - mo;
  if (monthDiff < 0 || (monthDiff === 0 && today.getUTCDate() < d)) age--;
  return age >= 0 ? age : undefined;
}

function agesMatch(bounds: readonly AgeBound[], birth: string | undefined, now: number): boolean {
  const age = birth ? ageInYears(birth, now) : undefined;
  if (age === undefined) return false;
  return bounds.every((b) => {
    switch (b.comparator) {
      case 'lt': return age < b.years;
      case 'gt': return age > b.years;
      case 'le': return age <= b.years;
      case 'ge': return age >= b.years;
      case 'eq': return age === b.years;
      default: return false;
    }
  });
}

export interface MailboxDelivery {
  readonly mailboxId: string;
  /** Every matching subscription for this mailbox, oldest first. */
  readonly subscriptionIds: readonly string[];
  /** `subId|tag` for the matching subscriptions that have a tag, joined with `~~~` (docs/specification.md §2.8); absent when none has. */
  readonly mexPartnerId?: string;
}

/** One delivery per mailbox, however many of its subscriptions match (docs/specification.md §1.6). */
export function selectDeliveries(candidates: readonly MatchableSubscription[], ctx: MatchContext): MailboxDelivery[] {
  const byMailbox = new Map<string, MatchableSubscription[]>();
  const ordered = [...candidates].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  for (const sub of ordered) {
    if (!subscriptionMatches(sub, ctx)) continue;
    const list = byMailbox.get(sub.mailboxId) ?? [];
    list.push(sub);
    byMailbox.set(sub.mailboxId, list);
  }
  return [...byMailbox.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([mailboxId, subs]) => {
      const tagged = subs.filter((s) => s.parsed.tag).map((s) => `${s.id}|${s.parsed.tag}`);
      return {
        mailboxId,
        subscriptionIds: subs.map((s) => s.id),
        ...(tagged.length > 0 ? { mexPartnerId: tagged.join('~~~') } : {}),
      };
    });
}
