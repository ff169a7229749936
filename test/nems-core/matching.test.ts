import { describe, expect, it } from 'vitest';
import { normalisePostcode, postcodeCode, DEFAULT_GEOGRAPHY } from '../../src/nems-core/geography.js';
import { ageInYears, type PatientDirectory, type PatientRecord } from '../../src/nems-core/matching.js';
import { listMailbox } from '../../src/nems-core/outbox.js';
import {
  CHO, explicitCriteria, fixture, FIXED_NOW, genericCriteria, GP, openCore, OTHER_NHS, publishRequest, subscribe,
  tempDataDir, vaccinationEvent, type Organisation,
} from './helpers.js';

/** Local PDS data: the fixture patient is registered at A83627 and lives in Leeds. */
const DIRECTORY: Record<string, PatientRecord> = {
  '9912003888': { gpOdsCode: 'A83627', postcode: 'LS1 4HR', birthDate: '2017-10-02' },
};
const directory: PatientDirectory = { lookupPatient: (n) => DIRECTORY[n] };

interface SubscriptionSpec {
  readonly org: Organisation;
  readonly criteria: string;
  /** Subscription end, as an offset from FIXED_NOW in ms. */
  readonly endInMs?: number;
  readonly deleted?: boolean;
}

interface MatchCase {
  readonly name: string;
  readonly subscriptions: readonly SubscriptionSpec[];
  /** The published event: the vaccination fixture (optionally altered) or a Spine-published fixture. */
  readonly event: { readonly api: Buffer } | { readonly spine: Buffer };
  /** Messages each mailbox must hold afterwards (absent mailbox = 0). */
  readonly expect: Partial<Record<string, number>>;
  readonly withoutDirectory?: boolean;
  /** Clock moved forward by this much before publishing. */
  readonly advanceMs?: number;
}

const vaccination = (o: Parameters<typeof vaccinationEvent>[0] = {}) => ({ api: vaccinationEvent(o) });
const HOUR = 3_600_000;

