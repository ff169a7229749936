// Drives the head of the pipeline (route → headers → jwt → mime) with a plain RequestContext built from a policy
// case, the way the TLS edge would build it from a Node request.
import { configSchema, type Config } from '../../src/config/schema.js';
import { SPINE_CODES, type SpineCode } from '../../src/fhir/errors.js';
import { createHeadersStage } from '../../src/pipeline/stages/headers.js';
import { createJwtStage } from '../../src/pipeline/stages/jwt.js';
import { createMimeStage } from '../../src/pipeline/stages/mime.js';
import { createRouteStage } from '../../src/pipeline/stages/route.js';
import type { RequestContext, Stage, StageName } from '../../src/pipeline/types.js';
import type { IncomingHttpHeaders } from 'node:http';
import { EXAMPLE_ENDPOINTS } from '../helpers/endpoints.js';
import type { PolicyCase } from './policy-cases.js';

/** A Config with every `nems` default (the policy table's assumption) plus optional `nems` overrides. */
export function policyConfig(nems: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    server: { tls: { cert: '/x/cert.pem', key: '/x/key.pem', ca: '/x/ca.pem' } },
    registry: { path: '/x/registry.yaml' },
    nems,
  });
}

export function headStages(config: Config): Stage[] {
  return [createRouteStage(config), createHeadersStage(config), createJwtStage(config), createMimeStage(config)];
}

/** Headers Node keeps only the first of when repeated (node:http `matchKnownFields`). */
const FIRST_WINS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer',
  'retry-after', 'server', 'user-agent',
]);

/** Builds `req.headers` from raw pairs as Node does: lower-case names, first wins or `, `-joined. */
export function nodeHeaders(raw: readonly (readonly [string, string])[]): IncomingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const [name, value] of raw) {
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) headers[key] = value;
    else if (!FIRST_WINS.has(key)) headers[key] = `${existing}, ${value}`;
  }
  return headers;
}

/** The RequestContext the edge would build for this case; the sender's Content-Length is added for a body. */
export function contextFor(c: PolicyCase, receivedAt: number): RequestContext {
  const raw: [string, string][] = c.headers.map(([name, value]) => [name, value.trim()]);
  if (c.body && !raw.some(([name]) => name.toLowerCase() === 'content-length')) {
    const length = c.body.kind === 'raw' ? Buffer.byteLength(c.body.text) : 512;
    raw.push(['Content-Length', String(length)]);
  }
  const q = c.path.indexOf('?');
  return {
    requestId: 'policy-case',
    method: c.method,
    path: q < 0 ? c.path : c.path.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : c.path.slice(q + 1)),
    headers: nodeHeaders(raw),
    rawHeaders: raw.flat(),
    endpoint: EXAMPLE_ENDPOINTS[c.endpoint],
    source: { readBody: () => Promise.resolve(Buffer.alloc(0)) },
    receivedAt,
    nhsNumbers: [],
    forwardHeaders: {},
    audit: {},
  };
}

export type StagesOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly stage: StageName;
      readonly status: number;
      readonly code: SpineCode;
      readonly diagnostics: string;
      readonly headers: Readonly<Record<string, string>>;
    };

/** Runs stages in order, stopping at the first rejection; the status comes from the catalogue unless overridden. */
export async function runStages(stages: readonly Stage[], ctx: RequestContext): Promise<StagesOutcome> {
  for (const stage of stages) {
    const result = await stage.run(ctx);
    if (!result.ok) {
      const { code, diagnostics, status, headers } = result.rejection;
      return { ok: false, stage: stage.name, status: status ?? SPINE_CODES[code].status, code, diagnostics, headers: headers ?? {} };
    }
  }
  return { ok: true };
}

/** What the upstream receives for a header: the gateway's override, else the client's value. */
export function forwarded(ctx: RequestContext, name: 'content-type' | 'accept'): string | undefined {
  const override = ctx.forwardHeaders[name];
  if (override !== undefined) return override;
  const value = ctx.headers[name];
  return typeof value === 'string' ? value : undefined;
}
