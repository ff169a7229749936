// `nems-gateway mailbox <id> --mesh --password-file F [--ack] [--save DIR] [--config F]`: reads a MESH inbox through
// the MESH API named in core.mesh (URL, mTLS, shared key), with the given mailbox's own password. One line per
// message (MESH message id, workflow id, mex-LocalID, mex-PartnerID, bytes, chunks); --save writes each body to
// DIR/<message id>.xml, --ack acknowledges each message once it has been downloaded (and saved).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { MeshClient, readMeshCredentials, type DownloadedMessage } from './client.js';

export function formatMeshLine(message: DownloadedMessage): string {
  const h = message.headers;
  return `${message.messageId}  ${h['mex-workflowid'] ?? '-'}  mex-LocalID=${h['mex-localid'] ?? '-'}  mex-PartnerID=${h['mex-partnerid'] ?? '-'}  ${message.body.length} bytes  ${message.chunks} chunk(s)`;
}

export async function runMeshMailbox(
  mailboxId: string,
  options: { readonly 'password-file'?: string; readonly save?: string; readonly ack?: true },
  config: Config | undefined,
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  err: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<number> {
  const mesh = config?.core.mesh;
  if (!mesh) {
    err('nems-gateway mailbox --mesh: the configuration has no core.mesh (MESH URL, TLS, shared key); pass --config F');
    return 2;
  }
  if (typeof options['password-file'] !== 'string') {
    err('nems-gateway mailbox --mesh: --password-file F (the password of the mailbox read) is required');
    return 2;
  }
  const saveDir = typeof options.save === 'string' ? resolve(options.save) : undefined;
  const client = new MeshClient(
    { url: mesh.url, timeoutMs: mesh.timeoutMs, maxChunkBytes: mesh.maxChunkBytes, ...(mesh.tls ? { tls: mesh.tls } : {}) },
    readMeshCredentials(mesh, resolve(options['password-file']), mailboxId),
  );
  try {
    const ids = await client.listInbox();
    if (ids.length === 0) err(`MESH mailbox ${mailboxId}: no messages`);
    if (saveDir) mkdirSync(saveDir, { recursive: true, mode: 0o700 });
    for (const id of ids) {
      const message = await client.download(id);
      out(formatMeshLine(message));
      if (saveDir) writeFileSync(join(saveDir, `${id.replace(/[^A-Za-z0-9_-]/g, '_')}.xml`), message.body, { mode: 0o600 });
      if (options.ack === true) await client.acknowledge(id);
    }
    return 0;
  } catch (e) {
    err(`nems-gateway mailbox --mesh: ${(e as Error).message}`);
    return 1;
  } finally {
    await client.close();
  }
}
