// A loopback stand-in for the SDS FHIR R4 API, owned by this project. It answers GET /Device and GET /Endpoint the
// way NHSDigital/spine-directory-service-api does in its mock-LDAP mode (commit dc9c89d, docker/sds-api/
// spine-directory-service/sds/request/*.py, specification/spine-directory-service.yaml): records held as LDAP
// attributes (as lookup/mock_data/*.json holds them), filtered as SDSMockClient's STRICT mode filters them, mapped to
// FHIR as fhir_json_mapper.py maps them, errors as error_handler.py words them (OperationOutcome, Spine codes).
// Beyond the published API, for tests: an API key check (the API platform's 401), paging with FHIR `next` links,
// queued faults, a slow mode and a down mode. Also runnable by hand: `node dist/test/doubles/sds-double.js --port N`.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { optionReader } from './cli-options.js';

/** An nhsAs record (accredited system), attribute names as the SDS LDAP schema spells them. */
export interface AsRecord {
  readonly uniqueIdentifier: readonly string[];
  readonly nhsIDCode: string;
  readonly nhsAsClient?: readonly string[];
  readonly nhsMHSPartyKey?: string;
  readonly nhsAsSvcIA: readonly string[];
  readonly nhsMhsManufacturerOrg?: string;
}

/** An nhsMhs record (message handling system / endpoint). */
export interface MhsRecord {
  readonly nhsIDCode: string;
  readonly nhsMHSPartyKey: string;
  readonly nhsMhsSvcIA: string | readonly string[];
  readonly nhsMhsFQDN?: string;
  readonly nhsMHSEndPoint?: readonly string[];
  readonly nhsMhsCPAId?: string;
  readonly uniqueIdentifier?: readonly string[];
  readonly nhsMHSSyncReplyMode?: string;
  readonly nhsMHSRetryInterval?: string;
  readonly nhsMHSRetries?: string;
  readonly nhsMHSPersistDuration?: string;
  readonly nhsMHSDuplicateElimination?: string;
  readonly nhsMHSAckRequested?: string;
  readonly nhsMHSActor?: readonly string[];
}

export interface SdsData {
  as: AsRecord[];
  mhs: MhsRecord[];
}

export interface SdsFault {
  /** Which requests it applies to (default: the next one). */
  readonly path?: '/Device' | '/Endpoint';
  /** Apply to this page number only (1-based). */
  readonly page?: number;
  readonly status?: number;
  /** Raw body instead of the OperationOutcome for `status`. */
  readonly body?: string;
  readonly contentType?: string;
  /** Destroy the connection without answering. */
  readonly reset?: boolean;
}

export interface SdsDoubleOptions {
  readonly data?: SdsData;
  /** When set, requests must carry `apikey: <this>` (else 401). */
  readonly apiKey?: string;
  /** Split results into pages of this many entries with `next` links (the published API sends one Bundle). */
  readonly pageSize?: number;
  readonly host?: string;
  readonly port?: number;
}

export interface SdsDouble {
  readonly url: string;
  readonly port: number;
  data: SdsData;
  pageSize: number | undefined;
  /** Queued faults, consumed in order by the requests they match. */
  readonly faults: SdsFault[];
  /** Every request received: method, path with query, headers. */
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  /** Hold every answer this long (ms); 0 answers at once. */
  delayMs: number;
  /** While true, every connection is destroyed unanswered (SDS down). */
  down: boolean;
  close(): Promise<void>;
}

