// Example certificates for local runs and tests, made with node-forge: a development CA, a server certificate
// for localhost / 127.0.0.1, client certificates for the registry's example endpoints and for each failure case,
// and a CRL that revokes one of them. node-forge is used here only to MAKE certificates; every trust decision is
// OpenSSL's (node:tls). Usage: `npm run certs [-- --out DIR] [--if-missing]`.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import forge from 'node-forge';
import { crlNextUpdate } from '../src/edge/cert-info.js';
import { DEFAULT_CERTS_DIR } from '../src/paths.js';
import { readCommandArgs, type CommandSpec, type OptionSpecs } from '../src/cli/args.js';

const { pki, asn1, md } = forge;

export interface ExampleCertificates {
  readonly dir: string;
  /** Client names with `<name>.pem` and `<name>-key.pem` in `dir`. */
  readonly clients: readonly string[];
}

interface Issued {
  cert: forge.pki.Certificate;
  keys: forge.pki.rsa.KeyPair;
}

const DAY_MS = 86_400_000;
/** How long the example CRL stays current: `npm start` refuses a CRL past its nextUpdate (README, revocation). */
export const EXAMPLE_CRL_DAYS = 365;
/** `--if-missing` regenerates the example PKI when its CRL has less than this left. */
const CRL_RENEW_BEFORE_MS = 7 * DAY_MS;

/** Client certificates every environment gets; FQDNs match config/endpoints.yaml. */
export const EXAMPLE_CLIENTS = {
  'gp-system': 'gp-system.example.nhs.uk',
  'child-health': 'child-health.example.nhs.uk',
  unregistered: 'unregistered.example.nhs.uk',
  untrusted: 'gp-system.example.nhs.uk',
  expired: 'gp-system.example.nhs.uk',
  revoked: 'gp-system.example.nhs.uk',
} as const;

let serialCounter = 1;
function nextSerial(): string {
  // Positive, unique within one run; OpenSSL matches CRL entries by serial.
  const hex = (Date.now().toString(16) + (serialCounter++).toString(16).padStart(4, '0')).slice(-16);
  return `01${hex}`;
}

function rsaKeyPair(bits = 2048): forge.pki.rsa.KeyPair {
  // forge delegates to node:crypto's generateKeyPairSync when available, so this is fast.
  return pki.rsa.generateKeyPair({ bits, e: 0x10001 });
}

