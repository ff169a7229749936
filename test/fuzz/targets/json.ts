// JSON (src/fhir/json.ts, src/fhir/body-text.ts) against an independent oracle: a strict recursive-descent
// RFC 8259 reader written here that records every object's keys (duplicates included, which JSON.parse hides),
// the deepest nesting and the key count. Contract: never throws; accepted exactly when the oracle finds valid
// JSON with no duplicate or reserved key within both caps; a refusal names one of the problems the oracle found
// (any refusal for a syntax error); details never quote the body; an accepted value re-serialises and parses to
// the same value, and holds no reserved own key anywhere.
import fc from 'fast-check';
import { DEFAULT_JSON_LIMITS, parseFhirJson, type JsonLimits, type JsonParseFailureReason, type JsonParseResult } from '../../../src/fhir/json.js';
import { EXPLICIT_SUBSCRIPTION, GENERIC_SUBSCRIPTION, subscriptionJson } from '../../helpers/bodies.js';
import { CANARY, excerpt, expectNoCanary, expectThat, printedAs, type CapProbe, type FuzzTarget } from '../harness.js';
import { applyMutations, mutationsArbitrary, type Mutation } from '../mutate.js';

const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);
/** nems.subscriptionMaxBytes default. */
const SUBSCRIPTION_MAX_BYTES = 256 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// The oracle.

type OracleVerdict =
  | { readonly valid: false }
  /** Nested deeper than the oracle follows (far past any cap): whatever else, it must be refused. */
  | { readonly valid: 'too-deep-to-follow' }
  | { readonly valid: true; readonly depth: number; readonly keys: number; readonly duplicate: boolean; readonly reserved: boolean };

class OracleSyntaxError extends Error {}
class OracleTooDeep extends Error {}
/** The oracle is recursive; past this depth (30 × the default cap) it stops rather than overflow the stack. */
const ORACLE_MAX_DEPTH = 1000;

const LITERAL = /true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

