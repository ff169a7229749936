// Drain with a readiness grace: /readyz fails first while the listener still serves, then it closes.
import { expect, it } from 'vitest';
import { adminGet } from '../helpers/ops-admin.js';
import { send, startTestApp, testConfig, usePkiAndUpstream } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';

const { pki, upstream } = usePkiAndUpstream();

it('fails /readyz with "draining" for lifecycle.readinessGraceMs while still serving, then stops accepting', async () => {
  const app = await startTestApp(testConfig(pki, { upstreamUrl: upstream.url, patch: (raw) => { raw.lifecycle.readinessGraceMs = 600; } }));
  const port = app.gateway.port;
  const adminPort = app.admin!.port;
  expect((await adminGet(adminPort, '/readyz')).status).toBe(200);
  const stopping = app.stop();
  const ready = await adminGet(adminPort, '/readyz');
  expect(ready.status).toBe(503);
  expect(ready.text).toContain('draining');
  const during = await send(pki, port, { client: 'gp-system', path: '/STU3/Subscription/abc', headers: nemsHeaders('gp-system', 'read') });
  expect(during.status).toBe(200);
  await stopping;
  await expect(send(pki, port, { client: 'gp-system', path: '/STU3/Subscription/abc', headers: nemsHeaders('gp-system', 'read') })).rejects.toThrow();
});
