// MESH delivery from the embedded core (core.delivery mesh). The core's SQLite store is the source of truth: each
// matched (event, mailbox) becomes one mesh_outbox row, keyed by the core's deterministic message id, in the same
// step that marks the publication delivered (a re-run after a crash inserts nothing new). A sender loop then moves
// each row queued → sending → sent through the MESH API, recording progress after every chunk:
//   - before the first chunk is POSTed the row is marked `sending`; a crash or an answer that may hide a success
//     (5xx, timeout, reset) leaves it there without a MESH id, and the next attempt asks MESH tracking for the row's
//     mex-LocalID before sending again — so a message MESH accepted is never sent twice;
//   - chunk n > 1 is resumed from the last recorded chunk (re-POSTing a chunk is harmless);
//   - 429/408/5xx/network failures retry with exponential backoff and jitter; other 4xx park the row `failed`.
// Several processes may share the data directory: a row is leased before it is worked on.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { MeshDeliveryConfig } from '../config/schema.js';
import { MeshClient, MeshError, readMeshCredentials, type MeshCredentials } from '../mesh/client.js';
import type { CoreLogger } from './core.js';
import type { MeshControl } from './outbox.js';
import { STORE_FILE_NAME } from './store.js';

const LEASE_MS = 120_000;
const BATCH = 20;

export type MeshOutboxState = 'queued' | 'sending' | 'sent' | 'failed';

export interface MeshOutboxRow {
  readonly messageId: string;
  readonly publicationId: string;
  readonly mailboxId: string;
  readonly workflowId: string;
  readonly mexPartnerId?: string;
  readonly subject?: string;
  readonly state: MeshOutboxState;
  readonly meshMessageId?: string;
  readonly chunkBytes?: number;
  readonly chunksTotal?: number;
  readonly chunksSent: number;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError?: string;
}

interface Row {
  message_id: string; publication_id: string; mailbox_id: string; workflow_id: string; mex_partner_id: string | null;
  subject: string | null; state: MeshOutboxState; mesh_message_id: string | null; chunk_bytes: number | null;
  chunks_total: number | null; chunks_sent: number; attempts: number; next_attempt_at: number; last_error: string | null;
}

export interface MeshSenderOptions {
  readonly dataDir: string;
  readonly mesh: MeshDeliveryConfig;
  readonly logger?: CoreLogger;
  readonly now?: () => number;
  /** Stand-in credentials (tests); read from the files config names when absent. */
  readonly credentials?: MeshCredentials;
  /** Randomness for backoff jitter (tests pin it). */
  readonly random?: () => number;
}

