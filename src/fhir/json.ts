// Safe FHIR JSON parsing (issue 4 point 1). The bytes are capped and decoded as strict UTF-8, then one linear
// pre-scan bounds nesting depth and key count and refuses duplicate or prototype-polluting keys, before
// JSON.parse ever runs. Duplicate keys matter: two parsers taking different copies is a smuggling vector.
import { decodeBodyText } from './body-text.js';

export interface JsonLimits {
  /** Deepest object/array nesting accepted. A Subscription needs 4. */
  readonly maxDepth: number;
  /** Total object keys in the document. */
  readonly maxKeys: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = Object.freeze({ maxDepth: 32, maxKeys: 10_000 });

export type JsonParseFailureReason =
  | 'too-large'
  | 'empty'
  | 'encoding'
  | 'too-deep'
  | 'too-many-keys'
  | 'forbidden-key'
  | 'duplicate-key'
  | 'syntax';

export type JsonParseResult =
  | { readonly ok: true; readonly value: unknown }
  /** `detail` is gateway-written and never quotes the document. */
  | { readonly ok: false; readonly reason: JsonParseFailureReason; readonly detail: string };

type Failure = Extract<JsonParseResult, { ok: false }>;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function fail(reason: JsonParseFailureReason, detail: string): Failure {
  return { ok: false, reason, detail };
}

/** Parses a JSON body. Never throws. A UTF-8 byte-order mark is tolerated (RFC 8259 §8.1). */
export function parseFhirJson(body: Buffer, maxBytes: number, limits: Partial<JsonLimits> = {}): JsonParseResult {
  const lim: JsonLimits = { ...DEFAULT_JSON_LIMITS, ...limits };
  const decoded = decodeBodyText(body, maxBytes);
  if (!decoded.ok) return decoded;
  const text = decoded.text;
  const scanned = preScan(text, lim);
  if (scanned) return scanned;
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return fail('syntax', 'JSON syntax error');
  }
}

/**
 * Walks the text once, tracking strings, nesting and the keys of each open object. It does not validate the
 * full grammar (JSON.parse does); it only has to be right about where strings and keys are in valid JSON, and
 * bail out on anything it cannot follow.
 */
function preScan(text: string, lim: JsonLimits): Failure | undefined {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const open: (Set<string> | null)[] = [];
  let keys = 0;
  let lastStringStart = -1;
  let lastStringEnd = -1;
  let lastStringEscaped = false;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      i++;
      while (i < len) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i += 2;
        } else if (d === 0x22) break;
        else i++;
      }
      if (i >= len) return fail('syntax', 'unterminated string');
      lastStringStart = start;
      lastStringEnd = i + 1;
      lastStringEscaped = escaped;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      open.push(c === 0x7b ? new Set<string>() : null);
      if (open.length > lim.maxDepth) return fail('too-deep', `nested deeper than ${lim.maxDepth}`);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (open.pop() === undefined) return fail('syntax', 'unbalanced brackets');
    } else if (c === 0x3a /* : */) {
      const keysOfObject = open[open.length - 1];
      if (!keysOfObject || lastStringEnd === -1 || !onlyJsonSpace(text, lastStringEnd, i)) {
        return fail('syntax', 'JSON syntax error');
      }
      keys++;
      if (keys > lim.maxKeys) return fail('too-many-keys', `more than ${lim.maxKeys} keys`);
      // A key without escapes is its own text; JSON.parse decodes the others (and refuses bad escapes).
      let name: string;
      if (!lastStringEscaped) {
        name = text.slice(lastStringStart + 1, lastStringEnd - 1);
      } else {
        try {
          name = String(JSON.parse(text.slice(lastStringStart, lastStringEnd)));
        } catch {
          return fail('syntax', 'JSON syntax error');
        }
      }
      if (FORBIDDEN_KEYS.has(name)) return fail('forbidden-key', 'reserved property name');
      if (keysOfObject.has(name)) return fail('duplicate-key', 'repeated property name in one object');
      keysOfObject.add(name);
      lastStringEnd = -1;
    }
  }
  if (open.length !== 0) return fail('syntax', 'unbalanced brackets');
  return undefined;
}

/** True when text[from, to) is JSON white space only (RFC 8259 §2: space, tab, LF, CR). */
function onlyJsonSpace(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}