const CASES: readonly MatchCase[] = [
  { name: 'explicit: same NHS number and event code reaches the mailbox', subscriptions: [{ org: GP, criteria: explicitCriteria() }], event: vaccination(), expect: { [GP.mailbox]: 1 } },
  { name: 'explicit: a different NHS number does not', subscriptions: [{ org: GP, criteria: explicitCriteria() }], event: vaccination({ nhs: OTHER_NHS }), expect: {} },
  { name: 'explicit: a different event code does not', subscriptions: [{ org: GP, criteria: explicitCriteria({ events: ['professional-contacts-1'] }) }], event: vaccination(), expect: {} },
  { name: 'explicit: one of several event codes matches', subscriptions: [{ org: GP, criteria: explicitCriteria({ events: ['professional-contacts-1', 'vaccinations-1'] }) }], event: vaccination(), expect: { [GP.mailbox]: 1 } },
  { name: 'an ended subscription does not', subscriptions: [{ org: GP, criteria: explicitCriteria(), endInMs: HOUR }], event: vaccination(), advanceMs: 2 * HOUR, expect: {} },
  { name: 'a subscription before its end does', subscriptions: [{ org: GP, criteria: explicitCriteria(), endInMs: 2 * HOUR }], event: vaccination(), advanceMs: HOUR, expect: { [GP.mailbox]: 1 } },
  { name: 'a deleted subscription does not', subscriptions: [{ org: GP, criteria: explicitCriteria(), deleted: true }], event: vaccination(), expect: {} },
  { name: 'Patient.age lt14 matches a 6-year-old', subscriptions: [{ org: GP, criteria: explicitCriteria({ ages: ['lt14'] }) }], event: vaccination(), expect: { [GP.mailbox]: 1 } },
  { name: 'Patient.age gt5 + lt19 matches a 6-year-old', subscriptions: [{ org: GP, criteria: explicitCriteria({ ages: ['gt5', 'lt19'] }) }], event: vaccination(), expect: { [GP.mailbox]: 1 } },
  { name: 'Patient.age gt60 does not match a 6-year-old', subscriptions: [{ org: GP, criteria: explicitCriteria({ ages: ['gt60'] }) }], event: vaccination(), expect: {} },
  { name: 'Patient.age ge7 does not match a 6-year-old', subscriptions: [{ org: GP, criteria: explicitCriteria({ ages: ['ge7'] }) }], event: vaccination(), expect: {} },
  { name: 'Patient.age uses the routing birthDateTime', subscriptions: [{ org: GP, criteria: explicitCriteria({ ages: ['gt60'] }) }], event: vaccination({ birthDateTime: '1950-01-01T00:00:00+00:00' }), expect: { [GP.mailbox]: 1 } },
  { name: 'GP_GP_GP matches the registered GP from the local PDS data', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'GP_GP_GP', org: 'A83627' }) }], event: vaccination(), expect: { [CHO.mailbox]: 1 } },
  { name: 'GP_GP_GP for another practice does not', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'GP_GP_GP', org: 'B86056' }) }], event: vaccination(), expect: {} },
  { name: 'GP_GP_GP without PDS data or a GP in the event does not', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'GP_GP_GP', org: 'A83627' }) }], event: vaccination(), withoutDirectory: true, expect: {} },
  { name: 'CHO_GP_CCG matches the parent ICB of the registered GP', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'CHO_GP_CCG', org: '16C' }) }], event: vaccination(), expect: { [CHO.mailbox]: 1 } },
  { name: 'CHO_POSTCODE_CCG matches the ICB covering the home postcode', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'CHO_POSTCODE_CCG', org: '15F' }) }], event: vaccination(), expect: { [CHO.mailbox]: 1 } },
  { name: 'CHO_POSTCODE_CCG for another ICB does not', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'CHO_POSTCODE_CCG', org: '15N' }) }], event: vaccination(), expect: {} },
  { name: 'UHV_POSTCODE_LACODE matches the Local Authority of the postcode', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'UHV_POSTCODE_LACODE', org: 'E08000035' }) }], event: vaccination(), expect: { [CHO.mailbox]: 1 } },
  { name: 'COUNTRYCODE England matches a Leeds postcode', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'COUNTRYCODE', org: 'E92000001' }) }], event: vaccination(), expect: { [CHO.mailbox]: 1 } },
  { name: 'COUNTRYCODE Wales does not', subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'COUNTRYCODE', org: 'W92000004' }) }], event: vaccination(), expect: {} },
  { name: 'GPRegistration RegisteredOnly matches a registered patient', subscriptions: [{ org: GP, criteria: explicitCriteria({ gpRegistration: 'RegisteredOnly' }) }], event: vaccination(), expect: { [GP.mailbox]: 1 } },
  { name: 'GPRegistration UnregisteredOnly does not match a registered patient', subscriptions: [{ org: GP, criteria: explicitCriteria({ gpRegistration: 'UnregisteredOnly' }) }], event: vaccination(), expect: {} },
  { name: 'GPRegistration UnregisteredOnly matches a patient the event shows without a GP', subscriptions: [{ org: GP, criteria: explicitCriteria({ nhs: OTHER_NHS, gpRegistration: 'UnregisteredOnly' }) }], event: vaccination({ nhs: OTHER_NHS }), expect: { [GP.mailbox]: 1 } },
  {
    name: 'each mailbox gets its own copy',
    subscriptions: [{ org: GP, criteria: explicitCriteria() }, { org: CHO, criteria: genericCriteria({ rule: 'GP_GP_GP', org: 'A83627' }) }],
    event: vaccination(),
    expect: { [GP.mailbox]: 1, [CHO.mailbox]: 1 },
  },
  {
    name: 'birth notification without the mother: an explicit subscription for the baby does not match',
    subscriptions: [{ org: GP, criteria: explicitCriteria({ nhs: '5900005879', events: ['pds-birth-notification-1'] }) }],
    event: { spine: fixture('BirthNotificationWithoutMother.xml') },
    expect: {},
  },
  {
    name: 'birth notification without the mother: a generic GP_GP_GP subscription matches the GP in the event',
    subscriptions: [{ org: CHO, criteria: genericCriteria({ rule: 'GP_GP_GP', org: 'E82025', event: 'pds-birth-notification-1' }) }],
    event: { spine: fixture('BirthNotificationWithoutMother.xml') },
    expect: { [CHO.mailbox]: 1 },
  },
];