/** The mesh_outbox table and the loop that empties it through the MESH API. */
export class MeshOutbox {
  private readonly db: BetterSqlite3.Database;
  private readonly client: MeshClient;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly owner = `${process.pid}-${randomUUID()}`;
  private running: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: MeshSenderOptions) {
    // Opened after the core's store, which created the file and applied the migrations.
    this.db = new Database(join(options.dataDir, STORE_FILE_NAME));
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const mesh = options.mesh;
    this.client = new MeshClient(
      { url: mesh.url, timeoutMs: mesh.timeoutMs, maxChunkBytes: mesh.maxChunkBytes, ...(mesh.tls ? { tls: mesh.tls } : {}) },
      options.credentials ?? readMeshCredentials(mesh),
      this.now,
    );
  }

  /** The core's `deliver` hook: records one message durably (idempotent per message id) and wakes the sender. */
  readonly enqueue = (control: MeshControl, _body: Buffer, publicationId: string): void => {
    this.db
      .prepare(`INSERT OR IGNORE INTO mesh_outbox (message_id, publication_id, mailbox_id, workflow_id, mex_partner_id, subject,
                state, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)`)
      .run(control.messageId, publicationId, control.mailboxId, control.workflowId, control.mexPartnerId ?? null, control.eventCode, this.now(), this.now());
    this.wake();
  };

  /** Handshake (logged, not fatal: MESH may come later), then the sender loop and its poll timer. */
  async start(): Promise<void> {
    try {
      await this.client.handshake();
      this.options.logger?.info({ mailbox: this.client.mailboxId }, 'MESH handshake accepted');
    } catch (err) {
      this.options.logger?.warn({ mailbox: this.client.mailboxId, problem: (err as Error).message }, 'MESH handshake failed; sending will retry');
    }
    const poll = () => {
      if (this.closed) return;
      this.wake();
      this.timer = setTimeout(poll, this.options.mesh.pollIntervalMs);
      this.timer.unref();
    };
    poll();
  }

  /** Runs the sender now (or again after the current pass). */
  wake(): void {
    this.dirty = true;
    if (this.running || this.closed) return;
    this.running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.drain())
      .catch((err: unknown) => this.options.logger?.error({ err: (err as Error).name }, 'MESH sender loop failed'))
      .finally(() => {
        this.running = undefined;
        if (this.dirty && !this.closed) this.wake();
      });
  }

  /** Resolves when no send is in progress and nothing is due now (tests, demo). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  rows(): MeshOutboxRow[] {
    return this.db.prepare<[], Row>('SELECT * FROM mesh_outbox ORDER BY created_at, message_id').all().map(toRow);
  }

  private async drain(): Promise<void> {
    while (this.dirty && !this.closed) {
      this.dirty = false;
      for (;;) {
        if (this.closed) return;
        const due = this.db
          .prepare<[number, number], Row>(`SELECT * FROM mesh_outbox WHERE state IN ('queued', 'sending') AND next_attempt_at <= ?
            AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at, message_id LIMIT ${BATCH}`)
          .all(this.now(), this.now());
        if (due.length === 0) break;
        for (const row of due) {
          if (this.closed) return;
          if (this.claim(row.message_id)) await this.send(toRow(row));
        }
      }
    }
  }

  private claim(messageId: string): boolean {
    const now = this.now();
    return this.db
      .prepare(`UPDATE mesh_outbox SET lease_owner = ?, lease_until = ? WHERE message_id = ? AND state IN ('queued', 'sending')
                AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)`)
      .run(this.owner, now + LEASE_MS, messageId, now, this.owner).changes === 1;
  }

  private update(messageId: string, fields: Record<string, string | number | null>): void {
    const names = Object.keys(fields);
    this.db.prepare(`UPDATE mesh_outbox SET ${names.map((n) => `${n} = ?`).join(', ')} WHERE message_id = ?`).run(...names.map((n) => fields[n]!), messageId);
  }

  private async send(row: MeshOutboxRow): Promise<void> {
    const log = this.options.logger;
    const body = this.db.prepare<[string], { body: Buffer }>('SELECT body FROM publications WHERE id = ?').get(row.publicationId)?.body;
    if (!body) return this.park(row, 'publication body missing');
    const chunkBytes = row.chunkBytes ?? this.options.mesh.maxChunkBytes;
    const total = row.chunksTotal ?? Math.max(1, Math.ceil(body.length / chunkBytes));
    const chunk = (n: number) => body.subarray((n - 1) * chunkBytes, n * chunkBytes);
    let meshMessageId = row.meshMessageId;
    let sent = row.chunksSent;
    try {
      if (meshMessageId === undefined && row.state === 'sending') {
        // An earlier first-chunk POST may have been accepted: MESH tracking by mex-LocalID decides.
        const tracked = await this.client.trackByLocalId(row.messageId);
        if (tracked) {
          meshMessageId = tracked.messageId;
          sent = 1;
          this.update(row.messageId, { mesh_message_id: meshMessageId, chunks_sent: 1 });
          log?.info({ messageId: row.messageId, meshMessageId }, 'MESH already holds this message; not sending it again');
        }
      }
      if (meshMessageId === undefined) {
        // Committed before the POST: from here on a crash leaves a row that tracking must clear before a resend.
        this.update(row.messageId, { state: 'sending', chunk_bytes: chunkBytes, chunks_total: total });
        meshMessageId = await this.client.sendFirstChunk({
          to: row.mailboxId, workflowId: row.workflowId, localId: row.messageId, fileName: `${row.messageId}.xml`,
          contentType: 'application/fhir+xml', ...(row.subject ? { subject: row.subject } : {}), ...(row.mexPartnerId ? { partnerId: row.mexPartnerId } : {}),
        }, chunk(1), total);
        sent = 1;
        this.update(row.messageId, { mesh_message_id: meshMessageId, chunks_sent: 1 });
      }
      for (let n = sent + 1; n <= total; n++) {
        try {
          await this.client.sendChunk(meshMessageId, n, total, chunk(n));
        } catch (err) {
          // 423: MESH no longer takes chunks because it already has them all (an earlier POST of the last one landed).
          if (!(err instanceof MeshError && err.status === 423 && n === total)) throw err;
        }
        this.update(row.messageId, { chunks_sent: n });
      }
      this.update(row.messageId, { state: 'sent', sent_at: this.now(), last_error: null, lease_until: null });
      log?.info({ messageId: row.messageId, meshMessageId, mailbox: row.mailboxId, workflowId: row.workflowId, chunks: total }, 'event sent through MESH');
    } catch (err) {
      const meshError = err instanceof MeshError ? err : new MeshError('MESH send failed', undefined, true, true, { cause: err });
      const attempts = row.attempts + 1;
      if (!meshError.retryable) return this.park({ ...row, attempts }, meshError.message);
      if (attempts >= this.options.mesh.maxAttempts) return this.park({ ...row, attempts }, `gave up after ${attempts} attempts: ${meshError.message}`);
      const backoff = Math.min(this.options.mesh.maxBackoffMs, this.options.mesh.initialBackoffMs * 2 ** Math.max(0, attempts - 1));
      const delay = Math.round(backoff * (0.5 + this.random() / 2));
      // Without a MESH id and with a definite failure the message was not accepted: back to queued.
      const state = meshMessageId === undefined && !meshError.ambiguous ? 'queued' : 'sending';
      this.update(row.messageId, { state, attempts, next_attempt_at: this.now() + delay, last_error: meshError.message.slice(0, 300), lease_until: null });
      log?.warn({ messageId: row.messageId, mailbox: row.mailboxId, attempts, retryInMs: delay, problem: meshError.message }, 'MESH send failed; will retry');
    }
  }

  private park(row: Pick<MeshOutboxRow, 'messageId' | 'mailboxId' | 'attempts'>, reason: string): void {
    this.update(row.messageId, { state: 'failed', attempts: row.attempts, last_error: reason.slice(0, 300), lease_until: null });
    this.options.logger?.error({ messageId: row.messageId, mailbox: row.mailboxId, problem: reason }, 'MESH message parked as failed');
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.idle();
    await this.client.close();
    this.db.close();
  }
}

function toRow(r: Row): MeshOutboxRow {
  return {
    messageId: r.message_id, publicationId: r.publication_id, mailboxId: r.mailbox_id, workflowId: r.workflow_id,
    ...(r.mex_partner_id !== null ? { mexPartnerId: r.mex_partner_id } : {}),
    ...(r.subject !== null ? { subject: r.subject } : {}),
    state: r.state,
    ...(r.mesh_message_id !== null ? { meshMessageId: r.mesh_message_id } : {}),
    ...(r.chunk_bytes !== null ? { chunkBytes: r.chunk_bytes } : {}),
    ...(r.chunks_total !== null ? { chunksTotal: r.chunks_total } : {}),
    chunksSent: r.chunks_sent, attempts: r.attempts, nextAttemptAt: r.next_attempt_at,
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
  };
}

export interface MeshDeliveryHook {
  /** The core's `deliver` option. */
  readonly deliver: (control: MeshControl, body: Buffer, publicationId: string) => void;
  /**
   * Opens the outbox on the core's store and starts the sender. Call it right after creating the core, before any
   * other await: the outbox is opened synchronously, ahead of the core's first delivery pass.
   */
  open(): Promise<void>;
  close(): Promise<void>;
}

/** core.delivery mesh for a core about to be built (the embedded upstream, `nems-gateway core`). */
export function meshDeliveryHook(dataDir: string, mesh: MeshDeliveryConfig, logger?: CoreLogger): MeshDeliveryHook {
  let outbox: MeshOutbox | undefined;
  return {
    deliver: (control, body, publicationId) => {
      if (!outbox) throw new Error('MESH outbox is not open');
      outbox.enqueue(control, body, publicationId);
    },
    open: () => {
      outbox = new MeshOutbox({ dataDir, mesh, ...(logger ? { logger } : {}) });
      return outbox.start();
    },
    close: async () => {
      await outbox?.close();
    },
  };
}
