// W3C Trace Context (https://www.w3.org/TR/trace-context/) as an intermediary: join a valid traceparent with a new
// span id, start a new trace for anything else (never reject), forward tracestate only with a joined trace.
import { describe, expect, it } from 'vitest';
import { parseTraceparent, traceContextFor } from '../../src/observability/trace-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

describe('parseTraceparent', () => {
  it('accepts the specification\'s example', () => {
    expect(parseTraceparent(VALID)).toEqual({ traceId: TRACE_ID, parentId: PARENT_ID, flags: '01' });
  });

  it.each([
    ['upper-case hex', VALID.toUpperCase()],
    ['version ff', `ff-${TRACE_ID}-${PARENT_ID}-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${PARENT_ID}-01`],
    ['an all-zero parent id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['version 00 with a fifth field', `${VALID}-extra`],
    ['a short trace id', `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`],
    ['two headers joined by Node', `${VALID}, ${VALID}`],
    ['garbage', 'not a trace'],
    ['empty', ''],
  ])('refuses %s', (_name, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('reads a later version\'s first four fields and ignores what it appends', () => {
    expect(parseTraceparent(`01-${TRACE_ID}-${PARENT_ID}-03-future`)).toEqual({ traceId: TRACE_ID, parentId: PARENT_ID, flags: '03' });
  });
});

describe('traceContextFor', () => {
  it('joins a valid trace: same trace id, a new span id as the parent sent upstream, sampled flag kept', () => {
    const trace = traceContextFor({ traceparent: VALID, tracestate: 'congo=t61rcWkgMzE' });
    expect(trace).toMatchObject({ traceId: TRACE_ID, parentId: PARENT_ID, joined: true });
    const [, traceId, spanId, flags] = TRACEPARENT.exec(trace.forwardHeaders['traceparent']!)!;
    expect(traceId).toBe(TRACE_ID);
    expect(spanId).toBe(trace.spanId);
    expect(spanId).not.toBe(PARENT_ID);
    expect(flags).toBe('01');
    expect(trace.forwardHeaders['tracestate']).toBe('congo=t61rcWkgMzE');
  });

  it('clears flag bits version 00 does not define when forwarding a later version\'s trace', () => {
    const trace = traceContextFor({ traceparent: `01-${TRACE_ID}-${PARENT_ID}-ff-x` });
    expect(trace.forwardHeaders['traceparent']).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
  });

  it.each([
    ['no traceparent', {}],
    ['an invalid traceparent', { traceparent: VALID.toUpperCase(), tracestate: 'congo=t61rcWkgMzE' }],
    ['two traceparent headers', { traceparent: `${VALID}, ${VALID}` }],
  ])('starts a new, unsampled trace for %s and drops tracestate', (_name, headers) => {
    const trace = traceContextFor(headers);
    expect(trace.joined).toBe(false);
    expect(trace.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(trace.traceId).not.toBe(TRACE_ID);
    expect(trace.forwardHeaders).toEqual({ traceparent: `00-${trace.traceId}-${trace.spanId}-00` });
  });

  it('gives every request its own span id and every new trace its own trace id', () => {
    const a = traceContextFor({});
    const b = traceContextFor({});
    expect(a.traceId).not.toBe(b.traceId);
    expect(a.spanId).not.toBe(b.spanId);
  });

  it('does not forward a tracestate a header cannot carry or of absurd size', () => {
    expect(traceContextFor({ traceparent: VALID, tracestate: 'a=\u0001' }).forwardHeaders['tracestate']).toBeUndefined();
    expect(traceContextFor({ traceparent: VALID, tracestate: `a=${'x'.repeat(9000)}` }).forwardHeaders['tracestate']).toBeUndefined();
  });
});
