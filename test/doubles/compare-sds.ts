// By hand, never in CI: sends the same requests to the SDS double and to a locally run reference (NHSDigital/
// spine-directory-service-api in mock-LDAP mode on loopback, see README "Test doubles and the public sandboxes")
// and prints every difference in status, Content-Type and body after normalising what is random per answer
// (resource and Bundle ids, the host in URLs, the correlation id).
//   node dist/test/doubles/compare-sds.js --reference http://127.0.0.1:9101 --mock-data <sds>/lookup/mock_data
// The double is loaded with the reference's own mock records (sds_as_response.json, sds_mhs_response.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { startSdsDouble, type SdsData } from './sds-double.js';
import { optionReader } from './cli-options.js';

const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const SVC = 'https://fhir.nhs.uk/Id/nhsServiceInteractionId';
const KEY = 'https://fhir.nhs.uk/Id/nhsMhsPartyKey';

/** The requests compared: answers with matches, no match, each 4xx the API documents, and a wrong path. */
export const SDS_COMPARISON_REQUESTS: ReadonlyArray<{ name: string; method?: string; path: string; headers?: Record<string, string> }> = [
  { name: 'Device: Spine Ping AS', path: `/Device?organization=${ODS}|YES&identifier=${SVC}|urn:oasis:names:tc:ebxml-msg:service:Ping` },
  { name: 'Device: NEMS publisher interaction', path: `/Device?organization=${ODS}|YES&identifier=${SVC}|urn:nhs:names:services:events:Vaccinations.Write` },
  { name: 'Device: no match', path: `/Device?organization=${ODS}|NOPE1&identifier=${SVC}|urn:nhs:names:services:clinicals-sync:SubscriptionsApiPost` },
  { name: 'Device: missing identifier (400)', path: `/Device?organization=${ODS}|YES` },
  { name: 'Device: illegal parameter (400)', path: `/Device?organization=${ODS}|YES&identifier=${SVC}|x&foo=bar` },
  { name: 'Endpoint: by ODS and interaction', path: `/Endpoint?organization=${ODS}|YES&identifier=${SVC}|urn:nhs:names:services:psis:REPC_IN150016UK05` },
  { name: 'Endpoint: by ODS and party key', path: `/Endpoint?organization=${ODS}|YES&identifier=${KEY}|YES-0000806` },
  { name: 'Endpoint: ODS only (400)', path: `/Endpoint?organization=${ODS}|YES` },
  { name: 'Endpoint: unsupported Accept (406)', path: `/Endpoint?organization=${ODS}|YES&identifier=${KEY}|YES-0000806`, headers: { accept: 'text/xml' } },
  { name: 'Endpoint: POST (405)', method: 'POST', path: `/Endpoint?organization=${ODS}|YES&identifier=${KEY}|YES-0000806` },
  { name: 'unknown path (404)', path: '/Patient' },
];

const UUID = /[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}/g;

function normalise(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(/^https?:\/\/[^/]+/, 'http://HOST').replace(UUID, 'UUID');
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = k === 'diagnostics' ? '(diagnostics)' : normalise(v);
    return out;
  }
  return value;
}

async function fetchOne(base: string, req: (typeof SDS_COMPARISON_REQUESTS)[number]) {
  const res = await fetch(`${base}${req.path}`, { method: req.method ?? 'GET', headers: { accept: 'application/fhir+json', ...req.headers } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON: compared as text */ }
  return { status: res.status, contentType: res.headers.get('content-type'), correlationId: res.headers.has('x-correlation-id'), body: normalise(body) };
}

async function main(argv: string[]): Promise<void> {
  const option = optionReader(argv);
  const reference = option('reference');
  const mockData = option('mock-data');
  if (!reference || !mockData) {
    process.stderr.write('usage: compare-sds --reference URL --mock-data <sds>/lookup/mock_data\n');
    process.exit(2);
  }
  const data: SdsData = {
    as: JSON.parse(readFileSync(join(mockData, 'sds_as_response.json'), 'utf8')),
    mhs: JSON.parse(readFileSync(join(mockData, 'sds_mhs_response.json'), 'utf8')),
  };
  const double = await startSdsDouble({ data });
  let differences = 0;
  try {
    for (const req of SDS_COMPARISON_REQUESTS) {
      const [ours, theirs] = await Promise.all([fetchOne(double.url, req), fetchOne(reference, req)]);
      const same = isDeepStrictEqual(ours, theirs);
      if (!same) differences++;
      process.stdout.write(`${same ? 'same     ' : 'DIFFERENT'}  ${req.name}: double ${ours.status} ${ours.contentType}, reference ${theirs.status} ${theirs.contentType}\n`);
      if (!same) process.stdout.write(`  double:    ${JSON.stringify(ours).slice(0, 600)}\n  reference: ${JSON.stringify(theirs).slice(0, 600)}\n`);
    }
  } finally {
    await double.close();
  }
  process.stdout.write(`${SDS_COMPARISON_REQUESTS.length - differences} same, ${differences} different\n`);
  process.exitCode = differences === 0 ? 0 : 1;
}

void main(process.argv.slice(2));