export function jsonOracle(text: string): OracleVerdict {
  let i = 0;
  let depth = 0;
  let maxDepth = 0;
  let keys = 0;
  let duplicate = false;
  let reserved = false;
  const fail = (): never => {
    throw new OracleSyntaxError();
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const string = (): string => {
    if (text[i] !== '"') fail();
    let out = '';
    i++;
    for (;;) {
      if (i >= text.length) fail();
      const c = text[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c.charCodeAt(0) < 0x20) fail();
      if (c === '\\') {
        const e = text[i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && simple[e] !== undefined) {
          out += simple[e];
          i += 2;
        } else if (e === 'u' && /^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail();
      } else {
        out += c;
        i++;
      }
    }
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      depth++;
      if (depth > ORACLE_MAX_DEPTH) throw new OracleTooDeep();
      maxDepth = Math.max(maxDepth, depth);
      i++;
      space();
      const close = c === '{' ? '}' : ']';
      const seen = new Set<string>();
      if (text[i] === close) i++;
      else {
        for (;;) {
          if (c === '{') {
            space();
            const key = string();
            keys++;
            if (seen.has(key)) duplicate = true;
            if (RESERVED.has(key)) reserved = true;
            seen.add(key);
            space();
            if (text[i] !== ':') fail();
            i++;
          }
          value();
          space();
          if (text[i] === ',') {
            i++;
            continue;
          }
          if (text[i] === close) {
            i++;
            break;
          }
          fail();
        }
      }
      depth--;
      return;
    }
    if (c === '"') {
      string();
      return;
    }
    LITERAL.lastIndex = i;
    const literal = LITERAL.exec(text);
    if (!literal) fail();
    i += literal![0].length;
  };
  try {
    value();
    space();
    if (i !== text.length) fail();
  } catch (error) {
    if (error instanceof OracleSyntaxError) return { valid: false };
    if (error instanceof OracleTooDeep) return { valid: 'too-deep-to-follow' };
    throw error;
  }
  return { valid: true, depth: maxDepth, keys, duplicate, reserved };
}

// ---------------------------------------------------------------------------------------------------------------
// Generation: JSON written as a tree of raw pieces, so keys can be repeated and spelt with escapes.

type JsonNode =
  | { readonly kind: 'object'; entries: [string, JsonNode][] }
  | { readonly kind: 'array'; items: JsonNode[] }
  | { readonly kind: 'literal'; readonly raw: string };

function fromValue(value: unknown): JsonNode {
  if (Array.isArray(value)) return { kind: 'array', items: value.map(fromValue) };
  if (value !== null && typeof value === 'object') {
    return { kind: 'object', entries: Object.entries(value).map(([k, v]) => [JSON.stringify(k), fromValue(v)]) };
  }
  return { kind: 'literal', raw: JSON.stringify(value) ?? 'null' };
}

function write(node: JsonNode, space: string): string {
  switch (node.kind) {
    case 'literal':
      return node.raw;
    case 'array':
      return `[${node.items.map((n) => `${space}${write(n, space)}`).join(',')}${space}]`;
    case 'object':
      return `{${node.entries.map(([k, v]) => `${space}${k}${space}:${space}${write(v, space)}`).join(',')}${space}}`;
  }
}

function containers(root: JsonNode): JsonNode[] {
  const out: JsonNode[] = [];
  const walk = (n: JsonNode) => {
    if (n.kind === 'literal') return;
    out.push(n);
    if (n.kind === 'array') n.items.forEach(walk);
    else n.entries.forEach(([, v]) => walk(v));
  };
  walk(root);
  return out;
}

/** Spells a key with \u escapes (every character, or the first), which JSON.parse decodes to the same key. */
function escapedKey(raw: string, all: boolean): string {
  const key = JSON.parse(raw) as string;
  const chars = key.split('').map((c, i) => (all || i === 0 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : JSON.stringify(c).slice(1, -1)));
  return `"${chars.join('')}"`;
}

type JsonEdit =
  | { readonly op: 'duplicate-key' | 'escape-key' | 'escape-all' | 'drop'; readonly at: number }
  | { readonly op: 'add-key'; readonly at: number; readonly key: number; readonly value: number }
  | { readonly op: 'cap'; readonly at: number; readonly cap: 'depth' | 'keys'; readonly delta: number };

const KEYS = ['__proto__', 'constructor', 'prototype', 'resourceType', 'id', 'status', 'criteria', '', 'a', CANARY, '_status', 'toString', '__proto__ ', 'a\u0000'];
const VALUES = ['null', 'true', '1', '-0', '1e400', '0.1', '"x"', `"${CANARY}"`, '[]', '{}', '"\\ud800"', '"\\u0000"', '{"__proto__":{"polluted":1}}'];

const position = fc.noBias(fc.nat({ max: 0x7fffffff }));
const jsonEdit: fc.Arbitrary<JsonEdit> = fc.oneof(
  fc.record({ op: fc.constantFrom('duplicate-key' as const, 'escape-key' as const, 'escape-all' as const, 'drop' as const), at: position }),
  fc.record({ op: fc.constant('add-key' as const), at: position, key: fc.nat({ max: KEYS.length - 1 }), value: fc.nat({ max: VALUES.length - 1 }) }),
  fc.record({ op: fc.constant('cap' as const), at: position, cap: fc.constantFrom('depth' as const, 'keys' as const), delta: fc.integer({ min: -1, max: 2 }) }),
);

function applyEdit(root: JsonNode, edit: JsonEdit, lim: JsonLimits): void {
  const all = containers(root);
  if (all.length === 0) return;
  const target = all[edit.at % all.length]!;
  const objects = all.filter((n): n is Extract<JsonNode, { kind: 'object' }> => n.kind === 'object');
  const object = objects.length > 0 ? objects[edit.at % objects.length]! : undefined;
  switch (edit.op) {
    case 'duplicate-key':
      if (object && object.entries.length > 0) object.entries.push([...object.entries[edit.at % object.entries.length]!]);
      break;
    case 'escape-key':
    case 'escape-all':
      if (object && object.entries.length > 0) {
        const entry = object.entries[edit.at % object.entries.length]!;
        if (entry[0].length > 2) entry[0] = escapedKey(entry[0], edit.op === 'escape-all');
      }
      break;
    case 'drop':
      if (object && object.entries.length > 0) object.entries.splice(edit.at % object.entries.length, 1);
      break;
    case 'add-key':
      object?.entries.push([JSON.stringify(KEYS[edit.key]), { kind: 'literal', raw: VALUES[edit.value]! }]);
      break;
    case 'cap':
      if (edit.cap === 'depth') {
        // Wrap a literal in arrays/objects until the document is maxDepth + delta deep.
        const wanted = lim.maxDepth + edit.delta - depthOf(root);
        let inner: JsonNode = { kind: 'literal', raw: '0' };
        for (let k = 0; k < wanted && k < 2048; k++) inner = k % 2 === 0 ? { kind: 'array', items: [inner] } : { kind: 'object', entries: [['"k"', inner]] };
        if (target.kind === 'array') target.items.push(inner);
        else if (target.kind === 'object') target.entries.push([`"deep${edit.at}"`, inner]);
      } else if (object && lim.maxKeys <= 2_000) {
        // The default 10 000-key cap is left to the cap probes: every such input would be 100 KB.
        const wanted = lim.maxKeys + edit.delta - countKeys(root);
        for (let k = 0; k < wanted && k < 20_000; k++) object.entries.push([`"k${k}_${edit.at}"`, { kind: 'literal', raw: '0' }]);
      }
      break;
  }
}

function depthOf(node: JsonNode): number {
  if (node.kind === 'literal') return 0;
  const kids = node.kind === 'array' ? node.items : node.entries.map(([, v]) => v);
  return 1 + Math.max(0, ...kids.map(depthOf));
}

function countKeys(node: JsonNode): number {
  if (node.kind === 'literal') return 0;
  if (node.kind === 'array') return node.items.reduce((n, c) => n + countKeys(c), 0);
  return node.entries.reduce((n, [, v]) => n + 1 + countKeys(v), 0);
}

export interface JsonInput {
  readonly body: Buffer;
  readonly limits?: Partial<JsonLimits>;
  readonly maxBytes: number;
}

const JSON_TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u', '\\"', 'null', '1e999', '-', ' ', '\n', '"__proto__":1,', '"a":1,', '\u2028', '\ufeff', '//', '/*', 'NaN', "'"];
const JSON_TOKEN_BYTES = JSON_TOKENS.map((t) => Buffer.from(t));

const bases: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...[EXPLICIT_SUBSCRIPTION, GENERIC_SUBSCRIPTION].map((m) => JSON.parse(subscriptionJson(m)) as unknown)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);

