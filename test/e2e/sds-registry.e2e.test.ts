// The gateway over real mTLS with registry.kind sds against the project's SDS double: a client SDS registers is
// allowed, one it does not is denied, SDS going down keeps the last good copy, and past maxStaleMs the gateway
// reports not ready and denies everyone until SDS answers again.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { send, spineCodeOf, useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';
import { adminGet, eventually, metricSum } from '../helpers/ops-admin.js';
import { startSdsDouble, type SdsData, type SdsDouble } from '../doubles/sds-double.js';

const READ_PATH = '/STU3/Subscription/abc';
const MAX_STALE_MS = 3000;

let sds: SdsDouble;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nems-sds-e2e-'));
  writeFileSync(join(dir, 'apikey'), 'e2e-key\n');
  copyFileSync(join(PROJECT_ROOT, 'config', 'sds-overlay.yaml'), join(dir, 'overlay.yaml'));
  const data = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'sds', 'example-records.json'), 'utf8')) as SdsData;
  // SDS knows only the GP system: child-health has a certificate from the same CA but no SDS registration.
  data.as = data.as.filter((r) => r.nhsIDCode === 'A83627');
  data.mhs = data.mhs.filter((r) => r.nhsIDCode === 'A83627');
  sds = await startSdsDouble({ apiKey: 'e2e-key', data, pageSize: 1 });
});
afterAll(async () => {
  await sds?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const { pki, upstream, app } = useTestGateway({
  patch: (raw) => {
    raw.registry = {
      kind: 'sds', path: join(dir, 'overlay.yaml'),
      sds: {
        baseUrl: sds.url, auth: { kind: 'api-key', apiKeyFile: join(dir, 'apikey') },
        refreshIntervalMs: 200, retryIntervalMs: 100, maxStaleMs: MAX_STALE_MS, timeoutMs: 1000,
      },
    };
  },
});

describe('gateway with the SDS-backed registry (registry.kind sds)', () => {
  it('is ready and lets a client SDS registers through', async () => {
    const ready = await adminGet(app.admin!.port, '/readyz');
    expect(ready.status).toBe(200);
    await upstream.reset();
    const res = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(res.status).toBe(200);
    expect((await upstream.stats()).count).toBe(1);
  });

  it('denies a certificate SDS does not register (403 ACCESS_DENIED), before the upstream', async () => {
    await upstream.reset();
    const res = await send(pki, app.gateway.port, { client: 'child-health', path: READ_PATH, headers: nemsHeaders('child-health', 'read') });
    expect(res.status).toBe(403);
    expect(spineCodeOf(res.text)).toBe('ACCESS_DENIED');
    expect((await upstream.stats()).count).toBe(0);
  });

  it('keeps the last good copy while SDS is down, then turns not ready and denies everyone past maxStaleMs', async () => {
    // A kept-alive connection identified while the registry was fresh must not outlive it.
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read'), agent: keepAlive });
    expect(first.status).toBe(200);
    sds.down = true;
    const admin = app.admin!.port;
    await eventually(async () => metricSum((await adminGet(admin, '/metrics')).text, 'nems_gateway_sds_refresh_total', { result: 'failed' }) >= 1, 'a failed SDS refresh');
    // Still inside maxStaleMs: the last good registry is in force.
    const during = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(during.status).toBe(200);
    await eventually(async () => (await adminGet(admin, '/readyz')).status === 503, 'readyz to fail past maxStaleMs', MAX_STALE_MS + 5000, 100);
    const readyz = await adminGet(admin, '/readyz');
    expect(readyz.text).toContain('past maxStaleMs');
    const after = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(after.status).toBe(403);
    const reused = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read'), agent: keepAlive });
    expect(reused.status).toBe(403);
    keepAlive.destroy();
    // SDS back: the next refresh restores the registry and readiness.
    sds.down = false;
    await eventually(async () => (await adminGet(admin, '/readyz')).status === 200, 'readyz to recover', 5000, 100);
    const back = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: nemsHeaders('gp-system', 'read') });
    expect(back.status).toBe(200);
  }, 20_000);
});
