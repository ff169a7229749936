// One logger factory with the one redaction list. Request lines carry the request id, endpoint and outcome;
// never an NHS number, JWT, certificate or key (those fields are censored even if a caller passes them).
import pino, { type Logger, type LoggerOptions } from 'pino';

/** Every field that could carry a secret or patient identifier, wherever it appears in a log object. */
export const REDACT_PATHS: readonly string[] = [
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'request.headers.authorization',
  'headers.cookie', '*.headers.cookie',
  'jwt', '*.jwt', 'token', '*.token', 'access_token', '*.access_token', 'client_assertion', '*.client_assertion',
  'nhsNumber', '*.nhsNumber', 'nhsNumbers', '*.nhsNumbers', 'requesting_patient', '*.requesting_patient',
  'criteria', '*.criteria', 'body', '*.body',
  'cert', '*.cert', 'key', '*.key', 'privateKey', '*.privateKey', 'pem', '*.pem',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'nems-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACT_PATHS], censor: '[REDACTED]' },
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
