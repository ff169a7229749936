// A loopback HTTP server that plays the PDS FHIR API and the NHS API platform token endpoint for client tests.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify, type KeyObject } from 'jose';
import { nhsNumberProblem } from '../../src/nems/nhs-number.js';

export const PDS_PATH = '/personal-demographics/FHIR/R4';
export const TOKEN_PATH = '/oauth2/token';
export const API_KEY = 'test-api-key';
export const KID = 'test-kid-1';

export type PatientHandler = (res: ServerResponse, req: IncomingMessage) => void;

export interface FakePds {
  readonly server: Server;
  readonly baseUrl: string;
  readonly tokenUrl: string;
  /** Per NHS number: how PDS answers. */
  readonly patients: Map<string, PatientHandler>;
  /** Headers of every Patient request, in order. */
  readonly patientRequests: IncomingHttpHeaders[];
  /** Decoded, verified client assertions, in order. */
  readonly assertions: Array<{ header: Record<string, unknown>; payload: Record<string, unknown> }>;
  /** Failed assertion checks (the test asserts this stays empty). */
  readonly assertionErrors: string[];
  /** Overrides the token endpoint's answer; default issues `token-<n>` for 599 s. */
  tokenHandler?: PatientHandler;
  /** When set, Patient requests must carry this bearer token. */
  requireAuth: boolean;
  issuedTokens: string[];
  /** The token endpoint's clock (ms), so tests that move the client's clock can move this one too. */
  now: () => number;
  close(): Promise<void>;
}

export function json(res: ServerResponse, status: number, body: unknown, contentType = 'application/fhir+json'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function operationOutcome(code: string, issueType = 'not-found') {
  return {
    resourceType: 'OperationOutcome',
    issue: [{
      severity: 'error', code: issueType,
      details: { coding: [{ system: 'https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode', version: '1', code, display: code }] },
    }],
  };
}

export function patient(id: string, extra: Record<string, unknown> = {}) {
  return {
    resourceType: 'Patient',
    id,
    identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: id }],
    meta: { versionId: '2', security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'U', display: 'unrestricted' }] },
    name: [{ use: 'usual', family: 'Smith', given: ['Jane'] }],
    birthDate: '2010-10-22',
    generalPractitioner: [{ type: 'Organization', identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'Y12345' } }],
    address: [
      { use: 'temp', postalCode: 'ZZ9 9ZZ' },
      { use: 'home', line: ['1 Trevelyan Square'], postalCode: 'LS1 6AE' },
    ],
    ...extra,
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 65_536) throw new Error('token request too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakePds(publicKey?: KeyObject): Promise<FakePds> {
  const fake: Omit<FakePds, 'server' | 'baseUrl' | 'tokenUrl' | 'close'> = {
    patients: new Map(),
    patientRequests: [],
    assertions: [],
    assertionErrors: [],
    requireAuth: false,
    issuedTokens: [],
    now: Date.now,
  };
  let tokenUrl = '';

  const handleToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const form = new URLSearchParams(await readBody(req));
    try {
      if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') throw new Error('content-type');
      if (form.get('grant_type') !== 'client_credentials') throw new Error('grant_type');
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') throw new Error('client_assertion_type');
      if (!publicKey) throw new Error('no public key configured');
      const { payload, protectedHeader } = await jwtVerify(form.get('client_assertion') ?? '', publicKey, {
        algorithms: ['RS512'], issuer: API_KEY, subject: API_KEY, audience: tokenUrl, requiredClaims: ['exp', 'jti'],
        currentDate: new Date(current.now()),
      });
      if (protectedHeader.kid !== KID) throw new Error('kid');
      if (payload.exp! > Math.floor(current.now() / 1000) + 300 + 5) throw new Error('exp more than 5 minutes ahead');
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(String(payload.jti))) throw new Error('jti');
      fake.assertions.push({ header: { ...protectedHeader }, payload: { ...payload } });
    } catch (err) {
      fake.assertionErrors.push((err as Error).message);
      json(res, 401, { error: 'invalid_client' }, 'application/json');
      return;
    }
    if (current.tokenHandler) return current.tokenHandler(res, req);
    const token = `token-${fake.issuedTokens.length + 1}`;
    fake.issuedTokens.push(token);
    json(res, 200, { access_token: token, expires_in: '599', token_type: 'Bearer', issued_at: String(Date.now()) }, 'application/json');
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === TOKEN_PATH) {
      handleToken(req, res).catch(() => res.destroy());
      return;
    }
    const match = /^\/personal-demographics\/FHIR\/R4\/Patient\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && match) {
      current.patientRequests.push({ ...req.headers });
      if (current.requireAuth && req.headers.authorization !== `Bearer ${current.issuedTokens.at(-1)}`) {
        json(res, 401, operationOutcome('ACCESS_DENIED', 'forbidden'));
        return;
      }
      const handler = current.patients.get(match[1]!);
      if (handler) return handler(res, req);
      // As PDS: a number that is not a valid NHS number is 400 INVALID_RESOURCE_ID ("Invalid NHS number").
      if (nhsNumberProblem(match[1]!, false)) {
        json(res, 400, operationOutcome('INVALID_RESOURCE_ID', 'value'));
        return;
      }
      json(res, 404, operationOutcome('RESOURCE_NOT_FOUND'));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/html' });
    res.end('<html>no such route</html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  tokenUrl = `${base}${TOKEN_PATH}`;

  const current: FakePds = Object.assign(fake, {
    server,
    baseUrl: `${base}${PDS_PATH}`,
    tokenUrl,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  return current;
}
