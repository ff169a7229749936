// `nems-gateway demo`: the whole NEMS flow through the gateway over mTLS with the example certificates, every
// step's outcome checked. It starts its own gateway (ephemeral loopback port, no admin listener, embedded core, a
// fresh data folder) so it never disturbs a running one. Exit 0 when every step had its expected outcome.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { startApp } from '../app.js';
import { configPathFromEnv, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { listMailbox } from '../nems-core/outbox.js';
import { createLogger } from '../observability/logger.js';
import { DEFAULT_CERTS_DIR, PROJECT_ROOT } from '../paths.js';
import { SUBSCRIPTION_INTERACTIONS, publishInteractionId } from '../nems/interactions.js';
import { nemsRoute } from '../nems/operations.js';
import { readCommandArgs, type CommandSpec, type OptionSpecs } from './args.js';
import { mintSpineJwt } from './jwt.js';

const GP = { client: 'gp-system', asid: '200000000101', ods: 'A83627', mailbox: 'A83627MB001' } as const;
const CHILD_HEALTH = { client: 'child-health', asid: '200000000102', ods: 'RX3EP' } as const;
const EXAMPLES = join(PROJECT_ROOT, 'docs', 'examples');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export const DEMO_COMMAND = {
  name: 'demo',
  usage: `usage: nems-gateway demo [--config F] [--certs DIR] [--data-dir D] [--keep-data] [--mailbox-password-file F]

Runs the whole NEMS flow (subscribe, read, publish, MESH delivery, rejections) against a gateway it starts on an
ephemeral loopback port with the embedded core, checking every step. Exit 0 when every step had its expected
outcome.

options:
  --config F      configuration for the registry, PDS data and limits (default: $NEMS_GATEWAY_CONFIG, else
                  config/gateway.yaml); its listeners, upstream and data folder are replaced
  --certs DIR     the example PKI (default certs-example/generated)
  --data-dir D    keep the core's data in D (default: a temporary folder, removed afterwards)
  --keep-data     do not remove the temporary data folder
  --mailbox-password-file F
                  with core.delivery mesh: the password of gp-system's MESH mailbox, to read the event back
  -h, --help      print this help
`,
  options: {
    config: { type: 'string' }, certs: { type: 'string' }, 'data-dir': { type: 'string' }, 'keep-data': { type: 'boolean' },
    'mailbox-password-file': { type: 'string' },
  },
} as const satisfies CommandSpec<OptionSpecs>;

export async function runDemoCommand(argv: readonly string[]): Promise<number> {
  const args = readCommandArgs(DEMO_COMMAND, argv);
  if (typeof args === 'number') return args;
  const options = args.values;
  const { config: base } = loadConfig(configPathFromEnv(options.config));
  const dataDir = options['data-dir'] ?? mkdtempSync(join(tmpdir(), 'nems-demo-'));
  const certsDir = options.certs !== undefined ? resolvePath(options.certs) : DEFAULT_CERTS_DIR;
  // The example client certificates only chain to the example CA: the gateway's side comes from the same folder.
  const config: Config = {
    ...base,
    server: {
      ...base.server,
      host: '127.0.0.1',
      port: 0,
      tls: {
        ...base.server.tls,
        cert: join(certsDir, 'server.pem'),
        key: join(certsDir, 'server-key.pem'),
        ca: join(certsDir, 'ca.pem'),
        crl: join(certsDir, 'crl.pem'),
      },
    },
    admin: { ...base.admin, enabled: false },
    upstream: { ...base.upstream, kind: 'embedded' },
    core: { ...base.core, dataDir },
    logging: { ...base.logging, level: 'silent' },
    lifecycle: { ...base.lifecycle, watchFiles: false, workers: 1, readinessGraceMs: 0 },
  };
  const app = await startApp({ config, logger: createLogger('silent') });
  const port = app.gateway.port;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let failures = 0;
  const check = (label: string, ok: boolean, detail: string) => {
    if (!ok) failures++;
    out(`${ok ? '  ✔' : '  ✘'} ${label}: ${detail}`);
  };
  const send = (client: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1', port, method, path, servername: 'localhost', agent: false,
          ca: readFileSync(join(certsDir, 'ca.pem')),
          cert: readFileSync(join(certsDir, `${client}.pem`)),
          key: readFileSync(join(certsDir, `${client}-key.pem`)),
          headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    });
  const nemsHeaders = (who: { asid: string; ods: string }, interaction: string, scope: string, jwtAsid = who.asid) => ({
    fromASID: who.asid,
    toASID: config.nems.toAsid,
    InteractionID: interaction,
    Authorization: `Bearer ${mintSpineJwt({ asid: jwtAsid, ods: who.ods, scope })}`,
  });
  const codeOf = (text: string) => /<details><coding>.*?<code value="([A-Z_]+)"\/>/s.exec(text)?.[1] ?? '(none)';
  const prefix = config.nems.pathPrefix;
  const subscriptionXml = readFileSync(join(EXAMPLES, 'subscription-explicit.xml'));
  const eventXml = readFileSync(join(EXAMPLES, 'vaccinations-1-new.xml'));

  try {
    out(`NEMS gateway demo: gateway on https://localhost:${port}${prefix}, embedded NEMS core, data in ${dataDir}\n`);

    out('1. gp-system creates an explicit subscription for NHS number 9912003888 (vaccinations, change of address)');
    const created = await send(GP.client, 'POST', `${prefix}/Subscription`,
      { ...nemsHeaders(GP, SUBSCRIPTION_INTERACTIONS.create, nemsRoute('create').scope), 'Content-Type': 'application/fhir+xml' }, subscriptionXml);
    const location = String(created.headers.location ?? '');
    const id = /\/Subscription\/([0-9a-f]{32})$/.exec(location)?.[1];
    // Location names the gateway (this demo's port), so a client follows it back through the gateway.
    const viaGateway = location.startsWith(`https://localhost:${port}${prefix}/Subscription/`);
    check('201 Created with a Location through the gateway', created.status === 201 && id !== undefined && viaGateway, `${created.status} ${location}`);

    out('2. gp-system reads it back');
    const read = await send(GP.client, 'GET', `${prefix}/Subscription/${id ?? 'missing'}`, nemsHeaders(GP, SUBSCRIPTION_INTERACTIONS.read, nemsRoute('read').scope));
    check('200 with status active', read.status === 200 && read.text.includes('<status value="active"/>'), `${read.status}`);

    out('3. child-health publishes a vaccinations event for 9912003888');
    const published = await send(CHILD_HEALTH.client, 'POST', `${prefix}/Events/1/$process-message`,
      { ...nemsHeaders(CHILD_HEALTH, publishInteractionId('Vaccinations'), nemsRoute('publish').scope), 'Content-Type': 'application/fhir+xml' }, eventXml);
    check('202 Accepted', published.status === 202, `${published.status}`);

    out(`4. the event is delivered to gp-system's MESH mailbox ${GP.mailbox}`);
    if (config.core.delivery === 'mesh') {
      // core.delivery mesh: the subscriber reads its own inbox through the MESH API.
      const viaMesh = await (await import('../mesh/demo-delivery.js')).awaitMeshDelivery(config, GP.mailbox,
        options['mailbox-password-file'], eventXml);
      check('the event arrived in the MESH inbox, byte for byte', viaMesh.ok, viaMesh.detail);
    } else {
      let delivered = listMailbox(dataDir, GP.mailbox);
      for (let i = 0; i < 100 && delivered.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        delivered = listMailbox(dataDir, GP.mailbox);
      }
      const message = delivered[0];
      check('one message in the mailbox', delivered.length === 1, message
        ? `${message.control.messageId} workflow ${message.control.workflowId}, subscription ${message.control.subscriptionIds.join(',')}`
        : 'none');
      if (message) {
        check('the delivered XML is the published event, byte for byte', readFileSync(message.xmlPath).equals(eventXml), message.xmlPath);
      }
    }

    out('5. rejections');
    const unregistered = await send('unregistered', 'GET', `${prefix}/Subscription/${id ?? 'x'}`, nemsHeaders(GP, SUBSCRIPTION_INTERACTIONS.read, nemsRoute('read').scope));
    check('an unregistered certificate gets 403 ACCESS_DENIED', unregistered.status === 403 && codeOf(unregistered.text) === 'ACCESS_DENIED', `${unregistered.status} ${codeOf(unregistered.text)}`);

    const wrongAsid = await send(GP.client, 'GET', `${prefix}/Subscription/${id ?? 'x'}`,
      nemsHeaders(GP, SUBSCRIPTION_INTERACTIONS.read, nemsRoute('read').scope, CHILD_HEALTH.asid));
    check('a JWT naming another ASID gets 400 MISSING_OR_INVALID_HEADER', wrongAsid.status === 400 && codeOf(wrongAsid.text) === 'MISSING_OR_INVALID_HEADER', `${wrongAsid.status} ${codeOf(wrongAsid.text)}`);

    const invalidNhs = await send(GP.client, 'POST', `${prefix}/Subscription`,
      { ...nemsHeaders(GP, SUBSCRIPTION_INTERACTIONS.create, nemsRoute('create').scope), 'Content-Type': 'application/fhir+xml' },
      Buffer.from(subscriptionXml.toString().replace('9912003888', '9912003880')));
    check('an NHS number failing modulus 11 gets 400 INVALID_NHS_NUMBER', invalidNhs.status === 400 && codeOf(invalidNhs.text) === 'INVALID_NHS_NUMBER', `${invalidNhs.status} ${codeOf(invalidNhs.text)}`);

    out(`\n${failures === 0 ? 'demo passed: every step had its expected outcome' : `demo FAILED: ${failures} step(s) did not`}`);
    return failures === 0 ? 0 : 1;
  } finally {
    await app.stop();
    if (options['keep-data'] !== true && options['data-dir'] === undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}
