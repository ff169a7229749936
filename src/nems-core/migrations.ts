// Versioned schema of the embedded NEMS core's SQLite store. Append new migrations; never edit an applied one.
import type BetterSqlite3 from 'better-sqlite3';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'subscriptions',
    sql: `
      CREATE TABLE subscriptions (
        id               TEXT PRIMARY KEY,             -- logical id: 32 lower-case hex
        owner_asid       TEXT NOT NULL,                -- fromASID that created it; only it may see it
        owner_ods        TEXT NOT NULL,                -- ODS code of contact[0]
        mailbox_id       TEXT NOT NULL,                -- channel.endpoint
        criteria         TEXT NOT NULL,                -- criteria string exactly as sent
        subscription_type TEXT NOT NULL CHECK (subscription_type IN ('explicit', 'generic')),
        nhs_number       TEXT,                         -- explicit only
        rule_type        TEXT,                         -- generic only
        org_code         TEXT,                         -- generic only
        service_type     TEXT,
        ages_json        TEXT NOT NULL DEFAULT '[]',
        gp_registration  TEXT,
        tag              TEXT,
        end_at           INTEGER,                      -- epoch ms after which it no longer matches; NULL = never
        resource_xml     TEXT NOT NULL,
        resource_json    TEXT NOT NULL,
        version_id       TEXT NOT NULL,
        last_updated     TEXT NOT NULL,                -- FHIR instant
        created_at       INTEGER NOT NULL,
        deleted_at       INTEGER
      );
      CREATE INDEX subscriptions_owner ON subscriptions (owner_asid, id);
      CREATE INDEX subscriptions_explicit ON subscriptions (nhs_number) WHERE deleted_at IS NULL;
      CREATE TABLE subscription_events (
        subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
        event_code      TEXT NOT NULL,
        PRIMARY KEY (subscription_id, event_code)
      );
      CREATE INDEX subscription_events_code ON subscription_events (event_code, subscription_id);
    `,
  },
  {
    version: 2,
    name: 'publications and deliveries',
    sql: `
      CREATE TABLE publications (
        id             TEXT PRIMARY KEY,
        received_at    INTEGER NOT NULL,
        from_asid      TEXT NOT NULL,
        event_code     TEXT NOT NULL,
        message_header_id TEXT,
        body           BLOB NOT NULL,                  -- the event XML bytes exactly as published
        state          TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        processed_at   INTEGER,
        failure        TEXT,
        lease_owner    TEXT,                           -- process delivering it (several workers share one store)
        lease_until    INTEGER                         -- epoch ms; an expired lease may be taken over
      );
      CREATE INDEX publications_pending ON publications (state, received_at);
      CREATE TABLE deliveries (
        message_id      TEXT PRIMARY KEY,
        publication_id  TEXT NOT NULL REFERENCES publications (id) ON DELETE CASCADE,
        mailbox_id      TEXT NOT NULL,
        workflow_id     TEXT NOT NULL,
        mex_partner_id  TEXT,
        subscription_ids TEXT NOT NULL,                -- JSON array
        delivered_at    INTEGER NOT NULL,
        UNIQUE (publication_id, mailbox_id)            -- one copy per mailbox per publish
      );
      CREATE INDEX deliveries_mailbox ON deliveries (mailbox_id, delivered_at);
    `,
  },
  {
    version: 3,
    name: 'MESH outbox',
    sql: `
      CREATE TABLE mesh_outbox (
        message_id      TEXT PRIMARY KEY,              -- deliveries.message_id; sent as mex-LocalID
        publication_id  TEXT NOT NULL REFERENCES publications (id) ON DELETE CASCADE,
        mailbox_id      TEXT NOT NULL,                 -- recipient (mex-To)
        workflow_id     TEXT NOT NULL,
        mex_partner_id  TEXT,
        subject         TEXT,
        state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
        mesh_message_id TEXT,                          -- MESH's id, once the first chunk was accepted
        chunk_bytes     INTEGER,                       -- fixed at the first attempt, so a resumed send splits alike
        chunks_total    INTEGER,
        chunks_sent     INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        lease_owner     TEXT,
        lease_until     INTEGER,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER,
        UNIQUE (publication_id, mailbox_id)            -- one MESH message per mailbox per publish
      );
      CREATE INDEX mesh_outbox_due ON mesh_outbox (state, next_attempt_at);
    `,
  },
];

/**
 * Applies every migration not yet recorded in schema_migrations, each in its own IMMEDIATE transaction so two
 * processes opening the same data directory cannot apply one twice. Returns the versions applied now.
 */
export function applyMigrations(db: BetterSqlite3.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const isApplied = db.prepare<[number], { version: number }>('SELECT version FROM schema_migrations WHERE version = ?');
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const applied: number[] = [];
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  for (const migration of ordered) {
    const apply = db.transaction(() => {
      if (isApplied.get(migration.version)) return false;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, new Date().toISOString());
      return true;
    });
    if (apply.immediate()) applied.push(migration.version);
  }
  return applied;
}
