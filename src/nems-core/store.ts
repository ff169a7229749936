// Durable state of the embedded NEMS core: subscriptions, accepted publications and the delivery log, in
// SQLite (better-sqlite3). WAL + synchronous=FULL so a committed write survives a crash before the reply is sent.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { AgeBound, ParsedCriteria, ServiceType, SubscriptionRuleType } from '../fhir/criteria-types.js';
import { applyMigrations } from './migrations.js';

export const STORE_FILE_NAME = 'nems-core.sqlite';

export interface NewSubscription {
  readonly id: string;
  readonly ownerAsid: string;
  readonly ownerOds: string;
  readonly mailboxId: string;
  /** The criteria string exactly as sent. */
  readonly criteria: string;
  readonly parsed: ParsedCriteria;
  /** Epoch ms from which the subscription no longer matches; undefined when it never ends. */
  readonly endAt?: number;
  readonly resourceXml: string;
  readonly resourceJson: string;
  readonly versionId: string;
  readonly lastUpdated: string;
  readonly createdAt: number;
}

export interface StoredSubscription extends NewSubscription {
  readonly deletedAt?: number;
}

export interface NewPublication {
  readonly id: string;
  readonly receivedAt: number;
  readonly fromAsid: string;
  readonly eventCode: string;
  readonly messageHeaderId?: string;
  readonly body: Buffer;
}

export interface StoredPublication extends NewPublication {
  readonly state: 'pending' | 'delivered' | 'failed';
}

export interface DeliveryRecord {
  readonly messageId: string;
  readonly mailboxId: string;
  readonly workflowId: string;
  readonly mexPartnerId?: string;
  readonly subscriptionIds: readonly string[];
  readonly deliveredAt: number;
}

export interface StoreStats {
  readonly subscriptions: number;
  readonly activeSubscriptions: number;
  readonly subscriptionEvents: number;
  /** subscription_events rows whose subscription does not exist (must stay 0). */
  readonly orphanSubscriptionEvents: number;
  /** Live subscriptions without any event code (must stay 0). */
  readonly subscriptionsWithoutEvents: number;
  readonly publications: number;
  readonly pendingPublications: number;
  readonly deliveries: number;
  /** deliveries rows whose publication does not exist (must stay 0). */
  readonly orphanDeliveries: number;
}

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly appliedAt: string;
}

interface SubscriptionRow {
  id: string;
  owner_asid: string;
  owner_ods: string;
  mailbox_id: string;
  criteria: string;
  subscription_type: 'explicit' | 'generic';
  nhs_number: string | null;
  rule_type: string | null;
  org_code: string | null;
  service_type: string | null;
  ages_json: string;
  gp_registration: string | null;
  tag: string | null;
  end_at: number | null;
  resource_xml: string;
  resource_json: string;
  version_id: string;
  last_updated: string;
  created_at: number;
  deleted_at: number | null;
  event_codes: string | null;
}

interface PublicationRow {
  id: string;
  received_at: number;
  from_asid: string;
  event_code: string;
  message_header_id: string | null;
  body: Buffer;
  state: 'pending' | 'delivered' | 'failed';
}

const SUBSCRIPTION_COLUMNS = `s.*, (SELECT json_group_array(event_code) FROM
  (SELECT event_code FROM subscription_events WHERE subscription_id = s.id ORDER BY event_code)) AS event_codes`;

export class CoreStore {
  private readonly db: BetterSqlite3.Database;
  private open = true;
  /** Migration versions applied when this handle opened the database (empty when it was already current). */
  readonly migrationsAppliedNow: readonly number[];

  private constructor(readonly path: string) {
    this.db = new Database(path);
    // First, so a second process opening the file mid-migration waits instead of failing with SQLITE_BUSY.
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.migrationsAppliedNow = applyMigrations(this.db);
  }