const smallLimits = fc.option(
  fc.record({ maxDepth: fc.integer({ min: 1, max: 12 }), maxKeys: fc.integer({ min: 1, max: 60 }) }, { requiredKeys: [] }),
  { freq: 2, nil: undefined },
);

export const jsonInputArbitrary: fc.Arbitrary<JsonInput> = fc
  .record({
    base: bases,
    limits: smallLimits,
    edits: fc.array(jsonEdit, { maxLength: 4 }),
    space: fc.constantFrom('', ' ', '\n', '\r\n\t'),
    mutations: fc.oneof({ weight: 2, arbitrary: fc.constant([] as Mutation[]) }, { weight: 3, arbitrary: mutationsArbitrary(JSON_TOKENS.length, 1, 3) }),
    tightCap: fc.boolean(),
  })
  .map(({ base, limits, edits, space, mutations, tightCap }) => {
    const lim = { ...DEFAULT_JSON_LIMITS, ...limits };
    const root = fromValue(base);
    for (const edit of edits) applyEdit(root, edit, lim);
    const text = write(root, space);
    const body = applyMutations(Buffer.from(text, 'utf8'), mutations, JSON_TOKEN_BYTES, [Buffer.from(subscriptionJson(EXPLICIT_SUBSCRIPTION))]);
    const input: JsonInput = { body, ...(limits ? { limits } : {}), maxBytes: tightCap ? body.length : SUBSCRIPTION_MAX_BYTES };
    return printedAs(input, () => `{ limits: ${JSON.stringify(limits ?? 'default')}, maxBytes: ${input.maxBytes}, body: ${excerpt(body, 2000)} }`);
  });

// ---------------------------------------------------------------------------------------------------------------
// The contract.

const REASONS: ReadonlySet<JsonParseFailureReason> = new Set<JsonParseFailureReason>(['too-large', 'empty', 'encoding', 'too-deep', 'too-many-keys', 'forbidden-key', 'duplicate-key', 'syntax']);

function decodeIndependently(body: Buffer): string | undefined {
  const text = body.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(body)) return undefined;
  return text.startsWith('\ufeff') ? text.slice(1) : text;
}

function checkNoReservedKeys(value: unknown): void {
  if (value === null || typeof value !== 'object') return;
  expectThat(Object.getPrototypeOf(value) === Object.prototype || Array.isArray(value), 'an accepted value has an unusual prototype');
  for (const key of Object.keys(value)) {
    expectThat(!RESERVED.has(key), 'an accepted value holds a reserved key');
    checkNoReservedKeys((value as Record<string, unknown>)[key]);
  }
}