const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
const SERVICE_ID_SYSTEM = 'https://fhir.nhs.uk/Id/nhsServiceInteractionId';
const PARTY_KEY_SYSTEM = 'https://fhir.nhs.uk/Id/nhsMhsPartyKey';
const URL_SDS_INTERACTION = 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId';
const URL_MANUFACTURING = 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-ManufacturingOrganisation';
const SPINE_SYSTEM = 'https://fhir.nhs.uk/STU3/ValueSet/Spine-ErrorOrWarningCode-1';
const PAGE_PARAM = '_page';

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function startSdsDouble(options: SdsDoubleOptions = {}): Promise<SdsDouble> {
  const sockets = new Set<Socket>();
  const state: SdsDouble = {
    url: '',
    port: 0,
    data: options.data ?? { as: [], mhs: [] },
    pageSize: options.pageSize,
    faults: [],
    requests: [],
    delayMs: 0,
    down: false,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer((req, res) => void handle(state, options, req, res));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (state.down) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(state, { port, url: `http://${options.host ?? '127.0.0.1'}:${port}` });
  return state;
}

async function handle(state: SdsDouble, options: SdsDoubleOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
  if (state.down) return void req.socket.destroy();
  if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
  const url = new URL(req.url ?? '/', 'http://sds.invalid');
  const page = Number(url.searchParams.get(PAGE_PARAM) ?? '1');
  const faultIndex = state.faults.findIndex((f) => (!f.path || f.path === url.pathname) && (!f.page || f.page === page));
  if (faultIndex !== -1) {
    const fault = state.faults.splice(faultIndex, 1)[0]!;
    if (fault.reset) return void req.socket.destroy();
    if (fault.body !== undefined) {
      res.writeHead(fault.status ?? 500, { 'content-type': fault.contentType ?? 'application/fhir+json' });
      return void res.end(fault.body);
    }
    return writeError(res, fault.status ?? 500, 'injected fault');
  }
  try {
    if (options.apiKey !== undefined && req.headers.apikey !== options.apiKey) throw new HttpError(401, 'Invalid ApiKey');
    if (url.pathname !== '/Device' && url.pathname !== '/Endpoint') throw new HttpError(404, 'Invalid resource path.');
    if (req.method !== 'GET') throw new HttpError(405, 'Method not allowed.');
    const correlationId = readCorrelationId(req);
    const accept = acceptType(req);
    const resources = url.pathname === '/Device' ? devices(state.data, url, state.pageSize !== undefined) : endpoints(state.data, url, state.pageSize !== undefined);
    const bundle = pageOf(resources, url, req, state.pageSize, page);
    const text = JSON.stringify(bundle, null, 2);
    res.writeHead(200, { 'content-type': accept, 'x-correlation-id': correlationId, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  } catch (err) {
    if (err instanceof HttpError) return writeError(res, err.status, err.message);
    writeError(res, 500, 'internal error');
  }
}

// ------------------------------------------------------------------------------------------------ query handling

/** base_handler.get_optional_query_param: the last `<system>|value` occurrence with a non-blank value. */
function queryParam(url: URL, name: string, system: string): string | undefined {
  const values = url.searchParams.getAll(name).filter((v) => v.includes('|') && v.split('|')[0] === system && v.slice(v.indexOf('|') + 1).trim() !== '');
  const last = values[values.length - 1];
  return last === undefined ? undefined : last.slice(last.indexOf('|') + 1);
}

function validateParams(url: URL, allowed: readonly string[], paging: boolean): void {
  for (const [name, value] of url.searchParams) {
    if (paging && name === PAGE_PARAM) continue;
    if (!allowed.includes(name)) throw new HttpError(400, `Illegal query parameter '${name}'`);
    if (name === 'organization' && !value.startsWith(`${ODS_SYSTEM}|`)) {
      throw new HttpError(400, `Missing or invalid 'organization' query parameter. Should be 'organization=${ODS_SYSTEM}|value'`);
    }
    if (name === 'identifier' && !value.startsWith(`${SERVICE_ID_SYSTEM}|`) && !value.startsWith(`${PARTY_KEY_SYSTEM}|`)) {
      throw new HttpError(400, `Missing or invalid 'identifier' query parameter. Should be one or both of: ['identifier=${SERVICE_ID_SYSTEM}|value', 'identifier=${PARTY_KEY_SYSTEM}|value'`);
    }
  }
}

function devices(data: SdsData, url: URL, paging: boolean): Record<string, unknown>[] {
  validateParams(url, ['organization', 'identifier', 'manufacturing-organization'], paging);
  const ods = queryParam(url, 'organization', ODS_SYSTEM);
  if (!ods) throw new HttpError(400, `Missing or invalid 'organization' query parameter. Should be 'organization=${ODS_SYSTEM}|value'`);
  const serviceId = queryParam(url, 'identifier', SERVICE_ID_SYSTEM);
  if (!serviceId) throw new HttpError(400, `Missing or invalid 'identifier' query parameter. Should be 'identifier=${SERVICE_ID_SYSTEM}|value'`);
  const manufacturer = queryParam(url, 'manufacturing-organization', ODS_SYSTEM);
  const partyKey = queryParam(url, 'identifier', PARTY_KEY_SYSTEM);
  return data.as
    .filter((r) => r.nhsIDCode === ods && r.nhsAsSvcIA.includes(serviceId)
      && (partyKey === undefined || r.nhsMHSPartyKey === partyKey)
      && (manufacturer === undefined || r.nhsMhsManufacturerOrg === manufacturer))
    .map(deviceResource);
}

function endpoints(data: SdsData, url: URL, paging: boolean): Record<string, unknown>[] {
  validateParams(url, ['organization', 'identifier'], paging);
  const ods = queryParam(url, 'organization', ODS_SYSTEM);
  const serviceId = queryParam(url, 'identifier', SERVICE_ID_SYSTEM);
  const partyKey = queryParam(url, 'identifier', PARTY_KEY_SYSTEM);
  if ((ods && !serviceId && !partyKey) || (!ods && (!serviceId || !partyKey))) {
    throw new HttpError(400, 'Missing or invalid query parameters. Should one of following combinations: [...]');
  }
  return data.mhs
    .filter((r) => (ods === undefined || r.nhsIDCode === ods)
      && (serviceId === undefined || (typeof r.nhsMhsSvcIA === 'string' ? r.nhsMhsSvcIA === serviceId : r.nhsMhsSvcIA.includes(serviceId)))
      && (partyKey === undefined || r.nhsMHSPartyKey === partyKey))
    .flatMap(endpointResources);
}

// ------------------------------------------------------------------------------------------------ FHIR mapping

/** Python truthiness, as the mapper tests attributes: LDAP answers hold empty lists for absent values. */
function truthy(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '' && value !== 0 && !(Array.isArray(value) && value.length === 0);
}

function identifier(system: string, value: string | undefined) {
  return truthy(value) ? { system, value } : undefined;
}

function valueReference(url: string, system: string, value: unknown) {
  return truthy(value) ? { url, valueReference: { identifier: { system, value } } } : undefined;
}

function compact<T>(items: Array<T | undefined>): T[] {
  return items.filter((i): i is T => i !== undefined);
}

/** fhir_json_mapper.build_device_resource */
function deviceResource(r: AsRecord): Record<string, unknown> {
  const device: Record<string, unknown> = { resourceType: 'Device', id: randomUUID() };
  const ids = compact([identifier('https://fhir.nhs.uk/Id/nhsSpineASID', r.uniqueIdentifier[0]), identifier(PARTY_KEY_SYSTEM, r.nhsMHSPartyKey)]);
  if (ids.length) device.identifier = ids;
  const extension = compact([
    valueReference(URL_MANUFACTURING, ODS_SYSTEM, r.nhsMhsManufacturerOrg),
    ...r.nhsAsSvcIA.map((v) => valueReference(URL_SDS_INTERACTION, SERVICE_ID_SYSTEM, v)),
  ]);
  if (extension.length) device.extension = extension;
  const client = r.nhsAsClient?.[0];
  if (client) device.owner = { identifier: { system: ODS_SYSTEM, value: client } };
  return device;
}

/** fhir_json_mapper.build_endpoint_resources: one Endpoint per nhsMHSEndPoint address. */
function endpointResources(r: MhsRecord): Record<string, unknown>[] {
  const addresses = truthy(r.nhsMHSEndPoint) ? r.nhsMHSEndPoint! : [undefined];
  return addresses.map((address) => {
    const endpoint: Record<string, unknown> = {
      resourceType: 'Endpoint',
      id: randomUUID(),
      status: 'active',
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-msg', display: 'HL7 FHIR Messaging' },
      payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'any', display: 'Any' }] }],
    };
    if (truthy(address)) endpoint.address = address;
    endpoint.managingOrganization = { identifier: { system: ODS_SYSTEM, value: r.nhsIDCode } };
    const ids = compact([
      identifier('https://fhir.nhs.uk/Id/nhsMhsFQDN', r.nhsMhsFQDN),
      identifier(PARTY_KEY_SYSTEM, r.nhsMHSPartyKey),
      identifier('https://fhir.nhs.uk/Id/nhsMhsCPAId', r.nhsMhsCPAId),
      identifier('https://fhir.nhs.uk/Id/nhsMHSId', r.uniqueIdentifier?.[0]),
    ]);
    if (ids.length) endpoint.identifier = ids;
    // _build_extension_array: the reliability attributes, each only when present.
    const str = (url: string, value: unknown) => (truthy(value) ? { url, valueString: value } : undefined);
    const reliability = compact<Record<string, unknown>>([
      str('nhsMHSSyncReplyMode', r.nhsMHSSyncReplyMode),
      str('nhsMHSRetryInterval', r.nhsMHSRetryInterval),
      truthy(r.nhsMHSRetries) ? { url: 'nhsMHSRetries', valueInteger: Number.parseInt(String(r.nhsMHSRetries), 10) } : undefined,
      str('nhsMHSPersistDuration', r.nhsMHSPersistDuration),
      str('nhsMHSDuplicateElimination', r.nhsMHSDuplicateElimination),
      str('nhsMHSAckRequested', r.nhsMHSAckRequested),
      str('nhsMHSActor', r.nhsMHSActor?.[0]),
    ]);
    const extension = compact<Record<string, unknown>>([
      reliability.length ? { url: 'https://fhir.nhs.uk/StructureDefinition/Extension-SDS-ReliabilityConfiguration', extension: reliability } : undefined,
      valueReference(URL_SDS_INTERACTION, SERVICE_ID_SYSTEM, r.nhsMhsSvcIA),
    ]);
    if (extension.length) endpoint.extension = extension;
    return endpoint;
  });
}

