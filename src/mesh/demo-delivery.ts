// The demo's delivery step when core.delivery is mesh: the subscriber's inbox is read through the MESH API with the
// subscriber mailbox's own password, the event checked byte for byte, then acknowledged.
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { MeshClient, readMeshCredentials } from './client.js';

export interface MeshDemoResult {
  readonly ok: boolean;
  readonly detail: string;
}

export async function awaitMeshDelivery(config: Config, mailboxId: string, passwordFile: string | undefined, expected: Buffer, attempts = 100): Promise<MeshDemoResult> {
  const mesh = config.core.mesh;
  if (!mesh) return { ok: false, detail: 'core.mesh is not configured' };
  if (!passwordFile) return { ok: false, detail: `pass --mailbox-password-file F (the password of ${mailboxId}) to read its MESH inbox` };
  const client = new MeshClient(
    { url: mesh.url, timeoutMs: mesh.timeoutMs, maxChunkBytes: mesh.maxChunkBytes, ...(mesh.tls ? { tls: mesh.tls } : {}) },
    readMeshCredentials(mesh, resolve(passwordFile), mailboxId),
  );
  try {
    for (let i = 0; i < attempts; i++) {
      for (const id of await client.listInbox()) {
        const message = await client.download(id);
        if (!message.body.equals(expected)) continue;
        await client.acknowledge(id);
        return { ok: true, detail: `MESH message ${id}, workflow ${message.headers['mex-workflowid'] ?? '-'}, ${message.chunks} chunk(s), identical to the published event; acknowledged` };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ok: false, detail: `no message with the published event in MESH mailbox ${mailboxId}` };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  } finally {
    await client.close();
  }
}