export function checkJson(input: JsonInput, result: JsonParseResult): void {
  const lim = { ...DEFAULT_JSON_LIMITS, ...input.limits };
  if (input.body.length > input.maxBytes) {
    expectThat(!result.ok && result.reason === 'too-large', 'a body over the byte cap was not refused as too-large');
    return;
  }
  if (!result.ok) {
    expectThat(REASONS.has(result.reason), `undocumented refusal reason ${String(result.reason)}`);
    expectThat(typeof result.detail === 'string' && result.detail.length > 0 && result.detail.length <= 120, 'refusal detail missing or too long');
    expectNoCanary(result.detail, 'refusal detail');
  }
  if (input.body.length === 0) {
    expectThat(!result.ok && result.reason === 'empty', 'an empty body was not refused as empty');
    return;
  }
  const text = decodeIndependently(input.body);
  if (text === undefined) {
    expectThat(!result.ok && result.reason === 'encoding', 'a body that is not UTF-8 was not refused as encoding');
    return;
  }
  const oracle = jsonOracle(text);
  if (oracle.valid === 'too-deep-to-follow') {
    expectThat(!result.ok, `accepted a body nested deeper than ${ORACLE_MAX_DEPTH}`);
    return;
  }
  if (!oracle.valid) {
    expectThat(!result.ok, 'accepted a body that is not valid JSON');
    return;
  }
  const problems = new Set<JsonParseFailureReason>();
  if (oracle.depth > lim.maxDepth) problems.add('too-deep');
  if (oracle.keys > lim.maxKeys) problems.add('too-many-keys');
  if (oracle.duplicate) problems.add('duplicate-key');
  if (oracle.reserved) problems.add('forbidden-key');
  if (!result.ok) {
    expectThat(problems.has(result.reason), `refused valid JSON as ${result.reason}; the oracle found ${[...problems].join(', ') || 'nothing wrong'}`);
    return;
  }
  expectThat(problems.size === 0, `accepted JSON with ${[...problems].join(', ')}`);
  checkNoReservedKeys(result.value);
  const written = JSON.stringify(result.value);
  const again = parseFhirJson(Buffer.from(written, 'utf8'), Number.MAX_SAFE_INTEGER, lim);
  expectThat(again.ok && JSON.stringify(again.value) === written, 'an accepted value does not survive being written out and parsed again');
}

function probe(name: string, text: string): CapProbe<JsonInput> {
  return { name, input: { body: Buffer.from(text), maxBytes: SUBSCRIPTION_MAX_BYTES } };
}

export const jsonTarget: FuzzTarget<JsonInput, JsonParseResult> = {
  name: 'json',
  covers: 'src/fhir/json.ts, src/fhir/body-text.ts',
  arbitrary: jsonInputArbitrary,
  run: (input) => parseFhirJson(input.body, input.maxBytes, input.limits),
  check: checkJson,
  classify: (out) => (out.ok ? 'accepted' : `refused: ${out.reason}`),
  show: (input) => input.body,
  capProbes: () => {
    const { maxDepth, maxKeys } = DEFAULT_JSON_LIMITS;
    const keys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',')}}`;
    return [
      probe(`depth ${maxDepth}`, `${'['.repeat(maxDepth)}${']'.repeat(maxDepth)}`),
      probe(`depth ${maxDepth + 1}`, `${'['.repeat(maxDepth + 1)}${']'.repeat(maxDepth + 1)}`),
      probe(`${maxKeys} keys`, keys(maxKeys)),
      probe(`${maxKeys + 1} keys`, keys(maxKeys + 1)),
      { name: 'subscription cap + 1 byte', input: { body: Buffer.from(`"${'x'.repeat(SUBSCRIPTION_MAX_BYTES - 1)}"`), maxBytes: SUBSCRIPTION_MAX_BYTES } },
    ];
  },
  scaling: () => {
    const big = { maxKeys: 10_000_000 };
    const doc = (text: string): JsonInput => ({ body: Buffer.from(text), limits: big, maxBytes: 64 * 1024 * 1024 });
    const repeat = (unit: string, bytes: number) => unit.repeat(Math.max(1, Math.floor(bytes / unit.length)));
    return [
      { name: 'numbers', make: (n) => doc(`[${repeat('1234,', n)}0]`) },
      { name: 'strings with escapes', make: (n) => doc(`[${repeat('"a\\n\\u0041\\"",', n)}""]`) },
      { name: 'objects with distinct keys', make: (n) => doc(`[${repeat('{"a":1,"b":[true]},', n)}{}]`) },
      { name: 'keys of one object', make: (n) => doc(`{${Array.from({ length: Math.max(1, Math.floor(n / 12)) }, (_, i) => `"k${i}":0`).join(',')}}`) },
      { name: 'escaped keys', make: (n) => doc(`{${Array.from({ length: Math.max(1, Math.floor(n / 16)) }, (_, i) => `"\\u006b${i}":0`).join(',')}}`) },
      { name: 'nesting 30 deep, repeated', make: (n) => doc(`[${repeat(`${'['.repeat(30)}${']'.repeat(30)},`, n)}0]`) },
    ];
  },
  ciRuns: 1500,
};
