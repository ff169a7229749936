// Issue 13, D14: a delivery claimed by a process that then died (SIGKILL) is picked up once the claim expires,
// on a timer, without waiting for another publish. A real child process publishes, claims the delivery (stuck on a
// patient directory that never answers) and is killed; a restarted core on the same data directory must deliver.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listMailbox } from '../../src/nems-core/outbox.js';
import { STORE_FILE_NAME } from '../../src/nems-core/store.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { GP, explicitCriteria, openCore, subscribe, tempDataDir, vaccinationEvent } from './helpers.js';

const CHILD = fileURLToPath(new URL('./claiming-core-child.mjs', import.meta.url));
const LEASE_MS = 1500;

let dataDir: ReturnType<typeof tempDataDir>;
beforeEach(() => {
  dataDir = tempDataDir();
});
afterEach(() => dataDir.cleanup());

/** Runs the child until it has claimed the delivery, then kills it with SIGKILL. */
async function publishAndDieHoldingTheClaim(dir: string): Promise<void> {
  if (!existsSync(join(PROJECT_ROOT, 'dist', 'src', 'nems-core', 'core.js'))) throw new Error('dist/ is missing: build first (npm test builds before running vitest)');
  const eventFile = join(dir, 'event.xml');
  writeFileSync(eventFile, vaccinationEvent());
  const child = spawn(process.execPath, [CHILD, dir, eventFile, String(LEASE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('claimed')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code} before claiming: ${out}`)));
    setTimeout(() => reject(new Error('child did not claim the delivery in time')), 15_000).unref();
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
}

function publicationRow(dir: string): { state: string; lease_owner: string | null; lease_until: number | null } {
  const db = new Database(join(dir, STORE_FILE_NAME), { readonly: true });
  try {
    return db.prepare('SELECT state, lease_owner, lease_until FROM publications').get() as never;
  } finally {
    db.close();
  }
}

describe('delivery claims of a process killed with SIGKILL', () => {
  it('are picked up on a timer once they expire, without another publish', async () => {
    const setup = openCore(dataDir.dir);
    await subscribe(setup, GP, explicitCriteria());
    await setup.close();

    await publishAndDieHoldingTheClaim(dataDir.dir);
    const claimed = publicationRow(dataDir.dir);
    expect(claimed.state).toBe('pending');
    expect(claimed.lease_owner).toMatch(/^\d+-/);
    expect(claimed.lease_until).toBeGreaterThan(Date.now());

    // The restarted core starts while the dead process's claim is still live: nothing to deliver yet.
    const restarted = openCore(dataDir.dir, { deliverySweepMs: 200 });
    try {
      await restarted.idle();
      expect(listMailbox(dataDir.dir, GP.mailbox)).toHaveLength(0);
      expect(restarted.stats().pendingPublications).toBe(1);
      // No publish, no request: only the core's own timer can deliver it once the claim has expired.
      const deadline = Math.min(claimed.lease_until!, Date.now() + LEASE_MS) + 5000;
      while (listMailbox(dataDir.dir, GP.mailbox).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(listMailbox(dataDir.dir, GP.mailbox)).toHaveLength(1);
      expect(Date.now()).toBeGreaterThanOrEqual(claimed.lease_until!);
      await restarted.idle();
      expect(restarted.stats().pendingPublications).toBe(0);
      expect(publicationRow(dataDir.dir).state).toBe('delivered');
    } finally {
      await restarted.close();
    }
  });
});
