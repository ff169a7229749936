// The MESH API `Authorization: NHSMESH …` header: mailbox id, a nonce, a nonce count and a UTC minute timestamp,
// signed with HMAC-SHA256 keyed by the environment's shared key over `mailbox:nonce:count:password:timestamp`
// (MESH API docs; NHSDigital/mesh-client AuthTokenGenerator, NHSDigital/mesh-sandbox generate_cipher_text).
import { createHmac, randomUUID } from 'node:crypto';

export interface MeshAuthParts {
  readonly mailboxId: string;
  readonly password: string;
  readonly sharedKey: string;
  readonly nonce: string;
  readonly nonceCount: number;
  /** `yyyyMMddHHmm` in UTC. */
  readonly timestamp: string;
}

export const MESH_AUTH_SCHEME = 'NHSMESH';

export function meshTimestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 16).replace(/[-T:]/g, '');
}

export function meshAuthorization(parts: MeshAuthParts): string {
  const hash = createHmac('sha256', Buffer.from(parts.sharedKey, 'utf8'))
    .update(`${parts.mailboxId}:${parts.nonce}:${parts.nonceCount}:${parts.password}:${parts.timestamp}`, 'utf8')
    .digest('hex');
  return `${MESH_AUTH_SCHEME} ${parts.mailboxId}:${parts.nonce}:${parts.nonceCount}:${parts.timestamp}:${hash}`;
}

/** One header per request: a fresh nonce each time, so no token is ever replayed. */
export function meshAuthorizationNow(credentials: Pick<MeshAuthParts, 'mailboxId' | 'password' | 'sharedKey'>, now: number): string {
  return meshAuthorization({ ...credentials, nonce: randomUUID(), nonceCount: 0, timestamp: meshTimestamp(now) });
}

/** Splits a header back into its parts (the double checks what clients send); undefined when malformed. */
export function parseMeshAuthorization(header: string): { mailboxId: string; nonce: string; nonceCount: string; timestamp: string; hash: string } | undefined {
  const match = /^NHSMESH ([^:\s]+):([^:\s]+):(\d+):(\d{12}):([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!match) return undefined;
  const [, mailboxId, nonce, nonceCount, timestamp, hash] = match;
  return { mailboxId: mailboxId!, nonce: nonce!, nonceCount: nonceCount!, timestamp: timestamp!, hash: hash! };
}