/** fhir_json_mapper.build_bundle_resource, optionally one page of it. */
function pageOf(resources: Record<string, unknown>[], url: URL, req: IncomingMessage, pageSize: number | undefined, page: number): Record<string, unknown> {
  const host = req.headers.host ?? 'localhost';
  const baseUrl = `http://${host}${url.pathname}/`;
  const selfUrl = `http://${host}${decodeURIComponent(url.pathname + url.search)}`;
  let entries = resources;
  const link: Array<{ relation: string; url: string }> = [{ relation: 'self', url: selfUrl }];
  if (pageSize !== undefined) {
    if (!Number.isInteger(page) || page < 1) throw new HttpError(400, `Illegal query parameter '${PAGE_PARAM}'`);
    entries = resources.slice((page - 1) * pageSize, page * pageSize);
    if (page * pageSize < resources.length) {
      const next = new URL(url.href);
      next.searchParams.set(PAGE_PARAM, String(page + 1));
      link.push({ relation: 'next', url: `http://${host}${next.pathname}${next.search}` });
    }
  }
  return {
    resourceType: 'Bundle',
    id: randomUUID(),
    type: 'searchset',
    total: resources.length,
    link,
    entry: entries.map((resource) => ({ fullUrl: `${baseUrl}${String(resource.id)}`, resource, search: { mode: 'match' } })),
  };
}

