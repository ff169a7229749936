// `nems-gateway replay FILE`: recorded requests through the same request lifecycle the gateway runs, offline — the
// same configuration, endpoint registry and PDS source, no upstream — so an organisation can see, before putting
// the gateway inline, which of its requests would be forwarded, reported or refused, and by which rules.
//
// A record is one JSON object per line:
//   { "endpoint": "<FQDN>" | "certificate": "<PEM>", "method": "POST", "path": "/STU3/Subscription",
//     "headers": [["Name", "value"], …] | { "Name": "value" }, "body": "<text>" | "bodyBase64": "<base64>",
//     "receivedAt": "<ISO 8601>" (optional: the clock the request is judged at, so a recorded token is not stale),
//     "label": "<text>" (optional) }
// A certificate is taken as OpenSSL verified it (replay judges what happens after TLS: CN, SAN and fingerprint
// against the registry); an endpoint FQDN stands for a certificate naming it (no fingerprint, so a pinned endpoint
// needs the certificate).
//
// Rate limits are not applied: they are about volume and timing, which a recording does not reproduce (and
// replaying a day in seconds would trip every bucket). Everything else runs as inline.
//
// Each request runs twice: under the configuration's policy (the decision printed), and under `strict` with every
// conformance rule reported (what the guide to the letter would say about it, for the table). The exit status is
// 1 when any request would be refused under the configuration, 0 when all would be forwarded, 2 for bad input.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, configPathFromEnv, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { certificateIdentity } from '../edge/peer-identity.js';
import { openEndpointRegistry } from '../identity/open-registry.js';
import type { EndpointRegistry, PeerFacts } from '../identity/types.js';
import { openPdsLookup } from '../pds/index.js';
import type { PdsLookup } from '../pds/types.js';
import { RequestLifecycle, type Decision } from '../pipeline/request-lifecycle.js';
import { nodeHeaders } from '../pipeline/node-headers.js';
import { createStages } from '../pipeline/stages/index.js';
import { PASS, PayloadTooLargeError, type InboundRequest, type StageSet } from '../pipeline/types.js';
import { RULE_IDS, ruleDefinition, type RuleId } from '../rules/catalogue.js';
import { RulePolicy } from '../rules/policy.js';
import { readCommandArgs, usageError, STDIO, type CommandIo } from './args.js';

export const REPLAY_COMMAND = {
  name: 'replay',
  usage: `usage: nems-gateway replay FILE [--config F]

Runs recorded requests (JSON lines: endpoint or certificate, method, path, headers, body or bodyBase64, optional
receivedAt and label) through the gateway's request lifecycle offline: same configuration, registry and PDS source,
no upstream, no rate limits. Prints each request's decision with the rule ids that fired, then a table per rule:
how often it fired, its action under this configuration and under policy.profile strict.
Exit status: 0 every request would be forwarded, 1 some would be refused, 2 bad input.

options:
  --config F    the configuration file (default: $NEMS_GATEWAY_CONFIG, else config/gateway.yaml)
  --help        this text`,
  options: { config: { type: 'string' } },
  positionals: { min: 1, max: 1, name: 'FILE' },
} as const;

/** Largest replay file read, and largest body of one record. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

export interface ReplayRecord {
  /** 1-based line of the file. */
  readonly line: number;
  readonly label?: string;
  readonly peer: PeerFacts;
  readonly method: string;
  readonly target: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body?: Buffer;
  /** The gateway clock for this request (ms since the epoch). */
  readonly receivedAt: number;
}

export interface ReplayOutcome {
  readonly line: number;
  readonly label?: string;
  readonly action: 'forward' | 'reject';
  readonly status?: number;
  readonly code?: string;
  /** The rule that refused the request. */
  readonly rule?: RuleId;
  /** Conformance rules reported on the way under the configuration. */
  readonly reported: readonly RuleId[];
  /** Every rule the guide to the letter fires for it (strict, conformance rules reported; a security rule ends it). */
  readonly strictRules: readonly RuleId[];
}

/** Reads the JSON-lines text; throws with the line number on the first bad record. */
export function parseReplayRecords(text: string, now: number = Date.now()): ReplayRecord[] {
  const records: ReplayRecord[] = [];
  const lines = text.split('\n');
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      records.push(readRecord(JSON.parse(line) as unknown, index + 1, now));
    } catch (err) {
      throw new Error(`line ${index + 1}: ${(err as Error).message}`);
    }
  }
  return records;
}

