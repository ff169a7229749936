// The NEMS request-policy table (issue 3) run through route → headers → jwt → mime as unit tests.
import { describe, expect, it } from 'vitest';
import { POLICY_CASES, POLICY_NOW } from './policy-cases.js';
import { contextFor, forwarded, headStages, policyConfig, runStages } from './policy-runner.js';

const stages = headStages(policyConfig());

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
      const ctx = contextFor(c, POLICY_NOW);
      const outcome = await runStages(stages, ctx);
      if (c.expect === 'pass') {
        expect(outcome, JSON.stringify(outcome)).toEqual({ ok: true });
        expect(ctx.route).toBeDefined();
        expect(ctx.claims?.requestingSystemAsid).toBe(ctx.fromAsid);
        expect(ctx.mime?.forwardAccept).toBe(c.forward!.accept);
        expect(forwarded(ctx, 'accept')).toBe(c.forward!.accept);
        expect(forwarded(ctx, 'content-type')).toBe(c.forward!.contentType);
        if (ctx.route!.hasBody) expect(ctx.mime?.forwardContentType).toBe(c.forward!.contentType);
        return;
      }
      expect(outcome.ok, `expected ${c.expect.code}`).toBe(false);
      if (outcome.ok) return;
      expect({ status: outcome.status, code: outcome.code }, outcome.diagnostics).toEqual({
        status: c.expect.status,
        code: c.expect.code,
      });
      for (const [name, value] of Object.entries(c.expect.headers ?? {})) expect(outcome.headers[name]).toBe(value);
      // Diagnostics name the header or claim, never its value.
      expect(outcome.diagnostics.length).toBeGreaterThan(0);
      for (const [, value] of c.headers) {
        if (value.length >= 8) expect(outcome.diagnostics).not.toContain(value);
        for (const part of value.split(/[ .]/)) if (part.length >= 16) expect(outcome.diagnostics).not.toContain(part);
      }
      expect(outcome.diagnostics).not.toMatch(/\d{10}/);
      expect(ctx.nhsNumbers).toEqual([]);
    });
  }
});
