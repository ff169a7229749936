// The issue-3 policy cases as a reusable end-to-end check (same rules as test/e2e/policy.e2e.test.ts), so other
// deployments of the gateway (cluster mode) can be held to identical outcomes.
import type { PolicyCase } from '../pipeline/policy-cases.js';
import { send, spineCodeOf, type CountingUpstream, type Pki } from './e2e.js';
import { policyBody } from './policy-bodies.js';

export interface PolicyOutcome {
  readonly status: number;
  readonly code: string | undefined;
  /** Requests the upstream received for this case. */
  readonly forwarded: number;
  /** The forwarded body equals the client's bytes (pass cases). */
  readonly bodyIntact?: boolean;
}

/** Sends one case on a new TLS connection and reports what happened (the upstream is reset first). */
export async function runPolicyCase(pki: Pki, port: number, upstream: CountingUpstream, c: PolicyCase): Promise<PolicyOutcome> {
  await upstream.reset();
  const body = c.body ? policyBody(c, c.body) : undefined;
  const res = await send(pki, port, {
    client: c.endpoint, method: c.method, path: c.path,
    headers: c.headers.map(([n, v]) => [n, v] as [string, string]),
    ...(body ? { body } : {}),
  });
  const stats = await upstream.stats();
  const received = stats.received[0];
  return {
    status: res.status,
    code: c.method === 'HEAD' ? (c.expect === 'pass' ? undefined : c.expect.code) : spineCodeOf(res.text),
    forwarded: stats.count,
    ...(received ? { bodyIntact: Buffer.from(received.body, 'base64').equals(body ?? Buffer.alloc(0)) } : {}),
  };
}

/** What the single-process e2e suite expects for the case. */
export function expectedOutcome(c: PolicyCase): Omit<PolicyOutcome, 'code'> & { code?: string } {
  if (c.expect === 'pass') return { status: c.method === 'POST' ? 201 : 200, forwarded: 1, bodyIntact: true };
  return { status: c.expect.status, code: c.expect.code, forwarded: 0 };
}
