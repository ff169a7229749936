// Issue 12's "Done when", end to end: the Cohort Manager and PRM request shapes (rebuilt byte for byte from their
// code, test/helpers/client-shapes.ts) sent over mTLS to a gateway in front of the embedded core. With the shipped
// profile (compatible) both are forwarded and created (201), their rule ids are on the audit line and counted in
// nems_gateway_rule_violations_total; with profile strict both are refused with the Spine code of the first rule
// they break. `replay` (src/cli/replay.ts) decides the same requests offline exactly as the live gateway did.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { createReplayer, parseReplayRecords, type ReplayOutcome } from '../../src/cli/replay.js';
import type { Config } from '../../src/config/schema.js';
import { openEndpointRegistry } from '../../src/identity/open-registry.js';
import { openPdsLookup } from '../../src/pds/index.js';
import { cohortManagerCreate, COHORT_MANAGER_RULES, prmCreate, PRM_RULES, replayLine, type ClientRequest } from '../helpers/client-shapes.js';
import { createPki, send, spineCodeOf, startTestApp, testConfig, type Pki } from '../helpers/e2e.js';
import { rmSync } from 'node:fs';

const REQUEST_MESSAGES = new Set(['request forwarded', 'request rejected']);

interface Running {
  readonly app: RunningApp;
  readonly config: Config;
  readonly lines: string[];
}

let pki: Pki;
const running: Record<'compatible' | 'strict', Running | undefined> = { compatible: undefined, strict: undefined };

async function start(profile: 'compatible' | 'strict'): Promise<Running> {
  const lines: string[] = [];
  const config = testConfig(pki, { patch: (raw) => { raw.policy = { profile }; raw.logging = { level: 'info', bufferBytes: 0 }; } });
  const app = await startTestApp(config, { logLines: lines });
  return { app, config, lines };
}

beforeAll(async () => {
  pki = createPki();
  running.compatible = await start('compatible');
  running.strict = await start('strict');
}, 60_000);

afterAll(async () => {
  await running.compatible?.app.stop();
  await running.strict?.app.stop();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

async function sendShape(r: Running, shape: ClientRequest) {
  return send(pki, r.app.gateway.port, { client: shape.endpoint, method: shape.method, path: shape.path, headers: shape.headers.map(([n, v]) => [n, v] as [string, string]), body: shape.body });
}

function auditLines(r: Running): Record<string, unknown>[] {
  return r.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => REQUEST_MESSAGES.has(o.msg as string));
}

async function replayOffline(config: Config, shapes: readonly ClientRequest[], at: number): Promise<ReplayOutcome[]> {
  const registry = await openEndpointRegistry(config);
  const pds = await openPdsLookup(config);
  try {
    const replayer = createReplayer(config, registry, pds.lookup);
    const records = parseReplayRecords(shapes.map((s) => replayLine(s, at)).join('\n'));
    const outcomes: ReplayOutcome[] = [];
    for (const record of records) outcomes.push(await replayer.replay(record));
    return outcomes;
  } finally {
    await pds.lookup.close();
    await registry.close?.();
  }
}

describe('real NEMS clients through the shipped profile (compatible), to the embedded core', () => {
  it('forwards the Cohort Manager and PRM creates, which the embedded core creates (201), and reports their rules', async () => {
    const r = running.compatible!;
    const now = Date.now();
    const shapes = [cohortManagerCreate(now), prmCreate(now)];
    const expected = [COHORT_MANAGER_RULES.compatible, PRM_RULES.compatible];
    for (const [i, shape] of shapes.entries()) {
      const res = await sendShape(r, shape);
      expect({ label: shape.label, status: res.status }, res.text).toEqual({ label: shape.label, status: 201 });
      expect(res.headers.location).toMatch(/\/STU3\/Subscription\/[0-9a-f]{32}$/);
      const line = auditLines(r).at(-1)!;
      expect(line.msg).toBe('request forwarded');
      expect(String(line.reportedRules).split(',')).toEqual([...expected[i]!]);
    }
    const metrics = (await r.app.metrics.render()).body;
    for (const rule of new Set([...COHORT_MANAGER_RULES.compatible, ...PRM_RULES.compatible])) {
      expect(metrics, rule).toMatch(new RegExp(`nems_gateway_rule_violations_total\\{rule="${rule.replace('.', '\\.')}",action="report"\\} [1-9]`));
    }
    // A second Cohort Manager create for the same patient: the core answers as NEMS does, and the client can parse it.
    const again = await sendShape(r, cohortManagerCreate(Date.now()));
    expect({ status: again.status, code: spineCodeOf(again.text) }).toEqual({ status: 422, code: 'DUPLICATE_REJECTED' });
    expect(again.text).toMatch(/subscription already exists\s*:\s*"?([a-zA-Z0-9-_]+)"?/);
  });

  it('replay decides the same requests offline exactly as the live gateway did', async () => {
    const r = running.compatible!;
    const now = Date.now();
    const shapes = [cohortManagerCreate(now), prmCreate(now)];
    const offline = await replayOffline(r.config, shapes, now);
    expect(offline.map((o) => ({ action: o.action, reported: o.reported }))).toEqual([
      { action: 'forward', reported: [...COHORT_MANAGER_RULES.compatible] },
      { action: 'forward', reported: [...PRM_RULES.compatible] },
    ]);
    expect(offline.map((o) => [...o.strictRules])).toEqual([[...COHORT_MANAGER_RULES.strict], [...PRM_RULES.strict]]);
  });
});

describe('the same clients under profile strict', () => {
  it('refuses both with the Spine code of the first rule they break (headers.to-asid: 403 ASID_CHECK_FAILED), offline and live alike', async () => {
    const r = running.strict!;
    const now = Date.now();
    const shapes = [cohortManagerCreate(now), prmCreate(now)];
    const offline = await replayOffline(r.config, shapes, now);
    for (const [i, shape] of shapes.entries()) {
      const res = await sendShape(r, shape);
      expect({ status: res.status, code: spineCodeOf(res.text) }).toEqual({ status: 403, code: 'ASID_CHECK_FAILED' });
      const line = auditLines(r).at(-1)!;
      expect(line.rule).toBe('headers.to-asid');
      expect(offline[i]).toMatchObject({ action: 'reject', status: 403, code: 'ASID_CHECK_FAILED', rule: 'headers.to-asid' });
    }
    expect((await r.app.metrics.render()).body).toMatch(/nems_gateway_rule_violations_total\{rule="headers\.to-asid",action="enforce"\} 2/);
  });
});