// ------------------------------------------------------------------------------------------------ errors

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function readCorrelationId(req: IncomingMessage): string {
  const value = req.headers['x-correlation-id'];
  if (value === undefined) return randomUUID().toUpperCase();
  if (typeof value !== 'string' || !UUID.test(value)) throw new HttpError(400, `Invalid X-Correlation-ID header. Should be an UUIDv4 matching regex '${UUID.source}'`);
  return value;
}

/** content_type_validator.get_valid_accept_type */
function acceptType(req: IncomingMessage): string {
  const types = (req.headers.accept ?? 'application/fhir+json').toLowerCase().split(',').map((t) => t.trim());
  if (types.includes('*/*') || types.includes('application/fhir+json')) return 'application/fhir+json';
  if (types.includes('application/json')) return 'application/json';
  throw new HttpError(406, 'Invalid Accept header in request, only: application/json or application/fhir+json are allowed');
}

/** error_handler.write_error: an OperationOutcome with a Spine code per status. */
function writeError(res: ServerResponse, status: number, diagnostics: string, correlationId = randomUUID().toUpperCase()): void {
  const [code, issueCode, text] = errorParts(status, diagnostics);
  const body = JSON.stringify({
    resourceType: 'OperationOutcome',
    id: correlationId,
    issue: [{ severity: 'error', code: issueCode, details: { coding: [{ system: SPINE_SYSTEM, code, display: SPINE_DISPLAY[code] ?? code }] }, diagnostics: text }],
  }, null, 4);
  res.writeHead(status, { 'content-type': 'application/fhir+json', 'x-correlation-id': correlationId, ...(status === 405 ? { allow: 'GET' } : {}) });
  res.end(body);
}