  /** Opens (creating if needed) `<dataDir>/nems-core.sqlite` and brings its schema up to date. */
  static open(dataDir: string): CoreStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return new CoreStore(join(dataDir, STORE_FILE_NAME));
  }

  get isOpen(): boolean {
    return this.open && this.db.open;
  }

  /**
   * Inserts a subscription and its event codes in one transaction. With `rejectDuplicate`, a duplicate makes it
   * return the id of the subscription it duplicates instead: one still active (not deleted, `end` not passed) of
   * the same owner ASID and MESH mailbox whose criteria mean the same (sameCriteria: the parsed criteria, so the
   * order of components or of event codes and percent-encoding do not make a subscription new).
   */
  insertSubscription(sub: NewSubscription, options: { rejectDuplicate?: boolean; now?: number } = {}): 'created' | { readonly duplicateOf: string } {
    const p = sub.parsed;
    const insert = this.db.transaction(() => {
      if (options.rejectDuplicate) {
        const now = options.now ?? Date.now();
        const candidates = this.db
          .prepare<[string, string, string, string | null, number], SubscriptionRow>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions s
            WHERE s.owner_asid = ? AND s.mailbox_id = ? AND s.subscription_type = ? AND s.nhs_number IS ?
              AND s.deleted_at IS NULL AND (s.end_at IS NULL OR s.end_at > ?)
            ORDER BY s.created_at, s.id`)
          .all(sub.ownerAsid, sub.mailboxId, p.subscriptionType, p.nhsNumber ?? null, now);
        const existing = candidates.map(toSubscription).find((candidate) => sameCriteria(candidate.parsed, p));
        if (existing) return { duplicateOf: existing.id };
      }
      this.db
        .prepare(`INSERT INTO subscriptions (id, owner_asid, owner_ods, mailbox_id, criteria, subscription_type,
                    nhs_number, rule_type, org_code, service_type, ages_json, gp_registration, tag, end_at,
                    resource_xml, resource_json, version_id, last_updated, created_at)
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(sub.id, sub.ownerAsid, sub.ownerOds, sub.mailboxId, sub.criteria, p.subscriptionType,
          p.nhsNumber ?? null, p.ruleType ?? null, p.organisationCode ?? null, p.serviceType ?? null,
          JSON.stringify(p.ages), p.gpRegistration ?? null, p.tag ?? null, sub.endAt ?? null,
          sub.resourceXml, sub.resourceJson, sub.versionId, sub.lastUpdated, sub.createdAt);
      const addEvent = this.db.prepare('INSERT OR IGNORE INTO subscription_events (subscription_id, event_code) VALUES (?, ?)');
      for (const code of p.eventCodes) addEvent.run(sub.id, code);
      return 'created' as const;
    });
    return insert.immediate();
  }

  /** The live subscription with this id, only if `ownerAsid` created it. */
  findSubscription(id: string, ownerAsid: string): StoredSubscription | undefined {
    const row = this.db
      .prepare<[string, string], SubscriptionRow>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions s
        WHERE s.id = ? AND s.owner_asid = ? AND s.deleted_at IS NULL`)
      .get(id, ownerAsid);
    return row ? toSubscription(row) : undefined;
  }

  /** Marks the subscription deleted (kept for audit); false when it is unknown, not the owner's, or already deleted. */
  deleteSubscription(id: string, ownerAsid: string, now: number): boolean {
    const result = this.db
      .prepare('UPDATE subscriptions SET deleted_at = ? WHERE id = ? AND owner_asid = ? AND deleted_at IS NULL')
      .run(now, id, ownerAsid);
    return result.changes === 1;
  }

  /**
   * Live, unexpired subscriptions for `eventCode` that could match: every generic one, plus the explicit ones for
   * `nhsNumber` (none when the event has no routing NHS number). Oldest first, so Mex-Partnerid order is stable.
   */
  candidateSubscriptions(eventCode: string, nhsNumber: string | undefined, now: number): StoredSubscription[] {
    const rows = this.db
      .prepare<[string, number, string | null], SubscriptionRow>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions s
        JOIN subscription_events e ON e.subscription_id = s.id
        WHERE e.event_code = ? AND s.deleted_at IS NULL AND (s.end_at IS NULL OR s.end_at > ?)
          AND (s.subscription_type = 'generic' OR (s.subscription_type = 'explicit' AND s.nhs_number = ?))
        ORDER BY s.created_at, s.id`)
      .all(eventCode, now, nhsNumber ?? null);
    return rows.map(toSubscription);
  }

  /** Records an accepted publication durably before the 202, so a restart resumes its delivery. */
  enqueuePublication(pub: NewPublication): void {
    this.db
      .prepare(`INSERT INTO publications (id, received_at, from_asid, event_code, message_header_id, body, state)
                VALUES (?, ?, ?, ?, ?, ?, 'pending')`)
      .run(pub.id, pub.receivedAt, pub.fromAsid, pub.eventCode, pub.messageHeaderId ?? null, pub.body);
  }

  /** Pending publications nobody holds a live lease on, oldest first. */
  pendingPublications(limit = 100, now = Date.now()): StoredPublication[] {
    return this.db
      .prepare<[number, number], PublicationRow>(`SELECT * FROM publications WHERE state = 'pending'
        AND (lease_until IS NULL OR lease_until < ?) ORDER BY received_at, id LIMIT ?`)
      .all(now, limit)
      .map(toPublication);
  }

  /**
   * Takes the delivery lease on a pending publication, so two processes sharing the data directory never deliver
   * it twice; a crashed holder's lease expires after `leaseMs`. False when someone else holds it or it is done.
   */
  claimPublication(publicationId: string, owner: string, now: number, leaseMs: number): boolean {
    const result = this.db
      .prepare(`UPDATE publications SET lease_owner = ?, lease_until = ? WHERE id = ? AND state = 'pending'
                AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)`)
      .run(owner, now + leaseMs, publicationId, now, owner);
    return result.changes === 1;
  }

  /** Records every delivery of a publication and marks it delivered, atomically. Re-recording is idempotent. */
  completePublication(publicationId: string, deliveries: readonly DeliveryRecord[], now: number): void {
    const complete = this.db.transaction(() => {
      const add = this.db.prepare(`INSERT OR REPLACE INTO deliveries (message_id, publication_id, mailbox_id, workflow_id,
          mex_partner_id, subscription_ids, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)`);
      for (const d of deliveries) {
        add.run(d.messageId, publicationId, d.mailboxId, d.workflowId, d.mexPartnerId ?? null, JSON.stringify(d.subscriptionIds), d.deliveredAt);
      }
      this.db.prepare(`UPDATE publications SET state = 'delivered', processed_at = ? WHERE id = ?`).run(now, publicationId);
    });
    complete.immediate();
  }

  /** Parks a publication that cannot be processed (kept for audit); `reason` is a fixed description, no content. */
  failPublication(publicationId: string, reason: string, now: number): void {
    this.db.prepare(`UPDATE publications SET state = 'failed', processed_at = ?, failure = ? WHERE id = ?`).run(now, reason, publicationId);
  }

  deliveriesForPublication(publicationId: string): DeliveryRecord[] {
    const rows = this.db
      .prepare<[string], { message_id: string; mailbox_id: string; workflow_id: string; mex_partner_id: string | null; subscription_ids: string; delivered_at: number }>(
        'SELECT * FROM deliveries WHERE publication_id = ? ORDER BY mailbox_id')
      .all(publicationId);
    return rows.map((r) => ({
      messageId: r.message_id,
      mailboxId: r.mailbox_id,
      workflowId: r.workflow_id,
      ...(r.mex_partner_id !== null ? { mexPartnerId: r.mex_partner_id } : {}),
      subscriptionIds: JSON.parse(r.subscription_ids) as string[],
      deliveredAt: r.delivered_at,
    }));
  }

  stats(now = Date.now()): StoreStats {
    const count = (sql: string, ...params: unknown[]): number =>
      (this.db.prepare<unknown[], { n: number }>(sql).get(...params) as { n: number }).n;
    return {
      subscriptions: count('SELECT COUNT(*) AS n FROM subscriptions'),
      activeSubscriptions: count('SELECT COUNT(*) AS n FROM subscriptions WHERE deleted_at IS NULL AND (end_at IS NULL OR end_at > ?)', now),
      subscriptionEvents: count('SELECT COUNT(*) AS n FROM subscription_events'),
      orphanSubscriptionEvents: count(`SELECT COUNT(*) AS n FROM subscription_events e
        WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = e.subscription_id)`),
      subscriptionsWithoutEvents: count(`SELECT COUNT(*) AS n FROM subscriptions s WHERE s.deleted_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM subscription_events e WHERE e.subscription_id = s.id)`),
      publications: count('SELECT COUNT(*) AS n FROM publications'),
      pendingPublications: count(`SELECT COUNT(*) AS n FROM publications WHERE state = 'pending'`),
      deliveries: count('SELECT COUNT(*) AS n FROM deliveries'),
      orphanDeliveries: count(`SELECT COUNT(*) AS n FROM deliveries d
        WHERE NOT EXISTS (SELECT 1 FROM publications p WHERE p.id = d.publication_id)`),
    };
  }

  appliedMigrations(): AppliedMigration[] {
    return this.db
      .prepare<[], { version: number; name: string; applied_at: string }>('SELECT * FROM schema_migrations ORDER BY version')
      .all()
      .map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at }));
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.db.close();
  }
}

