import { describe, expect, it } from 'vitest';
import { meshAuthorization, meshTimestamp, parseMeshAuthorization } from '../../src/mesh/auth.js';

// Vectors computed with the reference algorithm, NHSDigital/mesh-sandbox (commit 422c7d9)
// src/mesh_sandbox/common/__init__.py generate_cipher_text — the same HMAC NHSDigital/mesh-client's
// AuthTokenGenerator signs: HMAC-SHA256(shared key, "mailbox:nonce:count:password:timestamp"), hex. The MESH API
// documentation describes the scheme but publishes no worked example with its key and password.
describe('NHSMESH Authorization header', () => {
  it('matches the reference HMAC for the sandbox\'s test mailbox and key', () => {
    const header = meshAuthorization({
      mailboxId: 'X26ABC1', password: 'password', sharedKey: 'TestKey',
      nonce: '3e8b7f4c-6f1e-4a53-9d1c-2b7a3f0e9c11', nonceCount: 0, timestamp: '202401151030',
    });
    expect(header).toBe('NHSMESH X26ABC1:3e8b7f4c-6f1e-4a53-9d1c-2b7a3f0e9c11:0:202401151030:dc97adc2a337b9730c4cb76d93c8a7115302833e00e6010fa1201633f2248302');
  });

  it('matches a second vector (count 1, the sandbox example nonce and timestamp)', () => {
    const header = meshAuthorization({
      mailboxId: 'MAILBOX01', password: 'pass123', sharedKey: 'BackBone',
      nonce: '2c001608-5f09-4840-9611-bea43e666a30', nonceCount: 1, timestamp: '201511201038',
    });
    expect(header.endsWith(':8a509135772a7c2a37cfa895ce75d9776fad5e6decb65a50a9a0a37fa1341a6b')).toBe(true);
    expect(parseMeshAuthorization(header)).toEqual({
      mailboxId: 'MAILBOX01', nonce: '2c001608-5f09-4840-9611-bea43e666a30', nonceCount: '1', timestamp: '201511201038',
      hash: '8a509135772a7c2a37cfa895ce75d9776fad5e6decb65a50a9a0a37fa1341a6b',
    });
  });

  it('formats the timestamp as yyyyMMddHHmm in UTC', () => {
    expect(meshTimestamp(Date.UTC(2025, 0, 2, 3, 4, 59))).toBe('202501020304');
  });

  it('refuses a malformed header', () => {
    expect(parseMeshAuthorization('Basic abc')).toBeUndefined();
    expect(parseMeshAuthorization('NHSMESH MB:nonce:x:202401151030:abc')).toBeUndefined();
  });
});
