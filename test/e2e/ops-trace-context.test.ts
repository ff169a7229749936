// W3C traceparent end to end (issue 14 point 4): accepted or created, forwarded upstream with the gateway's own
// span as the parent, its trace id on the request log line; an invalid one starts a new trace and is never refused.
import { describe, expect, it } from 'vitest';
import { send, useTestGateway } from '../helpers/e2e.js';
import { nemsHeaders } from '../helpers/nems-requests.js';

const READ_PATH = '/STU3/Subscription/ea0a485187204b49b978bdcf7102388c';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_PARENT = '00f067aa0ba902b7';

const lines: string[] = [];
const { pki, upstream, app } = useTestGateway({
  patch: (raw) => { raw.logging = { level: 'info', bufferBytes: 0 }; },
  logLines: lines,
  resetUpstreamBeforeEach: true,
});

async function readWith(id: string, extra: Record<string, string>) {
  const res = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: { ...nemsHeaders('gp-system', 'read'), 'X-Request-ID': id, ...extra } });
  const received = (await upstream.stats()).received.at(-1);
  const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['requestId'] === id);
  return { res, received, line };
}

describe('W3C trace context', () => {
  it('joins the client\'s trace: upstream gets the same trace id with the gateway\'s span as parent; the log line has the trace id', async () => {
    const { res, received, line } = await readWith('trace-joined', { traceparent: `00-${TRACE_ID}-${CLIENT_PARENT}-01`, tracestate: 'congo=t61rcWkgMzE' });
    expect(res.status).toBe(200);
    const forwarded = String(received?.headers['traceparent']);
    expect(forwarded).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    expect(forwarded).not.toContain(CLIENT_PARENT);
    expect(received?.headers['tracestate']).toBe('congo=t61rcWkgMzE');
    expect(line?.['traceId']).toBe(TRACE_ID);
  });

  it('starts a trace for a request without one and forwards it', async () => {
    const { res, received, line } = await readWith('trace-new', {});
    expect(res.status).toBe(200);
    const traceId = line?.['traceId'];
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(received?.headers['traceparent']).toMatch(new RegExp(`^00-${String(traceId)}-[0-9a-f]{16}-00$`));
  });

  it('never refuses an invalid traceparent: a new trace replaces it and its tracestate is dropped', async () => {
    const { res, received, line } = await readWith('trace-invalid', { traceparent: `00-${TRACE_ID.toUpperCase()}-${CLIENT_PARENT}-01`, tracestate: 'congo=t61rcWkgMzE' });
    expect(res.status).toBe(200);
    expect(line?.['traceId']).not.toBe(TRACE_ID);
    expect(received?.headers['traceparent']).toMatch(new RegExp(`^00-${String(line?.['traceId'])}-[0-9a-f]{16}-00$`));
    expect(received?.headers['tracestate']).toBeUndefined();
  });

  it('puts the trace id on the log line of a rejected request too', async () => {
    const res = await send(pki, app.gateway.port, { client: 'gp-system', path: READ_PATH, headers: { 'X-Request-ID': 'trace-rejected', traceparent: `00-${TRACE_ID}-${CLIENT_PARENT}-01` } });
    expect(res.status).toBe(400);
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['requestId'] === 'trace-rejected');
    expect(line?.['traceId']).toBe(TRACE_ID);
  });
});