function readRecord(value: unknown, line: number, now: number): ReplayRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('a record is a JSON object');
  const r = value as Record<string, unknown>;
  const text = (name: string): string | undefined => {
    const v = r[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new Error(`${name} must be a string`);
    return v;
  };
  const method = text('method');
  const path = text('path');
  if (!method || !/^[A-Z]+$/.test(method)) throw new Error('method must be an HTTP method');
  if (!path || !path.startsWith('/')) throw new Error('path must start with /');
  const endpoint = text('endpoint');
  const certificate = text('certificate');
  if ((endpoint === undefined) === (certificate === undefined)) throw new Error('give exactly one of endpoint and certificate');
  let peer: PeerFacts;
  if (certificate !== undefined) {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(certificate);
    } catch {
      throw new Error('certificate is not a PEM certificate');
    }
    peer = { certificate: certificateIdentity(x509), remoteAddress: '127.0.0.1' };
  } else {
    peer = { certificate: { subjectCn: endpoint!, dnsNames: [endpoint!], fingerprint256: '' }, remoteAddress: '127.0.0.1' };
  }
  const headers: [string, string][] = [];
  const rawHeaders = r['headers'];
  if (Array.isArray(rawHeaders)) {
    for (const pair of rawHeaders) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw new Error('headers must be [name, value] pairs of strings');
      }
      headers.push([pair[0], pair[1]]);
    }
  } else if (typeof rawHeaders === 'object' && rawHeaders !== null) {
    for (const [name, v] of Object.entries(rawHeaders)) {
      if (typeof v !== 'string') throw new Error('header values must be strings');
      headers.push([name, v]);
    }
  } else if (rawHeaders !== undefined) {
    throw new Error('headers must be a list of pairs or an object');
  }
  const bodyText = text('body');
  const bodyBase64 = text('bodyBase64');
  if (bodyText !== undefined && bodyBase64 !== undefined) throw new Error('give at most one of body and bodyBase64');
  const body = bodyText !== undefined ? Buffer.from(bodyText, 'utf8') : bodyBase64 !== undefined ? Buffer.from(bodyBase64, 'base64') : undefined;
  if (body && body.length > MAX_FILE_BYTES) throw new Error('body too large');
  if (body && !headers.some(([name]) => name.toLowerCase() === 'content-length' || name.toLowerCase() === 'transfer-encoding')) {
    headers.push(['Content-Length', String(body.length)]);
  }
  const at = text('receivedAt');
  const receivedAt = at === undefined ? now : Date.parse(at);
  if (!Number.isFinite(receivedAt)) throw new Error('receivedAt must be an ISO 8601 date and time');
  const label = text('label');
  return { line, ...(label !== undefined ? { label } : {}), peer, method, target: path, headers, ...(body ? { body } : {}), receivedAt };
}

function inboundOf(record: ReplayRecord): InboundRequest {
  const body = record.body ?? Buffer.alloc(0);
  return {
    method: record.method,
    target: record.target,
    headers: nodeHeaders(record.headers),
    rawHeaders: record.headers.flat(),
    peer: record.peer,
    requestId: `replay-line-${record.line}`,
    readBody: (limit) => (body.length > limit ? Promise.reject(new PayloadTooLargeError('body over limit')) : Promise.resolve(body)),
  };
}

export interface Replayer {
  replay(record: ReplayRecord): Promise<ReplayOutcome>;
}

/** Builds the two lifecycles (the configuration's policy, and strict measuring) over one registry and PDS source. */
export function createReplayer(config: Config, registry: EndpointRegistry, pds: PdsLookup): Replayer {
  let clock = Date.now();
  const now = () => clock;
  const withoutRateLimits = (stages: StageSet): StageSet => ({ ...stages, 'rate-limit': { name: 'rate-limit', run: () => PASS } });
  const lifecycleFor = (policy: RulePolicy) =>
    new RequestLifecycle({ config, registry, now, stages: withoutRateLimits(createStages(config, { pds, now, policy })) });
  const inline = lifecycleFor(RulePolicy.fromConfig(config));
  const strict = lifecycleFor(new RulePolicy({ profile: 'strict', mode: 'report' }));
  return {
    async replay(record) {
      clock = record.receivedAt;
      const decision = await inline.run(inboundOf(record));
      const measured = await strict.run(inboundOf(record));
      return {
        line: record.line,
        ...(record.label !== undefined ? { label: record.label } : {}),
        action: decision.action,
        ...(decision.action === 'reject' ? { status: decision.status, code: decision.code, rule: decision.rule } : {}),
        reported: decision.ctx?.reported ?? [],
        strictRules: firedRules(measured),
      };
    },
  };
}

