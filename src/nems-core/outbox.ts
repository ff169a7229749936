// MESH-style outbox on disk (docs/specification.md §2.8): `<dataDir>/mesh/<mailboxId>/<messageId>.xml` holds the event XML
// exactly as published and `<messageId>.ctl.json` its MESH metadata. Both are written to `.tmp/`, fsynced and
// renamed; the metadata is renamed last, so a reader that waits for it never sees a partial message.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isMailboxId } from '../nems/identifiers.js';

const MESSAGE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
const CTL_SUFFIX = '.ctl.json';

export interface MeshControl {
  readonly messageId: string;
  readonly mailboxId: string;
  readonly workflowId: string;
  /** `subId|tag` for each matching subscription that has a tag, joined with `~~~`; absent when none has one. */
  readonly mexPartnerId?: string;
  readonly subscriptionIds: readonly string[];
  /** The MessageHeader.id of the event, as a MESH local id. */
  readonly localId?: string;
  /** ISO timestamp of delivery. */
  readonly timestamp: string;
  readonly eventCode: string;
  readonly fromAsid: string;
}

export interface MailboxMessage {
  readonly control: MeshControl;
  readonly xmlPath: string;
  readonly controlPath: string;
}

export function mailboxDir(dataDir: string, mailboxId: string): string {
  if (!isMailboxId(mailboxId)) throw new Error('invalid MESH mailbox id');
  return join(dataDir, 'mesh', mailboxId);
}

/** Writes one message atomically; overwriting the same messageId (a resumed delivery) replaces it whole. */
export function writeMeshMessage(dataDir: string, control: MeshControl, eventXml: Buffer): MailboxMessage {
  if (!MESSAGE_ID_PATTERN.test(control.messageId)) throw new Error('invalid MESH message id');
  const dir = mailboxDir(dataDir, control.mailboxId);
  const tmpDir = join(dir, '.tmp');
  mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
  const xmlPath = join(dir, `${control.messageId}.xml`);
  const controlPath = join(dir, `${control.messageId}${CTL_SUFFIX}`);
  writeDurably(join(tmpDir, `${control.messageId}.xml`), eventXml, xmlPath);
  writeDurably(join(tmpDir, `${control.messageId}${CTL_SUFFIX}`), Buffer.from(`${JSON.stringify(control, null, 2)}\n`), controlPath);
  fsyncDir(dir);
  return { control, xmlPath, controlPath };
}

function writeDurably(tmpPath: string, bytes: Buffer, finalPath: string): void {
  const fd = openSync(tmpPath, 'w', 0o600);
  try {
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmpPath, finalPath);
}

function fsyncDir(dir: string): void {
  // Makes the renames themselves durable; not every platform allows opening a directory, so best effort.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* directory fsync unsupported (e.g. Windows) */
  }
}

/** Every complete message in the mailbox (those whose metadata file exists), oldest first. */
export function listMailbox(dataDir: string, mailboxId: string): MailboxMessage[] {
  const dir = mailboxDir(dataDir, mailboxId);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const messages: MailboxMessage[] = [];
  for (const name of names) {
    if (!name.endsWith(CTL_SUFFIX)) continue;
    const message = readMessage(dir, name);
    if (message) messages.push(message);
  }
  return messages.sort((a, b) => a.control.timestamp.localeCompare(b.control.timestamp) || a.control.messageId.localeCompare(b.control.messageId));
}

function readMessage(dir: string, controlName: string): MailboxMessage | undefined {
  const controlPath = join(dir, controlName);
  try {
    const control = JSON.parse(readFileSync(controlPath, 'utf8')) as MeshControl;
    const messageId = controlName.slice(0, -CTL_SUFFIX.length);
    if (control.messageId !== messageId) return undefined;
    return { control, controlPath, xmlPath: join(dir, `${messageId}.xml`) };
  } catch {
    return undefined; // removed by a consumer between readdir and read, or not ours
  }
}

export interface TailOptions {
  /** Poll interval; polling rather than fs.watch because watch is unreliable across platforms and file systems. */
  readonly intervalMs?: number;
  /** Also report the messages already in the mailbox when tailing starts. */
  readonly includeExisting?: boolean;
}

/** Reports each new message once, until `signal` aborts; resolves then. */
export async function tailMailbox(
  dataDir: string,
  mailboxId: string,
  onMessage: (message: MailboxMessage) => void,
  signal: AbortSignal,
  options: TailOptions = {},
): Promise<void> {
  const intervalMs = options.intervalMs ?? 250;
  const seen = new Set<string>();
  if (!options.includeExisting) for (const m of listMailbox(dataDir, mailboxId)) seen.add(m.control.messageId);
  while (!signal.aborted) {
    for (const message of listMailbox(dataDir, mailboxId)) {
      if (seen.has(message.control.messageId)) continue;
      seen.add(message.control.messageId);
      onMessage(message);
    }
    await sleep(intervalMs, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
