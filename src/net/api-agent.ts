// The HTTP client of the gateway's calls out to NHS APIs (PDS FHIR, SDS FHIR): one undici Agent with every phase
// time-boxed and the response body capped, and one reading of undici's transport errors. Each client turns the
// reading into its own error (PdsUnavailableError, SdsUnavailableError).
import { createRequire } from 'node:module';
import type { Agent, request as undiciRequest } from 'undici';

export interface ApiAgentOptions {
  /** Connect, response-headers and body-idle time box, each (ms). */
  readonly timeoutMs: number;
  /** Sockets kept to the API's origin. */
  readonly connections: number;
  /** A larger response body fails the call (UND_ERR_RES_EXCEEDED_MAX_SIZE). */
  readonly maxBodyBytes: number;
}

export interface ApiAgent {
  readonly agent: Agent;
  readonly request: typeof undiciRequest;
}

export function createApiAgent(options: ApiAgentOptions): ApiAgent {
  // Loaded here, not at import: a gateway on local PDS data and a file registry never pays for undici's memory.
  const undici = createRequire(import.meta.url)('undici') as { Agent: typeof Agent; request: typeof undiciRequest };
  const agent = new undici.Agent({
    connect: { timeout: options.timeoutMs },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 10_000,
    connections: options.connections,
    maxResponseSize: options.maxBodyBytes,
  });
  return { agent, request: undici.request };
}

/** What an undici transport error means to the caller, as the reason and message of its own error class. */
export interface TransportFailure {
  readonly reason: 'timeout' | 'bad-response' | 'unreachable';
  readonly message: string;
}

/** Reads an undici transport error from a call to `api` (e.g. "PDS"); `unreachable` covers everything not named. */
export function transportFailure(api: string, err: unknown): TransportFailure {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return { reason: 'timeout', message: `${api} did not answer in time` };
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return { reason: 'bad-response', message: `${api} response body is too large` };
    default:
      return typeof code === 'string' && code.startsWith('HPE_')
        ? { reason: 'bad-response', message: `${api} sent a malformed HTTP response` }
        : { reason: 'unreachable', message: `${api} could not be reached` };
  }
}
