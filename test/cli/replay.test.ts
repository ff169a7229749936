// `nems-gateway replay` (src/cli/replay.ts) on the shipped sample, docs/examples/replay-clients.jsonl: the sample is
// what the client-shape builders make (so it stays faithful to the clients' code), the command prints each
// request's decision with its rule ids and the per-rule table, and its exit status says whether any would be refused.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseReplayRecords, runReplayCommand } from '../../src/cli/replay.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { sampleReplayText, shippedSample } from '../helpers/replay-sample.js';

const SAMPLE = join(PROJECT_ROOT, 'docs', 'examples', 'replay-clients.jsonl');
const SHIPPED_CONFIG = join(PROJECT_ROOT, 'config', 'gateway.yaml');

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runReplayCommand(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe('nems-gateway replay', () => {
  it('ships a sample that is exactly what the client-shape builders make at its recorded time', () => {
    expect(shippedSample(SAMPLE)).toBe(sampleReplayText());
  });

  it('replays the sample under the shipped configuration: the clients forwarded and reported, an untraced number refused (exit 1)', async () => {
    const { code, out, err } = await run([SAMPLE, '--config', SHIPPED_CONFIG]);
    expect(err).toBe('');
    expect(code).toBe(1);
    const lines = out.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'line 1 (Cohort Manager create): forward; reported: headers.to-asid, jwt.organisation-present, jwt.max-lifetime, subscription.meta-supplied',
      'line 2 (PRM script create): forward; reported: headers.to-asid, jwt.iss, criteria.event-code, criteria.rule-type',
      'line 3 (GP system create, to the letter): forward',
      'line 4 (GP system create for a number PDS does not hold): reject 404 PATIENT_NOT_FOUND (pds.traced)',
    ]);
    expect(out).toContain('4 requests: 3 forwarded, 1 refused (rate limits not applied)');
    const row = (rule: string) => lines.find((l) => l.startsWith(`${rule} `))?.split(/\s{2,}/);
    expect(lines.find((l) => l.startsWith('rule '))).toMatch(/^rule\s+class\s+requests\s+action \(compatible\)\s+action \(strict\)$/);
    expect(row('headers.to-asid')).toEqual(['headers.to-asid', 'conformance', '2', 'report', 'enforce']);
    expect(row('jwt.reason-for-request')).toEqual(['jwt.reason-for-request', 'conformance', '1', 'enforce (reading accepts)', 'enforce']);
    expect(row('criteria.nhs-number-system')).toEqual(['criteria.nhs-number-system', 'conformance', '1', 'enforce (reading accepts)', 'enforce']);
    expect(row('pds.traced')).toEqual(['pds.traced', 'security', '1', 'enforce', 'enforce']);
  });

  it('refuses bad input with exit 2 and the line at fault', async () => {
    expect(() => parseReplayRecords('{"method":"POST","path":"/STU3/Subscription"}')).toThrow(/^line 1: give exactly one of endpoint and certificate/);
    expect(() => parseReplayRecords('\n{"endpoint":"x","method":"POST","path":"/x","receivedAt":"yesterday"}')).toThrow(/^line 2: receivedAt/);
    const missing = await run([join(PROJECT_ROOT, 'docs', 'examples', 'no-such-file.jsonl'), '--config', SHIPPED_CONFIG]);
    expect(missing.code).toBe(2);
    expect((await run([])).code).toBe(2);
  });
});
