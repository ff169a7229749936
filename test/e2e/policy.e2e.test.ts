// The issue-3 case table replayed end to end: real TLS, the example client certificates, the full pipeline
// (body and NHS-number stages included) and a real upstream process. Every rejected case must reach nothing;
// every accepted case must reach the upstream with the client's exact bytes and the expected MIME headers.
import { describe, expect, it } from 'vitest';
import { buildPolicyCases } from '../pipeline/policy-cases.js';
import { policyBody } from '../helpers/policy-bodies.js';
import { send, spineCodeOf, useTestGateway } from '../helpers/e2e.js';

const { pki, upstream, app } = useTestGateway();
const cases = buildPolicyCases(Date.now());

describe('issue 3 policy cases end to end through mTLS', () => {
  it('has at least 100 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await upstream.reset();
    const body = c.body ? policyBody(c, c.body) : undefined;
    const res = await send(pki, app.gateway.port, {
      client: c.endpoint,
      method: c.method,
      path: c.path,
      headers: c.headers.map(([n, v]) => [n, v] as [string, string]),
      ...(body ? { body } : {}),
    });
    const stats = await upstream.stats();
    if (c.expect === 'pass') {
      expect({ status: res.status, code: spineCodeOf(res.text) }).toMatchObject({ status: c.method === 'POST' ? 201 : 200 });
      expect(stats.count).toBe(1);
      const received = stats.received[0]!;
      expect(Buffer.from(received.body, 'base64').equals(body ?? Buffer.alloc(0))).toBe(true);
      if (c.forward) {
        expect(received.headers['content-type']).toBe(c.forward.contentType);
        expect(received.headers.accept).toBe(c.forward.accept);
      }
    } else {
      // A HEAD response carries no body, so only its status can be compared.
      const code = c.method === 'HEAD' ? c.expect.code : spineCodeOf(res.text);
      expect({ status: res.status, code }).toEqual({ status: c.expect.status, code: c.expect.code });
      for (const [name, value] of Object.entries(c.expect.headers ?? {})) expect(res.headers[name.toLowerCase()]).toBe(value);
      expect(stats.count).toBe(0);
    }
  });
});
