// Child process for the claim-expiry test (issue 13, D14): opens the embedded core (the built one in dist/) on a
// data directory, publishes one event whose delivery then hangs on a patient directory that never answers, so the
// publication stays claimed by this process. Prints `claimed` once its 202 is in and the delivery is under way,
// then waits to be killed with SIGKILL. Arguments: <dataDir> <eventFile> <deliveryLeaseMs>.
import { readFileSync } from 'node:fs';
import { createNemsCore } from '../../dist/src/nems-core/core.js';

const [dataDir, eventFile, leaseMs] = process.argv.slice(2);
let directoryAsked = false;
const core = createNemsCore({
  dataDir,
  baseUrl: 'https://nems.example.test/STU3',
  deliveryLeaseMs: Number(leaseMs),
  directoryTimeoutMs: 600_000,
  patientDirectory: {
    lookupPatient: () => {
      directoryAsked = true;
      return new Promise(() => {});
    },
  },
});
const response = await core.handle({
  method: 'POST',
  url: '/STU3/Events/1/$process-message',
  headers: {
    fromASID: '200000000102',
    toASID: '200000000306',
    InteractionID: 'urn:nhs:names:services:events:Vaccinations.Write',
    'Content-Type': 'application/fhir+xml',
  },
  body: readFileSync(eventFile),
});
if (response.status !== 202) {
  process.stdout.write(`publish answered ${response.status}\n`);
  process.exit(1);
}
// The delivery loop claims the publication and then asks the directory, which never answers.
const waitForClaim = setInterval(() => {
  if (!directoryAsked) return;
  clearInterval(waitForClaim);
  process.stdout.write('claimed\n');
}, 10);
setInterval(() => {}, 60_000);