describe('subscription matching (events that must and must not reach each mailbox)', () => {
  it.each(CASES)('$name', async (c) => {
    const { dir, cleanup } = tempDataDir();
    let now = FIXED_NOW;
    const core = openCore(dir, { now: () => now, ...(c.withoutDirectory ? {} : { patientDirectory: directory }) });
    try {
      for (const spec of c.subscriptions) {
        const id = await subscribe(core, spec.org, spec.criteria, spec.endInMs ? { end: new Date(FIXED_NOW + spec.endInMs).toISOString() } : {});
        if (spec.deleted) expect(core.storage.deleteSubscription(id, spec.org.asid, now)).toBe(true);
      }
      now += c.advanceMs ?? 0;
      const response = 'api' in c.event ? await core.handle(publishRequest(CHO, c.event.api)) : await core.publishAsSpine(c.event.spine);
      expect(response.status).toBe(202);
      await core.idle();
      for (const mailbox of [GP.mailbox, CHO.mailbox]) {
        expect(listMailbox(dir, mailbox), mailbox).toHaveLength(c.expect[mailbox] ?? 0);
      }
    } finally {
      await core.close();
      cleanup();
    }
  });
});

describe('one copy per mailbox and Mex-Partnerid (docs/specification.md §1.6, §2.8)', () => {
  it('sends one copy to a mailbox with three matching subscriptions, Mex-Partnerid joining the tagged ones with ~~~', async () => {
    const { dir, cleanup } = tempDataDir();
    let now = FIXED_NOW;
    const core = openCore(dir, { now: () => now++, patientDirectory: directory });
    try {
      const tagA = await subscribe(core, GP, explicitCriteria({ tag: 'tagA' }));
      const untagged = await subscribe(core, GP, explicitCriteria({ ages: ['lt14'] }));
      const tagB = await subscribe(core, GP, explicitCriteria({ tag: 'site-2_x|y,z', serviceType: 'GP' }));
      expect((await core.handle(publishRequest(CHO, vaccinationEvent()))).status).toBe(202);
      await core.idle();
      const messages = listMailbox(dir, GP.mailbox);
      expect(messages).toHaveLength(1);
      const control = messages[0]!.control;
      expect(control.subscriptionIds).toEqual([tagA, untagged, tagB]);
      expect(control.mexPartnerId).toBe(`${tagA}|tagA~~~${tagB}|site-2_x|y,z`);
      expect(core.storage.stats().deliveries).toBe(1);
    } finally {
      await core.close();
      cleanup();
    }
  });

  it('leaves Mex-Partnerid out when no matching subscription has a tag', async () => {
    const { dir, cleanup } = tempDataDir();
    const core = openCore(dir, { now: () => FIXED_NOW });
    try {
      await subscribe(core, GP, explicitCriteria());
      await core.handle(publishRequest(CHO, vaccinationEvent()));
      await core.idle();
      expect(listMailbox(dir, GP.mailbox)[0]!.control.mexPartnerId).toBeUndefined();
    } finally {
      await core.close();
      cleanup();
    }
  });

  it('delivers one copy per publish when a publisher re-sends the event', async () => {
    const { dir, cleanup } = tempDataDir();
    const core = openCore(dir, { now: () => FIXED_NOW });
    try {
      await subscribe(core, GP, explicitCriteria());
      await core.handle(publishRequest(CHO, vaccinationEvent()));
      await core.handle(publishRequest(CHO, vaccinationEvent()));
      await core.idle();
      expect(listMailbox(dir, GP.mailbox)).toHaveLength(2);
    } finally {
      await core.close();
      cleanup();
    }
  });
});

describe('matching helpers', () => {
  it.each([
    ['2017-10-02', '2024-10-01T23:59:59Z', 6],
    ['2017-10-02', '2024-10-02T00:00:00Z', 7],
    ['2017-10-02T12:00:00+00:00', '2024-06-01T00:00:00Z', 6],
    ['2000-02-29', '2023-02-28T00:00:00Z', 22],
  ])('ageInYears(%s) at %s is %i', (birth, at, years) => {
    expect(ageInYears(birth, Date.parse(at))).toBe(years);
  });

  it('reads postcodes case- and space-insensitively and picks the most specific table entry per field', () => {
    expect(normalisePostcode('ex25se')).toBe('EX2 5SE');
    expect(normalisePostcode('not a postcode')).toBeUndefined();
    expect(postcodeCode(DEFAULT_GEOGRAPHY, 'EX2 5SE', 'localAuthority')).toBe('E07000041');
    expect(postcodeCode(DEFAULT_GEOGRAPHY, 'EX2 5SE', 'icb')).toBe('15N');
    expect(postcodeCode(DEFAULT_GEOGRAPHY, 'EX4 1AA', 'localAuthority')).toBeUndefined();
    // LS14 is not LS1: districts are matched whole, not as string prefixes.
    expect(postcodeCode({ gpToIcb: {}, postcodes: { LS1: { icb: 'X' } } }, 'LS14 5AB', 'icb')).toBeUndefined();
  });
});
