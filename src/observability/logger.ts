// One logger factory with the one redaction list. Request lines carry the request id, endpoint and outcome;
// never an NHS number, JWT, certificate or key (those fields are censored even if a caller passes them).
import pino, { type Logger, type LoggerOptions } from 'pino';

export const REDACTED = '[REDACTED]';

/**
 * The redaction list, part 1: every field that could carry a secret or patient identifier, wherever it appears in
 * a log object. Paths are exact (pino/fast-redact), so header names are listed in both spellings a caller may use.
 */
export const REDACT_PATHS: readonly string[] = [
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'request.headers.authorization',
  'Authorization', '*.Authorization', 'headers.Authorization', 'req.headers.Authorization', 'request.headers.Authorization',
  'headers.cookie', '*.headers.cookie', 'headers["set-cookie"]', '*.headers["set-cookie"]',
  'headers.apikey', '*.headers.apikey', 'apiKey', '*.apiKey', 'password', '*.password',
  'jwt', '*.jwt', 'token', '*.token', 'access_token', '*.access_token', 'client_assertion', '*.client_assertion',
  'nhsNumber', '*.nhsNumber', 'nhsNumbers', '*.nhsNumbers', 'nhs_number', '*.nhs_number', 'requesting_patient', '*.requesting_patient',
  'criteria', '*.criteria', 'body', '*.body',
  'cert', '*.cert', 'key', '*.key', 'privateKey', '*.privateKey', 'pem', '*.pem',
];

/**
 * The redaction list, part 2: values recognised wherever they are (messages, error text, fields not listed
 * above), applied to every line as written. A path list alone cannot see a token inside an error message.
 */
export const REDACT_PATTERNS: readonly RegExp[] = [
  /** Bearer credentials with their scheme (the scheme name is case-insensitive, RFC 9110 §11.1). */
  /\bBearer\b\s*[A-Za-z0-9._~+/=-]*/gi,
  /** JWTs, signed or not: base64url('{"…') header, payload, optional signature. */
  /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g,
  /** PEM blocks (certificates, keys, CRLs), also cut short: up to the end of the JSON string. */
  /-----BEGIN (?:[^"\\]|\\.)*/g,
  /** NHS numbers, valid or not (a rejected one is still patient data): 10 digits, optionally 3-3-4 spaced. */
  /(?<![0-9A-Za-z])\d{3}[ -]?\d{3}[ -]?\d{4}(?![0-9A-Za-z])/g,
];

/** Cheap pre-check so ordinary lines skip the scan. */
const MAY_NEED_SCRUBBING = /(?<![0-9A-Za-z])\d{3}[ -]?\d{3}[ -]?\d{4}(?![0-9A-Za-z])|eyJ|bearer|-----BEGIN/i;
/** JSON string literals, and bare JSON numbers of 10 digits (which become the string "[REDACTED]"). */
const JSON_TOKENS = /"(?:[^"\\]|\\.)*"|(?<![\w."-])\d{10}(?![\w.])/g;

/** Applies REDACT_PATTERNS to one serialised log line, keeping it valid JSON. */
export function scrubLogLine(line: string): string {
  if (!MAY_NEED_SCRUBBING.test(line)) return line;
  return line.replace(JSON_TOKENS, (token) => {
    if (token[0] !== '"') return `"${REDACTED}"`;
    let out = token;
    for (const pattern of REDACT_PATTERNS) out = out.replace(pattern, REDACTED);
    return out;
  });
}

export interface LogOutputOptions {
  /** Lines are written to stdout in batches of up to this many bytes (0: each line as it is logged; at most 16000,
   * below SonicBoom's largest single write). */
  readonly bufferBytes?: number;
  /** With a buffer, what is held is written at least this often, and always when the process exits. */
  readonly flushIntervalMs?: number;
}

/**
 * stdout as pino's synchronous SonicBoom, optionally buffered as nginx's `access_log … buffer= flush=` and Envoy's
 * access-log flush interval are: under load one write per batch of lines instead of one per request (measured ~8 µs
 * of CPU per request on the benchmark GET). What is held is flushed on a timer and on exit (including an uncaught
 * exception); only a hard kill can lose it, at most `bufferBytes` or `flushIntervalMs` of lines.
 */
export function stdoutDestination(opts: LogOutputOptions = {}): pino.DestinationStream {
  const bufferBytes = opts.bufferBytes ?? 0;
  const stream = pino.destination({ dest: 1, sync: true, minLength: bufferBytes });
  if (bufferBytes > 0) {
    const flush = () => {
      try {
        stream.flushSync();
      } catch {
        // stdout closed or not writable now: the lines stay buffered for the next attempt or are lost with it.
      }
    };
    setInterval(flush, opts.flushIntervalMs ?? 1000).unref();
    process.once('exit', flush);
  }
  return stream;
}

let stampedAt = -1;
let stamp = '';
/**
 * pino's isoTime, made once per millisecond: under load several request lines share a millisecond, and building the
 * ISO string was ~1 % of a keep-alive GET's CPU.
 */
function isoTime(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'nems-gateway' },
    timestamp: isoTime,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    formatters: { level: (label) => ({ level: label }) },
    hooks: { streamWrite: scrubLogLine },
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