function makeCa(commonName: string, now: number): Issued {
  const keys = rsaKeyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = nextSerial();
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(now + 3650 * DAY_MS);
  const subject = [{ name: 'countryName', value: 'GB' }, { name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, md.sha256.create());
  return { cert, keys };
}

function issueLeaf(
  ca: Issued,
  opts: { cn: string; dnsNames: string[]; ips?: string[]; usage: 'server' | 'client'; notBefore: Date; notAfter: Date; keyBits?: number },
): Issued {
  const keys = rsaKeyPair(opts.keyBits);
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = nextSerial();
  cert.validity.notBefore = opts.notBefore;
  cert.validity.notAfter = opts.notAfter;
  // Spine CSR rule (docs/specification.md §5.2): CN = endpoint FQDN, C = GB, other DN fields blank.
  cert.setSubject([{ name: 'countryName', value: 'GB' }, { name: 'commonName', value: opts.cn }]);
  cert.setIssuer(ca.cert.subject.attributes);
  const altNames = [
    ...opts.dnsNames.map((value) => ({ type: 2, value })),
    ...(opts.ips ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: opts.usage === 'server', clientAuth: opts.usage === 'client' },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.keys.privateKey, md.sha256.create());
  return { cert, keys };
}

/** When a CRL was issued and when the next one is due (default: now, and EXAMPLE_CRL_DAYS ahead). */
export interface CrlValidity {
  readonly thisUpdate?: Date;
  readonly nextUpdate?: Date;
}

/** A v2 CRL signed by the CA (node-forge has no CRL builder, so the DER is assembled here). */
function makeCrl(ca: Issued, revokedSerials: string[], now: number, crlNumberHex = '01', validity: CrlValidity = {}): string {
  const sha256WithRsa = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(pki.oids.sha256WithRSAEncryption!).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
  const utcTime = (date: Date) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date));
  const revoked = revokedSerials.map((serial) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(serial)),
      utcTime(new Date(now - 60_000)),
    ]),
  );
  const crlNumber = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer('2.5.29.20').getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false,
      asn1.toDer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(crlNumberHex))).getBytes()),
  ]);
  const authorityKeyId = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer('2.5.29.35').getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false,
      asn1.toDer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, ca.cert.generateSubjectKeyIdentifier().getBytes()),
      ])).getBytes()),
  ]);
  const tbs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes('01')),
    sha256WithRsa,
    pki.distinguishedNameToAsn1(ca.cert.subject),
    utcTime(validity.thisUpdate ?? new Date(now - 60_000)),
    utcTime(validity.nextUpdate ?? new Date(now + EXAMPLE_CRL_DAYS * DAY_MS)),
    ...(revoked.length ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, revoked)] : []),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [authorityKeyId, crlNumber]),
    ]),
  ]);
  const digest = md.sha256.create();
  digest.update(asn1.toDer(tbs).getBytes());
  const signature = (ca.keys.privateKey as forge.pki.rsa.PrivateKey).sign(digest);
  const crl = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    sha256WithRsa,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${signature}`),
  ]);
  const der = asn1.toDer(crl).getBytes();
  return `-----BEGIN X509 CRL-----\n${forge.util.encode64(der).replace(/(.{64})/g, '$1\n').trim()}\n-----END X509 CRL-----\n`;
}

function writePair(dir: string, name: string, issued: Issued): void {
  writeFileSync(join(dir, `${name}.pem`), pki.certificateToPem(issued.cert));
  writeFileSync(join(dir, `${name}-key.pem`), pki.privateKeyToPem(issued.keys.privateKey), { mode: 0o600 });
}

/**
 * Writes the example PKI into `dir`. Extra client names can be issued by the same CA (e.g. for tests of
 * additional registry entries): `extraClients: { name: fqdn }`.
 */
export function generateExampleCertificates(
  dir: string,
  opts: { extraClients?: Record<string, string>; keepCaKey?: boolean } = {},
): ExampleCertificates {
  mkdirSync(dir, { recursive: true });
  const now = Date.now();
  const ca = makeCa('NEMS Gateway Development CA', now);
  const otherCa = makeCa('Untrusted Development CA', now);
  writeFileSync(join(dir, 'ca.pem'), pki.certificateToPem(ca.cert));
  // Only on request (tests of certificate rotation and CRL updates): the example CA's key never ships by default.
  if (opts.keepCaKey) {
    writeFileSync(join(dir, 'ca-key.pem'), pki.privateKeyToPem(ca.keys.privateKey), { mode: 0o600 });
    writeFileSync(join(dir, 'untrusted-ca-key.pem'), pki.privateKeyToPem(otherCa.keys.privateKey), { mode: 0o600 });
  }
  writeFileSync(join(dir, 'untrusted-ca.pem'), pki.certificateToPem(otherCa.cert));

  const valid = { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 825 * DAY_MS) };
  writePair(dir, 'server', issueLeaf(ca, { cn: 'localhost', dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server', ...valid }));

  const clients: Record<string, string> = { ...EXAMPLE_CLIENTS, ...opts.extraClients };
  let revokedSerial = '';
  for (const [name, fqdn] of Object.entries(clients)) {
    const issuer = name === 'untrusted' ? otherCa : ca;
    const validity = name === 'expired'
      ? { notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) }
      : valid;
    const issued = issueLeaf(issuer, { cn: fqdn, dnsNames: [fqdn], usage: 'client', ...validity });
    if (name === 'revoked') revokedSerial = issued.cert.serialNumber;
    writePair(dir, name, issued);
  }
  writeFileSync(join(dir, 'crl.pem'), makeCrl(ca, revokedSerial ? [revokedSerial] : [], now));
  return { dir, clients: Object.keys(clients) };
}

/** The example CA of `dir` (or the untrusted one), from its PEM and the key written with `keepCaKey`. */
function loadCa(dir: string, which: 'ca' | 'untrusted-ca' = 'ca'): Issued {
  const cert = pki.certificateFromPem(readFileSync(join(dir, `${which}.pem`), 'utf8'));
  const privateKey = pki.privateKeyFromPem(readFileSync(join(dir, `${which}-key.pem`), 'utf8')) as forge.pki.rsa.PrivateKey;
  return { cert, keys: { privateKey, publicKey: cert.publicKey as forge.pki.rsa.PublicKey } };
}

/**
 * Issues another localhost server certificate from the example CA of `dir` (generated with `keepCaKey`), written
 * as `<name>.pem` and `<name>-key.pem`: a certificate rotation. Returns the new certificate's serial (hex).
 */
export function issueServerCertificate(dir: string, name: string): string {
  const ca = loadCa(dir);
  const now = Date.now();
  const issued = issueLeaf(ca, {
    cn: 'localhost', dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server',
    notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 400 * DAY_MS),
  });
  writePair(dir, name, issued);
  return issued.cert.serialNumber;
}

/**
 * Issues another client certificate from the example CA of `dir` (generated with `keepCaKey`), written as
 * `<name>.pem` and `<name>-key.pem`; `keyBits` makes a weaker or stronger RSA key than the default 2048.
 */
export function issueClientCertificate(dir: string, name: string, fqdn: string, opts: { keyBits?: number } = {}): void {
  const now = Date.now();
  writePair(dir, name, issueLeaf(loadCa(dir), {
    cn: fqdn, dnsNames: [fqdn], usage: 'client', notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 400 * DAY_MS),
    ...(opts.keyBits ? { keyBits: opts.keyBits } : {}),
  }));
}

/**
 * Writes a new CRL from the example CA of `dir` (generated with `keepCaKey`) revoking the named certificates
 * (`<name>.pem` in `dir`), with the given CRL number. `issuer: 'untrusted-ca'` signs it with the other CA, and
 * `validity` moves thisUpdate/nextUpdate (an expired CRL, one from the future). Returns the CRL in PEM.
 */
export function writeExampleCrl(
  dir: string,
  revokedNames: readonly string[],
  file = 'crl.pem',
  crlNumber = 2,
  opts: CrlValidity & { issuer?: 'ca' | 'untrusted-ca' } = {},
): string {
  const ca = loadCa(dir, opts.issuer);
  const serials = revokedNames.map((name) => pki.certificateFromPem(readFileSync(join(dir, `${name}.pem`), 'utf8')).serialNumber);
  const hex = crlNumber.toString(16);
  const pem = makeCrl(ca, serials, Date.now(), hex.length % 2 ? `0${hex}` : hex, opts);
  writeFileSync(join(dir, file), pem);
  return pem;
}

/** True when `dir` holds an example PKI whose CRL is readable and current for at least CRL_RENEW_BEFORE_MS. */
function examplePkiIsCurrent(dir: string): boolean {
  if (!existsSync(join(dir, 'ca.pem')) || !existsSync(join(dir, 'crl.pem'))) return false;
  try {
    const nextUpdate = crlNextUpdate(readFileSync(join(dir, 'crl.pem')));
    return nextUpdate !== undefined && nextUpdate.getTime() - Date.now() > CRL_RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

export const CERTS_COMMAND = {
  name: 'certs',
  usage: `usage: node dist/certs-example/generate.js [--out DIR] [--if-missing]   (npm run certs)

Writes the development PKI: ca, server (localhost, 127.0.0.1), the example clients and crl.pem.

options:
  --out DIR       where to write (default certs-example/generated)
  --if-missing    do nothing when DIR already holds a PKI whose CRL is current for 7 more days
  -h, --help      print this help
`,
  options: { out: { type: 'string' }, 'if-missing': { type: 'boolean' } },
} as const satisfies CommandSpec<OptionSpecs>;

function main(argv: string[]): number {
  const args = readCommandArgs(CERTS_COMMAND, argv);
  if (typeof args === 'number') return args;
  const dir = args.values.out !== undefined ? resolve(args.values.out) : DEFAULT_CERTS_DIR;
  // A PKI whose CRL is stale (an older checkout made 30-day CRLs) is made anew: the gateway refuses stale CRLs.
  if (args.values['if-missing'] && examplePkiIsCurrent(dir)) return 0;
  const result = generateExampleCertificates(dir);
  process.stdout.write(`example certificates written to ${result.dir}: ca, server, ${result.clients.join(', ')}, crl\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
