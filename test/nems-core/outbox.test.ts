import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listMailbox, mailboxDir, tailMailbox, writeMeshMessage, type MailboxMessage, type MeshControl } from '../../src/nems-core/outbox.js';
import { tempDataDir } from './helpers.js';

let dataDir: { dir: string; cleanup: () => void };

beforeEach(() => {
  dataDir = tempDataDir();
});

afterEach(() => {
  dataDir.cleanup();
});

function control(messageId: string, extra: Partial<MeshControl> = {}): MeshControl {
  return {
    messageId, mailboxId: 'A83627MB001', workflowId: 'VACCINATIONS_1', subscriptionIds: ['a'.repeat(32)],
    timestamp: new Date().toISOString(), eventCode: 'vaccinations-1', fromAsid: '200000000102', ...extra,
  };
}

/** An event-sized body whose completeness a reader can check: fixed length, ends with </Bundle>. */
function body(size: number, fill: string): Buffer {
  const head = Buffer.from('<Bundle xmlns="http://hl7.org/fhir">');
  const tail = Buffer.from('</Bundle>');
  return Buffer.concat([head, Buffer.alloc(size - head.length - tail.length, fill), tail]);
}

/**
 * Polls the mailbox folder from another thread as fast as it can, counting any .xml it reads incomplete and any
 * metadata file whose .xml is missing or incomplete. Stops when the shared flag is set.
 */
const READER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { dir, size, flag } = workerData;
const stop = new Int32Array(flag);
const tail = Buffer.from('</Bundle>');
const r = { scans: 0, xmlSeen: 0, ctlSeen: 0, partialXml: 0, ctlWithoutXml: 0, badCtl: 0 };
parentPort.postMessage('ready');
const complete = (b) => b.length === size && b.subarray(b.length - tail.length).equals(tail);
// Each file is verified once it has been seen complete, so a scan is cheap and the reader polls many times a write.
const verified = new Set();
function scan() {
  r.scans++;
  let names = [];
  try { names = fs.readdirSync(dir); } catch { return; }
  for (const n of names) {
    if (verified.has(n)) continue;
    if (n.endsWith('.ctl.json')) {
      r.ctlSeen++;
      let ctl;
      try { ctl = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')); } catch { r.badCtl++; continue; }
      try {
        if (complete(fs.readFileSync(path.join(dir, ctl.messageId + '.xml')))) verified.add(n); else r.partialXml++;
      } catch { r.ctlWithoutXml++; }
    } else if (n.endsWith('.xml')) {
      r.xmlSeen++;
      try { if (complete(fs.readFileSync(path.join(dir, n)))) verified.add(n); else r.partialXml++; } catch {}
    }
  }
}
while (Atomics.load(stop, 0) === 0 && r.scans < 5000000) scan();
scan(); // once more after the writer finished, so every message is verified
r.verifiedMessages = [...verified].filter((n) => n.endsWith('.ctl.json')).length;
parentPort.postMessage(r);
`;

describe('MESH-style outbox', () => {
  it('writes the event XML bytes unchanged plus a metadata file, and lists complete messages oldest first', () => {
    const xml = body(2048, 'x');
    writeMeshMessage(dataDir.dir, control('M2', { timestamp: '2024-01-01T00:00:02.000Z', mexPartnerId: 's1|t1~~~s2|t2', localId: 'h1' }), xml);
    writeMeshMessage(dataDir.dir, control('M1', { timestamp: '2024-01-01T00:00:01.000Z' }), xml);
    const messages = listMailbox(dataDir.dir, 'A83627MB001');
    expect(messages.map((m) => m.control.messageId)).toEqual(['M1', 'M2']);
    expect(readFileSync(messages[1]!.xmlPath).equals(xml)).toBe(true);
    expect(JSON.parse(readFileSync(messages[1]!.controlPath, 'utf8'))).toMatchObject({ workflowId: 'VACCINATIONS_1', mexPartnerId: 's1|t1~~~s2|t2', localId: 'h1' });
    // Nothing is left in the temp folder, and a mailbox nobody wrote to is empty.
    expect(readdirSync(join(mailboxDir(dataDir.dir, 'A83627MB001'), '.tmp'))).toEqual([]);
    expect(listMailbox(dataDir.dir, 'RX3EPMB001')).toEqual([]);
  });

  it('refuses mailbox and message ids that could escape the mailbox folder', () => {
    expect(() => mailboxDir(dataDir.dir, '../etc')).toThrow();
    expect(() => writeMeshMessage(dataDir.dir, control('../x'), body(64, 'x'))).toThrow();
    expect(existsSync(join(dataDir.dir, 'etc'))).toBe(false);
  });

  it('a concurrent reader never sees a partial .xml or a metadata file without its complete .xml', async () => {
    const size = 256 * 1024;
    const dir = mailboxDir(dataDir.dir, 'A83627MB001');
    const flag = new SharedArrayBuffer(4);
    const reader = new Worker(READER, { eval: true, workerData: { dir, size, flag } });
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => { onReady = resolve; });
    const report = new Promise<Record<string, number>>((resolve, reject) => {
      reader.on('message', (m: unknown) => (m === 'ready' ? onReady() : resolve(m as Record<string, number>)));
      reader.once('error', reject);
    });
    await ready;
    try {
      for (let i = 0; i < 40; i++) {
        writeMeshMessage(dataDir.dir, control(`MSG${String(i).padStart(3, '0')}`), body(size, String.fromCharCode(97 + (i % 26))));
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      Atomics.store(new Int32Array(flag), 0, 1);
    }
    const r = await report;
    await reader.terminate();
    expect(r.scans).toBeGreaterThan(40);
    expect(r).toMatchObject({ verifiedMessages: 40, partialXml: 0, ctlWithoutXml: 0, badCtl: 0 });
    expect(listMailbox(dataDir.dir, 'A83627MB001')).toHaveLength(40);
  });

  it('tailMailbox reports each new message once and stops when aborted', async () => {
    writeMeshMessage(dataDir.dir, control('OLD'), body(64, 'o'));
    const seen: MailboxMessage[] = [];
    const abort = new AbortController();
    const tailing = tailMailbox(dataDir.dir, 'A83627MB001', (m) => seen.push(m), abort.signal, { intervalMs: 5 });
    writeMeshMessage(dataDir.dir, control('NEW1'), body(64, 'a'));
    writeMeshMessage(dataDir.dir, control('NEW2'), body(64, 'b'));
    for (let i = 0; i < 200 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    abort.abort();
    await tailing;
    expect(seen.map((m) => m.control.messageId).sort()).toEqual(['NEW1', 'NEW2']);
  });
});