/** The displays error_handler.SpineCodings gives the codes used here. */
const SPINE_DISPLAY: Readonly<Record<string, string>> = {
  BAD_REQUEST: 'Bad request',
  ACCESS_DENIED: 'Access has been denied to process this request',
  NO_RECORD_FOUND: 'No record found',
  NOT_IMPLEMENTED: 'Not implemented',
  MISSING_OR_INVALID_HEADER: 'There is a required header missing or invalid',
  INTERNAL_SERVER_ERROR: 'Unexpected internal server error',
};

function errorParts(status: number, diagnostics: string): [string, string, string] {
  return status === 400 ? ['BAD_REQUEST', 'required', diagnostics]
    : status === 401 ? ['ACCESS_DENIED', 'forbidden', diagnostics]
    : status === 404 ? ['NO_RECORD_FOUND', 'not-found', 'HTTP endpoint not found']
    : status === 405 ? ['NOT_IMPLEMENTED', 'not-supported', 'HTTP operation not supported']
    : status === 406 ? ['MISSING_OR_INVALID_HEADER', 'not-supported', 'Accept type not supported']
    : status === 502 ? ['INTERNAL_SERVER_ERROR', 'exception', 'Invalid LDAP response received']
    : status === 504 ? ['INTERNAL_SERVER_ERROR', 'timeout', 'LDAP request timed out']
    : status >= 500 ? ['INTERNAL_SERVER_ERROR', 'exception', diagnostics]
    : ['BAD_REQUEST', 'exception', diagnostics];
}

// ------------------------------------------------------------------------------------------------ by hand

/** `node dist/test/doubles/sds-double.js [--port N] [--data records.json] [--api-key-file F] [--page-size N]` */
async function main(argv: string[]): Promise<void> {
  const option = optionReader(argv);
  const dataFile = option('data') ?? fileURLToPath(new URL('../../../test/fixtures/sds/example-records.json', import.meta.url));
  const apiKeyFile = option('api-key-file');
  const double = await startSdsDouble({
    data: JSON.parse(readFileSync(dataFile, 'utf8')) as SdsData,
    port: Number(option('port') ?? 9100),
    ...(apiKeyFile ? { apiKey: readFileSync(apiKeyFile, 'utf8').trim() } : {}),
    ...(option('page-size') ? { pageSize: Number(option('page-size')) } : {}),
  });
  process.stdout.write(`SDS double listening on ${double.url} (data: ${dataFile})\n`);
  const stop = () => void double.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void main(process.argv.slice(2));
