// The NEMS request-policy table (issue 3) run through the real request lifecycle in-process: every stage the route
// table names (rate limit and body stages included), the shipped local PDS data, the same bodies the end-to-end run
// sends. test/e2e/policy.e2e.test.ts sends the same cases over mTLS.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPdsLookup, type PdsHandle } from '../../src/pds/index.js';
import type { RequestLifecycle } from '../../src/pipeline/request-lifecycle.js';
import { forwardedHeader, inject, policyConfig, testLifecycle } from '../helpers/inject.js';
import { policyRequest } from '../helpers/policy-bodies.js';
import { POLICY_CASES, POLICY_NOW } from './policy-cases.js';

const SHIPPED_PDS = join(dirname(fileURLToPath(import.meta.url)), '../../config/pds-local.yaml');

let pds: PdsHandle;
let lifecycle: RequestLifecycle;
beforeAll(async () => {
  const config = policyConfig({}, { pds: { kind: 'local', local: { path: SHIPPED_PDS } } });
  pds = await openPdsLookup(config);
  lifecycle = testLifecycle(config, { pds: pds.lookup, now: () => POLICY_NOW });
});
afterAll(() => pds.lookup.close());

describe('NEMS request policy table', () => {
  it('holds at least 100 cases with unique names, each naming its status and Spine code or pass', () => {
    expect(POLICY_CASES.length).toBeGreaterThanOrEqual(100);
    expect(new Set(POLICY_CASES.map((c) => c.name)).size).toBe(POLICY_CASES.length);
    for (const c of POLICY_CASES) {
      if (c.expect === 'pass') expect(c.forward, c.name).toBeDefined();
      else expect(c.expect.status).toBeGreaterThanOrEqual(400);
    }
  });

  it('covers both example endpoints, every operation and every rule family', () => {
    const names = POLICY_CASES.map((c) => c.name);
    for (const family of ['route:', 'headers:', 'jwt:', 'mime:']) expect(names.some((n) => n.startsWith(family))).toBe(true);
    expect(POLICY_CASES.some((c) => c.endpoint === 'gp-system' && c.expect === 'pass')).toBe(true);
    expect(POLICY_CASES.some((c) => c.endpoint === 'child-health' && c.expect === 'pass')).toBe(true);
  });

  for (const c of POLICY_CASES) {
    const label = c.expect === 'pass' ? 'passes' : `→ ${c.expect.status} ${c.expect.code}`;
    it(`${c.name} (${label})`, async () => {
      const request = policyRequest(c);
      const decision = await inject(lifecycle, request);
      if (c.expect === 'pass') {
        expect(decision.action, decision.action === 'reject' ? `${decision.code} ${decision.diagnostics}` : '').toBe('forward');
        if (decision.action !== 'forward') return;
        const ctx = decision.ctx;
        expect(ctx.route).toBeDefined();
        expect(ctx.claims?.requestingSystemAsid).toBe(ctx.fromAsid);
        expect(ctx.mime?.forwardAccept).toBe(c.forward!.accept);
        expect(forwardedHeader(decision, 'accept')).toBe(c.forward!.accept);
        expect(forwardedHeader(decision, 'content-type')).toBe(c.forward!.contentType);
        if (ctx.route!.hasBody) expect(ctx.mime?.forwardContentType).toBe(c.forward!.contentType);
        // The client's exact bytes go upstream.
        expect((decision.body ?? Buffer.alloc(0)).equals(request.body ?? Buffer.alloc(0))).toBe(true);
        return;
      }
      expect(decision.action, `expected ${c.expect.code}`).toBe('reject');
      if (decision.action !== 'reject') return;
      expect({ status: decision.status, code: decision.code }, decision.diagnostics).toEqual({
        status: c.expect.status,
        code: c.expect.code,
      });
      for (const [name, value] of Object.entries(c.expect.headers ?? {})) expect(decision.headers[name]).toBe(value);
      // Diagnostics name the header or claim, never its value.
      expect(decision.diagnostics.length).toBeGreaterThan(0);
      for (const [, value] of c.headers) {
        if (value.length >= 8) expect(decision.diagnostics).not.toContain(value);
        for (const part of value.split(/[ .]/)) if (part.length >= 16) expect(decision.diagnostics).not.toContain(part);
      }
      expect(decision.diagnostics).not.toMatch(/\d{10}/);
      expect(decision.ctx?.nhsNumbers).toEqual([]);
    });
  }
});