function firedRules(decision: Decision): RuleId[] {
  const rules = [...(decision.ctx?.reported ?? [])];
  if (decision.action === 'reject') rules.push(decision.rule);
  return rules;
}

/** One line per request. */
export function describeOutcome(o: ReplayOutcome): string {
  const name = `line ${o.line}${o.label ? ` (${o.label})` : ''}`;
  const reported = o.reported.length > 0 ? `; reported: ${o.reported.join(', ')}` : '';
  if (o.action === 'forward') return `${name}: forward${reported}`;
  return `${name}: reject ${o.status} ${o.code} (${o.rule})${reported}`;
}

/** What the configuration does with a rule that fired under strict: its action, or the wider reading it takes. */
function currentAction(policy: RulePolicy, rule: RuleId, outcomes: readonly ReplayOutcome[]): string {
  const action = policy.action(rule);
  if (action !== 'enforce') return action;
  // Enforced, yet it never refused a request strict faults for it: the profile's reading accepts it.
  const faulted = outcomes.filter((o) => o.strictRules.includes(rule));
  const acted = faulted.some((o) => o.rule === rule || o.reported.includes(rule));
  return acted || faulted.every((o) => o.action === 'reject') ? 'enforce' : 'enforce (reading accepts)';
}

/** The per-rule table: every rule strict fires across the file, how often, its action now and under strict. */
export function ruleTable(config: Config, outcomes: readonly ReplayOutcome[]): string {
  const policy = RulePolicy.fromConfig(config);
  const counts = new Map<RuleId, number>();
  for (const o of outcomes) {
    for (const rule of new Set([...o.strictRules, ...o.reported, ...(o.rule ? [o.rule] : [])])) counts.set(rule, (counts.get(rule) ?? 0) + 1);
  }
  const rows = RULE_IDS.filter((rule) => counts.has(rule)).map((rule) => [
    rule, ruleDefinition(rule).class, String(counts.get(rule)), currentAction(policy, rule, outcomes), 'enforce',
  ]);
  const header = ['rule', 'class', 'requests', `action (${config.policy.profile}${config.policy.mode === 'report' ? ', mode report' : ''})`, 'action (strict)'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const format = (row: readonly string[]) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...rows.map(format)].join('\n');
}

export async function runReplayCommand(argv: readonly string[], io: CommandIo = STDIO): Promise<number> {
  const args = readCommandArgs(REPLAY_COMMAND, argv, io);
  if (typeof args === 'number') return args;
  const file = args.positionals[0]!;
  let config: Config;
  try {
    config = loadConfig(configPathFromEnv(args.values.config)).config;
  } catch (err) {
    io.err(`nems-gateway replay: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    return 2;
  }
  let records: ReplayRecord[];
  try {
    const text = readFileSync(file);
    if (text.length > MAX_FILE_BYTES) return usageError(REPLAY_COMMAND, `${file} is larger than ${MAX_FILE_BYTES} bytes`, io);
    records = parseReplayRecords(text.toString('utf8'));
  } catch (err) {
    io.err(`nems-gateway replay: ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 2;
  }
  const registry = await openEndpointRegistry(config);
  const pds = await openPdsLookup(config);
  try {
    const replayer = createReplayer(config, registry, pds.lookup);
    const outcomes: ReplayOutcome[] = [];
    for (const record of records) {
      const outcome = await replayer.replay(record);
      outcomes.push(outcome);
      io.out(`${describeOutcome(outcome)}\n`);
    }
    const refused = outcomes.filter((o) => o.action === 'reject').length;
    io.out(`\n${outcomes.length} requests: ${outcomes.length - refused} forwarded, ${refused} refused (rate limits not applied)\n\n`);
    io.out(`${ruleTable(config, outcomes)}\n`);
    return refused > 0 ? 1 : 0;
  } finally {
    await pds.lookup.close();
    await registry.close?.();
  }
}