/** Two parsed criteria that select the same events: every component equal, event codes and age bounds as sets. */
export function sameCriteria(a: ParsedCriteria, b: ParsedCriteria): boolean {
  const sorted = (values: readonly string[]) => [...values].sort().join('\n');
  const ages = (bounds: ParsedCriteria['ages']) => sorted(bounds.map((bound) => `${bound.comparator}${bound.years}`));
  return (
    a.subscriptionType === b.subscriptionType &&
    a.nhsNumber === b.nhsNumber &&
    a.serviceType === b.serviceType &&
    a.ruleType === b.ruleType &&
    a.organisationCode === b.organisationCode &&
    a.gpRegistration === b.gpRegistration &&
    a.tag === b.tag &&
    sorted(a.eventCodes) === sorted(b.eventCodes) &&
    ages(a.ages) === ages(b.ages)
  );
}

function toSubscription(row: SubscriptionRow): StoredSubscription {
  const parsed: ParsedCriteria = {
    subscriptionType: row.subscription_type,
    eventCodes: row.event_codes ? (JSON.parse(row.event_codes) as string[]) : [],
    ages: JSON.parse(row.ages_json) as AgeBound[],
    ...(row.service_type !== null ? { serviceType: row.service_type as ServiceType } : {}),
    ...(row.nhs_number !== null ? { nhsNumber: row.nhs_number } : {}),
    ...(row.gp_registration !== null ? { gpRegistration: row.gp_registration as 'RegisteredOnly' | 'UnregisteredOnly' } : {}),
    ...(row.rule_type !== null ? { ruleType: row.rule_type as SubscriptionRuleType } : {}),
    ...(row.org_code !== null ? { organisationCode: row.org_code } : {}),
    ...(row.tag !== null ? { tag: row.tag } : {}),
  };
  return {
    id: row.id,
    ownerAsid: row.owner_asid,
    ownerOds: row.owner_ods,
    mailboxId: row.mailbox_id,
    criteria: row.criteria,
    parsed,
    ...(row.end_at !== null ? { endAt: row.end_at } : {}),
    resourceXml: row.resource_xml,
    resourceJson: row.resource_json,
    versionId: row.version_id,
    lastUpdated: row.last_updated,
    createdAt: row.created_at,
    ...(row.deleted_at !== null ? { deletedAt: row.deleted_at } : {}),
  };
}

function toPublication(row: PublicationRow): StoredPublication {
  return {
    id: row.id,
    receivedAt: row.received_at,
    fromAsid: row.from_asid,
    eventCode: row.event_code,
    ...(row.message_header_id !== null ? { messageHeaderId: row.message_header_id } : {}),
    body: row.body,
    state: row.state,
  };
}
